//! Leadership follows the clients: where the cluster's client requests enter, and which node
//! should therefore lead.
//!
//! Every request a client sends to a node that does not lead the key's shard costs a
//! forwarding round trip to the leader (two more messages, about 60 µs on loopback and a tenth
//! of the cluster's CPU per request). Redis clients talk to one address, so a workload often
//! enters through one node. The meta group's leader counts, over a window, the client
//! requests it served by the node they entered through ([`ClientTraffic`]); when one other
//! node brought at least two thirds of them, it hands the meta group's leadership to that node,
//! and the data groups follow it ([`super::reconcile::colocation_target`]). Traffic spread
//! over the nodes moves nothing: no node can hold two thirds while another does, so leadership
//! cannot swing back and forth between two busy nodes.

use super::directory::{Directory, MemberStatus};
use ppdb_raft::{NodeId, Status};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Fewest requests in a window for its origins to move leadership: below this the window says
/// too little about the workload (a monitoring probe, a few interactive commands).
pub const FOLLOW_CLIENTS_REQUESTS_MIN: u64 = 100;

/// Client requests served by this node, by the node they entered through (itself for its own
/// clients, the forwarding peer for forwarded ones). Shared between the request path, which
/// records, and the runtime, which reads and clears it once per window.
#[derive(Debug, Clone, Default)]
pub struct ClientTraffic {
    served: Arc<Mutex<BTreeMap<NodeId, u64>>>,
}

impl ClientTraffic {
    /// Counts `requests` that entered the cluster through `origin`. The map holds one entry per
    /// origin, so it is bounded by the cluster's size.
    pub fn record(&self, origin: NodeId, requests: u64) {
        let mut served = self.served.lock().unwrap_or_else(|p| p.into_inner());
        let count = served.entry(origin).or_default();
        *count = count.saturating_add(requests);
    }

    /// The counts since the last call, which starts a new window.
    pub fn take(&self) -> BTreeMap<NodeId, u64> {
        std::mem::take(&mut *self.served.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// On the meta group's leader (`meta`, its status), after a window whose client requests came
/// through the nodes as `served` counts them: the node to hand leadership to, if one ACTIVE
/// voter other than this leader brought at least two thirds of at least
/// [`FOLLOW_CLIENTS_REQUESTS_MIN`] requests and is ready to take over (heard from within
/// `recent_ticks`; the Raft core brings its log up to date before handing over).
pub fn follow_clients_target(
    served: &BTreeMap<NodeId, u64>,
    directory: &Directory,
    meta: &Status,
    recent_ticks: u64,
) -> Option<NodeId> {
    let total = served.values().fold(0u64, |sum, &n| sum.saturating_add(n));
    if total < FOLLOW_CLIENTS_REQUESTS_MIN {
        return None;
    }
    let (&busiest, &count) = served.iter().max_by_key(|(_, &n)| n)?;
    let dominant = u128::from(count) * 3 >= u128::from(total) * 2;
    if !dominant || busiest == meta.id || !meta.membership.is_voter(busiest) {
        return None;
    }
    if directory.get(busiest).map(|m| m.status) != Some(MemberStatus::Active) {
        return None;
    }
    let follower = meta.followers.iter().find(|f| f.id == busiest)?;
    (follower.silent_ticks <= recent_ticks).then_some(busiest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::directory::DirectoryCommand;
    use ppdb_raft::tracker::ProgressState;
    use ppdb_raft::{FollowerStatus, LogIndex, Membership, PeerRole, Term};
    use std::net::SocketAddr;

    /// A directory with `active` members and `leaving` ones.
    fn directory(active: &[u64], leaving: &[u64]) -> Directory {
        let mut directory = Directory::default();
        for &id in active.iter().chain(leaving) {
            let peer_addr = SocketAddr::from(([127, 0, 0, 1], 7100 + id as u16));
            let _ =
                directory.execute(&DirectoryCommand::Join { node: NodeId(id), peer_addr, incarnation: None });
            let _ = directory.execute(&DirectoryCommand::Activate { node: NodeId(id) });
        }
        for &id in leaving {
            let _ = directory.execute(&DirectoryCommand::Leave { node: NodeId(id) });
        }
        directory
    }

    /// Node 1 leading the meta group of `voters`, every follower caught up and heard from
    /// `silent` ticks ago (0 unless listed).
    fn leader_status(voters: &[u64], silent: &[(u64, u64)]) -> Status {
        let followers = voters
            .iter()
            .filter(|&&id| id != 1)
            .map(|&id| FollowerStatus {
                id: NodeId(id),
                matched: LogIndex(10),
                state: ProgressState::Replicate,
                silent_ticks: silent.iter().find(|(n, _)| *n == id).map_or(0, |&(_, t)| t),
            })
            .collect();
        Status {
            id: NodeId(1),
            role: PeerRole::Leader,
            term: Term(2),
            leader: Some(NodeId(1)),
            commit: LogIndex(10),
            applied: LogIndex(10),
            last_index: LogIndex(10),
            snapshot_index: LogIndex(0),
            membership: Membership::with_voters(voters.iter().map(|&id| NodeId(id))),
            membership_uncommitted: false,
            followers,
        }
    }

    fn served(counts: &[(u64, u64)]) -> BTreeMap<NodeId, u64> {
        counts.iter().map(|&(id, n)| (NodeId(id), n)).collect()
    }

    #[test]
    fn leadership_moves_to_the_node_that_brings_two_thirds_of_the_requests() {
        let dir = directory(&[1, 2, 3], &[]);
        let meta = leader_status(&[1, 2, 3], &[]);
        assert_eq!(follow_clients_target(&served(&[(2, 1000)]), &dir, &meta, 20), Some(NodeId(2)));
        assert_eq!(follow_clients_target(&served(&[(1, 100), (2, 200)]), &dir, &meta, 20), Some(NodeId(2)));
        assert_eq!(follow_clients_target(&served(&[(1, 101), (2, 200)]), &dir, &meta, 20), None);
    }

    #[test]
    fn spread_or_scarce_traffic_and_the_leaders_own_clients_move_nothing() {
        let dir = directory(&[1, 2, 3], &[]);
        let meta = leader_status(&[1, 2, 3], &[]);
        let even = served(&[(1, 1000), (2, 1000), (3, 1000)]);
        assert_eq!(follow_clients_target(&even, &dir, &meta, 20), None);
        assert_eq!(follow_clients_target(&served(&[(2, 500), (3, 500)]), &dir, &meta, 20), None);
        assert_eq!(follow_clients_target(&served(&[(1, 5000)]), &dir, &meta, 20), None);
        assert_eq!(follow_clients_target(&served(&[(2, 99)]), &dir, &meta, 20), None);
        assert_eq!(follow_clients_target(&BTreeMap::new(), &dir, &meta, 20), None);
    }

    #[test]
    fn only_a_reachable_active_voter_takes_over() {
        let busy_three = served(&[(3, 1000)]);
        let meta = leader_status(&[1, 2, 3], &[]);
        assert_eq!(follow_clients_target(&busy_three, &directory(&[1, 2], &[3]), &meta, 20), None);
        let silent = leader_status(&[1, 2, 3], &[(3, 21)]);
        assert_eq!(follow_clients_target(&busy_three, &directory(&[1, 2, 3], &[]), &silent, 20), None);
        let not_voter = leader_status(&[1, 2], &[]);
        assert_eq!(follow_clients_target(&busy_three, &directory(&[1, 2, 3], &[]), &not_voter, 20), None);
        let unknown = served(&[(9, 1000)]);
        assert_eq!(follow_clients_target(&unknown, &directory(&[1, 2, 3], &[]), &meta, 20), None);
    }

    #[test]
    fn traffic_is_counted_per_origin_and_cleared_by_each_window() {
        let traffic = ClientTraffic::default();
        traffic.record(NodeId(2), 3);
        traffic.clone().record(NodeId(2), 4);
        traffic.record(NodeId(1), u64::MAX);
        traffic.record(NodeId(1), 1);
        assert_eq!(traffic.take(), served(&[(1, u64::MAX), (2, 7)]));
        assert!(traffic.take().is_empty());
    }
}

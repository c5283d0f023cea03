//! WAIT: how many replicas hold the writes a connection has made.
//!
//! In Redis a write reaches replicas after it is acknowledged, and WAIT counts the replicas
//! that have confirmed it. In PPDB a write is acknowledged only once its shard committed it,
//! that is once a majority of the shard's voters hold it; the replicas that hold it are the
//! other members of that majority, and then the followers that catch up. PPDB does not learn
//! the log index of each write, so WAIT reasons per shard the connection wrote to:
//!
//! - on a shard this node leads, the leader's log holds every committed entry, so a follower
//!   whose match index has reached the leader's last index, as WAIT first saw it, holds the
//!   connection's writes; WAIT counts those followers (voters and learners), and never fewer
//!   than the majority's other voters;
//! - on a shard led elsewhere, it counts the majority's other voters (`quorum - 1`), which
//!   the acknowledgement guarantees; on a shard not hosted here, none is known.
//!
//! The answer is the smallest count over the shards written to: every write of the connection
//! is on at least that many replicas. A connection that wrote nothing is answered, as Redis
//! answers it, with all replicas: the smallest shard's members minus the leader.

use super::clients::ClientRecord;
use super::shard::KvShard;
use crate::node::runtime::GroupReport;
use crate::node::NodeHandle;
use crate::storage::wal::GroupId;
use ppdb_raft::{LogIndex, PeerRole, Status};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// Pause between two looks at the shards' replication while WAIT is short of replicas.
pub const WAIT_POLL_INTERVAL: Duration = Duration::from_millis(5);

/// The data shards a connection has written to (for WAIT).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WrittenShards {
    shards: BTreeSet<u64>,
    /// A write with no key (FLUSHALL) touched every shard.
    all: bool,
}

impl WrittenShards {
    /// Notes a write to `shard`.
    pub fn note(&mut self, shard: u64) {
        if !self.all {
            self.shards.insert(shard);
        }
    }

    /// Notes a write to every shard.
    pub fn note_all(&mut self) {
        self.all = true;
        self.shards.clear();
    }

    /// The shards written to, among `1..=shards`.
    fn list(&self, shards: u64) -> Vec<u64> {
        if self.all {
            (1..=shards).collect()
        } else {
            self.shards.iter().copied().collect()
        }
    }
}

/// How far followers must have replicated, per shard led here: the leader's last index when
/// WAIT first looked, kept for the rest of the wait.
pub type Targets = BTreeMap<u64, LogIndex>;

/// Replicas holding every write in `written` (see the module's rule), from this node's view
/// of its shards; the first look at a shard led here fixes its target in `targets`.
pub fn replicas_holding(
    reports: &[GroupReport],
    written: &WrittenShards,
    shards: u64,
    targets: &mut Targets,
) -> i64 {
    let status = |shard: u64| reports.iter().find(|r| r.group == GroupId(shard)).map(|r| &r.raft);
    let written = written.list(shards);
    if written.is_empty() {
        let members = (1..=shards).filter_map(status).map(|s| s.membership.members().count());
        return members.min().map_or(0, |n| n.saturating_sub(1) as i64);
    }
    let holding = written.iter().map(|&shard| match status(shard) {
        None => 0,
        Some(s) if s.role == PeerRole::Leader => {
            let target = *targets.entry(shard).or_insert(s.last_index);
            followers_at(s, target).max(majority_others(s))
        }
        Some(s) => majority_others(s),
    });
    holding.min().unwrap_or(0)
}

/// Answers WAIT: looks at the shards until `wanted` replicas hold the connection's writes, or
/// `timeout_ms` passed (0: no limit), or the connection is killed; the count last seen.
pub async fn wait_for_replicas(
    handle: &NodeHandle<KvShard>,
    written: &WrittenShards,
    shards: u64,
    wanted: i64,
    timeout_ms: u64,
    client: &ClientRecord,
) -> i64 {
    let deadline = (timeout_ms > 0).then(|| Instant::now() + Duration::from_millis(timeout_ms));
    let mut targets = Targets::new();
    loop {
        let count = match handle.status().await {
            Ok(reports) => replicas_holding(&reports, written, shards, &mut targets),
            Err(_) => 0,
        };
        let timed_out = deadline.is_some_and(|deadline| Instant::now() >= deadline);
        if count >= wanted || timed_out || client.is_killed() {
            return count;
        }
        let pause = deadline.map_or(WAIT_POLL_INTERVAL, |deadline| {
            WAIT_POLL_INTERVAL.min(deadline.saturating_duration_since(Instant::now()))
        });
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = client.killed() => return count,
        }
    }
}

/// The voters besides the leader that a commit needs.
fn majority_others(status: &Status) -> i64 {
    status.membership.quorum().saturating_sub(1) as i64
}

/// Followers whose log has reached `target`.
fn followers_at(status: &Status, target: LogIndex) -> i64 {
    status.followers.iter().filter(|f| f.matched >= target).count() as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use ppdb_raft::tracker::ProgressState;
    use ppdb_raft::{FollowerStatus, Membership, NodeId, Term};

    fn shard(group: u64, role: PeerRole, last: u64, matched: &[u64]) -> GroupReport {
        GroupReport {
            group: GroupId(group),
            raft: Status {
                id: NodeId(1),
                role,
                term: Term(1),
                leader: Some(NodeId(1)),
                commit: LogIndex(last),
                applied: LogIndex(last),
                last_index: LogIndex(last),
                snapshot_index: LogIndex(0),
                membership: Membership::with_voters((1..=matched.len() as u64 + 1).map(NodeId)),
                membership_uncommitted: false,
                followers: matched
                    .iter()
                    .enumerate()
                    .map(|(i, &m)| FollowerStatus {
                        id: NodeId(i as u64 + 2),
                        matched: LogIndex(m),
                        state: ProgressState::Replicate,
                        silent_ticks: 0,
                    })
                    .collect(),
            },
            elections_started: 0,
            elections_won: 0,
            apply_stopped: None,
        }
    }

    #[test]
    fn led_shards_count_followers_that_reached_the_first_seen_last_index() {
        let mut written = WrittenShards::default();
        written.note(1);
        let mut targets = Targets::new();
        // Five voters: the commit guarantees two others; three followers have caught up.
        let reports = [shard(1, PeerRole::Leader, 10, &[10, 12, 9, 10])];
        assert_eq!(replicas_holding(&reports, &written, 1, &mut targets), 3);
        // Later writes by others move the last index; the target stays where WAIT began.
        let reports = [shard(1, PeerRole::Leader, 20, &[10, 12, 10, 10])];
        assert_eq!(replicas_holding(&reports, &written, 1, &mut targets), 4);
        // Never fewer than the majority's other voters.
        let reports = [shard(1, PeerRole::Leader, 20, &[1, 1, 1, 1])];
        assert_eq!(replicas_holding(&reports, &written, 1, &mut Targets::new()), 2);
    }

    #[test]
    fn the_smallest_shard_count_answers_and_unknown_shards_count_none() {
        let reports = [shard(1, PeerRole::Leader, 5, &[5, 5]), shard(2, PeerRole::Follower, 5, &[0, 0])];
        let mut written = WrittenShards::default();
        written.note(1);
        assert_eq!(replicas_holding(&reports, &written, 3, &mut Targets::new()), 2);
        written.note(2);
        assert_eq!(
            replicas_holding(&reports, &written, 3, &mut Targets::new()),
            1,
            "quorum 2 of 3, minus one"
        );
        written.note_all();
        assert_eq!(replicas_holding(&reports, &written, 3, &mut Targets::new()), 0, "shard 3 is not hosted");
        let nothing = WrittenShards::default();
        assert_eq!(replicas_holding(&reports, &nothing, 2, &mut Targets::new()), 2, "all replicas");
    }
}

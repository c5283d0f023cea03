//! Changing who is in the cluster: joins, graceful leaves and operator removals, submitted to
//! the meta group's leader wherever it is.
//!
//! A change is a [`DirectoryCommand`]. The node that receives it (from the admin API, or from
//! a joining node over a guest connection) proposes it to its own meta replica; if that is not
//! the leader, it forwards the command to the leader over the transport and retries through
//! elections until the request deadline. A node serving a forwarded command from another
//! member only proposes locally (never forwards again), so requests cannot loop.
//!
//! Wire format (a peer request, tag [`MEMBERSHIP_REQUEST_TAG`]): request = tag u8, the encoded
//! command. Response = `0`, shard count u32, member count u32, per member id u64 + peer
//! address, then the key routing u8 (`0` crc32c modulo, `1` hash slots; absent in answers of
//! nodes from before hash slots, whose clusters route by crc32c); or `1` + error code u8 +
//! message.
//!
//! A node starting on an empty data directory first asks the members it was given what the
//! cluster records of its id (a *member lookup*, tag [`MEMBER_LOOKUP_TAG`], allowed to
//! guests, answered from the local directory without a proposal): request = tag u8, node id
//! u64. Response = `0` (unknown) or `1`, status u8, incarnation u64 (0 when none recorded).

use super::join_credential::{decode_authorized_join, JoinCredential, AUTHORIZED_JOIN_TAG};
use super::reconcile::check_removal;
use super::router::{KeyRouting, Router};
use super::{Directory, DirectoryCommand, MemberStatus, NodeHandle, StateMachine};
use crate::codec::{DecodeError, Decoder, Encoder};
use crate::config::SHARDS_MAX;
use crate::error::{Error, ErrorCode};
use crate::transport::handshake::Incarnation;
use crate::transport::{LinkState, Transport};
use ppdb_raft::{Membership, NodeId, ProposeError};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::watch;

/// First byte of a membership request between nodes (shard batches use another tag).
pub const MEMBERSHIP_REQUEST_TAG: u8 = 2;
/// First byte of a member lookup.
pub const MEMBER_LOOKUP_TAG: u8 = 3;
/// Longest error message or address accepted in a response.
const TEXT_BYTES_MAX: usize = 4096;
/// Most members a response may list.
const MEMBERS_MAX: usize = 4096;
/// Pause between attempts while the meta group has no leader.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// What a member tells a node it admitted: enough to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    /// Number of data shards.
    pub shards: u32,
    /// How the cluster routes keys to them.
    pub routing: KeyRouting,
    /// Peer addresses of the members not removed (the newcomer included once recorded).
    pub members: BTreeMap<NodeId, SocketAddr>,
}

/// The wire code of a key routing scheme.
fn routing_code(routing: KeyRouting) -> u8 {
    match routing {
        KeyRouting::Crc32cModulo => 0,
        KeyRouting::HashSlots => 1,
    }
}

/// Encodes a membership request for the transport.
pub fn encode_request(command: &DirectoryCommand) -> Vec<u8> {
    let mut bytes = vec![MEMBERSHIP_REQUEST_TAG];
    bytes.extend_from_slice(&command.encode());
    bytes
}

fn decode_request(bytes: &[u8]) -> Result<DirectoryCommand, String> {
    match bytes.split_first() {
        Some((&MEMBERSHIP_REQUEST_TAG, command)) => {
            DirectoryCommand::decode(command).map_err(|e| e.to_string())
        }
        _ => Err("not a membership request".into()),
    }
}

fn encode_response(outcome: &Result<Admission, Error>) -> Vec<u8> {
    let mut e = Encoder::default();
    match outcome {
        Ok(admission) => {
            e.u8(0);
            e.u32(admission.shards);
            e.u32(u32::try_from(admission.members.len()).unwrap_or(u32::MAX));
            for (id, addr) in &admission.members {
                e.u64(id.0);
                e.bytes(addr.to_string().as_bytes());
            }
            e.u8(routing_code(admission.routing));
        }
        Err(error) => {
            e.u8(1);
            e.u8(error.code().to_wire());
            e.bytes(error.to_string().as_bytes());
        }
    }
    e.finish()
}

/// Decodes the answer of node `from` (0 when unknown) to a membership request.
pub fn decode_response(from: u64, bytes: &[u8]) -> Result<Result<Admission, Error>, DecodeError> {
    let mut d = Decoder::new(bytes, "membership response");
    let outcome = match d.u8()? {
        0 => {
            let shards = d.u32()?;
            if shards == 0 || shards > SHARDS_MAX {
                return Err(d.error("shard count out of range"));
            }
            let count = d.count(MEMBERS_MAX, 10)?;
            let mut members = BTreeMap::new();
            for _ in 0..count {
                let id = NodeId(d.u64()?);
                let text = d.bytes(TEXT_BYTES_MAX)?;
                let addr = std::str::from_utf8(text)
                    .ok()
                    .and_then(|t| t.parse().ok())
                    .ok_or_else(|| d.error("bad member address"))?;
                members.insert(id, addr);
            }
            let routing = match d.remaining() {
                0 => KeyRouting::Crc32cModulo,
                _ => match d.u8()? {
                    0 => KeyRouting::Crc32cModulo,
                    1 => KeyRouting::HashSlots,
                    _ => return Err(d.error("unknown key routing")),
                },
            };
            Ok(Admission { shards, routing, members })
        }
        1 => {
            let code = ErrorCode::from_wire(d.u8()?).ok_or_else(|| d.error("unknown error code"))?;
            let message = String::from_utf8_lossy(d.bytes(TEXT_BYTES_MAX)?).into_owned();
            Err(Error::Remote { node: from, code, message })
        }
        _ => return Err(d.error("unknown membership outcome")),
    };
    d.finish()?;
    Ok(outcome)
}

/// What a member's directory records of a node id, as a lookup answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberRecord {
    /// Its lifecycle status.
    pub status: MemberStatus,
    /// Its incarnation, if recorded.
    pub incarnation: Option<Incarnation>,
}

/// Encodes a lookup of node `node`'s record.
pub fn encode_lookup(node: NodeId) -> Vec<u8> {
    let mut bytes = vec![MEMBER_LOOKUP_TAG];
    bytes.extend_from_slice(&node.0.to_le_bytes());
    bytes
}

fn decode_lookup(bytes: &[u8]) -> Result<NodeId, DecodeError> {
    let mut d = Decoder::new(bytes, "member lookup");
    if d.u8()? != MEMBER_LOOKUP_TAG {
        return Err(d.error("not a member lookup"));
    }
    let node = NodeId(d.u64()?);
    d.finish()?;
    Ok(node)
}

fn encode_record(record: Option<MemberRecord>) -> Vec<u8> {
    let mut e = Encoder::default();
    match record {
        None => e.u8(0),
        Some(record) => {
            e.u8(1);
            e.u8(record.status.code());
            e.u64(record.incarnation.map_or(0, |i| i.0));
        }
    }
    e.finish()
}

/// Decodes the answer to a member lookup.
pub fn decode_record(bytes: &[u8]) -> Result<Option<MemberRecord>, DecodeError> {
    let mut d = Decoder::new(bytes, "member record");
    let record = match d.u8()? {
        0 => None,
        1 => {
            let status = MemberStatus::from_code(d.u8()?).ok_or_else(|| d.error("bad member status"))?;
            Some(MemberRecord { status, incarnation: Incarnation::from_raw(d.u64()?) })
        }
        _ => return Err(d.error("unknown member record")),
    };
    d.finish()?;
    Ok(record)
}

/// Submits membership changes on behalf of this node, whose groups replicate `S`.
pub struct MembershipService<S: StateMachine> {
    node: NodeId,
    router: Router,
    handle: NodeHandle<S>,
    transport: Transport,
    directory: watch::Receiver<Directory>,
    /// What a guest must present to be admitted.
    join_credential: JoinCredential,
}

impl<S: StateMachine> Clone for MembershipService<S> {
    fn clone(&self) -> Self {
        MembershipService {
            node: self.node,
            router: self.router,
            handle: self.handle.clone(),
            transport: self.transport.clone(),
            directory: self.directory.clone(),
            join_credential: self.join_credential.clone(),
        }
    }
}

impl<S: StateMachine> MembershipService<S> {
    /// A service proposing through `handle`, forwarding through `transport`, admitting guests
    /// that hold `join_credential` into a cluster whose keys `router` routes.
    pub fn new(
        node: NodeId,
        router: Router,
        handle: NodeHandle<S>,
        transport: Transport,
        directory: watch::Receiver<Directory>,
        join_credential: JoinCredential,
    ) -> MembershipService<S> {
        MembershipService { node, router, handle, transport, directory, join_credential }
    }

    /// The directory as this node last applied it.
    pub fn directory(&self) -> Directory {
        self.directory.borrow().clone()
    }

    /// The function libraries as this node last applied them.
    pub fn functions(&self) -> std::sync::Arc<crate::functions::Libraries> {
        std::sync::Arc::clone(self.directory.borrow().functions())
    }

    /// The directory as this node applies it, change by change.
    pub fn directory_updates(&self) -> watch::Receiver<Directory> {
        self.directory.clone()
    }

    /// Records `command` through the meta leader, forwarding and retrying through elections
    /// until the request deadline. Refusals by the directory are [`Error::State`].
    pub async fn submit(&self, command: DirectoryCommand) -> Result<Admission, Error> {
        let deadline = tokio::time::Instant::now() + self.handle.timeout();
        loop {
            let attempt = match self.handle.propose_membership(command.clone()).await {
                Ok(verdict) => return verdict.map(|()| self.admission()).map_err(Error::State),
                Err(Error::Consensus(ProposeError::NotLeader { leader: Some(leader) }))
                    if leader != self.node =>
                {
                    self.forward(leader, &command).await
                }
                Err(e) => Err(e),
            };
            match attempt {
                Ok(admission) => return Ok(admission),
                Err(e) if retryable(&e) && tokio::time::Instant::now() + RETRY_PAUSE < deadline => {
                    tracing::debug!(?command, error = %e, "membership change not recorded yet; retrying");
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Removes `node` from the cluster, refusing when some group would be left without a
    /// majority of its remaining voters reachable from here (it would stop committing).
    pub async fn remove(&self, node: NodeId) -> Result<(), Error> {
        let directory = self.directory();
        let Some(member) = directory.get(node) else {
            return Err(Error::State(format!("no node {node} in this cluster")));
        };
        if matches!(member.status, MemberStatus::Leaving | MemberStatus::Removed) {
            return Ok(());
        }
        let groups = self.handle.status().await?;
        // A shard placed on other nodes only: this node's replica is empty, so its placement
        // stands for its voters.
        let placement = directory.placement();
        let memberships: Vec<(u64, Membership)> = groups
            .iter()
            .map(|g| match placement.group(g.group) {
                Some(placed) if !g.raft.membership.contains(self.node) => {
                    (g.group.0, Membership::with_voters(placed.replicas.iter().copied()))
                }
                _ => (g.group.0, g.raft.membership.clone()),
            })
            .collect();
        let memberships: Vec<(u64, &Membership)> = memberships.iter().map(|(g, m)| (*g, m)).collect();
        let reachable = |id: NodeId| {
            id == self.node || matches!(self.transport.link_state(id), Some(LinkState::Connected))
        };
        check_removal(node, &memberships, reachable).map_err(Error::State)?;
        self.submit(DirectoryCommand::Leave { node }).await.map(|_| ())
    }

    async fn forward(&self, leader: NodeId, command: &DirectoryCommand) -> Result<Admission, Error> {
        let answer = self.transport.call(leader, encode_request(command), self.handle.timeout()).await?;
        match decode_response(leader.0, &answer) {
            Ok(outcome) => outcome.map(|_| self.admission()),
            Err(e) => Err(Error::Network { peer: leader.to_string(), reason: e.to_string() }),
        }
    }

    fn admission(&self) -> Admission {
        Admission {
            shards: u32::try_from(self.router.shard_count()).unwrap_or(SHARDS_MAX),
            routing: self.router.routing(),
            members: self.directory.borrow().live_addrs(),
        }
    }

    /// Answers a membership request from another node. A guest (a node asking to join) may
    /// only ask for its own admission, with the cluster's join credential
    /// ([`super::join_credential`]), and is answered once it is recorded; a member's forwarded
    /// command is proposed here only.
    pub async fn serve(&self, from: NodeId, guest: bool, request: &[u8]) -> Vec<u8> {
        if request.first() == Some(&MEMBER_LOOKUP_TAG) {
            return self.look_up(request);
        }
        let (token, request) = match request.first() {
            Some(&AUTHORIZED_JOIN_TAG) => match decode_authorized_join(request) {
                Ok((token, request)) => (Some(token), request),
                Err(e) => return encode_response(&Err(Error::State(format!("bad join request: {e}")))),
            },
            _ => (None, request),
        };
        if guest && !self.join_credential.admits(token) {
            tracing::warn!(guest = %from, presented_token = token.is_some(), "refused a join without the cluster's join credential");
            let why = match token {
                Some(_) => "the join token presented is not this cluster's",
                None => {
                    "a node must present the cluster's join token (--join-token or PPDB_JOIN_TOKEN) to join"
                }
            };
            return encode_response(&Err(Error::State(format!("join refused: {why}"))));
        }
        let outcome = match decode_request(request) {
            Err(reason) => Err(Error::State(format!("bad membership request: {reason}"))),
            Ok(command) if guest => match command {
                DirectoryCommand::Join { node, .. } if node == from => self.submit(command).await,
                _ => Err(Error::State("a node that is not a member may only ask to join".into())),
            },
            Ok(command) => match self.handle.propose_membership(command).await {
                Ok(verdict) => verdict.map(|()| self.admission()).map_err(Error::State),
                Err(e) => Err(e),
            },
        };
        encode_response(&outcome)
    }
}

impl<S: StateMachine> MembershipService<S> {
    /// Answers a member lookup from this node's directory; an undecodable lookup gets an
    /// empty answer, which no asker reads as a record.
    fn look_up(&self, request: &[u8]) -> Vec<u8> {
        match decode_lookup(request) {
            Ok(node) => encode_record(
                self.directory
                    .borrow()
                    .get(node)
                    .map(|m| MemberRecord { status: m.status, incarnation: m.incarnation }),
            ),
            Err(e) => {
                tracing::debug!(error = %e, "bad member lookup");
                Vec::new()
            }
        }
    }
}

/// Whether a failed attempt may succeed later (an election, a lost message).
fn retryable(error: &Error) -> bool {
    matches!(
        error.code(),
        ErrorCode::Consensus | ErrorCode::Network | ErrorCode::Timeout | ErrorCode::Partition
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_round_trip_and_garbage_is_an_error() {
        let members: BTreeMap<NodeId, SocketAddr> =
            [(NodeId(1), SocketAddr::from(([127, 0, 0, 1], 7101)))].into_iter().collect();
        let ok: Result<Admission, Error> =
            Ok(Admission { shards: 8, routing: KeyRouting::HashSlots, members: members.clone() });
        assert_eq!(decode_response(1, &encode_response(&ok)).ok().map(|r| r.ok()), Some(ok.ok()));
        // A node from before hash slots answers without the routing: its cluster's is crc32c.
        let old = Admission { shards: 8, routing: KeyRouting::Crc32cModulo, members: members.clone() };
        let mut without_routing = encode_response(&Ok(old.clone()));
        without_routing.pop();
        assert_eq!(decode_response(1, &without_routing).ok().map(|r| r.ok()), Some(Some(old)));
        let new = Admission { shards: 8, routing: KeyRouting::HashSlots, members };
        let mut zero_shards = encode_response(&Ok(new));
        zero_shards[1..5].copy_from_slice(&0u32.to_le_bytes());
        assert!(decode_response(1, &zero_shards).is_err());
        let refused: Result<Admission, Error> = Err(Error::State("node 4 was removed".into()));
        let decoded = decode_response(1, &encode_response(&refused));
        assert!(
            matches!(&decoded, Ok(Err(Error::Remote { node: 1, code: ErrorCode::State, message })) if message.contains("node 4 was removed")),
            "{decoded:?}"
        );
        assert!(decode_response(1, &[7, 1, 2]).is_err());
        let command = DirectoryCommand::Leave { node: NodeId(3) };
        assert_eq!(decode_request(&encode_request(&command)), Ok(command));
        assert_eq!(decode_lookup(&encode_lookup(NodeId(3))).ok(), Some(NodeId(3)));
        let record = MemberRecord { status: MemberStatus::Active, incarnation: Some(Incarnation(5)) };
        assert_eq!(decode_record(&encode_record(Some(record))).ok(), Some(Some(record)));
        assert_eq!(decode_record(&encode_record(None)).ok(), Some(None));
        assert!(decode_record(&[1, 9, 0]).is_err());
        assert!(decode_request(&[1, 0, 0]).is_err());
    }
}

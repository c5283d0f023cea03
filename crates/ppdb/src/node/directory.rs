//! The cluster directory: every node ever admitted, its peer address and its place in the
//! lifecycle. It is the state machine of the meta group (group 0), so every member holds the
//! same directory and changes to it are linearizable.
//!
//! The directory says what the membership *should* be; the group leaders make each Raft
//! group's membership follow it (see [`super::reconcile`]). A node goes
//! JOINING → ACTIVE → LEAVING → REMOVED; node ids are never reused, so a removed node's old
//! votes can never count twice.
//!
//! Each member's record also holds its *incarnation* ([`Incarnation`]), the random id its
//! data directory was created with: given at the join, or registered by a founding member once
//! the cluster runs. Peers refuse a node presenting another incarnation under a recorded id
//! (its data was lost, and with it its votes and acknowledged entries), and a recorded
//! incarnation is never replaced: such a node must be removed and join again with a new id.

use super::lifecycle::PeerState;
use super::placement::{Placement, PlacementChange};
use super::state_machine::StateMachine;
use crate::acl::{AclChange, AclUsers};
use crate::codec::{DecodeError, Decoder, Encoder};
use crate::functions::{FunctionChange, Libraries};
use crate::transport::handshake::Incarnation;
use ppdb_raft::{LogIndex, NodeId};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

/// Longest peer address text accepted from the log or a snapshot.
const ADDR_BYTES_MAX: usize = 256;
/// Most members a directory snapshot may list.
const MEMBERS_MAX: usize = 4096;
/// Version byte of the snapshot encoding (5: the placement after the function libraries).
const SNAPSHOT_VERSION: u8 = 5;
/// The snapshot encoding with function libraries but before placements, still read.
const SNAPSHOT_VERSION_WITHOUT_PLACEMENT: u8 = 4;
/// The snapshot encoding with ACL users but before function libraries, still read.
const SNAPSHOT_VERSION_WITHOUT_FUNCTIONS: u8 = 3;
/// The snapshot encoding with incarnations but before ACL users, still read.
const SNAPSHOT_VERSION_WITHOUT_USERS: u8 = 2;
/// The snapshot encoding before incarnations, still read.
const SNAPSHOT_VERSION_WITHOUT_INCARNATIONS: u8 = 1;

/// Where a member is in its lifecycle, as the cluster agreed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberStatus {
    /// Admitted; being added to every group as a learner and promoted once caught up.
    Joining,
    /// A voter everywhere.
    Active,
    /// Being removed (asked to leave, removed by an operator, or failed past the grace period).
    Leaving,
    /// Out of every group. Its id is never admitted again.
    Removed,
}

impl MemberStatus {
    /// The seed's node state for this status.
    pub fn peer_state(self) -> PeerState {
        match self {
            MemberStatus::Joining => PeerState::Joining,
            MemberStatus::Active => PeerState::Active,
            MemberStatus::Leaving => PeerState::Leaving,
            MemberStatus::Removed => PeerState::Inactive,
        }
    }

    /// The status as one byte on the wire and in snapshots.
    pub fn code(self) -> u8 {
        match self {
            MemberStatus::Joining => 1,
            MemberStatus::Active => 2,
            MemberStatus::Leaving => 3,
            MemberStatus::Removed => 4,
        }
    }

    /// The status of a byte written by [`MemberStatus::code`].
    pub fn from_code(code: u8) -> Option<MemberStatus> {
        Some(match code {
            1 => MemberStatus::Joining,
            2 => MemberStatus::Active,
            3 => MemberStatus::Leaving,
            4 => MemberStatus::Removed,
            _ => return None,
        })
    }
}

/// One member of the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// Where its peer transport listens.
    pub peer_addr: SocketAddr,
    /// Its lifecycle status.
    pub status: MemberStatus,
    /// The incarnation it joined or registered with; `None` until a founding member
    /// registered it.
    pub incarnation: Option<Incarnation>,
}

/// A change to the directory, proposed through the meta group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectoryCommand {
    /// Admit `node` (a new id) listening on `peer_addr`, as JOINING.
    Join {
        /// The new node.
        node: NodeId,
        /// Its peer address.
        peer_addr: SocketAddr,
        /// Its incarnation (`None` in entries written before incarnations existed).
        incarnation: Option<Incarnation>,
    },
    /// Record the incarnation of member `node` (a founding member, which the bootstrap
    /// directory lists without one). Refused if another one is recorded.
    Register {
        /// The member.
        node: NodeId,
        /// Its incarnation.
        incarnation: Incarnation,
    },
    /// `node` is a voter in every group: JOINING → ACTIVE.
    Activate {
        /// The node.
        node: NodeId,
    },
    /// Start removing `node`: JOINING or ACTIVE → LEAVING.
    Leave {
        /// The node.
        node: NodeId,
    },
    /// `node` is out of every data group: LEAVING → REMOVED.
    Retire {
        /// The node.
        node: NodeId,
    },
    /// A change to the ACL users (ACL SETUSER/DELUSER, the ACL file, `requirepass`).
    Acl(AclChange),
    /// A change to the function libraries (FUNCTION LOAD, DELETE, FLUSH, RESTORE).
    Functions(FunctionChange),
    /// A change to where shard replicas live (a move, or a group reporting it settled).
    Placement(PlacementChange),
}

impl DirectoryCommand {
    /// The node the command is about (none for an ACL, function or placement change).
    pub fn node(&self) -> Option<NodeId> {
        match self {
            DirectoryCommand::Join { node, .. }
            | DirectoryCommand::Register { node, .. }
            | DirectoryCommand::Activate { node }
            | DirectoryCommand::Leave { node }
            | DirectoryCommand::Retire { node } => Some(*node),
            DirectoryCommand::Acl(_) | DirectoryCommand::Functions(_) | DirectoryCommand::Placement(_) => {
                None
            }
        }
    }

    /// The command as a log entry.
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::default();
        match self {
            DirectoryCommand::Join { node, peer_addr, incarnation } => {
                e.u8(6);
                e.u64(node.0);
                e.bytes(peer_addr.to_string().as_bytes());
                e.u64(incarnation.map_or(0, |i| i.0));
            }
            DirectoryCommand::Register { node, incarnation } => {
                e.u8(5);
                e.u64(node.0);
                e.u64(incarnation.0);
            }
            DirectoryCommand::Activate { node } => {
                e.u8(2);
                e.u64(node.0);
            }
            DirectoryCommand::Leave { node } => {
                e.u8(3);
                e.u64(node.0);
            }
            DirectoryCommand::Retire { node } => {
                e.u8(4);
                e.u64(node.0);
            }
            DirectoryCommand::Acl(change) => {
                e.u8(7);
                change.encode(&mut e);
            }
            DirectoryCommand::Functions(change) => {
                e.u8(8);
                change.encode(&mut e);
            }
            DirectoryCommand::Placement(change) => {
                e.u8(9);
                change.encode(&mut e);
            }
        }
        e.finish()
    }

    /// Decodes a command from a log entry (or a forwarded request).
    pub fn decode(bytes: &[u8]) -> Result<DirectoryCommand, DecodeError> {
        let mut d = Decoder::new(bytes, "directory command");
        let command = match d.u8()? {
            1 => DirectoryCommand::Join {
                node: NodeId(d.u64()?),
                peer_addr: decode_addr(&mut d)?,
                incarnation: None,
            },
            6 => DirectoryCommand::Join {
                node: NodeId(d.u64()?),
                peer_addr: decode_addr(&mut d)?,
                incarnation: Incarnation::from_raw(d.u64()?),
            },
            5 => {
                let node = NodeId(d.u64()?);
                let incarnation = Incarnation::from_raw(d.u64()?).ok_or_else(|| d.error("incarnation 0"))?;
                DirectoryCommand::Register { node, incarnation }
            }
            2 => DirectoryCommand::Activate { node: NodeId(d.u64()?) },
            3 => DirectoryCommand::Leave { node: NodeId(d.u64()?) },
            4 => DirectoryCommand::Retire { node: NodeId(d.u64()?) },
            7 => DirectoryCommand::Acl(AclChange::decode(&mut d)?),
            8 => DirectoryCommand::Functions(FunctionChange::decode(&mut d)?),
            9 => DirectoryCommand::Placement(PlacementChange::decode(&mut d)?),
            _ => return Err(d.error("unknown directory command")),
        };
        d.finish()?;
        Ok(command)
    }
}

fn decode_addr(d: &mut Decoder<'_>) -> Result<SocketAddr, DecodeError> {
    let text = d.bytes(ADDR_BYTES_MAX)?;
    std::str::from_utf8(text).ok().and_then(|t| t.parse().ok()).ok_or_else(|| d.error("bad peer address"))
}

/// The outcome of a directory command: done, or refused with the reason.
pub type DirectoryOutput = Result<(), String>;

/// The members of the cluster, by id, its ACL users, its function libraries and where its
/// shards' replicas live.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directory {
    members: BTreeMap<NodeId, Member>,
    /// Shared, so that the copies the node hands out (one per applied change) stay cheap.
    users: Arc<AclUsers>,
    /// Shared for the same reason.
    functions: Arc<Libraries>,
    /// Shared for the same reason.
    placement: Arc<Placement>,
}

impl Directory {
    /// The directory of a new cluster: the bootstrap members, all ACTIVE, and its shards'
    /// initial placement.
    pub fn bootstrap(members: &BTreeMap<u64, SocketAddr>, placement: Placement) -> Directory {
        let members = members
            .iter()
            .map(|(&id, &peer_addr)| {
                (NodeId(id), Member { peer_addr, status: MemberStatus::Active, incarnation: None })
            })
            .collect();
        Directory {
            members,
            users: Arc::default(),
            functions: Arc::default(),
            placement: Arc::new(placement),
        }
    }

    /// Where the shards' replicas live.
    pub fn placement(&self) -> &Placement {
        &self.placement
    }

    /// The ACL users every node enforces.
    pub fn users(&self) -> &Arc<AclUsers> {
        &self.users
    }

    /// The function libraries FCALL finds functions in.
    pub fn functions(&self) -> &Arc<Libraries> {
        &self.functions
    }

    /// Every member, removed ones included.
    pub fn members(&self) -> &BTreeMap<NodeId, Member> {
        &self.members
    }

    /// A member's record.
    pub fn get(&self, node: NodeId) -> Option<&Member> {
        self.members.get(&node)
    }

    /// Peer addresses of every member not removed: the nodes to keep connections with.
    pub fn live_addrs(&self) -> BTreeMap<NodeId, SocketAddr> {
        self.members
            .iter()
            .filter(|(_, m)| m.status != MemberStatus::Removed)
            .map(|(&id, m)| (id, m.peer_addr))
            .collect()
    }

    /// Members with the given status.
    pub fn with_status(&self, status: MemberStatus) -> impl Iterator<Item = NodeId> + '_ {
        self.members.iter().filter(move |(_, m)| m.status == status).map(|(&id, _)| id)
    }

    /// Records `incarnation` for member `node` unless another one is recorded: a retried
    /// join or registration is accepted, a node whose data was lost is refused.
    fn register(&mut self, node: NodeId, incarnation: Option<Incarnation>) -> DirectoryOutput {
        let Some(member) = self.members.get_mut(&node) else {
            return Err(format!("no node {node} in this cluster"));
        };
        match (member.incarnation, incarnation) {
            (Some(recorded), Some(presented)) if recorded != presented => Err(format!(
                "node {node} is already a member with incarnation {recorded}, not {presented}: its \
                 data directory was lost or replaced; remove it with `ppdb cluster remove {node}` \
                 and start it on an empty data directory with a new --id and --join"
            )),
            (None, Some(presented)) => {
                member.incarnation = Some(presented);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Applies `command`; refused commands change nothing.
    pub fn execute(&mut self, command: &DirectoryCommand) -> DirectoryOutput {
        let Some(node) = command.node() else {
            return match command {
                DirectoryCommand::Acl(change) => {
                    Arc::make_mut(&mut self.users).apply(change).map_err(|e| e.to_string())
                }
                DirectoryCommand::Functions(change) => {
                    Arc::make_mut(&mut self.functions).apply(change).map_err(|e| e.to_string())
                }
                DirectoryCommand::Placement(change) => {
                    let members = &self.members;
                    let may_hold = |n| members.get(&n).is_some_and(|m| m.status == MemberStatus::Active);
                    Arc::make_mut(&mut self.placement).apply(change, may_hold).map_err(|e| e.to_string())
                }
                _ => Ok(()),
            };
        };
        let current = self.members.get(&node).map(|m| m.status);
        let next = match (command, current) {
            (DirectoryCommand::Join { .. }, _) if node.0 == 0 => return Err("node id 0 is reserved".into()),
            (
                DirectoryCommand::Join { .. } | DirectoryCommand::Register { .. },
                Some(MemberStatus::Removed),
            ) => return Err(format!("node {node} was removed from this cluster; join with a new id")),
            (DirectoryCommand::Register { incarnation, .. }, _) => {
                return self.register(node, Some(*incarnation))
            }
            (DirectoryCommand::Join { peer_addr, incarnation, .. }, Some(_)) => {
                let known = self.members.get(&node).map(|m| m.peer_addr);
                return if known == Some(*peer_addr) {
                    self.register(node, *incarnation)
                } else {
                    Err(format!(
                        "node {node} is already a member, at {}",
                        known.map_or_else(String::new, |a| a.to_string())
                    ))
                };
            }
            (DirectoryCommand::Join { peer_addr, incarnation, .. }, None) => {
                if let Some((other, _)) = self
                    .members
                    .iter()
                    .find(|(_, m)| m.peer_addr == *peer_addr && m.status != MemberStatus::Removed)
                {
                    return Err(format!("{peer_addr} is already the address of node {other}"));
                }
                let member = Member {
                    peer_addr: *peer_addr,
                    status: MemberStatus::Joining,
                    incarnation: *incarnation,
                };
                self.members.insert(node, member);
                return Ok(());
            }
            (
                DirectoryCommand::Acl(_) | DirectoryCommand::Functions(_) | DirectoryCommand::Placement(_),
                _,
            ) => return Ok(()),
            (_, None) => return Err(format!("no node {node} in this cluster")),
            (DirectoryCommand::Activate { .. }, Some(MemberStatus::Joining)) => MemberStatus::Active,
            (DirectoryCommand::Activate { .. }, Some(s)) => s,
            (DirectoryCommand::Leave { .. }, Some(MemberStatus::Joining | MemberStatus::Active)) => {
                let others_active = self.with_status(MemberStatus::Active).filter(|&n| n != node).count();
                if others_active == 0 {
                    return Err(format!("node {node} is the last active member; it cannot leave"));
                }
                MemberStatus::Leaving
            }
            (DirectoryCommand::Leave { .. }, Some(s)) => s,
            (DirectoryCommand::Retire { .. }, Some(MemberStatus::Leaving | MemberStatus::Removed)) => {
                MemberStatus::Removed
            }
            (DirectoryCommand::Retire { .. }, Some(_)) => {
                return Err(format!("node {node} is not leaving; it cannot be retired"))
            }
        };
        if let Some(member) = self.members.get_mut(&node) {
            member.status = next;
        }
        Ok(())
    }
}

impl StateMachine for Directory {
    type Query = Infallible;
    type Output = DirectoryOutput;

    fn apply(&mut self, _index: LogIndex, command: &[u8]) -> Result<DirectoryOutput, String> {
        Ok(match DirectoryCommand::decode(command) {
            Ok(command) => self.execute(&command),
            // Only this module writes directory entries; an undecodable one is refused by
            // every replica alike, so they stay identical.
            Err(e) => Err(format!("undecodable directory command: {e}")),
        })
    }

    fn query(&self, query: &Infallible, _now_ms: u64) -> DirectoryOutput {
        match *query {}
    }

    fn snapshot(&self) -> Vec<u8> {
        let mut e = Encoder::default();
        e.u8(SNAPSHOT_VERSION);
        e.u32(u32::try_from(self.members.len()).unwrap_or(u32::MAX));
        for (id, member) in &self.members {
            e.u64(id.0);
            e.bytes(member.peer_addr.to_string().as_bytes());
            e.u8(member.status.code());
            e.u64(member.incarnation.map_or(0, |i| i.0));
        }
        self.users.encode(&mut e);
        self.functions.encode(&mut e);
        self.placement.encode(&mut e);
        e.finish()
    }

    fn restore(data: &[u8]) -> Result<Directory, String> {
        if data.is_empty() {
            return Ok(Directory::default());
        }
        let decode = || -> Result<Directory, DecodeError> {
            let mut d = Decoder::new(data, "directory snapshot");
            let version = d.u8()?;
            if !matches!(
                version,
                SNAPSHOT_VERSION
                    | SNAPSHOT_VERSION_WITHOUT_PLACEMENT
                    | SNAPSHOT_VERSION_WITHOUT_FUNCTIONS
                    | SNAPSHOT_VERSION_WITHOUT_USERS
                    | SNAPSHOT_VERSION_WITHOUT_INCARNATIONS
            ) {
                return Err(d.error("unknown directory snapshot version"));
            }
            let count = d.count(MEMBERS_MAX, 10)?;
            let mut members = BTreeMap::new();
            for _ in 0..count {
                let id = NodeId(d.u64()?);
                let peer_addr = decode_addr(&mut d)?;
                let status = MemberStatus::from_code(d.u8()?).ok_or_else(|| d.error("bad member status"))?;
                let incarnation = if version == SNAPSHOT_VERSION_WITHOUT_INCARNATIONS {
                    None
                } else {
                    Incarnation::from_raw(d.u64()?)
                };
                members.insert(id, Member { peer_addr, status, incarnation });
            }
            let users = if version >= SNAPSHOT_VERSION_WITHOUT_FUNCTIONS {
                AclUsers::decode(&mut d)?
            } else {
                AclUsers::default()
            };
            let functions = if version >= SNAPSHOT_VERSION_WITHOUT_PLACEMENT {
                Libraries::decode(&mut d)?
            } else {
                Libraries::default()
            };
            let placement = if version == SNAPSHOT_VERSION {
                Placement::decode(&mut d)?
            } else {
                Placement::everywhere()
            };
            d.finish()?;
            Ok(Directory {
                members,
                users: Arc::new(users),
                functions: Arc::new(functions),
                placement: Arc::new(placement),
            })
        };
        decode().map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::wal::GroupId;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn three() -> Directory {
        Directory::bootstrap(
            &[(1, addr(1)), (2, addr(2)), (3, addr(3))].into_iter().collect(),
            Placement::everywhere(),
        )
    }

    fn status(d: &Directory, node: u64) -> Option<MemberStatus> {
        d.get(NodeId(node)).map(|m| m.status)
    }

    #[test]
    fn a_node_goes_through_the_lifecycle_once() {
        let mut d = three();
        let join = DirectoryCommand::Join {
            node: NodeId(4),
            peer_addr: addr(4),
            incarnation: Some(Incarnation(44)),
        };
        assert_eq!(d.execute(&join), Ok(()));
        assert_eq!(d.execute(&join), Ok(()), "a retried join is accepted");
        assert_eq!(status(&d, 4), Some(MemberStatus::Joining));
        assert!(d.execute(&DirectoryCommand::Retire { node: NodeId(4) }).is_err());
        assert_eq!(d.execute(&DirectoryCommand::Activate { node: NodeId(4) }), Ok(()));
        assert_eq!(d.execute(&DirectoryCommand::Leave { node: NodeId(4) }), Ok(()));
        assert_eq!(status(&d, 4), Some(MemberStatus::Leaving));
        assert_eq!(d.execute(&DirectoryCommand::Retire { node: NodeId(4) }), Ok(()));
        assert_eq!(status(&d, 4), Some(MemberStatus::Removed));
        let again = d.execute(&join);
        assert!(again.as_ref().is_err_and(|e| e.contains("new id")), "{again:?}");
        assert!(!d.live_addrs().contains_key(&NodeId(4)));
    }

    #[test]
    fn conflicting_joins_and_the_last_member_are_refused() {
        let mut d = three();
        assert!(d
            .execute(&DirectoryCommand::Join { node: NodeId(2), peer_addr: addr(9), incarnation: None })
            .is_err());
        assert!(d
            .execute(&DirectoryCommand::Join { node: NodeId(5), peer_addr: addr(2), incarnation: None })
            .is_err());
        assert!(d
            .execute(&DirectoryCommand::Join { node: NodeId(0), peer_addr: addr(9), incarnation: None })
            .is_err());
        assert!(d.execute(&DirectoryCommand::Leave { node: NodeId(7) }).is_err());
        assert_eq!(d.execute(&DirectoryCommand::Leave { node: NodeId(1) }), Ok(()));
        assert_eq!(d.execute(&DirectoryCommand::Leave { node: NodeId(2) }), Ok(()));
        let last = d.execute(&DirectoryCommand::Leave { node: NodeId(3) });
        assert!(last.is_err_and(|e| e.contains("last active")));
    }

    #[test]
    fn commands_and_snapshots_round_trip() {
        let commands = [
            DirectoryCommand::Join {
                node: NodeId(4),
                peer_addr: "[::1]:7104".parse().unwrap_or(addr(0)),
                incarnation: Some(Incarnation(4)),
            },
            DirectoryCommand::Register { node: NodeId(1), incarnation: Incarnation(1) },
            DirectoryCommand::Activate { node: NodeId(4) },
            DirectoryCommand::Leave { node: NodeId(4) },
            DirectoryCommand::Retire { node: NodeId(4) },
            DirectoryCommand::Acl(
                AclChange::set_user(b"app", &["on", ">pw", "~app:*", "+@read"]).expect("valid"),
            ),
            DirectoryCommand::Functions(FunctionChange::Load {
                library: crate::functions::Library {
                    name: "lib".into(),
                    source: b"#!lua name=lib\n".to_vec(),
                    functions: vec![crate::functions::FunctionInfo {
                        name: "f".into(),
                        description: None,
                        flags: crate::functions::FunctionFlags::default(),
                    }],
                },
                replace: false,
            }),
        ];
        let mut d = three();
        for command in &commands {
            assert_eq!(DirectoryCommand::decode(&command.encode()).as_ref(), Ok(command));
            assert_eq!(d.apply(LogIndex(1), &command.encode()), Ok(Ok(())));
        }
        assert!(d.users().authenticate("app", b"pw").is_some(), "ACL users are directory state");
        assert!(d.functions().function(b"f").is_some(), "function libraries are directory state");
        assert_eq!(Directory::restore(&d.snapshot()), Ok(d.clone()));
        let mut without_placement = d.snapshot();
        without_placement[0] = SNAPSHOT_VERSION_WITHOUT_PLACEMENT;
        without_placement.truncate(without_placement.len() - placement_bytes(&d));
        let old = Directory::restore(&without_placement).expect("a snapshot written before placements");
        assert_eq!((old.members(), old.functions()), (d.members(), d.functions()));
        assert!(!old.placement().is_placed(), "such a cluster keeps every shard on every node");
        let mut without_functions = without_placement;
        without_functions[0] = SNAPSHOT_VERSION_WITHOUT_FUNCTIONS;
        without_functions.truncate(without_functions.len() - functions_bytes(&d));
        let old = Directory::restore(&without_functions).expect("a snapshot written before functions");
        assert_eq!((old.members(), old.users()), (d.members(), d.users()));
        assert!(old.functions().iter().next().is_none());
        let mut without_users = without_functions;
        without_users[0] = SNAPSHOT_VERSION_WITHOUT_USERS;
        without_users.truncate(without_users.len() - users_bytes(&d));
        let old = Directory::restore(&without_users).expect("a snapshot written before ACL users");
        assert_eq!(old.members(), d.members());
        assert!(!old.users().is_configured());
        assert_eq!(Directory::restore(&[]), Ok(Directory::default()));
        assert!(Directory::restore(&[9, 9, 9]).is_err());
        let legacy_join = [&[1u8][..], &4u64.to_le_bytes(), &10u32.to_le_bytes(), b"[::1]:7104"].concat();
        assert!(
            matches!(
                DirectoryCommand::decode(&legacy_join),
                Ok(DirectoryCommand::Join { incarnation: None, .. })
            ),
            "a join logged before incarnations"
        );
        assert!(matches!(d.apply(LogIndex(2), &[77]), Ok(Err(_))), "refused alike by every replica");
    }

    /// The bytes `d`'s placement takes at the end of its snapshot.
    fn placement_bytes(d: &Directory) -> usize {
        let mut e = Encoder::default();
        d.placement().encode(&mut e);
        e.finish().len()
    }

    #[test]
    fn placements_change_through_commands_and_survive_snapshots() {
        let members = [(1, addr(1)), (2, addr(2)), (3, addr(3)), (4, addr(4))].into_iter().collect();
        let ids: Vec<NodeId> = (1..=4).map(NodeId).collect();
        let mut d = Directory::bootstrap(&members, Placement::initial(4, &ids, 3));
        let replicas = [NodeId(1), NodeId(2), NodeId(4)].into_iter().collect();
        let place = DirectoryCommand::Placement(PlacementChange::Place { group: GroupId(1), replicas });
        assert_eq!(DirectoryCommand::decode(&place.encode()).as_ref(), Ok(&place));
        assert_eq!(d.apply(LogIndex(1), &place.encode()), Ok(Ok(())));
        assert_eq!(d.placement().hosts(GroupId(1), NodeId(4)), Some(true));
        assert_eq!(d.placement().moving().collect::<Vec<_>>(), vec![GroupId(1)]);
        assert_eq!(Directory::restore(&d.snapshot()), Ok(d.clone()));
        assert_eq!(d.execute(&DirectoryCommand::Leave { node: NodeId(3) }), Ok(()));
        let to_leaving = [NodeId(1), NodeId(3), NodeId(4)].into_iter().collect();
        let refused = d.execute(&DirectoryCommand::Placement(PlacementChange::Place {
            group: GroupId(2),
            replicas: to_leaving,
        }));
        assert!(
            refused.is_err_and(|e| e.contains("not an active member")),
            "a leaving node gets no new replica"
        );
    }

    /// The bytes `d`'s function libraries take at the end of its snapshot.
    fn functions_bytes(d: &Directory) -> usize {
        let mut e = Encoder::default();
        d.functions().encode(&mut e);
        e.finish().len()
    }

    /// The bytes `d`'s users take in its snapshot, before the libraries.
    fn users_bytes(d: &Directory) -> usize {
        let mut e = Encoder::default();
        d.users().encode(&mut e);
        e.finish().len()
    }

    #[test]
    fn a_recorded_incarnation_is_never_replaced() {
        let mut d = three();
        let register =
            |node, i| DirectoryCommand::Register { node: NodeId(node), incarnation: Incarnation(i) };
        assert_eq!(d.execute(&register(3, 30)), Ok(()), "a founding member registers");
        assert_eq!(d.get(NodeId(3)).and_then(|m| m.incarnation), Some(Incarnation(30)));
        assert_eq!(d.execute(&register(3, 30)), Ok(()), "a retried registration is accepted");
        let lost = d.execute(&register(3, 31));
        assert!(lost.as_ref().is_err_and(|e| e.contains("ppdb cluster remove 3")), "{lost:?}");
        let rejoin = DirectoryCommand::Join {
            node: NodeId(3),
            peer_addr: addr(3),
            incarnation: Some(Incarnation(32)),
        };
        assert!(d.execute(&rejoin).is_err(), "an ACTIVE id with lost data cannot join again");
        assert_eq!(d.get(NodeId(3)).and_then(|m| m.incarnation), Some(Incarnation(30)));
        assert_eq!(d.get(NodeId(3)).map(|m| m.status), Some(MemberStatus::Active));
        assert!(d.execute(&register(9, 90)).is_err(), "not a member");
        assert_eq!(Directory::restore(&d.snapshot()), Ok(d.clone()));
    }
}

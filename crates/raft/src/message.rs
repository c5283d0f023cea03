//! What Raft nodes say to each other, and what they log.
//!
//! The seed's message types map onto these bodies (see [`MessageType`]): HEARTBEAT is
//! [`MessageBody::Heartbeat`] and its response, VOTE the (pre-)vote exchange and leader
//! transfer's `TimeoutNow`, APPEND the append exchange, SNAPSHOT the snapshot install, and
//! COMMAND a client's request (a proposal's payload, or a follower's ReadIndex forwarded to the
//! leader).

use crate::membership::{ConfChange, Membership};
use crate::types::{LogIndex, NodeId, Term};
use std::sync::Arc;

/// One entry of the replicated log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The entry's position in the log.
    pub index: LogIndex,
    /// The term of the leader that created it.
    pub term: Term,
    /// What the entry carries.
    pub payload: EntryPayload,
}

/// The content of a log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryPayload {
    /// The empty entry a new leader appends to commit entries of earlier terms.
    Empty,
    /// A client command (the seed's COMMAND), opaque to Raft.
    Command(Vec<u8>),
    /// A membership change; it takes effect on every node as soon as it is in the log.
    ConfChange(ConfChange),
}

/// What [`Entry::size_bytes`] counts for an entry besides its payload: index, term, payload
/// tag and length (an encoding of an entry may use fewer bytes, never more).
pub const ENTRY_HEADER_BYTES: usize = 24;

impl Entry {
    /// Approximate encoded size, used to bound message sizes: at least the size of any
    /// encoding whose per-entry header fits in [`ENTRY_HEADER_BYTES`].
    pub fn size_bytes(&self) -> usize {
        ENTRY_HEADER_BYTES
            + match &self.payload {
                EntryPayload::Empty => 0,
                EntryPayload::Command(data) => data.len(),
                EntryPayload::ConfChange(_) => 16,
            }
    }
}

/// The state a node must persist before it answers a vote or acknowledges an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HardState {
    /// The latest term this node has seen.
    pub term: Term,
    /// The candidate this node voted for in `term`, if any.
    pub vote: Option<NodeId>,
    /// The highest log index known to be committed.
    pub commit: LogIndex,
}

/// Where a snapshot sits in the log, and the membership in force at that point.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SnapshotMeta {
    /// The last log index the snapshot covers.
    pub index: LogIndex,
    /// The term of the entry at `index`.
    pub term: Term,
    /// The membership in force at `index`.
    pub membership: Membership,
}

/// A point-in-time image of the state machine, made by the application.
///
/// The data is shared (`Arc`) because the leader may stream the same snapshot to several
/// followers while keeping it for later ones.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// Position and membership.
    pub meta: SnapshotMeta,
    /// The application's serialized state, opaque to Raft.
    pub data: Arc<Vec<u8>>,
}

/// A message between two members of one Raft group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Sender.
    pub from: NodeId,
    /// Recipient.
    pub to: NodeId,
    /// The sender's term (for a pre-vote request: the term it would campaign in).
    pub term: Term,
    /// What is said.
    pub body: MessageBody,
}

/// The body of a [`Message`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageBody {
    /// Leader to follower: entries following `prev_index`/`prev_term`, and the leader's commit.
    Append {
        /// Index of the entry just before `entries`.
        prev_index: LogIndex,
        /// Term of the entry at `prev_index`.
        prev_term: Term,
        /// New entries, possibly none (a probe).
        entries: Vec<Entry>,
        /// The leader's commit index.
        commit: LogIndex,
    },
    /// Follower to leader: the outcome of an `Append` or `InstallSnapshot`.
    AppendResponse {
        /// Whether the follower refused because its log does not match at `index`.
        reject: bool,
        /// Accepted: the follower's last matching index. Rejected: the refused `prev_index`.
        index: LogIndex,
        /// Rejected: a guess of the last index where the logs may match (fast back-off).
        hint_index: LogIndex,
        /// Rejected: the follower's term at `hint_index`.
        hint_term: Term,
    },
    /// Leader to follower: "I am still leader"; carries a read round for ReadIndex.
    Heartbeat {
        /// The commit index the follower may adopt (never past what it is known to hold).
        commit: LogIndex,
        /// The leader's ReadIndex round being confirmed, 0 when none.
        read_round: u64,
    },
    /// Follower to leader: acknowledges a heartbeat and its read round.
    HeartbeatResponse {
        /// The read round echoed back.
        read_round: u64,
    },
    /// Candidate to voter: request a vote (or, with `pre`, ask whether one would be granted).
    Vote {
        /// PreVote phase: nobody changes term or records a vote.
        pre: bool,
        /// Sent on a leader transfer: voters skip their leader-lease check.
        transfer: bool,
        /// The candidate's last log index.
        last_index: LogIndex,
        /// The candidate's last log term.
        last_term: Term,
    },
    /// Voter to candidate: the vote.
    VoteResponse {
        /// Answer to a pre-vote.
        pre: bool,
        /// Whether the vote was refused.
        reject: bool,
    },
    /// Leader to follower: a snapshot to install, because the entries it needs were compacted.
    InstallSnapshot {
        /// The snapshot (the transport streams its data in chunks).
        snapshot: Snapshot,
    },
    /// Leader to its chosen successor: start an election now (leader transfer).
    TimeoutNow,
    /// Follower to leader: a client's linearizable read, to be given a read index.
    ReadIndex {
        /// The application's request id, echoed back.
        ctx: u64,
    },
    /// Leader to follower: the read index for a forwarded read.
    ReadIndexResponse {
        /// The application's request id.
        ctx: u64,
        /// The index the follower must apply up to before serving the read.
        index: LogIndex,
    },
}

/// The seed's message types (`PPDB_PEER_MSG_*`), used by the transport to frame messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// Liveness and leadership confirmation.
    Heartbeat,
    /// Elections and leader transfer.
    Vote,
    /// Log replication.
    Append,
    /// Snapshot transfer.
    Snapshot,
    /// Client requests (forwarded reads).
    Command,
}

impl Message {
    /// Whether this message may be sent before the `Ready` it came in is persisted.
    ///
    /// A leader may replicate its log while it writes it to its own disk (Raft dissertation,
    /// section 10.2.1): it only counts itself towards a commit once its write is done. So appends,
    /// heartbeats, snapshots and leader-transfer orders, and the ReadIndex exchange (which
    /// carries no persisted state), can go out at once. Everything that promises something
    /// about this node's durable state (append and vote responses) and vote requests must wait.
    pub fn can_send_before_persist(&self) -> bool {
        matches!(
            self.body,
            MessageBody::Append { .. }
                | MessageBody::Heartbeat { .. }
                | MessageBody::InstallSnapshot { .. }
                | MessageBody::TimeoutNow
                | MessageBody::HeartbeatResponse { .. }
                | MessageBody::ReadIndex { .. }
                | MessageBody::ReadIndexResponse { .. }
        )
    }

    /// The seed's message type of this message.
    pub fn kind(&self) -> MessageType {
        match self.body {
            MessageBody::Heartbeat { .. } | MessageBody::HeartbeatResponse { .. } => MessageType::Heartbeat,
            MessageBody::Vote { .. } | MessageBody::VoteResponse { .. } | MessageBody::TimeoutNow => {
                MessageType::Vote
            }
            MessageBody::Append { .. } | MessageBody::AppendResponse { .. } => MessageType::Append,
            MessageBody::InstallSnapshot { .. } => MessageType::Snapshot,
            MessageBody::ReadIndex { .. } | MessageBody::ReadIndexResponse { .. } => MessageType::Command,
        }
    }
}

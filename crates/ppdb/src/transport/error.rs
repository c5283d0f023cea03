//! What can go wrong in the transport, precisely, and how it maps onto the seed's codes.

use ppdb_raft::NodeId;
use std::time::Duration;

/// Why an acceptor refused a dialer's handshake. Both sides log it; the dialer surfaces it as
/// [`TransportError::Refused`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefusalReason {
    /// The two nodes belong to different clusters.
    #[error("cluster id mismatch: ours is {ours:?}, theirs is {theirs:?}")]
    ClusterMismatch {
        /// The cluster id of the side reporting the error.
        ours: String,
        /// The cluster id of the other side.
        theirs: String,
    },
    /// The two nodes speak no common protocol version.
    #[error("unsupported protocol version: ours is {ours}, theirs is {theirs}")]
    UnsupportedVersion {
        /// The version of the side reporting the error.
        ours: u32,
        /// The version of the other side.
        theirs: u32,
    },
    /// The acceptor does not know the dialer's node id (not a member yet, or unknown).
    #[error("node {node} is not a known peer")]
    UnknownNode {
        /// The dialer's node id.
        node: NodeId,
    },
    /// The dialer was removed from the cluster: it must stop (its id is never reused).
    #[error("node {node} was removed from the cluster")]
    Removed {
        /// The dialer's node id.
        node: NodeId,
    },
    /// The node presented an incarnation other than the one the cluster recorded for its id:
    /// its data directory was lost or replaced, so it remembers none of its votes and
    /// acknowledged entries. It gets no vote and no message.
    #[error(
        "node {node} presented incarnation {presented}, but the cluster recorded incarnation \
         {recorded} for node {node}: its data directory was lost or replaced; remove the old \
         node with `ppdb cluster remove {node}` and start this one on an empty data directory \
         with a new --id and --join"
    )]
    IncarnationMismatch {
        /// The node id.
        node: NodeId,
        /// The incarnation the cluster recorded for it.
        recorded: super::handshake::Incarnation,
        /// The incarnation it presented.
        presented: super::handshake::Incarnation,
    },
    /// The dialer reached a node other than the one it meant to (an address was reused).
    #[error("expected node {expected} at this address, found node {actual}")]
    WrongNode {
        /// The node the dialer meant to reach.
        expected: NodeId,
        /// The node that answered.
        actual: NodeId,
    },
}

/// An error of the transport layer.
///
/// `Clone` because one connection failure is reported to every caller waiting on that peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The peer refused our handshake (or we refused theirs).
    #[error("peer {peer} refused the handshake: {reason}")]
    Refused {
        /// The peer's node id.
        peer: NodeId,
        /// Why.
        reason: RefusalReason,
    },
    /// The peer could not be reached, the connection broke, or the peer sent a bad frame.
    #[error("network error with peer {peer}: {reason}")]
    Network {
        /// The peer's node id.
        peer: NodeId,
        /// What went wrong.
        reason: String,
    },
    /// A request got no answer within its deadline; whether the peer acted on it is unknown.
    #[error("request to peer {peer} timed out after {} ms; the outcome is unknown", .after.as_millis())]
    Timeout {
        /// The peer's node id.
        peer: NodeId,
        /// How long was waited.
        after: Duration,
    },
    /// The node id is not a configured peer.
    #[error("node {peer} is not a known peer")]
    UnknownPeer {
        /// The node id.
        peer: NodeId,
    },
    /// The peer's outbound queue is full; the message was dropped (Raft retransmits).
    #[error("outbound queue to peer {peer} is full; message dropped")]
    QueueFull {
        /// The peer's node id.
        peer: NodeId,
    },
    /// A message is larger than a frame may be and can never be sent.
    #[error("message of {bytes} bytes exceeds the frame limit of {limit} bytes")]
    TooLarge {
        /// Encoded size of the message.
        bytes: usize,
        /// The configured `frame_bytes_max`.
        limit: usize,
    },
    /// A Raft message was handed to [`super::Transport::send`] for a peer other than its
    /// recipient.
    #[error("message for node {recipient} cannot be sent to node {to}")]
    Misaddressed {
        /// The peer it was handed for.
        to: NodeId,
        /// The message's `to`.
        recipient: NodeId,
    },
    /// The configuration is invalid.
    #[error("invalid transport configuration: {0}")]
    InvalidConfig(String),
    /// The listener could not be bound.
    #[error("cannot listen on {addr}: {reason}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The OS error.
        reason: String,
    },
    /// The transport has been shut down.
    #[error("the transport is shut down")]
    Shutdown,
}

impl From<TransportError> for crate::Error {
    fn from(e: TransportError) -> crate::Error {
        match e {
            TransportError::Timeout { peer, after } => crate::Error::Timeout {
                operation: format!("a response from node {peer}"),
                elapsed_ms: u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
            },
            TransportError::Refused { peer, .. }
            | TransportError::Network { peer, .. }
            | TransportError::UnknownPeer { peer }
            | TransportError::QueueFull { peer } => {
                crate::Error::Network { peer: format!("node {peer}"), reason: e.to_string() }
            }
            TransportError::InvalidConfig(_) | TransportError::Shutdown => crate::Error::State(e.to_string()),
            TransportError::Bind { addr, reason } => crate::Error::Listen { role: "peers", addr, reason },
            TransportError::TooLarge { .. } | TransportError::Misaddressed { .. } => {
                crate::Error::Network { peer: "-".into(), reason: e.to_string() }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    #[test]
    fn transport_errors_map_onto_the_seed_codes() {
        let t: crate::Error =
            TransportError::Timeout { peer: NodeId(2), after: Duration::from_millis(300) }.into();
        assert_eq!(t.code(), ErrorCode::Timeout);
        let refused: crate::Error = TransportError::Refused {
            peer: NodeId(2),
            reason: RefusalReason::ClusterMismatch { ours: "a".into(), theirs: "b".into() },
        }
        .into();
        assert_eq!(refused.code(), ErrorCode::Network);
        assert!(refused.to_string().contains("cluster id mismatch"));
        let down: crate::Error = TransportError::Network { peer: NodeId(3), reason: "reset".into() }.into();
        assert_eq!(down.code(), ErrorCode::Network);
    }
}

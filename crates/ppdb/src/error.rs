//! The database's error type and the seed's error codes.
//!
//! Every layer has its own precise error enum; all of them convert into [`Error`], whose
//! [`Error::code`] is one of the five codes of the PPDB node-layer design note. Clients see the
//! code as the first word of a Redis error (`-TIMEOUT ...`), so it is part of the protocol.

use std::fmt;

/// The seed's error codes (`PPDB_ERR_*`): what class of failure happened, for machines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// A peer is unreachable or sent a bad frame; retrying, maybe elsewhere, can help.
    Network,
    /// A deadline passed and the outcome is unknown.
    Timeout,
    /// Not the leader (with a hint), or a proposal was dropped by the consensus layer.
    Consensus,
    /// No quorum is reachable for the shard.
    Partition,
    /// The operation is invalid in the current node lifecycle or transaction state.
    State,
}

impl ErrorCode {
    /// The code as one byte in peer-to-peer answers.
    pub fn to_wire(self) -> u8 {
        match self {
            ErrorCode::Network => 0,
            ErrorCode::Timeout => 1,
            ErrorCode::Consensus => 2,
            ErrorCode::Partition => 3,
            ErrorCode::State => 4,
        }
    }

    /// The code of a byte written by [`ErrorCode::to_wire`].
    pub fn from_wire(byte: u8) -> Option<ErrorCode> {
        Some(match byte {
            0 => ErrorCode::Network,
            1 => ErrorCode::Timeout,
            2 => ErrorCode::Consensus,
            3 => ErrorCode::Partition,
            4 => ErrorCode::State,
            _ => return None,
        })
    }

    /// The code as it appears on the wire, e.g. the first word of a RESP error.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Network => "NETWORK",
            ErrorCode::Timeout => "TIMEOUT",
            ErrorCode::Consensus => "CONSENSUS",
            ErrorCode::Partition => "PARTITION",
            ErrorCode::State => "STATE",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error of any PPDB layer, with the context a person needs to act on it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A peer could not be reached or misbehaved on the wire.
    #[error("network error talking to {peer}: {reason}")]
    Network {
        /// The peer's address or node id.
        peer: String,
        /// What went wrong.
        reason: String,
    },
    /// A listener could not be opened at startup (the address is taken, or not this host's).
    #[error("cannot listen for {role} on {addr}: {reason}")]
    Listen {
        /// Who would have connected there: "peers" or "clients".
        role: &'static str,
        /// The address.
        addr: std::net::SocketAddr,
        /// The OS error.
        reason: String,
    },
    /// An operation did not finish within its deadline; its outcome is unknown.
    #[error("timed out after {elapsed_ms} ms waiting for {operation}; the outcome is unknown")]
    Timeout {
        /// What was being waited for.
        operation: String,
        /// How long was waited.
        elapsed_ms: u64,
    },
    /// The consensus layer refused or dropped the request.
    #[error("consensus: {0}")]
    Consensus(#[from] ppdb_raft::ProposeError),
    /// No quorum is reachable for a group.
    #[error("no quorum reachable for group {group}")]
    Partition {
        /// The Raft group (shard) without quorum.
        group: u64,
    },
    /// A proposal was replaced in the log by a new leader's entries: it did not and will not
    /// take effect, so it is safe to retry.
    #[error("proposal to group {group} was dropped by a leader change; retry")]
    ProposalDropped {
        /// The Raft group.
        group: u64,
    },
    /// A snapshot from the leader replaced this replica's log before a proposal made here was
    /// applied: the proposal may have taken effect (with an output this node never saw) or not.
    #[error("the outcome of the proposal to group {group} at index {index} is unknown: a snapshot from the leader replaced the log before it was applied here")]
    OutcomeUnknown {
        /// The Raft group.
        group: u64,
        /// The proposal's log index.
        index: u64,
    },
    /// Another node ran the request and it failed there.
    #[error("{message} (on node {node})")]
    Remote {
        /// The node that answered.
        node: u64,
        /// The seed's code of its error.
        code: ErrorCode,
        /// Its message.
        message: String,
    },
    /// The request is not valid in the current state.
    #[error("invalid in the current state: {0}")]
    State(String),
    /// A cross-shard transaction did not commit, and certainly changed nothing; why.
    #[error("cross-shard transaction aborted: {0}")]
    TxnAborted(String),
    /// A command larger than one log entry may carry ([`crate::limits::COMMAND_BYTES_MAX`]),
    /// refused before it was proposed.
    #[error(
        "command of {bytes} bytes exceeds the {limit} bytes one log entry may carry; nothing was written"
    )]
    CommandTooLarge {
        /// The encoded command's size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// The storage layer failed: an I/O error, a poisoned WAL, or corruption on disk
    /// ([`crate::storage::StorageError::Corruption`]). Node-fatal: the node stops serving.
    #[error("storage: {0}")]
    Storage(#[from] crate::storage::StorageError),
}

impl Error {
    /// The seed's error code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Network { .. } | Error::Listen { .. } => ErrorCode::Network,
            Error::Timeout { .. } | Error::OutcomeUnknown { .. } => ErrorCode::Timeout,
            Error::Consensus(_) | Error::ProposalDropped { .. } => ErrorCode::Consensus,
            Error::Remote { code, .. } => *code,
            Error::Partition { .. } => ErrorCode::Partition,
            Error::State(_) | Error::CommandTooLarge { .. } | Error::TxnAborted(_) => ErrorCode::State,
            // A node whose storage failed cannot serve: a state error, not a retryable one.
            Error::Storage(_) => ErrorCode::State,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_maps_to_a_seed_code() {
        let timeout = Error::Timeout { operation: "commit of SET".into(), elapsed_ms: 5000 };
        assert_eq!(timeout.code(), ErrorCode::Timeout);
        assert!(timeout.to_string().contains("outcome is unknown"));
        assert_eq!(Error::Partition { group: 3 }.code().as_str(), "PARTITION");
        assert_eq!(Error::State("node is leaving".into()).code(), ErrorCode::State);
        let taken = Error::Listen {
            role: "peers",
            addr: "127.0.0.1:7101".parse().unwrap(),
            reason: "Address already in use (os error 98)".into(),
        };
        assert_eq!(taken.code(), ErrorCode::Network);
        assert_eq!(
            taken.to_string(),
            "cannot listen for peers on 127.0.0.1:7101: Address already in use (os error 98)"
        );
        let corrupt: Error = crate::storage::StorageError::Corruption {
            file: "/data/wal/00000000000000000001.wal".into(),
            offset: 24,
            reason: crate::storage::CorruptionKind::BadMagic,
        }
        .into();
        assert_eq!(corrupt.code(), ErrorCode::State);
        assert!(corrupt.to_string().contains("00000000000000000001.wal at byte offset 24"));
    }
}

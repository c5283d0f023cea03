//! A failed client operation in the form every client protocol words its own way.
//!
//! PPDB's own conditions ([`Error`]: a peer unreachable, a deadline passed with the outcome
//! unknown, no leader, no quorum, a refused state) become a [`Failure`]: the seed's code first,
//! for machines, then one line for people. RESP answers `-CODE message`; a text protocol such
//! as memcached's answers `SERVER_ERROR CODE message`. The key space's own refusals (a wrong
//! type, a value that is not an integer) are not failures: they are answers,
//! [`crate::kv::Reply::Error`] with a typed [`crate::kv::KvError`].

use crate::error::{Error, ErrorCode};
use std::fmt;

/// Why a client's operation did not run, or may not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The seed's code: what a client may do about it (retry, look elsewhere, give up).
    pub code: ErrorCode,
    /// What happened, on one line.
    pub message: String,
}

impl From<&Error> for Failure {
    fn from(error: &Error) -> Failure {
        Failure { code: error.code(), message: error.to_string().replace(['\r', '\n'], " ") }
    }
}

impl fmt::Display for Failure {
    /// `CODE message`, as a line-based protocol sends it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code.as_str(), self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ppdb_raft::ProposeError;

    #[test]
    fn a_failure_is_one_line_with_the_seeds_code_first() {
        let timeout = Error::Timeout { operation: "a write to commit\r\n".into(), elapsed_ms: 5 };
        let timeout = Failure::from(&timeout);
        assert_eq!(timeout.code, ErrorCode::Timeout);
        let line = timeout.to_string();
        assert!(line.starts_with("TIMEOUT "), "{line}");
        assert!(!line.contains(['\r', '\n']), "{line}");
        let no_leader = Failure::from(&Error::Consensus(ProposeError::NotLeader { leader: None }));
        assert!(no_leader.to_string().starts_with("CONSENSUS "));
        assert_eq!(no_leader.code, ErrorCode::Consensus);
        assert!(Failure::from(&Error::Partition { group: 3 }).to_string().starts_with("PARTITION "));
        assert!(Failure::from(&Error::State("removed".into())).to_string().starts_with("STATE "));
    }
}

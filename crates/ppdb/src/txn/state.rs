//! The seed's transaction states, and the outcome a participant remembers.

use std::fmt;

/// Where a transaction stands, as its coordinator drives it (the seed's seven states).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnState {
    /// Begun: the id is chosen, nothing sent.
    Init,
    /// PREPARE entries are on their way to the participants.
    Preparing,
    /// Every participant replicated its PREPARE: the transaction is decided committed.
    Prepared,
    /// COMMIT entries are on their way.
    Committing,
    /// Every participant applied its part and released its locks.
    Committed,
    /// A participant refused (conflict, changed watched key, too late): ABORT entries are on
    /// their way.
    Aborting,
    /// Every participant dropped its part.
    Aborted,
}

impl TxnState {
    /// The state's name as the seed writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            TxnState::Init => "INIT",
            TxnState::Preparing => "PREPARING",
            TxnState::Prepared => "PREPARED",
            TxnState::Committing => "COMMITTING",
            TxnState::Committed => "COMMITTED",
            TxnState::Aborting => "ABORTING",
            TxnState::Aborted => "ABORTED",
        }
    }

    /// Whether the coordinator may move from this state to `next`.
    pub fn may_become(self, next: TxnState) -> bool {
        use TxnState::*;
        matches!(
            (self, next),
            (Init, Preparing)
                | (Preparing, Prepared)
                | (Preparing, Aborting)
                | (Prepared, Committing)
                | (Committing, Committed)
                | (Aborting, Aborted)
        )
    }
}

impl fmt::Display for TxnState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a transaction ended, as a participant remembers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Its writes were applied.
    Committed,
    /// Its writes were dropped (or never prepared here).
    Aborted,
}

impl Outcome {
    /// The status a participant answers with.
    pub fn status(self) -> &'static str {
        match self {
            Outcome::Committed => TxnState::Committed.as_str(),
            Outcome::Aborted => TxnState::Aborted.as_str(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transaction_ends_committed_or_aborted_and_never_turns_back() {
        use TxnState::*;
        let all = [Init, Preparing, Prepared, Committing, Committed, Aborting, Aborted];
        for state in all {
            assert!(!state.may_become(state), "{state}");
            assert!(!Committed.may_become(state) && !Aborted.may_become(state));
        }
        assert!(!Prepared.may_become(Aborting), "once every participant prepared, it commits");
        assert!(Preparing.may_become(Aborting) && Committing.may_become(Committed));
    }
}

//! Invariant checkers, one per file. Each observes events of a run and reports the first
//! violation with enough detail to debug it from the replayed seed.

pub mod election_safety;
pub mod leader_completeness;
pub mod log_matching;
pub mod reads;
pub mod state_machine;

use std::fmt;

/// A broken invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Which property broke (stable names: tests match on them).
    pub invariant: &'static str,
    /// What exactly was seen.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.invariant, self.detail)
    }
}

/// Shorthand for a checker's verdict.
pub type Verdict = Result<(), Violation>;

pub(crate) fn violation(invariant: &'static str, detail: String) -> Verdict {
    Err(Violation { invariant, detail })
}

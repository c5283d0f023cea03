//! What a Raft group replicates: any deterministic state machine.

use ppdb_raft::LogIndex;

/// A deterministic state machine replicated by a Raft group. Every replica applies the same
/// commands in the same order and must reach the same state: no clocks, no randomness, no
/// I/O in `apply` (anything time-dependent, such as expiry, is decided by the proposer and
/// carried inside the command).
pub trait StateMachine: Send + Sized + 'static {
    /// A read-only request, answered from the local state once it is up to date.
    type Query: Send + 'static;
    /// The answer to a command or a query.
    type Output: Send + 'static;

    /// Applies the committed command at `index`.
    fn apply(&mut self, index: LogIndex, command: &[u8]) -> Self::Output;

    /// Answers a query from the current state.
    fn query(&self, query: &Self::Query) -> Self::Output;

    /// Serializes the whole state (for a Raft snapshot).
    fn snapshot(&self) -> Vec<u8>;

    /// Rebuilds a state from snapshot data; empty data is the empty initial state.
    fn restore(data: &[u8]) -> Result<Self, String>;

    /// Called now and then on the group's leader with the wall clock: a command the leader
    /// should propose to keep the state tidy (e.g. remove expired keys), if any. Because the
    /// command goes through the log, every replica applies the same tidying.
    fn housekeeping(&self, _now_ms: u64) -> Option<Vec<u8>> {
        None
    }
}

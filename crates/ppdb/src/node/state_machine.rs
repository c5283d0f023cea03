//! What a Raft group replicates: any deterministic state machine.

use ppdb_raft::LogIndex;

/// Serializes a state machine's state as of when the job was made
/// ([`StateMachine::snapshot_job`]).
pub type SnapshotJob = Box<dyn FnOnce() -> Vec<u8> + Send>;

/// A deterministic state machine replicated by a Raft group. Every replica applies the same
/// commands in the same order and must reach the same state: no clocks, no randomness, no
/// I/O in `apply` (anything time-dependent, such as expiry, is decided by the proposer and
/// carried inside the command).
pub trait StateMachine: Send + Sized + 'static {
    /// A read-only request, answered from the local state once it is up to date.
    type Query: Send + 'static;
    /// The answer to a command or a query.
    type Output: Send + 'static;

    /// Applies the committed command at `index`. An error says the command cannot be applied
    /// at all (it does not decode: a corrupt log, or one written by an incompatible version);
    /// the node then stops applying this group rather than skip or guess, since replicas that
    /// applied it would differ from this one.
    fn apply(&mut self, index: LogIndex, command: &[u8]) -> Result<Self::Output, String>;

    /// Answers a query from the current state.
    fn query(&self, query: &Self::Query) -> Self::Output;

    /// Serializes the whole state (for a Raft snapshot).
    fn snapshot(&self) -> Vec<u8>;

    /// The state as it is now, serialized later by calling the job, perhaps on another thread
    /// while the state goes on changing. A large state should hand out a cheap frozen view
    /// (the key-value store shares its parts copy-on-write), so that the node's loop never
    /// stalls for a snapshot; the default serializes at once.
    fn snapshot_job(&self) -> SnapshotJob {
        let data = self.snapshot();
        Box::new(move || data)
    }

    /// Rebuilds a state from snapshot data; empty data is the empty initial state.
    fn restore(data: &[u8]) -> Result<Self, String>;

    /// Called now and then on the group's leader with the wall clock: a command the leader
    /// should propose to keep the state tidy (e.g. remove expired keys), if any. Because the
    /// command goes through the log, every replica applies the same tidying.
    fn housekeeping(&self, _now_ms: u64) -> Option<Vec<u8>> {
        None
    }
}

//! What a Raft group replicates: any deterministic state machine.

use ppdb_raft::LogIndex;
use std::io::{self, Read, Write};

/// Serializes a state machine's state as of when the job was made
/// ([`StateMachine::snapshot_job`]) into a writer: the snapshot file, streamed.
pub type SnapshotJob = Box<dyn FnOnce(&mut dyn Write) -> io::Result<()> + Send>;

/// A deterministic state machine replicated by a Raft group. Every replica applies the same
/// commands in the same order and must reach the same state: no clocks, no randomness, no
/// I/O in `apply`. A state machine that depends on time (expiry) has its commands carry it:
/// the group's leader stamps each command with the entry's time ([`StateMachine::stamp`]),
/// the later of its clock and the previous entry's time, so entry times never decrease along
/// the log, whichever node leads and whatever its clock says. The default methods are for a
/// state machine that has no use for time.
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

    /// Answers a query from the current state, on the leader whose clock reads `now_ms` (or
    /// at the log's time, if that is later: see [`StateMachine::time_entry`]).
    fn query(&self, query: &Self::Query, now_ms: u64) -> Self::Output;

    /// Serializes the whole state (for a Raft snapshot).
    fn snapshot(&self) -> Vec<u8>;

    /// The state as it is now, serialized later by calling the job, perhaps on another thread
    /// while the state goes on changing. A large state should hand out a cheap frozen view
    /// (the key-value store shares its parts copy-on-write), so that the node's loop never
    /// stalls for a snapshot; the default serializes at once.
    fn snapshot_job(&self) -> SnapshotJob {
        let data = self.snapshot();
        Box::new(move |out| out.write_all(&data))
    }

    /// Rebuilds a state from snapshot data; empty data is the empty initial state.
    fn restore(data: &[u8]) -> Result<Self, String>;

    /// Rebuilds a state from snapshot data read from `image` to its end (a snapshot file,
    /// streamed). A large state should decode as it reads, holding a bounded buffer; the
    /// default reads the whole image first, which suits a small state.
    fn restore_from(image: &mut dyn Read) -> Result<Self, String> {
        let mut data = Vec::new();
        image.read_to_end(&mut data).map_err(|e| format!("reading the snapshot: {e}"))?;
        Self::restore(&data)
    }

    /// Called now and then on the group's leader with the wall clock: a command the leader
    /// should propose to keep the state tidy (e.g. remove expired keys), if any. Because the
    /// command goes through the log, every replica applies the same tidying.
    fn housekeeping(&self, _now_ms: u64) -> Option<Vec<u8>> {
        None
    }

    /// Writes the entry time `time_ms` into `command`, which the leader is about to propose.
    fn stamp(_command: &mut [u8], _time_ms: u64) {}

    /// The entry time stamped in `command`, if it carries one.
    fn stamped_time(_command: &[u8]) -> Option<u64> {
        None
    }

    /// The log's time: the latest entry time applied (0 without one). It must survive a
    /// snapshot, since a replica restored from one may lead next.
    fn time_ms(&self) -> u64 {
        0
    }

    /// A command the leader must commit before it answers `query` at `now_ms`, when the answer
    /// at `now_ms` differs from the answer at the log's time (a key would be seen expired that
    /// the log still holds alive): committing it puts that time in the log, so no later leader,
    /// whatever its clock, answers as of an earlier time. The query is then answered at the log's
    /// time once the command is applied.
    fn time_entry(&self, _query: &Self::Query, _now_ms: u64) -> Option<Vec<u8>> {
        None
    }
}

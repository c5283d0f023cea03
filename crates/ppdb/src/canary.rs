//! Known bugs the simulations must catch, planted only in test builds and only on the thread
//! that asks: a sweep's worker thread runs its seeds' whole simulation, so other tests running
//! at the same time are unaffected. The bank simulation (`node::sim_runtime::bank`) catches the
//! transaction protocol's, the runtime simulation (`node::sim_runtime`) the replica moves'.

use std::cell::Cell;

/// A planted bug.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Canary {
    /// The coordinator treats a PREPARE that went unanswered as prepared, and commits.
    CommitUnprepared,
    /// A participant prepares its part without locking its keys, so they are free before
    /// the transaction is decided.
    PrepareWithoutLocks,
    /// A source deletes its copy as soon as the placement moves the group away, before its
    /// removal from the group is committed (the group not yet settled).
    DropBeforeSettled,
    /// A source deletes its copy in memory but writes no tombstone and deletes nothing on
    /// disk, so a restart brings the stale copy back.
    DropWithoutTombstone,
}

thread_local! {
    static PLANTED: Cell<Option<Canary>> = const { Cell::new(None) };
}

/// Plants `canary` on this thread (or, with `None`, none).
pub(crate) fn plant(canary: Option<Canary>) {
    PLANTED.with(|planted| planted.set(canary));
}

/// Whether `canary` is planted on this thread.
pub(crate) fn planted(canary: Canary) -> bool {
    PLANTED.with(|planted| planted.get() == Some(canary))
}

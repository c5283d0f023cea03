//! Who waits on which keys, and what this node's replicas applied that they wait for.
//!
//! Two things flow from a shard's apply path (`server::shard`) to the clients blocked on this
//! node: a key they wait on was created (the oldest waiter on it gets a turn), and an attempt
//! of theirs ([`WriteOp::Attempt`]) was applied (its reply is kept for them). Nothing here
//! decides what a client is answered: a pop is applied through the log only, and these are
//! signals to try again or to learn an outcome.
//!
//! Turns go first blocked, first served: a created key wakes only its oldest waiter; when an
//! attempt that popped something leaves the key still holding elements, the next waiter in
//! line gets a turn; a waiter that leaves with a turn it did not use hands it on.
//!
//! The table is one per process, as the memory count is (`server::memory`): a process hosts
//! one node, and that node a replica of every shard. Where several nodes share a process (the
//! simulator) a waiter may be woken by a replica other than its node's, which costs a try,
//! never a wrong answer.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};
use tokio::sync::Notify;

use crate::kv::{Reply, WriteOp};

/// The process's table of waiters.
static TABLE: LazyLock<Mutex<Table>> = LazyLock::new(|| {
    Mutex::new(Table {
        next_waiter: 0,
        waiters: BTreeMap::new(),
        by_key: BTreeMap::new(),
        attempts: BTreeMap::new(),
        ids: SmallRng::from_entropy(),
    })
});
/// How many waiters are registered: the apply path looks at nothing while it is 0.
static WAITERS: AtomicUsize = AtomicUsize::new(0);

/// What became of an attempt, as this node's replica saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Not applied here (yet).
    Pending,
    /// Applied here, with this reply.
    Applied(Reply),
    /// Unknowable: the replica was replaced by a snapshot meanwhile.
    Lost,
}

/// How a waiter is signalled.
#[derive(Debug, Default)]
struct Signals {
    /// A key it waits on may hold something now.
    turn: Notify,
    /// Set with `turn`, cleared when the waiter tries again: a turn not yet used.
    turn_unused: AtomicBool,
    /// An attempt of its was applied (or lost).
    applied: Notify,
}

impl Signals {
    fn give_turn(&self) {
        self.turn_unused.store(true, Ordering::Release);
        self.turn.notify_one();
    }
}

#[derive(Debug)]
struct Table {
    next_waiter: u64,
    /// Every waiter's signals, by id (ascending: first blocked first).
    waiters: BTreeMap<u64, Arc<Signals>>,
    /// The waiters of each key, ascending.
    by_key: BTreeMap<Vec<u8>, BTreeSet<u64>>,
    /// Attempts in flight: their waiter and what became of them.
    attempts: BTreeMap<u64, (u64, Outcome)>,
    /// Draws attempt ids: random, so that the attempts of other nodes' clients, which this
    /// node's replicas apply too, do not share them.
    ids: SmallRng,
}

impl Table {
    fn lock() -> MutexGuard<'static, Table> {
        TABLE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Gives a turn to the oldest waiter on `key` other than `except`.
    fn give_turn(&self, key: &[u8], except: Option<u64>) {
        let next = self.by_key.get(key).and_then(|ids| ids.iter().find(|&&id| Some(id) != except));
        if let Some(signals) = next.and_then(|id| self.waiters.get(id)) {
            signals.give_turn();
        }
    }
}

/// A client blocked on keys, registered until dropped.
#[derive(Debug)]
pub struct Waiter {
    id: u64,
    keys: Vec<Vec<u8>>,
    signals: Arc<Signals>,
}

impl Waiter {
    /// Registers a client that waits for one of `keys` to be created, behind every waiter
    /// registered before it.
    pub fn enter(keys: Vec<Vec<u8>>) -> Waiter {
        let mut table = Table::lock();
        let id = table.next_waiter;
        table.next_waiter += 1;
        let signals = Arc::new(Signals::default());
        table.waiters.insert(id, Arc::clone(&signals));
        for key in &keys {
            table.by_key.entry(key.clone()).or_default().insert(id);
        }
        WAITERS.fetch_add(1, Ordering::AcqRel);
        Waiter { id, keys, signals }
    }

    /// Waits for a turn: one of the keys was created, or the waiter ahead passed it on. A
    /// turn given while the waiter was trying is kept for this call.
    pub async fn turn(&self) {
        self.signals.turn.notified().await;
    }

    /// Registers a new attempt (a random id), whose outcome this node's replica will record;
    /// the turn is being used.
    pub fn attempt(&self) -> Attempt {
        self.signals.turn_unused.store(false, Ordering::Release);
        let mut table = Table::lock();
        let id = loop {
            let id = table.ids.next_u64();
            if !table.attempts.contains_key(&id) {
                break id;
            }
        };
        table.attempts.insert(id, (self.id, Outcome::Pending));
        Attempt { id }
    }

    /// Waits until an attempt of this waiter's is applied here (or lost); it may be applied
    /// already when this is called, so check [`Attempt::outcome`] first.
    pub async fn applied(&self) {
        self.signals.applied.notified().await;
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let mut table = Table::lock();
        table.waiters.remove(&self.id);
        for key in &self.keys {
            if let Some(ids) = table.by_key.get_mut(key) {
                ids.remove(&self.id);
                if ids.is_empty() {
                    table.by_key.remove(key);
                }
            }
        }
        if self.signals.turn_unused.load(Ordering::Acquire) {
            for key in &self.keys {
                table.give_turn(key, None);
            }
        }
        WAITERS.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One attempt of a waiter, forgotten when dropped.
#[derive(Debug)]
pub struct Attempt {
    id: u64,
}

impl Attempt {
    /// The id the attempt's log entry carries.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// What became of it here so far.
    pub fn outcome(&self) -> Outcome {
        Table::lock().attempts.get(&self.id).map_or(Outcome::Lost, |(_, outcome)| outcome.clone())
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        Table::lock().attempts.remove(&self.id);
    }
}

/// Whether a pop's reply took something: anything but Redis's nil (`Nil`, `NilArray`).
pub fn popped(reply: &Reply) -> bool {
    !matches!(reply, Reply::Nil | Reply::NilArray)
}

/// The keys of `op` that some waiter waits on and that do not exist now (`exists` says), for
/// [`applied`] to tell which the write created. Empty at once while nobody waits.
pub fn absent_watched_keys(op: &WriteOp, exists: impl Fn(&[u8]) -> bool) -> Vec<Vec<u8>> {
    if WAITERS.load(Ordering::Acquire) == 0 {
        return Vec::new();
    }
    let table = Table::lock();
    op.keys()
        .into_iter()
        .filter(|key| table.by_key.contains_key(*key) && !exists(key))
        .map(<[u8]>::to_vec)
        .collect()
}

/// Called by a shard's replica after applying `op` with `reply`: gives turns for the keys it
/// created (`absent_before` that `exists` now), and, for an attempt, records its outcome and,
/// if it popped something from a key that still exists, gives the next waiter a turn.
pub fn applied(op: &WriteOp, reply: &Reply, absent_before: &[Vec<u8>], exists: impl Fn(&[u8]) -> bool) {
    if WAITERS.load(Ordering::Acquire) == 0 {
        return;
    }
    let mut table = Table::lock();
    for key in absent_before.iter().filter(|key| exists(key)) {
        table.give_turn(key, None);
    }
    let WriteOp::Attempt { id, op } = op else {
        return;
    };
    let owner = match table.attempts.get_mut(id) {
        Some((owner, outcome)) => {
            *outcome = Outcome::Applied(reply.clone());
            Some(*owner)
        }
        None => None,
    };
    if let Some(signals) = owner.and_then(|owner| table.waiters.get(&owner)) {
        signals.applied.notify_one();
    }
    if popped(reply) {
        for key in op.iter().flat_map(|op| op.keys()).filter(|key| exists(key)) {
            table.give_turn(key, owner);
        }
    }
}

/// Called when a shard's replica is replaced by a snapshot: what it applied meanwhile is not
/// known, so every attempt in flight is lost and every waiter tries again.
pub fn restored() {
    if WAITERS.load(Ordering::Acquire) == 0 {
        return;
    }
    let mut table = Table::lock();
    let mut owners = BTreeSet::new();
    for (owner, outcome) in table.attempts.values_mut() {
        if *outcome == Outcome::Pending {
            *outcome = Outcome::Lost;
            owners.insert(*owner);
        }
    }
    for (id, signals) in &table.waiters {
        signals.give_turn();
        if owners.contains(id) {
            signals.applied.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::types::{CollectionWrite, End, ListPop, ListWrite};
    use std::time::Duration;

    /// Whether `waiter` has a turn now.
    async fn has_turn(waiter: &Waiter) -> bool {
        tokio::time::timeout(Duration::from_millis(20), waiter.turn()).await.is_ok()
    }

    fn lpop(key: &[u8]) -> WriteOp {
        let pop = ListPop::Pop { key: key.to_vec(), end: End::Head, count: None };
        WriteOp::Collection(CollectionWrite::List(ListWrite::Pop(pop)))
    }

    #[tokio::test]
    async fn a_created_key_gives_its_oldest_waiter_a_turn_and_a_pop_the_next_one() {
        // Keys of their own: the table is the process's, shared with other tests.
        let key = b"waiters-test-queue".to_vec();
        let first = Waiter::enter(vec![key.clone()]);
        let second = Waiter::enter(vec![key.clone(), b"waiters-test-other".to_vec()]);
        let push = WriteOp::Del { keys: vec![key.clone()] };
        let absent = absent_watched_keys(&push, |_| false);
        assert_eq!(absent, vec![key.clone()]);
        applied(&push, &Reply::Integer(1), &absent, |_| true);
        assert!(has_turn(&first).await);
        assert!(!has_turn(&second).await, "one turn per creation, to the first blocked");

        let attempt = first.attempt();
        assert_eq!(attempt.outcome(), Outcome::Pending);
        let entry = WriteOp::Attempt { id: attempt.id(), op: Some(Box::new(lpop(&key))) };
        let reply = Reply::Bulk(b"x".to_vec());
        applied(&entry, &reply, &[], |_| true);
        assert_eq!(attempt.outcome(), Outcome::Applied(reply));
        assert!(has_turn(&second).await, "the key still holds elements: the next waiter's turn");
        drop(attempt);

        // A nil pop gives no turn; a fence neither.
        let attempt = second.attempt();
        let entry = WriteOp::Attempt { id: attempt.id(), op: Some(Box::new(lpop(&key))) };
        applied(&entry, &Reply::Nil, &[], |_| true);
        applied(&WriteOp::Attempt { id: 1, op: None }, &Reply::Nil, &[], |_| true);
        assert!(!has_turn(&first).await && !has_turn(&second).await);
    }

    #[tokio::test]
    async fn a_waiter_leaving_with_an_unused_turn_hands_it_on() {
        let key = b"waiters-test-handover".to_vec();
        let first = Waiter::enter(vec![key.clone()]);
        let second = Waiter::enter(vec![key.clone()]);
        let push = WriteOp::Del { keys: vec![key.clone()] };
        applied(&push, &Reply::Integer(1), &absent_watched_keys(&push, |_| false), |_| true);
        drop(first);
        assert!(has_turn(&second).await);
    }
}

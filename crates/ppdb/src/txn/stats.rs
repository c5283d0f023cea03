//! The transaction counters a node exports (/metrics, INFO): outcomes, the success rate the
//! seed asks for, commit latency.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::id::TxnId;
use super::state::TxnState;

/// Keys locked by cross-shard transactions on every shard replica of this process.
static LOCKS_HELD: AtomicU64 = AtomicU64::new(0);

/// Keys locked on this process's replicas now.
pub fn locks_held() -> u64 {
    LOCKS_HELD.load(Ordering::Relaxed)
}

/// A replica's part of [`locks_held`]: [`LockGauge::publish`] keeps it equal to the replica's
/// locked keys, and dropping it (the replica replaced by a snapshot, or removed) takes it back.
#[derive(Debug, Default)]
pub struct LockGauge {
    published: u64,
}

impl LockGauge {
    /// Makes the replica's part `locked`.
    pub fn publish(&mut self, locked: u64) {
        if locked > self.published {
            LOCKS_HELD.fetch_add(locked - self.published, Ordering::Relaxed);
        } else {
            LOCKS_HELD.fetch_sub(self.published - locked, Ordering::Relaxed);
        }
        self.published = locked;
    }
}

impl Drop for LockGauge {
    fn drop(&mut self) {
        self.publish(0);
    }
}

/// A transaction this node is coordinating, as `/status` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlight {
    /// Its id.
    pub id: TxnId,
    /// Where it stands.
    pub state: TxnState,
    /// How long ago it began.
    pub age: Duration,
    /// Its shards, primary first.
    pub participants: Vec<u64>,
}

/// Upper bounds of the commit latency histogram's buckets, in microseconds.
pub const LATENCY_BUCKETS_US: [u64; 10] =
    [250, 500, 1_000, 2_000, 5_000, 10_000, 25_000, 50_000, 100_000, 1_000_000];

/// Counters of the transactions a node coordinated or resolved.
#[derive(Debug, Default)]
pub struct TxnStats {
    committed: AtomicU64,
    aborted: AtomicU64,
    conflicts: AtomicU64,
    resolved_committed: AtomicU64,
    resolved_aborted: AtomicU64,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS_US.len() + 1],
    latency_sum_us: AtomicU64,
    in_flight: Mutex<BTreeMap<TxnId, Tracked>>,
}

/// A transaction in flight as [`TxnStats`] keeps it: its state, start and shards.
type Tracked = (TxnState, Instant, Vec<u64>);

/// A copy of the counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TxnCounts {
    /// Cross-shard transactions committed by this node's coordinator.
    pub committed: u64,
    /// Aborted (changed watched keys, refusals, conflicts that outlived the retries).
    pub aborted: u64,
    /// Attempts refused by a lock and tried again.
    pub conflicts: u64,
    /// Transactions of other (perhaps lost) coordinators this node's resolver committed.
    pub resolved_committed: u64,
    /// ... or aborted.
    pub resolved_aborted: u64,
    /// Commit latency: counts per bucket of [`LATENCY_BUCKETS_US`], the last unbounded.
    pub latency_buckets: Vec<u64>,
    /// Sum of commit latencies, microseconds.
    pub latency_sum_us: u64,
}

impl TxnCounts {
    /// Committed out of decided transactions (1 when none was decided): the seed's
    /// transaction success rate.
    pub fn success_rate(&self) -> f64 {
        let decided = self.committed + self.aborted;
        if decided == 0 {
            return 1.0;
        }
        self.committed as f64 / decided as f64
    }
}

impl TxnStats {
    /// A transaction committed after `latency`.
    pub fn committed(&self, latency: Duration) {
        self.committed.fetch_add(1, Ordering::Relaxed);
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let bucket =
            LATENCY_BUCKETS_US.iter().position(|&bound| us <= bound).unwrap_or(LATENCY_BUCKETS_US.len());
        if let Some(counter) = self.latency_buckets.get(bucket) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        self.latency_sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// A transaction aborted.
    pub fn aborted(&self) {
        self.aborted.fetch_add(1, Ordering::Relaxed);
    }

    /// An attempt met a lock and will be tried again.
    pub fn conflict(&self) {
        self.conflicts.fetch_add(1, Ordering::Relaxed);
    }

    /// The resolver finished another coordinator's transaction.
    pub fn resolved(&self, committed: bool) {
        let counter = if committed { &self.resolved_committed } else { &self.resolved_aborted };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Records that the transaction `id` is in `state` (the first call records its start).
    pub fn track(&self, id: TxnId, state: TxnState, participants: &[u64]) {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        let entry = in_flight.entry(id).or_insert_with(|| (state, Instant::now(), participants.to_vec()));
        entry.0 = state;
    }

    /// Forgets the transaction `id`: it ended, as far as its client is concerned.
    pub fn untrack(&self, id: TxnId) {
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
    }

    /// The transactions in flight, oldest id first.
    pub fn in_flight(&self) -> Vec<InFlight> {
        let in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        in_flight
            .iter()
            .map(|(&id, (state, began, participants))| InFlight {
                id,
                state: *state,
                age: began.elapsed(),
                participants: participants.clone(),
            })
            .collect()
    }

    /// The counters now.
    pub fn counts(&self) -> TxnCounts {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        TxnCounts {
            committed: load(&self.committed),
            aborted: load(&self.aborted),
            conflicts: load(&self.conflicts),
            resolved_committed: load(&self.resolved_committed),
            resolved_aborted: load(&self.resolved_aborted),
            latency_buckets: self.latency_buckets.iter().map(load).collect(),
            latency_sum_us: load(&self.latency_sum_us),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_success_rate_counts_decided_transactions() {
        let stats = TxnStats::default();
        assert_eq!(stats.counts().success_rate(), 1.0);
        stats.committed(Duration::from_micros(700));
        stats.committed(Duration::from_secs(5));
        stats.aborted();
        stats.conflict();
        let counts = stats.counts();
        assert!((counts.success_rate() - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(counts.latency_buckets[2], 1);
        assert_eq!(counts.latency_buckets[LATENCY_BUCKETS_US.len()], 1);
        assert_eq!(counts.conflicts, 1);
    }
}

//! A simulated node's wall clock: the run's simulated time (tokio's paused clock), from a fixed
//! epoch, plus the node's own offset, so nodes can disagree (skew) and a clock can be stepped
//! back or forward mid-run. It belongs to the machine: it survives the node's crashes.

use crate::node::clock::WallClock;
use std::sync::atomic::{AtomicI64, Ordering};
use tokio::time::Instant;

/// Where every simulated clock starts, before its offset: 2023-11-14, in ms since the epoch.
const SIM_EPOCH_MS: u64 = 1_700_000_000_000;

/// A skewable, steppable clock on simulated time.
#[derive(Debug)]
pub(super) struct SimClock {
    /// When the run started, in simulated time.
    start: Instant,
    /// This clock's offset from the run's true time, in milliseconds.
    offset_ms: AtomicI64,
}

impl SimClock {
    /// A clock `offset_ms` ahead of the run's true time (behind when negative).
    pub fn new(offset_ms: i64) -> SimClock {
        SimClock { start: Instant::now(), offset_ms: AtomicI64::new(offset_ms) }
    }

    /// The run's true time, as a clock without offset reads it.
    pub fn true_ms(&self) -> u64 {
        SIM_EPOCH_MS + self.start.elapsed().as_millis() as u64
    }

    /// Steps the clock by `delta_ms` (back when negative), as an operator or NTP might.
    pub fn step(&self, delta_ms: i64) {
        self.offset_ms.fetch_add(delta_ms, Ordering::Relaxed);
    }

    /// Sets the clock `offset_ms` away from the run's true time.
    pub fn set_offset(&self, offset_ms: i64) {
        self.offset_ms.store(offset_ms, Ordering::Relaxed);
    }
}

impl WallClock for SimClock {
    fn now_ms(&self) -> u64 {
        self.true_ms().saturating_add_signed(self.offset_ms.load(Ordering::Relaxed))
    }
}

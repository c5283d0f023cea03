//! Where a node reads the wall clock: the time a shard's leader stamps on the entries it
//! proposes and judges reads by (`replica`). A trait, so that the simulator can give every node
//! its own clock, skewed or stepped back, on simulated time.

use std::fmt;

/// A wall clock in milliseconds since the Unix epoch. It may be skewed against other nodes'
/// clocks or step backwards: entry times never decrease whatever it says (`replica`).
pub trait WallClock: Send + Sync + fmt::Debug {
    /// Milliseconds since the Unix epoch, as this clock reads now.
    fn now_ms(&self) -> u64;
}

/// The operating system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl WallClock for SystemClock {
    fn now_ms(&self) -> u64 {
        wall_clock_ms()
    }
}

/// Milliseconds since the Unix epoch.
pub fn wall_clock_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

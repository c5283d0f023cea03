//! What a node counts of its client connections, whatever protocol they speak: INFO's
//! `clients` and `stats` sections, and the connection limit's bookkeeping.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of the client service.
#[derive(Debug, Default)]
pub struct ServerStats {
    /// Connections accepted since start.
    pub connections_total: AtomicU64,
    /// Connections open now.
    pub connections_open: AtomicU64,
    /// Connections refused because of the connection limit.
    pub connections_refused: AtomicU64,
    /// Commands received.
    pub commands: AtomicU64,
    /// Bytes read from clients.
    pub net_input_bytes: AtomicU64,
    /// Bytes written to clients.
    pub net_output_bytes: AtomicU64,
}

impl ServerStats {
    /// CONFIG RESETSTAT: zeroes the counters (not the count of open connections).
    pub fn reset(&self) {
        for counter in [
            &self.connections_total,
            &self.connections_refused,
            &self.commands,
            &self.net_input_bytes,
            &self.net_output_bytes,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
    }
}

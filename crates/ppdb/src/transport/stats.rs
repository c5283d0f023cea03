//! Per-peer counters, updated lock-free by the connection tasks and read by
//! [`super::Transport::stats`] (the seed's network latency and throughput metrics).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

/// A snapshot of one peer's counters, both directions and both connections included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PeerStats {
    /// Bytes written to the peer, frame headers included.
    pub bytes_sent: u64,
    /// Bytes read from the peer, frame headers included.
    pub bytes_received: u64,
    /// Raft messages, requests and responses written to the peer.
    pub messages_sent: u64,
    /// Raft messages, requests and responses read from the peer.
    pub messages_received: u64,
    /// Outbound messages dropped: queue full, too large, or too many snapshots in flight.
    pub dropped: u64,
    /// Inbound messages from this peer dropped because the node's inbound queue was full.
    pub dropped_inbound: u64,
    /// Whether our outbound connection to the peer is up (handshake done).
    pub connected: bool,
    /// The last measured round-trip time, in microseconds (Ping/Pong).
    pub rtt_us_last: Option<u64>,
}

/// The live counters behind [`PeerStats`].
#[derive(Debug)]
pub(super) struct PeerCounters {
    pub bytes_sent: AtomicU64,
    pub bytes_received: AtomicU64,
    pub messages_sent: AtomicU64,
    pub messages_received: AtomicU64,
    pub dropped: AtomicU64,
    pub dropped_inbound: AtomicU64,
    pub connected: AtomicBool,
    /// `u64::MAX` until the first pong.
    pub rtt_us_last: AtomicU64,
}

impl Default for PeerCounters {
    fn default() -> PeerCounters {
        PeerCounters {
            bytes_sent: AtomicU64::new(0),
            bytes_received: AtomicU64::new(0),
            messages_sent: AtomicU64::new(0),
            messages_received: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            dropped_inbound: AtomicU64::new(0),
            connected: AtomicBool::new(false),
            rtt_us_last: AtomicU64::new(u64::MAX),
        }
    }
}

impl PeerCounters {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    /// The current values.
    pub fn read(&self) -> PeerStats {
        let rtt = self.rtt_us_last.load(Relaxed);
        PeerStats {
            bytes_sent: self.bytes_sent.load(Relaxed),
            bytes_received: self.bytes_received.load(Relaxed),
            messages_sent: self.messages_sent.load(Relaxed),
            messages_received: self.messages_received.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            dropped_inbound: self.dropped_inbound.load(Relaxed),
            connected: self.connected.load(Relaxed),
            rtt_us_last: (rtt != u64::MAX).then_some(rtt),
        }
    }
}

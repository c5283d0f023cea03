//! The memcached text protocol (memcached 1.6) beside RESP, on the same replicated key space: a
//! key set with memcached's `set` is a string to RESP's GET, and back.
//!
//! This folder owns the protocol only: its parser ([`parse`]), its reply writer ([`reply`]),
//! how each request becomes key-space operations ([`session`]), and the listener and its
//! connections ([`connection`]). What an item operation means is the key-value layer's
//! (`kv::memcached`), pure and replicated; operations reach the shards' leaders through the
//! node's executor (`server::client`), as RESP commands do. It must not keep state of its own beyond a
//! connection's buffers and the counters `stats` shows.
//!
//! Requests of a connection are answered in order, one after another, pipelined or not.

pub mod connection;
pub mod parse;
pub mod reply;
pub mod request;
pub mod session;

pub use connection::serve;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

/// The memcached listener's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemcachedSettings {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The largest data block a storage command may carry (memcached's `-I`).
    pub item_bytes_max: usize,
}

/// Counters of the memcached listener, as `stats` names them.
#[derive(Debug, Default)]
pub struct McStats {
    /// Connections accepted since start.
    pub connections_total: AtomicU64,
    /// Connections refused over `maxclients`.
    pub connections_refused: AtomicU64,
    /// Keys asked for by get, gets, gat, gats and mg.
    pub cmd_get: AtomicU64,
    /// Storage commands.
    pub cmd_set: AtomicU64,
    /// flush_all commands.
    pub cmd_flush: AtomicU64,
    /// touch commands.
    pub cmd_touch: AtomicU64,
    /// Keys found.
    pub get_hits: AtomicU64,
    /// Keys not found.
    pub get_misses: AtomicU64,
}

impl McStats {
    /// The command counters with their `stats` names.
    pub fn counters(&self) -> [(&'static str, u64); 6] {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        [
            ("cmd_get", get(&self.cmd_get)),
            ("cmd_set", get(&self.cmd_set)),
            ("cmd_flush", get(&self.cmd_flush)),
            ("cmd_touch", get(&self.cmd_touch)),
            ("get_hits", get(&self.get_hits)),
            ("get_misses", get(&self.get_misses)),
        ]
    }
}

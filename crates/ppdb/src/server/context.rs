//! What every client connection shares: the executor, limits, counters, the registry of open
//! connections, and the node's report (INFO is rendered in `super::info`).

use super::clients::ClientRegistry;
use super::executor::Executor;
use super::report::NodeReport;
use super::resp::RespLimits;
use super::settings::ServerSettings;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

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

/// Shared by all connections of a node.
pub struct ServerContext {
    /// Runs key-space commands.
    pub executor: Executor,
    /// Request parsing limits.
    pub limits: RespLimits,
    /// CONFIG GET/SET's settings, among them the client limits in force.
    pub settings: ServerSettings,
    /// Counters.
    pub stats: ServerStats,
    /// Status reports for INFO.
    pub report: NodeReport,
    /// When the node started.
    pub started: Instant,
    /// The same moment by the wall clock, in seconds since the Unix epoch (LASTSAVE).
    pub started_unix_s: u64,
    /// The open client connections (CLIENT LIST, CLIENT KILL).
    pub clients: Arc<ClientRegistry>,
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

impl ServerContext {
    /// When the node started, in seconds since the Unix epoch.
    pub fn started_unix_s(&self) -> u64 {
        self.started_unix_s
    }
}

//! What every client connection shares: the executor, limits, counters, and INFO.

use super::executor::Executor;
use super::memory::human_bytes;
use super::report::{MemoryDoc, NodeReport};
use super::resp::RespLimits;
use super::settings::ServerSettings;
use crate::kv::KvRead;
use bytes::Bytes;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
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
}

impl ServerContext {
    /// The INFO text for the requested sections (all when none).
    pub async fn info(&self, sections: &[Bytes]) -> String {
        let wanted = |name: &str| {
            sections.is_empty()
                || sections.iter().any(|s| {
                    s.eq_ignore_ascii_case(name.as_bytes())
                        || s.eq_ignore_ascii_case(b"all")
                        || s.eq_ignore_ascii_case(b"everything")
                        || s.eq_ignore_ascii_case(b"default")
                })
        };
        let mut out = String::new();
        if wanted("server") {
            let _ = write!(
                out,
                "# Server\r\nredis_version:7.2.0\r\nppdb_version:{}\r\nredis_mode:cluster\r\nprocess_id:{}\r\n\
                 tcp_port:{}\r\nuptime_in_seconds:{}\r\n\r\n",
                env!("CARGO_PKG_VERSION"),
                std::process::id(),
                self.report.client_addr.port(),
                self.started.elapsed().as_secs()
            );
        }
        if wanted("clients") {
            let _ = write!(
                out,
                "# Clients\r\nconnected_clients:{}\r\n\r\n",
                self.stats.connections_open.load(Ordering::Relaxed)
            );
        }
        if wanted("stats") {
            let _ = write!(
                out,
                "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\nrejected_connections:{}\r\n\r\n",
                self.stats.connections_total.load(Ordering::Relaxed),
                self.stats.commands.load(Ordering::Relaxed),
                self.stats.connections_refused.load(Ordering::Relaxed)
            );
        }
        if wanted("memory") {
            let memory = MemoryDoc::now(&self.report.memory);
            let _ = write!(
                out,
                "# Memory\r\nused_memory:{}\r\nused_memory_human:{}\r\nused_memory_rss:{}\r\n\
                 used_memory_rss_human:{}\r\nmaxmemory:{}\r\nmaxmemory_human:{}\r\nmaxmemory_policy:{}\r\n\r\n",
                memory.used_memory_bytes,
                human_bytes(memory.used_memory_bytes),
                memory.used_memory_rss_bytes,
                human_bytes(memory.used_memory_rss_bytes),
                memory.maxmemory_bytes,
                human_bytes(memory.maxmemory_bytes),
                memory.maxmemory_policy
            );
        }
        if wanted("replication") || wanted("cluster") {
            out.push_str("# Replication\r\nrole:master\r\n");
            if let Ok(status) = self.report.status().await {
                for shard in &status.shards {
                    let _ = write!(
                        out,
                        "shard{}:role={},term={},leader={},commit={},applied={}\r\n",
                        shard.shard, shard.role, shard.term, shard.leader, shard.commit, shard.applied
                    );
                }
            }
            out.push_str("\r\n");
        }
        if wanted("keyspace") {
            out.push_str("# Keyspace\r\n");
            if let Ok(crate::kv::Reply::Integer(keys)) = self.executor.read(&KvRead::DbSize).await {
                if keys > 0 {
                    let _ = write!(out, "db0:keys={keys},expires=0,avg_ttl=0\r\n");
                }
            }
            out.push_str("\r\n");
        }
        out
    }
}

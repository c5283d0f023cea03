//! INFO: the node's state in Redis's sections and field names, for the clients and tools that
//! read them (redis-cli, client libraries, monitoring agents, Redis's test harness).
//!
//! Only fields PPDB has a true answer for are listed. Some read as constants because PPDB has
//! no such activity: it never forks to save (`rdb_bgsave_in_progress:0`), never loads in the
//! background (`loading:0`) and never evicts (`evicted_keys:0`, the only policy is
//! `noeviction`). Every write is in the write-ahead log, fsynced, before it is acknowledged,
//! which is what `aof_enabled:1` tells a client. PPDB's own replication (per shard, Raft) is
//! listed after `role:master` as one `shardN:` line per shard.

use super::context::ServerContext;
use super::memory::human_bytes;
use super::report::MemoryDoc;
use crate::kv::{KvRead, Reply};
use bytes::Bytes;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;

/// The sections, in Redis's order; all of them are Redis's default sections.
const SECTIONS: [&str; 9] =
    ["server", "clients", "memory", "persistence", "stats", "replication", "cpu", "cluster", "keyspace"];

impl ServerContext {
    /// The INFO text for the requested sections (all when none, or `all`, `default`,
    /// `everything`); unknown section names add nothing, as in Redis.
    pub async fn info(&self, sections: &[Bytes]) -> String {
        let every = sections.is_empty()
            || sections.iter().any(|s| {
                ["all", "default", "everything"].iter().any(|word| s.eq_ignore_ascii_case(word.as_bytes()))
            });
        let mut out = String::new();
        for section in SECTIONS {
            if every || sections.iter().any(|s| s.eq_ignore_ascii_case(section.as_bytes())) {
                self.info_section(section, &mut out).await;
            }
        }
        out
    }

    async fn info_section(&self, section: &str, out: &mut String) {
        match section {
            "server" => self.info_server(out),
            "clients" => self.info_clients(out),
            "memory" => info_memory(&MemoryDoc::now(&self.report.memory), out),
            "persistence" => self.info_persistence(out),
            "stats" => self.info_stats(out),
            "replication" => self.info_replication(out).await,
            "cpu" => info_cpu(out),
            "cluster" => out.push_str("# Cluster\r\ncluster_enabled:0\r\n\r\n"),
            _ => self.info_keyspace(out).await,
        }
    }

    fn info_server(&self, out: &mut String) {
        let uptime_s = self.started.elapsed().as_secs();
        let executable = std::env::current_exe().map(|path| path.display().to_string()).unwrap_or_default();
        let _ = write!(
            out,
            "# Server\r\nredis_version:7.2.0\r\nppdb_version:{}\r\nredis_mode:cluster\r\nos:{}\r\n\
             arch_bits:{}\r\nprocess_id:{}\r\nprocess_supervised:no\r\ntcp_port:{}\r\n\
             server_time_usec:{}\r\nuptime_in_seconds:{uptime_s}\r\nuptime_in_days:{}\r\n\
             executable:{executable}\r\n\r\n",
            env!("CARGO_PKG_VERSION"),
            os_name(),
            usize::BITS,
            std::process::id(),
            self.report.client_addr.port(),
            crate::node::clock::wall_clock_ms().saturating_mul(1000),
            uptime_s / 86_400,
        );
    }

    fn info_clients(&self, out: &mut String) {
        let _ = write!(
            out,
            "# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\ntracking_clients:0\r\n\r\n",
            self.stats.connections_open.load(Ordering::Relaxed),
            self.settings.clients.maxclients(),
        );
    }

    fn info_persistence(&self, out: &mut String) {
        let _ = write!(
            out,
            "# Persistence\r\nloading:0\r\nasync_loading:0\r\nrdb_bgsave_in_progress:0\r\n\
             rdb_last_save_time:{}\r\nrdb_last_bgsave_status:ok\r\naof_enabled:1\r\n\
             aof_rewrite_in_progress:0\r\naof_rewrite_scheduled:0\r\n\r\n",
            self.started_unix_s()
        );
    }

    fn info_stats(&self, out: &mut String) {
        let stats = &self.stats;
        let load = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
        let txns = self.executor.txn_stats().counts();
        let _ = write!(
            out,
            "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\n\
             total_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\nrejected_connections:{}\r\n\
             evicted_keys:0\r\nevicted_clients:0\r\n\
             ppdb_transactions_committed:{}\r\nppdb_transactions_aborted:{}\r\n\
             ppdb_transaction_conflicts:{}\r\nppdb_transactions_resolved:{}\r\n\
             ppdb_transaction_success_rate:{:.4}\r\nppdb_transaction_locks_held:{}\r\n\
             acl_access_denied_auth:{}\r\n\
             acl_access_denied_cmd:{}\r\nacl_access_denied_key:{}\r\nacl_access_denied_channel:{}\r\n\r\n",
            load(&stats.connections_total),
            load(&stats.commands),
            load(&stats.net_input_bytes),
            load(&stats.net_output_bytes),
            load(&stats.connections_refused),
            txns.committed,
            txns.aborted,
            txns.conflicts,
            txns.resolved_committed + txns.resolved_aborted,
            txns.success_rate(),
            crate::txn::locks_held(),
            load(&self.access.stats.denied_auth),
            load(&self.access.stats.denied_cmd),
            load(&self.access.stats.denied_key),
            load(&self.access.stats.denied_channel),
        );
    }

    async fn info_replication(&self, out: &mut String) {
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

    async fn info_keyspace(&self, out: &mut String) {
        out.push_str("# Keyspace\r\n");
        if let Ok(Reply::Integer(keys @ 1..)) = self.executor.read(&KvRead::DbSize).await {
            let expires = match self.executor.read(&KvRead::Expires).await {
                Ok(Reply::Integer(expires)) => expires,
                _ => 0,
            };
            // avg_ttl is Redis's sampled estimate; PPDB does not sample, and 0 is what Redis
            // shows before it has one.
            let _ = write!(out, "db0:keys={keys},expires={expires},avg_ttl=0\r\n");
        }
        out.push_str("\r\n");
    }
}

fn info_memory(memory: &MemoryDoc, out: &mut String) {
    let total = total_system_memory_bytes();
    let _ = write!(
        out,
        "# Memory\r\nused_memory:{}\r\nused_memory_human:{}\r\nused_memory_rss:{}\r\n\
         used_memory_rss_human:{}\r\ntotal_system_memory:{total}\r\ntotal_system_memory_human:{}\r\n\
         maxmemory:{}\r\nmaxmemory_human:{}\r\nmaxmemory_policy:{}\r\n\r\n",
        memory.used_memory_bytes,
        human_bytes(memory.used_memory_bytes),
        memory.used_memory_rss_bytes,
        human_bytes(memory.used_memory_rss_bytes),
        human_bytes(total),
        memory.maxmemory_bytes,
        human_bytes(memory.maxmemory_bytes),
        memory.maxmemory_policy
    );
}

/// CPU time of the process and of its children (system, then user), as Redis prints it.
fn info_cpu(out: &mut String) {
    let seconds = |time: libc::timeval| time.tv_sec as f64 + time.tv_usec as f64 / 1e6;
    let usage = |who| {
        // SAFETY: getrusage writes into the zeroed struct we own.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: as above; `who` is RUSAGE_SELF or RUSAGE_CHILDREN.
        let ok = unsafe { libc::getrusage(who, &mut usage) } == 0;
        if ok {
            (seconds(usage.ru_stime), seconds(usage.ru_utime))
        } else {
            (0.0, 0.0)
        }
    };
    let (sys, user) = usage(libc::RUSAGE_SELF);
    let (sys_children, user_children) = usage(libc::RUSAGE_CHILDREN);
    let _ = write!(
        out,
        "# CPU\r\nused_cpu_sys:{sys:.6}\r\nused_cpu_user:{user:.6}\r\n\
         used_cpu_sys_children:{sys_children:.6}\r\nused_cpu_user_children:{user_children:.6}\r\n\r\n"
    );
}

/// The kernel's name, release and machine (`Linux 6.1.0 x86_64`), as Redis's `os` field.
fn os_name() -> String {
    // SAFETY: uname writes into the zeroed struct we own.
    let mut name: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::uname(&mut name) } != 0 {
        return String::new();
    }
    let field = |chars: &[libc::c_char]| {
        let bytes: Vec<u8> = chars.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    format!("{} {} {}", field(&name.sysname), field(&name.release), field(&name.machine))
}

/// The machine's physical memory.
fn total_system_memory_bytes() -> u64 {
    // SAFETY: sysconf only reads system constants.
    let (pages, page_bytes) =
        unsafe { (libc::sysconf(libc::_SC_PHYS_PAGES), libc::sysconf(libc::_SC_PAGESIZE)) };
    u64::try_from(pages).unwrap_or(0).saturating_mul(u64::try_from(page_bytes).unwrap_or(0))
}

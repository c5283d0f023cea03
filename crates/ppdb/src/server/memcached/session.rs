//! Runs parsed memcached requests against the cluster and writes their replies: each key's
//! operation goes to its shard's leader through the node's [`Executor`], as a RESP command's
//! does, so an item is replicated and read linearizably like any key.
//!
//! PPDB's own conditions (no quorum, a timeout with the outcome unknown, a node over its
//! memory limit) are answered `SERVER_ERROR <CODE> <message>`, the seed's code first.

use super::reply;
use super::request::{MetaFlags, Request, StatsGroup};
use super::{McStats, MemcachedSettings};
use crate::error::Error;
use crate::kv::memcached::{McExpiry, McItem, McOutcome, McWrite, StoreMode};
use crate::kv::{KvRead, KvWrite, Reply, WriteOp};
use crate::server::client::executor::Executor;
use crate::server::client::failure::Failure;
use crate::server::client::forward::ShardOp;
use crate::server::context::ServerContext;
use crate::server::memory::used_memory_bytes;
use std::sync::atomic::Ordering;

/// What the connection does after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Read the next request.
    Continue,
    /// Close the connection (quit).
    Close,
}

/// The version `version` and `stats` report: the memcached protocol release PPDB follows.
const PROTOCOL_VERSION: &str = "1.6.18";

/// What a request needs from the node.
pub struct McSession<'a> {
    /// The node's shared server state.
    pub ctx: &'a ServerContext,
    /// The memcached listener's settings.
    pub settings: &'a MemcachedSettings,
    /// The memcached counters.
    pub stats: &'a McStats,
}

fn server_error(out: &mut Vec<u8>, error: &Error) {
    reply::line(out, &format!("SERVER_ERROR {}", Failure::from(error)));
}

fn counter(counter: &std::sync::atomic::AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl McSession<'_> {
    fn executor(&self) -> &Executor {
        &self.ctx.executor
    }

    async fn write(&self, op: McWrite) -> Result<McOutcome, Error> {
        let shard = op.key().map_or(1, |key| self.executor().router().shard_of(key).0);
        let write = ShardOp::Write(KvWrite::unstamped(WriteOp::Memcached(op)));
        let reply = self.executor().on_shard(shard, write).await?;
        McOutcome::from_reply(reply.clone())
            .ok_or_else(|| Error::State(format!("a memcached write was answered {reply:?}")))
    }

    async fn read(&self, key: &[u8]) -> Result<Option<McItem>, Error> {
        let shard = self.executor().router().shard_of(key).0;
        match self.executor().on_shard(shard, ShardOp::Read(KvRead::McGet { key: key.to_vec() })).await? {
            Reply::Nil => Ok(None),
            reply => McItem::from_reply(reply.clone())
                .map(Some)
                .ok_or_else(|| Error::State(format!("a memcached read was answered {reply:?}"))),
        }
    }

    /// Whether the node is over `maxmemory`: storage commands are then refused.
    fn out_of_memory(&self) -> bool {
        self.ctx.settings.memory.is_exceeded(used_memory_bytes())
    }

    /// Runs `request`, appending its reply to `out`.
    pub async fn run(&self, request: Request, out: &mut Vec<u8>) -> Flow {
        match request {
            Request::Store { mode, key, flags, exptime, value, cas, noreply } => {
                counter(&self.stats.cmd_set, 1);
                let op =
                    McWrite::Store { mode, key, value, flags, expiry: McExpiry::from_exptime(exptime), cas };
                let mut reply = Vec::new();
                self.store(op, &mut reply).await;
                if !noreply {
                    out.extend_from_slice(&reply);
                }
            }
            Request::Get { keys, with_cas, touch } => self.get(&keys, with_cas, touch, out).await,
            Request::Delete { key, noreply } => {
                let outcome = self.write(McWrite::Delete { key, cas: None }).await;
                self.answer(outcome, noreply, out);
            }
            Request::Delta { key, decrement, delta, noreply } => {
                let outcome =
                    self.write(McWrite::Delta { key, decrement, delta, cas: None, vivify: None }).await;
                self.answer(outcome, noreply, out);
            }
            Request::Touch { key, exptime, noreply } => {
                counter(&self.stats.cmd_touch, 1);
                let op = McWrite::Touch { key, expiry: McExpiry::from_exptime(exptime), fetch: false };
                let outcome = self.write(op).await;
                self.answer(outcome, noreply, out);
            }
            Request::FlushAll { delay, noreply } => {
                counter(&self.stats.cmd_flush, 1);
                let delay = McExpiry::from_exptime(delay.max(0));
                let mut result = Ok(McOutcome::Ok);
                for shard in self.executor().router().shards().map(|shard| shard.0) {
                    let op =
                        ShardOp::Write(KvWrite::unstamped(WriteOp::Memcached(McWrite::FlushAll { delay })));
                    if let Err(error) = self.executor().on_shard(shard, op).await {
                        result = Err(error);
                    }
                }
                self.answer(result, noreply, out);
            }
            Request::Version => {
                reply::line(out, &format!("VERSION {PROTOCOL_VERSION}-ppdb-{}", env!("CARGO_PKG_VERSION")))
            }
            Request::Verbosity { noreply } => {
                if !noreply {
                    reply::line(out, "OK");
                }
            }
            Request::Quit => return Flow::Close,
            Request::Stats(group) => self.stats(group, out).await,
            Request::MetaNoop => reply::line(out, "MN"),
            Request::MetaDebug { key } => match self.read(&key).await {
                Ok(Some(item)) => reply::line(
                    out,
                    &format!(
                        "ME {} exp={} la=0 cas={} fetch=no cls=1 size={}",
                        String::from_utf8_lossy(&key),
                        item.ttl_s,
                        item.cas,
                        item.value.len()
                    ),
                ),
                Ok(None) => reply::line(out, "EN"),
                Err(error) => server_error(out, &error),
            },
            Request::MetaGet { key, flags } => self.meta_get(&key, &flags, out).await,
            Request::MetaSet { key, value, flags } => self.meta_set(key, value, &flags, out).await,
            Request::MetaDelete { key, flags } => {
                let outcome = self.write(McWrite::Delete { key: key.clone(), cas: flags.compare_cas }).await;
                let code = match outcome {
                    Ok(McOutcome::Deleted) if flags.quiet => return Flow::Continue,
                    Ok(McOutcome::Deleted) => "HD",
                    Ok(McOutcome::Exists) => "EX",
                    Ok(McOutcome::NotFound) => "NF",
                    other => return self.answer(other, false, out),
                };
                reply::meta(out, code, &key, &flags, None, b"kO");
            }
            Request::MetaArithmetic { key, flags } => self.meta_arithmetic(key, &flags, out).await,
        }
        Flow::Continue
    }

    /// A storage command's reply (before `noreply` is considered).
    async fn store(&self, op: McWrite, out: &mut Vec<u8>) {
        if self.out_of_memory() {
            reply::line(out, "SERVER_ERROR out of memory storing object");
            return;
        }
        let outcome = self.write(op).await;
        self.answer(outcome, false, out);
    }

    /// The classic reply to an outcome.
    fn answer(&self, outcome: Result<McOutcome, Error>, noreply: bool, out: &mut Vec<u8>) -> Flow {
        if noreply {
            return Flow::Continue;
        }
        let text = match outcome {
            Err(error) => return server_error_flow(out, &error),
            Ok(outcome) => match outcome {
                McOutcome::Stored { .. } => "STORED".to_string(),
                McOutcome::NotStored => "NOT_STORED".into(),
                McOutcome::Exists => "EXISTS".into(),
                McOutcome::NotFound => "NOT_FOUND".into(),
                McOutcome::Deleted => "DELETED".into(),
                McOutcome::Touched => "TOUCHED".into(),
                McOutcome::Counter { value, .. } => value.to_string(),
                McOutcome::NonNumeric => {
                    "CLIENT_ERROR cannot increment or decrement non-numeric value".into()
                }
                McOutcome::Ok => "OK".into(),
                McOutcome::WrongType => format!("SERVER_ERROR {}", crate::kv::KvError::WrongType.message()),
                McOutcome::TooLarge => "SERVER_ERROR out of memory storing object".into(),
                McOutcome::Item(_) => "SERVER_ERROR STATE unexpected item".into(),
            },
        };
        reply::line(out, &text);
        Flow::Continue
    }

    /// get/gets/gat/gats: the keys looked up (or touched) together, answered in order.
    async fn get(&self, keys: &[Vec<u8>], with_cas: bool, touch: Option<i64>, out: &mut Vec<u8>) {
        counter(&self.stats.cmd_get, keys.len() as u64);
        let lookups = keys.iter().map(|key| async move {
            match touch {
                None => self.read(key).await,
                Some(exptime) => {
                    let expiry = McExpiry::from_exptime(exptime);
                    match self.write(McWrite::Touch { key: key.clone(), expiry, fetch: true }).await? {
                        McOutcome::Item(item) => Ok(Some(item)),
                        _ => Ok(None),
                    }
                }
            }
        });
        let found = futures::future::join_all(lookups).await;
        let mut body = Vec::new();
        for (key, item) in keys.iter().zip(found) {
            match item {
                Ok(Some(item)) => {
                    counter(&self.stats.get_hits, 1);
                    reply::value(&mut body, key, &item, with_cas);
                }
                Ok(None) => counter(&self.stats.get_misses, 1),
                Err(error) => {
                    server_error(out, &error);
                    return;
                }
            }
        }
        out.extend_from_slice(&body);
        reply::line(out, "END");
    }

    async fn meta_get(&self, key: &[u8], flags: &MetaFlags, out: &mut Vec<u8>) {
        counter(&self.stats.cmd_get, 1);
        let item = match flags.ttl {
            None => self.read(key).await,
            Some(exptime) => {
                let op = McWrite::Touch {
                    key: key.to_vec(),
                    expiry: McExpiry::from_exptime(exptime),
                    fetch: true,
                };
                self.write(op).await.map(|outcome| match outcome {
                    McOutcome::Item(item) => Some(item),
                    _ => None,
                })
            }
        };
        match item {
            Ok(Some(item)) => {
                counter(&self.stats.get_hits, 1);
                reply::meta(out, "HD", key, flags, Some(&item), b"tfcksO");
            }
            Ok(None) => {
                counter(&self.stats.get_misses, 1);
                if !flags.quiet {
                    reply::meta(out, "EN", key, flags, None, b"kO");
                }
            }
            Err(error) => server_error(out, &error),
        }
    }

    async fn meta_set(&self, key: Vec<u8>, value: Vec<u8>, flags: &MetaFlags, out: &mut Vec<u8>) {
        counter(&self.stats.cmd_set, 1);
        if self.out_of_memory() {
            reply::line(out, "SERVER_ERROR out of memory storing object");
            return;
        }
        let mode = match flags.mode.map(|m| m.to_ascii_uppercase()) {
            None | Some(b'S') => StoreMode::Set,
            Some(b'E') => StoreMode::Add,
            Some(b'A') => StoreMode::Append,
            Some(b'P') => StoreMode::Prepend,
            _ => StoreMode::Replace,
        };
        let op = McWrite::Store {
            mode,
            key: key.clone(),
            value,
            flags: flags.client_flags.unwrap_or(0),
            expiry: McExpiry::from_exptime(flags.ttl.unwrap_or(0)),
            cas: flags.compare_cas,
        };
        let (code, cas) = match self.write(op).await {
            Ok(McOutcome::Stored { .. }) if flags.quiet => return,
            Ok(McOutcome::Stored { cas }) => ("HD", Some(cas)),
            Ok(McOutcome::NotStored) => ("NS", None),
            Ok(McOutcome::Exists) => ("EX", None),
            Ok(McOutcome::NotFound) => ("NF", None),
            other => {
                self.answer(other, false, out);
                return;
            }
        };
        // memcached shows `c0` when nothing was stored.
        let item = McItem { value: Vec::new(), flags: 0, cas: cas.unwrap_or(0), ttl_s: -1 };
        reply::meta(out, code, &key, flags, Some(&item), b"ckO");
    }

    async fn meta_arithmetic(&self, key: Vec<u8>, flags: &MetaFlags, out: &mut Vec<u8>) {
        let decrement = matches!(flags.mode, Some(b'D' | b'd' | b'-'));
        if flags.mode.is_some_and(|m| !b"IiDd+-".contains(&m)) {
            reply::line(out, "CLIENT_ERROR invalid mode for ma M token");
            return;
        }
        let vivify = flags.vivify_ttl.map(|ttl| (flags.initial.unwrap_or(0), McExpiry::from_exptime(ttl)));
        let op = McWrite::Delta {
            key: key.clone(),
            decrement,
            delta: flags.delta.unwrap_or(1),
            cas: flags.compare_cas,
            vivify,
        };
        let (code, item) = match self.write(op).await {
            Ok(McOutcome::Counter { .. }) if flags.quiet => return,
            Ok(McOutcome::Counter { value, cas }) => {
                ("HD", Some(McItem { value: value.to_string().into_bytes(), flags: 0, cas, ttl_s: -1 }))
            }
            Ok(McOutcome::NotFound) => ("NF", None),
            Ok(McOutcome::Exists) => ("EX", None),
            other => {
                self.answer(other, false, out);
                return;
            }
        };
        reply::meta(out, code, &key, flags, item.as_ref(), b"ckO");
    }

    async fn stats(&self, group: StatsGroup, out: &mut Vec<u8>) {
        let ctx = self.ctx;
        let mut stat = |name: &str, value: String| reply::line(out, &format!("STAT {name} {value}"));
        match group {
            StatsGroup::General => {
                let items = match self.executor().read(&KvRead::DbSize).await {
                    Ok(Reply::Integer(n)) => n,
                    _ => 0,
                };
                let now_s = crate::node::clock::wall_clock_ms() / 1000;
                stat("pid", std::process::id().to_string());
                stat("uptime", ctx.started.elapsed().as_secs().to_string());
                stat("time", now_s.to_string());
                stat("version", format!("{PROTOCOL_VERSION}-ppdb-{}", env!("CARGO_PKG_VERSION")));
                stat("pointer_size", (usize::BITS).to_string());
                stat("max_connections", ctx.settings.clients.maxclients().to_string());
                stat("curr_connections", ctx.stats.connections_open.load(Ordering::Relaxed).to_string());
                stat("total_connections", self.stats.connections_total.load(Ordering::Relaxed).to_string());
                stat(
                    "rejected_connections",
                    self.stats.connections_refused.load(Ordering::Relaxed).to_string(),
                );
                for (name, value) in self.stats.counters() {
                    stat(name, value.to_string());
                }
                stat("curr_items", items.to_string());
                stat("bytes", used_memory_bytes().to_string());
                stat("limit_maxbytes", ctx.settings.memory.maxmemory_bytes().to_string());
                stat("threads", std::thread::available_parallelism().map_or(1, |n| n.get()).to_string());
            }
            StatsGroup::Settings => {
                stat("maxbytes", ctx.settings.memory.maxmemory_bytes().to_string());
                stat("maxconns", ctx.settings.clients.maxclients().to_string());
                stat("tcpport", self.settings.addr.port().to_string());
                stat("evictions", "off".into());
                stat("cas_enabled", "yes".into());
                stat("item_size_max", self.settings.item_bytes_max.to_string());
            }
            StatsGroup::Items => {
                if let Ok(Reply::Integer(n)) = self.executor().read(&KvRead::DbSize).await {
                    if n > 0 {
                        stat("items:1:number", n.to_string());
                    }
                }
            }
        }
        reply::line(out, "END");
    }
}

fn server_error_flow(out: &mut Vec<u8>, error: &Error) -> Flow {
    server_error(out, error);
    Flow::Continue
}

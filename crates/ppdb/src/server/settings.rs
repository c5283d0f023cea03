//! The settings a client reads with `CONFIG GET` and changes with `CONFIG SET`, by Redis's
//! names, and the client limits among them that connections consult as they run.
//!
//! [`ClientLimits`] holds the limits that `CONFIG SET` may change while the node runs
//! (`maxclients`, `timeout`, `client-query-buffer-limit`, `client-output-buffer-limit`, and
//! PPDB's own `client-write-timeout`) as atomics: every connection reads them at each step, so
//! a change applies to connections already open, as in Redis. Other settings answer `CONFIG
//! GET` with PPDB's fixed behaviour and refuse `CONFIG SET` as immutable, except that the
//! durability settings Redis changes at run time (`save`, `appendonly`, `appendfsync`) accept
//! the value they already have, so a client that sets them to PPDB's behaviour succeeds. A
//! `CONFIG SET` of several settings applies all of them or none.

use super::memory::{MemoryLimit, MemorySetting};
use super::resp::Frame;
use crate::config::ClientConfig;
use crate::kv::glob::glob_match;
use bytes::Bytes;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// File descriptors kept for everything but clients (peers, WAL segments, snapshots, admin
/// connections, the runtime): `maxclients` needs this many more from the system.
const FILES_RESERVED_COUNT: u64 = 256;
/// Largest `timeout` and `client-write-timeout`, in seconds (Redis's bound for `timeout`).
const TIMEOUT_S_MAX: u64 = i32::MAX as u64;
/// Smallest `client-query-buffer-limit` (Redis's).
const QUERY_BUFFER_BYTES_MIN: u64 = 1024 * 1024;
/// Settings Redis changes at run time that PPDB holds fixed: `CONFIG SET` accepts for them
/// only the value they have.
const FIXED_AT_RUN_TIME: [&str; 3] = ["save", "appendonly", "appendfsync"];

/// Mebibyte.
const MIB: u64 = 1024 * 1024;

/// The `client-output-buffer-limit` of pub/sub clients (connections subscribed to anything),
/// Redis's default `pubsub 32mb 8mb 60`, fixed: past 32 MiB of unsent messages and replies a
/// subscriber is closed at once, past 8 MiB for 60 seconds too.
pub const PUBSUB_OUTPUT_BUFFER_LIMIT: OutputBufferLimit =
    OutputBufferLimit { hard_bytes: 32 * MIB, soft_bytes: 8 * MIB, soft_s: 60 };

/// The `client-output-buffer-limit` of normal clients: unsent reply bytes past `hard_bytes`
/// close a client at once, past `soft_bytes` for `soft_s` seconds too; 0 disables a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputBufferLimit {
    /// The hard limit in bytes (0: none).
    pub hard_bytes: u64,
    /// The soft limit in bytes (0: none).
    pub soft_bytes: u64,
    /// How long a client may stay over the soft limit.
    pub soft_s: u64,
}

/// Why a `client-output-buffer-limit` value was refused (Redis's texts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputLimitError {
    /// Not a multiple of four words (class hard soft seconds), or of three for a flag.
    WrongArity,
    /// A class other than `normal` (PPDB has no replicas, and its pub/sub class is fixed).
    InvalidClass,
    /// A number or memory value did not parse.
    InvalidNumber,
}

impl fmt::Display for OutputLimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::WrongArity => "Wrong number of arguments in buffer limit configuration.",
            Self::InvalidClass => "Invalid client class specified in buffer limit configuration.",
            Self::InvalidNumber => {
                "Error in hard, soft or soft_seconds setting in buffer limit configuration."
            }
        })
    }
}

impl std::error::Error for OutputLimitError {}

impl OutputBufferLimit {
    /// Parses `HARD SOFT SECONDS` (the normal class's three values, memory units allowed).
    pub fn parse(text: &str) -> Result<OutputBufferLimit, OutputLimitError> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let [hard, soft, seconds] = words[..] else { return Err(OutputLimitError::WrongArity) };
        let number = |word: &str| parse_memory(word).ok_or(OutputLimitError::InvalidNumber);
        let soft_s = seconds.parse::<u64>().map_err(|_| OutputLimitError::InvalidNumber)?;
        Ok(OutputBufferLimit { hard_bytes: number(hard)?, soft_bytes: number(soft)?, soft_s })
    }

    /// Parses CONFIG SET's form: `normal HARD SOFT SECONDS`, class names as Redis's.
    fn parse_classes(text: &str) -> Result<OutputBufferLimit, OutputLimitError> {
        let words: Vec<&str> = text.split_whitespace().collect();
        if words.is_empty() || words.len() % 4 != 0 {
            return Err(OutputLimitError::WrongArity);
        }
        let mut limit = None;
        for class in words.chunks(4) {
            if !class[0].eq_ignore_ascii_case("normal") {
                return Err(OutputLimitError::InvalidClass);
            }
            limit = Some(Self::parse(&class[1..].join(" "))?);
        }
        limit.ok_or(OutputLimitError::WrongArity)
    }
}

/// Redis's `memtoull`: a byte count with an optional unit (`b`, `k` = 1000, `kb` = 1024, `m`,
/// `mb`, `g`, `gb`), case insensitive.
pub fn parse_memory(text: &str) -> Option<u64> {
    crate::config::parse_memory_bytes(text).ok()
}

/// The client limits in force; `CONFIG SET` changes them while connections run.
#[derive(Debug)]
pub struct ClientLimits {
    maxclients: AtomicU64,
    idle_timeout_s: AtomicU64,
    write_timeout_s: AtomicU64,
    query_buffer_bytes_max: AtomicU64,
    output_hard_bytes: AtomicU64,
    output_soft_bytes: AtomicU64,
    output_soft_s: AtomicU64,
}

/// A whole number of seconds as a timeout; 0 means none.
fn seconds(value: &AtomicU64) -> Option<Duration> {
    Some(value.load(Ordering::Relaxed)).filter(|&s| s > 0).map(Duration::from_secs)
}

impl ClientLimits {
    /// The limits of `config`; `maxclients` is what the system's file limit allows of it.
    pub fn new(config: &ClientConfig) -> ClientLimits {
        ClientLimits {
            maxclients: AtomicU64::new(config.maxclients),
            idle_timeout_s: AtomicU64::new(config.idle_timeout_s),
            write_timeout_s: AtomicU64::new(config.write_timeout_s),
            query_buffer_bytes_max: AtomicU64::new(config.query_buffer_bytes_max),
            output_hard_bytes: AtomicU64::new(config.output_buffer_hard_bytes),
            output_soft_bytes: AtomicU64::new(config.output_buffer_soft_bytes),
            output_soft_s: AtomicU64::new(config.output_buffer_soft_s),
        }
    }

    /// Most clients connected at once.
    pub fn maxclients(&self) -> u64 {
        self.maxclients.load(Ordering::Relaxed)
    }

    /// How long a client may be idle (none: forever).
    pub fn idle_timeout(&self) -> Option<Duration> {
        seconds(&self.idle_timeout_s)
    }

    /// How long a write may make no progress (none: forever).
    pub fn write_timeout(&self) -> Option<Duration> {
        seconds(&self.write_timeout_s)
    }

    /// Most bytes of a request held before it runs.
    pub fn query_buffer_bytes_max(&self) -> u64 {
        self.query_buffer_bytes_max.load(Ordering::Relaxed)
    }

    /// The output buffer limit of normal clients.
    pub fn output_buffer(&self) -> OutputBufferLimit {
        OutputBufferLimit {
            hard_bytes: self.output_hard_bytes.load(Ordering::Relaxed),
            soft_bytes: self.output_soft_bytes.load(Ordering::Relaxed),
            soft_s: self.output_soft_s.load(Ordering::Relaxed),
        }
    }

    /// Raises the process's open-file limit for the configured `maxclients`, as Redis does at
    /// startup; when the system allows fewer files, lowers `maxclients` to fit and says so.
    pub fn fit_open_files_limit(&self) {
        let wanted = self.maxclients();
        if let Err(possible) = ensure_open_files(wanted + FILES_RESERVED_COUNT) {
            let reduced = possible.saturating_sub(FILES_RESERVED_COUNT).max(1);
            tracing::warn!(
                requested = wanted,
                open_files_max = possible,
                maxclients = reduced,
                "maxclients reduced to fit the open files limit; raise `ulimit -n` for more"
            );
            self.maxclients.store(reduced, Ordering::Relaxed);
        }
    }

    /// Validates one `CONFIG SET name value` for a client limit; `None` if `name` is not one.
    fn parse_change(name: &str, value: &str) -> Option<Result<Change, String>> {
        let integer = |max: u64| -> Result<u64, String> {
            let n: i64 =
                value.parse().map_err(|_| "argument couldn't be parsed into an integer".to_owned())?;
            u64::try_from(n)
                .ok()
                .filter(|&n| n <= max)
                .ok_or_else(|| format!("argument must be between 0 and {max} inclusive"))
        };
        let change = match name {
            "maxclients" => integer(u64::from(u32::MAX)).and_then(|n| {
                if n == 0 {
                    return Err(format!("argument must be between 1 and {} inclusive", u32::MAX));
                }
                ensure_open_files(n + FILES_RESERVED_COUNT).map(|()| Change::MaxClients(n)).map_err(|possible| {
                    format!(
                        "The operating system is not able to handle the specified number of clients, try with {}",
                        possible.saturating_sub(FILES_RESERVED_COUNT)
                    )
                })
            }),
            "timeout" => integer(TIMEOUT_S_MAX).map(Change::IdleTimeout),
            "client-write-timeout" => integer(TIMEOUT_S_MAX).map(Change::WriteTimeout),
            "client-query-buffer-limit" => match parse_memory(value) {
                None => Err("argument must be a memory value".to_owned()),
                Some(n) if n < QUERY_BUFFER_BYTES_MIN => {
                    Err(format!("argument must be between {QUERY_BUFFER_BYTES_MIN} and {} inclusive", i64::MAX))
                }
                Some(n) if n < crate::kv::command::VALUE_BYTES_MAX => {
                    Err("proto-max-bulk-len can't be greater than client-query-buffer-limit".to_owned())
                }
                Some(n) => Ok(Change::QueryBuffer(n)),
            },
            "client-output-buffer-limit" => {
                OutputBufferLimit::parse_classes(value).map(Change::OutputBuffer).map_err(|e| e.to_string())
            }
            _ => return None,
        };
        Some(change)
    }

    fn apply(&self, change: Change) {
        let store = |cell: &AtomicU64, value: u64| cell.store(value, Ordering::Relaxed);
        match change {
            Change::MaxClients(n) => store(&self.maxclients, n),
            Change::IdleTimeout(s) => store(&self.idle_timeout_s, s),
            Change::WriteTimeout(s) => store(&self.write_timeout_s, s),
            Change::QueryBuffer(n) => store(&self.query_buffer_bytes_max, n),
            Change::OutputBuffer(limit) => {
                store(&self.output_hard_bytes, limit.hard_bytes);
                store(&self.output_soft_bytes, limit.soft_bytes);
                store(&self.output_soft_s, limit.soft_s);
            }
            Change::Memory(_) => {}
        }
    }
}

/// One accepted `CONFIG SET` change, applied once all of them are valid.
#[derive(Debug, Clone, Copy)]
enum Change {
    MaxClients(u64),
    IdleTimeout(u64),
    WriteTimeout(u64),
    QueryBuffer(u64),
    OutputBuffer(OutputBufferLimit),
    /// A memory setting, applied to the node's [`MemoryLimit`].
    Memory(MemorySetting),
}

/// Makes sure the process may open `wanted` files, raising its soft limit toward the hard
/// one if needed; on failure, the most it may open.
fn ensure_open_files(wanted: u64) -> Result<(), u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(0);
    }
    if limit.rlim_cur >= wanted {
        return Ok(());
    }
    let raised = libc::rlimit { rlim_cur: wanted.min(limit.rlim_max), rlim_max: limit.rlim_max };
    // SAFETY: setrlimit reads the struct we own.
    let applied = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0;
    let now = if applied { raised.rlim_cur } else { limit.rlim_cur };
    if now >= wanted {
        Ok(())
    } else {
        Err(now)
    }
}

/// The settings `CONFIG GET` and `CONFIG SET` see.
#[derive(Debug)]
pub struct ServerSettings {
    /// The client limits, changeable at run time.
    pub clients: ClientLimits,
    /// `proto-max-bulk-len`: the largest bulk argument.
    pub bulk_bytes_max: u64,
    /// `maxmemory` and `maxmemory-policy`, changeable at run time.
    pub memory: Arc<MemoryLimit>,
    /// `port` and `bind`: where clients connect.
    pub client_addr: SocketAddr,
    /// `dir`: the node's data directory.
    pub data_dir: PathBuf,
}

impl ServerSettings {
    /// The settings with their names and current values, in CONFIG GET's order.
    fn entries(&self) -> Vec<(&'static str, String)> {
        let clients = &self.clients;
        let output = clients.output_buffer();
        vec![
            // Every write is in the write-ahead log, fsynced, before it is acknowledged.
            ("appendonly", "yes".into()),
            ("appendfsync", "always".into()),
            // No RDB snapshots on a schedule (Raft snapshots are internal).
            ("save", String::new()),
            ("databases", "1".into()),
            ("maxmemory", self.memory.maxmemory_bytes().to_string()),
            ("maxmemory-policy", self.memory.policy().as_str().into()),
            ("timeout", clients.idle_timeout_s.load(Ordering::Relaxed).to_string()),
            ("maxclients", clients.maxclients().to_string()),
            ("proto-max-bulk-len", self.bulk_bytes_max.to_string()),
            ("client-query-buffer-limit", clients.query_buffer_bytes_max().to_string()),
            (
                "client-output-buffer-limit",
                format!(
                    "normal {} {} {} pubsub {} {} {}",
                    output.hard_bytes,
                    output.soft_bytes,
                    output.soft_s,
                    PUBSUB_OUTPUT_BUFFER_LIMIT.hard_bytes,
                    PUBSUB_OUTPUT_BUFFER_LIMIT.soft_bytes,
                    PUBSUB_OUTPUT_BUFFER_LIMIT.soft_s
                ),
            ),
            ("client-write-timeout", clients.write_timeout_s.load(Ordering::Relaxed).to_string()),
            ("port", self.client_addr.port().to_string()),
            ("bind", self.client_addr.ip().to_string()),
            ("dir", self.data_dir.display().to_string()),
            // Passwords are kept only as hashes (ACL GETUSER default shows them); CONFIG SET
            // requirepass is answered by `super::acl`.
            ("requirepass", String::new()),
            // DEBUG is refused as a Redis with this setting refuses it.
            ("enable-debug-command", "no".into()),
        ]
    }

    /// CONFIG GET's answer: each setting whose name matches one of `patterns` (globs, case
    /// insensitive). Only settings PPDB has a true answer for are listed (clients and tools
    /// such as redis-benchmark read `save` and `appendonly` to learn about durability); an
    /// unknown name matches nothing, as in Redis.
    pub fn config_get(&self, patterns: &[Bytes]) -> Frame {
        let patterns: Vec<Vec<u8>> = patterns.iter().map(|pattern| pattern.to_ascii_lowercase()).collect();
        let matches = |name: &str| patterns.iter().any(|pattern| glob_match(pattern, name.as_bytes()));
        Frame::Map(
            self.entries()
                .into_iter()
                .filter(|(name, _)| matches(name))
                .map(|(name, value)| (Frame::bulk(name.as_bytes()), Frame::Bulk(Bytes::from(value))))
                .collect(),
        )
    }

    /// CONFIG SET's answer: `+OK` after applying every change, or Redis's error for the first
    /// change that cannot be made (and then none is made).
    pub fn config_set(&self, changes: &[(Bytes, Bytes)]) -> Frame {
        let entries = self.entries();
        let current = |name: &str| entries.iter().find(|(known, _)| *known == name).map(|(_, value)| value);
        let mut accepted = Vec::with_capacity(changes.len());
        let mut seen: Vec<String> = Vec::with_capacity(changes.len());
        for (name, value) in changes {
            let name = String::from_utf8_lossy(name).to_ascii_lowercase();
            let value = String::from_utf8_lossy(value);
            let failed = |reason: &str| {
                Frame::error(format!(
                    "ERR CONFIG SET failed (possibly related to argument '{name}') - {reason}"
                ))
            };
            if seen.contains(&name) {
                return failed("duplicate parameter");
            }
            if let Some(setting) = MemorySetting::parse(name.as_bytes(), value.as_bytes()) {
                match setting {
                    Ok(setting) => accepted.push(Change::Memory(setting)),
                    Err(error) => return Frame::from(&error),
                }
                seen.push(name);
                continue;
            }
            match ClientLimits::parse_change(&name, &value) {
                Some(Ok(change)) => accepted.push(change),
                Some(Err(reason)) => return failed(&reason),
                None if FIXED_AT_RUN_TIME.contains(&name.as_str())
                    && current(&name).is_some_and(|now| now.eq_ignore_ascii_case(&value)) => {}
                None if current(&name).is_some() => return failed("can't set immutable config"),
                None => {
                    return Frame::error(format!(
                        "ERR Unknown option or number of arguments for CONFIG SET - '{name}'"
                    ))
                }
            }
            seen.push(name);
        }
        for change in accepted {
            match change {
                Change::Memory(setting) => self.memory.apply(setting),
                change => self.clients.apply(change),
            }
        }
        Frame::simple("OK")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ServerSettings {
        ServerSettings {
            clients: ClientLimits::new(&ClientConfig::default()),
            bulk_bytes_max: 1 << 20,
            memory: Arc::new(MemoryLimit::new(0, crate::config::MaxMemoryPolicy::NoEviction)),
            client_addr: "127.0.0.1:7001".parse().unwrap(),
            data_dir: PathBuf::from("/var/lib/ppdb/node-1"),
        }
    }

    fn set(settings: &ServerSettings, pairs: &[(&str, &str)]) -> Frame {
        let pairs: Vec<(Bytes, Bytes)> =
            pairs.iter().map(|(n, v)| (Bytes::from(n.to_string()), Bytes::from(v.to_string()))).collect();
        settings.config_set(&pairs)
    }

    fn get(settings: &ServerSettings, name: &str) -> String {
        match settings.config_get(&[Bytes::from(name.to_string())]) {
            Frame::Map(pairs) => match pairs.as_slice() {
                [(_, Frame::Bulk(value))] => String::from_utf8_lossy(value).into_owned(),
                other => panic!("{name}: {other:?}"),
            },
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn memory_values_read_like_redis() {
        assert_eq!(parse_memory("1024"), Some(1024));
        assert_eq!(parse_memory("1k"), Some(1000));
        assert_eq!(parse_memory("1KB"), Some(1024));
        assert_eq!(parse_memory("64mb"), Some(64 << 20));
        assert_eq!(parse_memory("1gb"), Some(1 << 30));
        assert_eq!(parse_memory("-1"), None);
        assert_eq!(parse_memory("1tb"), None);
        assert_eq!(parse_memory("99999999999gb"), None, "overflow");
    }

    #[test]
    fn config_set_changes_client_limits_at_run_time() {
        let settings = settings();
        assert_eq!(set(&settings, &[("timeout", "30"), ("MAXCLIENTS", "100")]), Frame::simple("OK"));
        assert_eq!(settings.clients.idle_timeout(), Some(Duration::from_secs(30)));
        assert_eq!(get(&settings, "maxclients"), "100");
        assert_eq!(
            set(&settings, &[("client-output-buffer-limit", "normal 8mb 1mb 5")]),
            Frame::simple("OK")
        );
        assert_eq!(
            get(&settings, "client-output-buffer-limit"),
            "normal 8388608 1048576 5 pubsub 33554432 8388608 60",
            "the pub/sub class is Redis's default, fixed"
        );
        assert_eq!(set(&settings, &[("client-query-buffer-limit", "2gb")]), Frame::simple("OK"));
        assert_eq!(get(&settings, "client-query-buffer-limit"), (2u64 << 30).to_string());
    }

    #[test]
    fn config_set_errors_read_like_redis_and_change_nothing() {
        let settings = settings();
        let error = |frame: Frame| match frame {
            Frame::Error(text) => text,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            error(set(&settings, &[("timeout", "5"), ("maxclients", "abc")])),
            "ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument couldn't be parsed into an integer"
        );
        assert_eq!(get(&settings, "timeout"), "0", "nothing applied");
        assert_eq!(
            error(set(&settings, &[("timeout", "-1")])),
            "ERR CONFIG SET failed (possibly related to argument 'timeout') - argument must be between 0 and 2147483647 inclusive"
        );
        assert_eq!(
            error(set(&settings, &[("nosuch", "1")])),
            "ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'"
        );
        assert_eq!(
            error(set(&settings, &[("appendonly", "no")])),
            "ERR CONFIG SET failed (possibly related to argument 'appendonly') - can't set immutable config"
        );
        assert_eq!(
            error(set(&settings, &[("save", ""), ("appendonly", "no")])),
            "ERR CONFIG SET failed (possibly related to argument 'appendonly') - can't set immutable config"
        );
        assert_eq!(
            error(set(&settings, &[("port", "7002")])),
            "ERR CONFIG SET failed (possibly related to argument 'port') - can't set immutable config"
        );
        assert_eq!(
            error(set(&settings, &[("client-output-buffer-limit", "normal 1mb")])),
            "ERR CONFIG SET failed (possibly related to argument 'client-output-buffer-limit') - Wrong number of arguments in buffer limit configuration."
        );
        assert_eq!(
            error(set(&settings, &[("client-output-buffer-limit", "pubsub 1mb 1mb 1")])),
            "ERR CONFIG SET failed (possibly related to argument 'client-output-buffer-limit') - Invalid client class specified in buffer limit configuration."
        );
        assert_eq!(
            error(set(&settings, &[("timeout", "1"), ("timeout", "2")])),
            "ERR CONFIG SET failed (possibly related to argument 'timeout') - duplicate parameter"
        );
        assert_eq!(
            error(set(&settings, &[("client-query-buffer-limit", "1kb")])),
            format!("ERR CONFIG SET failed (possibly related to argument 'client-query-buffer-limit') - argument must be between 1048576 and {} inclusive", i64::MAX)
        );
    }

    #[test]
    fn durability_settings_accept_the_value_they_have_and_where_clients_connect_is_listed() {
        let settings = settings();
        assert_eq!(
            set(&settings, &[("save", ""), ("appendonly", "YES"), ("appendfsync", "always")]),
            Frame::simple("OK")
        );
        assert_eq!(get(&settings, "port"), "7001");
        assert_eq!(get(&settings, "bind"), "127.0.0.1");
        assert_eq!(get(&settings, "dir"), "/var/lib/ppdb/node-1");
        assert_eq!(get(&settings, "enable-debug-command"), "no");
    }

    #[test]
    fn maxclients_beyond_the_hard_file_limit_is_refused() {
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit writes into the struct we own.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
        if limit.rlim_max >= u64::from(u32::MAX) {
            return; // no hard limit to hit
        }
        let frame = set(&settings(), &[("maxclients", &u32::MAX.to_string())]);
        let Frame::Error(text) = frame else { panic!("{frame:?}") };
        assert!(
            text.contains("The operating system is not able to handle the specified number of clients"),
            "{text}"
        );
    }
}

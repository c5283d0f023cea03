//! The node's memory limit, Redis's `maxmemory` with the `noeviction` policy.
//!
//! Used memory is the key-value bytes of the shards this process hosts, as the state machines
//! count them ([`crate::kv::state_machine::stored_bytes`]: keys, values and a fixed overhead
//! per key), not the allocator's figure. The count is exact and cheap (each apply updates it),
//! the same on every replica of a shard, and it falls as soon as a key is deleted; the
//! allocator's figure would also hold the Raft log (which keeps a deleted value until the
//! next snapshot), buffers of snapshots in progress and pages freed but kept mapped, so a
//! write refused over the limit might stay refused after the DEL that should have made room.
//! What the process really holds is reported beside it as `used_memory_rss`.
//!
//! Over the limit, a request flagged `denyoom` in Redis's command table (SET, APPEND, INCR,
//! ...) is refused with Redis's `-OOM` error before it is parsed, queued or proposed; reads,
//! DEL and the other commands that free memory still run. Inside MULTI every command but EXEC,
//! DISCARD, QUIT and RESET is refused and the transaction aborted, and EXEC is refused if it
//! would run a `denyoom` command, as Redis does.

use super::resp::command::table::lookup;
use super::resp::command::{CommandError, Transaction};
use crate::config::{parse_memory_bytes, MaxMemoryPolicy};
use bytes::Bytes;
use std::sync::atomic::{AtomicU64, Ordering};

/// The key-value bytes of every shard this process hosts: a process is a node, so this is the
/// node's used memory (see the module docs).
static HOSTED_DATA_BYTES: AtomicU64 = AtomicU64::new(0);

/// Bytes the shards of this node hold (Redis's `used_memory`).
pub fn used_memory_bytes() -> u64 {
    HOSTED_DATA_BYTES.load(Ordering::Relaxed)
}

/// A shard's part of the node's used memory: [`ShardMemory::publish`] keeps it equal to the
/// shard's data bytes, and dropping the shard (replaced by a snapshot, or removed) takes it back.
#[derive(Debug, Default)]
pub struct ShardMemory {
    published: u64,
}

impl ShardMemory {
    /// Makes the shard's part `data_bytes`.
    pub fn publish(&mut self, data_bytes: u64) {
        if data_bytes > self.published {
            HOSTED_DATA_BYTES.fetch_add(data_bytes - self.published, Ordering::Relaxed);
        } else if data_bytes < self.published {
            HOSTED_DATA_BYTES.fetch_sub(self.published - data_bytes, Ordering::Relaxed);
        }
        self.published = data_bytes;
    }
}

impl Drop for ShardMemory {
    fn drop(&mut self) {
        self.publish(0);
    }
}

/// The memory the process holds in RAM (its resident set), from `/proc/self/statm`; 0 where
/// the system does not say.
pub fn rss_bytes() -> u64 {
    let Ok(statm) = std::fs::read_to_string("/proc/self/statm") else { return 0 };
    let resident_pages: u64 = statm.split_whitespace().nth(1).and_then(|n| n.parse().ok()).unwrap_or(0);
    // SAFETY: sysconf reads a system constant; no memory is passed.
    let page_bytes = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    resident_pages.saturating_mul(u64::try_from(page_bytes).unwrap_or(0))
}

/// A number of bytes as Redis's INFO writes it for people: `912B`, `1.50K`, `100.00M`, ...
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [(&str, u32); 5] = [("P", 5), ("T", 4), ("G", 3), ("M", 2), ("K", 1)];
    for (unit, power) in UNITS {
        let scale = 1024u64.pow(power);
        if bytes >= scale {
            return format!("{:.2}{unit}", bytes as f64 / scale as f64);
        }
    }
    format!("{bytes}B")
}

/// The limit and its policy, changed at run time by CONFIG SET.
#[derive(Debug)]
pub struct MemoryLimit {
    maxmemory_bytes: AtomicU64,
    policy: MaxMemoryPolicy,
}

/// A memory setting CONFIG SET may change, with its new value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemorySetting {
    /// `maxmemory`, in bytes.
    MaxMemory(u64),
    /// `maxmemory-policy`.
    Policy(MaxMemoryPolicy),
}

impl MemorySetting {
    /// Reads CONFIG SET's `name value`: `None` if `name` is not a memory setting.
    pub fn parse(name: &[u8], value: &[u8]) -> Option<Result<MemorySetting, CommandError>> {
        let value = String::from_utf8_lossy(value);
        if name.eq_ignore_ascii_case(b"maxmemory") {
            return Some(parse_memory_bytes(&value).map(MemorySetting::MaxMemory).map_err(|_| {
                CommandError::ConfigSetFailed {
                    name: "maxmemory",
                    reason: "argument must be a memory value".into(),
                }
            }));
        }
        if name.eq_ignore_ascii_case(b"maxmemory-policy") {
            return Some(
                value
                    .parse()
                    .map(MemorySetting::Policy)
                    .map_err(|reason| CommandError::ConfigSetFailed { name: "maxmemory-policy", reason }),
            );
        }
        None
    }
}

impl MemoryLimit {
    /// A limit of `maxmemory_bytes` (0: none) with `policy`.
    pub fn new(maxmemory_bytes: u64, policy: MaxMemoryPolicy) -> MemoryLimit {
        MemoryLimit { maxmemory_bytes: AtomicU64::new(maxmemory_bytes), policy }
    }

    /// The limit in bytes; 0 means none.
    pub fn maxmemory_bytes(&self) -> u64 {
        self.maxmemory_bytes.load(Ordering::Relaxed)
    }

    /// The policy over the limit.
    pub fn policy(&self) -> MaxMemoryPolicy {
        self.policy
    }

    /// Applies a setting read by [`MemorySetting::parse`].
    pub fn apply(&self, setting: MemorySetting) {
        match setting {
            MemorySetting::MaxMemory(bytes) => self.maxmemory_bytes.store(bytes, Ordering::Relaxed),
            // `noeviction` is the only policy, so there is nothing to change.
            MemorySetting::Policy(MaxMemoryPolicy::NoEviction) => {}
        }
    }

    /// Whether used memory is over the limit (never without one).
    pub fn is_exceeded(&self, used_bytes: u64) -> bool {
        let max = self.maxmemory_bytes();
        max > 0 && used_bytes > max
    }

    /// Redis's refusal of the request `args` (name first) when the node's memory is over the
    /// limit, decided before it is parsed or queued (see the module docs); `None` lets it run.
    /// A request that is not a known command with the right number of arguments is left to
    /// the parser, whose error Redis gives first.
    pub fn refusal(&self, args: &[Bytes], transaction: Option<&Transaction>) -> Option<CommandError> {
        self.refusal_at(used_memory_bytes(), args, transaction)
    }

    fn refusal_at(
        &self,
        used_bytes: u64,
        args: &[Bytes],
        transaction: Option<&Transaction>,
    ) -> Option<CommandError> {
        if !self.is_exceeded(used_bytes) {
            return None;
        }
        let spec = lookup(args.first()?).filter(|spec| spec.arity_ok(args.len()))?;
        let refused = match (transaction, spec.name) {
            (None, _) => spec.denies_oom(),
            (Some(transaction), "exec") => transaction.grows_memory(),
            (Some(_), "discard" | "quit" | "reset") => false,
            (Some(_), _) => true,
        };
        refused.then_some(CommandError::OutOfMemory)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<Bytes> {
        words.iter().map(|w| Bytes::copy_from_slice(w.as_bytes())).collect()
    }

    #[test]
    fn over_the_limit_writes_that_grow_memory_are_refused_and_reads_and_deletes_run() {
        let limit = MemoryLimit::new(1000, MaxMemoryPolicy::NoEviction);
        let refused = |used, words: &[&str]| limit.refusal_at(used, &args(words), None);
        assert_eq!(refused(1001, &["SET", "k", "v"]), Some(CommandError::OutOfMemory));
        assert_eq!(refused(1001, &["append", "k", "v"]), Some(CommandError::OutOfMemory));
        assert_eq!(refused(1000, &["SET", "k", "v"]), None, "Redis refuses when used > maxmemory");
        for allowed in [&["GET", "k"][..], &["DEL", "k"], &["EXPIRE", "k", "1"], &["PING"], &["FLUSHALL"]] {
            assert_eq!(refused(5000, allowed), None, "{allowed:?}");
        }
        assert_eq!(refused(5000, &["SET", "k"]), None, "the arity error comes first");
        let unlimited = MemoryLimit::new(0, MaxMemoryPolicy::NoEviction);
        assert_eq!(unlimited.refusal_at(u64::MAX, &args(&["SET", "k", "v"]), None), None);
    }

    #[test]
    fn inside_multi_everything_but_exec_discard_quit_and_reset_is_refused() {
        let limit = MemoryLimit::new(1000, MaxMemoryPolicy::NoEviction);
        let mut transaction = Transaction::default();
        let refused = |words: &[&str], t: &Transaction| limit.refusal_at(2000, &args(words), Some(t));
        assert_eq!(refused(&["GET", "k"], &transaction), Some(CommandError::OutOfMemory));
        assert_eq!(refused(&["EXEC"], &transaction), None, "nothing queued grows memory");
        assert_eq!(refused(&["DISCARD"], &transaction), None);
        transaction.admit(&args(&["SET", "k", "v"]));
        assert!(transaction.grows_memory());
        assert_eq!(refused(&["EXEC"], &transaction), Some(CommandError::OutOfMemory));
    }

    #[test]
    fn config_set_reads_memory_values_and_refuses_other_policies() {
        let limit = MemoryLimit::new(0, MaxMemoryPolicy::NoEviction);
        let setting = MemorySetting::parse(b"MAXMEMORY", b"100mb").expect("a memory setting");
        limit.apply(setting.expect("valid"));
        assert_eq!(limit.maxmemory_bytes(), 100 * 1024 * 1024);
        let bad = MemorySetting::parse(b"maxmemory", b"lots").expect("a memory setting").unwrap_err();
        assert_eq!(
            bad.to_string(),
            "ERR CONFIG SET failed (possibly related to argument 'maxmemory') - argument must be a memory value"
        );
        let policy = MemorySetting::parse(b"maxmemory-policy", b"allkeys-lru").expect("a memory setting");
        assert!(policy.unwrap_err().to_string().contains("`allkeys-lru` is not supported"));
        assert!(MemorySetting::parse(b"timeout", b"0").is_none());
    }

    #[test]
    fn sizes_read_as_redis_writes_them() {
        assert_eq!(human_bytes(912), "912B");
        assert_eq!(human_bytes(1536), "1.50K");
        assert_eq!(human_bytes(100 * 1024 * 1024), "100.00M");
        assert_eq!(human_bytes(3 << 30), "3.00G");
    }

    #[test]
    fn a_shard_takes_its_part_back_when_dropped() {
        // Other tests' shards change the total at the same time: look at this shard's part
        // through a value no other test publishes.
        let part = 987_654_321_000;
        let mut shard = ShardMemory::default();
        shard.publish(part);
        assert!(used_memory_bytes() >= part);
        drop(shard);
        assert!(used_memory_bytes() < part);
    }
}

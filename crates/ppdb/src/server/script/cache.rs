//! The node's script cache: the bodies EVALSHA finds by SHA1, filled by SCRIPT LOAD and by
//! every EVAL (as Redis fills its cache), emptied by SCRIPT FLUSH.
//!
//! It is the node's own, not replicated: SCRIPT LOAD on one node does not make EVALSHA work
//! through another, as in Redis Cluster, where each node has its cache. Clients handle the
//! `NOSCRIPT` answer by sending the body (redis-py's and ioredis's scripts do it themselves).
//! Entries carry the body anyway, so the cache is never needed to apply the log.
//!
//! Bounded by [`SCRIPT_CACHE_BYTES_MAX`] and [`SCRIPT_CACHE_SCRIPTS_MAX`]: past them the
//! scripts cached first are dropped first.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use bytes::Bytes;

/// The most body bytes the cache holds.
pub const SCRIPT_CACHE_BYTES_MAX: usize = 64 * 1024 * 1024;
/// The most scripts the cache holds.
pub const SCRIPT_CACHE_SCRIPTS_MAX: usize = 16 * 1024;

/// Script bodies by the lower-case hex SHA1 of their text.
#[derive(Debug, Default)]
pub struct ScriptCache {
    inner: Mutex<Cached>,
}

#[derive(Debug, Default)]
struct Cached {
    bodies: BTreeMap<String, Bytes>,
    /// Digests in the order they were cached, oldest first.
    order: VecDeque<String>,
    bytes: usize,
}

/// The lower-case hex SHA1 of a script's body: its name for EVALSHA.
pub fn script_sha(body: &[u8]) -> String {
    sha1_smol::Sha1::from(body).digest().to_string()
}

impl ScriptCache {
    /// Caches `body`; returns its digest.
    pub fn insert(&self, body: Bytes) -> String {
        let sha = script_sha(&body);
        let mut cached = self.lock();
        if cached.bodies.contains_key(&sha) {
            return sha;
        }
        while cached.bytes + body.len() > SCRIPT_CACHE_BYTES_MAX
            || cached.bodies.len() >= SCRIPT_CACHE_SCRIPTS_MAX
        {
            let Some(oldest) = cached.order.pop_front() else { break };
            if let Some(dropped) = cached.bodies.remove(&oldest) {
                cached.bytes -= dropped.len();
            }
        }
        cached.bytes += body.len();
        cached.order.push_back(sha.clone());
        cached.bodies.insert(sha.clone(), body);
        sha
    }

    /// The body whose digest is `sha` (either case), if cached.
    pub fn get(&self, sha: &[u8]) -> Option<Bytes> {
        let sha = std::str::from_utf8(sha).ok()?.to_ascii_lowercase();
        self.lock().bodies.get(&sha).cloned()
    }

    /// SCRIPT FLUSH: forgets every script.
    pub fn clear(&self) {
        *self.lock() = Cached::default();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cached> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_are_found_by_digest_in_either_case_until_flushed() {
        let cache = ScriptCache::default();
        let sha = cache.insert(Bytes::from_static(b"return 1"));
        assert_eq!(sha, "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "as redis-server 7 names it");
        assert_eq!(cache.get(sha.to_uppercase().as_bytes()), Some(Bytes::from_static(b"return 1")));
        assert_eq!(cache.get(b"ffff"), None);
        cache.clear();
        assert_eq!(cache.get(sha.as_bytes()), None);
    }

    #[test]
    fn the_oldest_scripts_go_first_when_the_cache_is_full() {
        let cache = ScriptCache::default();
        let first = cache.insert(Bytes::from(vec![b'a'; SCRIPT_CACHE_BYTES_MAX / 2]));
        let second = cache.insert(Bytes::from(vec![b'b'; SCRIPT_CACHE_BYTES_MAX / 2]));
        let third = cache.insert(Bytes::from_static(b"return 3"));
        assert_eq!(cache.get(first.as_bytes()), None);
        assert!(cache.get(second.as_bytes()).is_some() && cache.get(third.as_bytes()).is_some());
    }
}

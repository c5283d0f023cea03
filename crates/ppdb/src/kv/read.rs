//! Read queries answered from the applied state at a given time.
//!
//! Reads never change the store: an expired key is simply invisible (its removal goes through
//! the log). The `now_ms` of a read is chosen by the shard's leader: its clock, or the log's time
//! ([`KvStore::time_ms`]) if that is later, so a read never sees an earlier time than a write
//! before it. A read that would see a key expire at a time the log has not reached yet first
//! has the leader record that time in the log ([`KvStore::newly_expired`], `server::shard`), so
//! no later leader, whatever its clock, shows the key again.

use super::command::KvRead;
use super::glob::glob_match;
use super::introspect::{memory_usage_reply, object_reply};
use super::memcached::McItem;
use super::reply::{Reply, REPLY_ELEMENT_BYTES};
use super::scan::{scan_filter, scan_page};
use super::state_machine::{KvStore, Value};
use super::types::live_string;

impl KvStore {
    /// Answers a read query as Redis would at time `now_ms`.
    pub fn read(&self, query: &KvRead, now_ms: u64) -> Reply {
        if self.flush_due(now_ms) {
            // A delayed flush_all has come: nothing is left to read, though the entry that
            // removes the keys is not applied yet.
            static FLUSHED: std::sync::LazyLock<KvStore> = std::sync::LazyLock::new(KvStore::new);
            return FLUSHED.read(query, now_ms);
        }
        let live = |key: &[u8]| self.get_live(key, now_ms);
        let string = |key: &[u8]| live_string(self, key, now_ms);
        match query {
            KvRead::Get { key } => match string(key) {
                Ok(data) => Reply::bulk_or_nil(data.map(|d| &d[..])),
                Err(error) => Reply::Error(error),
            },
            KvRead::MGet { keys } => Reply::Array(
                keys.iter()
                    .map(|key| Reply::bulk_or_nil(string(key).ok().flatten().map(|d| &d[..])))
                    .collect(),
            ),
            KvRead::Exists { keys } => {
                Reply::Integer(keys.iter().filter(|key| live(key).is_some()).count() as i64)
            }
            KvRead::StrLen { key } => match string(key) {
                Ok(data) => Reply::Integer(data.map_or(0, |d| d.len() as i64)),
                Err(error) => Reply::Error(error),
            },
            KvRead::GetRange { key, start, end } => match string(key) {
                Ok(data) => Reply::Bulk(get_range(data.map_or(&[][..], |d| &d[..]), *start, *end).to_vec()),
                Err(error) => Reply::Error(error),
            },
            KvRead::Ttl { key } => ttl_reply(self, key, now_ms, false),
            KvRead::PTtl { key } => ttl_reply(self, key, now_ms, true),
            KvRead::ExpireTime { key } => expire_time_reply(self, key, now_ms, false),
            KvRead::PExpireTime { key } => expire_time_reply(self, key, now_ms, true),
            KvRead::Type { key } => Reply::Status(live(key).map_or("none", |v| v.data.type_name())),
            KvRead::Keys { pattern } => keys_reply(self.matching_keys(pattern, now_ms)),
            KvRead::Scan { cursor, pattern, count, type_name } => {
                let (next_cursor, keys) =
                    self.scan_keys(*cursor, pattern.as_deref(), *count, type_name.as_deref(), now_ms);
                Reply::Scan { cursor: next_cursor, keys: keys.into_iter().map(<[u8]>::to_vec).collect() }
            }
            KvRead::DbSize => Reply::Integer(self.live_len(now_ms) as i64),
            KvRead::Expires => Reply::Integer(self.live_expiring_len(now_ms) as i64),
            KvRead::RandomKey => Reply::bulk_or_nil(self.random_key(now_ms)),
            KvRead::Collection(query) => query.read(self, now_ms),
            KvRead::Object { key, field } => object_reply(live(key), *field),
            KvRead::MemoryUsage { key } => memory_usage_reply(key, live(key)),
            KvRead::McGet { key } => self.mc_get(key, now_ms).map_or(Reply::Nil, McItem::into_reply),
            KvRead::Versions { keys } => Reply::Array(
                keys.iter()
                    .map(|key| {
                        Reply::Integer(i64::try_from(self.live_version(key, now_ms)).unwrap_or(i64::MAX))
                    })
                    .collect(),
            ),
            // The shard's transaction participant holds the locks, not the key space.
            KvRead::TxnLocks { .. } => Reply::Array(Vec::new()),
        }
    }

    /// Up to `limit` keys `query` would find expired at `now_ms` though they are alive at the
    /// log's time: answering at `now_ms` needs that time in the log first. Empty when `now_ms`
    /// is not past the log's time.
    pub fn newly_expired(&self, query: &KvRead, now_ms: u64, limit: usize) -> Vec<Vec<u8>> {
        let since = self.time_ms;
        if now_ms <= since {
            return Vec::new();
        }
        // Alive at `since` (expiry at or after it) and expired at `now_ms` (expiry before it).
        let mut window = self.expiries.range((since, Vec::new())..(now_ms, Vec::new())).peekable();
        if window.peek().is_none() {
            // The usual case, found without looking the query's keys up.
            return Vec::new();
        }
        let expiring = |value: &Value| value.expire_at_ms.is_some_and(|at| since <= at && at < now_ms);
        match query {
            KvRead::Keys { .. }
            | KvRead::Scan { .. }
            | KvRead::DbSize
            | KvRead::Expires
            | KvRead::RandomKey => window.take(limit).map(|(_, key)| key.clone()).collect(),
            keyed => keyed
                .keys()
                .into_iter()
                .filter(|key| self.entries.get(key).is_some_and(expiring))
                .take(limit)
                .map(<[u8]>::to_vec)
                .collect(),
        }
    }

    /// Answers `query` as [`KvStore::read`] does, unless its reply would hold more than
    /// `room` bytes as [`Reply::bytes`] counts them: then `None`, and nothing large was built.
    /// Replies not listed here are a few bytes.
    pub(super) fn read_within(&self, query: &KvRead, now_ms: u64, room: u64) -> Option<Reply> {
        let string = |key: &[u8]| live_string(self, key, now_ms).ok().flatten();
        let value_bytes = |key: &[u8]| string(key).map_or(0, |d| d.len() as u64);
        let element = REPLY_ELEMENT_BYTES;
        let bytes = match query {
            KvRead::Get { key } => element + value_bytes(key),
            KvRead::MGet { keys } => element + keys.iter().map(|key| element + value_bytes(key)).sum::<u64>(),
            KvRead::GetRange { key, start, end } => {
                let data = string(key).map_or(&[][..], |d| &d[..]);
                element + get_range(data, *start, *end).len() as u64
            }
            KvRead::Keys { pattern } => {
                let keys = self.matching_keys(pattern, now_ms);
                return (keys_bytes(&keys) <= room).then(|| keys_reply(keys));
            }
            KvRead::Scan { cursor, pattern, count, type_name } => {
                let (next_cursor, keys) =
                    self.scan_keys(*cursor, pattern.as_deref(), *count, type_name.as_deref(), now_ms);
                let fits = keys_bytes(&keys) <= room;
                return fits.then(|| Reply::Scan {
                    cursor: next_cursor,
                    keys: keys.into_iter().map(<[u8]>::to_vec).collect(),
                });
            }
            KvRead::Collection(query) => {
                // Collection replies are not sized before they are built: built, then measured.
                let reply = query.read(self, now_ms);
                return (reply.bytes() <= room).then_some(reply);
            }
            _ => 0,
        };
        (bytes <= room).then(|| self.read(query, now_ms))
    }

    /// KEYS: the live keys matching `pattern`, in scan order (as Redis answers in its hash
    /// table's order).
    fn matching_keys(&self, pattern: &[u8], now_ms: u64) -> Vec<&[u8]> {
        let match_all = pattern == b"*";
        self.scan_order
            .iter()
            .map(|(_, key)| key.as_slice())
            .filter(|key| self.get_live(key, now_ms).is_some() && (match_all || glob_match(pattern, key)))
            .collect()
    }

    /// SCAN: the next cursor and the live keys of the page that pass MATCH and TYPE.
    fn scan_keys(
        &self,
        cursor: u64,
        pattern: Option<&[u8]>,
        count: u64,
        type_name: Option<&[u8]>,
        now_ms: u64,
    ) -> (u64, Vec<&[u8]>) {
        let page = scan_page(&self.scan_order, cursor, count);
        let keys = page
            .visited
            .into_iter()
            .filter(|key| {
                self.get_live(key, now_ms)
                    .is_some_and(|value| scan_filter(key, pattern, type_name, value.data.type_name()))
            })
            .collect();
        (page.next_cursor, keys)
    }

    /// Number of keys alive at `now_ms`.
    pub fn live_len(&self, now_ms: u64) -> usize {
        self.entries.len() - self.expired_len(now_ms)
    }

    /// Number of live keys with an expiry at `now_ms`.
    fn live_expiring_len(&self, now_ms: u64) -> usize {
        self.expiries.len() - self.expired_len(now_ms)
    }

    /// Number of keys expired at `now_ms` and not yet removed.
    fn expired_len(&self, now_ms: u64) -> usize {
        self.expiries.range(..(now_ms, Vec::new())).count()
    }

    /// A live key chosen from `now_ms` (deterministic, so replicas and tests agree), or `None`.
    /// O(n): RANDOMKEY is rare and the scan index has no rank.
    fn random_key(&self, now_ms: u64) -> Option<&[u8]> {
        if self.live_len(now_ms) == 0 {
            return None;
        }
        let start = (splitmix64(now_ms) % self.scan_order.len() as u64) as usize;
        let after = self.scan_order.iter().skip(start);
        let before = self.scan_order.iter().take(start);
        after.chain(before).map(|(_, key)| key.as_slice()).find(|key| self.get_live(key, now_ms).is_some())
    }
}

/// The bytes of a reply listing `keys` (KEYS, or a SCAN page), as [`Reply::bytes`] counts them.
fn keys_bytes(keys: &[&[u8]]) -> u64 {
    REPLY_ELEMENT_BYTES + keys.iter().map(|key| REPLY_ELEMENT_BYTES + key.len() as u64).sum::<u64>()
}

fn keys_reply(keys: Vec<&[u8]>) -> Reply {
    Reply::Array(keys.into_iter().map(|key| Reply::Bulk(key.to_vec())).collect())
}

/// GETRANGE's index arithmetic, exactly as Redis 7's `getrangeCommand`.
pub(crate) fn get_range(data: &[u8], start: i64, end: i64) -> &[u8] {
    let len = data.len() as i64;
    if start < 0 && end < 0 && start > end {
        return &[];
    }
    let start = if start < 0 { len.saturating_add(start) } else { start }.max(0);
    let end = if end < 0 { len.saturating_add(end) } else { end }.max(0);
    let end = end.min(len - 1);
    if start > end || len == 0 {
        return &[];
    }
    // 0 <= start <= end < len here.
    &data[start as usize..=end as usize]
}

fn ttl_reply(store: &KvStore, key: &[u8], now_ms: u64, millis: bool) -> Reply {
    let Some(value) = store.get_live(key, now_ms) else {
        return Reply::Integer(-2);
    };
    let Some(at) = value.expire_at_ms else {
        return Reply::Integer(-1);
    };
    let ttl_ms = i64::try_from(at.saturating_sub(now_ms)).unwrap_or(i64::MAX);
    Reply::Integer(if millis { ttl_ms } else { ttl_ms.saturating_add(500) / 1000 })
}

/// EXPIRETIME / PEXPIRETIME: -2 for a missing key, -1 for one without expiry, else the
/// absolute expiry (seconds rounded down, as Redis, or milliseconds).
fn expire_time_reply(store: &KvStore, key: &[u8], now_ms: u64, millis: bool) -> Reply {
    let Some(value) = store.get_live(key, now_ms) else {
        return Reply::Integer(-2);
    };
    let Some(at) = value.expire_at_ms else {
        return Reply::Integer(-1);
    };
    let at = i64::try_from(at).unwrap_or(i64::MAX);
    Reply::Integer(if millis { at } else { at / 1000 })
}

fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

//! The key space of one shard and how writes change it.
//!
//! [`KvStore`] is pure and deterministic: no clock, no randomness, and nothing that depends on the
//! iteration order of its hash index (`table::KeyTable`). Time
//! enters through each [`KvWrite`]'s `now_ms` (the entry time the leader stamped) and through the
//! `now_ms` given to reads, so every replica that applies the same log holds the same bytes and
//! gives the same replies. A key whose expiry time is in the past is treated as absent by every
//! operation (as Redis's lazy expiry does) even before a [`WriteOp::RemoveExpired`] entry
//! deletes it.
//!
//! The store keeps the log's time ([`KvStore::time_ms`]): the latest entry time applied. Entries
//! are applied at the later of their own time and the log's, so time never goes backwards on a
//! replica, even over entries of earlier releases, whose times came from whichever node the
//! client reached. Reads are answered at a time no earlier than it (`server::shard`).
//!
//! Expiry follows Redis: a key with expiry `t` is alive while `now <= t`; an EXPIRE, GETEX or SET
//! whose new expiry is at or before `now` deletes the key at once.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::command::TxnStep;
use super::command::{ExpireCondition, GetExTtl, KvWrite, SetCondition, SetTtl, WriteOp, VALUE_BYTES_MAX};
use super::numeric::{format_f64, parse_f64, parse_i64};
use super::reply::{KvError, Reply};
use super::scan::scan_hash;
use super::table::KeyTable;
use super::types::Data;

/// A stored value: its contents, an optional absolute expiry, its version and memcached's
/// client flags. The contents are shared, so a copy of the key table's part holding them
/// (while a snapshot is serialized) does not copy them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    /// A string or a collection (see [`super::types`]).
    pub data: Data,
    /// Expiry in milliseconds since the Unix epoch; `None` means the key never expires.
    pub expire_at_ms: Option<u64>,
    /// The log index of the entry that last wrote the key, the same on every replica: what
    /// WATCH compares and memcached's `cas` unique. Every write counts (a collection's
    /// elements, EXPIRE, PERSIST, GETEX too) but memcached's `touch` and `gat`, which keep an
    /// item's `cas` as memcached does.
    pub version: u64,
    /// memcached's 32-bit client flags, kept with the value; 0 for a value written through
    /// RESP (SET, MSET, ...), kept by the writes that change a value in place (APPEND, INCR).
    pub flags: u32,
}

impl Value {
    /// Whether the value is expired at `now_ms` (Redis: alive while `now <= expire`).
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expire_at_ms.is_some_and(|at| now_ms > at)
    }
}

/// The replicated key space of one shard. Two stores are equal when they hold the same keys,
/// values, versions and time, wherever in the log each stands (`write_version`): an error
/// reply changes nothing.
#[derive(Debug, Clone, Default)]
pub struct KvStore {
    /// Every key, including expired ones not yet removed.
    pub(crate) entries: KeyTable,
    /// `(expire_at_ms, key)` for every key with an expiry: finds expired keys without a full scan.
    pub(crate) expiries: BTreeSet<(u64, Vec<u8>)>,
    /// `(scan_hash(key), key)` for every key: the SCAN cursor order (see [`super::scan`]).
    pub(crate) scan_order: BTreeSet<(u64, Vec<u8>)>,
    /// The memory the keys and values take, as [`stored_bytes`] counts it, kept up to date by
    /// every change: what `maxmemory` is compared with.
    pub(crate) data_bytes: u64,
    /// The log's time: the latest entry time applied, ms since the Unix epoch.
    pub(crate) time_ms: u64,
    /// The log index of the entry being applied (the last one, between entries): the
    /// [`Value::version`] of what it writes.
    pub(crate) write_version: u64,
    /// A delayed memcached `flush_all`: at this log time every key is removed (see
    /// [`super::memcached`]).
    pub(crate) flush_at_ms: Option<u64>,
}

impl PartialEq for KvStore {
    fn eq(&self, other: &Self) -> bool {
        let KvStore { entries, expiries, scan_order, data_bytes, time_ms, write_version: _, flush_at_ms } =
            self;
        *entries == other.entries
            && *expiries == other.expiries
            && *scan_order == other.scan_order
            && *data_bytes == other.data_bytes
            && *time_ms == other.time_ms
            && *flush_at_ms == other.flush_at_ms
    }
}

impl Eq for KvStore {}

/// Memory a key takes beyond its key and value bytes, roughly: the hash table's slot and the
/// value's header (about 64 bytes) and the SCAN index's entry (about 48).
pub const KEY_OVERHEAD_BYTES: u64 = 112;

/// The memory a key with a value of `value_bytes` ([`Data::bytes`]) is counted for: the
/// key twice (the hash table and the SCAN index each hold it), the value once, and
/// [`KEY_OVERHEAD_BYTES`]. An estimate that is the same on every replica and for every
/// allocator, not a measure.
pub fn stored_bytes(key: &[u8], value_bytes: u64) -> u64 {
    2 * key.len() as u64 + value_bytes + KEY_OVERHEAD_BYTES
}

impl KvStore {
    /// An empty key space.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies a committed write as the entry after the last one applied (tests and tools
    /// without a log); see [`KvStore::apply_at`].
    pub fn apply(&mut self, write: &KvWrite) -> Reply {
        self.apply_at(self.write_version + 1, write)
    }

    /// Applies the committed write of log entry `index` and returns Redis's reply to it, at
    /// the entry's time (or the log's, if later: see the module docs). What it writes takes
    /// `index` as its version; a delayed `flush_all` whose time has come happens first.
    pub fn apply_at(&mut self, index: u64, write: &KvWrite) -> Reply {
        let now = self.begin_entry(index, write.now_ms);
        self.apply_op(&write.op, now)
    }

    /// Starts applying log entry `index`, stamped `now_ms`, whose operations come one by one
    /// through [`KvStore::apply_step`] (a script's calls): what [`KvStore::apply_at`] does
    /// before the operation. Returns the time the entry applies at.
    pub fn begin_entry(&mut self, index: u64, now_ms: u64) -> u64 {
        debug_assert!(index >= self.write_version, "entries are applied in log order");
        self.write_version = index;
        self.time_ms = self.time_ms.max(now_ms);
        if self.flush_due(self.time_ms) {
            self.flush();
        }
        self.time_ms
    }

    /// Applies one command of the entry begun by [`KvStore::begin_entry`], as a transaction's
    /// step: a write at the entry's time, or a read of the state the earlier steps left. A
    /// reply larger than `reply_bytes_max` ([`super::Reply::bytes`]) is answered
    /// `ERR transaction reply exceeds maximum allowed size` instead (a write still took
    /// effect). Nested transactions and scripts are refused.
    pub fn apply_step(&mut self, step: &TxnStep, reply_bytes_max: u64) -> Reply {
        let now = self.time_ms;
        let reply = match step {
            TxnStep::Write(WriteOp::Transaction { .. } | WriteOp::Script(_)) => {
                return Reply::ErrorText("ERR transactions and scripts do not nest".into())
            }
            TxnStep::Write(op) => Some(self.apply_op(op, now)),
            TxnStep::Read(read) => self.read_within(read, now, reply_bytes_max),
        };
        reply
            .filter(|reply| reply.bytes() <= reply_bytes_max)
            .unwrap_or(Reply::Error(KvError::TxnReplyTooLarge))
    }

    /// Whether a delayed `flush_all` is due at `now_ms`: every key is then gone to reads,
    /// and the next entry applied removes them.
    pub fn flush_due(&self, now_ms: u64) -> bool {
        self.flush_at_ms.is_some_and(|at| now_ms >= at)
    }

    /// Removes every key (FLUSHALL, memcached's `flush_all`), keeping the log's time and
    /// index; a delayed `flush_all` pending is done by it.
    pub(crate) fn flush(&mut self) {
        *self = Self { time_ms: self.time_ms, write_version: self.write_version, ..Self::new() };
    }

    /// The log's time: the latest entry time applied (0 before any), ms since the Unix epoch.
    pub fn time_ms(&self) -> u64 {
        self.time_ms
    }

    /// Applies one operation at the entry's time `now`.
    pub(super) fn apply_op(&mut self, op: &WriteOp, now: u64) -> Reply {
        // Lazy expiry first, as Redis's lookupKeyWrite does: a write never sees an expired key.
        // A transaction's steps each do it for themselves. When no key at all is expired (the
        // earliest expiry is still ahead), there is nothing to look up.
        let any_expired = self.expiries.first().is_some_and(|(at, _)| now > *at);
        let own_steps =
            matches!(op, WriteOp::RemoveExpired { .. } | WriteOp::Transaction { .. } | WriteOp::Script(_));
        if any_expired && !own_steps {
            for key in op.keys() {
                self.remove_if_expired(key, now);
            }
        }
        match op {
            WriteOp::Set { key, value, condition, ttl, get } => {
                self.set(key, value, *condition, *ttl, *get, now)
            }
            WriteOp::SetNx { key, value } => {
                if self.entries.contains_key(key.as_slice()) {
                    return Reply::Integer(0);
                }
                self.insert(key, value.as_slice(), None);
                Reply::Integer(1)
            }
            WriteOp::GetDel { key } => match self.string(key) {
                Ok(Some(_)) => Reply::bulk_or_nil(
                    self.remove(key).as_ref().and_then(|v| v.data.as_string()).map(|d| &d[..]),
                ),
                Ok(None) => Reply::Nil,
                Err(error) => Reply::Error(error),
            },
            WriteOp::GetEx { key, ttl } => self.get_ex(key, *ttl, now),
            WriteOp::MSet { pairs } => {
                for (key, value) in pairs {
                    self.insert(key, value.as_slice(), None);
                }
                Reply::Ok
            }
            WriteOp::MSetNx { pairs } => {
                if pairs.iter().any(|(key, _)| self.entries.contains_key(key.as_slice())) {
                    return Reply::Integer(0);
                }
                for (key, value) in pairs {
                    self.insert(key, value.as_slice(), None);
                }
                Reply::Integer(1)
            }
            WriteOp::Rename { from, to, if_new } => self.rename(from, to, *if_new),
            WriteOp::Copy { from, to, replace } => self.copy(from, to, *replace),
            WriteOp::Del { keys } => {
                let removed = keys.iter().filter(|key| self.remove(key).is_some()).count();
                Reply::Integer(removed as i64)
            }
            WriteOp::IncrBy { key, delta } => self.incr_by(key, *delta),
            WriteOp::IncrByFloat { key, delta } => self.incr_by_float(key, *delta),
            WriteOp::Append { key, value } => self.append(key, value),
            WriteOp::SetRange { key, offset, value } => self.set_range(key, *offset, value),
            WriteOp::Expire { key, when, condition } => self.expire(key, when.at_ms(now), *condition, now),
            WriteOp::Persist { key } => match self.entries.get(key.as_slice()) {
                Some(Value { expire_at_ms: Some(_), .. }) => {
                    self.set_expiry(key, None);
                    Reply::Integer(1)
                }
                _ => Reply::Integer(0),
            },
            WriteOp::FlushAll => {
                self.flush();
                Reply::Ok
            }
            WriteOp::RemoveExpired { keys } => {
                let removed = keys.iter().filter(|key| self.remove_if_expired(key, now)).count();
                Reply::Integer(removed as i64)
            }
            WriteOp::Transaction { steps, watched } => match self.watch_holds(watched, now) {
                true => self.apply_transaction(steps, now),
                false => Reply::NilArray,
            },
            WriteOp::Collection(op) => op.apply(self, now),
            WriteOp::Memcached(op) => op.apply(self, now),
            WriteOp::Attempt { op, .. } => op.as_ref().map_or(Reply::Nil, |op| self.apply_op(op, now)),
            WriteOp::Export { key, then } => self.export(key, then.as_deref(), now),
            WriteOp::Imported { imports, op, expect } => self.run_imported(imports, op, *expect, now),
            // The shard runs scripts (`server::script`); the key space alone cannot.
            WriteOp::Script(_) => {
                Reply::ErrorText("ERR scripts are run by the shard, not the key space".into())
            }
        }
    }

    /// Up to `limit` keys expired at `now_ms`, earliest expiry first, for the leader to propose
    /// in a [`WriteOp::RemoveExpired`] entry.
    pub fn expired_keys(&self, now_ms: u64, limit: usize) -> Vec<Vec<u8>> {
        self.expiries.range(..(now_ms, Vec::new())).take(limit).map(|(_, key)| key.clone()).collect()
    }

    /// The memory the key space is counted for (see [`stored_bytes`]), expired keys included
    /// until they are removed.
    pub fn data_bytes(&self) -> u64 {
        self.data_bytes
    }

    /// Number of keys stored, including expired keys not yet removed.
    pub fn len_including_expired(&self) -> usize {
        self.entries.len()
    }

    /// The live value of `key` at `now_ms`.
    pub fn get_live(&self, key: &[u8], now_ms: u64) -> Option<&Value> {
        self.entries.get(key).filter(|value| !value.is_expired(now_ms))
    }

    /// The string stored at `key` (a write: expired keys are already removed): `Ok(None)` when
    /// absent, `WRONGTYPE` when the key holds a collection.
    pub(crate) fn string(&self, key: &[u8]) -> Result<Option<&Arc<[u8]>>, KvError> {
        match self.entries.get(key) {
            None => Ok(None),
            Some(value) => value.data.as_string().map(Some).ok_or(KvError::WrongType),
        }
    }

    fn set(
        &mut self,
        key: &[u8],
        value: &[u8],
        condition: SetCondition,
        ttl: SetTtl,
        get: bool,
        now: u64,
    ) -> Reply {
        // A plain SET needs nothing of the old value: skip the lookup (insert does its own).
        let needs_old = get || condition != SetCondition::Always || ttl == SetTtl::Keep;
        let old = if needs_old { self.entries.get(key) } else { None };
        let exists = old.is_some();
        let old_string = match old.map(|v| v.data.as_string()) {
            Some(None) if get => return Reply::Error(KvError::WrongType),
            old_string => old_string.flatten(),
        };
        let old_reply = get.then(|| Reply::bulk_or_nil(old_string.map(|d| &d[..])));
        let refused = match condition {
            SetCondition::Always => false,
            SetCondition::IfAbsent => exists,
            SetCondition::IfPresent => !exists,
        };
        if refused {
            return old_reply.unwrap_or(Reply::Nil);
        }
        let expire_at_ms = match ttl {
            SetTtl::Clear => None,
            SetTtl::Keep => old.and_then(|v| v.expire_at_ms),
            SetTtl::At(at) => Some(at),
            SetTtl::After(span) => Some(now.saturating_add(span)),
        };
        if expire_at_ms.is_some_and(|at| at <= now) {
            self.remove(key);
        } else {
            self.insert(key, value, expire_at_ms);
        }
        old_reply.unwrap_or(Reply::Ok)
    }

    /// RENAME (`if_new` false: replies OK) and RENAMENX (replies 1, or 0 when `to` exists):
    /// a copy of the value and its absolute expiry to `to`, replacing any key there, then
    /// `from` removed. Renaming a key to itself changes nothing.
    fn rename(&mut self, from: &[u8], to: &[u8], if_new: bool) -> Reply {
        if !self.entries.contains_key(from) {
            return Reply::Error(KvError::NoSuchKey);
        }
        let unchanged = from == to || (if_new && self.entries.contains_key(to));
        if !unchanged {
            self.copy(from, to, true);
            self.remove(from);
        }
        match (if_new, unchanged) {
            (false, _) => Reply::Ok,
            (true, unchanged) => Reply::Integer(i64::from(!unchanged)),
        }
    }

    /// COPY: 1 when `to` now holds a copy of `from`'s value and expiry, 0 when `from` does
    /// not exist or `to` does and `replace` is off. The contents are shared, not duplicated:
    /// a collection is copied when either key first changes it.
    fn copy(&mut self, from: &[u8], to: &[u8], replace: bool) -> Reply {
        let Some(value) = self.entries.get(from) else {
            return Reply::Integer(0);
        };
        if from == to || (!replace && self.entries.contains_key(to)) {
            return Reply::Integer(0);
        }
        let (data, expire_at_ms, flags) = (value.data.clone(), value.expire_at_ms, value.flags);
        self.remove(to);
        self.insert_value(to, data, expire_at_ms);
        self.set_flags(to, flags);
        Reply::Integer(1)
    }

    fn get_ex(&mut self, key: &[u8], ttl: GetExTtl, now: u64) -> Reply {
        let reply = match self.string(key) {
            Ok(Some(data)) => Reply::Bulk(data.to_vec()),
            Ok(None) => return Reply::Nil,
            Err(error) => return Reply::Error(error),
        };
        let at = match ttl {
            GetExTtl::Unchanged => return reply,
            GetExTtl::Persist => {
                self.set_expiry(key, None);
                return reply;
            }
            GetExTtl::At(at) => at,
            GetExTtl::After(span) => now.saturating_add(span),
        };
        if at <= now {
            self.remove(key);
        } else {
            self.set_expiry(key, Some(at));
        }
        reply
    }

    fn incr_by(&mut self, key: &[u8], delta: i64) -> Reply {
        let (current, expire_at_ms) = match self.string(key) {
            Err(error) => return Reply::Error(error),
            Ok(None) => (0, None),
            Ok(Some(data)) => match parse_i64(data) {
                Some(n) => (n, self.expiry_of(key)),
                None => return Reply::Error(KvError::NotInteger),
            },
        };
        let Some(next) = current.checked_add(delta) else {
            return Reply::Error(KvError::IncrOverflow);
        };
        self.update_string(key, next.to_string().as_bytes(), expire_at_ms);
        Reply::Integer(next)
    }

    fn incr_by_float(&mut self, key: &[u8], delta: f64) -> Reply {
        let (current, expire_at_ms) = match self.string(key) {
            Err(error) => return Reply::Error(error),
            Ok(None) => (0.0, None),
            Ok(Some(data)) => match parse_f64(data) {
                Some(n) => (n, self.expiry_of(key)),
                None => return Reply::Error(KvError::NotFloat),
            },
        };
        let next = current + delta;
        if !next.is_finite() {
            return Reply::Error(KvError::NanOrInfinity);
        }
        let text = format_f64(next).into_bytes();
        self.update_string(key, &text[..], expire_at_ms);
        Reply::Bulk(text)
    }

    fn append(&mut self, key: &[u8], suffix: &[u8]) -> Reply {
        let current = match self.string(key) {
            Ok(current) => current,
            Err(error) => return Reply::Error(error),
        };
        let Some(current) = current else {
            self.insert(key, suffix, None);
            return Reply::Integer(suffix.len() as i64);
        };
        if current.len() as u64 + suffix.len() as u64 > VALUE_BYTES_MAX {
            return Reply::Error(KvError::StringTooLong);
        }
        let data: Arc<[u8]> = [&current[..], suffix].concat().into();
        let len = data.len();
        self.update_string(key, data, self.expiry_of(key));
        Reply::Integer(len as i64)
    }

    fn set_range(&mut self, key: &[u8], offset: u64, patch: &[u8]) -> Reply {
        let current_len = match self.string(key) {
            Ok(current) => current.map(|data| data.len()),
            Err(error) => return Reply::Error(error),
        };
        if patch.is_empty() {
            // Redis answers the current length (0 for a missing key) and creates nothing.
            return Reply::Integer(current_len.unwrap_or(0) as i64);
        }
        let end = offset.checked_add(patch.len() as u64);
        let Some(end) = end.filter(|&end| end <= VALUE_BYTES_MAX) else {
            return Reply::Error(KvError::StringTooLong);
        };
        // `end <= VALUE_BYTES_MAX` (512 MiB), so both fit in usize.
        let (offset, end) = (offset as usize, end as usize);
        let mut data = self.string(key).ok().flatten().map_or_else(Vec::new, |data| data.to_vec());
        if data.len() < end {
            data.resize(end, 0);
        }
        data[offset..end].copy_from_slice(patch);
        let len = data.len();
        self.update_string(key, data, self.expiry_of(key));
        Reply::Integer(len as i64)
    }

    fn expire(&mut self, key: &[u8], at_ms: i64, condition: ExpireCondition, now: u64) -> Reply {
        let Some(value) = self.entries.get(key) else {
            return Reply::Integer(0);
        };
        // Redis compares with -1 for "no expiry"; GT treats it as infinite, LT as infinite too.
        let current = value.expire_at_ms.map(|at| i64::try_from(at).unwrap_or(i64::MAX));
        let needs_ttl = matches!(
            condition,
            ExpireCondition::IfTtl | ExpireCondition::IfTtlAndLater | ExpireCondition::IfTtlAndEarlier
        );
        let later = matches!(condition, ExpireCondition::IfLater | ExpireCondition::IfTtlAndLater);
        let earlier = matches!(condition, ExpireCondition::IfEarlier | ExpireCondition::IfTtlAndEarlier);
        let refused = (condition == ExpireCondition::IfNoTtl && current.is_some())
            || (needs_ttl && current.is_none())
            || (later && current.is_none_or(|cur| at_ms <= cur))
            || (earlier && current.is_some_and(|cur| at_ms >= cur));
        if refused {
            return Reply::Integer(0);
        }
        match u64::try_from(at_ms) {
            Ok(at) if at > now => self.set_expiry(key, Some(at)),
            _ => {
                self.remove(key);
            }
        }
        Reply::Integer(1)
    }

    /// Inserts or replaces `key` with a new string, flags 0, keeping the indexes in step.
    pub(crate) fn insert(&mut self, key: &[u8], data: impl Into<Arc<[u8]>>, expire_at_ms: Option<u64>) {
        self.update_string(key, data, expire_at_ms);
        self.set_flags(key, 0);
    }

    /// Changes the string of `key` (or creates it), keeping its flags.
    pub(crate) fn update_string(
        &mut self,
        key: &[u8],
        data: impl Into<Arc<[u8]>>,
        expire_at_ms: Option<u64>,
    ) {
        let data = data.into();
        debug_assert!(data.len() <= crate::limits::STORED_VALUE_BYTES_MAX, "values are bounded before apply");
        self.insert_value(key, Data::String(data), expire_at_ms);
    }

    /// Sets the memcached flags of an existing key.
    pub(crate) fn set_flags(&mut self, key: &[u8], flags: u32) {
        if let Some(value) = self.entries.get_mut(key) {
            value.flags = flags;
        }
    }

    /// The expiry of `key`, if it exists and has one.
    fn expiry_of(&self, key: &[u8]) -> Option<u64> {
        self.entries.get(key).and_then(|value| value.expire_at_ms)
    }

    /// Inserts or replaces `key` with a value of any type, keeping the indexes in step. The
    /// key takes the entry's version; a replaced value's flags are kept, a new key's are 0.
    pub(crate) fn insert_value(&mut self, key: &[u8], data: Data, expire_at_ms: Option<u64>) {
        let version = self.write_version;
        match self.entries.get_mut(key) {
            Some(value) => {
                self.data_bytes = self.data_bytes - value.data.bytes() + data.bytes();
                value.data = data;
                value.version = version;
                change_expiry(&mut self.expiries, key, value, expire_at_ms);
            }
            None => {
                self.data_bytes += stored_bytes(key, data.bytes());
                self.entries.insert(key.into(), Value { data, expire_at_ms, version, flags: 0 });
                self.scan_order.insert((scan_hash(key), key.to_vec()));
                if let Some(at) = expire_at_ms {
                    self.expiries.insert((at, key.to_vec()));
                }
            }
        }
    }

    /// Changes the expiry of an existing key, a write to it as `WATCH` sees writes (EXPIRE,
    /// PERSIST, GETEX): the key takes the entry's version.
    pub(crate) fn set_expiry(&mut self, key: &[u8], expire_at_ms: Option<u64>) {
        let version = self.write_version;
        if let Some(value) = self.entries.get_mut(key) {
            change_expiry(&mut self.expiries, key, value, expire_at_ms);
            value.version = version;
        }
    }

    /// Changes the expiry of an existing key and keeps its version: memcached's `touch` and
    /// `gat`, which leave an item's `cas` unique as it was.
    pub(crate) fn retime(&mut self, key: &[u8], expire_at_ms: Option<u64>) {
        if let Some(value) = self.entries.get_mut(key) {
            change_expiry(&mut self.expiries, key, value, expire_at_ms);
        }
    }

    /// The version `WATCH` records for `key` at `now`: 0 when the key is absent or expired,
    /// else the log index of its last write (at least 1, so that a key restored from a
    /// snapshot taken before versions existed still differs from an absent one).
    pub fn live_version(&self, key: &[u8], now: u64) -> u64 {
        self.get_live(key, now).map_or(0, |value| value.version.max(1))
    }

    /// The value stored at `key`, expired or not, as it is: what a cross-shard transaction's
    /// prepare copies into its scratch key space ([`KvStore::scratch`]).
    pub fn value(&self, key: &[u8]) -> Option<&Value> {
        self.entries.get(key)
    }

    /// A key space holding copies of `keys`' values (cheap: contents are shared), at time and
    /// index 0, where a cross-shard transaction's part runs, as the entry that prepared it, to
    /// learn its replies and the values it leaves without touching this store.
    pub fn scratch<'a>(&self, keys: impl IntoIterator<Item = &'a [u8]>) -> KvStore {
        let mut scratch = KvStore { entries: KeyTable::single_part(), ..KvStore::default() };
        for key in keys {
            if let Some(value) = self.entries.get(key) {
                scratch.place(key, Some(value.clone()));
            }
        }
        scratch
    }

    /// A copy of the whole key space at time and index 0 (cheap per key: contents are
    /// shared), where a cross-shard transaction's shard-wide part (KEYS, FLUSHALL, ...) runs as
    /// the entry that prepared it.
    pub fn rewound(&self) -> KvStore {
        KvStore { time_ms: 0, write_version: 0, ..self.clone() }
    }

    /// Takes `other`'s keys (a shard-wide part's result, [`KvStore::rewound`]), keeping this
    /// store's time and index.
    pub fn replace_keys(&mut self, other: KvStore) {
        let (time_ms, write_version) = (self.time_ms.max(other.time_ms), self.write_version);
        *self = KvStore { time_ms, write_version, ..other };
    }

    /// Makes `key` hold exactly `value` (its version and flags included), or nothing: a
    /// committed transaction's intent, computed at prepare, installed as it was.
    pub fn place(&mut self, key: &[u8], value: Option<Value>) {
        let Some(value) = value else {
            self.remove(key);
            return;
        };
        if let Some(old) = self.entries.get_mut(key) {
            // The key keeps its place in the scan order: only its size and expiry change.
            self.data_bytes -= stored_bytes(key, old.data.bytes());
            self.data_bytes += stored_bytes(key, value.data.bytes());
            if old.expire_at_ms != value.expire_at_ms {
                if let Some(at) = old.expire_at_ms {
                    self.expiries.remove(&(at, key.to_vec()));
                }
                if let Some(at) = value.expire_at_ms {
                    self.expiries.insert((at, key.to_vec()));
                }
            }
            *old = value;
            return;
        }
        self.data_bytes += stored_bytes(key, value.data.bytes());
        self.scan_order.insert((scan_hash(key), key.to_vec()));
        if let Some(at) = value.expire_at_ms {
            self.expiries.insert((at, key.to_vec()));
        }
        self.entries.insert(key.into(), value);
    }

    /// Removes `key` and its index entries; returns the old value.
    pub(crate) fn remove(&mut self, key: &[u8]) -> Option<Value> {
        let value = self.entries.remove(key)?;
        self.data_bytes -= stored_bytes(key, value.data.bytes());
        self.scan_order.remove(&(scan_hash(key), key.to_vec()));
        if let Some(at) = value.expire_at_ms {
            self.expiries.remove(&(at, key.to_vec()));
        }
        Some(value)
    }

    /// Removes `key` if it is expired at `now`; returns whether it did.
    fn remove_if_expired(&mut self, key: &[u8], now: u64) -> bool {
        let expired = self.entries.get(key).is_some_and(|v| v.is_expired(now));
        if expired {
            self.remove(key);
        }
        expired
    }

    /// Checks that the indexes agree with the map (tests and debug assertions).
    #[cfg(test)]
    pub(crate) fn check_indexes(&self) {
        assert_eq!(self.scan_order.len(), self.entries.len());
        for (key, value) in self.entries.iter() {
            assert!(self.scan_order.contains(&(scan_hash(key), key.to_vec())));
            if let Some(at) = value.expire_at_ms {
                assert!(self.expiries.contains(&(at, key.to_vec())));
            }
        }
        let with_ttl = self.entries.iter().filter(|(_, v)| v.expire_at_ms.is_some()).count();
        assert_eq!(self.expiries.len(), with_ttl);
        let counted: u64 =
            self.entries.iter().map(|(key, value)| stored_bytes(key, value.data.bytes())).sum();
        assert_eq!(self.data_bytes, counted, "data bytes follow every change");
    }
}

/// Sets `value`'s expiry (the value of `key`), keeping the expiry index in step.
fn change_expiry(
    expiries: &mut BTreeSet<(u64, Vec<u8>)>,
    key: &[u8],
    value: &mut Value,
    expire_at_ms: Option<u64>,
) {
    if value.expire_at_ms == expire_at_ms {
        return;
    }
    if let Some(old) = value.expire_at_ms {
        expiries.remove(&(old, key.to_vec()));
    }
    if let Some(at) = expire_at_ms {
        expiries.insert((at, key.to_vec()));
    }
    value.expire_at_ms = expire_at_ms;
}

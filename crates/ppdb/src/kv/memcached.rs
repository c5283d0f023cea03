//! memcached's item operations on the key space: storage commands, counters, touch, delete and
//! `flush_all`, as memcached 1.6 gives them meaning, applied as log entries like any write.
//!
//! A memcached item is a string key ([`Data::String`](super::Data::String)) with its 32-bit client flags and its
//! version ([`Value::version`], the log index of its last write) as the `cas` unique, so an
//! item set through memcached is a string to RESP's GET, and a RESP string is an item with
//! flags 0. Every operation here is pure: expiry times are resolved against the entry's time,
//! never a clock.
//!
//! Expiry follows memcached's rule ([`McExpiry::from_exptime`]): 0 never, a negative number
//! already expired, up to 30 days ([`RELATIVE_EXPTIME_MAX_S`]) seconds after the entry's time,
//! above that an absolute Unix time. A delayed `flush_all` is recorded as the log time at which
//! every key goes ([`KvStore::flush_due`]): as in memcached, it removes whatever was written
//! before that time, including items written after the `flush_all` itself.
//!
//! Outcomes travel as [`Reply`] values (so they cross nodes as any reply does) and are read
//! back with [`McOutcome::from_reply`] and [`McItem::from_reply`].

use super::codec::{put_bytes, put_varint, KvDecodeError, Reader};
use super::entry::{key, value};
use super::reply::{KvError, Reply};
use super::state_machine::{KvStore, Value};
use std::sync::Arc;

/// Largest exptime taken as seconds after the entry's time (30 days); larger is a Unix time.
pub const RELATIVE_EXPTIME_MAX_S: i64 = 2_592_000;

/// When an item expires, as memcached's exptime gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum McExpiry {
    /// exptime 0: never.
    Never,
    /// A negative exptime, or an absolute time at or before the entry's: gone at once.
    Expired,
    /// This many seconds after the entry's time.
    After(u32),
    /// At this Unix time, in seconds.
    At(u64),
}

impl McExpiry {
    /// memcached's reading of an exptime argument.
    pub fn from_exptime(exptime: i64) -> McExpiry {
        match exptime {
            0 => McExpiry::Never,
            n if n < 0 => McExpiry::Expired,
            n if n <= RELATIVE_EXPTIME_MAX_S => McExpiry::After(n as u32),
            n => McExpiry::At(n as u64),
        }
    }

    /// The absolute expiry for an entry of time `now_ms`: `Ok(None)` never, `Err(())` already
    /// expired.
    fn resolve(self, now_ms: u64) -> Result<Option<u64>, ()> {
        let at = match self {
            McExpiry::Never => return Ok(None),
            McExpiry::Expired => return Err(()),
            McExpiry::After(s) => now_ms.saturating_add(u64::from(s) * 1000),
            McExpiry::At(s) => s.saturating_mul(1000),
        };
        if at <= now_ms {
            Err(())
        } else {
            Ok(Some(at))
        }
    }
}

/// Which storage command: how it treats an existing item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    /// `set`: store whatever is there.
    Set,
    /// `add`: only when the key holds no item.
    Add,
    /// `replace`: only when it does.
    Replace,
    /// `append`: add the data after the item's (its flags and expiry stay).
    Append,
    /// `prepend`: add the data before the item's.
    Prepend,
}

/// A memcached write, one log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum McWrite {
    /// set/add/replace/append/prepend/cas, and the meta `ms`.
    Store {
        /// How an existing item is treated.
        mode: StoreMode,
        /// The key.
        key: Vec<u8>,
        /// The data block.
        value: Vec<u8>,
        /// Client flags (ignored by append and prepend).
        flags: u32,
        /// Expiry (ignored by append and prepend).
        expiry: McExpiry,
        /// `cas`: store only if the item's cas unique is this (`EXISTS` otherwise,
        /// `NOT_FOUND` without an item).
        cas: Option<u64>,
    },
    /// incr/decr and the meta `ma`: 64-bit unsigned, wrapping up, floored at 0 down.
    Delta {
        /// The key.
        key: Vec<u8>,
        /// decr rather than incr.
        decrement: bool,
        /// The amount.
        delta: u64,
        /// Only if the item's cas unique is this.
        cas: Option<u64>,
        /// Create a missing item with this value and expiry (meta `N`, `J`), rather than
        /// answer `NOT_FOUND`.
        vivify: Option<(u64, McExpiry)>,
    },
    /// touch, gat/gats (`fetch`), and `mg` with `T`: a new expiry, the contents and cas kept.
    Touch {
        /// The key.
        key: Vec<u8>,
        /// The new expiry.
        expiry: McExpiry,
        /// Answer the item (gat) rather than `TOUCHED`.
        fetch: bool,
    },
    /// delete and the meta `md`.
    Delete {
        /// The key.
        key: Vec<u8>,
        /// Only if the item's cas unique is this.
        cas: Option<u64>,
    },
    /// flush_all: every key now, or at a later time.
    FlushAll {
        /// When: `Never` (no delay) or `Expired` mean now.
        delay: McExpiry,
    },
}

/// An item as a read or a `gat` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McItem {
    /// The data.
    pub value: Vec<u8>,
    /// The client flags.
    pub flags: u32,
    /// The cas unique.
    pub cas: u64,
    /// Seconds left to live (rounded up), -1 for none.
    pub ttl_s: i64,
}

/// What a memcached write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum McOutcome {
    /// `STORED`, with the item's new cas unique.
    Stored {
        /// The new cas unique.
        cas: u64,
    },
    /// `NOT_STORED`: add of a present key, replace/append/prepend of a missing one.
    NotStored,
    /// `EXISTS`: the cas unique differed.
    Exists,
    /// `NOT_FOUND`.
    NotFound,
    /// `DELETED`.
    Deleted,
    /// `TOUCHED`.
    Touched,
    /// An incr/decr result.
    Counter {
        /// The new value.
        value: u64,
        /// The new cas unique.
        cas: u64,
    },
    /// incr/decr of an item that is not a decimal number.
    NonNumeric,
    /// A gat's item.
    Item(McItem),
    /// `OK` (flush_all).
    Ok,
    /// The key holds a Redis collection, not a string.
    WrongType,
    /// append/prepend would make the value larger than PPDB's value limit.
    TooLarge,
}

// Outcome tags inside the reply array. Never renumber: replies cross nodes.
const OUTCOME_STORED: i64 = 0;
const OUTCOME_NOT_STORED: i64 = 1;
const OUTCOME_EXISTS: i64 = 2;
const OUTCOME_NOT_FOUND: i64 = 3;
const OUTCOME_DELETED: i64 = 4;
const OUTCOME_TOUCHED: i64 = 5;
const OUTCOME_COUNTER: i64 = 6;
const OUTCOME_NON_NUMERIC: i64 = 7;
const OUTCOME_ITEM: i64 = 8;
const OUTCOME_OK: i64 = 9;
const OUTCOME_TOO_LARGE: i64 = 10;

impl McOutcome {
    /// The outcome as a reply: an array led by its tag (a wrong type is Redis's error).
    pub fn into_reply(self) -> Reply {
        let tagged = |tag: i64, rest: Vec<Reply>| {
            let mut items = vec![Reply::Integer(tag)];
            items.extend(rest);
            Reply::Array(items)
        };
        match self {
            McOutcome::Stored { cas } => tagged(OUTCOME_STORED, vec![Reply::Integer(cas as i64)]),
            McOutcome::NotStored => tagged(OUTCOME_NOT_STORED, vec![]),
            McOutcome::Exists => tagged(OUTCOME_EXISTS, vec![]),
            McOutcome::NotFound => tagged(OUTCOME_NOT_FOUND, vec![]),
            McOutcome::Deleted => tagged(OUTCOME_DELETED, vec![]),
            McOutcome::Touched => tagged(OUTCOME_TOUCHED, vec![]),
            McOutcome::Counter { value, cas } => {
                tagged(OUTCOME_COUNTER, vec![Reply::Integer(value as i64), Reply::Integer(cas as i64)])
            }
            McOutcome::NonNumeric => tagged(OUTCOME_NON_NUMERIC, vec![]),
            McOutcome::Item(item) => tagged(OUTCOME_ITEM, vec![item.into_reply()]),
            McOutcome::Ok => tagged(OUTCOME_OK, vec![]),
            McOutcome::TooLarge => tagged(OUTCOME_TOO_LARGE, vec![]),
            McOutcome::WrongType => Reply::Error(KvError::WrongType),
        }
    }

    /// Reads back [`McOutcome::into_reply`]; `None` for any other reply.
    pub fn from_reply(reply: Reply) -> Option<McOutcome> {
        if reply == Reply::Error(KvError::WrongType) {
            return Some(McOutcome::WrongType);
        }
        let Reply::Array(items) = reply else { return None };
        let mut items = items.into_iter();
        let Some(Reply::Integer(tag)) = items.next() else { return None };
        let mut number = || match items.next() {
            Some(Reply::Integer(n)) => Some(n as u64),
            _ => None,
        };
        Some(match tag {
            OUTCOME_STORED => McOutcome::Stored { cas: number()? },
            OUTCOME_NOT_STORED => McOutcome::NotStored,
            OUTCOME_EXISTS => McOutcome::Exists,
            OUTCOME_NOT_FOUND => McOutcome::NotFound,
            OUTCOME_DELETED => McOutcome::Deleted,
            OUTCOME_TOUCHED => McOutcome::Touched,
            OUTCOME_COUNTER => McOutcome::Counter { value: number()?, cas: number()? },
            OUTCOME_NON_NUMERIC => McOutcome::NonNumeric,
            OUTCOME_ITEM => McOutcome::Item(McItem::from_reply(items.next()?)?),
            OUTCOME_OK => McOutcome::Ok,
            OUTCOME_TOO_LARGE => McOutcome::TooLarge,
            _ => return None,
        })
    }
}

impl McItem {
    /// The live item at `key` at `now_ms`, if it holds a string.
    pub(crate) fn of(value: &Value, now_ms: u64) -> Option<McItem> {
        let data = value.data.as_string()?;
        let ttl_s = value.expire_at_ms.map_or(-1, |at| at.saturating_sub(now_ms).div_ceil(1000) as i64);
        Some(McItem { value: data.to_vec(), flags: value.flags, cas: value.version, ttl_s })
    }

    /// The item as a reply: `[value, flags, cas, ttl]`.
    pub fn into_reply(self) -> Reply {
        Reply::Array(vec![
            Reply::Bulk(self.value),
            Reply::Integer(i64::from(self.flags)),
            Reply::Integer(self.cas as i64),
            Reply::Integer(self.ttl_s),
        ])
    }

    /// Reads back [`McItem::into_reply`]; `None` for any other reply.
    pub fn from_reply(reply: Reply) -> Option<McItem> {
        let Reply::Array(items) = reply else { return None };
        match <[Reply; 4]>::try_from(items).ok()? {
            [Reply::Bulk(value), Reply::Integer(flags), Reply::Integer(cas), Reply::Integer(ttl_s)] => {
                Some(McItem { value, flags: u32::try_from(flags).ok()?, cas: cas as u64, ttl_s })
            }
            _ => None,
        }
    }
}

/// memcached's reading of a decimal counter (`safe_strtoull`): optional leading whitespace and
/// sign, digits, then the end or whitespace; more than 64 bits, or a minus sign giving a
/// number over 2^63, is not a number.
pub fn parse_counter(text: &[u8]) -> Option<u64> {
    let is_space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c);
    let start = text.iter().position(|b| !is_space(b))?;
    let rest = &text[start..];
    let (negative, rest) = match rest.first() {
        Some(b'-') => (true, &rest[1..]),
        Some(b'+') => (false, &rest[1..]),
        _ => (false, rest),
    };
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || rest.get(digits).is_some_and(|b| !is_space(b)) {
        return None;
    }
    let mut value: u64 = 0;
    for &digit in &rest[..digits] {
        value = value.checked_mul(10)?.checked_add(u64::from(digit - b'0'))?;
    }
    if negative {
        // strtoull negates; memcached refuses the result when it looks negative as signed.
        value = value.wrapping_neg();
        if (value as i64) < 0 {
            return None;
        }
    }
    Some(value)
}

impl McWrite {
    /// The key it writes (none for flush_all).
    pub fn key(&self) -> Option<&[u8]> {
        match self {
            McWrite::Store { key, .. }
            | McWrite::Delta { key, .. }
            | McWrite::Touch { key, .. }
            | McWrite::Delete { key, .. } => Some(key),
            McWrite::FlushAll { .. } => None,
        }
    }

    /// Applies the write at the entry's time `now` (expired keys already removed).
    pub(crate) fn apply(&self, store: &mut KvStore, now: u64) -> Reply {
        let outcome = match self {
            McWrite::Store { mode, key, value, flags, expiry, cas } => {
                store.mc_store(*mode, key, value, *flags, *expiry, *cas, now)
            }
            McWrite::Delta { key, decrement, delta, cas, vivify } => {
                store.mc_delta(key, *decrement, *delta, *cas, *vivify, now)
            }
            McWrite::Touch { key, expiry, fetch } => store.mc_touch(key, *expiry, *fetch, now),
            McWrite::Delete { key, cas } => match store.entries.get(key.as_slice()) {
                None => McOutcome::NotFound,
                Some(v) if cas.is_some_and(|cas| cas != v.version) => McOutcome::Exists,
                Some(_) => {
                    store.remove(key);
                    McOutcome::Deleted
                }
            },
            McWrite::FlushAll { delay } => {
                match delay.resolve(now) {
                    Ok(Some(at)) => store.flush_at_ms = Some(at),
                    Ok(None) | Err(()) => store.flush(),
                }
                McOutcome::Ok
            }
        };
        outcome.into_reply()
    }
}

impl KvStore {
    /// The item at `key` for a write: `Ok(None)` when absent, `WrongType` for a collection.
    fn mc_item(&self, key: &[u8]) -> Result<Option<&Value>, McOutcome> {
        match self.entries.get(key) {
            Some(value) if value.data.as_string().is_none() => Err(McOutcome::WrongType),
            found => Ok(found),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn mc_store(
        &mut self,
        mode: StoreMode,
        key: &[u8],
        data: &[u8],
        flags: u32,
        expiry: McExpiry,
        cas: Option<u64>,
        now: u64,
    ) -> McOutcome {
        let existing = self.entries.get(key);
        let version = existing.map(|v| v.version);
        let current = match self.mc_item(key) {
            Ok(item) => {
                item.map(|v| (v.data.as_string().cloned().unwrap_or_default(), v.flags, v.expire_at_ms))
            }
            // A collection is no item to add to or compare with; set and replace overwrite
            // it, as Redis's SET does, and add finds the key taken.
            Err(outcome) if cas.is_some() || matches!(mode, StoreMode::Append | StoreMode::Prepend) => {
                return outcome
            }
            Err(_) => None,
        };
        match (version, cas) {
            (None, Some(_)) => return McOutcome::NotFound,
            (Some(version), Some(cas)) if version != cas => return McOutcome::Exists,
            _ => {}
        }
        let refused = match mode {
            StoreMode::Set => false,
            StoreMode::Add => version.is_some(),
            StoreMode::Replace | StoreMode::Append | StoreMode::Prepend => version.is_none(),
        };
        if refused {
            return McOutcome::NotStored;
        }
        match (mode, current) {
            (StoreMode::Append | StoreMode::Prepend, Some((current, flags, expire_at_ms))) => {
                if current.len() as u64 + data.len() as u64 > super::command::VALUE_BYTES_MAX {
                    return McOutcome::TooLarge;
                }
                let joined: Arc<[u8]> = if mode == StoreMode::Append {
                    [&current[..], data].concat().into()
                } else {
                    [data, &current[..]].concat().into()
                };
                self.insert(key, joined, expire_at_ms);
                self.set_flags(key, flags);
            }
            _ => match expiry.resolve(now) {
                Ok(expire_at_ms) => {
                    self.remove(key);
                    self.insert(key, data, expire_at_ms);
                    self.set_flags(key, flags);
                }
                // Stored, and gone at once, as memcached stores an item already expired.
                Err(()) => {
                    self.remove(key);
                }
            },
        }
        McOutcome::Stored { cas: self.write_version }
    }

    fn mc_delta(
        &mut self,
        key: &[u8],
        decrement: bool,
        delta: u64,
        cas: Option<u64>,
        vivify: Option<(u64, McExpiry)>,
        now: u64,
    ) -> McOutcome {
        let (current, version, expire_at_ms) = match self.mc_item(key) {
            Err(outcome) => return outcome,
            Ok(None) => {
                let Some((initial, expiry)) = vivify else { return McOutcome::NotFound };
                if let Ok(expire_at_ms) = expiry.resolve(now) {
                    self.insert(key, initial.to_string().into_bytes(), expire_at_ms);
                }
                return McOutcome::Counter { value: initial, cas: self.write_version };
            }
            Ok(Some(value)) => {
                (value.data.as_string().cloned().unwrap_or_default(), value.version, value.expire_at_ms)
            }
        };
        if cas.is_some_and(|cas| cas != version) {
            return McOutcome::Exists;
        }
        let Some(number) = parse_counter(&current) else { return McOutcome::NonNumeric };
        let next = if decrement { number.saturating_sub(delta) } else { number.wrapping_add(delta) };
        let mut text = next.to_string().into_bytes();
        // memcached rewrites a shorter number in place, padded with spaces to the old length.
        if text.len() < current.len() {
            text.resize(current.len(), b' ');
        }
        self.update_string(key, text, expire_at_ms);
        McOutcome::Counter { value: next, cas: self.write_version }
    }

    fn mc_touch(&mut self, key: &[u8], expiry: McExpiry, fetch: bool, now: u64) -> McOutcome {
        let before = match self.mc_item(key) {
            Err(outcome) => return outcome,
            Ok(None) => return McOutcome::NotFound,
            Ok(Some(value)) => McItem::of(value, now),
        };
        match expiry.resolve(now) {
            Ok(at) => self.retime(key, at),
            Err(()) => {
                self.remove(key);
            }
        }
        if !fetch {
            return McOutcome::Touched;
        }
        // gat answers the item with its new expiry, even one that removed it.
        match (self.entries.get(key).and_then(|v| McItem::of(v, now)), before) {
            (Some(item), _) => McOutcome::Item(item),
            (None, Some(item)) => McOutcome::Item(McItem { ttl_s: 0, ..item }),
            (None, None) => McOutcome::NotFound,
        }
    }

    /// The live item at `key` at `now_ms` (memcached's get), `None` for a miss or a key
    /// holding a collection.
    pub(crate) fn mc_get(&self, key: &[u8], now_ms: u64) -> Option<McItem> {
        McItem::of(self.get_live(key, now_ms)?, now_ms)
    }
}

// Tags of the memcached operations inside a `WriteOp::Memcached` entry. Never renumber.
const MC_STORE: u8 = 0;
const MC_DELTA: u8 = 1;
const MC_TOUCH: u8 = 2;
const MC_DELETE: u8 = 3;
const MC_FLUSH_ALL: u8 = 4;

fn put_expiry(out: &mut Vec<u8>, expiry: McExpiry) {
    match expiry {
        McExpiry::Never => out.push(0),
        McExpiry::Expired => out.push(1),
        McExpiry::After(s) => {
            out.push(2);
            put_varint(out, u64::from(s));
        }
        McExpiry::At(s) => {
            out.push(3);
            put_varint(out, s);
        }
    }
}

fn expiry(reader: &mut Reader<'_>) -> Result<McExpiry, KvDecodeError> {
    let offset = reader.offset();
    Ok(match reader.u8("memcached expiry")? {
        0 => McExpiry::Never,
        1 => McExpiry::Expired,
        2 => {
            let s = reader.varint("memcached expiry span")?;
            McExpiry::After(
                u32::try_from(s)
                    .map_err(|_| KvDecodeError::Invalid { field: "memcached expiry span", offset })?,
            )
        }
        3 => McExpiry::At(reader.varint("memcached expiry time")?),
        tag => return Err(KvDecodeError::InvalidTag { field: "memcached expiry", tag, offset }),
    })
}

fn put_option(out: &mut Vec<u8>, number: Option<u64>) {
    match number {
        None => out.push(0),
        Some(n) => {
            out.push(1);
            put_varint(out, n);
        }
    }
}

fn option(reader: &mut Reader<'_>, field: &'static str) -> Result<Option<u64>, KvDecodeError> {
    let offset = reader.offset();
    match reader.u8(field)? {
        0 => Ok(None),
        1 => Ok(Some(reader.varint(field)?)),
        tag => Err(KvDecodeError::InvalidTag { field, tag, offset }),
    }
}

impl McWrite {
    /// Appends the operation's fields (after `WriteOp`'s tag).
    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            McWrite::Store { mode, key, value, flags, expiry, cas } => {
                out.push(MC_STORE);
                out.push(match mode {
                    StoreMode::Set => 0,
                    StoreMode::Add => 1,
                    StoreMode::Replace => 2,
                    StoreMode::Append => 3,
                    StoreMode::Prepend => 4,
                });
                put_bytes(out, key);
                put_bytes(out, value);
                put_varint(out, u64::from(*flags));
                put_expiry(out, *expiry);
                put_option(out, *cas);
            }
            McWrite::Delta { key, decrement, delta, cas, vivify } => {
                out.push(MC_DELTA);
                put_bytes(out, key);
                out.push(u8::from(*decrement));
                put_varint(out, *delta);
                put_option(out, *cas);
                put_option(out, vivify.map(|(initial, _)| initial));
                if let Some((_, expiry)) = vivify {
                    put_expiry(out, *expiry);
                }
            }
            McWrite::Touch { key, expiry, fetch } => {
                out.push(MC_TOUCH);
                put_bytes(out, key);
                put_expiry(out, *expiry);
                out.push(u8::from(*fetch));
            }
            McWrite::Delete { key, cas } => {
                out.push(MC_DELETE);
                put_bytes(out, key);
                put_option(out, *cas);
            }
            McWrite::FlushAll { delay } => {
                out.push(MC_FLUSH_ALL);
                put_expiry(out, *delay);
            }
        }
    }

    /// Decodes what [`McWrite::encode`] wrote; never panics, bounded allocation.
    pub(super) fn decode(reader: &mut Reader<'_>) -> Result<McWrite, KvDecodeError> {
        let offset = reader.offset();
        let flag = |reader: &mut Reader<'_>, field: &'static str| {
            let offset = reader.offset();
            match reader.u8(field)? {
                0 => Ok(false),
                1 => Ok(true),
                tag => Err(KvDecodeError::InvalidTag { field, tag, offset }),
            }
        };
        Ok(match reader.u8("memcached operation")? {
            MC_STORE => {
                let mode_offset = reader.offset();
                let mode = match reader.u8("memcached store mode")? {
                    0 => StoreMode::Set,
                    1 => StoreMode::Add,
                    2 => StoreMode::Replace,
                    3 => StoreMode::Append,
                    4 => StoreMode::Prepend,
                    tag => {
                        return Err(KvDecodeError::InvalidTag {
                            field: "memcached store mode",
                            tag,
                            offset: mode_offset,
                        })
                    }
                };
                let key = key(reader)?;
                let value = value(reader)?;
                let flags_offset = reader.offset();
                let flags = u32::try_from(reader.varint("memcached flags")?)
                    .map_err(|_| KvDecodeError::Invalid { field: "memcached flags", offset: flags_offset })?;
                let expiry = expiry(reader)?;
                let cas = option(reader, "memcached cas")?;
                McWrite::Store { mode, key, value, flags, expiry, cas }
            }
            MC_DELTA => {
                let key = key(reader)?;
                let decrement = flag(reader, "memcached decrement")?;
                let delta = reader.varint("memcached delta")?;
                let cas = option(reader, "memcached cas")?;
                let vivify = match option(reader, "memcached initial")? {
                    None => None,
                    Some(initial) => Some((initial, expiry(reader)?)),
                };
                McWrite::Delta { key, decrement, delta, cas, vivify }
            }
            MC_TOUCH => McWrite::Touch {
                key: key(reader)?,
                expiry: expiry(reader)?,
                fetch: flag(reader, "memcached fetch")?,
            },
            MC_DELETE => McWrite::Delete { key: key(reader)?, cas: option(reader, "memcached cas")? },
            MC_FLUSH_ALL => McWrite::FlushAll { delay: expiry(reader)? },
            tag => return Err(KvDecodeError::InvalidTag { field: "memcached operation", tag, offset }),
        })
    }
}

#[cfg(test)]
mod tests;

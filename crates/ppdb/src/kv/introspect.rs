//! What OBJECT and MEMORY USAGE answer about a key: Redis's names for the encoding its value
//! would have, and the memory the key is counted for.
//!
//! PPDB stores every type one way (`kv/types`); OBJECT ENCODING names the encoding Redis 7.0
//! would pick for the same value with its default thresholds, because clients and tests read
//! it (a list is `quicklist`; a small hash or sorted set `listpack`; a set of few integers
//! `intset`; a short string `embstr`, a number `int`). Redis chooses once and never converts
//! back, so after a collection shrinks the answers can differ; nothing in PPDB depends on them.

use super::numeric::parse_i64;
use super::reply::{KvError, Reply};
use super::state_machine::{stored_bytes, Value};
use super::types::Data;

/// Redis's `hash-max-listpack-entries` and `zset-max-listpack-entries`.
const LISTPACK_ENTRIES_MAX: usize = 128;
/// Redis's `hash-max-listpack-value` and `zset-max-listpack-value`.
const LISTPACK_VALUE_BYTES_MAX: usize = 64;
/// The longest string Redis stores as `embstr`.
const EMBSTR_BYTES_MAX: usize = 44;
/// What OBJECT REFCOUNT answers for a shared integer (0 to 9999) in Redis.
const SHARED_INTEGER_REFCOUNT: i64 = i32::MAX as i64;
/// Integers Redis shares between keys.
const SHARED_INTEGERS_MAX: i64 = 9_999;

/// What OBJECT asks about a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectField {
    /// OBJECT ENCODING.
    Encoding,
    /// OBJECT REFCOUNT.
    RefCount,
    /// OBJECT IDLETIME: PPDB keeps no access times, so 0.
    IdleTime,
    /// OBJECT FREQ: refused, as Redis refuses it without an LFU eviction policy.
    Freq,
}

/// The OBJECT reply for `value` (`None`: the key does not exist, answered nil).
pub fn object_reply(value: Option<&Value>, field: ObjectField) -> Reply {
    let Some(value) = value else {
        return Reply::Nil;
    };
    match field {
        ObjectField::Encoding => Reply::Bulk(encoding(&value.data).as_bytes().to_vec()),
        ObjectField::RefCount => Reply::Integer(refcount(&value.data)),
        ObjectField::IdleTime => Reply::Integer(0),
        ObjectField::Freq => Reply::Error(KvError::LfuNotSelected),
    }
}

/// MEMORY USAGE: the bytes `key` and its value are counted for (the estimate `maxmemory`
/// compares), or nil when the key does not exist.
pub fn memory_usage_reply(key: &[u8], value: Option<&Value>) -> Reply {
    value.map_or(Reply::Nil, |value| Reply::Integer(stored_bytes(key, value.data.bytes()) as i64))
}

/// The name of the encoding Redis 7.0 would use for `data` (see the module docs).
fn encoding(data: &Data) -> &'static str {
    match data {
        Data::String(bytes) if bytes.len() <= 20 && parse_i64(bytes).is_some() => "int",
        Data::String(bytes) if bytes.len() <= EMBSTR_BYTES_MAX => "embstr",
        Data::String(_) => "raw",
        Data::Hash(hash) => {
            let items = hash.iter().flat_map(|(field, value)| [field, value]);
            if fits_listpack(hash.len(), items) {
                "listpack"
            } else {
                "hashtable"
            }
        }
        Data::List(_) => "quicklist",
        Data::Set(set) => set.encoding().name(),
        Data::SortedSet(zset) => {
            let members = zset.iter().map(|(member, _)| member);
            if fits_listpack(zset.len(), members) {
                "listpack"
            } else {
                "skiplist"
            }
        }
    }
}

/// Whether a hash or sorted set of `len` entries with these `items` stays a listpack in Redis.
fn fits_listpack<'a>(len: usize, mut items: impl Iterator<Item = &'a [u8]>) -> bool {
    len <= LISTPACK_ENTRIES_MAX && items.all(|item| item.len() <= LISTPACK_VALUE_BYTES_MAX)
}

/// OBJECT REFCOUNT: Redis shares the integers 0 to 9999 between keys; every other value has one
/// reference.
fn refcount(data: &Data) -> i64 {
    match data.as_string().and_then(|bytes| parse_i64(bytes)) {
        Some(n) if (0..=SHARED_INTEGERS_MAX).contains(&n) => SHARED_INTEGER_REFCOUNT,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::types::{Collection, HashValue, ListValue, SetValue, SortedSetValue};

    fn string(bytes: &[u8]) -> Data {
        Data::String(bytes.into())
    }

    #[test]
    fn encodings_are_named_as_redis_7_0_names_them() {
        assert_eq!(encoding(&string(b"123")), "int");
        assert_eq!(encoding(&string(b"abc")), "embstr");
        assert_eq!(encoding(&string(&[b'a'; 45])), "raw");
        let mut hash = HashValue::default();
        hash.insert(b"f", b"v");
        assert_eq!(encoding(&hash.clone().into_data()), "listpack");
        hash.insert(b"long", &[b'v'; 65]);
        assert_eq!(encoding(&hash.into_data()), "hashtable");
        let mut list = ListValue::default();
        list.push_back(b"a");
        assert_eq!(encoding(&list.into_data()), "quicklist");
        let mut set = SetValue::default();
        set.insert(b"1");
        assert_eq!(encoding(&set.clone().into_data()), "intset");
        set.insert(b"a");
        assert_eq!(encoding(&set.into_data()), "hashtable");
        let mut zset = SortedSetValue::default();
        (0..=LISTPACK_ENTRIES_MAX).for_each(|n| {
            zset.insert(n.to_string().as_bytes(), 1.0);
        });
        assert_eq!(encoding(&zset.into_data()), "skiplist");
    }

    #[test]
    fn shared_integers_have_redis_refcount() {
        assert_eq!(refcount(&string(b"123")), SHARED_INTEGER_REFCOUNT);
        assert_eq!(refcount(&string(b"10000")), 1);
        assert_eq!(refcount(&string(b"abc")), 1);
        assert_eq!(object_reply(None, ObjectField::Encoding), Reply::Nil);
    }
}

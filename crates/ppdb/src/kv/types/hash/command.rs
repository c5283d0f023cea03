//! Hash commands: as parsed, as logged, and as applied or answered.
//!
//! # Encoding (inside a collection operation, after type tag 1)
//!
//! `op_tag:u8 fields...`, byte strings and counts as in the rest of the entry (`kv::codec`),
//! bounded as there.

use crate::kv::codec::{put_bytes, put_varint, KvDecodeError, Reader};
use crate::kv::command::{key, pairs, value, KeyValuePairs};
use crate::kv::reply::Reply;
use crate::kv::state_machine::KvStore;

use super::HashValue;

/// A hash command that changes the key space.
#[derive(Debug, Clone, PartialEq)]
pub enum HashWrite {
    /// HSET and HMSET: set every field (in order; a repeated field keeps its last value).
    Set {
        /// The key.
        key: Vec<u8>,
        /// Fields and values.
        pairs: KeyValuePairs,
        /// HMSET: reply OK instead of the number of new fields.
        reply_ok: bool,
    },
}

/// A hash command that only reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashRead {
    /// HGET.
    Get {
        /// The key.
        key: Vec<u8>,
        /// The field.
        field: Vec<u8>,
    },
    /// HLEN.
    Len {
        /// The key.
        key: Vec<u8>,
    },
}

// Operation tags. Never renumber: they are on disk.
const WRITE_SET: u8 = 1;
const READ_GET: u8 = 1;
const READ_LEN: u8 = 2;

impl HashWrite {
    /// The keys the command touches.
    pub fn keys(&self) -> Vec<&[u8]> {
        match self {
            Self::Set { key, .. } => vec![key.as_slice()],
        }
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Set { key, pairs, reply_ok } => {
                out.push(WRITE_SET);
                put_bytes(out, key);
                put_varint(out, pairs.len() as u64);
                for (field, value) in pairs {
                    put_bytes(out, field);
                    put_bytes(out, value);
                }
                out.push(u8::from(*reply_ok));
            }
        }
    }

    pub(crate) fn decode(reader: &mut Reader<'_>) -> Result<Self, KvDecodeError> {
        let offset = reader.offset();
        Ok(match reader.u8("hash write")? {
            WRITE_SET => Self::Set { key: key(reader)?, pairs: pairs(reader)?, reply_ok: flag(reader)? },
            tag => return Err(KvDecodeError::InvalidTag { field: "hash write", tag, offset }),
        })
    }

    pub(crate) fn apply(&self, store: &mut KvStore, _now: u64) -> Reply {
        match self {
            Self::Set { key, pairs, reply_ok } => {
                let added = store.change_collection(key, true, |hash: &mut HashValue| {
                    pairs.iter().filter(|(field, value)| hash.insert(field, value)).count()
                });
                match added {
                    Err(error) => Reply::Error(error),
                    Ok(_) if *reply_ok => Reply::Ok,
                    Ok(added) => Reply::Integer(added.unwrap_or(0) as i64),
                }
            }
        }
    }
}

impl HashRead {
    /// The keys the query touches.
    pub fn keys(&self) -> Vec<&[u8]> {
        match self {
            Self::Get { key, .. } | Self::Len { key } => vec![key.as_slice()],
        }
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Get { key, field } => {
                out.push(READ_GET);
                put_bytes(out, key);
                put_bytes(out, field);
            }
            Self::Len { key } => {
                out.push(READ_LEN);
                put_bytes(out, key);
            }
        }
    }

    pub(crate) fn decode(reader: &mut Reader<'_>) -> Result<Self, KvDecodeError> {
        let offset = reader.offset();
        Ok(match reader.u8("hash read")? {
            READ_GET => Self::Get { key: key(reader)?, field: value(reader)? },
            READ_LEN => Self::Len { key: key(reader)? },
            tag => return Err(KvDecodeError::InvalidTag { field: "hash read", tag, offset }),
        })
    }

    pub(crate) fn read(&self, store: &KvStore, now: u64) -> Reply {
        let result = match self {
            Self::Get { key, field } => store
                .collection::<HashValue>(key, now)
                .map(|hash| Reply::bulk_or_nil(hash.and_then(|hash| hash.get(field)))),
            Self::Len { key } => store
                .collection::<HashValue>(key, now)
                .map(|hash| Reply::Integer(hash.map_or(0, |h| h.len() as i64))),
        };
        result.unwrap_or_else(Reply::Error)
    }
}

/// A 0/1 flag byte.
fn flag(reader: &mut Reader<'_>) -> Result<bool, KvDecodeError> {
    let offset = reader.offset();
    match reader.u8("flag")? {
        0 => Ok(false),
        1 => Ok(true),
        tag => Err(KvDecodeError::InvalidTag { field: "flag", tag, offset }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::types::CollectionWrite;
    use crate::kv::{KvError, KvWrite, WriteOp};

    fn apply(store: &mut KvStore, op: HashWrite) -> Reply {
        store.apply(&KvWrite { now_ms: 1, op: WriteOp::Collection(CollectionWrite::Hash(op)) })
    }

    fn hset(key: &[u8], pairs: &[(&[u8], &[u8])]) -> HashWrite {
        let pairs = pairs.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect();
        HashWrite::Set { key: key.to_vec(), pairs, reply_ok: false }
    }

    #[test]
    fn hset_counts_new_fields_and_hget_reads_them() {
        let mut store = KvStore::new();
        assert_eq!(
            apply(&mut store, hset(b"h", &[(b"a", b"1"), (b"b", b"2"), (b"a", b"3")])),
            Reply::Integer(2)
        );
        let get = |store: &KvStore, field: &[u8]| {
            HashRead::Get { key: b"h".to_vec(), field: field.to_vec() }.read(store, 1)
        };
        assert_eq!(get(&store, b"a"), Reply::Bulk(b"3".to_vec()));
        assert_eq!(get(&store, b"zz"), Reply::Nil);
        assert_eq!(HashRead::Len { key: b"h".to_vec() }.read(&store, 1), Reply::Integer(2));
        assert_eq!(HashRead::Len { key: b"none".to_vec() }.read(&store, 1), Reply::Integer(0));
        store.check_indexes();
    }

    #[test]
    fn a_hash_command_on_a_string_is_wrongtype_and_changes_nothing() {
        let mut store = KvStore::new();
        store.insert(b"s", &b"v"[..], None);
        apply(&mut store, hset(b"other", &[(b"f", b"v")]));
        let before = store.clone();
        assert_eq!(apply(&mut store, hset(b"s", &[(b"f", b"v")])), Reply::Error(KvError::WrongType));
        assert_eq!(store, before);
        let get = HashRead::Get { key: b"s".to_vec(), field: b"f".to_vec() };
        assert_eq!(get.read(&store, 1), Reply::Error(KvError::WrongType));
    }
}

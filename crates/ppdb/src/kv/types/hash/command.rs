//! Hash commands as parsed and as logged: the operations, their keys, and their encoding.
//! Applying them is `apply.rs`, answering them `read.rs`.
//!
//! # Encoding (inside a collection operation, after type tag 1)
//!
//! `op_tag:u8 fields...`, byte strings and counts as in the rest of the entry (`kv::codec`),
//! bounded as there. Field lists are counted like key lists (at most `BATCH_KEYS_MAX`).
//!
//! | operation            | tag | fields after the tag                                        |
//! |----------------------|-----|-------------------------------------------------------------|
//! | write Set            | 1   | key, pairs, reply_ok:u8                                     |
//! | write SetIfAbsent    | 2   | key, field, value                                           |
//! | write Delete         | 3   | key, fields                                                 |
//! | write IncrBy         | 4   | key, field, delta:zigzag varint                             |
//! | write IncrByFloat    | 5   | key, field, delta:f64 bits LE                               |
//! | read Get             | 1   | key, field                                                  |
//! | read Len             | 2   | key                                                         |
//! | read MGet            | 3   | key, fields                                                 |
//! | read GetAll/Keys/Values | 4/5/6 | key                                                   |
//! | read Exists, StrLen  | 7/8 | key, field                                                  |
//! | read RandomFields    | 9   | key, count (0 none / 1 + zigzag varint), with_values:u8, seed:u64 LE |
//! | read Scan            | 10  | key, cursor:varint, pattern (0 none / 1 + bytes), count:varint |
//! | read ScanRefused     | 11  | key, error:u8 (its wire tag)                                |

use crate::kv::codec::{put_bytes, put_list, put_signed, put_varint, KvDecodeError, Reader};
use crate::kv::command::KeyValuePairs;
use crate::kv::entry::{key, keys, pairs, value};
use crate::kv::types::{ScanQuery, ScanRefusal};

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
    /// HSETNX: set the field only if the hash does not have it.
    SetIfAbsent {
        /// The key.
        key: Vec<u8>,
        /// The field.
        field: Vec<u8>,
        /// Its value.
        value: Vec<u8>,
    },
    /// HDEL: remove fields; the key goes when its last field does.
    Delete {
        /// The key.
        key: Vec<u8>,
        /// The fields (a repeated one counts once).
        fields: Vec<Vec<u8>>,
    },
    /// HINCRBY: add to a field holding an integer (a missing field counts as 0).
    IncrBy {
        /// The key.
        key: Vec<u8>,
        /// The field.
        field: Vec<u8>,
        /// What to add.
        delta: i64,
    },
    /// HINCRBYFLOAT: add to a field holding a float (a missing field counts as 0).
    IncrByFloat {
        /// The key.
        key: Vec<u8>,
        /// The field.
        field: Vec<u8>,
        /// What to add: finite (the parser refuses infinities).
        delta: f64,
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
    /// HMGET: each field's value or nil.
    MGet {
        /// The key.
        key: Vec<u8>,
        /// The fields.
        fields: Vec<Vec<u8>>,
    },
    /// HGETALL: fields and values as a map.
    GetAll {
        /// The key.
        key: Vec<u8>,
    },
    /// HKEYS.
    Keys {
        /// The key.
        key: Vec<u8>,
    },
    /// HVALS.
    Values {
        /// The key.
        key: Vec<u8>,
    },
    /// HEXISTS.
    Exists {
        /// The key.
        key: Vec<u8>,
        /// The field.
        field: Vec<u8>,
    },
    /// HSTRLEN: the length of a field's value, 0 if missing.
    StrLen {
        /// The key.
        key: Vec<u8>,
        /// The field.
        field: Vec<u8>,
    },
    /// HRANDFIELD: fields chosen from `seed`, which the parser drew, so every node that
    /// answers the same query chooses alike.
    RandomFields {
        /// The key.
        key: Vec<u8>,
        /// None: one field as a bulk reply. Positive: that many distinct fields (the whole
        /// hash if it has no more). Negative: that many picks, repeats allowed.
        count: Option<i64>,
        /// WITHVALUES: each field with its value.
        with_values: bool,
        /// Where the choices come from.
        seed: u64,
    },
    /// HSCAN with valid options (see `read.rs` for the cursor).
    Scan(ScanQuery),
    /// HSCAN with options Redis refuses: a hash answers the refusal's error.
    ScanRefused(ScanRefusal),
}

// Operation tags. Never renumber: they are on disk.
const WRITE_SET: u8 = 1;
const WRITE_SET_IF_ABSENT: u8 = 2;
const WRITE_DELETE: u8 = 3;
const WRITE_INCR_BY: u8 = 4;
const WRITE_INCR_BY_FLOAT: u8 = 5;
const READ_GET: u8 = 1;
const READ_LEN: u8 = 2;
const READ_MGET: u8 = 3;
const READ_GET_ALL: u8 = 4;
const READ_KEYS: u8 = 5;
const READ_VALUES: u8 = 6;
const READ_EXISTS: u8 = 7;
const READ_STRLEN: u8 = 8;
const READ_RANDOM_FIELDS: u8 = 9;
const READ_SCAN: u8 = 10;
const READ_SCAN_REFUSED: u8 = 11;

impl HashWrite {
    /// The keys the command touches.
    pub fn keys(&self) -> Vec<&[u8]> {
        match self {
            Self::Set { key, .. }
            | Self::SetIfAbsent { key, .. }
            | Self::Delete { key, .. }
            | Self::IncrBy { key, .. }
            | Self::IncrByFloat { key, .. } => vec![key.as_slice()],
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
            Self::SetIfAbsent { key, field, value } => {
                out.push(WRITE_SET_IF_ABSENT);
                put_bytes(out, key);
                put_bytes(out, field);
                put_bytes(out, value);
            }
            Self::Delete { key, fields } => {
                out.push(WRITE_DELETE);
                put_bytes(out, key);
                put_list(out, fields);
            }
            Self::IncrBy { key, field, delta } => {
                out.push(WRITE_INCR_BY);
                put_bytes(out, key);
                put_bytes(out, field);
                put_signed(out, *delta);
            }
            Self::IncrByFloat { key, field, delta } => {
                out.push(WRITE_INCR_BY_FLOAT);
                put_bytes(out, key);
                put_bytes(out, field);
                out.extend_from_slice(&delta.to_bits().to_le_bytes());
            }
        }
    }

    pub(crate) fn decode(reader: &mut Reader<'_>) -> Result<Self, KvDecodeError> {
        let offset = reader.offset();
        Ok(match reader.u8("hash write")? {
            WRITE_SET => {
                Self::Set { key: key(reader)?, pairs: pairs(reader)?, reply_ok: reader.flag("flag")? }
            }
            WRITE_SET_IF_ABSENT => {
                Self::SetIfAbsent { key: key(reader)?, field: value(reader)?, value: value(reader)? }
            }
            WRITE_DELETE => Self::Delete { key: key(reader)?, fields: keys(reader)? },
            WRITE_INCR_BY => {
                Self::IncrBy { key: key(reader)?, field: value(reader)?, delta: reader.signed("delta")? }
            }
            WRITE_INCR_BY_FLOAT => {
                Self::IncrByFloat { key: key(reader)?, field: value(reader)?, delta: f64_bits(reader)? }
            }
            tag => return Err(KvDecodeError::InvalidTag { field: "hash write", tag, offset }),
        })
    }
}

impl HashRead {
    /// The keys the query touches.
    pub fn keys(&self) -> Vec<&[u8]> {
        match self {
            Self::Get { key, .. }
            | Self::Len { key }
            | Self::MGet { key, .. }
            | Self::GetAll { key }
            | Self::Keys { key }
            | Self::Values { key }
            | Self::Exists { key, .. }
            | Self::StrLen { key, .. }
            | Self::RandomFields { key, .. }
            | Self::Scan(ScanQuery { key, .. })
            | Self::ScanRefused(ScanRefusal { key, .. }) => vec![key.as_slice()],
        }
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Get { key, field } | Self::Exists { key, field } | Self::StrLen { key, field } => {
                out.push(match self {
                    Self::Get { .. } => READ_GET,
                    Self::Exists { .. } => READ_EXISTS,
                    _ => READ_STRLEN,
                });
                put_bytes(out, key);
                put_bytes(out, field);
            }
            Self::Len { key } | Self::GetAll { key } | Self::Keys { key } | Self::Values { key } => {
                out.push(match self {
                    Self::Len { .. } => READ_LEN,
                    Self::GetAll { .. } => READ_GET_ALL,
                    Self::Keys { .. } => READ_KEYS,
                    _ => READ_VALUES,
                });
                put_bytes(out, key);
            }
            Self::MGet { key, fields } => {
                out.push(READ_MGET);
                put_bytes(out, key);
                put_list(out, fields);
            }
            Self::RandomFields { key, count, with_values, seed } => {
                out.push(READ_RANDOM_FIELDS);
                put_bytes(out, key);
                match count {
                    None => out.push(0),
                    Some(count) => {
                        out.push(1);
                        put_signed(out, *count);
                    }
                }
                out.push(u8::from(*with_values));
                out.extend_from_slice(&seed.to_le_bytes());
            }
            Self::Scan(query) => {
                out.push(READ_SCAN);
                query.encode(out);
            }
            Self::ScanRefused(refusal) => {
                out.push(READ_SCAN_REFUSED);
                refusal.encode(out);
            }
        }
    }

    pub(crate) fn decode(reader: &mut Reader<'_>) -> Result<Self, KvDecodeError> {
        let offset = reader.offset();
        Ok(match reader.u8("hash read")? {
            READ_GET => Self::Get { key: key(reader)?, field: value(reader)? },
            READ_LEN => Self::Len { key: key(reader)? },
            READ_MGET => Self::MGet { key: key(reader)?, fields: keys(reader)? },
            READ_GET_ALL => Self::GetAll { key: key(reader)? },
            READ_KEYS => Self::Keys { key: key(reader)? },
            READ_VALUES => Self::Values { key: key(reader)? },
            READ_EXISTS => Self::Exists { key: key(reader)?, field: value(reader)? },
            READ_STRLEN => Self::StrLen { key: key(reader)?, field: value(reader)? },
            READ_RANDOM_FIELDS => Self::RandomFields {
                key: key(reader)?,
                count: if reader.flag("flag")? { Some(reader.signed("count")?) } else { None },
                with_values: reader.flag("flag")?,
                seed: reader.u64_le("seed")?,
            },
            READ_SCAN => Self::Scan(ScanQuery::decode(reader)?),
            READ_SCAN_REFUSED => Self::ScanRefused(ScanRefusal::decode(reader)?),
            tag => return Err(KvDecodeError::InvalidTag { field: "hash read", tag, offset }),
        })
    }
}

/// A finite float's bits; a NaN or an infinity is refused (the parser never sends one).
fn f64_bits(reader: &mut Reader<'_>) -> Result<f64, KvDecodeError> {
    let offset = reader.offset();
    let delta = f64::from_bits(reader.u64_le("float delta")?);
    if !delta.is_finite() {
        return Err(KvDecodeError::Invalid { field: "float delta", offset });
    }
    Ok(delta)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::kv::reply::KvError;
    use crate::kv::types::scan_query::strategies::{scan_query, scan_refusal};
    use crate::kv::types::{CollectionRead, CollectionWrite};

    fn bytes() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(any::<u8>(), 0..8)
    }

    fn list() -> impl Strategy<Value = Vec<Vec<u8>>> {
        prop::collection::vec(bytes(), 0..4)
    }

    fn any_write() -> impl Strategy<Value = HashWrite> {
        prop_oneof![
            (bytes(), prop::collection::vec((bytes(), bytes()), 0..4), any::<bool>())
                .prop_map(|(key, pairs, reply_ok)| HashWrite::Set { key, pairs, reply_ok }),
            (bytes(), bytes(), bytes()).prop_map(|(key, field, value)| HashWrite::SetIfAbsent {
                key,
                field,
                value
            }),
            (bytes(), list()).prop_map(|(key, fields)| HashWrite::Delete { key, fields }),
            (bytes(), bytes(), any::<i64>()).prop_map(|(key, field, delta)| HashWrite::IncrBy {
                key,
                field,
                delta
            }),
            (bytes(), bytes(), -1e300f64..1e300).prop_map(|(key, field, delta)| HashWrite::IncrByFloat {
                key,
                field,
                delta
            }),
        ]
    }

    fn any_read() -> impl Strategy<Value = HashRead> {
        prop_oneof![
            (bytes(), bytes()).prop_map(|(key, field)| HashRead::Get { key, field }),
            bytes().prop_map(|key| HashRead::Len { key }),
            (bytes(), list()).prop_map(|(key, fields)| HashRead::MGet { key, fields }),
            bytes().prop_map(|key| HashRead::GetAll { key }),
            bytes().prop_map(|key| HashRead::Keys { key }),
            bytes().prop_map(|key| HashRead::Values { key }),
            (bytes(), bytes()).prop_map(|(key, field)| HashRead::Exists { key, field }),
            (bytes(), bytes()).prop_map(|(key, field)| HashRead::StrLen { key, field }),
            (bytes(), prop::option::of(any::<i64>()), any::<bool>(), any::<u64>()).prop_map(
                |(key, count, with_values, seed)| HashRead::RandomFields { key, count, with_values, seed }
            ),
            scan_query().prop_map(HashRead::Scan),
            scan_refusal().prop_map(HashRead::ScanRefused),
        ]
    }

    proptest! {
        #[test]
        fn every_hash_write_decodes_back(op in any_write()) {
            let op = CollectionWrite::Hash(op);
            let mut out = Vec::new();
            op.encode(&mut out);
            let mut reader = Reader::new(&out);
            prop_assert_eq!(CollectionWrite::decode(&mut reader), Ok(op));
            prop_assert_eq!(reader.remaining(), 0);
        }

        #[test]
        fn every_hash_read_decodes_back(query in any_read()) {
            let query = CollectionRead::Hash(query);
            let mut out = Vec::new();
            query.encode(&mut out);
            let mut reader = Reader::new(&out);
            prop_assert_eq!(CollectionRead::decode(&mut reader), Ok(query));
            prop_assert_eq!(reader.remaining(), 0);
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(tag in 0u8..13, input in prop::collection::vec(any::<u8>(), 0..64)) {
            // Start with a valid operation tag half of the time so decoding gets past it.
            let mut framed = vec![tag];
            framed.extend_from_slice(&input);
            for bytes in [&framed[..], &input[..]] {
                let _ = HashWrite::decode(&mut Reader::new(bytes));
                let _ = HashRead::decode(&mut Reader::new(bytes));
            }
        }
    }

    #[test]
    fn invalid_floats_counts_and_errors_are_refused() {
        let mut out = Vec::new();
        HashWrite::IncrByFloat { key: b"k".to_vec(), field: b"f".to_vec(), delta: 1.0 }.encode(&mut out);
        let bits = out.len() - 8;
        out[bits..].copy_from_slice(&f64::NAN.to_bits().to_le_bytes());
        assert!(matches!(HashWrite::decode(&mut Reader::new(&out)), Err(KvDecodeError::Invalid { .. })));

        let scan = |count| {
            let mut out = Vec::new();
            HashRead::Scan(ScanQuery { key: b"k".to_vec(), cursor: 0, pattern: None, count })
                .encode(&mut out);
            out
        };
        assert!(matches!(HashRead::decode(&mut Reader::new(&scan(0))), Err(KvDecodeError::Invalid { .. })));

        let mut out = Vec::new();
        HashRead::ScanRefused(ScanRefusal { key: b"k".to_vec(), error: KvError::Syntax }).encode(&mut out);
        *out.last_mut().unwrap() = 255;
        assert!(matches!(HashRead::decode(&mut Reader::new(&out)), Err(KvDecodeError::InvalidTag { .. })));
    }
}

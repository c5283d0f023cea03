//! Applying the hash writes: what each does to the store and what Redis answers.

use crate::kv::numeric::{format_f64, parse_f64, parse_i64};
use crate::kv::reply::{KvError, Reply};
use crate::kv::state_machine::KvStore;

use super::{HashValue, HashWrite};

impl HashWrite {
    /// Applies the command at the entry's time and returns Redis's reply.
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
            Self::SetIfAbsent { key, field, value } => {
                let added = store.change_collection(key, true, |hash: &mut HashValue| {
                    hash.get(field).is_none() && hash.insert(field, value)
                });
                added.map_or_else(Reply::Error, |added| Reply::Integer(i64::from(added == Some(true))))
            }
            Self::Delete { key, fields } => {
                let removed = store.change_collection(key, false, |hash: &mut HashValue| {
                    fields.iter().filter(|field| hash.remove(field).is_some()).count()
                });
                removed.map_or_else(Reply::Error, |removed| Reply::Integer(removed.unwrap_or(0) as i64))
            }
            Self::IncrBy { key, field, delta } => {
                let result = store
                    .try_change_collection(key, true, |hash: &mut HashValue| incr_by(hash, field, *delta));
                created(result).map_or_else(Reply::Error, Reply::Integer)
            }
            Self::IncrByFloat { key, field, delta } => {
                let result = store.try_change_collection(key, true, |hash: &mut HashValue| {
                    incr_by_float(hash, field, *delta)
                });
                created(result).map_or_else(Reply::Error, Reply::Bulk)
            }
        }
    }
}

/// The result of a change that may itself fail; `try_change_collection` with `create` always
/// runs it.
fn created<T>(result: Result<Option<T>, KvError>) -> Result<T, KvError> {
    result?.ok_or(KvError::WrongType)
}

/// HINCRBY on one field: the new value, stored in decimal.
fn incr_by(hash: &mut HashValue, field: &[u8], delta: i64) -> Result<i64, KvError> {
    let current = match hash.get(field) {
        None => 0,
        Some(value) => parse_i64(value).ok_or(KvError::HashValueNotInteger)?,
    };
    let next = current.checked_add(delta).ok_or(KvError::IncrOverflow)?;
    hash.insert(field, next.to_string().as_bytes());
    Ok(next)
}

/// HINCRBYFLOAT on one field: the new value as stored, formatted as INCRBYFLOAT formats it.
fn incr_by_float(hash: &mut HashValue, field: &[u8], delta: f64) -> Result<Vec<u8>, KvError> {
    let current = match hash.get(field) {
        None => 0.0,
        Some(value) => parse_f64(value).ok_or(KvError::HashValueNotFloat)?,
    };
    let next = current + delta;
    if !next.is_finite() {
        return Err(KvError::NanOrInfinity);
    }
    let text = format_f64(next).into_bytes();
    hash.insert(field, &text);
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::types::CollectionWrite;
    use crate::kv::{KvWrite, WriteOp};

    fn apply(store: &mut KvStore, op: HashWrite) -> Reply {
        let reply = store.apply(&KvWrite { now_ms: 1, op: WriteOp::Collection(CollectionWrite::Hash(op)) });
        store.check_indexes();
        reply
    }

    fn hset(key: &[u8], pairs: &[(&[u8], &[u8])]) -> HashWrite {
        let pairs = pairs.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect();
        HashWrite::Set { key: key.to_vec(), pairs, reply_ok: false }
    }

    fn field_of(store: &KvStore, key: &[u8], field: &[u8]) -> Option<Vec<u8>> {
        let hash = store.collection::<HashValue>(key, 1).ok()??;
        hash.get(field).map(<[u8]>::to_vec)
    }

    fn incr(key: &[u8], field: &[u8], delta: i64) -> HashWrite {
        HashWrite::IncrBy { key: key.to_vec(), field: field.to_vec(), delta }
    }

    fn incr_float(key: &[u8], field: &[u8], delta: f64) -> HashWrite {
        HashWrite::IncrByFloat { key: key.to_vec(), field: field.to_vec(), delta }
    }

    #[test]
    fn hset_counts_new_fields_and_hmset_answers_ok() {
        let mut store = KvStore::new();
        assert_eq!(
            apply(&mut store, hset(b"h", &[(b"a", b"1"), (b"b", b"2"), (b"a", b"3")])),
            Reply::Integer(2)
        );
        assert_eq!(field_of(&store, b"h", b"a"), Some(b"3".to_vec()));
        let hmset = HashWrite::Set {
            key: b"h".to_vec(),
            pairs: vec![(b"c".to_vec(), b"4".to_vec())],
            reply_ok: true,
        };
        assert_eq!(apply(&mut store, hmset), Reply::Ok);
    }

    #[test]
    fn hsetnx_sets_only_a_missing_field() {
        let mut store = KvStore::new();
        let setnx = |value: &[u8]| HashWrite::SetIfAbsent {
            key: b"h".to_vec(),
            field: b"f".to_vec(),
            value: value.to_vec(),
        };
        assert_eq!(apply(&mut store, setnx(b"1")), Reply::Integer(1));
        assert_eq!(apply(&mut store, setnx(b"2")), Reply::Integer(0));
        assert_eq!(field_of(&store, b"h", b"f"), Some(b"1".to_vec()));
    }

    #[test]
    fn hdel_counts_each_removed_field_once_and_the_last_one_deletes_the_key() {
        let mut store = KvStore::new();
        apply(&mut store, hset(b"h", &[(b"a", b"1"), (b"b", b"2"), (b"c", b"3")]));
        let hdel = |fields: &[&[u8]]| HashWrite::Delete {
            key: b"h".to_vec(),
            fields: fields.iter().map(|f| f.to_vec()).collect(),
        };
        assert_eq!(apply(&mut store, hdel(&[b"a", b"a", b"zz", b"b"])), Reply::Integer(2));
        assert_eq!(apply(&mut store, hdel(&[b"c"])), Reply::Integer(1));
        assert!(store.get_live(b"h", 1).is_none(), "an empty hash is deleted");
        assert_eq!(apply(&mut store, hdel(&[b"c"])), Reply::Integer(0));
        assert_eq!(store.data_bytes(), 0);
    }

    #[test]
    fn hincrby_adds_to_integers_and_refuses_what_is_not_one_or_would_overflow() {
        let mut store = KvStore::new();
        assert_eq!(apply(&mut store, incr(b"h", b"n", 5)), Reply::Integer(5));
        assert_eq!(apply(&mut store, incr(b"h", b"n", -7)), Reply::Integer(-2));
        assert_eq!(field_of(&store, b"h", b"n"), Some(b"-2".to_vec()));
        apply(&mut store, hset(b"h", &[(b"s", b"abc"), (b"big", b"9223372036854775807")]));
        let before = store.clone();
        assert_eq!(apply(&mut store, incr(b"h", b"s", 1)), Reply::Error(KvError::HashValueNotInteger));
        assert_eq!(apply(&mut store, incr(b"h", b"big", 1)), Reply::Error(KvError::IncrOverflow));
        assert_eq!(store, before, "a refused increment changes nothing");
    }

    #[test]
    fn hincrbyfloat_stores_the_value_as_incrbyfloat_formats_it() {
        let mut store = KvStore::new();
        assert_eq!(apply(&mut store, incr_float(b"h", b"x", 10.5)), Reply::Bulk(b"10.5".to_vec()));
        assert_eq!(apply(&mut store, incr_float(b"h", b"x", 0.1)), Reply::Bulk(b"10.6".to_vec()));
        apply(&mut store, hset(b"h", &[(b"e", b"5.0e3"), (b"s", b"x1"), (b"max", b"1.7e308")]));
        assert_eq!(apply(&mut store, incr_float(b"h", b"e", 200.0)), Reply::Bulk(b"5200".to_vec()));
        assert_eq!(field_of(&store, b"h", b"e"), Some(b"5200".to_vec()));
        let before = store.clone();
        assert_eq!(apply(&mut store, incr_float(b"h", b"s", 1.0)), Reply::Error(KvError::HashValueNotFloat));
        assert_eq!(
            apply(&mut store, incr_float(b"h", b"max", 1.7e308)),
            Reply::Error(KvError::NanOrInfinity)
        );
        assert_eq!(store, before);
    }

    #[test]
    fn hash_writes_on_a_string_are_wrongtype_and_change_nothing() {
        let mut store = KvStore::new();
        store.insert(b"s", &b"v"[..], None);
        apply(&mut store, hset(b"other", &[(b"f", b"v")]));
        let before = store.clone();
        for op in [
            hset(b"s", &[(b"f", b"v")]),
            HashWrite::SetIfAbsent { key: b"s".to_vec(), field: b"f".to_vec(), value: b"v".to_vec() },
            HashWrite::Delete { key: b"s".to_vec(), fields: vec![b"f".to_vec()] },
            incr(b"s", b"f", 1),
            incr_float(b"s", b"f", 1.0),
        ] {
            assert_eq!(apply(&mut store, op), Reply::Error(KvError::WrongType));
        }
        assert_eq!(store, before);
    }
}

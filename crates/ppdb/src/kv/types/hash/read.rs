//! Answering the hash queries.
//!
//! # HSCAN's cursor
//!
//! A hash of at most [`SMALL_HASH_FIELDS_MAX`] fields is answered whole, in one page with
//! cursor 0, whatever the cursor sent, as Redis answers its small hashes. A larger hash is
//! walked by position in the hash's order, from the last position down: the cursor is the
//! number of positions still to visit (0 to start, 0 again when done), and a page visits the
//! COUNT positions below it. A new field takes the next position up (already behind the
//! cursor: it may be missed, which Redis allows), and a removal only moves fields to lower
//! positions (the module docs of `hash`), so a field that is in the hash for the whole walk
//! is never moved past the cursor: it is returned at least once, as Redis promises. A field
//! may be returned twice (when the last field fills a gap below the cursor), as Redis allows.

use crate::kv::glob::glob_match;
use crate::kv::reply::{KvError, Reply, REPLY_ELEMENT_BYTES};
use crate::kv::state_machine::KvStore;
use crate::kv::types::{ScanQuery, ScanRefusal};
use crate::limits::REPLY_BYTES_MAX;

use super::{HashRead, HashValue, SMALL_HASH_FIELDS_MAX};
use crate::kv::types::draws::Draws;

impl HashRead {
    /// Answers the query as Redis would at time `now`.
    pub(crate) fn read(&self, store: &KvStore, now: u64) -> Reply {
        let hash = |key: &[u8]| store.collection::<HashValue>(key, now);
        let result = match self {
            Self::Get { key, field } => {
                hash(key).map(|hash| Reply::bulk_or_nil(hash.and_then(|hash| hash.get(field))))
            }
            Self::Len { key } => hash(key).map(|hash| Reply::Integer(hash.map_or(0, |h| h.len() as i64))),
            Self::MGet { key, fields } => hash(key).map(|hash| {
                Reply::Array(
                    fields.iter().map(|field| Reply::bulk_or_nil(hash.and_then(|h| h.get(field)))).collect(),
                )
            }),
            Self::GetAll { key } => hash(key).map(|hash| {
                Reply::Map(
                    hash.into_iter().flat_map(HashValue::iter).map(|(f, v)| (bulk(f), bulk(v))).collect(),
                )
            }),
            Self::Keys { key } => hash(key).map(|hash| {
                Reply::Array(hash.into_iter().flat_map(HashValue::iter).map(|(f, _)| bulk(f)).collect())
            }),
            Self::Values { key } => hash(key).map(|hash| {
                Reply::Array(hash.into_iter().flat_map(HashValue::iter).map(|(_, v)| bulk(v)).collect())
            }),
            Self::Exists { key, field } => {
                hash(key).map(|hash| Reply::Integer(i64::from(hash.is_some_and(|h| h.get(field).is_some()))))
            }
            Self::StrLen { key, field } => hash(key)
                .map(|hash| Reply::Integer(hash.and_then(|h| h.get(field)).map_or(0, |v| v.len() as i64))),
            Self::RandomFields { key, count, with_values, seed } => {
                hash(key).and_then(|hash| random_fields(hash, *count, *with_values, *seed))
            }
            Self::Scan(ScanQuery { key, cursor, pattern, count }) => hash(key)
                .map(|hash| hash.map_or_else(empty_page, |h| scan(h, *cursor, pattern.as_deref(), *count))),
            Self::ScanRefused(ScanRefusal { key, error }) => {
                hash(key).and_then(|hash| if hash.is_some() { Err(*error) } else { Ok(empty_page()) })
            }
        };
        result.unwrap_or_else(Reply::Error)
    }
}

fn bulk(bytes: &[u8]) -> Reply {
    Reply::Bulk(bytes.to_vec())
}

fn empty_page() -> Reply {
    Reply::Scan { cursor: 0, keys: Vec::new() }
}

/// HRANDFIELD, following Redis's cases: no count, one field (nil for a missing key); a count
/// of 0 or a missing key, an empty array; a positive count at least the size, the whole hash
/// in order; a smaller positive count, that many distinct fields; a negative count, that many
/// picks with repeats, refused once the reply would pass [`REPLY_BYTES_MAX`] (Redis has no
/// such bound and would build it until memory runs out).
fn random_fields(
    hash: Option<&HashValue>,
    count: Option<i64>,
    with_values: bool,
    seed: u64,
) -> Result<Reply, KvError> {
    let mut positions = Draws::new(seed);
    let Some(count) = count else {
        let field = hash.and_then(|hash| hash.get_index(positions.below(hash.len())));
        return Ok(Reply::bulk_or_nil(field.map(|(field, _)| field)));
    };
    let Some(hash) = hash.filter(|_| count != 0) else {
        return Ok(Reply::Array(Vec::new()));
    };
    let chosen: Vec<usize> = if count < 0 {
        let picks = count.unsigned_abs();
        let mut chosen = Vec::new();
        let mut reply_bytes = REPLY_ELEMENT_BYTES;
        for _ in 0..picks {
            let position = positions.below(hash.len());
            reply_bytes += pick_bytes(hash, position, with_values);
            if reply_bytes > REPLY_BYTES_MAX as u64 {
                return Err(KvError::ReplyTooLarge);
            }
            chosen.push(position);
        }
        chosen
    } else if count as u64 >= hash.len() as u64 {
        (0..hash.len()).collect()
    } else {
        positions.distinct(count as usize, hash.len())
    };
    let fields = chosen.into_iter().filter_map(|position| hash.get_index(position));
    Ok(if with_values {
        Reply::Pairs(fields.map(|(field, value)| (bulk(field), bulk(value))).collect())
    } else {
        Reply::Array(fields.map(|(field, _)| bulk(field)).collect())
    })
}

/// What one pick adds to a reply, as [`Reply::bytes`] counts it.
fn pick_bytes(hash: &HashValue, position: usize, with_values: bool) -> u64 {
    let (field, value) = hash.get_index(position).unwrap_or_default();
    let value_bytes = if with_values { REPLY_ELEMENT_BYTES + value.len() as u64 } else { 0 };
    REPLY_ELEMENT_BYTES + field.len() as u64 + value_bytes
}

/// One HSCAN page of `hash` (see the module docs for the cursor): fields matching `pattern`,
/// each followed by its value.
fn scan(hash: &HashValue, cursor: u64, pattern: Option<&[u8]>, count: u64) -> Reply {
    let len = hash.len() as u64;
    let (positions, next_cursor) = if hash.len() <= SMALL_HASH_FIELDS_MAX {
        (0..len, 0)
    } else {
        let remaining = if cursor == 0 { len } else { cursor.min(len) };
        let low = remaining.saturating_sub(count);
        (low..remaining, low)
    };
    let matches = |field: &[u8]| pattern.is_none_or(|pattern| pattern == b"*" || glob_match(pattern, field));
    let mut keys = Vec::new();
    for position in positions {
        let Some((field, value)) = hash.get_index(position as usize) else { continue };
        if matches(field) {
            keys.push(field.to_vec());
            keys.push(value.to_vec());
        }
    }
    Reply::Scan { cursor: next_cursor, keys }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::types::{CollectionWrite, HashWrite};
    use crate::kv::{KvWrite, WriteOp};

    fn store_with(key: &[u8], count: usize) -> KvStore {
        let mut store = KvStore::new();
        let pairs =
            (0..count).map(|n| (format!("f{n}").into_bytes(), format!("v{n}").into_bytes())).collect();
        let op = HashWrite::Set { key: key.to_vec(), pairs, reply_ok: false };
        store.apply(&KvWrite { now_ms: 1, op: WriteOp::Collection(CollectionWrite::Hash(op)) });
        store
    }

    fn del(store: &mut KvStore, key: &[u8], field: &[u8]) {
        let op = HashWrite::Delete { key: key.to_vec(), fields: vec![field.to_vec()] };
        store.apply(&KvWrite { now_ms: 1, op: WriteOp::Collection(CollectionWrite::Hash(op)) });
    }

    fn read(store: &KvStore, query: HashRead) -> Reply {
        query.read(store, 1)
    }

    fn k() -> Vec<u8> {
        b"h".to_vec()
    }

    fn bulks(items: &[&str]) -> Vec<Reply> {
        items.iter().map(|item| bulk(item.as_bytes())).collect()
    }

    #[test]
    fn field_queries_answer_from_the_hash_and_a_missing_key_answers_empty() {
        let store = store_with(b"h", 2);
        let fields = vec![b"f1".to_vec(), b"zz".to_vec()];
        assert_eq!(
            read(&store, HashRead::MGet { key: k(), fields: fields.clone() }),
            Reply::Array(vec![bulk(b"v1"), Reply::Nil])
        );
        assert_eq!(
            read(&store, HashRead::MGet { key: b"none".to_vec(), fields }),
            Reply::Array(vec![Reply::Nil, Reply::Nil])
        );
        assert_eq!(
            read(&store, HashRead::GetAll { key: k() }),
            Reply::Map(vec![(bulk(b"f0"), bulk(b"v0")), (bulk(b"f1"), bulk(b"v1"))])
        );
        assert_eq!(read(&store, HashRead::GetAll { key: b"none".to_vec() }), Reply::Map(Vec::new()));
        assert_eq!(read(&store, HashRead::Keys { key: k() }), Reply::Array(bulks(&["f0", "f1"])));
        assert_eq!(read(&store, HashRead::Values { key: k() }), Reply::Array(bulks(&["v0", "v1"])));
        assert_eq!(read(&store, HashRead::Values { key: b"none".to_vec() }), Reply::Array(Vec::new()));
        assert_eq!(read(&store, HashRead::Exists { key: k(), field: b"f0".to_vec() }), Reply::Integer(1));
        assert_eq!(read(&store, HashRead::Exists { key: k(), field: b"zz".to_vec() }), Reply::Integer(0));
        assert_eq!(read(&store, HashRead::StrLen { key: k(), field: b"f0".to_vec() }), Reply::Integer(2));
        assert_eq!(
            read(&store, HashRead::StrLen { key: b"none".to_vec(), field: b"f0".to_vec() }),
            Reply::Integer(0)
        );
    }

    #[test]
    fn every_hash_query_on_a_string_is_wrongtype() {
        let mut store = KvStore::new();
        store.insert(b"s", &b"v"[..], None);
        let s = || b"s".to_vec();
        for query in [
            HashRead::MGet { key: s(), fields: vec![b"f".to_vec()] },
            HashRead::GetAll { key: s() },
            HashRead::Keys { key: s() },
            HashRead::Values { key: s() },
            HashRead::Exists { key: s(), field: b"f".to_vec() },
            HashRead::StrLen { key: s(), field: b"f".to_vec() },
            HashRead::RandomFields { key: s(), count: Some(0), with_values: false, seed: 1 },
            HashRead::Scan(ScanQuery { key: s(), cursor: 0, pattern: None, count: 10 }),
            HashRead::ScanRefused(ScanRefusal { key: s(), error: KvError::Syntax }),
        ] {
            assert_eq!(read(&store, query.clone()), Reply::Error(KvError::WrongType), "{query:?}");
        }
    }

    fn random(store: &KvStore, count: Option<i64>, with_values: bool, seed: u64) -> Reply {
        read(store, HashRead::RandomFields { key: k(), count, with_values, seed })
    }

    fn fields_of(reply: Reply) -> Vec<Vec<u8>> {
        match reply {
            Reply::Array(items) => items
                .into_iter()
                .map(|item| match item {
                    Reply::Bulk(field) => field,
                    other => panic!("not a field: {other:?}"),
                })
                .collect(),
            other => panic!("not an array: {other:?}"),
        }
    }

    #[test]
    fn hrandfield_follows_redis_cases() {
        let store = store_with(b"h", 10);
        assert!(matches!(random(&store, None, false, 3), Reply::Bulk(_)));
        assert_eq!(
            read(
                &store,
                HashRead::RandomFields { key: b"none".to_vec(), count: None, with_values: false, seed: 3 }
            ),
            Reply::Nil
        );
        assert_eq!(
            read(
                &store,
                HashRead::RandomFields { key: b"none".to_vec(), count: Some(-3), with_values: true, seed: 3 }
            ),
            Reply::Array(Vec::new())
        );
        assert_eq!(random(&store, Some(0), true, 3), Reply::Array(Vec::new()));
        // At least the size: the whole hash in order.
        assert_eq!(
            fields_of(random(&store, Some(10), false, 3)),
            fields_of(read(&store, HashRead::Keys { key: k() }))
        );
        // Fewer: distinct.
        let mut some = fields_of(random(&store, Some(7), false, 3));
        some.sort();
        some.dedup();
        assert_eq!(some.len(), 7);
        // Negative: that many, repeats allowed; with values, pairs.
        assert_eq!(fields_of(random(&store, Some(-25), false, 3)).len(), 25);
        let Reply::Pairs(pairs) = random(&store, Some(-4), true, 3) else { panic!("pairs") };
        assert_eq!(pairs.len(), 4);
        for (field, value) in pairs {
            let (Reply::Bulk(field), Reply::Bulk(value)) = (field, value) else { panic!("bulks") };
            assert_eq!(value[1..], field[1..], "each field with its own value");
        }
        // The same seed answers the same; another seed, another answer.
        assert_eq!(random(&store, Some(-25), false, 3), random(&store, Some(-25), false, 3));
        assert_ne!(random(&store, Some(-25), false, 3), random(&store, Some(-25), false, 4));
    }

    #[test]
    fn hrandfield_refuses_a_count_whose_reply_would_pass_the_reply_limit() {
        let store = store_with(b"h", 3);
        let picks = (REPLY_BYTES_MAX as u64 / REPLY_ELEMENT_BYTES) as i64;
        assert_eq!(random(&store, Some(-picks), false, 1), Reply::Error(KvError::ReplyTooLarge));
        assert_eq!(random(&store, Some(-i64::MAX), false, 1), Reply::Error(KvError::ReplyTooLarge));
    }

    fn scan(store: &KvStore, cursor: u64, pattern: Option<&str>, count: u64) -> (u64, Vec<Vec<u8>>) {
        let pattern = pattern.map(|p| p.as_bytes().to_vec());
        match read(store, HashRead::Scan(ScanQuery { key: k(), cursor, pattern, count })) {
            Reply::Scan { cursor, keys } => (cursor, keys),
            other => panic!("not a scan page: {other:?}"),
        }
    }

    #[test]
    fn hscan_answers_a_small_hash_whole_and_filters_by_pattern() {
        let store = store_with(b"h", SMALL_HASH_FIELDS_MAX);
        let (cursor, keys) = scan(&store, 77, None, 1);
        assert_eq!((cursor, keys.len()), (0, 2 * SMALL_HASH_FIELDS_MAX));
        assert_eq!(
            scan(&store, 0, Some("f1?"), 10),
            (
                0,
                [
                    "f10", "v10", "f11", "v11", "f12", "v12", "f13", "v13", "f14", "v14", "f15", "v15",
                    "f16", "v16", "f17", "v17", "f18", "v18", "f19", "v19"
                ]
                .iter()
                .map(|s| s.as_bytes().to_vec())
                .collect()
            )
        );
        let missing = read(
            &store,
            HashRead::Scan(ScanQuery { key: b"none".to_vec(), cursor: 0, pattern: None, count: 10 }),
        );
        assert_eq!(missing, empty_page());
    }

    #[test]
    fn hscan_refused_options_are_an_error_only_for_a_hash() {
        let store = store_with(b"h", 2);
        assert_eq!(
            read(&store, HashRead::ScanRefused(ScanRefusal { key: k(), error: KvError::Syntax })),
            Reply::Error(KvError::Syntax)
        );
        assert_eq!(
            read(
                &store,
                HashRead::ScanRefused(ScanRefusal { key: b"none".to_vec(), error: KvError::Syntax })
            ),
            empty_page()
        );
    }

    /// Walks a large hash while removing fields and adding new ones between pages: every field
    /// there from start to end is returned.
    #[test]
    fn hscan_of_a_large_hash_returns_every_field_kept_while_the_hash_changes() {
        let size = 1000;
        let mut store = store_with(b"h", size);
        let mut seen = std::collections::BTreeSet::new();
        let (mut cursor, mut page) = (0, 0);
        loop {
            let (next, keys) = scan(&store, cursor, None, 7);
            seen.extend(keys.chunks(2).map(|pair| pair[0].clone()));
            // Remove fields on both sides of the cursor and add new ones.
            del(&mut store, b"h", format!("f{}", page * 3).as_bytes());
            del(&mut store, b"h", format!("f{}", size - 1 - page * 3).as_bytes());
            let add = HashWrite::Set {
                key: k(),
                pairs: vec![(format!("new{page}").into_bytes(), b"x".to_vec())],
                reply_ok: false,
            };
            store.apply(&KvWrite { now_ms: 1, op: WriteOp::Collection(CollectionWrite::Hash(add)) });
            page += 1;
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        let hash = store.collection::<HashValue>(b"h", 1).unwrap().unwrap();
        let kept: Vec<&[u8]> = hash.iter().map(|(f, _)| f).filter(|f| f.starts_with(b"f")).collect();
        assert!(kept.len() > size / 2, "the walk must keep most fields ({})", kept.len());
        for field in kept {
            assert!(
                seen.contains(field),
                "{} was in the hash throughout but not returned",
                String::from_utf8_lossy(field)
            );
        }
        assert!(page >= size / 7, "pages of about COUNT positions ({page} pages)");
    }
}

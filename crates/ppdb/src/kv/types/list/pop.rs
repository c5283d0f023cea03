//! The list pops: LPOP/RPOP, LMPOP (and BLPOP/BRPOP's non-blocking form), LMOVE/RPOPLPUSH.
//!
//! A blocking pop (BLPOP, BLMOVE, ...) reaches the log as its non-blocking form, once per try
//! (`server::blocking`): the ops here answer Redis's nil (`Nil` or `NilArray`) when there was
//! nothing to pop, which is how the blocking side knows to wait.
//!
//! # Encoding (inside a list write, after its pop tag)
//!
//! `pop_tag:u8 fields...`: keys and elements as in the rest of the entry (`kv::codec`), key
//! lists bounded by [`crate::kv::BATCH_KEYS_MAX`], an end as one byte (0 head, 1 tail), an optional count
//! as a flag byte then a varint.

use crate::kv::codec::{put_bytes, put_varint, KvDecodeError, Reader};
use crate::kv::entry::{key, keys};
use crate::kv::reply::{KvError, Reply};
use crate::kv::state_machine::KvStore;

use super::ListValue;

/// An end of a list: LEFT (the head) or RIGHT (the tail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// LEFT: the head.
    Head,
    /// RIGHT: the tail.
    Tail,
}

/// A list pop: a write that removes elements from one end of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListPop {
    /// LPOP and RPOP: one element (a bulk string, nil when the key is missing), or, with a
    /// count, up to `count` elements (an array, the nil array when the key is missing).
    Pop {
        /// The key.
        key: Vec<u8>,
        /// Which end.
        end: End,
        /// COUNT, when given (0 answers an empty array for an existing list).
        count: Option<u64>,
    },
    /// Pops from the first key holding a list: LMPOP (`count` given: `[key, [elements]]`) and
    /// the non-blocking form of BLPOP/BRPOP (no count: `[key, element]`); the nil array when
    /// every key is missing. A key of another type before the first list is `WRONGTYPE`.
    First {
        /// The keys, in the order they are tried.
        keys: Vec<Vec<u8>>,
        /// Which end.
        end: End,
        /// LMPOP's COUNT (at least 1); none for BLPOP's reply shape.
        count: Option<u64>,
    },
    /// LMOVE and RPOPLPUSH (and the non-blocking form of BLMOVE and BRPOPLPUSH): pops from
    /// `source`, pushes onto `destination` (the same key rotates the list), answers the
    /// element, or nil when `source` is missing.
    Move {
        /// The list popped from.
        source: Vec<u8>,
        /// The list pushed onto (created if missing).
        destination: Vec<u8>,
        /// The end popped from.
        from: End,
        /// The end pushed onto.
        to: End,
    },
}

// Pop tags. Never renumber: they are on disk.
const POP: u8 = 1;
const POP_FIRST: u8 = 2;
const POP_MOVE: u8 = 3;

impl ListPop {
    /// The keys the pop touches.
    pub fn keys(&self) -> Vec<&[u8]> {
        match self {
            Self::Pop { key, .. } => vec![key.as_slice()],
            Self::First { keys, .. } => keys.iter().map(Vec::as_slice).collect(),
            Self::Move { source, destination, .. } => vec![source.as_slice(), destination.as_slice()],
        }
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Pop { key, end, count } => {
                out.push(POP);
                put_bytes(out, key);
                put_end(out, *end);
                put_count(out, *count);
            }
            Self::First { keys, end, count } => {
                out.push(POP_FIRST);
                put_varint(out, keys.len() as u64);
                for key in keys {
                    put_bytes(out, key);
                }
                put_end(out, *end);
                put_count(out, *count);
            }
            Self::Move { source, destination, from, to } => {
                out.push(POP_MOVE);
                put_bytes(out, source);
                put_bytes(out, destination);
                put_end(out, *from);
                put_end(out, *to);
            }
        }
    }

    pub(crate) fn decode(reader: &mut Reader<'_>) -> Result<Self, KvDecodeError> {
        let offset = reader.offset();
        Ok(match reader.u8("list pop")? {
            POP => Self::Pop { key: key(reader)?, end: end(reader)?, count: count(reader)? },
            POP_FIRST => {
                let keys = keys(reader)?;
                if keys.is_empty() {
                    return Err(KvDecodeError::Invalid { field: "list pop keys", offset });
                }
                Self::First { keys, end: end(reader)?, count: count(reader)? }
            }
            POP_MOVE => Self::Move {
                source: key(reader)?,
                destination: key(reader)?,
                from: end(reader)?,
                to: end(reader)?,
            },
            tag => return Err(KvDecodeError::InvalidTag { field: "list pop", tag, offset }),
        })
    }

    pub(crate) fn apply(&self, store: &mut KvStore, now: u64) -> Reply {
        let reply = match self {
            Self::Pop { key, end, count } => pop(store, key, *end, *count),
            Self::First { keys, end, count } => pop_first(store, keys, *end, *count, now),
            Self::Move { source, destination, from, to } => {
                pop_move(store, source, destination, *from, *to, now)
            }
        };
        reply.unwrap_or_else(Reply::Error)
    }
}

/// LPOP/RPOP.
fn pop(store: &mut KvStore, key: &[u8], end: End, count: Option<u64>) -> Result<Reply, KvError> {
    let popped = store.change_collection(key, false, |list: &mut ListValue| {
        (0..count.unwrap_or(1)).map_while(|_| take(list, end)).collect::<Vec<_>>()
    })?;
    Ok(match (popped, count) {
        (None, None) => Reply::Nil,
        (None, Some(_)) => Reply::NilArray,
        (Some(mut elements), None) => Reply::bulk_or_nil(elements.pop().as_deref()),
        (Some(elements), Some(_)) => Reply::Array(elements.into_iter().map(Reply::Bulk).collect()),
    })
}

/// LMPOP and the non-blocking BLPOP/BRPOP: the first key holding a list.
fn pop_first(
    store: &mut KvStore,
    keys: &[Vec<u8>],
    end: End,
    count: Option<u64>,
    now: u64,
) -> Result<Reply, KvError> {
    for key in keys {
        if store.collection::<ListValue>(key, now)?.is_none() {
            continue;
        }
        let popped = store.change_collection(key, false, |list: &mut ListValue| {
            (0..count.unwrap_or(1)).map_while(|_| take(list, end)).collect::<Vec<_>>()
        })?;
        let mut elements = popped.unwrap_or_default();
        let key = Reply::Bulk(key.clone());
        return Ok(match count {
            None => Reply::Array(vec![key, Reply::bulk_or_nil(elements.pop().as_deref())]),
            Some(_) => Reply::Array(vec![key, Reply::Array(elements.into_iter().map(Reply::Bulk).collect())]),
        });
    }
    Ok(Reply::NilArray)
}

/// LMOVE: the destination's type is checked before anything is popped, so a `WRONGTYPE`
/// destination changes nothing.
fn pop_move(
    store: &mut KvStore,
    source: &[u8],
    destination: &[u8],
    from: End,
    to: End,
    now: u64,
) -> Result<Reply, KvError> {
    if store.collection::<ListValue>(source, now)?.is_none() {
        return Ok(Reply::Nil);
    }
    store.collection::<ListValue>(destination, now)?;
    let rotate = source == destination;
    let popped = store.change_collection(source, false, |list: &mut ListValue| {
        let element = take(list, from)?;
        if rotate {
            put(list, to, &element);
        }
        Some(element)
    })?;
    let Some(element) = popped.flatten() else {
        return Ok(Reply::Nil);
    };
    if !rotate {
        store.change_collection(destination, true, |list: &mut ListValue| put(list, to, &element))?;
    }
    Ok(Reply::Bulk(element))
}

/// Removes the element at `end`.
fn take(list: &mut ListValue, end: End) -> Option<Vec<u8>> {
    match end {
        End::Head => list.pop_front(),
        End::Tail => list.pop_back(),
    }
    .map(Vec::from)
}

/// Adds `element` at `end`.
fn put(list: &mut ListValue, end: End, element: &[u8]) {
    match end {
        End::Head => list.push_front(element),
        End::Tail => list.push_back(element),
    }
}

fn put_end(out: &mut Vec<u8>, end: End) {
    out.push(match end {
        End::Head => 0,
        End::Tail => 1,
    });
}

fn end(reader: &mut Reader<'_>) -> Result<End, KvDecodeError> {
    let offset = reader.offset();
    match reader.u8("list end")? {
        0 => Ok(End::Head),
        1 => Ok(End::Tail),
        tag => Err(KvDecodeError::InvalidTag { field: "list end", tag, offset }),
    }
}

fn put_count(out: &mut Vec<u8>, count: Option<u64>) {
    match count {
        None => out.push(0),
        Some(count) => {
            out.push(1);
            put_varint(out, count);
        }
    }
}

fn count(reader: &mut Reader<'_>) -> Result<Option<u64>, KvDecodeError> {
    let offset = reader.offset();
    match reader.u8("pop count flag")? {
        0 => Ok(None),
        1 => Ok(Some(reader.varint("pop count")?)),
        tag => Err(KvDecodeError::InvalidTag { field: "pop count flag", tag, offset }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::types::{CollectionWrite, ListWrite};
    use crate::kv::{ExpireCondition, ExpireTime, KvWrite, WriteOp};
    use proptest::prelude::*;

    fn apply(store: &mut KvStore, op: ListPop) -> Reply {
        let write = KvWrite { now_ms: 1, op: WriteOp::Collection(CollectionWrite::List(ListWrite::Pop(op))) };
        let reply = store.apply(&write);
        store.check_indexes();
        reply
    }

    /// A store holding the list `key` with `elements`, head first.
    fn with_list(store: &mut KvStore, key: &[u8], elements: &[&str]) {
        store
            .change_collection(key, true, |list: &mut ListValue| {
                elements.iter().for_each(|element| list.push_back(element.as_bytes()))
            })
            .unwrap();
    }

    fn elements(store: &KvStore, key: &[u8]) -> Option<Vec<String>> {
        let list = store.collection::<ListValue>(key, 1).unwrap()?;
        Some(list.iter().map(|e| String::from_utf8_lossy(e).into_owned()).collect())
    }

    fn bulk(text: &str) -> Reply {
        Reply::Bulk(text.as_bytes().to_vec())
    }

    fn pop_op(key: &str, end: End, count: Option<u64>) -> ListPop {
        ListPop::Pop { key: key.as_bytes().to_vec(), end, count }
    }

    #[test]
    fn lpop_and_rpop_take_from_their_end_and_delete_the_emptied_key() {
        let mut store = KvStore::new();
        with_list(&mut store, b"l", &["a", "b", "c", "d"]);
        assert_eq!(apply(&mut store, pop_op("l", End::Head, None)), bulk("a"));
        assert_eq!(apply(&mut store, pop_op("l", End::Tail, None)), bulk("d"));
        assert_eq!(apply(&mut store, pop_op("l", End::Head, Some(0))), Reply::Array(vec![]));
        assert_eq!(
            apply(&mut store, pop_op("l", End::Tail, Some(5))),
            Reply::Array(vec![bulk("c"), bulk("b")])
        );
        assert_eq!(elements(&store, b"l"), None, "the emptied list's key is gone");
        assert_eq!(store.data_bytes(), 0);
        assert_eq!(apply(&mut store, pop_op("l", End::Head, None)), Reply::Nil);
        assert_eq!(apply(&mut store, pop_op("l", End::Head, Some(0))), Reply::NilArray);
        assert_eq!(apply(&mut store, pop_op("l", End::Head, Some(2))), Reply::NilArray);
    }

    #[test]
    fn a_pop_on_another_type_is_wrongtype_and_changes_nothing() {
        let mut store = KvStore::new();
        store.insert(b"s", &b"v"[..], None);
        with_list(&mut store, b"l", &["a"]);
        apply(&mut store, pop_op("none", End::Head, None));
        let before = store.clone();
        let wrongtype = Reply::Error(KvError::WrongType);
        assert_eq!(apply(&mut store, pop_op("s", End::Head, None)), wrongtype);
        assert_eq!(apply(&mut store, pop_op("s", End::Head, Some(0))), wrongtype);
        let first = ListPop::First {
            keys: vec![b"none".to_vec(), b"s".to_vec(), b"l".to_vec()],
            end: End::Head,
            count: None,
        };
        assert_eq!(apply(&mut store, first), wrongtype);
        let onto_string = ListPop::Move {
            source: b"l".to_vec(),
            destination: b"s".to_vec(),
            from: End::Head,
            to: End::Head,
        };
        assert_eq!(apply(&mut store, onto_string), wrongtype);
        assert_eq!(store, before);
        // A missing source answers nil whatever the destination holds.
        let from_missing = ListPop::Move {
            source: b"none".to_vec(),
            destination: b"s".to_vec(),
            from: End::Head,
            to: End::Head,
        };
        assert_eq!(apply(&mut store, from_missing), Reply::Nil);
    }

    #[test]
    fn first_pops_from_the_first_existing_list_in_both_reply_shapes() {
        let mut store = KvStore::new();
        with_list(&mut store, b"b", &["1", "2", "3"]);
        with_list(&mut store, b"c", &["x"]);
        let keys = vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()];
        let blpop = ListPop::First { keys: keys.clone(), end: End::Tail, count: None };
        assert_eq!(apply(&mut store, blpop), Reply::Array(vec![bulk("b"), bulk("3")]));
        let lmpop = ListPop::First { keys: keys.clone(), end: End::Head, count: Some(10) };
        assert_eq!(
            apply(&mut store, lmpop.clone()),
            Reply::Array(vec![bulk("b"), Reply::Array(vec![bulk("1"), bulk("2")])])
        );
        assert_eq!(
            apply(&mut store, lmpop.clone()),
            Reply::Array(vec![bulk("c"), Reply::Array(vec![bulk("x")])])
        );
        assert_eq!(apply(&mut store, lmpop), Reply::NilArray);
        assert_eq!(store.len_including_expired(), 0);
    }

    #[test]
    fn lmove_moves_between_ends_and_rotates_a_list_onto_itself() {
        let mut store = KvStore::new();
        with_list(&mut store, b"src", &["a", "b", "c"]);
        let lmove = |source: &str, destination: &str, from, to| ListPop::Move {
            source: source.as_bytes().to_vec(),
            destination: destination.as_bytes().to_vec(),
            from,
            to,
        };
        assert_eq!(apply(&mut store, lmove("src", "dst", End::Tail, End::Head)), bulk("c"));
        assert_eq!(apply(&mut store, lmove("src", "dst", End::Head, End::Tail)), bulk("a"));
        assert_eq!(elements(&store, b"dst"), Some(vec!["c".into(), "a".into()]));
        assert_eq!(apply(&mut store, lmove("dst", "dst", End::Tail, End::Head)), bulk("a"));
        assert_eq!(elements(&store, b"dst"), Some(vec!["a".into(), "c".into()]));
        // A single element rotated onto its own list stays: the key is not deleted.
        assert_eq!(apply(&mut store, lmove("src", "src", End::Head, End::Tail)), bulk("b"));
        assert_eq!(elements(&store, b"src"), Some(vec!["b".into()]));
        assert_eq!(apply(&mut store, lmove("src", "dst", End::Head, End::Head)), bulk("b"));
        assert_eq!(elements(&store, b"src"), None);
        assert_eq!(elements(&store, b"dst"), Some(vec!["b".into(), "a".into(), "c".into()]));
        assert_eq!(apply(&mut store, lmove("src", "dst", End::Head, End::Head)), Reply::Nil);
    }

    #[test]
    fn an_expired_list_has_nothing_to_pop() {
        let mut store = KvStore::new();
        with_list(&mut store, b"l", &["a"]);
        let expire = WriteOp::Expire {
            key: b"l".to_vec(),
            when: ExpireTime::At(5),
            condition: ExpireCondition::Always,
        };
        assert_eq!(store.apply(&KvWrite { now_ms: 1, op: expire }), Reply::Integer(1));
        let pop = WriteOp::Collection(CollectionWrite::List(ListWrite::Pop(pop_op("l", End::Head, None))));
        assert_eq!(store.apply(&KvWrite { now_ms: 6, op: pop }), Reply::Nil);
        assert_eq!(store.len_including_expired(), 0);
    }

    fn end_strategy() -> impl Strategy<Value = End> {
        prop_oneof![Just(End::Head), Just(End::Tail)]
    }

    fn pop_strategy() -> impl Strategy<Value = ListPop> {
        let key = || proptest::collection::vec(any::<u8>(), 0..6);
        let count = proptest::option::of(any::<u64>());
        prop_oneof![
            (key(), end_strategy(), count.clone()).prop_map(|(key, end, count)| ListPop::Pop {
                key,
                end,
                count
            }),
            (proptest::collection::vec(key(), 1..4), end_strategy(), count)
                .prop_map(|(keys, end, count)| ListPop::First { keys, end, count }),
            (key(), key(), end_strategy(), end_strategy())
                .prop_map(|(source, destination, from, to)| ListPop::Move { source, destination, from, to }),
        ]
    }

    proptest! {
        #[test]
        fn pops_round_trip_through_their_encoding(op in pop_strategy()) {
            let mut out = Vec::new();
            op.encode(&mut out);
            let mut reader = Reader::new(&out);
            prop_assert_eq!(ListPop::decode(&mut reader), Ok(op));
            prop_assert_eq!(reader.remaining(), 0);
        }

        #[test]
        fn decoding_any_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = ListPop::decode(&mut Reader::new(&bytes));
        }
    }
}

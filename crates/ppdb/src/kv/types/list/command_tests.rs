//! The list commands applied to a store and read back, and their log encoding.

use proptest::prelude::*;

use super::{ListRead, ListValue, ListWrite, Side};
use crate::kv::reply::{KvError, Reply};
use crate::kv::state_machine::KvStore;
use crate::kv::types::{Collection, CollectionRead, CollectionWrite};
use crate::kv::{KvRead, KvWrite, WriteOp};

fn apply(store: &mut KvStore, op: ListWrite) -> Reply {
    let reply = store.apply(&KvWrite { now_ms: 1, op: WriteOp::Collection(CollectionWrite::List(op)) });
    store.check_indexes();
    if let Ok(Some(list)) = store.collection::<ListValue>(b"l", 1) {
        assert_eq!(list.bytes(), list.recounted_bytes(), "the memory count follows {reply:?}");
    }
    reply
}

fn read(store: &KvStore, query: ListRead) -> Reply {
    query.read(store, 1)
}

fn push(key: &str, side: Side, elements: &[&str]) -> ListWrite {
    let elements = elements.iter().map(|element| element.as_bytes().to_vec()).collect();
    ListWrite::Push { key: key.as_bytes().to_vec(), elements, side, existing_only: false }
}

fn range(key: &str, start: i64, stop: i64) -> ListRead {
    ListRead::Range { key: key.as_bytes().to_vec(), start, stop }
}

fn bulks(elements: &[&str]) -> Reply {
    Reply::Array(elements.iter().map(|element| Reply::Bulk(element.as_bytes().to_vec())).collect())
}

fn integers(indexes: &[i64]) -> Reply {
    Reply::Array(indexes.iter().map(|&index| Reply::Integer(index)).collect())
}

/// A store holding the list `l` of `elements` and the string `s`.
fn store_with(elements: &[&str]) -> KvStore {
    let mut store = KvStore::new();
    apply(&mut store, push("l", Side::Right, elements));
    store.insert(b"s", &b"v"[..], None);
    store
}

#[test]
fn pushes_go_to_either_end_in_order_and_pushx_needs_the_list() {
    let mut store = KvStore::new();
    assert_eq!(apply(&mut store, push("l", Side::Left, &["a", "b", "c"])), Reply::Integer(3));
    assert_eq!(apply(&mut store, push("l", Side::Right, &["d", "e"])), Reply::Integer(5));
    assert_eq!(read(&store, range("l", 0, -1)), bulks(&["c", "b", "a", "d", "e"]));
    let pushx = |key: &str, side| ListWrite::Push {
        key: key.as_bytes().to_vec(),
        elements: vec![b"x".to_vec()],
        side,
        existing_only: true,
    };
    assert_eq!(apply(&mut store, pushx("none", Side::Left)), Reply::Integer(0));
    assert_eq!(read(&store, ListRead::Len { key: b"none".to_vec() }), Reply::Integer(0));
    assert!(store.get_live(b"none", 1).is_none(), "LPUSHX does not create the key");
    assert_eq!(apply(&mut store, pushx("l", Side::Right)), Reply::Integer(6));
    assert_eq!(read(&store, ListRead::Len { key: b"l".to_vec() }), Reply::Integer(6));
}

#[test]
fn ranges_count_negative_indexes_from_the_tail_and_clamp_the_rest() {
    let store = store_with(&["a", "b", "c", "d"]);
    let cases: [(i64, i64, &[&str]); 10] = [
        (0, -1, &["a", "b", "c", "d"]),
        (1, 2, &["b", "c"]),
        (-2, -1, &["c", "d"]),
        (-100, 1, &["a", "b"]),
        (2, 100, &["c", "d"]),
        (i64::MIN, i64::MAX, &["a", "b", "c", "d"]),
        (3, 1, &[]),
        (4, 10, &[]),
        (-1, -2, &[]),
        (0, -5, &[]),
    ];
    for (start, stop, expected) in cases {
        assert_eq!(read(&store, range("l", start, stop)), bulks(expected), "LRANGE {start} {stop}");
    }
    assert_eq!(read(&store, range("none", 0, -1)), bulks(&[]));
    assert_eq!(read(&store, range("s", 0, -1)), Reply::Error(KvError::WrongType));
}

#[test]
fn lindex_finds_the_list_before_reading_the_index() {
    let store = store_with(&["a", "b", "c"]);
    let index = |key: &str, index| read(&store, ListRead::Index { key: key.as_bytes().to_vec(), index });
    assert_eq!(index("l", Some(0)), Reply::Bulk(b"a".to_vec()));
    assert_eq!(index("l", Some(-1)), Reply::Bulk(b"c".to_vec()));
    assert_eq!(index("l", Some(3)), Reply::Nil);
    assert_eq!(index("l", Some(-4)), Reply::Nil);
    assert_eq!(index("l", Some(i64::MIN)), Reply::Nil);
    assert_eq!(index("l", None), Reply::Error(KvError::NotInteger));
    assert_eq!(index("none", None), Reply::Nil);
    assert_eq!(index("s", None), Reply::Error(KvError::WrongType));
}

#[test]
fn lset_replaces_or_answers_redis_errors_in_redis_order() {
    let mut store = store_with(&["a", "b", "c"]);
    let set =
        |key: &str, index| ListWrite::Set { key: key.as_bytes().to_vec(), index, element: b"z".to_vec() };
    assert_eq!(apply(&mut store, set("l", Some(-1))), Reply::Ok);
    assert_eq!(apply(&mut store, set("l", Some(3))), Reply::Error(KvError::IndexOutOfRange));
    assert_eq!(apply(&mut store, set("l", None)), Reply::Error(KvError::NotInteger));
    assert_eq!(apply(&mut store, set("none", None)), Reply::Error(KvError::NoSuchKey));
    assert_eq!(apply(&mut store, set("s", None)), Reply::Error(KvError::WrongType));
    assert_eq!(read(&store, range("l", 0, -1)), bulks(&["a", "b", "z"]));
}

#[test]
fn linsert_goes_beside_the_first_pivot_or_answers_minus_one_or_zero() {
    let mut store = store_with(&["a", "p", "p"]);
    let insert = |key: &str, after, pivot: &str| ListWrite::Insert {
        key: key.as_bytes().to_vec(),
        after,
        pivot: pivot.as_bytes().to_vec(),
        element: b"x".to_vec(),
    };
    assert_eq!(apply(&mut store, insert("l", false, "p")), Reply::Integer(4));
    assert_eq!(apply(&mut store, insert("l", true, "p")), Reply::Integer(5));
    assert_eq!(apply(&mut store, insert("l", true, "zz")), Reply::Integer(-1));
    assert_eq!(apply(&mut store, insert("none", true, "p")), Reply::Integer(0));
    assert_eq!(apply(&mut store, insert("s", true, "p")), Reply::Error(KvError::WrongType));
    assert_eq!(read(&store, range("l", 0, -1)), bulks(&["a", "x", "p", "x", "p"]));
}

#[test]
fn lrem_counts_from_the_head_the_tail_or_takes_all_and_an_emptied_list_goes() {
    let rem = |count, element: &str| ListWrite::Remove {
        key: b"l".to_vec(),
        count,
        element: element.as_bytes().to_vec(),
    };
    let mut store = store_with(&["a", "b", "a", "c", "a"]);
    assert_eq!(apply(&mut store, rem(1, "a")), Reply::Integer(1));
    assert_eq!(apply(&mut store, rem(-1, "a")), Reply::Integer(1));
    assert_eq!(read(&store, range("l", 0, -1)), bulks(&["b", "a", "c"]));
    assert_eq!(apply(&mut store, rem(i64::MIN, "zz")), Reply::Integer(0));
    for element in ["a", "b", "c"] {
        assert_eq!(apply(&mut store, rem(0, element)), Reply::Integer(1));
    }
    assert!(store.get_live(b"l", 1).is_none(), "an emptied list deletes its key");
    assert_eq!(apply(&mut store, rem(0, "a")), Reply::Integer(0));
}

#[test]
fn ltrim_keeps_the_clamped_range_and_an_empty_range_deletes_the_key() {
    let trim = |key: &str, start, stop| ListWrite::Trim { key: key.as_bytes().to_vec(), start, stop };
    let mut store = store_with(&["a", "b", "c", "d"]);
    assert_eq!(apply(&mut store, trim("l", 1, -1)), Reply::Ok);
    assert_eq!(apply(&mut store, trim("l", -100, 1)), Reply::Ok);
    assert_eq!(read(&store, range("l", 0, -1)), bulks(&["b", "c"]));
    assert_eq!(apply(&mut store, trim("s", 0, 1)), Reply::Error(KvError::WrongType));
    assert_eq!(apply(&mut store, trim("none", 0, 1)), Reply::Ok);
    assert_eq!(apply(&mut store, trim("l", 5, 10)), Reply::Ok);
    assert!(store.get_live(b"l", 1).is_none(), "LTRIM to nothing deletes the key");
}

#[test]
fn lpos_follows_rank_count_and_maxlen_as_redis_7_0_does() {
    //                               0    1    2    3    4    5
    let store = store_with(&["a", "b", "a", "c", "a", "a"]);
    let lpos = |rank, count, max_len| {
        let key = b"l".to_vec();
        read(&store, ListRead::Position { key, element: b"a".to_vec(), rank, count, max_len })
    };
    assert_eq!(lpos(1, None, 0), Reply::Integer(0));
    assert_eq!(lpos(2, None, 0), Reply::Integer(2));
    assert_eq!(lpos(-1, None, 0), Reply::Integer(5));
    assert_eq!(lpos(5, None, 0), Reply::Nil);
    assert_eq!(lpos(i64::MAX, Some(0), 0), integers(&[]));
    assert_eq!(lpos(1, Some(0), 0), integers(&[0, 2, 4, 5]));
    assert_eq!(lpos(-2, Some(2), 0), integers(&[4, 2]));
    assert_eq!(lpos(-1, Some(0), 2), integers(&[5, 4]));
    assert_eq!(lpos(2, Some(0), 3), integers(&[2]));
    // Redis 7.0 reads RANK i64::MIN as the first match from the tail, and then COUNT as 0.
    assert_eq!(lpos(i64::MIN, None, 0), Reply::Integer(5));
    assert_eq!(lpos(i64::MIN, Some(1), 0), integers(&[5, 4, 2, 0]));
    assert_eq!(lpos(i64::MIN + 1, None, 0), Reply::Nil);
    let missing = |count| {
        let key = b"none".to_vec();
        read(&store, ListRead::Position { key, element: b"a".to_vec(), rank: 1, count, max_len: 0 })
    };
    assert_eq!(missing(None), Reply::Nil);
    assert_eq!(missing(Some(0)), integers(&[]));
}

#[test]
fn a_list_command_on_a_string_is_wrongtype_and_changes_nothing() {
    let mut store = store_with(&["a"]);
    let before = store.clone();
    assert_eq!(apply(&mut store, push("s", Side::Left, &["x"])), Reply::Error(KvError::WrongType));
    assert_eq!(store, before);
    assert_eq!(read(&store, ListRead::Len { key: b"s".to_vec() }), Reply::Error(KvError::WrongType));
}

#[test]
fn the_memory_count_follows_every_command() {
    let mut store = store_with(&["a", "b"]);
    let long = "x".repeat(100);
    apply(&mut store, push("l", Side::Left, &[&long, "c"]));
    apply(
        &mut store,
        ListWrite::Set { key: b"l".to_vec(), index: Some(0), element: long.clone().into_bytes() },
    );
    apply(&mut store, ListWrite::Remove { key: b"l".to_vec(), count: 0, element: long.into_bytes() });
    apply(&mut store, ListWrite::Trim { key: b"l".to_vec(), start: 0, stop: 0 });
    let list = store.collection::<ListValue>(b"l", 1).ok().flatten().map(|list| list.len());
    assert_eq!(list, Some(1));
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..6)
}

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Left), Just(Side::Right)]
}

fn index() -> impl Strategy<Value = i64> {
    prop_oneof![any::<i64>(), Just(i64::MIN), Just(i64::MAX), -3i64..3]
}

fn list_write() -> impl Strategy<Value = ListWrite> {
    prop_oneof![
        (bytes(), prop::collection::vec(bytes(), 0..4), side(), any::<bool>()).prop_map(
            |(key, elements, side, existing_only)| ListWrite::Push { key, elements, side, existing_only }
        ),
        (bytes(), prop::option::of(index()), bytes()).prop_map(|(key, index, element)| ListWrite::Set {
            key,
            index,
            element
        }),
        (bytes(), any::<bool>(), bytes(), bytes())
            .prop_map(|(key, after, pivot, element)| ListWrite::Insert { key, after, pivot, element }),
        (bytes(), index(), bytes()).prop_map(|(key, count, element)| ListWrite::Remove {
            key,
            count,
            element
        }),
        (bytes(), index(), index()).prop_map(|(key, start, stop)| ListWrite::Trim { key, start, stop }),
    ]
}

fn list_read() -> impl Strategy<Value = ListRead> {
    let rank = index().prop_filter("RANK is never 0", |rank| *rank != 0);
    prop_oneof![
        (bytes(), index(), index()).prop_map(|(key, start, stop)| ListRead::Range { key, start, stop }),
        (bytes(), prop::option::of(index())).prop_map(|(key, index)| ListRead::Index { key, index }),
        bytes().prop_map(|key| ListRead::Len { key }),
        (bytes(), bytes(), rank, prop::option::of(any::<u64>()), any::<u64>()).prop_map(
            |(key, element, rank, count, max_len)| ListRead::Position { key, element, rank, count, max_len }
        ),
    ]
}

fn write_entry(op: ListWrite) -> KvWrite {
    KvWrite { now_ms: 7, op: WriteOp::Collection(CollectionWrite::List(op)) }
}

fn read_query(query: ListRead) -> KvRead {
    KvRead::Collection(CollectionRead::List(query))
}

/// An encoded entry (or read) cut just after its list type tag, with `body` in place of the
/// list operation: arbitrary bytes that reach the list decoder.
fn with_list_header(encoded: &[u8], op_bytes: usize, body: &[u8]) -> Vec<u8> {
    [&encoded[..encoded.len() - op_bytes], body].concat()
}

proptest! {
    #[test]
    fn every_list_write_and_read_decodes_back(write in list_write(), query in list_read()) {
        let entry = write_entry(write);
        prop_assert_eq!(KvWrite::decode(&entry.encode()), Ok(entry));
        let query = read_query(query);
        prop_assert_eq!(KvRead::decode(&query.encode()), Ok(query));
    }

    #[test]
    fn decoding_arbitrary_list_operations_never_panics(body in prop::collection::vec(any::<u8>(), 0..48)) {
        // LTRIM of an empty key at 0..0 is four bytes after the type tag; LLEN of one is two.
        let trim = write_entry(ListWrite::Trim { key: Vec::new(), start: 0, stop: 0 }).encode();
        if let Ok(entry) = KvWrite::decode(&with_list_header(&trim, 4, &body)) {
            let _ = KvStore::new().apply(&entry);
        }
        let len = read_query(ListRead::Len { key: Vec::new() }).encode();
        if let Ok(query) = KvRead::decode(&with_list_header(&len, 2, &body)) {
            let _ = KvStore::new().read(&query, 1);
        }
    }
}

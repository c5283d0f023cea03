//! The memcached item operations against memcached 1.6's documented and observed behaviour.

use super::*;
use crate::kv::{KvRead, KvWrite, SetCondition, SetTtl, WriteOp};
use proptest::prelude::*;

/// Entry time of the tests: a Unix time in ms, so absolute exptimes make sense.
const NOW: u64 = 1_700_000_000_000;

fn apply(store: &mut KvStore, now: u64, op: McWrite) -> McOutcome {
    let reply = store.apply(&KvWrite { now_ms: now, op: WriteOp::Memcached(op) });
    McOutcome::from_reply(reply.clone()).unwrap_or_else(|| panic!("not an outcome: {reply:?}"))
}

fn store_op(mode: StoreMode, key: &str, value: &str, flags: u32, exptime: i64, cas: Option<u64>) -> McWrite {
    McWrite::Store {
        mode,
        key: key.into(),
        value: value.into(),
        flags,
        expiry: McExpiry::from_exptime(exptime),
        cas,
    }
}

fn set(store: &mut KvStore, key: &str, value: &str, flags: u32) -> McOutcome {
    apply(store, NOW, store_op(StoreMode::Set, key, value, flags, 0, None))
}

fn get(store: &KvStore, now: u64, key: &str) -> Option<McItem> {
    let reply = store.read(&KvRead::McGet { key: key.into() }, now);
    (reply != Reply::Nil).then(|| McItem::from_reply(reply.clone()).unwrap_or_else(|| panic!("{reply:?}")))
}

fn value_of(store: &KvStore, key: &str) -> Option<(String, u32)> {
    get(store, NOW, key).map(|item| (String::from_utf8_lossy(&item.value).into_owned(), item.flags))
}

fn delta(key: &str, decrement: bool, delta: u64) -> McWrite {
    McWrite::Delta { key: key.into(), decrement, delta, cas: None, vivify: None }
}

#[test]
fn an_items_cas_unique_is_the_log_index_of_its_last_write() {
    let mut store = KvStore::new();
    assert_eq!(
        store.apply_at(
            7,
            &KvWrite { now_ms: NOW, op: WriteOp::Memcached(store_op(StoreMode::Set, "k", "v", 42, 0, None)) }
        ),
        McOutcome::Stored { cas: 7 }.into_reply()
    );
    assert_eq!(get(&store, NOW, "k"), Some(McItem { value: b"v".to_vec(), flags: 42, cas: 7, ttl_s: -1 }));
    // touch changes the expiry only: the cas unique stays, as in memcached.
    let touch = McWrite::Touch { key: "k".into(), expiry: McExpiry::After(100), fetch: false };
    store.apply_at(8, &KvWrite { now_ms: NOW, op: WriteOp::Memcached(touch) });
    assert_eq!(get(&store, NOW, "k").map(|i| (i.cas, i.ttl_s)), Some((7, 100)));
    // A RESP SET is a new value: flags 0, a new version.
    let resp_set = WriteOp::Set {
        key: b"k".to_vec(),
        value: b"w".to_vec(),
        condition: SetCondition::Always,
        ttl: SetTtl::Clear,
        get: false,
    };
    store.apply_at(9, &KvWrite { now_ms: NOW, op: resp_set });
    assert_eq!(get(&store, NOW, "k").map(|i| (i.flags, i.cas)), Some((0, 9)));
    // APPEND and INCR change the value in place: the flags stay.
    set(&mut store, "n", "5", 3);
    store.apply(&KvWrite { now_ms: NOW, op: WriteOp::IncrBy { key: b"n".to_vec(), delta: 1 } });
    store.apply(&KvWrite { now_ms: NOW, op: WriteOp::Append { key: b"n".to_vec(), value: b"0".to_vec() } });
    assert_eq!(value_of(&store, "n"), Some(("60".into(), 3)));
    store.check_indexes();
}

#[test]
fn rename_and_copy_carry_the_flags_and_give_the_new_key_a_new_version() {
    let mut store = KvStore::new();
    set(&mut store, "a", "v", 9);
    store.apply(&KvWrite {
        now_ms: NOW,
        op: WriteOp::Copy { from: b"a".to_vec(), to: b"b".to_vec(), replace: false },
    });
    store.apply(&KvWrite {
        now_ms: NOW,
        op: WriteOp::Rename { from: b"a".to_vec(), to: b"c".to_vec(), if_new: false },
    });
    assert_eq!(get(&store, NOW, "b").map(|i| (i.flags, i.cas)), Some((9, 2)));
    assert_eq!(get(&store, NOW, "c").map(|i| (i.flags, i.cas)), Some((9, 3)));
    assert_eq!(get(&store, NOW, "a"), None);
}

#[test]
fn storage_commands_follow_memcached() {
    let mut store = KvStore::new();
    let op = |mode, key, value, flags| store_op(mode, key, value, flags, 0, None);
    assert_eq!(apply(&mut store, NOW, op(StoreMode::Add, "k", "a", 1)), McOutcome::Stored { cas: 1 });
    assert_eq!(apply(&mut store, NOW, op(StoreMode::Add, "k", "b", 1)), McOutcome::NotStored);
    assert_eq!(apply(&mut store, NOW, op(StoreMode::Replace, "missing", "b", 1)), McOutcome::NotStored);
    assert_eq!(apply(&mut store, NOW, op(StoreMode::Append, "missing", "b", 1)), McOutcome::NotStored);
    assert_eq!(apply(&mut store, NOW, op(StoreMode::Prepend, "missing", "b", 1)), McOutcome::NotStored);
    assert_eq!(apply(&mut store, NOW, op(StoreMode::Replace, "k", "r", 2)), McOutcome::Stored { cas: 6 });
    // append and prepend keep the item's flags and expiry, whatever the command says.
    assert_eq!(apply(&mut store, NOW, op(StoreMode::Append, "k", ">", 7)), McOutcome::Stored { cas: 7 });
    assert_eq!(apply(&mut store, NOW, op(StoreMode::Prepend, "k", "<", 8)), McOutcome::Stored { cas: 8 });
    assert_eq!(value_of(&store, "k"), Some(("<r>".into(), 2)));
    assert_eq!(store.time_ms(), NOW);
}

#[test]
fn cas_stores_only_over_the_version_it_names() {
    let mut store = KvStore::new();
    let cas = |value, unique| store_op(StoreMode::Set, "k", value, 0, 0, Some(unique));
    assert_eq!(apply(&mut store, NOW, cas("a", 1)), McOutcome::NotFound);
    let McOutcome::Stored { cas: unique } = set(&mut store, "k", "v", 0) else { panic!("stored") };
    assert_eq!(apply(&mut store, NOW, cas("b", unique + 100)), McOutcome::Exists);
    assert_eq!(apply(&mut store, NOW, cas("c", unique)), McOutcome::Stored { cas: 4 });
    assert_eq!(apply(&mut store, NOW, cas("d", unique)), McOutcome::Exists, "a race lost");
    assert_eq!(value_of(&store, "k"), Some(("c".into(), 0)));
    let delete = |cas| McWrite::Delete { key: "k".into(), cas: Some(cas) };
    assert_eq!(apply(&mut store, NOW, delete(3)), McOutcome::Exists);
    assert_eq!(apply(&mut store, NOW, delete(4)), McOutcome::Deleted);
    assert_eq!(apply(&mut store, NOW, McWrite::Delete { key: "k".into(), cas: None }), McOutcome::NotFound);
}

#[test]
fn counters_wrap_up_floor_at_zero_and_pad_a_shorter_number() {
    let mut store = KvStore::new();
    assert_eq!(apply(&mut store, NOW, delta("n", false, 1)), McOutcome::NotFound);
    set(&mut store, "n", "18446744073709551615", 5);
    assert_eq!(apply(&mut store, NOW, delta("n", false, 2)), McOutcome::Counter { value: 1, cas: 3 });
    // memcached rewrites in place: "1" followed by 19 spaces.
    assert_eq!(value_of(&store, "n"), Some((format!("1{}", " ".repeat(19)), 5)));
    assert_eq!(apply(&mut store, NOW, delta("n", true, 100)), McOutcome::Counter { value: 0, cas: 4 });
    set(&mut store, "n", "100", 0);
    assert_eq!(apply(&mut store, NOW, delta("n", true, 91)), McOutcome::Counter { value: 9, cas: 6 });
    assert_eq!(value_of(&store, "n").map(|v| v.0), Some("9  ".into()));
    assert_eq!(apply(&mut store, NOW, delta("n", false, 1000)), McOutcome::Counter { value: 1009, cas: 7 });
    assert_eq!(value_of(&store, "n").map(|v| v.0), Some("1009".into()));
    set(&mut store, "t", "12a", 0);
    assert_eq!(apply(&mut store, NOW, delta("t", false, 1)), McOutcome::NonNumeric);
    set(&mut store, "e", "", 0);
    assert_eq!(apply(&mut store, NOW, delta("e", false, 1)), McOutcome::NonNumeric);
    let vivify = McWrite::Delta {
        key: "v".into(),
        decrement: false,
        delta: 1,
        cas: None,
        vivify: Some((7, McExpiry::Never)),
    };
    assert_eq!(apply(&mut store, NOW, vivify), McOutcome::Counter { value: 7, cas: 12 });
    assert_eq!(value_of(&store, "v").map(|v| v.0), Some("7".into()));
}

#[test]
fn counters_are_read_as_memcached_reads_them() {
    for (text, expected) in [
        ("0", Some(0)),
        (" 12", Some(12)),
        ("12 ", Some(12)),
        ("+5", Some(5)),
        ("-0", Some(0)),
        ("-1", None),
        ("-9223372036854775809", Some(9_223_372_036_854_775_807)),
        ("18446744073709551615", Some(u64::MAX)),
        ("18446744073709551616", None),
        ("12a", None),
        ("", None),
        ("  ", None),
        ("1 2", Some(1)),
        ("0x10", None),
    ] {
        assert_eq!(parse_counter(text.as_bytes()), expected, "{text:?}");
    }
}

#[test]
fn expiry_is_relative_up_to_thirty_days_absolute_above_and_negative_is_gone() {
    assert_eq!(McExpiry::from_exptime(0), McExpiry::Never);
    assert_eq!(McExpiry::from_exptime(-1), McExpiry::Expired);
    assert_eq!(McExpiry::from_exptime(2_592_000), McExpiry::After(2_592_000));
    assert_eq!(McExpiry::from_exptime(2_592_001), McExpiry::At(2_592_001));
    let mut store = KvStore::new();
    let with = |key, exptime| store_op(StoreMode::Set, key, "v", 0, exptime, None);
    apply(&mut store, NOW, with("relative", 10));
    apply(&mut store, NOW, with("absolute", (NOW / 1000 + 20) as i64));
    assert_eq!(apply(&mut store, NOW, with("negative", -1)), McOutcome::Stored { cas: 3 });
    assert_eq!(apply(&mut store, NOW, with("past", 2_592_001)), McOutcome::Stored { cas: 4 });
    assert_eq!(get(&store, NOW, "relative").map(|i| i.ttl_s), Some(10));
    assert_eq!(get(&store, NOW, "absolute").map(|i| i.ttl_s), Some(20));
    assert_eq!(get(&store, NOW + 10_000, "relative").map(|i| i.ttl_s), Some(0), "alive at its expiry");
    assert_eq!(get(&store, NOW + 10_001, "relative"), None);
    assert_eq!((get(&store, NOW, "negative"), get(&store, NOW, "past")), (None, None));
    assert_eq!(store.len_including_expired(), 2, "an item stored expired is not kept");
}

#[test]
fn touch_and_gat_change_the_expiry_and_gat_answers_the_item() {
    let mut store = KvStore::new();
    set(&mut store, "k", "v", 4);
    let touch =
        |exptime, fetch| McWrite::Touch { key: "k".into(), expiry: McExpiry::from_exptime(exptime), fetch };
    assert_eq!(apply(&mut store, NOW, touch(50, false)), McOutcome::Touched);
    let item = McItem { value: b"v".to_vec(), flags: 4, cas: 1, ttl_s: 100 };
    assert_eq!(apply(&mut store, NOW, touch(100, true)), McOutcome::Item(item.clone()));
    assert_eq!(apply(&mut store, NOW, touch(-1, true)), McOutcome::Item(McItem { ttl_s: 0, ..item }));
    assert_eq!(get(&store, NOW, "k"), None);
    assert_eq!(apply(&mut store, NOW, touch(0, false)), McOutcome::NotFound);
}

#[test]
fn flush_all_with_a_delay_removes_what_was_written_before_its_time() {
    let mut store = KvStore::new();
    set(&mut store, "old", "v", 0);
    assert_eq!(apply(&mut store, NOW, McWrite::FlushAll { delay: McExpiry::After(2) }), McOutcome::Ok);
    set(&mut store, "meanwhile", "v", 0);
    assert!(get(&store, NOW + 1_999, "old").is_some() && get(&store, NOW + 1_999, "meanwhile").is_some());
    // Reads see the flush as soon as its time comes, before any entry applies it.
    assert!(store.flush_due(NOW + 2_000));
    assert_eq!((get(&store, NOW + 2_000, "old"), get(&store, NOW + 2_000, "meanwhile")), (None, None));
    apply(&mut store, NOW + 2_000, store_op(StoreMode::Set, "after", "v", 0, 0, None));
    assert_eq!(store.len_including_expired(), 1);
    assert!(!store.flush_due(NOW + 10_000));
    assert!(get(&store, NOW + 10_000, "after").is_some());
    // Without a delay: everything at once.
    assert_eq!(apply(&mut store, NOW + 10_000, McWrite::FlushAll { delay: McExpiry::Never }), McOutcome::Ok);
    assert_eq!(store.len_including_expired(), 0);
    store.check_indexes();
}

#[test]
fn a_key_holding_a_collection_is_replaced_by_set_and_no_item_to_the_rest() {
    let mut store = KvStore::new();
    let hset = crate::kv::types::HashWrite::Set {
        key: b"h".to_vec(),
        pairs: vec![(b"f".to_vec(), b"v".to_vec())],
        reply_ok: false,
    };
    let hset = WriteOp::Collection(crate::kv::CollectionWrite::Hash(hset));
    store.apply(&KvWrite { now_ms: NOW, op: hset.clone() });
    assert_eq!(get(&store, NOW, "h"), None, "a get misses");
    let append = store_op(StoreMode::Append, "h", "x", 0, 0, None);
    assert_eq!(apply(&mut store, NOW, append), McOutcome::WrongType);
    assert_eq!(apply(&mut store, NOW, delta("h", false, 1)), McOutcome::WrongType);
    assert_eq!(apply(&mut store, NOW, store_op(StoreMode::Add, "h", "x", 0, 0, None)), McOutcome::NotStored);
    assert_eq!(set(&mut store, "h", "x", 1), McOutcome::Stored { cas: 5 });
    assert_eq!(value_of(&store, "h"), Some(("x".into(), 1)));
    store.check_indexes();
}

fn expiry() -> impl Strategy<Value = McExpiry> {
    prop_oneof![
        Just(McExpiry::Never),
        Just(McExpiry::Expired),
        any::<u32>().prop_map(McExpiry::After),
        any::<u64>().prop_map(McExpiry::At),
    ]
}

fn writes() -> impl Strategy<Value = McWrite> {
    let key = || proptest::collection::vec(any::<u8>(), 0..8);
    let mode = prop_oneof![
        Just(StoreMode::Set),
        Just(StoreMode::Add),
        Just(StoreMode::Replace),
        Just(StoreMode::Append),
        Just(StoreMode::Prepend)
    ];
    prop_oneof![
        (mode, key(), key(), any::<u32>(), expiry(), any::<Option<u64>>()).prop_map(
            |(mode, key, value, flags, expiry, cas)| McWrite::Store { mode, key, value, flags, expiry, cas }
        ),
        (
            key(),
            any::<bool>(),
            any::<u64>(),
            any::<Option<u64>>(),
            proptest::option::of((any::<u64>(), expiry()))
        )
            .prop_map(|(key, decrement, delta, cas, vivify)| McWrite::Delta {
                key,
                decrement,
                delta,
                cas,
                vivify
            }),
        (key(), expiry(), any::<bool>()).prop_map(|(key, expiry, fetch)| McWrite::Touch {
            key,
            expiry,
            fetch
        }),
        (key(), any::<Option<u64>>()).prop_map(|(key, cas)| McWrite::Delete { key, cas }),
        expiry().prop_map(|delay| McWrite::FlushAll { delay }),
    ]
}

proptest! {
    #[test]
    fn writes_travel_through_the_log_unchanged(op in writes(), now in any::<u64>()) {
        let write = KvWrite { now_ms: now, op: WriteOp::Memcached(op) };
        prop_assert_eq!(KvWrite::decode(&write.encode()), Ok(write));
    }

    #[test]
    fn decoding_never_panics(body in proptest::collection::vec(any::<u8>(), 0..48)) {
        let mut entry = KvWrite::unstamped(WriteOp::FlushAll).encode();
        entry.pop();
        entry.push(TAG_FOR_TESTS);
        entry.extend_from_slice(&body);
        let _ = KvWrite::decode(&entry);
    }

    #[test]
    fn outcomes_and_items_read_back_as_they_were_written(
        value in proptest::collection::vec(any::<u8>(), 0..8),
        flags in any::<u32>(),
        cas in any::<u64>(),
        ttl_s in -1i64..1_000_000,
    ) {
        let item = McItem { value, flags, cas, ttl_s };
        for outcome in [
            McOutcome::Stored { cas },
            McOutcome::Counter { value: cas, cas },
            McOutcome::Item(item.clone()),
            McOutcome::NotStored,
            McOutcome::WrongType,
            McOutcome::TooLarge,
        ] {
            prop_assert_eq!(McOutcome::from_reply(outcome.clone().into_reply()), Some(outcome));
        }
    }

    /// Replicas applying the same entries hold the same state, and a store rebuilt from its
    /// snapshot goes on alike.
    #[test]
    fn replicas_and_a_restored_store_stay_identical(ops in proptest::collection::vec(writes(), 1..24)) {
        let (mut a, mut b) = (KvStore::new(), KvStore::new());
        for (i, op) in ops.iter().enumerate() {
            let write = KvWrite { now_ms: NOW + i as u64 * 700, op: WriteOp::Memcached(op.clone()) };
            let index = i as u64 + 1;
            prop_assert_eq!(a.apply_at(index, &write), b.apply_at(index, &write));
            if i == ops.len() / 2 {
                b = KvStore::restore(&b.snapshot()).expect("restores");
            }
        }
        prop_assert_eq!(&a, &b);
        a.check_indexes();
    }
}

/// The operation tag of memcached writes, to aim random bytes at their decoder.
const TAG_FOR_TESTS: u8 = 22;

//! Set commands applied and answered on a store, and their encoding.

use proptest::prelude::*;

use super::command::RANDOM_REPLY_BYTES_MAX;
use super::*;
use crate::kv::codec::Reader;
use crate::kv::types::scan_query::strategies::{scan_query, scan_refusal};
use crate::kv::types::CollectionWrite;
use crate::kv::types::{ScanQuery, ScanRefusal};
use crate::kv::{KvError, KvStore, KvWrite, Reply, WriteOp};

const NOW: u64 = 1;

fn b(text: &str) -> Vec<u8> {
    text.as_bytes().to_vec()
}

fn list(texts: &[&str]) -> Vec<Vec<u8>> {
    texts.iter().map(|t| b(t)).collect()
}

fn apply(store: &mut KvStore, op: SetWrite) -> Reply {
    store.apply(&KvWrite { now_ms: NOW, op: WriteOp::Collection(CollectionWrite::Set(op)) })
}

fn sadd(store: &mut KvStore, key: &str, members: &[&str]) -> Reply {
    apply(store, SetWrite::Add { key: b(key), members: list(members) })
}

fn read(store: &KvStore, query: SetRead) -> Reply {
    query.read(store, NOW)
}

fn card(store: &KvStore, key: &str) -> Reply {
    read(store, SetRead::Card { key: b(key) })
}

fn bulks(reply: Reply) -> Vec<String> {
    let (Reply::Array(items) | Reply::Set(items)) = reply else { panic!("not a list of members: {reply:?}") };
    let mut members: Vec<String> = items
        .into_iter()
        .map(|item| match item {
            Reply::Bulk(bytes) => String::from_utf8(bytes).expect("utf-8 member"),
            other => panic!("not a member: {other:?}"),
        })
        .collect();
    members.sort();
    members
}

fn combine(store: &KvStore, algebra: SetAlgebra, keys: &[&str]) -> Reply {
    read(store, SetRead::Combine { algebra, keys: list(keys) })
}

#[test]
fn sadd_and_srem_count_members_and_an_emptied_set_is_deleted() {
    let mut store = KvStore::new();
    assert_eq!(sadd(&mut store, "s", &["a", "b", "a"]), Reply::Integer(2));
    assert_eq!(sadd(&mut store, "s", &["b", "c"]), Reply::Integer(1));
    assert_eq!(card(&store, "s"), Reply::Integer(3));
    let is_member =
        |store: &KvStore, member: &str| read(store, SetRead::IsMember { key: b("s"), member: b(member) });
    assert_eq!(is_member(&store, "c"), Reply::Integer(1));
    assert_eq!(is_member(&store, "z"), Reply::Integer(0));
    let are = read(&store, SetRead::AreMembers { key: b("s"), members: list(&["a", "z", "c"]) });
    assert_eq!(are, Reply::Array(vec![Reply::Integer(1), Reply::Integer(0), Reply::Integer(1)]));
    let remove = |members: &[&str]| SetWrite::Remove { key: b("s"), members: list(members) };
    assert_eq!(apply(&mut store, remove(&["a", "z"])), Reply::Integer(1));
    assert_eq!(apply(&mut store, remove(&["b", "c", "b"])), Reply::Integer(2));
    assert_eq!(store.get_live(b"s", NOW), None, "an empty set is no key");
    assert_eq!(apply(&mut store, remove(&["a"])), Reply::Integer(0));
    assert_eq!(card(&store, "s"), Reply::Integer(0));
    assert_eq!(store.data_bytes(), 0);
    store.check_indexes();
}

#[test]
fn every_set_command_on_a_string_is_wrongtype_and_changes_nothing() {
    let mut store = KvStore::new();
    store.insert(b"str", &b"v"[..], None);
    sadd(&mut store, "s", &["a"]);
    let before = store.clone();
    let wrong = Reply::Error(KvError::WrongType);
    let writes = [
        SetWrite::Add { key: b("str"), members: list(&["a"]) },
        SetWrite::Remove { key: b("str"), members: list(&["a"]) },
        SetWrite::Pop { key: b("str"), count: None, seed: 1 },
        SetWrite::Pop { key: b("str"), count: Some(0), seed: 1 },
        SetWrite::Pop { key: b("str"), count: Some(3), seed: 1 },
        SetWrite::Move { source: b("str"), destination: b("s"), member: b("a") },
        SetWrite::Move { source: b("s"), destination: b("str"), member: b("a") },
        SetWrite::Store { algebra: SetAlgebra::Union, destination: b("d"), keys: list(&["s", "str"]) },
    ];
    for op in writes {
        assert_eq!(apply(&mut store, op.clone()), wrong, "{op:?}");
        assert_eq!(store, before, "{op:?}");
    }
    let reads = [
        SetRead::IsMember { key: b("str"), member: b("a") },
        SetRead::AreMembers { key: b("str"), members: list(&["a"]) },
        SetRead::Card { key: b("str") },
        SetRead::RandomMembers { key: b("str"), count: None, seed: 1 },
        SetRead::RandomMembers { key: b("str"), count: Some(0), seed: 1 },
        // Every key is checked, even after a missing one.
        SetRead::Combine { algebra: SetAlgebra::Intersection, keys: list(&["missing", "str"]) },
        SetRead::Combine { algebra: SetAlgebra::Difference, keys: list(&["missing", "str"]) },
        SetRead::IntersectionCard { keys: list(&["missing", "str"]), limit: 0 },
        SetRead::Scan(ScanQuery { key: b("str"), cursor: 0, pattern: None, count: 10 }),
        SetRead::ScanRefused(ScanRefusal { key: b("str"), error: KvError::Syntax }),
    ];
    for query in reads {
        assert_eq!(read(&store, query.clone()), wrong, "{query:?}");
    }
}

#[test]
fn spop_removes_what_it_returns_and_the_same_seed_pops_the_same_members() {
    let members: Vec<String> = (0..50).map(|n| format!("m{n}")).collect();
    let members: Vec<&str> = members.iter().map(String::as_str).collect();
    let (mut one, mut other) = (KvStore::new(), KvStore::new());
    sadd(&mut one, "s", &members);
    sadd(&mut other, "s", &members);
    let pop = |count| SetWrite::Pop { key: b("s"), count, seed: 99 };
    let popped = apply(&mut one, pop(Some(5)));
    assert_eq!(apply(&mut other, pop(Some(5))), popped, "replicas pop alike");
    assert_eq!(one, other);
    let popped = bulks(popped);
    assert_eq!(popped.len(), 5);
    assert_eq!(card(&one, "s"), Reply::Integer(45));
    let Reply::Bulk(single) = apply(&mut one, pop(None)) else { panic!("SPOP without count is a bulk") };
    assert!(!popped.contains(&String::from_utf8(single).expect("utf-8")));
    assert_eq!(apply(&mut one, pop(Some(0))), Reply::Set(Vec::new()));
    assert_eq!(bulks(apply(&mut one, pop(Some(1000)))).len(), 44, "the rest, and the key goes");
    assert_eq!(one.get_live(b"s", NOW), None);
    assert_eq!(apply(&mut one, pop(None)), Reply::Nil);
    assert_eq!(apply(&mut one, pop(Some(3))), Reply::Set(Vec::new()));
    one.check_indexes();
}

#[test]
fn srandmember_counts_distinct_or_repeating_members() {
    let mut store = KvStore::new();
    sadd(&mut store, "s", &["a", "b", "c"]);
    let random = |count, seed| read(&store, SetRead::RandomMembers { key: b("s"), count, seed });
    assert!(matches!(random(None, 1), Reply::Bulk(_)));
    assert_eq!(bulks(random(Some(5), 1)), ["a", "b", "c"], "at most the whole set");
    for seed in 0..20 {
        let two = bulks(random(Some(2), seed));
        assert!(two.len() == 2 && two[0] != two[1], "{two:?}");
    }
    let repeated = bulks(random(Some(-30), 3));
    assert_eq!(repeated.len(), 30);
    assert!(repeated.windows(2).any(|pair| pair[0] == pair[1]), "30 draws from 3 repeat");
    assert_eq!(random(Some(0), 1), Reply::Array(Vec::new()));
    let missing = |count| read(&store, SetRead::RandomMembers { key: b("none"), count, seed: 1 });
    assert_eq!(missing(None), Reply::Nil);
    assert_eq!(missing(Some(-3)), Reply::Array(Vec::new()));
}

#[test]
fn srandmember_refuses_to_build_a_reply_beyond_the_limit() {
    let mut store = KvStore::new();
    let member = "x".repeat(1 << 20);
    sadd(&mut store, "big", &[&member]);
    let draws = (RANDOM_REPLY_BYTES_MAX >> 20) as i64 + 1;
    let query = SetRead::RandomMembers { key: b("big"), count: Some(-draws), seed: 1 };
    assert_eq!(read(&store, query), Reply::Error(KvError::ReplyTooLarge));
    let query = SetRead::RandomMembers { key: b("big"), count: Some(-i64::MAX), seed: 1 };
    assert_eq!(read(&store, query), Reply::Error(KvError::ReplyTooLarge));
}

#[test]
fn smove_follows_redis_case_by_case() {
    let mut store = KvStore::new();
    sadd(&mut store, "src", &["a", "b"]);
    store.insert(b"str", &b"v"[..], None);
    let smove = |source: &str, destination: &str, member: &str| SetWrite::Move {
        source: b(source),
        destination: b(destination),
        member: b(member),
    };
    assert_eq!(apply(&mut store, smove("missing", "str", "a")), Reply::Integer(0), "a missing source first");
    assert_eq!(apply(&mut store, smove("src", "dst", "zz")), Reply::Integer(0));
    assert_eq!(store.get_live(b"dst", NOW), None, "nothing moved, nothing created");
    assert_eq!(apply(&mut store, smove("src", "src", "a")), Reply::Integer(1));
    assert_eq!(apply(&mut store, smove("src", "src", "zz")), Reply::Integer(0));
    assert_eq!(apply(&mut store, smove("src", "dst", "a")), Reply::Integer(1));
    assert_eq!(bulks(combine(&store, SetAlgebra::Intersection, &["dst"])), ["a"]);
    assert_eq!(apply(&mut store, smove("src", "dst", "b")), Reply::Integer(1));
    assert_eq!(store.get_live(b"src", NOW), None, "the emptied source is deleted");
    assert_eq!(card(&store, "dst"), Reply::Integer(2));
    store.check_indexes();
}

#[test]
fn store_commands_replace_the_destination_and_an_empty_result_deletes_it() {
    let mut store = KvStore::new();
    sadd(&mut store, "a", &["1", "2", "3"]);
    sadd(&mut store, "b", &["2", "3", "4"]);
    store.insert(b"dest", &b"a string with a ttl"[..], Some(1_000_000));
    let store_op =
        |algebra, keys: &[&str]| SetWrite::Store { algebra, destination: b("dest"), keys: list(keys) };
    assert_eq!(apply(&mut store, store_op(SetAlgebra::Intersection, &["a", "b"])), Reply::Integer(2));
    let dest = store.get_live(b"dest", NOW).expect("the result is stored");
    assert_eq!((dest.data.type_name(), dest.expire_at_ms), ("set", None), "a new set, no ttl");
    assert_eq!(apply(&mut store, store_op(SetAlgebra::Union, &["a", "b", "missing"])), Reply::Integer(4));
    assert_eq!(apply(&mut store, store_op(SetAlgebra::Difference, &["a", "b"])), Reply::Integer(1));
    assert_eq!(bulks(combine(&store, SetAlgebra::Union, &["dest"])), ["1"]);
    // The destination may be a source.
    assert_eq!(apply(&mut store, store_op(SetAlgebra::Union, &["dest", "b"])), Reply::Integer(4));
    assert_eq!(apply(&mut store, store_op(SetAlgebra::Intersection, &["a", "missing"])), Reply::Integer(0));
    assert_eq!(store.get_live(b"dest", NOW), None, "an empty result deletes the destination");
    store.check_indexes();
}

#[test]
fn sintercard_stops_at_the_limit() {
    let mut store = KvStore::new();
    sadd(&mut store, "a", &["1", "2", "3", "4"]);
    sadd(&mut store, "b", &["2", "3", "4", "5"]);
    let intercard =
        |keys: &[&str], limit| read(&store, SetRead::IntersectionCard { keys: list(keys), limit });
    assert_eq!(intercard(&["a", "b"], 0), Reply::Integer(3));
    assert_eq!(intercard(&["a", "b"], 2), Reply::Integer(2));
    assert_eq!(intercard(&["a", "b"], 10), Reply::Integer(3));
    assert_eq!(intercard(&["a", "missing"], 0), Reply::Integer(0));
    assert_eq!(combine(&store, SetAlgebra::Intersection, &["missing"]), Reply::Set(Vec::new()));
}

#[test]
fn sscan_refuses_bad_options_only_for_an_existing_set() {
    let mut store = KvStore::new();
    sadd(&mut store, "s", &["a", "b"]);
    let empty_page = Reply::Array(vec![Reply::Bulk(b("0")), Reply::Array(Vec::new())]);
    let refused =
        |key: &str| read(&store, SetRead::ScanRefused(ScanRefusal { key: b(key), error: KvError::Syntax }));
    assert_eq!(refused("missing"), empty_page);
    assert_eq!(refused("s"), Reply::Error(KvError::Syntax));
    let page =
        read(&store, SetRead::Scan(ScanQuery { key: b("s"), cursor: 0, pattern: Some(b("a*")), count: 10 }));
    assert_eq!(page, Reply::Array(vec![Reply::Bulk(b("0")), Reply::Array(vec![Reply::Bulk(b("a"))])]));
    let missing =
        read(&store, SetRead::Scan(ScanQuery { key: b("missing"), cursor: 5, pattern: None, count: 10 }));
    assert_eq!(missing, empty_page);
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..6)
}

fn byte_lists() -> impl Strategy<Value = Vec<Vec<u8>>> {
    proptest::collection::vec(bytes(), 0..4)
}

fn algebra() -> impl Strategy<Value = SetAlgebra> {
    prop_oneof![Just(SetAlgebra::Intersection), Just(SetAlgebra::Union), Just(SetAlgebra::Difference)]
}

fn set_write() -> impl Strategy<Value = SetWrite> {
    prop_oneof![
        (bytes(), byte_lists()).prop_map(|(key, members)| SetWrite::Add { key, members }),
        (bytes(), byte_lists()).prop_map(|(key, members)| SetWrite::Remove { key, members }),
        (bytes(), any::<Option<u64>>(), any::<u64>()).prop_map(|(key, count, seed)| SetWrite::Pop {
            key,
            count,
            seed
        }),
        (bytes(), bytes(), bytes()).prop_map(|(source, destination, member)| SetWrite::Move {
            source,
            destination,
            member
        }),
        (algebra(), bytes(), byte_lists()).prop_map(|(algebra, destination, keys)| SetWrite::Store {
            algebra,
            destination,
            keys
        }),
    ]
}

fn set_read() -> impl Strategy<Value = SetRead> {
    prop_oneof![
        (bytes(), bytes()).prop_map(|(key, member)| SetRead::IsMember { key, member }),
        (bytes(), byte_lists()).prop_map(|(key, members)| SetRead::AreMembers { key, members }),
        bytes().prop_map(|key| SetRead::Card { key }),
        (bytes(), any::<Option<i64>>(), any::<u64>()).prop_map(|(key, count, seed)| SetRead::RandomMembers {
            key,
            count,
            seed
        }),
        (algebra(), byte_lists()).prop_map(|(algebra, keys)| SetRead::Combine { algebra, keys }),
        (byte_lists(), any::<u64>()).prop_map(|(keys, limit)| SetRead::IntersectionCard { keys, limit }),
        scan_query().prop_map(SetRead::Scan),
        scan_refusal().prop_map(SetRead::ScanRefused),
    ]
}

/// Decodes `input` whole with `decode`.
fn decode_all<T>(
    input: &[u8],
    decode: fn(&mut Reader<'_>) -> Result<T, crate::kv::KvDecodeError>,
) -> Result<T, crate::kv::KvDecodeError> {
    let mut reader = Reader::new(input);
    let value = decode(&mut reader)?;
    reader.finish().map(|()| value)
}

proptest! {
    #[test]
    fn every_set_write_decodes_back(op in set_write(), now_ms in any::<u64>()) {
        let mut encoded = Vec::new();
        op.encode(&mut encoded);
        prop_assert_eq!(decode_all(&encoded, SetWrite::decode), Ok(op.clone()));
        for len in 0..encoded.len() {
            prop_assert!(decode_all(&encoded[..len], SetWrite::decode).is_err());
        }
        let entry = KvWrite { now_ms, op: WriteOp::Collection(CollectionWrite::Set(op)) };
        prop_assert_eq!(KvWrite::decode(&entry.encode()), Ok(entry));
    }

    #[test]
    fn every_set_read_decodes_back(query in set_read()) {
        let mut encoded = Vec::new();
        query.encode(&mut encoded);
        prop_assert_eq!(decode_all(&encoded, SetRead::decode), Ok(query));
        for len in 0..encoded.len() {
            prop_assert!(decode_all(&encoded[..len], SetRead::decode).is_err());
        }
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(input in proptest::collection::vec(any::<u8>(), 0..48)) {
        let _ = decode_all(&input, SetWrite::decode);
        let _ = decode_all(&input, SetRead::decode);
    }

    #[test]
    fn applying_any_set_write_keeps_the_store_consistent(ops in proptest::collection::vec(set_write(), 0..12)) {
        let mut store = KvStore::new();
        store.insert(b"", &b"a string"[..], None);
        for op in ops {
            apply(&mut store, op);
        }
        store.check_indexes();
    }
}

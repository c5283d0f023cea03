//! Apply is total: whatever a committed entry holds, applying it neither panics nor overflows
//! the stack nor grows the store beyond what the entry itself accounts for.
//!
//! Every replica applies every committed entry, and again after each restart, so one entry
//! that crashes apply would take the whole group down for good. Sequences of well-formed
//! operations with hostile arguments (integer and float extremes, NaN and infinities, offsets
//! past the value limit, patterns of thousands of stars, counts of `u64::MAX`) and arbitrary
//! bytes decoded as entries go through the same path as a replica's: decode, then apply.

use super::*;
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What an operation may add to a store beyond the bytes of its entry and one copy of a value
/// (APPEND or SETRANGE on a value COPY shares copies it): INCRBYFLOAT prints up to ~330 digits
/// from an 8-byte float.
const GROWTH_PER_OPERATION_BYTES: u64 = 512;

/// Memory the store holds for its data: every key three times (table, scan index, expiry
/// index at most) and every distinct value once (COPY shares values).
fn store_bytes(store: &KvStore) -> u64 {
    let mut values = BTreeSet::new();
    let mut bytes = 0u64;
    for (key, value) in store.entries.iter() {
        bytes += 3 * key.len() as u64;
        let Some(data) = value.data.as_string() else { continue };
        if values.insert(Arc::as_ptr(data) as *const u8 as usize) {
            bytes += data.len() as u64;
        }
    }
    bytes
}

/// The zero-filled bytes SETRANGE may add beyond its patch (within the value limit).
fn setrange_allowance(op: &WriteOp) -> u64 {
    match op {
        WriteOp::SetRange { offset, value, .. } if !value.is_empty() => {
            offset.saturating_add(value.len() as u64)
        }
        WriteOp::Transaction { steps, .. } => steps
            .iter()
            .map(|step| match step {
                TxnStep::Write(op) => setrange_allowance(op),
                TxnStep::Read(_) => 0,
            })
            .fold(0, u64::saturating_add),
        _ => 0,
    }
}

fn operation_count(op: &WriteOp) -> u64 {
    match op {
        WriteOp::Transaction { steps, .. } => steps.len() as u64 + 1,
        _ => 1,
    }
}

/// Decodes and applies one entry as a replica does, checking the store's invariants and that
/// it grew by no more than the entry accounts for.
fn apply_entry(store: &mut KvStore, entry: &[u8]) {
    let Ok(write) = KvWrite::decode(entry) else { return };
    let before = store_bytes(store);
    let largest_value = store.entries.iter().map(|(_, v)| v.data.bytes()).max().unwrap_or(0);
    let reply = store.apply(&write);
    store.check_indexes();
    let after = store_bytes(store);
    let allowance = (4 * entry.len() as u64)
        .saturating_add((GROWTH_PER_OPERATION_BYTES + largest_value) * operation_count(&write.op))
        .saturating_add(setrange_allowance(&write.op));
    assert!(
        after <= before.saturating_add(allowance),
        "grew from {before} to {after} bytes applying {write:?}"
    );
    for (key, value) in store.entries.iter() {
        assert!(value.data.bytes() <= VALUE_BYTES_MAX, "value of {key:?} past the limit");
    }
    let reply_bytes_max = TXN_REPLY_BYTES_MAX + reply::REPLY_ELEMENT_BYTES * operation_count(&write.op);
    assert!(reply.bytes() <= reply_bytes_max.max(VALUE_BYTES_MAX), "reply of {} bytes", reply.bytes());
}

fn key() -> impl Strategy<Value = Vec<u8>> + Clone {
    prop_oneof![
        8 => prop::sample::select(vec![b"a".to_vec(), b"b".to_vec(), b"n".to_vec(), Vec::new()]),
        1 => Just(vec![b'a'; 2000]),
        1 => prop::collection::vec(any::<u8>(), 0..8),
    ]
}

/// Values that are numbers at their edges, or almost numbers, or plain bytes.
fn value() -> impl Strategy<Value = Vec<u8>> {
    let edges = [
        "9223372036854775807",
        "-9223372036854775808",
        "9223372036854775808",
        "0",
        "-0",
        "inf",
        "-inf",
        "nan",
        "1e308",
        "-1.7976931348623157e308",
        "5e-324",
        "1e-400",
        "0x10",
        " 1",
    ];
    prop_oneof![
        2 => prop::sample::select(edges.iter().map(|s| s.as_bytes().to_vec()).collect::<Vec<_>>()),
        2 => prop::collection::vec(any::<u8>(), 0..16),
        1 => Just(vec![b'7'; 5000]),
    ]
}

fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<u64>().prop_map(f64::from_bits),
        prop::sample::select(vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY, f64::MAX, f64::MIN, -0.0]),
    ]
}

fn int() -> impl Strategy<Value = i64> {
    prop_oneof![any::<i64>(), prop::sample::select(vec![i64::MIN, i64::MAX, -1, 0, 1])]
}

/// SETRANGE: near the start, or far enough past the value limit to be refused (a legitimate
/// value of hundreds of MiB would only slow the test down).
fn set_range() -> impl Strategy<Value = WriteOp> {
    (key(), prop::collection::vec(any::<u8>(), 0..8), any::<bool>(), any::<u64>()).prop_map(
        |(key, value, near, far)| {
            let refused_from = (VALUE_BYTES_MAX + 1).saturating_sub(value.len() as u64).max(1);
            let offset =
                if near { far % 64 } else { refused_from.saturating_add(far % (u64::MAX - refused_from)) };
            WriteOp::SetRange { key, offset, value }
        },
    )
}

/// Glob patterns at their worst: long runs of star groups, unterminated classes, escapes.
fn pattern() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (1usize..3000).prop_map(|n| b"*a".repeat(n)),
        (1usize..3000).prop_map(|n| [b"*".repeat(n), b"a".to_vec()].concat()),
        (1usize..1000).prop_map(|n| [b"*".to_vec(), vec![b'a'; n], b"b".to_vec()].concat()),
        prop::collection::vec(prop::sample::select(b"*?[]^-\\ab".to_vec()), 0..24),
    ]
}

fn write_op() -> impl Strategy<Value = WriteOp> {
    let ttl = prop_oneof![Just(SetTtl::Clear), Just(SetTtl::Keep), any::<u64>().prop_map(SetTtl::At)];
    let condition =
        prop::sample::select(vec![SetCondition::Always, SetCondition::IfAbsent, SetCondition::IfPresent]);
    let getex =
        prop_oneof![Just(GetExTtl::Unchanged), Just(GetExTtl::Persist), any::<u64>().prop_map(GetExTtl::At)];
    let expire = prop::sample::select(vec![
        ExpireCondition::Always,
        ExpireCondition::IfNoTtl,
        ExpireCondition::IfTtl,
        ExpireCondition::IfLater,
        ExpireCondition::IfEarlier,
        ExpireCondition::IfTtlAndLater,
        ExpireCondition::IfTtlAndEarlier,
    ]);
    let keys = prop::collection::vec(key(), 0..6);
    prop_oneof![
        (key(), value(), condition, ttl, any::<bool>())
            .prop_map(|(key, value, condition, ttl, get)| WriteOp::Set { key, value, condition, ttl, get }),
        (key(), value()).prop_map(|(key, value)| WriteOp::SetNx { key, value }),
        key().prop_map(|key| WriteOp::GetDel { key }),
        (key(), getex).prop_map(|(key, ttl)| WriteOp::GetEx { key, ttl }),
        prop::collection::vec((key(), value()), 0..6).prop_map(|pairs| WriteOp::MSet { pairs }),
        prop::collection::vec((key(), value()), 0..6).prop_map(|pairs| WriteOp::MSetNx { pairs }),
        (key(), key(), any::<bool>()).prop_map(|(from, to, if_new)| WriteOp::Rename { from, to, if_new }),
        (key(), key(), any::<bool>()).prop_map(|(from, to, replace)| WriteOp::Copy { from, to, replace }),
        keys.clone().prop_map(|keys| WriteOp::Del { keys }),
        keys.prop_map(|keys| WriteOp::RemoveExpired { keys }),
        (key(), int()).prop_map(|(key, delta)| WriteOp::IncrBy { key, delta }),
        (key(), float()).prop_map(|(key, delta)| WriteOp::IncrByFloat { key, delta }),
        (key(), value()).prop_map(|(key, value)| WriteOp::Append { key, value }),
        set_range(),
        (key(), int(), any::<bool>(), expire).prop_map(|(key, ms, absolute, condition)| {
            let when = if absolute { ExpireTime::At(ms) } else { ExpireTime::After(ms) };
            WriteOp::Expire { key, when, condition }
        }),
        key().prop_map(|key| WriteOp::Persist { key }),
        Just(WriteOp::FlushAll),
    ]
}

fn read() -> impl Strategy<Value = KvRead> {
    let keys = prop::collection::vec(key(), 0..40);
    prop_oneof![
        key().prop_map(|key| KvRead::Get { key }),
        keys.clone().prop_map(|keys| KvRead::MGet { keys }),
        keys.prop_map(|keys| KvRead::Exists { keys }),
        (key(), int(), int()).prop_map(|(key, start, end)| KvRead::GetRange { key, start, end }),
        key().prop_map(|key| KvRead::Ttl { key }),
        key().prop_map(|key| KvRead::PExpireTime { key }),
        pattern().prop_map(|pattern| KvRead::Keys { pattern }),
        (any::<u64>(), prop::option::of(pattern()), prop::sample::select(vec![0, 1, 10, u64::MAX]))
            .prop_map(|(cursor, pattern, count)| KvRead::Scan { cursor, pattern, count, type_name: None }),
        Just(KvRead::DbSize),
        Just(KvRead::Expires),
        Just(KvRead::RandomKey),
    ]
}

/// A top-level operation: a plain write, or a MULTI/EXEC of writes and reads.
fn entry_op() -> impl Strategy<Value = WriteOp> {
    let step = prop_oneof![write_op().prop_map(TxnStep::Write), read().prop_map(TxnStep::Read)];
    prop_oneof![
        3 => write_op(),
        1 => prop::collection::vec(step, 0..12).prop_map(|steps| WriteOp::Transaction { steps, watched: Vec::new() }),
    ]
}

/// The leader's clock: ordinary, at its edges, or going backwards.
fn now_ms() -> impl Strategy<Value = u64> {
    prop_oneof![1_000_000u64..1_000_100, Just(0), Just(u64::MAX), any::<u64>()]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn hostile_operations_apply_without_panic_or_unbounded_growth(
        writes in prop::collection::vec((now_ms(), entry_op()), 1..24),
    ) {
        let mut store = KvStore::new();
        for (now_ms, op) in writes {
            apply_entry(&mut store, &KvWrite { now_ms, op }.encode());
        }
    }

    /// Arbitrary bytes, most after a valid version and clock so they reach the operations.
    #[test]
    fn arbitrary_entries_apply_without_panic_or_unbounded_growth(
        entries in prop::collection::vec((any::<bool>(), prop::collection::vec(any::<u8>(), 0..96)), 1..24),
    ) {
        let mut store = KvStore::new();
        for (with_header, body) in entries {
            let entry = if with_header { [&[1u8, 0x80, 0x01][..], &body].concat() } else { body };
            // A SETRANGE may legitimately build a value of up to the limit; leave those out.
            let large = KvWrite::decode(&entry).is_ok_and(|w| setrange_allowance(&w.op) > 1 << 20);
            if !large {
                apply_entry(&mut store, &entry);
            }
        }
    }
}

/// Defect 1 as one committed entry: KEYS with 100,000 star groups against a 100,000-byte key,
/// queued in MULTI, then SCAN MATCH with it.
#[test]
fn a_transaction_with_the_stack_overflowing_pattern_applies_at_once() {
    let mut store = KvStore::new();
    let key = vec![b'a'; 100_000];
    let pattern = b"*a".repeat(100_000);
    let set = WriteOp::Set {
        key,
        value: b"1".to_vec(),
        condition: SetCondition::Always,
        ttl: SetTtl::Clear,
        get: false,
    };
    let started = Instant::now();
    apply_entry(&mut store, &KvWrite { now_ms: 1, op: set }.encode());
    let steps = vec![
        TxnStep::Read(KvRead::Keys { pattern: pattern.clone() }),
        TxnStep::Read(KvRead::Scan { cursor: 0, pattern: Some(pattern), count: u64::MAX, type_name: None }),
    ];
    let reply = store.apply(&KvWrite { now_ms: 1, op: WriteOp::Transaction { steps, watched: Vec::new() } });
    let no_keys = Reply::Array(vec![Reply::Array(Vec::new()), Reply::Scan { cursor: 0, keys: Vec::new() }]);
    assert_eq!(reply, no_keys, "more than 1000 star groups match nothing, as in Redis");
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
}

/// A transaction's replies stop growing at the limit: later reads answer an error, later
/// writes still take effect.
#[test]
fn transaction_replies_are_bounded_and_writes_past_the_bound_still_apply() {
    let mut store = KvStore::new();
    let value = vec![b'v'; 1000];
    store.insert(b"big", &value[..], None);
    let get = TxnStep::Read(KvRead::Get { key: b"big".to_vec() });
    let mget = TxnStep::Read(KvRead::MGet { keys: vec![b"big".to_vec(); 100] });
    let keys = TxnStep::Read(KvRead::Keys { pattern: b"*".to_vec() });
    let incr = TxnStep::Write(WriteOp::IncrBy { key: b"n".to_vec(), delta: 1 });
    let steps = vec![get.clone(), get.clone(), mget, get, incr, keys];
    let element = reply::REPLY_ELEMENT_BYTES;
    // Room for the two first GETs and the INCR's reply, not for a third GET or the MGET.
    let limit = 2 * (element + 1000) + 2 * element + 500;
    let Reply::Array(replies) = store.apply_steps(&steps, 1, limit) else { panic!("not an array") };
    let too_large = Reply::Error(KvError::TxnReplyTooLarge);
    assert_eq!(replies[0], Reply::Bulk(value.clone()));
    assert_eq!(replies[1], Reply::Bulk(value));
    assert_eq!(replies[2], too_large);
    assert_eq!(replies[3], too_large);
    assert_eq!(replies[4], Reply::Integer(1), "a write's small reply still fits");
    assert!(matches!(&replies[5], Reply::Array(keys) if keys.len() == 2), "{:?}", replies[5]);
    assert_eq!(store.read(&KvRead::Get { key: b"n".to_vec() }, 1), Reply::Bulk(b"1".to_vec()));
    assert_eq!(KvError::TxnReplyTooLarge.message(), "ERR transaction reply exceeds maximum allowed size");
}

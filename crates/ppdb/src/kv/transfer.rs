//! Whole values moved between shards: how a cross-shard transaction runs a command whose keys
//! live in different shards (RENAME, COPY, SMOVE, LMOVE, the *STORE commands).
//!
//! Such a command runs on the shard of the key it writes (its destination), as the command
//! itself, with the values of its keys held by other shards imported into it:
//! [`WriteOp::Imported`]. Each source shard first answers its key's whole value, typed, with
//! its expiry and memcached flags ([`WriteOp::Export`], a reply of [`encode_value`]'s bytes),
//! and applies there what the command does to the source (RENAME deletes it, SMOVE removes the
//! member, LMOVE pops the element). The transaction layer (`crate::txn`) prepares the sources
//! first, under their locks, and builds the destination's step from their replies, so every
//! key is read and written at one moment of the transaction.
//!
//! What a source does may depend on the destination (RENAMENX moves nothing when the new name
//! exists, SMOVE nothing when the destination is not a set). The source's effect is then a
//! guess, which the destination checks ([`Expect`]): the destination's step answers
//! [`MISGUESSED`] when the command's outcome there contradicts the guess, the participant
//! refuses the transaction, and the server tries again with the other guess. A pop from the
//! first non-empty of several keys (LMPOP, ZMPOP) runs the same way on a guessed shard, its
//! earlier keys imported: there the step checks that it changed no imported key
//! ([`Expect::ImportsKept`]) and, unless it saw the last keys, that it found something
//! ([`Expect::FoundHere`]).
//!
//! A read combining several keys' values (SUNION, ZINTER, ...) writes nothing: its keys' shards
//! export their values and the coordinating node computes the reply from them
//! ([`read_exported`]).
//!
//! # Encoding of a value (version 1)
//!
//! `version:u8 has_expiry:u8 [expire_at_ms:varint] flags:varint type:u8 body`, the body as a
//! snapshot's value (`kv::snapshot`): a string's bytes; a collection's element count and its
//! elements (a sorted set's scores as 8 little-endian bytes). Decoding is bounded as every
//! entry's is: lengths are checked against [`crate::limits::STORED_VALUE_BYTES_MAX`] and the
//! input that remains, counts against the input, and an empty collection or NaN score is an
//! error.

use super::codec::{put_bytes, put_varint, KvDecodeError, Reader};
use super::command::{KvRead, WriteOp};
use super::reply::Reply;
use super::state_machine::{KvStore, Value};
use super::types::{Collection, Data, HashValue, ListValue, SetValue, SortedSetValue};

/// The code that starts [`MISGUESSED`], and a participant's refusal of a part holding such a
/// step (followed by the steps' indexes).
pub const MISGUESS_CODE: &str = "TXNGUESS";
/// The error text a destination's step answers when the guess it was built on was wrong.
pub const MISGUESSED: &str = "TXNGUESS the source's effect contradicts the destination";

const VALUE_VERSION: u8 = 1;
const TYPE_STRING: u8 = 0;
const TYPE_HASH: u8 = 1;
const TYPE_LIST: u8 = 2;
const TYPE_SET: u8 = 3;
const TYPE_SORTED_SET: u8 = 4;
const ELEMENT_BYTES_MAX: u64 = crate::limits::STORED_VALUE_BYTES_MAX as u64;

/// What a source's effect assumed of the command's outcome at the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Nothing: the source's effect does not depend on it (RENAME, COPY, *STORE).
    Any,
    /// The command moved something (RENAMENX answering 1, SMOVE 1, LMOVE an element).
    Moved,
    /// The command moved nothing (any other reply, errors included).
    Kept,
    /// The command left every imported key as it came: what it changed lives on this shard
    /// (LMPOP, ZMPOP on their last keys: the first non-empty key was guessed to be here, or
    /// none to be anywhere).
    ImportsKept,
    /// As [`Expect::ImportsKept`], and the command found something (a reply other than nil:
    /// LMPOP, ZMPOP on the first of their keys, which is where it must find it).
    FoundHere,
}

impl Expect {
    /// The tag it is logged as.
    pub(crate) fn tag(self) -> u8 {
        match self {
            Expect::Any => 0,
            Expect::Moved => 1,
            Expect::Kept => 2,
            Expect::ImportsKept => 3,
            Expect::FoundHere => 4,
        }
    }

    /// The expectation logged as `tag`.
    pub(crate) fn from_tag(tag: u8) -> Option<Expect> {
        match tag {
            0 => Some(Expect::Any),
            1 => Some(Expect::Moved),
            2 => Some(Expect::Kept),
            3 => Some(Expect::ImportsKept),
            4 => Some(Expect::FoundHere),
            _ => None,
        }
    }

    /// Whether `reply`, the command's reply at the destination, agrees with the expectation
    /// (that imports were kept is checked on the values, by the IMPORTED step itself).
    pub fn holds(self, reply: &Reply) -> bool {
        let moved = matches!(reply, Reply::Integer(1) | Reply::Bulk(_));
        match self {
            Expect::Any | Expect::ImportsKept => true,
            Expect::FoundHere => !matches!(reply, Reply::Nil | Reply::NilArray),
            Expect::Moved => moved,
            Expect::Kept => !moved,
        }
    }
}

/// A key's value as a source exports it (format in the module docs).
pub fn encode_value(value: &Value) -> Vec<u8> {
    let mut out = vec![VALUE_VERSION];
    match value.expire_at_ms {
        Some(at) => {
            out.push(1);
            put_varint(&mut out, at);
        }
        None => out.push(0),
    }
    put_varint(&mut out, u64::from(value.flags));
    match &value.data {
        Data::String(bytes) => {
            out.push(TYPE_STRING);
            put_bytes(&mut out, bytes);
        }
        Data::Hash(hash) => {
            out.push(TYPE_HASH);
            put_varint(&mut out, hash.len() as u64);
            for (field, value) in hash.iter() {
                put_bytes(&mut out, field);
                put_bytes(&mut out, value);
            }
        }
        Data::List(list) => {
            out.push(TYPE_LIST);
            put_varint(&mut out, list.len() as u64);
            list.iter().for_each(|item| put_bytes(&mut out, item));
        }
        Data::Set(set) => {
            out.push(TYPE_SET);
            put_varint(&mut out, set.len() as u64);
            set.iter().for_each(|member| put_bytes(&mut out, member));
        }
        Data::SortedSet(zset) => {
            out.push(TYPE_SORTED_SET);
            put_varint(&mut out, zset.len() as u64);
            for (member, score) in zset.iter() {
                put_bytes(&mut out, member);
                out.extend_from_slice(&score.to_bits().to_le_bytes());
            }
        }
    }
    out
}

/// Reads back what [`encode_value`] wrote, as a value of version 0 (the destination's write
/// gives it its own); never panics, bounded allocation.
pub fn decode_value(bytes: &[u8]) -> Result<Value, KvDecodeError> {
    let mut reader = Reader::new(bytes);
    let offset = reader.offset();
    if reader.u8("transfer version")? != VALUE_VERSION {
        return Err(KvDecodeError::Invalid { field: "transfer version", offset });
    }
    let expire_at_ms = match reader.flag("transfer expiry flag")? {
        true => Some(reader.varint("transfer expiry")?),
        false => None,
    };
    let flags_offset = reader.offset();
    let flags = u32::try_from(reader.varint("transfer flags")?)
        .map_err(|_| KvDecodeError::Invalid { field: "transfer flags", offset: flags_offset })?;
    let data = decode_data(&mut reader)?;
    reader.finish()?;
    Ok(Value { data, expire_at_ms, version: 0, flags })
}

fn decode_data(reader: &mut Reader<'_>) -> Result<Data, KvDecodeError> {
    let offset = reader.offset();
    let element = |reader: &mut Reader<'_>| reader.bytes("transfer element", ELEMENT_BYTES_MAX);
    // Every element takes at least one byte: a count beyond the input is corrupt.
    let count = |reader: &mut Reader<'_>| {
        let max = reader.remaining() as u64;
        reader.count("transfer element count", max)
    };
    let data = match reader.u8("transfer type")? {
        TYPE_STRING => return Ok(Data::String(element(reader)?.into())),
        TYPE_HASH => {
            let mut hash = HashValue::default();
            for _ in 0..count(reader)? {
                let field = element(reader)?;
                hash.insert(&field, &element(reader)?);
            }
            hash.into_data()
        }
        TYPE_LIST => {
            let mut list = ListValue::default();
            for _ in 0..count(reader)? {
                list.push_back(&element(reader)?);
            }
            list.into_data()
        }
        TYPE_SET => {
            let mut set = SetValue::default();
            for _ in 0..count(reader)? {
                set.insert(&element(reader)?);
            }
            set.into_data()
        }
        TYPE_SORTED_SET => {
            let mut zset = SortedSetValue::default();
            for _ in 0..count(reader)? {
                let member = element(reader)?;
                let score_offset = reader.offset();
                let score = f64::from_bits(reader.u64_le("transfer score")?);
                if score.is_nan() {
                    return Err(KvDecodeError::Invalid { field: "transfer score", offset: score_offset });
                }
                zset.insert(&member, score);
            }
            zset.into_data()
        }
        tag => return Err(KvDecodeError::InvalidTag { field: "transfer type", tag, offset }),
    };
    if data.bytes() == 0 {
        return Err(KvDecodeError::Invalid { field: "transfer collection (empty)", offset });
    }
    Ok(data)
}

impl KvStore {
    /// EXPORT: `key`'s whole value as [`encode_value`] writes it (nil when absent), then
    /// `then` applied to it (its reply dropped), which may touch `key` alone.
    pub(super) fn export(&mut self, key: &[u8], then: Option<&WriteOp>, now: u64) -> Reply {
        if then.is_some_and(|op| op.keys() != [key]) {
            return Reply::ErrorText("ERR an export's effect touches another key".into());
        }
        let reply = match self.entries.get(key) {
            Some(value) => Reply::Bulk(encode_value(value)),
            None => Reply::Nil,
        };
        if let Some(op) = then {
            self.apply_op(op, now);
        }
        reply
    }

    /// IMPORTED: runs `op` as if each imported key held the value given (exported by its
    /// shard; none for an absent key), changing only `op`'s other keys; the imported keys
    /// stay as they were here. [`MISGUESSED`], and nothing changed, if the reply contradicts
    /// `expect`.
    pub(super) fn run_imported(
        &mut self,
        imports: &[(Vec<u8>, Option<Vec<u8>>)],
        op: &WriteOp,
        expect: Expect,
        now: u64,
    ) -> Reply {
        let local: Vec<&[u8]> =
            op.keys().into_iter().filter(|key| imports.iter().all(|(imported, _)| imported != key)).collect();
        let mut scratch = self.scratch(local.iter().copied());
        scratch.begin_entry(self.write_version, now);
        let mut placed = Vec::with_capacity(imports.len());
        for (key, value) in imports {
            let value = match value.as_deref().map(decode_value).transpose() {
                Ok(value) => value,
                Err(error) => return Reply::ErrorText(format!("ERR an imported value is corrupt: {error}")),
            };
            if matches!(expect, Expect::ImportsKept | Expect::FoundHere) {
                placed.push((key, value.clone()));
            }
            scratch.place(key, value);
        }
        let reply = scratch.apply_op(op, now);
        let changed_an_import =
            placed.iter().any(|(key, value)| scratch.entries.get(key.as_slice()) != value.as_ref());
        if !expect.holds(&reply) || changed_an_import {
            return Reply::ErrorText(MISGUESSED.into());
        }
        for key in local {
            self.place(key, scratch.entries.get(key).cloned());
        }
        reply
    }
}

/// A multi-key read (SUNION, ZINTER, ...) answered from its keys' values as their shards
/// exported them ([`encode_value`]; none for an absent key), away from any shard: the values
/// are placed in an empty key space and the read runs there, so its reply and errors are the
/// key space's own. Each export was live at its shard's time, so expiries are dropped.
pub fn read_exported(read: &KvRead, values: &[(Vec<u8>, Option<Vec<u8>>)]) -> Reply {
    let mut store = KvStore::new();
    for (key, value) in values {
        match value.as_deref().map(decode_value).transpose() {
            Ok(value) => store.place(key, value.map(|value| Value { expire_at_ms: None, ..value })),
            Err(error) => return Reply::ErrorText(format!("ERR an exported value is corrupt: {error}")),
        }
    }
    store.read(read, store.time_ms())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::{KvRead, KvWrite, SetCondition, SetTtl};
    use proptest::prelude::*;

    fn store_with(ops: Vec<WriteOp>) -> KvStore {
        let mut store = KvStore::new();
        for op in ops {
            store.apply(&KvWrite { now_ms: 1_000, op });
        }
        store
    }

    fn set(key: &str, value: &str, ttl: SetTtl) -> WriteOp {
        WriteOp::Set {
            key: key.into(),
            value: value.into(),
            condition: SetCondition::Always,
            ttl,
            get: false,
        }
    }

    #[test]
    fn every_type_round_trips_with_its_expiry_and_flags() {
        use crate::kv::types::{CollectionWrite, SetWrite};
        let store = store_with(vec![
            set("s", "v", SetTtl::At(5_000)),
            WriteOp::Collection(CollectionWrite::Set(SetWrite::Add {
                key: b"set".to_vec(),
                members: vec![b"a".to_vec(), b"b".to_vec()],
            })),
        ]);
        for key in [&b"s"[..], b"set"] {
            let mut value = store.value(key).cloned().expect("stored");
            value.flags = 7;
            let decoded = decode_value(&encode_value(&value)).expect("decodes");
            assert_eq!(decoded, Value { version: 0, ..value });
        }
    }

    #[test]
    fn an_imported_rename_writes_only_the_destination_and_a_wrong_guess_writes_nothing() {
        let source = store_with(vec![set("a", "1", SetTtl::At(9_000))]);
        let exported = encode_value(source.value(b"a").expect("stored"));
        let mut dest = store_with(vec![set("b", "old", SetTtl::Clear)]);
        let rename = |if_new| WriteOp::Rename { from: b"a".to_vec(), to: b"b".to_vec(), if_new };
        let imports = vec![(b"a".to_vec(), Some(exported))];
        let wrong = dest.run_imported(&imports, &rename(true), Expect::Moved, 1_000);
        assert_eq!(wrong, Reply::ErrorText(MISGUESSED.into()));
        assert_eq!(dest.read(&KvRead::Get { key: b"b".to_vec() }, 1_000), Reply::Bulk(b"old".to_vec()));
        assert_eq!(dest.run_imported(&imports, &rename(true), Expect::Kept, 1_000), Reply::Integer(0));
        assert_eq!(dest.run_imported(&imports, &rename(false), Expect::Any, 1_000), Reply::Ok);
        assert_eq!(dest.read(&KvRead::Get { key: b"b".to_vec() }, 1_000), Reply::Bulk(b"1".to_vec()));
        assert_eq!(dest.read(&KvRead::PTtl { key: b"b".to_vec() }, 1_000), Reply::Integer(8_000));
        assert_eq!(dest.value(b"a"), None, "the imported key is not left here");
        let missing = dest.run_imported(&[(b"a".to_vec(), None)], &rename(false), Expect::Any, 1_000);
        assert_eq!(missing, Reply::Error(crate::kv::KvError::NoSuchKey));
        dest.check_indexes();
    }

    #[test]
    fn an_export_answers_the_value_before_its_effect() {
        let mut source = store_with(vec![set("a", "1", SetTtl::Clear)]);
        let reply = source.export(b"a", Some(&WriteOp::Del { keys: vec![b"a".to_vec()] }), 1_000);
        assert!(matches!(reply, Reply::Bulk(_)), "{reply:?}");
        assert_eq!(source.value(b"a"), None);
        assert_eq!(source.export(b"a", None, 1_000), Reply::Nil);
        let other = source.export(b"a", Some(&WriteOp::Del { keys: vec![b"x".to_vec()] }), 1_000);
        assert!(matches!(other, Reply::ErrorText(_)));
    }

    fn rpush(key: &str, items: &[&str]) -> WriteOp {
        use crate::kv::types::list::Side;
        use crate::kv::types::ListWrite;
        WriteOp::Collection(crate::kv::CollectionWrite::List(ListWrite::Push {
            key: key.into(),
            elements: items.iter().map(|item| item.as_bytes().to_vec()).collect(),
            side: Side::Right,
            existing_only: false,
        }))
    }

    fn lmpop(keys: &[&str]) -> WriteOp {
        use crate::kv::types::{End, ListPop, ListWrite};
        WriteOp::Collection(crate::kv::CollectionWrite::List(ListWrite::Pop(ListPop::First {
            keys: keys.iter().map(|key| key.as_bytes().to_vec()).collect(),
            end: End::Head,
            count: Some(1),
        })))
    }

    #[test]
    fn a_pop_that_would_change_an_imported_key_or_find_nothing_here_is_misguessed() {
        let source = store_with(vec![rpush("a", &["x"])]);
        let exported = encode_value(source.value(b"a").expect("stored"));
        let mut home = store_with(vec![rpush("b", &["y"])]);
        let imports = vec![(b"a".to_vec(), Some(exported))];
        let before = home.value(b"b").cloned();
        let wrong = home.run_imported(&imports, &lmpop(&["a", "b"]), Expect::ImportsKept, 1_000);
        assert_eq!(wrong, Reply::ErrorText(MISGUESSED.into()), "a's shard must pop it");
        assert_eq!(home.value(b"b").cloned(), before, "nothing changed");
        let absent = vec![(b"a".to_vec(), None)];
        let found = home.run_imported(&absent, &lmpop(&["a", "b"]), Expect::FoundHere, 1_000);
        assert!(matches!(found, Reply::Array(_)), "{found:?}");
        assert_eq!(home.value(b"b"), None, "b popped empty");
        let nothing = home.run_imported(&absent, &lmpop(&["a", "b"]), Expect::FoundHere, 1_000);
        assert_eq!(nothing, Reply::ErrorText(MISGUESSED.into()), "a later key may hold one");
        assert_eq!(
            home.run_imported(&absent, &lmpop(&["a", "b"]), Expect::ImportsKept, 1_000),
            Reply::NilArray
        );
        home.check_indexes();
    }

    #[test]
    fn a_read_over_exported_values_answers_as_the_key_space() {
        use crate::kv::types::set::SetAlgebra;
        use crate::kv::types::{CollectionRead, SetRead};
        let store = store_with(vec![
            rpush("l", &["x"]),
            WriteOp::Collection(crate::kv::CollectionWrite::Set(crate::kv::types::SetWrite::Add {
                key: b"s".to_vec(),
                members: vec![b"m".to_vec()],
            })),
        ]);
        let export = |key: &[u8]| (key.to_vec(), store.value(key).map(encode_value));
        let union = |keys: &[&[u8]]| {
            let keys = keys.iter().map(|key| key.to_vec()).collect();
            KvRead::Collection(CollectionRead::Set(SetRead::Combine { algebra: SetAlgebra::Union, keys }))
        };
        let reply = read_exported(&union(&[b"s", b"none"]), &[export(b"s"), export(b"none")]);
        assert_eq!(reply, store.read(&union(&[b"s", b"none"]), 1_000));
        let wrong = read_exported(&union(&[b"s", b"l"]), &[export(b"s"), export(b"l")]);
        assert_eq!(wrong, Reply::Error(crate::kv::KvError::WrongType));
        let corrupt = read_exported(&union(&[b"s"]), &[(b"s".to_vec(), Some(vec![9]))]);
        assert!(matches!(corrupt, Reply::ErrorText(_)), "{corrupt:?}");
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(input in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_value(&input);
        }
    }
}

//! A Lua script's call as one log entry: [`ScriptCall`], the data of [`WriteOp::Script`].
//!
//! The key space only carries the call: the script's body (the source, not only its SHA1, so
//! every replica can run it, after a restart too), its KEYS and ARGV, and the shard the client
//! routed it to. Running it is the shard's job (`server::script`): this layer knows nothing of
//! Lua, and applying [`WriteOp::Script`] here alone answers an error.
//!
//! # Encoding (inside an entry, operation tag 24)
//!
//! `flags:u8` (bit 0: read-only, EVAL_RO; bit 1: keys routed by hash slots, clear in entries
//! written before hash slots existed, which were routed by crc32c), `shard:varint shards:varint`, `body:bytes` (at most
//! [`SCRIPT_BODY_BYTES_MAX`]), `count:varint` and the keys, `count:varint` and the arguments
//! (each count at most [`SCRIPT_ARGS_MAX`]).
//!
//! [`WriteOp::Script`]: super::WriteOp::Script

use super::codec::{put_bytes, put_varint, KvDecodeError, Reader};

/// The largest script body accepted (EVAL, SCRIPT LOAD), in bytes.
pub const SCRIPT_BODY_BYTES_MAX: u64 = 4 * 1024 * 1024;

/// The most KEYS, and the most ARGV, one script call carries.
pub const SCRIPT_ARGS_MAX: u64 = crate::limits::REQUEST_KEYS_MAX as u64;

/// One run of a script on one shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptCall {
    /// The Lua source.
    pub body: Vec<u8>,
    /// KEYS: the keys the script declares, all on `shard`.
    pub keys: Vec<Vec<u8>>,
    /// ARGV.
    pub args: Vec<Vec<u8>>,
    /// EVAL_RO and EVALSHA_RO: every write the script tries is refused.
    pub read_only: bool,
    /// The shard the call runs on (1-based), and how many the cluster has: a key the script
    /// touches must belong to it.
    pub shard: u64,
    /// The cluster's shard count when the call was routed.
    pub shards: u64,
    /// Whether the cluster routes keys by hash slots (else by crc32c modulo `shards`).
    pub hash_slots: bool,
}

const FLAG_READ_ONLY: u8 = 1;
const FLAG_HASH_SLOTS: u8 = 2;

impl ScriptCall {
    /// Appends the call's fields (after its operation tag).
    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        let read_only = if self.read_only { FLAG_READ_ONLY } else { 0 };
        out.push(read_only | if self.hash_slots { FLAG_HASH_SLOTS } else { 0 });
        put_varint(out, self.shard);
        put_varint(out, self.shards);
        put_bytes(out, &self.body);
        for list in [&self.keys, &self.args] {
            put_varint(out, list.len() as u64);
            for item in list {
                put_bytes(out, item);
            }
        }
    }

    /// Reads back what [`ScriptCall::encode`] wrote; bounded, never panics.
    pub(super) fn decode(reader: &mut Reader<'_>) -> Result<ScriptCall, KvDecodeError> {
        let offset = reader.offset();
        let flags = reader.u8("script flags")?;
        if flags & !(FLAG_READ_ONLY | FLAG_HASH_SLOTS) != 0 {
            return Err(KvDecodeError::InvalidTag { field: "script flags", tag: flags, offset });
        }
        let shard = reader.varint("script shard")?;
        let shards = reader.varint("script shard count")?;
        let body = reader.bytes("script body", SCRIPT_BODY_BYTES_MAX)?;
        let keys = list(reader, "script key count")?;
        let args = list(reader, "script argument count")?;
        Ok(ScriptCall {
            body,
            keys,
            args,
            read_only: flags & FLAG_READ_ONLY != 0,
            shard,
            shards,
            hash_slots: flags & FLAG_HASH_SLOTS != 0,
        })
    }

    /// Bytes the encoded call takes, about.
    pub(super) fn encoded_len_hint(&self) -> usize {
        let items = self.keys.iter().chain(&self.args).map(|item| item.len() + 2).sum::<usize>();
        self.body.len() + items + 16
    }
}

fn list(reader: &mut Reader<'_>, field: &'static str) -> Result<Vec<Vec<u8>>, KvDecodeError> {
    let count = reader.count(field, SCRIPT_ARGS_MAX)?;
    // Each item takes at least one byte: never reserve more than the input can hold.
    let mut items = Vec::with_capacity((count as usize).min(reader.remaining()));
    for _ in 0..count {
        items.push(reader.bytes("script argument", crate::limits::STORED_VALUE_BYTES_MAX as u64)?);
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use crate::kv::{KvWrite, WriteOp};

    use super::*;

    fn call() -> impl Strategy<Value = ScriptCall> {
        let items = prop::collection::vec(prop::collection::vec(any::<u8>(), 0..8), 0..4);
        let flags = (any::<bool>(), any::<bool>());
        (prop::collection::vec(any::<u8>(), 0..64), items.clone(), items, flags, 1..9u64, 1..9u64).prop_map(
            |(body, keys, args, (read_only, hash_slots), shard, shards)| ScriptCall {
                body,
                keys,
                args,
                read_only,
                shard,
                shards,
                hash_slots,
            },
        )
    }

    proptest! {
        #[test]
        fn a_script_entry_decodes_to_itself_and_every_truncation_is_an_error(call in call()) {
            let write = KvWrite { now_ms: 7, op: WriteOp::Script(call) };
            let encoded = write.encode();
            prop_assert_eq!(KvWrite::decode(&encoded), Ok(write));
            for end in 0..encoded.len() {
                prop_assert!(KvWrite::decode(&encoded[..end]).is_err());
            }
        }
    }

    #[test]
    fn a_script_is_no_step_of_a_transaction() {
        let nested = WriteOp::Transaction {
            steps: vec![crate::kv::TxnStep::Write(WriteOp::Script(ScriptCall {
                body: b"return 1".to_vec(),
                keys: Vec::new(),
                args: Vec::new(),
                read_only: false,
                shard: 1,
                shards: 1,
                hash_slots: true,
            }))],
            watched: Vec::new(),
        };
        assert!(KvWrite::decode(&KvWrite::unstamped(nested).encode()).is_err());
    }
}

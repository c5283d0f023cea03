//! A Lua script's call as one log entry: [`ScriptCall`], the data of [`WriteOp::Script`].
//!
//! The key space only carries the call: the script's body (the source, not only its SHA1, so
//! every replica can run it, after a restart too) or, for FCALL, the function library's source
//! and the function's name, its KEYS and ARGV, the shard the client routed it to, and the ACL
//! permissions of the calling user when they are restricted. Running it is the shard's job
//! (`server::script`): this layer knows nothing of Lua or ACL rules, and applying
//! [`WriteOp::Script`] here alone answers an error.
//!
//! # Encoding (inside an entry, operation tag 24)
//!
//! `flags:u8` (bit 0: read-only, EVAL_RO; bit 1: a function call; bit 2: restricted access;
//! bit 3: keys routed by hash slots, clear in entries written before hash slots existed, which
//! were routed by crc32c), `shard:varint shards:varint`, `body:bytes` (at most
//! [`SCRIPT_BODY_BYTES_MAX`]), with bit 1 `function:bytes` (at most [`FUNCTION_NAME_BYTES_MAX`]),
//! with bit 2 `user:bytes` and `count:varint` ACL rules as bytes (at most [`ACCESS_RULES_MAX`]
//! of [`ACCESS_RULE_BYTES_MAX`]), then `count:varint` and the keys, `count:varint` and the
//! arguments (each count at most [`SCRIPT_ARGS_MAX`]).
//!
//! [`WriteOp::Script`]: super::WriteOp::Script

use super::codec::{put_bytes, put_varint, KvDecodeError, Reader};

/// The largest script body accepted (EVAL, SCRIPT LOAD), in bytes.
pub const SCRIPT_BODY_BYTES_MAX: u64 = 4 * 1024 * 1024;

/// The most KEYS, and the most ARGV, one script call carries.
pub const SCRIPT_ARGS_MAX: u64 = crate::limits::REQUEST_KEYS_MAX as u64;

/// The longest function name an FCALL entry carries, in bytes.
pub const FUNCTION_NAME_BYTES_MAX: u64 = 256;

/// The most ACL rules a restricted call carries (a user's canonical rules).
pub const ACCESS_RULES_MAX: u64 = 4 * 1024 + 16;

/// The longest ACL rule or user name a call carries, in bytes.
pub const ACCESS_RULE_BYTES_MAX: u64 = 4096;

/// The permissions of the user a script runs for, when they are restricted: what the
/// script's commands are checked against on every replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptAccess {
    /// The user's name.
    pub user: Vec<u8>,
    /// The user's rules, canonical (as ACL LIST shows them): they rebuild the user.
    pub rules: Vec<Vec<u8>>,
}

/// One run of a script on one shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptCall {
    /// The Lua source: the script, or the function's library.
    pub body: Vec<u8>,
    /// FCALL: the name of the function `body` registers that is called.
    pub function: Option<Vec<u8>>,
    /// The calling user's permissions, when restricted; `None` lets the script use every
    /// command and key.
    pub access: Option<ScriptAccess>,
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
const FLAG_FUNCTION: u8 = 2;
const FLAG_ACCESS: u8 = 4;
const FLAG_HASH_SLOTS: u8 = 8;

impl ScriptCall {
    /// Appends the call's fields (after its operation tag).
    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        let mut flags = if self.read_only { FLAG_READ_ONLY } else { 0 };
        if self.function.is_some() {
            flags |= FLAG_FUNCTION;
        }
        if self.access.is_some() {
            flags |= FLAG_ACCESS;
        }
        if self.hash_slots {
            flags |= FLAG_HASH_SLOTS;
        }
        out.push(flags);
        put_varint(out, self.shard);
        put_varint(out, self.shards);
        put_bytes(out, &self.body);
        if let Some(function) = &self.function {
            put_bytes(out, function);
        }
        if let Some(access) = &self.access {
            put_bytes(out, &access.user);
            put_varint(out, access.rules.len() as u64);
            for rule in &access.rules {
                put_bytes(out, rule);
            }
        }
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
        if flags & !(FLAG_READ_ONLY | FLAG_FUNCTION | FLAG_ACCESS | FLAG_HASH_SLOTS) != 0 {
            return Err(KvDecodeError::InvalidTag { field: "script flags", tag: flags, offset });
        }
        let shard = reader.varint("script shard")?;
        let shards = reader.varint("script shard count")?;
        let body = reader.bytes("script body", SCRIPT_BODY_BYTES_MAX)?;
        let function = match flags & FLAG_FUNCTION {
            0 => None,
            _ => Some(reader.bytes("function name", FUNCTION_NAME_BYTES_MAX)?),
        };
        let access = match flags & FLAG_ACCESS {
            0 => None,
            _ => {
                let user = reader.bytes("script user", ACCESS_RULE_BYTES_MAX)?;
                let count = reader.count("script ACL rule count", ACCESS_RULES_MAX)?;
                let mut rules = Vec::with_capacity((count as usize).min(reader.remaining()));
                for _ in 0..count {
                    rules.push(reader.bytes("script ACL rule", ACCESS_RULE_BYTES_MAX)?);
                }
                Some(ScriptAccess { user, rules })
            }
        };
        let keys = list(reader, "script key count")?;
        let args = list(reader, "script argument count")?;
        let read_only = flags & FLAG_READ_ONLY != 0;
        let hash_slots = flags & FLAG_HASH_SLOTS != 0;
        Ok(ScriptCall { body, function, access, keys, args, read_only, shard, shards, hash_slots })
    }

    /// Bytes the encoded call takes, about.
    pub(super) fn encoded_len_hint(&self) -> usize {
        let items = self.keys.iter().chain(&self.args).map(|item| item.len() + 2).sum::<usize>();
        let function = self.function.as_ref().map_or(0, |name| name.len() + 2);
        let access = self.access.as_ref().map_or(0, |access| {
            access.user.len() + access.rules.iter().map(|rule| rule.len() + 2).sum::<usize>() + 4
        });
        self.body.len() + items + function + access + 16
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
        let function = prop::option::of(prop::collection::vec(any::<u8>(), 0..8));
        let access = prop::option::of((prop::collection::vec(any::<u8>(), 0..8), items.clone()))
            .prop_map(|access| access.map(|(user, rules)| ScriptAccess { user, rules }));
        let body = prop::collection::vec(any::<u8>(), 0..64);
        ((body, function, access), items.clone(), items, (any::<bool>(), any::<bool>()), 1..9u64, 1..9u64)
            .prop_map(|((body, function, access), keys, args, (read_only, hash_slots), shard, shards)| {
                ScriptCall { body, function, access, keys, args, read_only, shard, shards, hash_slots }
            })
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
                function: None,
                access: None,
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

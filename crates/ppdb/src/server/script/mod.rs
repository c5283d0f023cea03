//! Lua scripting: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT, with Redis 7's Lua 5.1
//! environment (see docs/scripting.md).
//!
//! A script runs atomically as one entry of its shard's log ([`crate::kv::WriteOp::Script`],
//! carrying the body, KEYS and ARGV), deterministically on every replica: the shard's apply
//! step ([`super::shard`]) hands the entry to the shard's [`ScriptEngine`], whose `redis.call`
//! parses each command with the RESP server's parser and applies it to the key space at the
//! entry's time. Nothing a script can reach depends on the replica: TIME is the entry's time,
//! `math.random` is seeded from the entry's index, there is no `os`, `io` or clock, and a
//! deterministic instruction budget ([`SCRIPT_INSTRUCTIONS_MAX`]) stops an endless script at
//! the same instruction everywhere. A script that fails half way keeps its earlier writes, as
//! in Redis.
//!
//! The parts: [`engine`] (the Lua state, its sandbox and one run), [`call`] (`redis.call`),
//! [`convert`] (reply and Lua conversions), [`library`] (`redis.*`, `cjson`, `math.random`),
//! [`cache`] (the node's script cache for EVALSHA and SCRIPT) and [`eval`] (from a client's
//! EVAL to the entry, on the node the client reached).

pub mod cache;
pub mod call;
pub mod convert;
pub mod engine;
pub mod eval;
pub mod library;

pub use cache::ScriptCache;
pub use engine::{check_compiles, ScriptEngine, LUA_MEMORY_BYTES_MAX, SCRIPT_INSTRUCTIONS_MAX};

#[cfg(test)]
mod tests;

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
//! Functions (FCALL) run the same way: the entry carries the library's source and the
//! function's name; the shard loads the library in its Lua state and calls the function.
//!
//! The parts: [`engine`] (the Lua state, its sandbox and one run), [`call`] (`redis.call`),
//! [`access`] (ACL checks of a script's commands), [`convert`] (reply and Lua conversions),
//! [`library`] (`redis.*`, `cjson`, `math.random`), [`cache`] (the node's script cache for
//! EVALSHA and SCRIPT), [`eval`] (from a client's EVAL or FCALL to the entry, on the node the
//! client reached) and [`function`] (the FUNCTION command's answers).

pub mod access;
pub mod cache;
pub mod call;
pub mod convert;
pub mod engine;
pub mod eval;
pub mod function;
pub mod library;

pub use cache::ScriptCache;
pub use engine::{check_compiles, ScriptEngine, LUA_MEMORY_BYTES_MAX, SCRIPT_INSTRUCTIONS_MAX};

#[cfg(test)]
mod tests;

//! From a client's EVAL (or EVALSHA, EVAL_RO, EVALSHA_RO, FCALL, FCALL_RO) to the log entry
//! that runs it, on the node the client reached.
//!
//! The script's KEYS choose its shard, as a transaction's keys do: keys on several shards are
//! refused with the `CROSSSLOT` error MULTI/EXEC answers (PPDB does not run a script across
//! shards), and a script without keys runs on shard 1. EVALSHA finds the body in the node's
//! [`ScriptCache`]; EVAL caches its body there. FCALL finds the function in the cluster's
//! libraries. The entry carries the body itself (for FCALL, the library's source and the
//! function's name), and the calling user's permissions when they are restricted.

use super::cache::ScriptCache;
use crate::functions::Libraries;
use crate::kv::{KvWrite, ScriptAccess, ScriptCall, WriteOp};
use crate::node::{KeyRouting, Router};
use crate::server::resp::command::{EvalCommand, ScriptSource, TransactionError};
use crate::server::resp::Frame;

/// EVALSHA's answer for a digest the node's cache does not hold.
pub const NO_SCRIPT: &str = "NOSCRIPT No matching script. Please use EVAL.";

/// What a script call is resolved against on the node the client reached.
pub struct ScriptScope<'a> {
    /// The node's script cache (EVALSHA).
    pub cache: &'a ScriptCache,
    /// The cluster's function libraries, as this node applied them (FCALL).
    pub functions: &'a Libraries,
    /// How the cluster routes keys.
    pub router: Router,
    /// The calling user's permissions, when restricted.
    pub access: Option<ScriptAccess>,
}

/// The shard that runs `eval` and the entry to propose there, or the frame refusing it.
pub fn script_entry(scope: ScriptScope<'_>, eval: EvalCommand) -> Result<(u64, KvWrite), Frame> {
    let ScriptScope { cache, functions, router, access } = scope;
    let EvalCommand { source, keys, args, mut read_only } = eval;
    let mut function = None;
    let body = match source {
        ScriptSource::Body(body) => {
            cache.insert(body.clone());
            body.to_vec()
        }
        ScriptSource::Sha(sha) => cache.get(&sha).ok_or_else(|| Frame::error(NO_SCRIPT))?.to_vec(),
        ScriptSource::Function(name) => {
            let (library, info) =
                functions.function(&name).ok_or_else(|| Frame::error("ERR Function not found"))?;
            if read_only && !info.flags.no_writes() {
                return Err(Frame::error("ERR Can not execute a script with write flag using *_ro command."));
            }
            read_only |= info.flags.no_writes();
            function = Some(name.to_vec());
            library.source.clone()
        }
    };
    let mut touched: Vec<u64> = keys.iter().map(|key| router.shard_of(key).0).collect();
    touched.sort_unstable();
    touched.dedup();
    let shard = match touched[..] {
        [] => 1,
        [shard] => shard,
        _ => return Err(Frame::error(TransactionError::CrossShard { shards: touched }.to_string())),
    };
    let (shards, hash_slots) = (router.shard_count(), router.routing() == KeyRouting::HashSlots);
    let call = ScriptCall { body, function, access, keys, args, read_only, shard, shards, hash_slots };
    Ok((shard, KvWrite::unstamped(WriteOp::Script(call))))
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn eval(source: ScriptSource, keys: &[&str]) -> EvalCommand {
        let keys = keys.iter().map(|key| key.as_bytes().to_vec()).collect();
        EvalCommand { source, keys, args: Vec::new(), read_only: false }
    }

    fn script_entry(cache: &ScriptCache, router: Router, eval: EvalCommand) -> Result<(u64, KvWrite), Frame> {
        let functions = Libraries::default();
        super::script_entry(ScriptScope { cache, functions: &functions, router, access: None }, eval)
    }

    #[test]
    fn a_script_runs_on_the_shard_of_its_keys_and_evalsha_needs_the_body_cached() {
        let cache = ScriptCache::default();
        let shards = Router::new(KeyRouting::HashSlots, 8);
        let on = |shard| {
            (0..).map(|i| format!("k{i}")).find(|k| shards.shard_of(k.as_bytes()).0 == shard).unwrap()
        };
        let (a, b, c) = (on(3), format!("{{{}}}:b", on(3)), on(5));
        let body = ScriptSource::Body(Bytes::from_static(b"return 1"));
        let (shard, _) = script_entry(&cache, shards, eval(body.clone(), &[&a, &b])).unwrap();
        assert_eq!(shard, 3);
        assert_eq!(script_entry(&cache, shards, eval(body.clone(), &[])).unwrap().0, 1);
        let refused = script_entry(&cache, shards, eval(body, &[&a, &c])).unwrap_err();
        assert_eq!(refused, Frame::error(TransactionError::CrossShard { shards: vec![3, 5] }.to_string()));
        let by_sha = ScriptSource::Sha(Bytes::from_static(b"E0E1F9FABFC9D4800C877A703B823AC0578FF8DB"));
        let (_, entry) = script_entry(&cache, shards, eval(by_sha, &[&a])).expect("cached by EVAL");
        assert!(matches!(entry.op, WriteOp::Script(ScriptCall { ref body, .. }) if body == b"return 1"));
        let unknown = ScriptSource::Sha(Bytes::from_static(b"ffff"));
        assert_eq!(script_entry(&cache, shards, eval(unknown, &[])).unwrap_err(), Frame::error(NO_SCRIPT));
    }
}

//! Script apply benchmark (a measurement, not a test): what one replica spends applying the
//! entry of a small EVAL (`redis.call('INCR', KEYS[1]) redis.call('EXPIRE', KEYS[1], 100)`,
//! the workload of `ppdb bench --command eval`) against the entry of a SET of a 100-byte value,
//! through the shard's state machine (entry decoding, the Lua run, the key space) at 100,000
//! keys. Every replica applies every entry, so this cost counts once per replica; the rest of a
//! write's path (client, log, network) is the same for both and is measured by
//! `scripts/bench-eval.sh`.
//!
//! The two alternate for several rounds; each row shows the fastest round, which a machine
//! shared with other work disturbs least.
//!
//! Run: `cargo bench -p ppdb --bench script`. Environment: `PPDB_BENCH_ROUNDS` (default 7),
//! `PPDB_BENCH_OPS` (entries per round, default 200,000).

use std::hint::black_box;
use std::time::Instant;

use ppdb::kv::{KvWrite, ScriptCall, SetCondition, SetTtl, WriteOp};
use ppdb::node::state_machine::StateMachine;
use ppdb::server::shard::KvShard;
use ppdb_raft::LogIndex;

// The allocator the node runs with (`src/bin/ppdb.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const KEYS: u64 = 100_000;
const VALUE_BYTES: usize = 100;
const SCRIPT: &[u8] = b"redis.call('INCR', KEYS[1]) redis.call('EXPIRE', KEYS[1], 100)";

/// The i-th key, spread as the load generator's random keys are.
fn key(i: u64) -> Vec<u8> {
    format!("key:{:012}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % KEYS).into_bytes()
}

fn set(i: u64) -> Vec<u8> {
    let op = WriteOp::Set {
        key: key(i),
        value: vec![b'v'; VALUE_BYTES],
        condition: SetCondition::Always,
        ttl: SetTtl::Clear,
        get: false,
    };
    KvWrite { now_ms: 1_000, op }.encode()
}

fn eval(i: u64) -> Vec<u8> {
    let call = ScriptCall {
        body: SCRIPT.to_vec(),
        function: None,
        access: None,
        keys: vec![format!("counter:{:012}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % KEYS).into_bytes()],
        args: Vec::new(),
        read_only: false,
        shard: 1,
        shards: 1,
        hash_slots: true,
    };
    KvWrite { now_ms: 1_000, op: WriteOp::Script(call) }.encode()
}

/// Applies `entries` to `shard` from log index `*index` on; the nanoseconds per entry.
fn apply_all(shard: &mut KvShard, index: &mut u64, entries: &[Vec<u8>]) -> f64 {
    let start = Instant::now();
    for entry in entries {
        *index += 1;
        black_box(shard.apply(LogIndex(*index), entry).expect("applies"));
    }
    start.elapsed().as_secs_f64() * 1e9 / entries.len() as f64
}

fn main() {
    let env =
        |name: &str, default: u64| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let (rounds, ops) = (env("PPDB_BENCH_ROUNDS", 7), env("PPDB_BENCH_OPS", 200_000));
    let mut shard = KvShard::default();
    let mut index = 0;
    let sets: Vec<Vec<u8>> = (0..ops).map(|i| set(i.wrapping_mul(7919))).collect();
    let evals: Vec<Vec<u8>> = (0..ops).map(|i| eval(i.wrapping_mul(7919))).collect();
    // Every key exists before the first measured round, as after a benchmark's warm-up.
    let warm: Vec<Vec<u8>> = (0..KEYS).flat_map(|i| [set(i), eval(i)]).collect();
    apply_all(&mut shard, &mut index, &warm);
    let (mut best_set, mut best_eval) = (f64::MAX, f64::MAX);
    for round in 1..=rounds {
        let set_ns = apply_all(&mut shard, &mut index, &sets);
        let eval_ns = apply_all(&mut shard, &mut index, &evals);
        println!("round {round}: SET {set_ns:>6.0} ns/entry  EVAL {eval_ns:>6.0} ns/entry");
        best_set = best_set.min(set_ns);
        best_eval = best_eval.min(eval_ns);
    }
    println!("apply, fastest of {rounds} rounds of {ops} entries, {KEYS} keys:");
    println!("  SET  (100-byte value)  {best_set:>6.0} ns/entry");
    println!("  EVAL (INCR + EXPIRE)   {best_eval:>6.0} ns/entry  ({:.2} x SET)", best_eval / best_set);
}

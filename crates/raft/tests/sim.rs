//! The simulator sweep: many seeds, each a whole faulty run checked for Raft's safety
//! properties and for liveness once faults stop.
//!
//! - `cargo test -p ppdb-raft sim` runs the default sweep (1,000 seeds × 3,000 ticks).
//! - `PPDB_SIM_SEEDS=20000 PPDB_SIM_TICKS=3000 cargo test --release -p ppdb-raft sim` runs a
//!   longer sweep; `PPDB_SIM_FIRST_SEED` moves its start.
//! - `PPDB_SEED=<n> cargo test -p ppdb-raft sim` replays one seed exactly.

use ppdb_raft::sim::{self, SimFailure, SimReport};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

const DEFAULT_SEEDS: u64 = 1_000;
const DEFAULT_TICKS: u64 = 3_000;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Runs `run` over seeds `first..first + count` on every core; returns failures and reports.
fn sweep(
    first: u64,
    count: u64,
    run: impl Fn(u64) -> Result<SimReport, SimFailure> + Sync,
) -> (Vec<SimFailure>, Vec<SimReport>) {
    let next = AtomicU64::new(first);
    let failures = Mutex::new(Vec::new());
    let reports = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= first + count {
                    break;
                }
                match run(seed) {
                    Ok(report) => reports.lock().unwrap_or_else(|e| e.into_inner()).push(report),
                    Err(failure) => failures.lock().unwrap_or_else(|e| e.into_inner()).push(failure),
                }
            });
        }
    });
    let mut failures = failures.into_inner().unwrap_or_else(|e| e.into_inner());
    failures.sort_by_key(|f| f.seed);
    (failures, reports.into_inner().unwrap_or_else(|e| e.into_inner()))
}

#[test]
fn sim_sweep_keeps_raft_safe_and_live() {
    let ticks = env_u64("PPDB_SIM_TICKS").unwrap_or(DEFAULT_TICKS);
    if let Some(seed) = env_u64("PPDB_SEED") {
        // A replay shows the protocol's own log lines (RUST_LOG=debug for more).
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        match sim::run(seed, ticks) {
            Ok(report) => println!("seed {seed} passed: {report:?}"),
            Err(failure) => panic!("{failure}"),
        }
        return;
    }
    let first = env_u64("PPDB_SIM_FIRST_SEED").unwrap_or(0);
    let count = env_u64("PPDB_SIM_SEEDS").unwrap_or(DEFAULT_SEEDS);
    let (failures, reports) = sweep(first, count, |seed| sim::run(seed, ticks));
    let acknowledged: usize = reports.iter().map(|r| r.acknowledged).sum();
    let reads: u64 = reports.iter().map(|r| r.reads).sum();
    let crashes: u64 = reports.iter().map(|r| r.crashes).sum();
    let worst_liveness = reports.iter().map(|r| r.liveness_ticks).max().unwrap_or(0);
    println!(
        "{count} seeds × {ticks} ticks: {} failed; {acknowledged} commands acknowledged, {reads} reads, \
         {crashes} crashes, slowest recovery {worst_liveness} ticks",
        failures.len()
    );
    for failure in failures.iter().take(10) {
        eprintln!("{failure}");
    }
    assert!(failures.is_empty(), "{} of {count} seeds failed; first: {}", failures.len(), failures[0]);
    assert!(acknowledged > 0 && reads > 0, "the sweep must actually exercise writes and reads");
}

#[test]
fn sim_same_seed_same_trace() {
    let a = sim::run(7, 1_000).unwrap_or_else(|f| panic!("{f}"));
    let b = sim::run(7, 1_000).unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(a, b, "a seed must replay exactly");
    let c = sim::run(8, 1_000).unwrap_or_else(|f| panic!("{f}"));
    assert_ne!(a.trace_digest, c.trace_digest);
}

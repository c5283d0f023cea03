//! The node runtime under deterministic simulation: several [`Runtime`]s, each with its real
//! event loop (Ready batching, the shared WAL's group commit, appends sent before the fsync,
//! apply, ReadIndex reads, checkpoints), over the real [`RaftStorage`] on a crashing
//! [`SimDisk`], connected by a faulty simulated network, driven by clients through
//! [`NodeHandle`]s, and checked for the core simulator's invariants (see `observer`).
//!
//! A run (one seed) has a fault phase, with message loss, duplication, delay and reordering,
//! partitions that come and heal, crashes (half of them of the leader, some in the middle of
//! a WAL batch) and restarts, and then a liveness phase: the network heals, every node
//! restarts, a marker write must be acknowledged and every node must apply every
//! acknowledged write within a bound.
//!
//! Determinism: every task of a run (runtimes, clients, the simulation) runs on one
//! current-thread tokio runtime whose clock is paused, so time moves only when every task
//! waits, straight to the next timer. Nothing else runs: the WAL has no writer thread
//! ([`WalWriter::Caller`]); the simulation plays the fsyncs. All choices come from the seed
//! (the runtimes' election timeouts through `RuntimeConfig::rng_seed`). The tokio scheduler
//! itself draws no random numbers for a current-thread runtime; tokio's random choices
//! are in `select!` without `biased` (the runtime's loop is biased), in which of a
//! `watch` channel's waiter lists a waiter joins (each runtime's shutdown channel has one
//! waiter) and in the blocking pool (unused): none can change a run. The same seed gives the
//! same trace digest (`a_seed_replays_exactly`).
//!
//! - `cluster`: the nodes, their disks, crashes, restarts and fault injection.
//! - `net`: the simulated network, the runtimes' [`Outbox`](crate::node::Outbox).
//! - `clients`: writes and linearizable reads through node handles.
//! - `register`: the replicated state machine, which reports every apply.
//! - `observer`: what a run saw, and the invariants checked on it.
//! - `options`: each seed's cluster shape and fault mix.
//!
//! - `cargo test -p ppdb --lib sim_runtime`: the default sweep.
//! - `PPDB_SEED=<n> cargo test -p ppdb --lib sim_runtime`: replays one seed exactly
//!   (`RUST_LOG=info` shows the faults, `debug` the runtimes' logs too).
//! - `PPDB_RUNTIME_SIM_SEEDS=<count>` (and `PPDB_RUNTIME_SIM_FIRST_SEED`): a longer sweep.
//!
//! [`Runtime`]: crate::node::Runtime
//! [`RaftStorage`]: crate::node::raft_storage::RaftStorage
//! [`SimDisk`]: crate::storage::disk::SimDisk
//! [`NodeHandle`]: crate::node::NodeHandle
//! [`WalWriter::Caller`]: crate::storage::wal::WalWriter::Caller

mod clients;
mod cluster;
mod net;
mod observer;
mod options;
mod register;

use clients::{spawn_marker, Clients};
use cluster::Cluster;
use futures::FutureExt;
use net::SimNet;
use observer::{Counts, Observer};
use options::SimOptions;
use ppdb_raft::sim::check::Violation;
use ppdb_raft::sim::rng::{mix, SimRng};
use ppdb_raft::LogIndex;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The simulation advances in steps of one simulated millisecond.
const STEP: Duration = Duration::from_millis(1);

/// Simulated time with faults on.
const FAULT_PHASE: Duration = Duration::from_secs(10);

/// Simulated time the liveness phase may take: clients finish their last requests (at most
/// the request timeout), a leader is elected, the marker commits, and lagging nodes catch up.
const LIVENESS_MAX: Duration = Duration::from_secs(20);

/// Seeds of the default sweep.
const DEFAULT_SEEDS: u64 = 200;

/// How a run failed.
#[derive(Debug, Clone)]
struct SimFailure {
    /// The seed that replays it.
    seed: u64,
    /// Simulated milliseconds into the run.
    at_ms: u128,
    /// What broke.
    violation: Violation,
}

impl fmt::Display for SimFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "runtime simulation seed {} failed at {} ms: {} (replay: PPDB_SEED={} cargo test -p ppdb --lib sim_runtime)",
            self.seed, self.at_ms, self.violation, self.seed
        )
    }
}

/// What a passing run did.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SimReport {
    /// Digest of every delivered message, apply, acknowledgement and read, in order.
    trace_digest: u64,
    /// What the run exercised.
    counts: Counts,
    /// Crashes injected.
    crashes: u64,
    /// Partitions made.
    partitions: u64,
    /// Simulated milliseconds the liveness phase took.
    liveness_ms: u128,
}

/// Runs seed `seed` on its own paused-clock, current-thread tokio runtime.
fn run(seed: u64) -> Result<SimReport, SimFailure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap_or_else(|e| panic!("cannot build the simulation's tokio runtime: {e}"));
    runtime.block_on(simulate(seed))
}

/// One run: the fault phase with clients, then the liveness phase and the final checks.
async fn simulate(seed: u64) -> Result<SimReport, SimFailure> {
    let epoch = Instant::now();
    let fail = |violation| SimFailure { seed, at_ms: epoch.elapsed().as_millis(), violation };
    let mut rng = SimRng::new(seed);
    let opts = SimOptions::swarm(seed, &mut rng);
    tracing::info!(?opts, "sim: options");
    let observer = Observer::new(seed);
    let net = SimNet::new(mix(seed, 1), opts.net, Arc::clone(&observer));
    let mut cluster = Cluster::start(seed, opts.clone(), rng, net, Arc::clone(&observer)).map_err(fail)?;
    let mut clients = Clients::spawn(seed, &opts, cluster.handles(), Arc::clone(&observer));
    while epoch.elapsed() < FAULT_PHASE {
        cluster.step(true).map_err(fail)?;
        tokio::time::sleep(STEP).await;
    }
    clients.stop();
    cluster.calm().map_err(fail)?;
    let liveness_ms = liveness(&mut cluster, &mut clients, &observer).await.map_err(fail)?;
    observer.check_acknowledged_kept().map_err(fail)?;
    let (trace_digest, counts) = observer.summary();
    Ok(SimReport {
        trace_digest,
        counts,
        crashes: cluster.crashes,
        partitions: cluster.partitions,
        liveness_ms,
    })
}

/// Faults are off: once the clients have stopped, a marker write must be acknowledged, and
/// every node must apply it and every acknowledged write, within [`LIVENESS_MAX`]. Returns
/// the simulated milliseconds it took.
async fn liveness(
    cluster: &mut Cluster,
    clients: &mut Clients,
    observer: &Arc<Observer>,
) -> Result<u128, Violation> {
    let start = Instant::now();
    let mut marker: Option<JoinHandle<LogIndex>> = None;
    let mut target: Option<LogIndex> = None;
    while start.elapsed() < LIVENESS_MAX {
        cluster.step(false)?;
        if marker.is_none() && clients.finished() {
            marker = Some(spawn_marker(cluster.handles(), Arc::clone(observer)));
        }
        match marker.as_mut().filter(|_| target.is_none()).and_then(FutureExt::now_or_never) {
            Some(Ok(index)) => target = Some(index.max(observer.highest_acknowledged())),
            Some(Err(e)) => {
                return Err(Violation {
                    invariant: "liveness",
                    detail: format!("the marker writer failed: {e}"),
                })
            }
            None => {}
        }
        if target.is_some_and(|index| cluster.all_applied(index)) {
            return Ok(start.elapsed().as_millis());
        }
        tokio::time::sleep(STEP).await;
    }
    Err(Violation {
        invariant: "liveness",
        detail: format!(
            "after faults stopped, {} ms passed without {} ({})",
            LIVENESS_MAX.as_millis(),
            match target {
                None => "a marker write being acknowledged".to_string(),
                Some(index) => format!("every node applying up to index {index}"),
            },
            cluster.describe()
        ),
    })
}

/// A number from the environment, if set.
fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Runs seeds `first..first + count` on every core; returns the failures (by seed) and the
/// reports.
fn sweep(first: u64, count: u64) -> (Vec<SimFailure>, Vec<SimReport>) {
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

/// Replays `PPDB_SEED` with the runtimes' logs (filtered by `RUST_LOG`).
fn replay(seed: u64) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    match run(seed) {
        Ok(report) => println!("seed {seed} passed: {report:?}"),
        Err(failure) => panic!("{failure}"),
    }
}

/// The sweep (or, with `PPDB_SEED`, the replay of one seed).
#[test]
fn the_node_runtime_stays_safe_and_live_under_simulation() {
    if let Some(seed) = env_u64("PPDB_SEED") {
        replay(seed);
        return;
    }
    let first = env_u64("PPDB_RUNTIME_SIM_FIRST_SEED").unwrap_or(0);
    let count = env_u64("PPDB_RUNTIME_SIM_SEEDS").unwrap_or(DEFAULT_SEEDS);
    let (failures, reports) = sweep(first, count);
    let total = |f: fn(&SimReport) -> u64| reports.iter().map(f).sum::<u64>();
    let acknowledged = total(|r| r.counts.acknowledged);
    let reads = total(|r| r.counts.reads);
    let crashes = total(|r| r.crashes);
    let restored = total(|r| r.counts.snapshots_restored);
    let slowest = reports.iter().map(|r| r.liveness_ms).max().unwrap_or(0);
    println!(
        "{count} runtime simulation seeds: {} failed; {acknowledged} writes acknowledged, {reads} reads, \
         {crashes} crashes, {restored} state machines restored from snapshots, slowest recovery {slowest} ms",
        failures.len()
    );
    for failure in failures.iter().take(10) {
        eprintln!("{failure}");
    }
    assert!(failures.is_empty(), "{} of {count} seeds failed; first: {}", failures.len(), failures[0]);
    assert!(
        acknowledged > 0 && reads > 0 && crashes > 0 && restored > 0,
        "the sweep must exercise writes, reads, crashes and snapshots"
    );
}

/// A seed whose run has crashes, partitions, checkpoints and snapshot restores.
const REPLAY_SEED: u64 = 5;

/// Determinism: a seed replays to the same trace, another seed does not.
#[test]
fn a_seed_replays_exactly() {
    let a = run(REPLAY_SEED).unwrap_or_else(|f| panic!("{f}"));
    let b = run(REPLAY_SEED).unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(a, b, "a seed must replay exactly");
    assert!(a.crashes > 0 && a.partitions > 0 && a.counts.snapshots_restored > 0, "{a:?}");
    let c = run(REPLAY_SEED + 1).unwrap_or_else(|f| panic!("{f}"));
    assert_ne!(a.trace_digest, c.trace_digest);
}

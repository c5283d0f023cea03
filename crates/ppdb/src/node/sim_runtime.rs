//! The node runtime under deterministic simulation: several [`Runtime`]s, each with its real
//! event loop (Ready batching, the shared WAL's group commit, appends sent before the fsync,
//! apply, ReadIndex reads, checkpoints, membership reconciliation), over the real
//! [`RaftStorage`] on a crashing [`SimDisk`], connected by a faulty simulated network, driven
//! by clients through [`NodeHandle`]s, and checked for the core simulator's invariants and
//! the directory's (see `observer`).
//!
//! Every node hosts the meta group (its state machine the cluster directory) and one data
//! group: on every member in half the seeds, placed on 3 nodes in the others, so that joins,
//! leaves and removals move its replicas (the rebalancer, `node/rebalance.rs`) under the
//! faults, and old replicas delete their copies once a move settles; in those seeds the run
//! also moves a replica itself now and then (`membership`), so that sources stay members. A
//! run (one seed) has a fault phase, with message loss, duplication, delay and reordering,
//! partitions that come and heal, crashes (half of them of a leader, some in the middle of a
//! WAL batch) and restarts, and membership changes: spare nodes join, members are asked to
//! leave, silent nodes are removed by the meta leader (in some seeds). While the data group
//! moves, a seed-chosen share of the crashes strikes the move's target, its source, the data
//! group's leader or the meta group's leader, and of the partitions cuts the target or the
//! source off (`moves`). Then comes a liveness phase: the network heals, every member
//! restarts, a marker write must be acknowledged, every member must apply every acknowledged
//! write, and every group's membership must settle where the directory says, within a bound:
//! every move ends (its placement settled, its committed membership exactly the placement)
//! and no running node outside the placement keeps a copy (`convergence`). At the end, those
//! nodes are stopped and their disks reopened: none may recover a copy (`cluster`). All along,
//! a node may delete its copy only once its directory records the move settled without it.
//!
//! Planted bugs (`src/canary.rs`) must fail the sweep: a source deleting its copy before the
//! move settles, and one deleting it without a tombstone.
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
//! - `cluster`: the nodes, their disks and clocks, starts, crashes, restarts, removals and faults.
//! - `clock`: each machine's wall clock on simulated time, skewed and steppable.
//! - `skewed_clocks`: the key-value shard on nodes whose clocks disagree or step back: expiry
//!   follows the leader's time and never goes backwards.
//! - `net`: the simulated network, the runtimes' [`Outbox`](crate::node::Outbox).
//! - `clients`: writes and linearizable reads through node handles.
//! - `membership`: joins and leaves through node handles.
//! - `register`: the replicated state machine, which reports every apply.
//! - `observer`: what a run saw, and the invariants checked on it (with `group_logs` and
//!   `directories`).
//! - `convergence`: where memberships must settle once faults stop.
//! - `moves`: who has which part in a move in progress, for the faults aimed at moves.
//! - `options`: each seed's cluster shape, fault mix and membership changes.
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

mod bank;
mod clients;
mod clock;
mod cluster;
mod convergence;
mod directories;
mod group_logs;
mod machines;
mod membership;
mod moves;
mod net;
mod observer;
mod options;
mod register;
mod skewed_clocks;

use crate::canary::{self, Canary};
use clients::{spawn_marker, Clients};
use cluster::Cluster;
use convergence::Convergence;
use futures::FutureExt;
use membership::MembershipChanges;
use moves::MoveFaults;
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

/// Every spare starts joining before this much simulated time (within the fault phase).
const JOINS_BY: Duration = Duration::from_millis(7_500);

/// Simulated time the liveness phase may take: clients finish their last requests (at most
/// the request timeout), a leader is elected, the marker commits, lagging nodes catch up,
/// and memberships settle (joins finish, leaving nodes are removed, one change at a time per
/// group, each on a housekeeping round).
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
    /// Spares the directory admitted.
    joined: u64,
    /// Nodes removed (and stopped).
    removed: u64,
    /// Moves of the data group started (placements it was given after its first).
    moves: u64,
    /// Faults injected in the middle of a move.
    move_faults: MoveFaults,
    /// Simulated milliseconds the liveness phase took.
    liveness_ms: u128,
}

/// Runs seed `seed` on its own paused-clock, current-thread tokio runtime, with `canary`
/// planted (or none).
fn run(seed: u64, canary: Option<Canary>) -> Result<SimReport, SimFailure> {
    canary::plant(canary);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap_or_else(|e| panic!("cannot build the simulation's tokio runtime: {e}"));
    runtime.block_on(simulate(seed))
}

/// One run: the fault phase with clients and membership changes, then the liveness phase and
/// the final checks.
async fn simulate(seed: u64) -> Result<SimReport, SimFailure> {
    let epoch = Instant::now();
    let fail = |violation| SimFailure { seed, at_ms: epoch.elapsed().as_millis(), violation };
    let mut rng = SimRng::new(seed);
    let opts = SimOptions::swarm(seed, &mut rng);
    tracing::info!(?opts, "sim: options");
    let observer = Observer::new(seed);
    let net = SimNet::new(mix(seed, 1), opts.net, Arc::clone(&observer));
    let mut cluster = Cluster::start(seed, opts.clone(), rng, net, Arc::clone(&observer)).map_err(fail)?;
    let clients = Clients::spawn(seed, &opts, &cluster, Arc::clone(&observer));
    let joins_by_ms = JOINS_BY.as_millis() as u64;
    let mut changes = MembershipChanges::plan(
        seed,
        &opts,
        &cluster.spares(),
        joins_by_ms,
        cluster.handles(),
        Arc::clone(&observer),
    );
    while epoch.elapsed() < FAULT_PHASE {
        changes.step(&mut cluster, epoch.elapsed().as_millis() as u64).map_err(fail)?;
        cluster.step(true).map_err(fail)?;
        tokio::time::sleep(STEP).await;
    }
    clients.stop();
    cluster.calm().map_err(fail)?;
    let mut run = Run { cluster, clients, changes, observer: Arc::clone(&observer) };
    let liveness_ms = run.liveness().await.map_err(fail)?;
    observer.check_acknowledged_kept().map_err(fail)?;
    run.cluster.check_copies_deleted().map_err(fail)?;
    let (trace_digest, counts) = observer.summary();
    let spares = run.cluster.spares();
    let joined = observer.latest_directory().members().keys().filter(|id| spares.contains(id)).count();
    Ok(SimReport {
        trace_digest,
        counts,
        crashes: run.cluster.crashes,
        partitions: run.cluster.partitions,
        joined: joined as u64,
        removed: run.cluster.removals,
        moves: counts.placements.saturating_sub(1),
        move_faults: run.cluster.move_faults,
        liveness_ms,
    })
}

/// What a run drives once its fault phase is over.
struct Run {
    /// The nodes.
    cluster: Cluster,
    /// The clients, told to stop.
    clients: Clients,
    /// The joins and leaves, some perhaps still in flight.
    changes: MembershipChanges,
    /// What the run saw.
    observer: Arc<Observer>,
}

/// How far the liveness phase got.
#[derive(Default)]
struct Progress {
    /// The marker writer, once the clients stopped.
    marker: Option<JoinHandle<LogIndex>>,
    /// The index every member must apply: the marker's or the highest acknowledged one.
    target: Option<LogIndex>,
    /// The memberships' convergence.
    convergence: Convergence,
}

impl Run {
    /// Faults are off: once the clients have stopped, a marker write must be acknowledged;
    /// every member must apply it and every acknowledged write, the membership changes in
    /// flight must finish and the memberships settle, within [`LIVENESS_MAX`]. Returns the
    /// simulated milliseconds it took.
    async fn liveness(&mut self) -> Result<u128, Violation> {
        let start = Instant::now();
        let mut progress = Progress::default();
        while start.elapsed() < LIVENESS_MAX {
            self.cluster.step(false)?;
            if self.done(&mut progress)? {
                return Ok(start.elapsed().as_millis());
            }
            tokio::time::sleep(STEP).await;
        }
        Err(self.stuck(&progress))
    }

    /// Advances the liveness goals; returns whether all are met.
    fn done(&mut self, progress: &mut Progress) -> Result<bool, Violation> {
        if progress.marker.is_none() && self.clients.finished() {
            progress.marker = Some(spawn_marker(self.cluster.handles(), Arc::clone(&self.observer)));
        }
        let marker = progress.marker.as_mut().filter(|_| progress.target.is_none());
        match marker.and_then(FutureExt::now_or_never) {
            Some(Ok(index)) => progress.target = Some(index.max(self.observer.highest_acknowledged())),
            Some(Err(e)) => {
                return Err(Violation {
                    invariant: "liveness",
                    detail: format!("the marker writer failed: {e}"),
                })
            }
            None => {}
        }
        let settled = progress.convergence.step(&self.cluster.handles(), &self.observer);
        let applied = progress.target.is_some_and(|index| self.cluster.all_applied(index));
        Ok(applied && settled && self.changes.finished())
    }

    /// The violation of a liveness phase that ran out of time.
    fn stuck(&mut self, progress: &Progress) -> Violation {
        let missing = match (progress.target, progress.convergence.unsettled()) {
            (None, _) => "a marker write being acknowledged".to_string(),
            (Some(index), _) if !self.cluster.all_applied(index) => {
                format!("every member applying up to index {index}")
            }
            (Some(_), _) if !self.changes.finished() => {
                "the joins and leaves in flight finishing".to_string()
            }
            (Some(_), unsettled) => {
                let detail = format!(
                    "after faults stopped, {} ms passed and memberships did not settle: {}",
                    LIVENESS_MAX.as_millis(),
                    unsettled.unwrap_or("?")
                );
                return Violation { invariant: "membership convergence", detail };
            }
        };
        Violation {
            invariant: "liveness",
            detail: format!(
                "after faults stopped, {} ms passed without {missing} ({})",
                LIVENESS_MAX.as_millis(),
                self.cluster.describe()
            ),
        }
    }
}

/// A number from the environment, if set.
fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Runs seeds `first..first + count` on every core with `canary` planted; returns the
/// failures (by seed) and the reports. With a canary, stops at the first failure.
fn sweep(first: u64, count: u64, canary: Option<Canary>) -> (Vec<SimFailure>, Vec<SimReport>) {
    let next = AtomicU64::new(first);
    let failures = Mutex::new(Vec::new());
    let reports = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                let failed = || !failures.lock().unwrap_or_else(|e| e.into_inner()).is_empty();
                if seed >= first + count || (canary.is_some() && failed()) {
                    break;
                }
                match run(seed, canary) {
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
    match run(seed, None) {
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
    let (failures, reports) = sweep(first, count, None);
    let total = |f: fn(&SimReport) -> u64| reports.iter().map(f).sum::<u64>();
    let acknowledged = total(|r| r.counts.acknowledged);
    let reads = total(|r| r.counts.reads);
    let crashes = total(|r| r.crashes);
    let restored = total(|r| r.counts.snapshots_restored);
    let joined = total(|r| r.joined);
    let removed = total(|r| r.removed);
    let moves = total(|r| r.moves);
    let mut mid_move = MoveFaults::default();
    reports.iter().for_each(|r| mid_move.add(&r.move_faults));
    let slowest = reports.iter().map(|r| r.liveness_ms).max().unwrap_or(0);
    println!(
        "{count} runtime simulation seeds: {} failed; {acknowledged} writes acknowledged, {reads} reads, \
         {crashes} crashes, {restored} state machines restored from snapshots, {joined} nodes joined, \
         {removed} removed, {moves} moves of the data group, {} crashes in the middle of a move \
         ({} of a target, {} of a source, {} of the data leader, {} of the meta leader) and {} \
         partitions cutting a target or a source off, slowest recovery {slowest} ms",
        failures.len(),
        mid_move.crashes(),
        mid_move.target_crashes,
        mid_move.source_crashes,
        mid_move.data_leader_crashes,
        mid_move.meta_leader_crashes,
        mid_move.partitions,
    );
    for failure in failures.iter().take(10) {
        eprintln!("{failure}");
    }
    assert!(failures.is_empty(), "{} of {count} seeds failed; first: {}", failures.len(), failures[0]);
    assert!(
        acknowledged > 0 && reads > 0 && crashes > 0 && restored > 0 && joined > 0 && removed > 0,
        "the sweep must exercise writes, reads, crashes, snapshots, joins and removals"
    );
    assert!(
        moves > 0 && mid_move.target_crashes > 0 && mid_move.source_crashes > 0 && mid_move.partitions > 0,
        "the sweep must move the data group and crash and cut off its targets and sources mid-move: {mid_move:?}"
    );
}

/// A seed whose run has crashes, partitions, checkpoints, snapshot restores, joins and removals.
const REPLAY_SEED: u64 = 18;

/// Determinism: a seed replays to the same trace, another seed does not.
#[test]
fn a_seed_replays_exactly() {
    let a = run(REPLAY_SEED, None).unwrap_or_else(|f| panic!("{f}"));
    let b = run(REPLAY_SEED, None).unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(a, b, "a seed must replay exactly");
    assert!(a.crashes > 0 && a.partitions > 0 && a.counts.snapshots_restored > 0, "{a:?}");
    assert!(a.joined > 0 && a.removed > 0, "{a:?}");
    let c = run(REPLAY_SEED + 1, None).unwrap_or_else(|f| panic!("{f}"));
    assert_ne!(a.trace_digest, c.trace_digest);
}

/// Runs the default sweep with `canary` planted: some seed must fail, for `invariant`.
fn assert_caught(canary: Canary, invariant: &str) {
    let (failures, _) = sweep(0, DEFAULT_SEEDS, Some(canary));
    let failure = failures.first().unwrap_or_else(|| panic!("{canary:?} survived the runtime sweep"));
    println!("{canary:?}: {failure}");
    assert_eq!(failure.violation.invariant, invariant, "{failure}");
}

/// A source that deletes its copy before its removal is committed is caught when it does.
#[test]
fn canary_deleting_a_copy_before_the_move_settles_is_caught() {
    assert_caught(Canary::DropBeforeSettled, "copies go after their removal");
}

/// A source that deletes its copy without a durable tombstone is caught at the end of the run.
#[test]
fn canary_deleting_a_copy_without_a_tombstone_is_caught() {
    assert_caught(Canary::DropWithoutTombstone, "copies go after their removal");
}

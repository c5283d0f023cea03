//! The bank workload: cross-shard transactions under faults. Three nodes host four data
//! groups (shards 1..=4) with their real runtimes and [`KvShard`]s, over simulated disks and
//! the simulated network. Eight accounts, two per shard, start at 100. Transfer clients move
//! money between accounts of different shards with [`coordinator::run`] (DECRBY on one
//! shard, INCRBY on the other, a marker key `SET` in the source's part; some WATCH the source
//! first); some coordinators are killed at a random moment, between any two protocol steps.
//! COMMITs go through the server's commit joiner, so concurrent transfers' COMMITs in a shard
//! share one joined entry.
//! A sweeper runs [`resolver::sweep`] on every shard now and then, as every node's server
//! does; a reader reads the whole bank as of one moment, as a cross-shard MGET does.
//!
//! The fault phase loses, duplicates and delays messages, partitions nodes, and crashes and
//! restarts them (so participants and primaries change leaders). Then the liveness phase:
//! faults stop, every node runs, the clients finish, and every lock must be gone.
//!
//! Checked: every whole-bank read totals 800; no lock outlives the liveness phase; every
//! acknowledged transfer is applied on both its shards and every aborted one on neither (the
//! final balances equal the initial ones plus exactly the transfers whose marker exists,
//! every acknowledged marker exists, no aborted one does); and a seed replays to the same
//! trace digest.
//!
//! - `cargo test -p ppdb --lib bank`: the default sweep ([`DEFAULT_SEEDS`] seeds).
//! - `PPDB_SEED=<n> cargo test -p ppdb --lib bank`: replays one seed.
//! - `PPDB_BANK_SIM_SEEDS=<count>` (and `PPDB_BANK_SIM_FIRST_SEED`): a longer sweep.

use super::clock::SimClock;
use super::machines::{KvMachines, Setup};
use super::net::NetFaults;
use crate::canary::{self, Canary};
use crate::error::Error;
use crate::kv::{KvRead, Reply, TxnStep, WatchedKey, WriteOp};
use crate::node::clock::WallClock;
use crate::node::handle::NodeHandle;
use crate::node::leaders::LeaderTable;
use crate::node::{KeyRouting, Router};
use crate::server::client::commit_join::CommitJoiner;
use crate::server::shard::KvShard;
use crate::storage::disk::CrashFaults;
use crate::storage::wal::GroupId;
use crate::txn::{coordinator, resolver, Part, ShardClient, TxnEntry, TxnError, TxnIds, TxnStats, Vote};
use futures::future::{join_all, BoxFuture};
use ppdb_raft::sim::rng::{mix, SimRng};
use ppdb_raft::{NodeId, ProposeError};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The data shards.
const SHARDS: u64 = 4;
/// The nodes: 1, 2 and 3; each hosts every shard.
const NODES: u64 = 3;
/// Accounts per shard.
const ACCOUNTS_PER_SHARD: usize = 2;

/// The shard that owns `key`, as a cluster founded with [`SHARDS`] shards routes it.
fn shard_of(key: &[u8]) -> u64 {
    Router::new(KeyRouting::HashSlots, SHARDS).shard_of(key).0
}
/// Every account's starting balance.
const OPENING_BALANCE: i64 = 100;
/// How long a node handle waits for a request.
const REQUEST_TIMEOUT: Duration = Duration::from_millis(500);
/// How long the simulation's shard client tries a request that certainly did not apply.
const SUBMIT_DEADLINE_MS: u64 = 1_000;
/// Simulated milliseconds with faults on.
const FAULT_PHASE_MS: u64 = 1_200;
/// Simulated milliseconds the liveness phase may take: clients finish (a transaction's
/// requests time out within a few seconds), then stale locks are swept.
const LIVENESS_MS_MAX: u64 = 15_000;
/// Transfer clients.
const TRANSFER_CLIENTS: u64 = 3;
/// How often the sweeper sweeps every shard (the server's period).
const SWEEP_EVERY_MS: u64 = 500;
/// Seeds of the default sweep.
const DEFAULT_SEEDS: u64 = 1_000;

/// What clients reach a running node through.
#[derive(Clone)]
struct Endpoint {
    handle: NodeHandle<KvShard>,
    leaders: LeaderTable,
    /// Joins the COMMITs of concurrent transfers in a shard the node leads, as the server does.
    commits: Arc<CommitJoiner>,
}

/// The running nodes' endpoints, shared with the clients.
type Endpoints = Arc<Mutex<BTreeMap<NodeId, Endpoint>>>;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Three nodes replicating four shards.
struct BankCluster {
    machines: KvMachines,
    endpoints: Endpoints,
    crashes: u64,
    partitions: u64,
}

impl BankCluster {
    fn start(seed: u64, faults: NetFaults) -> BankCluster {
        let setup = Setup {
            groups: (1..=SHARDS).map(GroupId).collect(),
            request_timeout: REQUEST_TIMEOUT,
            entries_between_snapshots: 200,
            entries_kept_after_snapshot: 50,
        };
        let machines = KvMachines::new(seed, faults, &[0; NODES as usize], setup);
        let mut cluster = BankCluster { machines, endpoints: Arc::default(), crashes: 0, partitions: 0 };
        for id in 1..=NODES {
            cluster.boot(NodeId(id));
        }
        cluster
    }

    /// Starts `id`'s runtime from what its disk holds (every shard bootstrapped on first boot).
    fn boot(&mut self, id: NodeId) {
        let rng_seed = mix(self.machines.seed, id.0 + 1_000 * self.crashes);
        if let Some(running) = self.machines.boot(id, rng_seed) {
            let endpoint = Endpoint {
                handle: running.handle.clone(),
                leaders: running.leaders.clone(),
                commits: Arc::new(CommitJoiner::new(running.handle.clone())),
            };
            lock(&self.endpoints).insert(id, endpoint);
        }
    }

    /// Power loss at `id`: its runtime stops, its disk keeps what was synced.
    fn crash(&mut self, id: NodeId) {
        lock(&self.endpoints).remove(&id);
        if self.machines.crash(id, Some(CrashFaults { torn_writes: true, flip_bit: false })) {
            self.crashes += 1;
        }
    }

    fn down(&self) -> Vec<NodeId> {
        self.machines.down()
    }

    /// One simulated millisecond: disks, then deliveries.
    async fn step(&mut self) {
        self.machines.step().await;
    }

    /// One millisecond of the fault phase: perhaps a crash, a restart, a partition or a heal.
    fn inject(&mut self) {
        let nodes: Vec<NodeId> = (1..=NODES).map(NodeId).collect();
        let down = self.down();
        if let Some(&id) = down.first() {
            if self.machines.rng.chance(3) {
                tracing::info!(node = %id, "sim: restart");
                self.boot(id);
            }
        } else if self.machines.rng.chance(2) {
            let id = nodes[self.machines.rng.below(NODES) as usize];
            tracing::info!(node = %id, "sim: crash");
            self.crash(id);
        }
        if self.machines.rng.chance(2) {
            let id = nodes[self.machines.rng.below(NODES) as usize];
            tracing::info!(node = %id, "sim: isolate");
            self.machines.net.isolate(id, &nodes);
            self.partitions += 1;
        } else if self.machines.rng.chance(4) {
            self.machines.net.heal();
        }
    }

    /// Faults off: the network heals and calms, every node runs.
    fn calm(&mut self) {
        self.machines.net.set_faults(NetFaults::CALM);
        self.machines.net.heal();
        for id in self.down() {
            self.boot(id);
        }
    }
}

/// Whether `result` certainly did not take effect.
fn retryable(result: &Result<Reply, Error>) -> bool {
    matches!(
        result,
        Err(Error::Consensus(ProposeError::NotLeader { .. }))
            | Err(Error::Consensus(ProposeError::LeaderTransferring))
            | Err(Error::ProposalDropped { .. })
    )
}

/// The transaction layer's way to the shards in the simulation: straight to the node that
/// leads a shard, as the server's executor forwards.
struct SimShardClient {
    endpoints: Endpoints,
}

impl SimShardClient {
    /// The endpoint of the node some running node believes leads `shard`.
    fn leader_of(&self, shard: u64) -> Option<Endpoint> {
        let endpoints = lock(&self.endpoints);
        let leader = endpoints.values().find_map(|e| e.leaders.get(GroupId(shard)))?;
        endpoints.get(&leader).cloned()
    }

    /// Tries `request` on `shard`'s leader until it answers something other than "certainly
    /// not applied" (a read: anything but an error), or the deadline passes.
    async fn on_leader<F>(
        &self,
        shard: u64,
        is_read: bool,
        request: impl Fn(&Endpoint) -> F,
    ) -> Result<Reply, Error>
    where
        F: std::future::Future<Output = Result<Reply, Error>>,
    {
        let deadline = Instant::now() + Duration::from_millis(SUBMIT_DEADLINE_MS);
        loop {
            let result = match self.leader_of(shard) {
                Some(endpoint) => request(&endpoint).await,
                None => Err(Error::State(format!("shard {shard} has no leader"))),
            };
            let again = if is_read { result.is_err() } else { retryable(&result) || self.no_leader(&result) };
            if !again || Instant::now() >= deadline {
                return result;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn no_leader(&self, result: &Result<Reply, Error>) -> bool {
        matches!(result, Err(Error::State(text)) if text.ends_with("has no leader"))
    }
}

impl ShardClient for SimShardClient {
    fn submit(&self, shard: u64, entry: TxnEntry) -> BoxFuture<'_, Result<Reply, Error>> {
        if let TxnEntry::Commit(id) = entry {
            return Box::pin(self.on_leader(shard, false, move |e| e.commits.commit(shard, id)));
        }
        let command = entry.encode();
        Box::pin(self.on_leader(shard, false, move |e| e.handle.propose(GroupId(shard), command.clone())))
    }

    fn read(&self, shard: u64, read: KvRead) -> BoxFuture<'_, Result<Reply, Error>> {
        Box::pin(self.on_leader(shard, true, move |e| e.handle.read(GroupId(shard), read.clone())))
    }

    fn pause(&self, ms: u64) -> BoxFuture<'_, ()> {
        Box::pin(tokio::time::sleep(Duration::from_millis(ms)))
    }
}

/// How a transfer ended, as its client saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Acknowledged (or committed with its replies lost): applied on both shards.
    Committed,
    /// Refused: applied on neither.
    Aborted,
    /// Unknown (timed out, or its coordinator was killed): applied on both or neither.
    Unknown,
}

/// One transfer.
#[derive(Debug, Clone)]
struct Transfer {
    from: usize,
    to: usize,
    amount: i64,
    /// Its marker key, on the source's shard.
    marker: String,
    outcome: Outcome,
}

/// What the run's tasks share.
struct Bank {
    seed: u64,
    client: SimShardClient,
    ids: TxnIds,
    stats: TxnStats,
    clock: SimClock,
    accounts: Vec<Vec<u8>>,
    transfers: Mutex<Vec<Transfer>>,
    digest: AtomicU64,
    violations: Mutex<Vec<String>>,
    stopping: AtomicBool,
    reads: AtomicU64,
    /// Transfers of unknown outcome found applied at the end.
    unknown_applied: AtomicU64,
}

impl Bank {
    /// Folds `event` into the trace digest.
    fn trace(&self, event: impl std::fmt::Debug) {
        let text = format!("{event:?}");
        let mut digest = self.digest.load(Ordering::Relaxed);
        for chunk in text.as_bytes().chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            digest = mix(digest, u64::from_le_bytes(word));
        }
        self.digest.store(digest, Ordering::Relaxed);
    }

    fn violation(&self, detail: String) {
        lock(&self.violations).push(detail);
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    /// A key on `shard` named after `prefix`.
    fn key_on(shard: u64, prefix: &str) -> Vec<u8> {
        (0u32..)
            .map(|n| format!("{prefix}:{n}").into_bytes())
            .find(|key| shard_of(key) == shard)
            .unwrap_or_default()
    }

    /// Reads every account as of one moment (as the server's cross-shard MGET does): each
    /// shard's versions, values, versions again, until no version changed.
    async fn read_all(&self) -> Result<Vec<Option<i64>>, Error> {
        let mut before = self.per_shard(|keys| KvRead::Versions { keys }).await?;
        for attempt in 0..coordinator::ATTEMPTS_MAX {
            let values = self.per_shard(|keys| KvRead::MGet { keys }).await?;
            let after = self.per_shard(|keys| KvRead::Versions { keys }).await?;
            if after == before {
                return Ok(values.iter().map(balance).collect());
            }
            before = after;
            self.client.pause(1 << attempt.min(4)).await;
        }
        Err(Error::State("the accounts kept changing".into()))
    }

    /// Runs `read` of each shard's accounts, waiting out locks; the replies in account order.
    async fn per_shard(&self, read: impl Fn(Vec<Vec<u8>>) -> KvRead) -> Result<Vec<Reply>, Error> {
        let mut replies = vec![Reply::Nil; self.accounts.len()];
        let indexes: Vec<Vec<usize>> = (1..=SHARDS)
            .map(|shard| (0..self.accounts.len()).filter(|&i| shard_of(&self.accounts[i]) == shard).collect())
            .collect();
        let reads = (1..=SHARDS).zip(&indexes).map(|(shard, indexes)| {
            let keys = indexes.iter().map(|&i| self.accounts[i].clone()).collect();
            self.read_unlocked(shard, read(keys))
        });
        for (answer, indexes) in join_all(reads).await.into_iter().zip(indexes) {
            let Reply::Array(items) = answer? else {
                return Err(Error::State("a shard did not answer an array".into()));
            };
            for (index, item) in indexes.into_iter().zip(items) {
                replies[index] = item;
            }
        }
        Ok(replies)
    }

    /// Runs `query` on `shard`, waiting out (or resolving) the locks it meets.
    async fn read_unlocked(&self, shard: u64, query: KvRead) -> Result<Reply, Error> {
        let mut attempt = 0;
        loop {
            match self.client.read(shard, query.clone()).await? {
                Reply::Locked(holder) if attempt < coordinator::ATTEMPTS_MAX => {
                    resolver::wait_out(&self.client, &holder, attempt, &self.stats).await;
                    attempt += 1;
                }
                other => return Ok(other),
            }
        }
    }

    /// One transfer from `from` to `to`, perhaps watching the source first.
    async fn transfer(
        &self,
        from: usize,
        to: usize,
        amount: i64,
        watch: bool,
        id: u64,
    ) -> Result<(), TxnError> {
        let from_shard = shard_of(&self.accounts[from]);
        let to_shard = shard_of(&self.accounts[to]);
        let marker = String::from_utf8_lossy(&Bank::key_on(from_shard, &format!("marker:{id}"))).into_owned();
        let mut watched = Vec::new();
        if watch {
            let versions = KvRead::Versions { keys: vec![self.accounts[from].clone()] };
            match self.client.read(from_shard, versions).await {
                Ok(Reply::Array(items)) => {
                    if let Some(Reply::Integer(version)) = items.first() {
                        let version = u64::try_from(*version).unwrap_or(0);
                        watched.push(WatchedKey { key: self.accounts[from].clone(), version });
                    }
                }
                _ => return Err(TxnError::Refused("the watched key could not be read".into())),
            }
        }
        let write = |op| TxnStep::Write(op);
        let source = Part {
            shard: from_shard,
            steps: vec![
                write(WriteOp::IncrBy { key: self.accounts[from].clone(), delta: -amount }),
                write(WriteOp::MSet { pairs: vec![(marker.clone().into_bytes(), b"1".to_vec())] }),
            ],
            watched,
        };
        let target = Part {
            shard: to_shard,
            steps: vec![write(WriteOp::IncrBy { key: self.accounts[to].clone(), delta: amount })],
            watched: Vec::new(),
        };
        let transfer = Transfer { from, to, amount, marker, outcome: Outcome::Unknown };
        let index = {
            let mut transfers = lock(&self.transfers);
            transfers.push(transfer);
            transfers.len() - 1
        };
        let started_ms = self.clock.now_ms();
        let result = coordinator::run(
            &self.client,
            &self.ids,
            &self.stats,
            started_ms,
            vec![source, target],
            Vote::Always,
        )
        .await;
        let outcome = match &result {
            Ok(_) | Err(TxnError::RepliesLost { .. }) => Outcome::Committed,
            Err(TxnError::Unknown(_)) => Outcome::Unknown,
            Err(_) => Outcome::Aborted,
        };
        self.trace((id, index, outcome, result.as_ref().map_err(ToString::to_string)));
        if let Some(transfer) = lock(&self.transfers).get_mut(index) {
            transfer.outcome = outcome;
        }
        result.map(|_| ())
    }
}

/// An account's balance from an MGET element.
fn balance(reply: &Reply) -> Option<i64> {
    match reply {
        Reply::Bulk(bytes) => std::str::from_utf8(bytes).ok()?.parse().ok(),
        _ => None,
    }
}

/// A transfer client: transfers between accounts of different shards until told to stop;
/// every fourth watches its source, every third runs in a task killed at a random moment.
async fn transfer_client(bank: Arc<Bank>, client: u64) {
    let mut rng = SimRng::new(mix(bank.seed, 100 + client));
    let accounts = bank.accounts.len() as u64;
    let mut sequence = 0;
    while !bank.stopping() {
        let from = rng.below(accounts) as usize;
        let mut to = rng.below(accounts) as usize;
        while shard_of(&bank.accounts[to]) == shard_of(&bank.accounts[from]) {
            to = rng.below(accounts) as usize;
        }
        let amount = 1 + rng.below(10) as i64;
        let watch = rng.below(4) == 0;
        let id = client * 1_000_000 + sequence;
        sequence += 1;
        if rng.below(3) == 0 {
            let killed_after = Duration::from_millis(rng.below(60));
            let run = Arc::clone(&bank);
            let coordinator = tokio::spawn(async move { run.transfer(from, to, amount, watch, id).await });
            tokio::time::sleep(killed_after).await;
            coordinator.abort();
            bank.trace((id, "killed", coordinator.await.is_ok()));
        } else {
            let _ = bank.transfer(from, to, amount, watch, id).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.below(20))).await;
    }
}

/// Sweeps every shard's stale locks every [`SWEEP_EVERY_MS`], as each node's server does.
async fn sweeper(bank: Arc<Bank>) {
    loop {
        tokio::time::sleep(Duration::from_millis(SWEEP_EVERY_MS)).await;
        for shard in 1..=SHARDS {
            let swept = resolver::sweep(&bank.client, shard, &bank.stats).await;
            bank.trace(("sweep", shard, swept.map_err(|e| e.to_string())));
        }
    }
}

/// Reads the whole bank now and then; every read must total the opening balances.
async fn reader(bank: Arc<Bank>) {
    let mut rng = SimRng::new(mix(bank.seed, 99));
    while !bank.stopping() {
        tokio::time::sleep(Duration::from_millis(5 + rng.below(30))).await;
        check_total(&bank, "a whole-bank read").await;
    }
}

/// Reads the whole bank once; a violation if it is readable and does not total the opening
/// balances. The balances read.
async fn check_total(bank: &Bank, what: &str) -> Option<Vec<Option<i64>>> {
    let balances = bank.read_all().await.ok()?;
    bank.reads.fetch_add(1, Ordering::Relaxed);
    bank.trace(("read", &balances));
    let total: i64 = balances.iter().map(|b| b.unwrap_or(0)).sum();
    let expected = OPENING_BALANCE * bank.accounts.len() as i64;
    if total != expected {
        bank.violation(format!("{what} totals {total}, not {expected}: {balances:?}"));
    }
    Some(balances)
}

/// What a passing run did.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BankReport {
    /// Digest of every outcome, read and sweep, in order.
    trace_digest: u64,
    committed: u64,
    aborted: u64,
    unknown: u64,
    /// Unknown transfers found applied.
    unknown_applied: u64,
    reads: u64,
    crashes: u64,
    partitions: u64,
}

/// A failed run.
#[derive(Debug, Clone)]
struct BankFailure {
    seed: u64,
    detail: String,
}

impl std::fmt::Display for BankFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "bank simulation seed {} failed: {} (replay: PPDB_SEED={} cargo test -p ppdb --lib bank)",
            self.seed, self.detail, self.seed
        )
    }
}

/// Runs seed `seed` on its own paused-clock, current-thread tokio runtime, with `canary`
/// planted (or none).
fn run(seed: u64, canary: Option<Canary>) -> Result<BankReport, BankFailure> {
    canary::plant(canary);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap_or_else(|e| panic!("cannot build the simulation's tokio runtime: {e}"));
    runtime.block_on(simulate(seed)).map_err(|detail| BankFailure { seed, detail })
}

/// The accounts: [`ACCOUNTS_PER_SHARD`] keys on every shard.
fn accounts() -> Vec<Vec<u8>> {
    (1..=SHARDS)
        .flat_map(|shard| (0..ACCOUNTS_PER_SHARD).map(move |n| Bank::key_on(shard, &format!("account{n}"))))
        .collect()
}

/// Runs `work` while `cluster` steps, for at most `ms` simulated milliseconds.
async fn drive<T>(cluster: &mut BankCluster, ms: u64, work: JoinHandle<T>) -> Result<T, String> {
    for _ in 0..ms {
        if work.is_finished() {
            return work.await.map_err(|e| format!("a task failed: {e}"));
        }
        cluster.step().await;
    }
    work.abort();
    Err(format!("a task did not finish within {ms} simulated ms"))
}

/// One run: open the accounts, the fault phase, the liveness phase, the checks.
async fn simulate(seed: u64) -> Result<BankReport, String> {
    let mut rng = SimRng::new(seed);
    let faults = NetFaults {
        drop_per_mille: rng.below(60) as u32,
        duplicate_per_mille: rng.below(40) as u32,
        delay_ms_max: 1 + rng.below(15),
    };
    tracing::info!(?faults, "sim: bank faults");
    let mut cluster = BankCluster::start(seed, NetFaults::CALM);
    let bank = Arc::new(Bank {
        seed,
        client: SimShardClient { endpoints: Arc::clone(&cluster.endpoints) },
        ids: TxnIds::new(0, 1),
        stats: TxnStats::default(),
        clock: SimClock::new(0),
        accounts: accounts(),
        transfers: Mutex::default(),
        digest: AtomicU64::new(seed),
        violations: Mutex::default(),
        stopping: AtomicBool::new(false),
        reads: AtomicU64::new(0),
        unknown_applied: AtomicU64::new(0),
    });
    let opening = tokio::spawn(open_accounts(Arc::clone(&bank)));
    drive(&mut cluster, 10_000, opening).await??;
    cluster.machines.net.set_faults(faults);
    let mut tasks: Vec<JoinHandle<()>> =
        (0..TRANSFER_CLIENTS).map(|c| tokio::spawn(transfer_client(Arc::clone(&bank), c))).collect();
    tasks.push(tokio::spawn(reader(Arc::clone(&bank))));
    let sweeper = tokio::spawn(sweeper(Arc::clone(&bank)));
    for _ in 0..FAULT_PHASE_MS {
        cluster.inject();
        cluster.step().await;
    }
    bank.stopping.store(true, Ordering::Relaxed);
    cluster.calm();
    let liveness = tokio::spawn(liveness(Arc::clone(&bank), tasks));
    let outcome = drive(&mut cluster, LIVENESS_MS_MAX, liveness).await;
    sweeper.abort();
    outcome??;
    if let Some(violation) = lock(&bank.violations).first() {
        return Err(violation.clone());
    }
    report(&bank, &cluster)
}

/// Opens every account at [`OPENING_BALANCE`] in one cross-shard transaction, before faults.
async fn open_accounts(bank: Arc<Bank>) -> Result<(), String> {
    let opening = OPENING_BALANCE.to_string().into_bytes();
    let parts = (1..=SHARDS)
        .map(|shard| {
            let pairs = bank
                .accounts
                .iter()
                .filter(|key| shard_of(key) == shard)
                .map(|key| (key.clone(), opening.clone()))
                .collect();
            Part { shard, steps: vec![TxnStep::Write(WriteOp::MSet { pairs })], watched: Vec::new() }
        })
        .collect();
    let started_ms = bank.clock.now_ms();
    coordinator::run(&bank.client, &bank.ids, &bank.stats, started_ms, parts, Vote::Always)
        .await
        .map(|_| ())
        .map_err(|e| format!("opening the accounts failed: {e}"))
}

/// Faults are off: the clients finish, every lock goes, and the final balances, markers and
/// whole-bank total are checked.
async fn liveness(bank: Arc<Bank>, tasks: Vec<JoinHandle<()>>) -> Result<(), String> {
    for task in tasks {
        task.await.map_err(|e| format!("a client failed: {e}"))?;
    }
    while !no_locks(&bank).await {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let Some(balances) = check_total(&bank, "the final read").await else {
        return Err("the final whole-bank read failed with every node up".into());
    };
    let unknown_applied = check_transfers(&bank, &balances).await?;
    bank.unknown_applied.store(unknown_applied, Ordering::Relaxed);
    Ok(())
}

/// Whether no shard holds a lock (sweeping stale ones meanwhile).
async fn no_locks(bank: &Bank) -> bool {
    let mut none = true;
    for shard in 1..=SHARDS {
        match bank.client.read(shard, KvRead::TxnLocks { min_age_ms: 0 }).await {
            Ok(Reply::Array(locks)) if locks.is_empty() => {}
            _ => {
                none = false;
                let _ = resolver::sweep(&bank.client, shard, &bank.stats).await;
            }
        }
    }
    none
}

/// Every acknowledged transfer's marker exists, no aborted one's does, and the balances are
/// the opening ones moved by exactly the transfers whose marker exists.
async fn check_transfers(bank: &Bank, balances: &[Option<i64>]) -> Result<u64, String> {
    let mut unknown_applied = 0;
    let transfers = lock(&bank.transfers).clone();
    let mut expected = vec![OPENING_BALANCE; bank.accounts.len()];
    for (index, transfer) in transfers.iter().enumerate() {
        let shard = shard_of(transfer.marker.as_bytes());
        let read = KvRead::MGet { keys: vec![transfer.marker.clone().into_bytes()] };
        let applied = match bank.client.read(shard, read).await {
            Ok(Reply::Array(items)) => items.first().is_some_and(|item| *item != Reply::Nil),
            other => return Err(format!("reading transfer {index}'s marker answered {other:?}")),
        };
        match (transfer.outcome, applied) {
            (Outcome::Committed, false) => {
                return Err(format!("transfer {index} was acknowledged but is not applied: {transfer:?}"))
            }
            (Outcome::Aborted, true) => {
                return Err(format!("transfer {index} was aborted but is applied: {transfer:?}"))
            }
            _ => {}
        }
        if applied && transfer.outcome == Outcome::Unknown {
            unknown_applied += 1;
        }
        if applied {
            expected[transfer.from] -= transfer.amount;
            expected[transfer.to] += transfer.amount;
        }
    }
    let expected: Vec<Option<i64>> = expected.into_iter().map(Some).collect();
    if balances != expected {
        return Err(format!(
            "the final balances {balances:?} are not the opening ones moved by the applied transfers: {expected:?}"
        ));
    }
    bank.trace(("final", balances));
    Ok(unknown_applied)
}

/// The report of a run that passed.
fn report(bank: &Bank, cluster: &BankCluster) -> Result<BankReport, String> {
    let transfers = lock(&bank.transfers);
    let count = |outcome| transfers.iter().filter(|t| t.outcome == outcome).count() as u64;
    Ok(BankReport {
        trace_digest: bank.digest.load(Ordering::Relaxed),
        committed: count(Outcome::Committed),
        aborted: count(Outcome::Aborted),
        unknown: count(Outcome::Unknown),
        unknown_applied: bank.unknown_applied.load(Ordering::Relaxed),
        reads: bank.reads.load(Ordering::Relaxed),
        crashes: cluster.crashes,
        partitions: cluster.partitions,
    })
}

/// A number from the environment, if set.
fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Runs seeds `first..first + count` on every core with `canary` planted; the failures (by
/// seed) and the reports. With a canary, stops at the first failure.
fn sweep(first: u64, count: u64, canary: Option<Canary>) -> (Vec<BankFailure>, Vec<BankReport>) {
    let next = AtomicU64::new(first);
    let failures = Mutex::new(Vec::new());
    let reports = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= first + count || (canary.is_some() && !lock(&failures).is_empty()) {
                    break;
                }
                match run(seed, canary) {
                    Ok(report) => lock(&reports).push(report),
                    Err(failure) => lock(&failures).push(failure),
                }
            });
        }
    });
    let mut failures = failures.into_inner().unwrap_or_else(|e| e.into_inner());
    failures.sort_by_key(|f| f.seed);
    (failures, reports.into_inner().unwrap_or_else(|e| e.into_inner()))
}

/// The sweep (or, with `PPDB_SEED`, the replay of one seed).
#[test]
fn the_bank_stays_balanced_and_atomic_under_faults() {
    if let Some(seed) = env_u64("PPDB_SEED") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        match run(seed, None) {
            Ok(report) => println!("seed {seed} passed: {report:?}"),
            Err(failure) => panic!("{failure}"),
        }
        return;
    }
    let first = env_u64("PPDB_BANK_SIM_FIRST_SEED").unwrap_or(0);
    let count = env_u64("PPDB_BANK_SIM_SEEDS").unwrap_or(DEFAULT_SEEDS);
    let (failures, reports) = sweep(first, count, None);
    let total = |f: fn(&BankReport) -> u64| reports.iter().map(f).sum::<u64>();
    println!(
        "{count} bank simulation seeds: {} failed; transfers {} committed, {} aborted, {} unknown ({} applied); \
         {} whole-bank reads, {} crashes, {} partitions",
        failures.len(),
        total(|r| r.committed),
        total(|r| r.aborted),
        total(|r| r.unknown),
        total(|r| r.unknown_applied),
        total(|r| r.reads),
        total(|r| r.crashes),
        total(|r| r.partitions),
    );
    for failure in failures.iter().take(10) {
        eprintln!("{failure}");
    }
    assert!(failures.is_empty(), "{} of {count} seeds failed; first: {}", failures.len(), failures[0]);
    assert!(total(|r| r.committed) > 0 && total(|r| r.aborted) > 0 && total(|r| r.unknown) > 0);
}

/// Determinism: a seed replays to the same trace, another seed does not.
#[test]
fn a_bank_seed_replays_exactly() {
    let a = run(7, None).unwrap_or_else(|f| panic!("{f}"));
    let b = run(7, None).unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(a, b, "a seed must replay exactly");
    assert!(a.committed > 0 && a.crashes > 0, "{a:?}");
    let c = run(8, None).unwrap_or_else(|f| panic!("{f}"));
    assert_ne!(a.trace_digest, c.trace_digest);
}

/// Runs the default sweep with `canary` planted: some seed must fail.
fn assert_caught(canary: Canary) {
    let (failures, _) = sweep(0, DEFAULT_SEEDS, Some(canary));
    let failure = failures.first().unwrap_or_else(|| panic!("{canary:?} survived the bank sweep"));
    println!("{canary:?}: {failure}");
}

/// Committing although a participant never prepared breaks atomicity.
#[test]
fn canary_committing_an_unprepared_participant_is_caught() {
    assert_caught(Canary::CommitUnprepared);
}

/// Preparing without locking lets reads and writes in before the decision.
#[test]
fn canary_prepare_without_locks_is_caught() {
    assert_caught(Canary::PrepareWithoutLocks);
}

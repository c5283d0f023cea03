//! The event loop of one node: owns every Raft group replica it hosts, feeds them ticks,
//! peer messages and client requests, and carries out their Readies in the contract's order.
//!
//! One task drives all groups. Each turn it takes every input that is waiting, then collects
//! the Readies of all groups, queues all their records in the shared WAL and waits for *one*
//! group-commit fsync covering them, then sends, applies and answers. Client requests that
//! arrive during the fsync are batched into the next turn, so the loop batches more the busier
//! it is. Followers' answers to a leader are taken during the fsync: the entries they commit
//! are applied and their clients answered at once rather than a round later
//! (`Runtime::commit_while_syncing`).
//!
//! A group whose log grew enough snapshots its state machine on the loop and saves the file off
//! it (`Runtime::checkpoint`, docs/storage.md "When snapshots are taken").
//!
//! Group 0, when hosted, is the meta group: its state machine is the cluster [`Directory`].
//! The loop publishes every new directory (for the transport's peer list and the status
//! pages) and, on each housekeeping round, lets each group it leads follow the directory
//! ([`super::reconcile`]).

use super::clock::WallClock;
use super::directory::{Directory, DirectoryCommand, DirectoryOutput};
use super::leaders::LeaderTable;
use super::leadership::{self, ClientTraffic};
use super::raft_storage::{self, RaftStorage};
use super::rebalance::{self, RebalancePolicy};
use super::reconcile::{self, GroupAction, MembershipPolicy};
use super::replica::{ApplyStopped, GroupReplica, Replica, Reply};
use super::state_machine::StateMachine;
use crate::error::Error;
use crate::storage::error::StorageError;
use crate::storage::wal::{DurableTicket, GroupId};
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use ppdb_raft::{
    Config, HardState, LogIndex, Message, MessageBody, NodeId, PeerRole, RawNode, RecoveredState, Snapshot,
    Status,
};
use rand::SeedableRng;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

/// Most inputs of one kind taken in one turn of the loop, so no source starves the others.
const INPUTS_PER_TURN_MAX: usize = 4096;

/// How long saving a snapshot file takes in the simulator ([`RuntimeConfig::snapshots_on_loop`]),
/// where the save runs on the loop's own thread after this pause, so that the group goes on
/// logging while its snapshot is being saved, as it does on a node.
const SNAPSHOT_SAVE_DELAY_ON_LOOP: Duration = Duration::from_millis(5);

/// A snapshot being serialized and saved off the loop: its group, and the snapshot once its
/// file is durable (or why it could not be saved).
type SnapshotSave = BoxFuture<'static, (GroupId, Result<Snapshot, StorageError>)>;

/// First wait before a snapshot that could not be saved (disk full, I/O error) is tried again;
/// each further failure doubles it, up to [`SNAPSHOT_RETRY_BACKOFF_MAX`].
const SNAPSHOT_RETRY_BACKOFF_MIN: Duration = Duration::from_millis(500);

/// Longest wait between two attempts to save a group's snapshot.
const SNAPSHOT_RETRY_BACKOFF_MAX: Duration = Duration::from_secs(30);

/// A group whose last snapshot could not be saved: when to try again, and the wait after that.
#[derive(Debug, Clone, Copy)]
struct SnapshotRetry {
    at: Instant,
    backoff: Duration,
}

/// WAL segments a group may keep on disk behind its low-water mark before it checkpoints
/// whatever its entry count, unless they hold less than twice its last snapshot (then the
/// snapshot rule decides, [`super::replica`]): a group that writes little (the meta group)
/// would otherwise keep every segment written since its first record, by every group, forever.
const WAL_SEGMENTS_HELD_MAX: usize = 4;

/// Where one round of [`Runtime::process_readies`] spent its time.
#[derive(Debug, Default, Clone, Copy)]
struct RoundTimes {
    /// Taking the Readies and queueing their records.
    persist: Duration,
    /// Applying committed entries and serving reads.
    apply: Duration,
    /// Waiting for the WAL to make the records durable.
    sync: Duration,
}

/// Peer messages taken while a round synced and kept for after it, in arrival order, and
/// their groups ([`Runtime::step_while_syncing`]).
#[derive(Debug, Default)]
struct Deferred {
    messages: Vec<(GroupId, Message)>,
    groups: BTreeSet<GroupId>,
}

/// A turn of the node loop at least this long is logged: it delays heartbeats, so one
/// approaching the election timeout can cost leadership.
const SLOW_TURN: Duration = Duration::from_millis(100);

/// Ticks between two housekeeping rounds on leaders.
const HOUSEKEEPING_TICKS: u64 = 10;

/// The meta group's id.
pub const META_GROUP: GroupId = GroupId(0);

/// Sends Raft messages to peers. Implemented by the TCP transport, and by in-memory networks
/// in tests.
pub trait Outbox: Send + Sync + 'static {
    /// Queues `message` of `group` for its recipient; may drop it (Raft retransmits).
    fn send(&self, group: GroupId, message: Message);
}

/// A request from a client-facing task to the loop.
pub enum Request<S: StateMachine> {
    /// Replicate `commands` in `group`, as consecutive entries, and answer each with the
    /// state machine's output.
    Propose {
        /// The group.
        group: GroupId,
        /// The encoded commands, in order.
        commands: Vec<Vec<u8>>,
        /// Where the answers go, one per command.
        replies: Vec<Reply<S::Output>>,
    },
    /// Answer `queries` linearizably from `group`'s state (one ReadIndex round).
    Read {
        /// The group.
        group: GroupId,
        /// The queries, in order.
        queries: Vec<S::Query>,
        /// Where the answers go, one per query.
        replies: Vec<Reply<S::Output>>,
    },
    /// Record `command` in the cluster directory through the meta group. Refused with
    /// [`Error::Consensus`] (not leader) on a node that does not lead it.
    Membership {
        /// The change.
        command: DirectoryCommand,
        /// Where the outcome goes.
        reply: Reply<DirectoryOutput>,
    },
    /// Report every group's Raft status.
    Status {
        /// Where the answer goes.
        reply: oneshot::Sender<Vec<GroupReport>>,
    },
}

/// One group's state on this node, for status pages and metrics.
#[derive(Debug, Clone)]
pub struct GroupReport {
    /// The group.
    pub group: GroupId,
    /// Its Raft state.
    pub raft: Status,
    /// Campaigns started here (pre-votes included).
    pub elections_started: u64,
    /// Campaigns won here.
    pub elections_won: u64,
    /// Set when this node stopped applying the group's log (the entry it could not apply).
    pub apply_stopped: Option<ApplyStopped>,
}

/// How the loop runs.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// This node.
    pub node: NodeId,
    /// Length of one Raft tick.
    pub tick: Duration,
    /// Raft settings for every group (the id is this node's).
    pub raft: Config,
    /// Entries applied between two snapshots of a group.
    pub entries_between_snapshots: u64,
    /// Entries kept in memory behind a snapshot, so briefly lagging followers get entries
    /// rather than the whole snapshot.
    pub entries_kept_after_snapshot: u64,
    /// How group memberships follow the directory (used when the meta group is hosted).
    pub membership: MembershipPolicy,
    /// Seeds the election-timeout RNG of every group (mixed with the node and group ids), so a
    /// simulated run replays exactly; `None` (production) draws a seed from the clock.
    pub rng_seed: Option<u64>,
    /// Where the groups this node leads read the time they stamp on entries and judge reads
    /// by: [`SystemClock`](super::clock::SystemClock) on a node, a skewed one in the simulator.
    pub clock: Arc<dyn WallClock>,
    /// The simulator's setting: a snapshot is serialized and saved on the loop's own thread
    /// (after a pause of a few milliseconds), so a run stays on one thread and replays
    /// exactly. `false` (nodes) serializes and saves it on the blocking thread pool while the
    /// loop goes on, whatever the runtime's flavour: on a large state it takes seconds.
    pub snapshots_on_loop: bool,
}

/// The node's event loop and the replicas it drives.
pub struct Runtime<S: StateMachine> {
    config: RuntimeConfig,
    /// The meta group's replica, when this node hosts it.
    meta: Option<Replica<Directory>>,
    /// The data groups' replicas.
    groups: BTreeMap<GroupId, Replica<S>>,
    storage: Arc<RaftStorage>,
    outbox: Arc<dyn Outbox>,
    directory: watch::Sender<Directory>,
    leaders: LeaderTable,
    /// Client requests served here, by where they entered the cluster.
    traffic: ClientTraffic,
    /// The tick at which the current traffic window started, while this node leads the meta
    /// group.
    traffic_window_start: Option<u64>,
    /// Snapshot files being saved off the loop ([`Runtime::checkpoint`]).
    snapshot_saves: FuturesUnordered<SnapshotSave>,
    /// The groups whose snapshot is being saved: one at a time per group.
    saving_snapshot: BTreeSet<GroupId>,
    /// The groups whose last snapshot could not be saved, to be retried.
    snapshot_retries: BTreeMap<GroupId, SnapshotRetry>,
    /// Where the last round's time went, for the slow-turn warning.
    round_times: RoundTimes,
    /// Directory changes this node's groups need but only the meta group's leader can
    /// propose (a data group reporting its placement settled), for whoever forwards them
    /// ([`Runtime::directory_reports`]).
    reports: mpsc::UnboundedSender<DirectoryCommand>,
    reports_rx: Option<mpsc::UnboundedReceiver<DirectoryCommand>>,
}

impl<S: StateMachine> Runtime<S> {
    /// Builds the replicas from their recovered state. Groups in `bootstrap` that have no
    /// durable state yet are created from it (and persisted before anything else happens).
    pub fn new(
        config: RuntimeConfig,
        storage: Arc<RaftStorage>,
        mut recovered: BTreeMap<GroupId, RecoveredState>,
        bootstrap: BTreeMap<GroupId, RecoveredState>,
        outbox: Arc<dyn Outbox>,
    ) -> Result<Runtime<S>, Error> {
        for (group, mut state) in bootstrap {
            if recovered.contains_key(&group) {
                continue;
            }
            if let Some(snapshot) = &state.snapshot {
                // From now on the Raft core holds the saved file's name, not the image.
                let saved = storage.checkpoint(group, snapshot, &state.hard_state, &state.entries)?;
                state.snapshot = Some(saved);
            }
            recovered.insert(group, state);
        }
        let meta = match recovered.remove(&META_GROUP) {
            Some(state) => Some(replica::<Directory>(&config, &storage, META_GROUP, state)?),
            None => None,
        };
        let mut groups = BTreeMap::new();
        for (group, state) in recovered {
            groups.insert(group, replica(&config, &storage, group, state)?);
        }
        let directory = watch::Sender::new(meta.as_ref().map(|m| m.state().clone()).unwrap_or_default());
        let last_group = groups.keys().next_back().copied().unwrap_or(META_GROUP);
        let leaders = LeaderTable::new(last_group);
        let (reports, reports_rx) = mpsc::unbounded_channel();
        Ok(Runtime {
            config,
            meta,
            groups,
            storage,
            outbox,
            directory,
            leaders,
            traffic: ClientTraffic::default(),
            traffic_window_start: None,
            snapshot_saves: FuturesUnordered::new(),
            saving_snapshot: BTreeSet::new(),
            snapshot_retries: BTreeMap::new(),
            round_times: RoundTimes::default(),
            reports,
            reports_rx: Some(reports_rx),
        })
    }

    /// The directory changes this node's groups report for the meta group's leader to
    /// propose, when this node does not lead the meta group: whoever takes this forwards them
    /// (the node's membership service does). Taken once; reports are dropped if never taken.
    pub fn directory_reports(&mut self) -> Option<mpsc::UnboundedReceiver<DirectoryCommand>> {
        self.reports_rx.take()
    }

    /// Each group's leader as this node sees it, updated after every round.
    pub fn leaders(&self) -> LeaderTable {
        self.leaders.clone()
    }

    /// Where the request path records the client requests this node serves, so that
    /// leadership can follow the clients ([`leadership`]).
    pub fn client_traffic(&self) -> ClientTraffic {
        self.traffic.clone()
    }

    /// The cluster directory as this node last applied it; changes are published as they
    /// are applied. Empty when the meta group is not hosted.
    pub fn directory(&self) -> watch::Receiver<Directory> {
        self.directory.subscribe()
    }

    /// Runs until `shutdown` turns true or every input closes. Returns an error only for
    /// node-fatal conditions (a failed fsync, an unreadable snapshot): the node must stop.
    pub async fn run(
        mut self,
        mut inbound: mpsc::Receiver<(GroupId, Message)>,
        mut requests: mpsc::UnboundedReceiver<Request<S>>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), Error> {
        let mut ticks: u64 = 0;
        let mut ticker = tokio::time::interval(self.config.tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Messages stepped while the last round synced may have left Readies to process.
        let mut stepped_while_syncing = false;
        loop {
            // The turn's clock starts when the loop wakes, not while it waits for input.
            let (turn, woke) = tokio::select! {
                biased;
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        break;
                    }
                    ("shutdown signal", Instant::now())
                }
                Some((group, saved)) = self.snapshot_saves.next(), if !self.snapshot_saves.is_empty() => {
                    let woke = Instant::now();
                    self.finish_checkpoint(group, saved)?;
                    ("checkpoint", woke)
                }
                _ = ticker.tick() => {
                    let woke = Instant::now();
                    ticks += 1;
                    self.tick(ticks);
                    if ticks % HOUSEKEEPING_TICKS == 0 {
                        self.checkpoint_groups_holding_the_wal()?;
                        self.retry_snapshots(woke)?;
                        self.drop_unplaced_copies()?;
                    }
                    ("tick", woke)
                }
                Some((group, message)) = inbound.recv() => {
                    let woke = Instant::now();
                    self.step(group, message);
                    for _ in 0..INPUTS_PER_TURN_MAX {
                        match inbound.try_recv() {
                            Ok((group, message)) => self.step(group, message),
                            Err(_) => break,
                        }
                    }
                    ("input", woke)
                }
                Some(request) = requests.recv() => {
                    let woke = Instant::now();
                    self.handle(request);
                    for _ in 0..INPUTS_PER_TURN_MAX {
                        match requests.try_recv() {
                            Ok(request) => self.handle(request),
                            Err(_) => break,
                        }
                    }
                    ("input", woke)
                }
                _ = std::future::ready(()), if stepped_while_syncing => {
                    ("messages taken while syncing", Instant::now())
                }
                else => break,
            };
            let worked = Instant::now();
            self.round_times = RoundTimes::default();
            stepped_while_syncing = self.process_readies(&mut inbound).await?;
            for (group, replica) in hosted(&mut self.meta, &mut self.groups) {
                let raft = replica.raft();
                // A replica outside its group's membership (the group is placed on other
                // nodes) knows no leader; the request path keeps its own hint for it.
                if raft.membership().contains(self.config.node) {
                    self.leaders.set(group, raft.leader());
                }
            }
            let took = woke.elapsed();
            if took >= SLOW_TURN {
                tracing::warn!(
                    node = %self.config.node,
                    turn,
                    took_ms = took.as_millis() as u64,
                    before_readies_ms = worked.duration_since(woke).as_millis() as u64,
                    persist_ms = self.round_times.persist.as_millis() as u64,
                    apply_ms = self.round_times.apply.as_millis() as u64,
                    wal_sync_ms = self.round_times.sync.as_millis() as u64,
                    "slow turn of the node loop: heartbeats and client requests waited"
                );
            }
        }
        tracing::info!(node = %self.config.node, "node runtime stopped");
        Ok(())
    }

    /// One timer tick for every group; every [`HOUSEKEEPING_TICKS`], the leaders' upkeep.
    fn tick(&mut self, ticks: u64) {
        let housekeeping = ticks % HOUSEKEEPING_TICKS == 0;
        for (_, replica) in hosted(&mut self.meta, &mut self.groups) {
            replica.raft().tick();
            if housekeeping {
                replica.housekeeping();
            }
        }
        if housekeeping {
            self.reconcile();
            self.follow_clients(ticks);
        }
    }

    /// On the meta group's leader, at the end of each traffic window: hands leadership to the
    /// node most client requests entered through, if one brought most of them
    /// ([`leadership::follow_clients_target`]); the data groups then follow the meta leader.
    /// A window counts only while this node leads throughout it.
    fn follow_clients(&mut self, ticks: u64) {
        let Some(window) = self.config.membership.follow_clients_ticks else { return };
        let Some(meta) = self.meta.as_mut() else { return };
        if meta.raft.role() != PeerRole::Leader {
            self.traffic_window_start = None;
            return;
        }
        let Some(start) = self.traffic_window_start else {
            // A new leader: what was counted before it led says nothing about its clients.
            self.traffic.take();
            self.traffic_window_start = Some(ticks);
            return;
        };
        if ticks.saturating_sub(start) < window {
            return;
        }
        self.traffic_window_start = Some(ticks);
        let served = self.traffic.take();
        let recent_ticks = 2 * u64::from(self.config.raft.heartbeat_interval_ticks);
        let status = meta.raft.status();
        if let Some(to) = leadership::follow_clients_target(&served, meta.state(), &status, recent_ticks) {
            tracing::info!(%to, ?served, "moving leadership to the node the clients use");
            meta.raft.transfer_leader(to);
        }
    }

    /// Lets every group this node leads take its next step towards the directory, and, on
    /// the meta leader, moves nodes along their lifecycle.
    fn reconcile(&mut self) {
        let Some(meta) = self.meta.as_mut() else { return };
        let directory = meta.state().clone();
        let policy = self.config.membership;
        let data: Vec<Status> = self.groups.values().map(|r| r.raft.status()).collect();
        let in_data_groups = reconcile::nodes_in_data_groups(&directory, self.config.node, &data);
        let mut reports = Vec::new();
        for (group, replica) in hosted(&mut self.meta, &mut self.groups) {
            let raft = replica.raft();
            if raft.role() != PeerRole::Leader {
                continue;
            }
            let status = raft.status();
            let meta_view = (group == META_GROUP).then_some(&in_data_groups);
            if group != META_GROUP {
                if let Some(report) = reconcile::settled_report(&directory, group, &status) {
                    reports.push(DirectoryCommand::Placement(report));
                }
            }
            match reconcile::next_group_action(&directory, group, &status, meta_view, &policy) {
                Some(GroupAction::Change(change)) => match raft.propose_conf_change(change) {
                    Ok(index) => {
                        tracing::info!(group = group.0, ?change, %index, "membership change proposed")
                    }
                    Err(e) => {
                        tracing::debug!(group = group.0, ?change, error = %e, "membership change not proposed yet")
                    }
                },
                Some(GroupAction::TransferLeadership(to)) => {
                    tracing::info!(group = group.0, %to, "handing leadership over before leaving");
                    raft.transfer_leader(to);
                }
                None => {}
            }
        }
        if policy.colocate_leaders {
            self.colocate_leaders();
        }
        let Some(meta) = self.meta.as_mut() else { return };
        if meta.raft.role() != PeerRole::Leader {
            for report in reports {
                // Only fails once nobody takes the reports (tests without forwarding).
                let _ = self.reports.send(report);
            }
            return;
        }
        let meta_status = meta.raft.status();
        let lifecycle = reconcile::next_directory_command(&directory, &meta_status, &data, &policy);
        let moves =
            rebalance::next_change(&directory, &RebalancePolicy::default()).map(DirectoryCommand::Placement);
        for command in reports.into_iter().chain(lifecycle).chain(moves) {
            tracing::info!(?command, "directory change proposed");
            let (reply, _) = tokio::sync::oneshot::channel();
            meta.propose(vec![command.encode()], vec![reply]);
        }
    }

    /// Deletes this node's copy of every data group the placement moved away from it, once
    /// the group's leader reported the move settled: the removal is then committed, so the
    /// copy will never count again, and keeping it would hold its memory and disk for
    /// nothing. The storage keeps a tombstone, so the copy does not come back at a restart;
    /// an empty replica stays, ready to be filled should the group be placed here again.
    ///
    /// The directory this node holds may be older than its replica of the group (a node
    /// restarted before its meta replica caught up still sees the placement from before the
    /// group moved onto it), and a member's copy is what its votes and acknowledgements stand
    /// for. So a copy whose membership still lists this node goes only when, besides, the meta
    /// replica hears a leader and has applied its whole log, and the group's replica hears no
    /// leader (a removed node stops hearing from its group; a member that restarted hears its
    /// leader again). A node whose removal reached it goes at once.
    fn drop_unplaced_copies(&mut self) -> Result<(), Error> {
        let directory = self.directory.borrow().clone();
        let placement = directory.placement();
        let me = self.config.node;
        let directory_current = self.meta.as_ref().is_some_and(|meta| {
            let status = meta.raft.status();
            status.leader.is_some() && status.applied == status.commit && status.commit == status.last_index
        });
        let doomed: Vec<GroupId> = self
            .groups
            .iter()
            .filter(|(&group, replica)| {
                placement.hosts(group, me) == Some(false)
                    && (placement.group(group).is_some_and(|p| p.settled) || drop_before_settled())
                    && (!replica.raft.membership().contains(me)
                        || (directory_current && replica.raft.leader().is_none()))
                    && (replica.raft.last_index() > LogIndex(0)
                        || replica.raft.snapshot_index() > LogIndex(0))
                    && !self.saving_snapshot.contains(&group)
            })
            .map(|(&group, _)| group)
            .collect();
        for group in doomed {
            let Some(old) = self.groups.get(&group) else { continue };
            let hard_state = old.raft.hard_state();
            let last_index = old.raft.last_index();
            let storage = Arc::clone(&self.storage);
            if !drop_without_tombstone() {
                blocking(|| storage.drop_group(group, hard_state, last_index.0))?;
            }
            let hard_state = HardState { commit: LogIndex(0), ..hard_state };
            let state = RecoveredState { hard_state, ..RecoveredState::default() };
            let fresh = replica(&self.config, &self.storage, group, state)?;
            self.groups.insert(group, fresh);
            self.snapshot_retries.remove(&group);
            self.leaders.set(group, None);
            tracing::info!(group = group.0, %last_index, "copy deleted: the group moved to other nodes");
        }
        Ok(())
    }

    /// Hands each data group this node leads to the meta group's leader when it is ready to
    /// take it ([`reconcile::colocation_target`]).
    fn colocate_leaders(&mut self) {
        let Some(meta) = self.meta.as_ref() else { return };
        let meta_leader = meta.raft.leader();
        let recent_ticks = 2 * u64::from(self.config.raft.heartbeat_interval_ticks);
        for (group, replica) in self.groups.iter_mut() {
            if replica.raft.role() != PeerRole::Leader {
                continue;
            }
            if let Some(to) = reconcile::colocation_target(meta_leader, &replica.raft.status(), recent_ticks)
            {
                tracing::debug!(group = group.0, %to, "moving leadership to the meta leader");
                replica.raft.transfer_leader(to);
            }
        }
    }

    fn step(&mut self, group: GroupId, message: Message) {
        match self.replica_mut(group) {
            Some(replica) => replica.raft().step(message),
            None => {
                tracing::debug!(group = group.0, from = %message.from, "message for a group not hosted here")
            }
        }
    }

    /// The replica of `group`, unless it is not hosted here or stopped applying its log.
    fn replica_mut(&mut self, group: GroupId) -> Option<&mut dyn GroupReplica> {
        let replica = if group == META_GROUP {
            self.meta.as_mut().map(|m| m as &mut dyn GroupReplica)
        } else {
            self.groups.get_mut(&group).map(|r| r as &mut dyn GroupReplica)
        };
        replica.filter(|r| r.apply_stopped().is_none())
    }

    fn handle(&mut self, request: Request<S>) {
        match request {
            Request::Propose { group, commands, replies } => match self.groups.get_mut(&group) {
                Some(replica) => replica.propose(commands, replies),
                None => fail_all(replies, group),
            },
            Request::Read { group, queries, replies } => match self.groups.get_mut(&group) {
                Some(replica) => replica.read(queries, replies),
                None => fail_all(replies, group),
            },
            Request::Membership { command, reply } => match self.meta.as_mut() {
                Some(meta) => meta.propose(vec![command.encode()], vec![reply]),
                None => fail_all(vec![reply], META_GROUP),
            },
            Request::Status { reply } => {
                let reports = hosted_even_stopped(&mut self.meta, &mut self.groups)
                    .map(|(group, r)| {
                        let (elections_started, elections_won) = r.elections();
                        let apply_stopped = r.apply_stopped().cloned();
                        let raft = r.raft().status();
                        GroupReport { group, raft, elections_started, elections_won, apply_stopped }
                    })
                    .collect();
                let _ = reply.send(reports);
            }
        }
    }

    /// One round of the Ready contract for every group with work, sharing one fsync. While
    /// the fsync runs, peer messages are taken too, so that a leader commits and answers as
    /// soon as its followers acknowledge ([`Runtime::commit_while_syncing`]).
    /// Returns whether messages were stepped while syncing (groups may have Readies again).
    async fn process_readies(
        &mut self,
        inbound: &mut mpsc::Receiver<(GroupId, Message)>,
    ) -> Result<bool, Error> {
        let mut readies = Vec::new();
        for (group, replica) in hosted(&mut self.meta, &mut self.groups) {
            let raft = replica.raft();
            if raft.has_ready() {
                readies.push((group, raft.ready()));
            }
        }
        if readies.is_empty() {
            return Ok(false);
        }
        // 1. Persist: queue every group's records, then wait for the one fsync covering them.
        // A leader's appends and heartbeats go out first, so followers write in parallel.
        // Committed entries are applied and confirmed reads served meanwhile (when there is no
        // snapshot to install first): they are durable on a majority already and do not
        // depend on this round's writes, so clients get their answers one fsync sooner.
        let mut last_ticket = None;
        let persisting = Instant::now();
        let hold = self.storage.hold_writes();
        for (group, ready) in readies.iter_mut() {
            if let Some(ticket) = self.storage.persist(*group, ready)? {
                last_ticket = Some(ticket);
            }
            ready.messages = send_early(self.outbox.as_ref(), *group, std::mem::take(&mut ready.messages));
        }
        // The whole round is queued: one write and one fdatasync take it.
        drop(hold);
        self.round_times.persist = persisting.elapsed();
        let applying = Instant::now();
        let mut directory_changed = false;
        for (group, ready) in readies.iter_mut().filter(|(_, ready)| ready.snapshot.is_none()) {
            directory_changed |= *group == META_GROUP && !ready.committed_entries.is_empty();
            if let Some(replica) = self.replica_mut(*group) {
                replica.apply(std::mem::take(&mut ready.committed_entries));
                replica.confirm_reads(std::mem::take(&mut ready.read_states));
            }
        }
        self.round_times.apply = applying.elapsed();
        let mut while_syncing = Vec::new();
        let mut deferred = Deferred::default();
        let mut stepped = false;
        if let Some(ticket) = last_ticket {
            let waiting = Instant::now();
            let installs_snapshot = readies.iter().any(|(_, ready)| ready.snapshot.is_some());
            tokio::pin!(ticket);
            loop {
                tokio::select! {
                    biased;
                    durable = &mut ticket => {
                        durable?;
                        break;
                    }
                    Some((group, message)) = inbound.recv(), if !installs_snapshot && deferred.messages.len() < INPUTS_PER_TURN_MAX => {
                        self.step_while_syncing(group, message, &mut deferred);
                        for _ in deferred.messages.len()..INPUTS_PER_TURN_MAX {
                            match inbound.try_recv() {
                                Ok((group, message)) => self.step_while_syncing(group, message, &mut deferred),
                                Err(_) => break,
                            }
                        }
                        stepped |= self.commit_while_syncing(&mut while_syncing, &mut directory_changed)?;
                    }
                }
            }
            self.round_times.sync = waiting.elapsed();
        }
        // 2. Send what had to wait for durability, 3. install a snapshot, then apply, 4. serve
        // reads (when not done above), 5. advance: the round's Readies, then those taken while
        // it synced, in order.
        let mut advanced = Vec::with_capacity(readies.len());
        let outbox = Arc::clone(&self.outbox);
        let storage = Arc::clone(&self.storage);
        for (group, ready) in readies {
            let Some(replica) = self.replica_mut(group) else { continue };
            for message in ready.messages {
                outbox.send(group, message);
            }
            if let Some(snapshot) = &ready.snapshot {
                directory_changed |= group == META_GROUP;
                replica.install_snapshot(snapshot, &storage)?;
                replica.apply(ready.committed_entries);
                replica.confirm_reads(ready.read_states);
            }
            replica.raft().advance();
            advanced.push(group);
        }
        for (group, messages, ticket) in while_syncing {
            if let Some(ticket) = ticket {
                ticket.await?;
            }
            let Some(replica) = self.replica_mut(group) else { continue };
            for message in messages {
                outbox.send(group, message);
            }
            replica.raft().advance();
        }
        let entries_between_snapshots = self.config.entries_between_snapshots;
        for group in advanced {
            let Some(replica) = self.replica_mut(group) else { continue };
            replica.observe_role();
            if replica.wants_snapshot(entries_between_snapshots) {
                self.checkpoint(group)?;
            }
        }
        if directory_changed {
            if let Some(meta) = &self.meta {
                self.directory.send_if_modified(|published| {
                    let changed = published != meta.state();
                    if changed {
                        *published = meta.state().clone();
                    }
                    changed
                });
            }
        }
        for (group, message) in deferred.messages {
            self.step(group, message);
            stepped = true;
        }
        Ok(stepped)
    }

    /// While a round syncs: steps now a follower's answer to this node's leadership of
    /// `group` in its current term (it can only commit entries or confirm reads); defers any
    /// other message, and every later one of its group, to after the round, when its Ready can
    /// be taken in the usual order (a message that installs a snapshot or demotes the leader
    /// must not change the group under the round's checkpoint decisions).
    fn step_while_syncing(&mut self, group: GroupId, message: Message, deferred: &mut Deferred) {
        let answers_this_leader = !deferred.groups.contains(&group)
            && matches!(
                message.body,
                MessageBody::AppendResponse { .. } | MessageBody::HeartbeatResponse { .. }
            )
            && self.replica_mut(group).is_some_and(|replica| {
                let raft = replica.raft();
                raft.role() == PeerRole::Leader && raft.term() == message.term
            });
        if answers_this_leader {
            self.step(group, message);
        } else {
            deferred.groups.insert(group);
            deferred.messages.push((group, message));
        }
    }

    /// While this node's fsync of a round runs: takes a second Ready from every group it still
    /// leads whose followers' answers (just stepped) committed entries or confirmed reads, and
    /// applies and answers them now instead of after the fsync and the next round's (the
    /// entries are durable on a majority; a leader's Ready here holds no entries of its own, as
    /// no proposals are taken meanwhile). Its appends go out at once; its other messages, its
    /// ticket if it wrote anything, and its advance wait in `pending`, to be done after the
    /// round's, in order. Returns whether it took any Ready.
    fn commit_while_syncing(
        &mut self,
        pending: &mut Vec<(GroupId, Vec<Message>, Option<DurableTicket>)>,
        directory_changed: &mut bool,
    ) -> Result<bool, Error> {
        let storage = Arc::clone(&self.storage);
        let outbox = Arc::clone(&self.outbox);
        let taken = pending.len();
        for (group, replica) in hosted(&mut self.meta, &mut self.groups) {
            let raft = replica.raft();
            if raft.role() != PeerRole::Leader || !raft.has_ready() {
                continue;
            }
            let mut ready = raft.ready();
            let ticket = storage.persist(group, &ready)?;
            let later = send_early(outbox.as_ref(), group, std::mem::take(&mut ready.messages));
            *directory_changed |= group == META_GROUP && !ready.committed_entries.is_empty();
            replica.apply(ready.committed_entries);
            replica.confirm_reads(ready.read_states);
            pending.push((group, later, ticket));
        }
        Ok(pending.len() > taken)
    }

    /// Checkpoints every group that keeps at least [`WAL_SEGMENTS_HELD_MAX`] WAL segments on
    /// disk behind its low-water mark, holding at least twice its last snapshot's size, however
    /// few entries it applied since that snapshot.
    fn checkpoint_groups_holding_the_wal(&mut self) -> Result<(), Error> {
        let wal = self.storage.wal();
        let mut holding = Vec::new();
        for (group, replica) in hosted(&mut self.meta, &mut self.groups) {
            let segments = wal.segments_after_mark(group);
            let bytes = (segments as u64).saturating_mul(wal.segment_bytes_max());
            if segments < WAL_SEGMENTS_HELD_MAX || bytes < replica.last_snapshot_bytes().saturating_mul(2) {
                continue;
            }
            // A group that applied nothing yet has no state to snapshot.
            if replica.raft().status().applied > LogIndex(0) {
                holding.push(group);
            }
        }
        for group in holding {
            tracing::debug!(group = group.0, "checkpoint: the group holds old WAL segments");
            self.checkpoint(group)?;
        }
        Ok(())
    }

    /// Checkpoints again every group whose last snapshot could not be saved and whose wait
    /// is over.
    fn retry_snapshots(&mut self, now: Instant) -> Result<(), Error> {
        let due: Vec<GroupId> = self
            .snapshot_retries
            .iter()
            .filter(|(_, retry)| retry.at <= now)
            .map(|(&group, _)| group)
            .collect();
        for group in due {
            tracing::info!(group = group.0, "trying again to save the group's snapshot");
            self.checkpoint(group)?;
        }
        Ok(())
    }

    /// Checkpoints a group: freezes its state machine's state at the applied index and
    /// serializes and saves it off the loop (a snapshot of a large state is hundreds of
    /// megabytes, and the loop must keep sending heartbeats and taking writes meanwhile);
    /// [`Runtime::finish_checkpoint`] completes the checkpoint once the file is durable.
    fn checkpoint(&mut self, group: GroupId) -> Result<(), Error> {
        if self.saving_snapshot.contains(&group) {
            return Ok(());
        }
        let storage = Arc::clone(&self.storage);
        let Some(replica) = self.replica_mut(group) else { return Ok(()) };
        let (meta, job) = replica.begin_snapshot()?;
        let build = move || storage.save_snapshot_file(group, meta, job);
        let save: SnapshotSave = match self.config.snapshots_on_loop {
            true => Box::pin(async move {
                tokio::time::sleep(SNAPSHOT_SAVE_DELAY_ON_LOOP).await;
                (group, build())
            }),
            false => Box::pin(async move {
                let saved = tokio::task::spawn_blocking(build).await.unwrap_or_else(|e| {
                    Err(StorageError::io(
                        "save on the snapshot thread",
                        "snapshots",
                        std::io::Error::other(e.to_string()),
                    ))
                });
                (group, saved)
            }),
        };
        self.saving_snapshot.insert(group);
        self.snapshot_saves.push(save);
        Ok(())
    }

    /// Completes a checkpoint whose snapshot file is saved: hands the snapshot to the group's
    /// Raft core (to send to followers), makes it the base of the group's durable state, with
    /// the log entries after it as they are now, and compacts the in-memory log. Skipped when
    /// the group installed a newer snapshot from its leader meanwhile (that one is the base
    /// already) or left this node. A snapshot that could not be saved (a full disk, an I/O
    /// error) is logged and retried later ([`Runtime::retry_snapshots`]): the group keeps its
    /// log, and the node keeps serving.
    fn finish_checkpoint(
        &mut self,
        group: GroupId,
        saved: Result<Snapshot, StorageError>,
    ) -> Result<(), Error> {
        self.saving_snapshot.remove(&group);
        let snapshot = match saved {
            Ok(snapshot) => {
                self.snapshot_retries.remove(&group);
                snapshot
            }
            Err(error) => {
                let backoff = self.snapshot_retries.get(&group).map_or(SNAPSHOT_RETRY_BACKOFF_MIN, |retry| {
                    (retry.backoff * 2).min(SNAPSHOT_RETRY_BACKOFF_MAX)
                });
                tracing::error!(
                    group = group.0,
                    %error,
                    retry_in_ms = backoff.as_millis() as u64,
                    "snapshot could not be saved; the group keeps its log and the node keeps serving"
                );
                self.snapshot_retries.insert(group, SnapshotRetry { at: Instant::now() + backoff, backoff });
                return Ok(());
            }
        };
        let storage = Arc::clone(&self.storage);
        let kept = self.config.entries_kept_after_snapshot;
        let Some(replica) = self.replica_mut(group) else { return Ok(()) };
        let meta = snapshot.meta.clone();
        // The log's base moves past this snapshot only by installing a newer one.
        if !replica.adopt_snapshot(snapshot) {
            tracing::debug!(group = group.0, index = %meta.index, "a newer snapshot replaced this one");
            return Ok(());
        }
        let raft = replica.raft();
        let index = meta.index;
        let last = raft.last_index();
        let hard_state = raft.hard_state();
        let tail = || (index.0 + 1..=last.0).filter_map(|i| raft.entry(LogIndex(i)).cloned()).collect();
        blocking(|| storage.finish_checkpoint(group, &meta, &hard_state, last, tail))?;
        let compact_to = LogIndex(index.0.saturating_sub(kept));
        raft.compact(compact_to).map_err(|e| Error::State(format!("compact group {}: {e}", group.0)))?;
        Ok(())
    }
}

/// A replica of `group` starting from its recovered state.
fn replica<T: StateMachine>(
    config: &RuntimeConfig,
    storage: &RaftStorage,
    group: GroupId,
    state: RecoveredState,
) -> Result<Replica<T>, Error> {
    let (sm, applied, snapshot_bytes) = match &state.snapshot {
        Some(snapshot) => {
            let sm = storage.restore(group, snapshot, T::restore_from).map_err(|reason| {
                Error::State(format!("snapshot of group {} is unreadable: {reason}", group.0))
            })?;
            (sm, snapshot.meta.index, raft_storage::image_bytes(snapshot))
        }
        None => (T::restore(&[]).map_err(Error::State)?, LogIndex(0), 0),
    };
    let mut raft_config = config.raft.clone();
    raft_config.id = config.node;
    let seed = rng_seed(config.rng_seed, config.node, group);
    let rng = Box::new(rand::rngs::SmallRng::seed_from_u64(seed));
    let raft =
        RawNode::new(raft_config, state, rng).map_err(|e| Error::State(format!("group {}: {e}", group.0)))?;
    Ok(Replica::new(group, raft, sm, applied, snapshot_bytes, Arc::clone(&config.clock)))
}

/// Whether the planted bug of deleting a moved copy before the move settled is on.
#[cfg(test)]
fn drop_before_settled() -> bool {
    crate::canary::planted(crate::canary::Canary::DropBeforeSettled)
}

/// Never outside tests.
#[cfg(not(test))]
fn drop_before_settled() -> bool {
    false
}

/// Whether the planted bug of deleting a moved copy without its tombstone is on.
#[cfg(test)]
fn drop_without_tombstone() -> bool {
    crate::canary::planted(crate::canary::Canary::DropWithoutTombstone)
}

/// Never outside tests.
#[cfg(not(test))]
fn drop_without_tombstone() -> bool {
    false
}

/// Every hosted replica that still applies its log, the meta group's first, as the runtime's
/// common view of them. A replica that stopped ([`ApplyStopped`]) takes no further part: no
/// ticks, messages or rounds, so the group's other replicas go on without it.
fn hosted<'a, S: StateMachine>(
    meta: &'a mut Option<Replica<Directory>>,
    groups: &'a mut BTreeMap<GroupId, Replica<S>>,
) -> impl Iterator<Item = (GroupId, &'a mut dyn GroupReplica)> {
    hosted_even_stopped(meta, groups).filter(|(_, r)| r.apply_stopped().is_none())
}

/// Every hosted replica, including those that stopped applying their log (for status).
fn hosted_even_stopped<'a, S: StateMachine>(
    meta: &'a mut Option<Replica<Directory>>,
    groups: &'a mut BTreeMap<GroupId, Replica<S>>,
) -> impl Iterator<Item = (GroupId, &'a mut dyn GroupReplica)> {
    let meta = meta.iter_mut().map(|m| (META_GROUP, m as &mut dyn GroupReplica));
    meta.chain(groups.iter_mut().map(|(&g, r)| (g, r as &mut dyn GroupReplica)))
}

/// Sends those of a Ready's `messages` that may go before its write is durable (a leader's
/// appends and heartbeats, so followers write in parallel); returns the others, in order.
fn send_early(outbox: &dyn Outbox, group: GroupId, messages: Vec<Message>) -> Vec<Message> {
    let (early, later): (Vec<Message>, Vec<Message>) =
        messages.into_iter().partition(Message::can_send_before_persist);
    for message in early {
        outbox.send(group, message);
    }
    later
}

fn fail_all<T>(replies: Vec<Reply<T>>, group: GroupId) {
    for reply in replies {
        let _ = reply.send(Err(Error::State(format!("group {} is not hosted on this node", group.0))));
    }
}

/// A per-node, per-group seed for election timeouts: distinct across nodes and, unless `fixed`
/// is given, across restarts.
fn rng_seed(fixed: Option<u64>, node: NodeId, group: GroupId) -> u64 {
    let base = fixed.unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
    });
    base ^ node.0.rotate_left(32) ^ group.0.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Runs blocking storage work from the loop: on a multi-thread runtime the other tasks move to
/// other workers meanwhile; a current-thread runtime (the simulator's, or a node given one
/// worker thread) just runs it, since `block_in_place` panics there: the node's other tasks
/// wait for it (a checkpoint's WAL records and file removals, a few milliseconds).
fn blocking<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::current().runtime_flavor() {
        tokio::runtime::RuntimeFlavor::CurrentThread => work(),
        _ => tokio::task::block_in_place(work),
    }
}

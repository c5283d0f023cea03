//! The event loop of one node: owns every Raft group replica it hosts, feeds them ticks,
//! peer messages and client requests, and carries out their Readies in the contract's order.
//!
//! One task drives all groups. Each turn it takes every input that is waiting, then collects
//! the Readies of all groups, queues all their records in the shared WAL and waits for *one*
//! group-commit fsync covering them, then sends, applies and answers. Inputs that arrive during
//! the fsync are batched into the next turn, so the loop batches more the busier it is.

use super::raft_storage::RaftStorage;
use super::replica::{Replica, Reply};
use super::state_machine::StateMachine;
use crate::error::Error;
use crate::storage::wal::GroupId;
use ppdb_raft::{Config, LogIndex, Message, NodeId, RawNode, RecoveredState, Status};
use rand::SeedableRng;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

/// Most inputs of one kind taken in one turn of the loop, so no source starves the others.
const INPUTS_PER_TURN_MAX: usize = 4096;

/// Ticks between two housekeeping rounds on leaders.
const HOUSEKEEPING_TICKS: u64 = 10;

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
}

/// The node's event loop and the replicas it drives.
pub struct Runtime<S: StateMachine> {
    config: RuntimeConfig,
    groups: BTreeMap<GroupId, Replica<S>>,
    storage: Arc<RaftStorage>,
    outbox: Arc<dyn Outbox>,
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
        for (group, state) in bootstrap {
            if recovered.contains_key(&group) {
                continue;
            }
            if let Some(snapshot) = &state.snapshot {
                storage.checkpoint(group, snapshot, &state.hard_state, &state.entries)?;
            }
            recovered.insert(group, state);
        }
        let mut groups = BTreeMap::new();
        for (group, state) in recovered {
            groups.insert(group, Self::replica(&config, group, state)?);
        }
        Ok(Runtime { config, groups, storage, outbox })
    }

    fn replica(config: &RuntimeConfig, group: GroupId, state: RecoveredState) -> Result<Replica<S>, Error> {
        let (sm, applied) = match &state.snapshot {
            Some(snapshot) => {
                let sm = S::restore(&snapshot.data).map_err(|reason| {
                    Error::State(format!("snapshot of group {} is unreadable: {reason}", group.0))
                })?;
                (sm, snapshot.meta.index)
            }
            None => (S::restore(&[]).map_err(Error::State)?, LogIndex(0)),
        };
        let mut raft_config = config.raft.clone();
        raft_config.id = config.node;
        let seed = rng_seed(config.node, group);
        let rng = Box::new(rand::rngs::SmallRng::seed_from_u64(seed));
        let raft = RawNode::new(raft_config, state, rng)
            .map_err(|e| Error::State(format!("group {}: {e}", group.0)))?;
        Ok(Replica::new(group, raft, sm, applied))
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
        loop {
            tokio::select! {
                biased;
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        break;
                    }
                }
                _ = ticker.tick() => {
                    ticks += 1;
                    let now_ms = (ticks % HOUSEKEEPING_TICKS == 0).then(wall_clock_ms);
                    for replica in self.groups.values_mut() {
                        replica.raft.tick();
                        if let Some(now_ms) = now_ms {
                            replica.housekeeping(now_ms);
                        }
                    }
                }
                Some((group, message)) = inbound.recv() => {
                    self.step(group, message);
                    for _ in 0..INPUTS_PER_TURN_MAX {
                        match inbound.try_recv() {
                            Ok((group, message)) => self.step(group, message),
                            Err(_) => break,
                        }
                    }
                }
                Some(request) = requests.recv() => {
                    self.handle(request);
                    for _ in 0..INPUTS_PER_TURN_MAX {
                        match requests.try_recv() {
                            Ok(request) => self.handle(request),
                            Err(_) => break,
                        }
                    }
                }
                else => break,
            }
            self.process_readies().await?;
        }
        tracing::info!(node = %self.config.node, "node runtime stopped");
        Ok(())
    }

    fn step(&mut self, group: GroupId, message: Message) {
        match self.groups.get_mut(&group) {
            Some(replica) => replica.raft.step(message),
            None => {
                tracing::debug!(group = group.0, from = %message.from, "message for a group not hosted here")
            }
        }
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
            Request::Status { reply } => {
                let reports = self
                    .groups
                    .iter()
                    .map(|(&group, r)| GroupReport {
                        group,
                        raft: r.raft.status(),
                        elections_started: r.elections_started,
                        elections_won: r.elections_won,
                    })
                    .collect();
                let _ = reply.send(reports);
            }
        }
    }

    /// One round of the Ready contract for every group with work, sharing one fsync.
    async fn process_readies(&mut self) -> Result<(), Error> {
        let mut readies = Vec::new();
        for (&group, replica) in self.groups.iter_mut() {
            if replica.raft.has_ready() {
                readies.push((group, replica.raft.ready()));
            }
        }
        if readies.is_empty() {
            return Ok(());
        }
        // 1. Persist: queue every group's records, then wait for the one fsync covering them.
        // A leader's appends and heartbeats go out first, so followers write in parallel.
        let mut last_ticket = None;
        for (group, ready) in readies.iter_mut() {
            if let Some(ticket) = self.storage.persist(*group, ready)? {
                last_ticket = Some(ticket);
            }
            let (early, later): (Vec<Message>, Vec<Message>) =
                std::mem::take(&mut ready.messages).into_iter().partition(Message::can_send_before_persist);
            for message in early {
                self.outbox.send(*group, message);
            }
            ready.messages = later;
        }
        if let Some(ticket) = last_ticket {
            ticket.await?;
        }
        for (group, ready) in readies {
            let Some(replica) = self.groups.get_mut(&group) else { continue };
            // 2. Send what had to wait for durability.
            for message in ready.messages {
                self.outbox.send(group, message);
            }
            // 3. Apply, 4. serve reads, 5. advance.
            if let Some(snapshot) = &ready.snapshot {
                replica.install_snapshot(snapshot)?;
            }
            replica.apply(ready.committed_entries);
            replica.confirm_reads(ready.read_states);
            replica.raft.advance();
            replica.observe_role();
            if replica.wants_snapshot(self.config.entries_between_snapshots) {
                self.checkpoint(group)?;
            }
        }
        Ok(())
    }

    /// Snapshots a group's state machine, makes it the base of its durable state, and
    /// compacts its in-memory log.
    fn checkpoint(&mut self, group: GroupId) -> Result<(), Error> {
        let Some(replica) = self.groups.get_mut(&group) else { return Ok(()) };
        let snapshot = replica.take_snapshot()?;
        let index = snapshot.meta.index;
        let last = replica.raft.last_index();
        let tail: Vec<_> =
            (index.0 + 1..=last.0).filter_map(|i| replica.raft.entry(LogIndex(i)).cloned()).collect();
        let hard_state = replica.raft.hard_state();
        let storage = Arc::clone(&self.storage);
        tokio::task::block_in_place(|| storage.checkpoint(group, &snapshot, &hard_state, &tail))?;
        let compact_to = LogIndex(index.0.saturating_sub(self.config.entries_kept_after_snapshot));
        replica
            .raft
            .compact(compact_to)
            .map_err(|e| Error::State(format!("compact group {}: {e}", group.0)))?;
        Ok(())
    }
}

fn fail_all<T>(replies: Vec<Reply<T>>, group: GroupId) {
    for reply in replies {
        let _ = reply.send(Err(Error::State(format!("group {} is not hosted on this node", group.0))));
    }
}

/// Milliseconds since the Unix epoch.
pub fn wall_clock_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// A per-node, per-group seed for election timeouts: distinct across nodes and restarts.
fn rng_seed(node: NodeId, group: GroupId) -> u64 {
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    now ^ node.0.rotate_left(32) ^ group.0.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

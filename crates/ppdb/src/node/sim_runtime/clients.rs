//! The clients of a run: tasks that send writes and linearizable reads through the
//! [`NodeHandle`] of random nodes, as a real client would through any node's RESP port. Only
//! the leader accepts; a refusal names the leader it knows, which the client tries next. Every
//! write carries a command id never used before, so a write is never applied twice by design;
//! acknowledged writes and the answers of reads go to the [`Observer`]. Each client has a home
//! node it counts as its entry point in the serving node's [`Traffic`], as if it were connected
//! there and its requests forwarded, so that leadership following the clients runs under the
//! run's faults.

use super::cluster::{lock, Cluster, Handles, Traffic, GROUP};
use super::observer::Observer;
use super::options::SimOptions;
use super::register::{command, Register};
use crate::error::Error;
use crate::node::handle::NodeHandle;
use ppdb_raft::sim::rng::{mix, SimRng};
use ppdb_raft::{LogIndex, NodeId, ProposeError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// The client id of the liveness phase's marker writes (the run's clients count from 1).
const MARKER_CLIENT: u64 = 0xFFFF;

/// Client requests each simulated request stands for in the traffic counts: a simulated
/// client is slow next to a real workload, and a window needs
/// [`crate::node::leadership::FOLLOW_CLIENTS_REQUESTS_MIN`] requests to move leadership.
const REQUESTS_PER_CLIENT_REQUEST: u64 = 20;

/// Chance per request, in thousandths, that a client moves to another home.
const HOME_MOVE_PER_MILLE: u32 = 3;

/// How long the marker writer waits after a refusal.
const MARKER_RETRY: Duration = Duration::from_millis(10);

/// The running clients of a run.
pub(super) struct Clients {
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Clients {
    /// Starts `opts.clients` clients, each with its own random stream drawn from `seed` and a
    /// home among the cluster's founders.
    pub fn spawn(seed: u64, opts: &SimOptions, cluster: &Cluster, observer: Arc<Observer>) -> Clients {
        let stop = Arc::new(AtomicBool::new(false));
        let founders = cluster.founders();
        // In half the runs every client starts at one home, so one node brings all the traffic.
        let mut homes = SimRng::new(mix(seed, 999));
        let shared_home = homes.chance(500).then(|| homes.pick(&founders)).flatten();
        let tasks = (1..=opts.clients)
            .map(|id| {
                let mut rng = SimRng::new(mix(seed, 1_000 + id));
                let home = shared_home.or_else(|| rng.pick(&founders)).unwrap_or(NodeId(1));
                let client = Client {
                    id,
                    rng,
                    founders: founders.clone(),
                    home,
                    handles: cluster.handles(),
                    traffic: cluster.traffic(),
                    observer: Arc::clone(&observer),
                    stop: Arc::clone(&stop),
                    opts: opts.clone(),
                    commands_sent: 0,
                    leader_hint: None,
                };
                tokio::spawn(client.run())
            })
            .collect();
        Clients { stop, tasks }
    }

    /// Asks every client to stop after its current request.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Whether every client has stopped.
    pub fn finished(&mut self) -> bool {
        self.tasks.retain(|task| !task.is_finished());
        self.tasks.is_empty()
    }
}

/// One client's state.
struct Client {
    id: u64,
    rng: SimRng,
    /// The nodes a home is chosen from.
    founders: Vec<NodeId>,
    /// The node this client counts as entering through; it moves now and then, as clients
    /// reconnect elsewhere.
    home: NodeId,
    handles: Handles,
    traffic: Traffic,
    observer: Arc<Observer>,
    stop: Arc<AtomicBool>,
    opts: SimOptions,
    commands_sent: u64,
    /// The node last known to lead.
    leader_hint: Option<NodeId>,
}

impl Client {
    /// Sends requests until told to stop, pausing a random think time before each.
    async fn run(mut self) {
        while !self.stop.load(Ordering::Relaxed) {
            let think_ms = 1 + self.rng.below(self.opts.think_ms_max);
            tokio::time::sleep(Duration::from_millis(think_ms)).await;
            if self.rng.chance(HOME_MOVE_PER_MILLE) {
                self.home = self.rng.pick(&self.founders).unwrap_or(self.home);
            }
            let Some((node, handle)) = self.target() else { continue };
            if self.rng.chance(self.opts.write_per_mille) {
                self.write(node, &handle).await;
            } else {
                self.read(node, &handle).await;
            }
        }
    }

    /// The node to ask: mostly the known leader, otherwise any running node.
    fn target(&mut self) -> Option<(NodeId, NodeHandle<Register>)> {
        let handles = lock(&self.handles);
        let hinted = self.leader_hint.filter(|_| self.rng.chance(900));
        if let Some(handle) = hinted.and_then(|id| handles.get(&id)) {
            return hinted.map(|id| (id, handle.clone()));
        }
        let ids: Vec<NodeId> = handles.keys().copied().collect();
        let id = self.rng.pick(&ids)?;
        handles.get(&id).map(|handle| (id, handle.clone()))
    }

    /// Writes a new command through `node`; an acknowledgement goes to the observer.
    async fn write(&mut self, node: NodeId, handle: &NodeHandle<Register>) {
        self.commands_sent += 1;
        let id = self.id << 32 | self.commands_sent;
        let padding = self.rng.below(self.opts.command_padding_max + 1) as usize;
        match handle.propose(GROUP, command(id, padding)).await {
            Ok(state) => {
                self.observer.acknowledged(id, state.index);
                self.leader_hint = Some(node);
                self.served_by(node);
            }
            Err(error) => self.leader_hint = leader_named(&error),
        }
    }

    /// Reads linearizably through `node`; the answer is checked by the observer.
    async fn read(&mut self, node: NodeId, handle: &NodeHandle<Register>) {
        let floor = self.observer.read_floor();
        match handle.read(GROUP, ()).await {
            Ok(state) => {
                self.observer.read_served(node, floor, state);
                self.leader_hint = Some(node);
                self.served_by(node);
            }
            Err(error) => self.leader_hint = leader_named(&error),
        }
    }
}

impl Client {
    /// Counts a request `node` served as one that entered through this client's home.
    fn served_by(&self, node: NodeId) {
        if let Some(traffic) = self.traffic.lock().unwrap_or_else(|p| p.into_inner()).get(&node) {
            traffic.record(self.home, REQUESTS_PER_CLIENT_REQUEST);
        }
    }
}

/// The leader a refusal names, if any.
pub(super) fn leader_named(error: &Error) -> Option<NodeId> {
    match error {
        Error::Consensus(ProposeError::NotLeader { leader }) => *leader,
        _ => None,
    }
}

/// Writes one marker command after faults stopped, trying every node in turn until one
/// acknowledges it (each attempt with a new command id); returns its index.
pub(super) fn spawn_marker(handles: Handles, observer: Arc<Observer>) -> JoinHandle<LogIndex> {
    tokio::spawn(async move {
        let mut attempt = 0u64;
        loop {
            let nodes: Vec<NodeHandle<Register>> = lock(&handles).values().cloned().collect();
            for handle in nodes {
                attempt += 1;
                let id = MARKER_CLIENT << 32 | attempt;
                if let Ok(state) = handle.propose(GROUP, command(id, 0)).await {
                    observer.acknowledged(id, state.index);
                    return state.index;
                }
            }
            tokio::time::sleep(MARKER_RETRY).await;
        }
    })
}

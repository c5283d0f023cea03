//! The membership changes of a run, made as an operator would make them while faults go on:
//! each spare node starts at a random time of the fault phase, with empty groups, and asks to
//! join (`Join`, with a made-up peer address: the simulated network needs none); now and then
//! a member is asked to leave (`Leave`, half the time the meta group's leader, to exercise
//! leadership hand-over), within the run's budget and only while another member stays ACTIVE
//! (the directory refuses to let the last one go). Removals of silent nodes come from the
//! meta leader itself (`MembershipPolicy::failed_after_ticks`). Where the data group is placed
//! on some nodes, the run also moves it now and then, as the rebalancer would: one replica
//! swapped for an ACTIVE node without one (`SimOptions::moves_max`), so that sources of moves
//! stay in the cluster and must delete their copies.
//!
//! Each change is proposed through [`NodeHandle::propose_membership`] on whichever node leads
//! the meta group, found as the clients find the data group's leader: a refusal names the
//! leader to try next; a timeout or a lost proposal is retried (both commands are idempotent).

use super::clients::leader_named;
use super::cluster::{lock, Cluster, Handles, GROUP, TICK_MS};
use super::observer::Observer;
use super::options::SimOptions;
use super::register::Register;
use crate::node::directory::{DirectoryCommand, DirectoryOutput, MemberStatus};
use crate::node::handle::NodeHandle;
use crate::node::placement::PlacementChange;
use crate::node::runtime::META_GROUP;
use ppdb_raft::sim::check::Verdict;
use ppdb_raft::sim::rng::{mix, SimRng};
use ppdb_raft::NodeId;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// How long a change waits after a refusal or a failure before it is proposed again.
const RETRY: Duration = Duration::from_millis(10);

/// The peer address a node is said to listen on.
pub(super) fn peer_addr(node: NodeId) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 1], 7000 + node.0 as u16))
}

/// The changes still to make, and those in flight.
pub(super) struct MembershipChanges {
    /// The run's seed, from which each change draws its own random stream.
    seed: u64,
    /// Draws the leaves.
    rng: SimRng,
    /// The running nodes, to propose through.
    handles: Handles,
    /// Where the directory and the meta leader are seen.
    observer: Arc<Observer>,
    /// Spares still to start and join, with the simulated millisecond each starts at, latest
    /// first.
    joins: Vec<(u64, NodeId)>,
    /// Leaves still allowed.
    leaves_left: u64,
    /// Probability of asking a node to leave, per tick.
    leave_per_mille: u32,
    /// Changes proposed so far (each draws its own random stream).
    proposed: u64,
    /// The leave in flight, if any (one at a time).
    leave: Option<JoinHandle<()>>,
    /// Moves of the data group still to ask for.
    moves_left: u64,
    /// Probability of asking for a move, per tick.
    move_per_mille: u32,
    /// The move asked for and not yet decided, if any (one at a time).
    moving: Option<JoinHandle<()>>,
    /// The joins in flight.
    joining: Vec<JoinHandle<()>>,
}

impl MembershipChanges {
    /// Plans the run's changes: each of `spares` joins at a random time before `join_by_ms`.
    pub fn plan(
        seed: u64,
        opts: &SimOptions,
        spares: &[NodeId],
        join_by_ms: u64,
        handles: Handles,
        observer: Arc<Observer>,
    ) -> MembershipChanges {
        let mut rng = SimRng::new(mix(seed, 2));
        let mut joins: Vec<(u64, NodeId)> = spares.iter().map(|&s| (rng.below(join_by_ms), s)).collect();
        joins.sort_by(|a, b| b.cmp(a));
        MembershipChanges {
            seed,
            rng,
            handles,
            observer,
            joins,
            leaves_left: opts.leaves_max,
            leave_per_mille: opts.leave_per_mille,
            proposed: 0,
            leave: None,
            moves_left: opts.moves_max,
            move_per_mille: opts.move_per_mille,
            moving: None,
            joining: Vec::new(),
        }
    }

    /// At simulated millisecond `now_ms` of the fault phase: starts the joins that are due
    /// and draws a leave once per tick.
    pub fn step(&mut self, cluster: &mut Cluster, now_ms: u64) -> Verdict {
        while let Some(&(at, node)) = self.joins.last().filter(|(at, _)| *at <= now_ms) {
            self.joins.pop();
            tracing::info!(%node, at, "sim: joins");
            cluster.start_spare(node)?;
            let task =
                self.propose(DirectoryCommand::Join { node, peer_addr: peer_addr(node), incarnation: None });
            self.joining.push(task);
        }
        if now_ms % TICK_MS == 0 && self.leaves_left > 0 && self.rng.chance(self.leave_per_mille) {
            self.maybe_leave();
        }
        if now_ms % TICK_MS == 0 && self.moves_left > 0 && self.rng.chance(self.move_per_mille) {
            self.maybe_move();
        }
        Ok(())
    }

    /// Whether every planned join was decided and no leave or move is in flight.
    pub fn finished(&mut self) -> bool {
        self.joining.retain(|task| !task.is_finished());
        self.leave = self.leave.take().filter(|task| !task.is_finished());
        self.moving = self.moving.take().filter(|task| !task.is_finished());
        self.joins.is_empty() && self.joining.is_empty() && self.leave.is_none() && self.moving.is_none()
    }

    /// Asks for a move of the data group, if none asked for is in flight, the group is settled
    /// and an ACTIVE node holds no replica: one of its replicas, drawn at random, goes there.
    fn maybe_move(&mut self) {
        if self.moving.as_ref().is_some_and(|task| !task.is_finished()) {
            return;
        }
        let directory = self.observer.latest_directory();
        let Some(placed) = directory.placement().group(GROUP).filter(|p| p.settled) else { return };
        let spare: Vec<NodeId> =
            directory.with_status(MemberStatus::Active).filter(|n| !placed.replicas.contains(n)).collect();
        let sources: Vec<NodeId> = placed.replicas.iter().copied().collect();
        let (Some(target), Some(source)) = (self.rng.pick(&spare), self.rng.pick(&sources)) else { return };
        let mut replicas = placed.replicas.clone();
        replicas.remove(&source);
        replicas.insert(target);
        tracing::info!(%source, %target, "sim: moves a replica");
        self.moves_left -= 1;
        let change = PlacementChange::Place { group: GROUP, replicas };
        self.moving = Some(self.propose(DirectoryCommand::Placement(change)));
    }

    /// Asks a member to leave, if none is leaving on our request and the directory lets one.
    fn maybe_leave(&mut self) {
        if self.leave.as_ref().is_some_and(|task| !task.is_finished()) {
            return;
        }
        let directory = self.observer.latest_directory();
        let active = directory.with_status(MemberStatus::Active).count();
        // The directory refuses to let the last ACTIVE member leave.
        let may_leave =
            |status| status == MemberStatus::Joining || (status == MemberStatus::Active && active > 1);
        let candidates: Vec<NodeId> =
            directory.members().iter().filter(|(_, m)| may_leave(m.status)).map(|(&id, _)| id).collect();
        let leader = self.observer.leader(META_GROUP).filter(|l| candidates.contains(l));
        let node = match leader {
            Some(leader) if self.rng.chance(500) => Some(leader),
            _ => self.rng.pick(&candidates),
        };
        if let Some(node) = node {
            tracing::info!(%node, "sim: asked to leave");
            self.leaves_left -= 1;
            self.leave = Some(self.propose(DirectoryCommand::Leave { node }));
        }
    }

    /// Proposes `command` until the directory decides it.
    fn propose(&mut self, command: DirectoryCommand) -> JoinHandle<()> {
        self.proposed += 1;
        let rng = SimRng::new(mix(self.seed, 2_000 + self.proposed));
        tokio::spawn(decide(command, rng, Arc::clone(&self.handles)))
    }
}

/// Forwards a node's reports (a data group settled on its placement) to the meta group's
/// leader, as a node's membership service does; reports queued meanwhile are dropped (the
/// runtime sends them again while the directory lacks them).
pub(super) async fn forward_reports(
    mut reports: tokio::sync::mpsc::UnboundedReceiver<DirectoryCommand>,
    seed: u64,
    handles: Handles,
) {
    let mut sent = 0u64;
    while let Some(report) = reports.recv().await {
        sent += 1;
        decide(report, SimRng::new(mix(seed, sent)), Arc::clone(&handles)).await;
        while reports.try_recv().is_ok() {}
    }
}

/// Proposes `command` through the meta group's leader until the directory decides it
/// (accepted or refused), retrying through refusals, timeouts and leader changes.
async fn decide(command: DirectoryCommand, mut rng: SimRng, handles: Handles) {
    let mut leader_hint: Option<NodeId> = None;
    loop {
        if let Some(handle) = target(&handles, leader_hint, &mut rng) {
            match handle.propose_membership(command.clone()).await {
                Ok(outcome) => return log_outcome(&command, &outcome),
                Err(error) => leader_hint = leader_named(&error),
            }
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// The node to ask: the hinted leader if it runs, otherwise any running node.
fn target(handles: &Handles, hint: Option<NodeId>, rng: &mut SimRng) -> Option<NodeHandle<Register>> {
    let handles = lock(handles);
    if let Some(handle) = hint.and_then(|id| handles.get(&id)) {
        return Some(handle.clone());
    }
    let ids: Vec<NodeId> = handles.keys().copied().collect();
    rng.pick(&ids).and_then(|id| handles.get(&id).cloned())
}

/// Logs what the directory decided.
fn log_outcome(command: &DirectoryCommand, outcome: &DirectoryOutput) {
    match outcome {
        Ok(()) => tracing::info!(?command, "sim: directory change accepted"),
        Err(reason) => tracing::info!(?command, %reason, "sim: directory change refused"),
    }
}

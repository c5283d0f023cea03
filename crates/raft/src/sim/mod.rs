//! The deterministic simulator: whole Raft groups in one thread, over a faulty simulated
//! network, with crashes and restarts, client writes and reads, snapshots and membership
//! changes, all drawn from one seed. After every step the checkers in [`check`] verify the
//! safety properties; each run ends with a liveness phase (faults off, everyone restarted):
//! a leader must emerge and a new command must commit everywhere within a bounded time.
//!
//! A failing run reports its seed; `PPDB_SEED=<seed> cargo test -p ppdb-raft sim` replays it
//! exactly, because nothing in a run depends on anything but the seed.

pub mod check;
pub mod network;
pub mod node;
pub mod options;
pub mod rng;

use crate::membership::{ConfChange, ConfChangeKind};
use crate::message::Message;
use crate::raft::RecoveredState;
use crate::types::{LogIndex, NodeId, PeerRole, Term};
use check::election_safety::ElectionSafety;
use check::log_matching::LogMatching;
use check::reads::LinearizableReads;
use check::state_machine::CommittedHistory;
use check::{Verdict, Violation};
use network::{Faults, Network};
use node::{command_id, payload_digest, SimNode};
use options::SimOptions;
use rng::{mix, SimRng};
use std::collections::BTreeMap;
use std::fmt;

/// Ticks the liveness phase may take, in election timeouts.
const LIVENESS_ELECTION_TIMEOUTS_MAX: u64 = 60;

/// How a run failed.
#[derive(Debug, Clone)]
pub struct SimFailure {
    /// The seed that reproduces it.
    pub seed: u64,
    /// The tick at which the violation was seen.
    pub tick: u64,
    /// The violation.
    pub violation: Violation,
}

impl fmt::Display for SimFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seed {} failed at tick {}: {} (replay: PPDB_SEED={} cargo test -p ppdb-raft sim)",
            self.seed, self.tick, self.violation, self.seed
        )
    }
}

/// What a passing run did, for sanity checks and determinism tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimReport {
    /// Digest of every delivered message and applied entry: equal for equal seeds.
    pub trace_digest: u64,
    /// Client commands acknowledged.
    pub acknowledged: usize,
    /// Linearizable reads answered.
    pub reads: u64,
    /// Terms that had a leader.
    pub terms_with_leader: usize,
    /// Crashes injected.
    pub crashes: u64,
    /// Ticks the liveness phase needed.
    pub liveness_ticks: u64,
}

/// Makes a node's storage from its initial state (see [`node::SimStorage`]).
pub type StorageFactory<'a> = dyn Fn(NodeId, RecoveredState) -> Box<dyn node::SimStorage> + 'a;

fn default_storage(_: NodeId, state: RecoveredState) -> Box<dyn node::SimStorage> {
    let mut disk =
        node::DurableState { hard_state: state.hard_state, snapshot: state.snapshot, entries: state.entries };
    if disk.snapshot.is_none() {
        disk.snapshot = Some(crate::message::Snapshot::default());
    }
    Box::new(disk)
}

/// Runs one simulation with every node persisting through `storage`.
pub fn run_with_storage(
    seed: u64,
    ticks: u64,
    storage: &StorageFactory<'_>,
) -> Result<SimReport, SimFailure> {
    Simulation::with_storage(seed, storage).run(ticks)
}

/// Runs one simulation of `ticks` faulty ticks plus the liveness phase.
pub fn run(seed: u64, ticks: u64) -> Result<SimReport, SimFailure> {
    let mut sim = Simulation::new(seed);
    sim.run(ticks)
}

/// Runs one simulation with explicit options (used to plant canaries or pin a shape).
pub fn run_with(
    seed: u64,
    ticks: u64,
    adjust: impl FnOnce(&mut SimOptions),
) -> Result<SimReport, SimFailure> {
    let mut sim = Simulation::new(seed);
    adjust(&mut sim.opts);
    sim.net.faults = faults_of(&sim.opts);
    sim.reboot_all();
    sim.run(ticks)
}

fn faults_of(opts: &SimOptions) -> Faults {
    Faults {
        drop_per_mille: opts.drop_per_mille,
        duplicate_per_mille: opts.duplicate_per_mille,
        delay_ticks_max: opts.delay_ticks_max,
    }
}

/// A client command waiting for its outcome: proposed at (node, index) in `term`.
struct PendingCommand {
    id: u64,
    term: Term,
}

/// The state of one run.
pub struct Simulation {
    seed: u64,
    rng: SimRng,
    /// The run's options.
    pub opts: SimOptions,
    now: u64,
    nodes: BTreeMap<NodeId, SimNode>,
    net: Network,
    proposals: BTreeMap<(NodeId, LogIndex), PendingCommand>,
    next_command: u64,
    next_read: u64,
    boots: u64,
    crashes: u64,
    trace: u64,
    election_safety: ElectionSafety,
    log_matching: LogMatching,
    history: CommittedHistory,
    reads: LinearizableReads,
}

impl Simulation {
    /// A run for `seed`, its options drawn by swarm testing, over the exact model of the
    /// Ready contract's durability.
    pub fn new(seed: u64) -> Simulation {
        Simulation::with_storage(seed, &default_storage)
    }

    /// A run for `seed` whose nodes persist through `storage(node, initial state)`.
    pub fn with_storage(seed: u64, storage: &StorageFactory<'_>) -> Simulation {
        let mut rng = SimRng::new(seed);
        let opts = SimOptions::swarm(seed, &mut rng);
        let voters: Vec<NodeId> = (1..=opts.initial_voters).map(NodeId).collect();
        let mut nodes = BTreeMap::new();
        for id in 1..=opts.initial_voters + opts.spare_nodes {
            let id = NodeId(id);
            let state = if voters.contains(&id) {
                RecoveredState::bootstrap(voters.clone())
            } else {
                RecoveredState::default()
            };
            nodes.insert(id, SimNode::new(id, storage(id, state)));
        }
        let net = Network::new(faults_of(&opts));
        let mut sim = Simulation {
            seed,
            rng,
            opts,
            now: 0,
            nodes,
            net,
            proposals: BTreeMap::new(),
            next_command: 1,
            next_read: 1,
            boots: 0,
            crashes: 0,
            trace: seed,
            election_safety: ElectionSafety::default(),
            log_matching: LogMatching::default(),
            history: CommittedHistory::default(),
            reads: LinearizableReads::default(),
        };
        sim.reboot_all();
        sim
    }

    fn fail(&self, violation: Violation) -> SimFailure {
        SimFailure { seed: self.seed, tick: self.now, violation }
    }

    fn ids(&self) -> Vec<NodeId> {
        self.nodes.keys().copied().collect()
    }

    fn boot(&mut self, id: NodeId) -> Verdict {
        let mut config = self.opts.raft.clone();
        config.id = id;
        self.boots += 1;
        tracing::info!(tick = self.now, node = %id, "sim: boot");
        let rng_seed = mix(self.seed, self.boots);
        let Some(node) = self.nodes.get_mut(&id) else { return Ok(()) };
        node.boot(config, rng_seed).map_err(|e| Violation {
            invariant: "recovery",
            detail: format!("node {id} cannot restart: {e}"),
        })
    }

    fn reboot_all(&mut self) {
        for id in self.ids() {
            if let Some(node) = self.nodes.get_mut(&id) {
                node.crash();
            }
            // Bootstrap state is always valid; a failure here is a bug in the simulator itself.
            let booted = self.boot(id);
            debug_assert!(booted.is_ok(), "{booted:?}");
        }
    }

    /// Runs `ticks` ticks with faults, then the liveness phase.
    pub fn run(&mut self, ticks: u64) -> Result<SimReport, SimFailure> {
        for _ in 0..ticks {
            self.step(true).map_err(|v| self.fail(v))?;
        }
        let liveness_ticks = self.liveness().map_err(|v| self.fail(v))?;
        self.history.check_acknowledged_kept().map_err(|v| self.fail(v))?;
        Ok(SimReport {
            trace_digest: self.trace,
            acknowledged: self.history.acknowledged_count(),
            reads: self.reads.served(),
            terms_with_leader: self.election_safety.terms_with_leader(),
            crashes: self.crashes,
            liveness_ticks,
        })
    }

    /// One tick: maybe inject events, deliver due messages, tick every node, drive Readies.
    fn step(&mut self, faults: bool) -> Verdict {
        self.now += 1;
        if faults {
            self.inject_events()?;
        }
        for m in self.net.due(self.now) {
            self.trace = mix(self.trace, mix(m.from.0 << 32 | m.to.0, m.term.0));
            tracing::trace!(tick = self.now, from = %m.from, to = %m.to, term = %m.term, body = ?m.body, "sim: deliver");
            if let Some(raft) = self.nodes.get_mut(&m.to).and_then(|n| n.raft.as_mut()) {
                raft.step(m);
            }
        }
        for id in self.ids() {
            let skip = self.rng.chance(self.opts.tick_skip_per_mille);
            if let Some(raft) = self.nodes.get_mut(&id).and_then(|n| n.raft.as_mut()) {
                if !skip {
                    raft.tick();
                }
            }
        }
        for id in self.ids() {
            if self.finish_some_writes(id, false, faults)? {
                for _ in 0..3 {
                    if !self.drive_ready(id, faults)? {
                        break;
                    }
                }
            }
            self.observe_role(id, faults)?;
        }
        Ok(())
    }

    /// Takes one Ready of node `id` and starts its write; returns whether there was one (and
    /// the node is still up). Writes finish later, in order ([`Simulation::finish_write`]):
    /// at once when the run keeps no writes in flight, or when the Ready carries a snapshot.
    fn drive_ready(&mut self, id: NodeId, faults: bool) -> Result<bool, Violation> {
        let Some(node) = self.nodes.get_mut(&id) else { return Ok(false) };
        let Some(raft) = node.raft.as_mut() else { return Ok(false) };
        if !raft.has_ready() {
            return Ok(false);
        }
        let mut ready = raft.ready();
        // Messages allowed to leave before the write (a leader's appends) do so, as the node
        // runtime sends them; a crash below then happens after they left.
        let (early, later): (Vec<Message>, Vec<Message>) =
            std::mem::take(&mut ready.messages).into_iter().partition(Message::can_send_before_persist);
        ready.messages = later;
        for m in early {
            self.send(m);
        }
        // Committed entries (already durable on a majority) are applied, and confirmed reads
        // served, before the write, as the node runtime does when there is no snapshot: a
        // crash below then happens after clients saw their answers.
        let snapshot = ready.snapshot.is_some();
        if !snapshot {
            self.apply_ready(id, &mut ready)?;
        }
        self.check_persisted(id, &ready.entries)?;
        let Some(node) = self.nodes.get_mut(&id) else { return Ok(false) };
        node.writes_in_flight.push_back(ready);
        let max = if snapshot { 0 } else { self.opts.writes_in_flight_max };
        while self.nodes.get(&id).is_some_and(|n| n.writes_in_flight.len() > max) {
            if !self.finish_write(id, faults)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Makes node `id`'s oldest write in flight durable: persists it (or crashes in the middle
    /// of it), sends what waited for it, installs its snapshot, advances. Returns whether the
    /// node is still up.
    fn finish_write(&mut self, id: NodeId, faults: bool) -> Result<bool, Violation> {
        let Some(node) = self.nodes.get_mut(&id) else { return Ok(false) };
        let Some(mut ready) = node.writes_in_flight.pop_front() else { return Ok(true) };
        // Crash in the middle of the write: before persisting, or with a torn write. Every
        // later write in flight is lost with it.
        if faults && self.rng.chance(self.opts.crash_per_mille / 4) {
            let torn = self.rng.below(ready.entries.len() as u64 + 1) as usize;
            let persisted_part = self.rng.chance(500).then_some(torn);
            if let Some(n) = persisted_part {
                if let Some(node) = self.nodes.get_mut(&id) {
                    node.persist(&ready, Some(n)).map_err(storage_failure(id))?;
                }
            }
            self.crash(id);
            return Ok(false);
        }
        if let Some(node) = self.nodes.get_mut(&id) {
            node.persist(&ready, None).map_err(storage_failure(id))?;
        }
        for m in std::mem::take(&mut ready.messages) {
            self.send(m);
        }
        if let Some(snapshot) = &ready.snapshot {
            let Some(node) = self.nodes.get_mut(&id) else { return Ok(false) };
            node.sm = node::StateMachine::from_snapshot(snapshot);
            let (index, digest) = (node.sm.applied, node.sm.digest);
            self.history.check_digest(id, index, digest)?;
            self.apply_ready(id, &mut ready)?;
        }
        let Some(node) = self.nodes.get_mut(&id) else { return Ok(false) };
        let applied = node.sm.applied;
        node.confirmed_reads.retain(|&(_, index)| index > applied);
        if let Some(raft) = node.raft.as_mut() {
            raft.advance();
        }
        Ok(true)
    }

    /// Finishes some of node `id`'s writes in flight, oldest first (each with the run's odds;
    /// all of them without faults, so that the liveness bound need not count slow disks).
    fn finish_some_writes(&mut self, id: NodeId, all: bool, faults: bool) -> Result<bool, Violation> {
        while self.nodes.get(&id).is_some_and(|n| !n.writes_in_flight.is_empty()) {
            if !all && faults && !self.rng.chance(self.opts.write_finish_per_mille) {
                break;
            }
            if !self.finish_write(id, faults)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Applies a Ready's committed entries and records its confirmed reads.
    fn apply_ready(&mut self, id: NodeId, ready: &mut crate::Ready) -> Verdict {
        for entry in &ready.committed_entries {
            self.apply(id, entry)?;
        }
        for read in std::mem::take(&mut ready.read_states) {
            self.reads.observe_read_index(read.ctx, id, read.index)?;
            if let Some(node) = self.nodes.get_mut(&id) {
                node.confirmed_reads.push((read.ctx, read.index));
            }
        }
        Ok(())
    }

    fn send(&mut self, m: Message) {
        self.net.send(self.now, m, &mut self.rng);
    }

    /// Log matching, checked on every entry as it is persisted.
    fn check_persisted(&mut self, id: NodeId, entries: &[crate::message::Entry]) -> Verdict {
        let Some(raft) = self.nodes.get(&id).and_then(|n| n.raft.as_ref()) else { return Ok(()) };
        for entry in entries {
            let prev_term = raft.term_at(entry.index.prev()).unwrap_or_default();
            let digest = payload_digest(&entry.payload);
            self.log_matching.observe_persisted(id, entry, prev_term, digest)?;
        }
        Ok(())
    }

    /// Applies a committed entry at node `id`: exactly once, in order, same everywhere.
    fn apply(&mut self, id: NodeId, entry: &crate::message::Entry) -> Verdict {
        let Some(node) = self.nodes.get_mut(&id) else { return Ok(()) };
        if entry.index != node.sm.applied.next() {
            return check::violation(
                "state machine safety",
                format!("node {id} applied {} right after {} (gap or repeat)", entry.index, node.sm.applied),
            );
        }
        node.sm.apply(entry);
        let sm_digest = node.sm.digest;
        self.trace = mix(self.trace, mix(id.0, entry.index.0));
        let command = command_id(&entry.payload);
        self.history.observe_apply(
            id,
            entry.index,
            entry.term,
            payload_digest(&entry.payload),
            sm_digest,
            command,
        )?;
        if let Some(pending) = self.proposals.remove(&(id, entry.index)) {
            if pending.term == entry.term && command == Some(pending.id) {
                self.history.acknowledge(pending.id, entry.index);
            }
        }
        Ok(())
    }

    /// Election safety and leader completeness, checked when a node is seen leading. With
    /// faults, a new leader sometimes crashes at once, before its first entry commits: quick
    /// successions of leaders with uncommitted entries of older terms are where the commit
    /// rule matters (Raft, figure 8).
    fn observe_role(&mut self, id: NodeId, faults: bool) -> Verdict {
        let Some(node) = self.nodes.get_mut(&id) else { return Ok(()) };
        let Some(raft) = node.raft.as_ref() else { return Ok(()) };
        if raft.role() != PeerRole::Leader {
            return Ok(());
        }
        let term = raft.term();
        self.election_safety.observe_leader(id, term)?;
        if node.led_term != Some(term) {
            node.led_term = Some(term);
            check::leader_completeness::check_new_leader(raft, &self.history)?;
            if faults && self.rng.chance(self.opts.new_leader_crash_per_mille) {
                self.crash(id);
            }
        }
        Ok(())
    }

    fn crash(&mut self, id: NodeId) {
        tracing::info!(tick = self.now, node = %id, "sim: crash");
        if let Some(node) = self.nodes.get_mut(&id) {
            node.crash();
        }
        self.crashes += 1;
        self.proposals.retain(|(n, _), _| *n != id);
        self.reads.forget_node(id);
    }

    fn live(&self) -> Vec<NodeId> {
        self.nodes.iter().filter(|(_, n)| n.raft.is_some()).map(|(&id, _)| id).collect()
    }

    fn leaders(&self) -> Vec<NodeId> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.raft.as_ref().is_some_and(|r| r.role() == PeerRole::Leader))
            .map(|(&id, _)| id)
            .collect()
    }

    /// Random faults and client activity for this tick.
    fn inject_events(&mut self) -> Verdict {
        let o = self.opts.clone();
        if self.rng.chance(o.crash_per_mille) {
            // Half the crashes hit a leader: leader changes are where the protocol is subtle.
            let victims = if self.rng.chance(500) { self.leaders() } else { self.live() };
            if let Some(id) = self.rng.pick(&victims) {
                self.crash(id);
            }
        }
        if self.rng.chance(o.restart_per_mille) {
            let down: Vec<NodeId> =
                self.nodes.iter().filter(|(_, n)| n.raft.is_none()).map(|(&id, _)| id).collect();
            if let Some(id) = self.rng.pick(&down) {
                self.boot(id)?;
            }
        }
        if self.rng.chance(o.partition_per_mille) {
            self.partition();
        }
        if self.rng.chance(o.heal_per_mille) {
            self.net.heal();
        }
        if self.rng.chance(o.propose_per_mille) {
            self.propose();
        }
        if self.rng.chance(o.read_per_mille) {
            self.read();
        }
        if self.rng.chance(o.snapshot_per_mille) {
            if let Some(id) = self.rng.pick(&self.live()) {
                let trailing = self.rng.below(8);
                // Like the node runtime's checkpoint, which waits for every write queued
                // before it: the log tail the snapshot keeps must be durable.
                let up = self.finish_some_writes(id, true, false)?;
                if let Some(node) = self.nodes.get_mut(&id).filter(|_| up) {
                    node.snapshot_and_compact(trailing).map_err(|e| Violation {
                        invariant: "snapshot",
                        detail: format!("node {id}: {e}"),
                    })?;
                }
            }
        }
        if self.rng.chance(o.conf_change_per_mille) {
            self.change_membership();
        }
        if self.rng.chance(o.transfer_per_mille) {
            self.transfer_leadership();
        }
        Ok(())
    }

    fn partition(&mut self) {
        tracing::info!(tick = self.now, "sim: partition");
        let ids = self.ids();
        match self.rng.below(3) {
            0 => {
                if let Some(id) = self.rng.pick(&ids) {
                    self.net.split(&[id], &ids);
                }
            }
            1 => {
                let side: Vec<NodeId> = ids.iter().copied().filter(|_| self.rng.chance(500)).collect();
                self.net.split(&side, &ids);
            }
            _ => {
                if let (Some(a), Some(b)) = (self.rng.pick(&ids), self.rng.pick(&ids)) {
                    self.net.cut_one_way(a, b);
                }
            }
        }
    }

    /// A client sends 1-4 commands to a node it believes leads (or any node).
    fn propose(&mut self) {
        let target = match self.rng.pick(&self.leaders()) {
            Some(id) if self.rng.chance(900) => id,
            _ => match self.rng.pick(&self.live()) {
                Some(id) => id,
                None => return,
            },
        };
        let count = 1 + self.rng.below(4);
        for _ in 0..count {
            let id = self.next_command;
            self.next_command += 1;
            let Some(raft) = self.nodes.get_mut(&target).and_then(|n| n.raft.as_mut()) else { return };
            let term = raft.term();
            if let Ok(index) = raft.propose(id.to_le_bytes().to_vec()) {
                self.proposals.insert((target, index), PendingCommand { id, term });
            }
        }
    }

    /// A client issues a linearizable read at any live node.
    fn read(&mut self) {
        let Some(target) = self.rng.pick(&self.live()) else { return };
        let ctx = self.next_read;
        self.next_read += 1;
        let floor = self.history.highest_acknowledged();
        let Some(raft) = self.nodes.get_mut(&target).and_then(|n| n.raft.as_mut()) else { return };
        if raft.read_index(ctx).is_ok() {
            self.reads.issue(ctx, target, floor);
        }
    }

    /// Proposes a random single-server change at a leader.
    fn change_membership(&mut self) {
        let Some(leader) = self.rng.pick(&self.leaders()) else { return };
        let all: Vec<NodeId> = self.nodes.keys().copied().collect();
        let Some(raft) = self.nodes.get_mut(&leader).and_then(|n| n.raft.as_mut()) else { return };
        let membership = raft.membership().clone();
        let outsiders: Vec<NodeId> = all.iter().copied().filter(|&n| !membership.contains(n)).collect();
        let learners: Vec<NodeId> = membership.learners.iter().copied().collect();
        let voters: Vec<NodeId> = membership.voters.iter().copied().collect();
        let change = match self.rng.below(3) {
            0 => self.rng.pick(&outsiders).map(|node| ConfChange { kind: ConfChangeKind::AddLearner, node }),
            1 => self.rng.pick(&learners).map(|node| ConfChange { kind: ConfChangeKind::AddVoter, node }),
            _ if voters.len() > 2 => {
                self.rng.pick(&voters).map(|node| ConfChange { kind: ConfChangeKind::Remove, node })
            }
            _ => self.rng.pick(&learners).map(|node| ConfChange { kind: ConfChangeKind::Remove, node }),
        };
        let Some(raft) = self.nodes.get_mut(&leader).and_then(|n| n.raft.as_mut()) else { return };
        if let Some(change) = change {
            tracing::info!(tick = self.now, leader = %leader, ?change, "sim: propose membership change");
            // Refusals (a change in progress, too early in the term) are part of the protocol.
            let _ = raft.propose_conf_change(change);
        }
    }

    fn transfer_leadership(&mut self) {
        let Some(leader) = self.rng.pick(&self.leaders()) else { return };
        let Some(raft) = self.nodes.get_mut(&leader).and_then(|n| n.raft.as_mut()) else { return };
        let voters: Vec<NodeId> = raft.membership().voters.iter().copied().collect();
        if let Some(to) = self.rng.pick(&voters) {
            raft.transfer_leader(to);
        }
    }

    /// Faults stop, every node restarts, the network heals. A leader must emerge and a fresh
    /// command must be applied by every member within the bound. Returns the ticks it took.
    fn liveness(&mut self) -> Result<u64, Violation> {
        self.net.heal();
        self.net.faults = Faults { drop_per_mille: 0, duplicate_per_mille: 0, delay_ticks_max: 1 };
        for id in self.ids() {
            if self.nodes.get(&id).is_some_and(|n| n.raft.is_none()) {
                self.boot(id)?;
            }
        }
        // Time to elect, plus time to stream the backlog to the slowest member at one
        // append batch per round trip.
        let last = self.nodes.values().filter_map(|n| n.raft.as_ref()).map(|r| r.last_index().0).max();
        let slowest = self.nodes.values().map(|n| n.sm.applied.0).min();
        let backlog = last.unwrap_or(0).saturating_sub(slowest.unwrap_or(0));
        let round_trips = backlog / self.opts.raft.append_entries_max as u64 + 1;
        let bound = LIVENESS_ELECTION_TIMEOUTS_MAX * u64::from(self.opts.raft.election_timeout_ticks)
            + round_trips * 2 * (self.opts.delay_ticks_max + 1);
        let start = self.now;
        let mut marker = 0;
        let mut marker_at: Option<(NodeId, Term, LogIndex)> = None;
        while self.now - start < bound {
            self.step(false)?;
            if marker_at.is_none() {
                if let Some(leader) = self.leaders().first().copied() {
                    // Each attempt is a new command: a lost one is never retried by replay.
                    marker = self.next_command;
                    self.next_command += 1;
                    if let Some(raft) = self.nodes.get_mut(&leader).and_then(|n| n.raft.as_mut()) {
                        if let Ok(index) = raft.propose(marker.to_le_bytes().to_vec()) {
                            marker_at = Some((leader, raft.term(), index));
                        }
                    }
                }
            }
            if let Some(at) = marker_at {
                match self.marker_outcome(at, marker) {
                    MarkerOutcome::Everywhere => return Ok(self.now - start),
                    MarkerOutcome::Pending => {}
                    MarkerOutcome::Lost => marker_at = None,
                }
            }
        }
        Err(Violation {
            invariant: "liveness",
            detail: format!(
                "no command committed on every member within {bound} ticks after faults stopped \
                 (marker: {marker_at:?}, in flight: {}); nodes: {}",
                self.net.in_flight(),
                self.describe_nodes()
            ),
        })
    }

    /// One line per node: role, term, log cursors, membership and followers' progress.
    fn describe_nodes(&self) -> String {
        let mut out = String::new();
        for (id, node) in &self.nodes {
            let Some(raft) = node.raft.as_ref() else { continue };
            let st = raft.status();
            let followers: Vec<String> =
                st.followers.iter().map(|f| format!("{}:{}:{:?}", f.id, f.matched, f.state)).collect();
            out.push_str(&format!(
                "\n  node {id} {:?} term {} leader {:?} commit {} applied {} last {} snap {} voters {:?} learners {:?} progress [{}]",
                st.role,
                st.term,
                st.leader.map(|l| l.0),
                st.commit,
                node.sm.applied,
                st.last_index,
                st.snapshot_index,
                st.membership.voters.iter().map(|v| v.0).collect::<Vec<_>>(),
                st.membership.learners.iter().map(|v| v.0).collect::<Vec<_>>(),
                followers.join(" ")
            ));
        }
        out
    }

    fn marker_outcome(&self, (leader, term, index): (NodeId, Term, LogIndex), marker: u64) -> MarkerOutcome {
        let Some(raft) = self.nodes.get(&leader).and_then(|n| n.raft.as_ref()) else {
            return MarkerOutcome::Lost;
        };
        let holds_marker = raft.entry(index).is_some_and(|e| command_id(&e.payload) == Some(marker));
        if !holds_marker && raft.snapshot_index() < index {
            return MarkerOutcome::Lost;
        }
        if raft.commit_index() < index && (raft.role() != PeerRole::Leader || raft.term() != term) {
            return MarkerOutcome::Lost; // proposed to a leader that has since lost its office
        }
        let members: Vec<NodeId> = raft.membership().members().collect();
        let everywhere = members.iter().all(|m| self.nodes.get(m).is_some_and(|n| n.sm.applied >= index));
        if everywhere && holds_marker {
            MarkerOutcome::Everywhere
        } else {
            MarkerOutcome::Pending
        }
    }
}

fn storage_failure(id: NodeId) -> impl FnOnce(String) -> Violation {
    move |e| Violation { invariant: "storage", detail: format!("node {id}: {e}") }
}

enum MarkerOutcome {
    Everywhere,
    Pending,
    Lost,
}

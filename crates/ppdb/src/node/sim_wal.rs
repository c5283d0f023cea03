//! The Raft simulator run against the real storage code: every simulated node persists through
//! [`RaftStorage`] (the shared WAL and snapshot files) on a [`SimDisk`], and a crash keeps only
//! what was synced. The simulator's checkers (no acknowledged write lost, state machine safety,
//! ...) then judge the WAL's encoding, recovery (torn tails included) and checkpoints with
//! segment deletion, not just the Ready contract's model. Each node's disk is seeded from the
//! run's seed, persists wait for their tickets, and a crash first lets the writer drain, so
//! runs replay exactly.

use super::raft_storage::RaftStorage;
use crate::storage::disk::{CrashFaults, Disk, SimDisk};
use crate::storage::wal::{GroupId, WalConfig};
use ppdb_raft::sim::node::SimStorage;
use ppdb_raft::{Entry, HardState, NodeId, Ready, RecoveredState, Snapshot};
use std::path::Path;
use std::sync::Arc;

const GROUP: GroupId = GroupId(1);

/// Small preallocated segments: they roll often, and every restart's recovery reads (and every
/// crash copies) segments in memory, so production's 16 MiB would make the sweep crawl.
fn wal_config() -> WalConfig {
    WalConfig { segment_bytes_max: 64 * 1024, ..WalConfig::default() }
}

/// A simulated node's storage: the real WAL on a simulated disk.
struct WalOnSimDisk {
    disk: Arc<SimDisk>,
    storage: Option<RaftStorage>,
}

impl WalOnSimDisk {
    fn new(seed: u64, initial: RecoveredState) -> Result<WalOnSimDisk, String> {
        let mut this = WalOnSimDisk { disk: Arc::new(SimDisk::new(seed)), storage: None };
        if let Some(snapshot) = &initial.snapshot {
            this.open()?
                .checkpoint(GROUP, snapshot, &initial.hard_state, &initial.entries)
                .map_err(|e| e.to_string())?;
        }
        Ok(this)
    }

    fn open(&mut self) -> Result<&RaftStorage, String> {
        if self.storage.is_none() {
            let disk: Arc<dyn Disk> = self.disk.clone();
            let (storage, _) =
                RaftStorage::open(disk, Path::new("/node"), wal_config()).map_err(|e| e.to_string())?;
            self.storage = Some(storage);
        }
        self.storage.as_ref().ok_or_else(|| "storage not open".to_string())
    }
}

impl SimStorage for WalOnSimDisk {
    fn persist(&mut self, ready: &Ready, torn_entries: Option<usize>) -> Result<(), String> {
        let storage = self.open()?;
        match torn_entries {
            None => {
                if let Some(ticket) = storage.persist(GROUP, ready).map_err(|e| e.to_string())? {
                    ticket.wait().map_err(|e| e.to_string())?;
                }
            }
            Some(n) => {
                // The node crashes right after this write (the simulator crashes it next).
                let partial = Ready {
                    snapshot: ready.snapshot.clone(),
                    entries: ready.entries[..n.min(ready.entries.len())].to_vec(),
                    ..Ready::default()
                };
                drop(storage.persist(GROUP, &partial).map_err(|e| e.to_string())?);
            }
        }
        Ok(())
    }

    fn save_snapshot(
        &mut self,
        snapshot: &Snapshot,
        hard_state: HardState,
        tail: &[Entry],
    ) -> Result<(), String> {
        self.open()?.checkpoint(GROUP, snapshot, &hard_state, tail).map(drop).map_err(|e| e.to_string())
    }

    fn crash(&mut self) {
        // Let the writer finish what was queued first, so what a crash finds on the disk does
        // not depend on thread timing and a seed replays exactly; the crash then still loses
        // anything unsynced and may tear the last write.
        if let Some(storage) = self.storage.take() {
            let _ = storage.close();
        }
        self.disk.crash(CrashFaults { torn_writes: true, flip_bit: false });
    }

    fn recover(&mut self) -> Result<RecoveredState, String> {
        self.storage = None;
        let disk: Arc<dyn Disk> = self.disk.clone();
        let (storage, mut recovered) =
            RaftStorage::open(disk, Path::new("/node"), wal_config()).map_err(|e| e.to_string())?;
        let mut state = recovered.remove(&GROUP).unwrap_or_default();
        // The simulator's state machine reads its image from the snapshot data, where the
        // storage keeps the file's name: hand it the image.
        if let Some(snapshot) = state.snapshot.as_mut() {
            let image = storage.restore(GROUP, snapshot, |image| {
                let mut data = Vec::new();
                image.read_to_end(&mut data).map_err(|e| e.to_string())?;
                Ok(data)
            })?;
            snapshot.data = Arc::new(image);
        }
        self.storage = Some(storage);
        Ok(state)
    }
}

fn factory(seed: u64) -> impl Fn(NodeId, RecoveredState) -> Box<dyn SimStorage> {
    move |node, initial| match WalOnSimDisk::new(seed ^ node.0.rotate_left(40), initial) {
        Ok(storage) => Box::new(storage),
        Err(e) => panic!("cannot create node {node}'s simulated storage: {e}"),
    }
}

/// Seeds of the WAL-backed sweep (each run is slower than the in-memory model: a thread
/// hand-off per persist).
const SEEDS: u64 = 100;
const TICKS: u64 = 3_000;

#[test]
fn the_simulator_passes_with_the_real_wal_on_a_crashing_disk() {
    let seeds: Vec<u64> = match std::env::var("PPDB_SEED").ok().and_then(|s| s.parse().ok()) {
        Some(seed) => vec![seed],
        None => (0..SEEDS).collect(),
    };
    for seed in seeds {
        let storage = factory(seed);
        if let Err(failure) = ppdb_raft::sim::run_with_storage(seed, TICKS, &storage) {
            panic!("{failure} (replay: PPDB_SEED={seed} cargo test -p ppdb --lib sim_wal)");
        }
    }
}

#[test]
fn a_wal_backed_run_replays_exactly() {
    let a = ppdb_raft::sim::run_with_storage(3, 800, &factory(3)).unwrap_or_else(|f| panic!("{f}"));
    let b = ppdb_raft::sim::run_with_storage(3, 800, &factory(3)).unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(a, b);
    assert!(a.crashes > 0 || a.acknowledged > 0);
}

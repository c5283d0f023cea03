//! [`SimDisk`]: an in-memory disk with crash and fault injection, driven by one seed.
//!
//! Model (after redb's crash-test backend):
//! - Every file has two images: *written* (what reads return) and *synced* (what survives a
//!   crash). [`DiskFile::sync_data`] copies written to synced. Writes since the last sync are kept
//!   as an ordered list of operations.
//! - File names have the same split: creations, renames and removals change the *live* namespace
//!   at once and the *durable* namespace only at [`Disk::sync_dir`] of their directory.
//!   Directories themselves are durable as soon as they are created (the storage layer creates
//!   them once at start-up and syncs their parent, so modelling that step buys nothing).
//! - [`SimDisk::crash`] replaces the live state with the durable one. With
//!   [`CrashFaults::torn_writes`], each file keeps a random prefix of its unsynced operations and a
//!   random prefix of the next one (writes reach the platter in order, the last one torn); without
//!   it every unsynced write is lost. With [`CrashFaults::flip_bit`], one random bit of one durable
//!   file is flipped. All choices come from the seed given to [`SimDisk::new`]: the same seed and
//!   the same operations give the same result. Handles opened before a crash fail afterwards.
//! - [`SimDisk::fail_next_syncs`] and [`SimDisk::fail_next_writes`] make the next calls fail
//!   with `EIO`, to test that the WAL poisons itself; [`SimDisk::fail_next_writes_under`] only
//!   those to files in one directory (a snapshot that cannot be saved, while the WAL works).
//! - [`SimDisk::block_syncs`] holds every `sync_data` until [`SimDisk::unblock_syncs`], so a test
//!   can decide exactly what arrives while an fsync is in flight (group commit), without timing.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::{Disk, DiskFile, DiskReader};

/// `EIO`, the error a failing disk reports.
const EIO: i32 = 5;

/// Which faults a [`SimDisk::crash`] injects besides losing unsynced data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CrashFaults {
    /// Keep a random prefix of each file's unsynced writes, tearing the last one kept.
    pub torn_writes: bool,
    /// Flip one random bit of one random non-empty durable file.
    pub flip_bit: bool,
}

/// What a [`SimDisk::crash`] did, for test diagnostics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CrashReport {
    /// Files that kept part of their unsynced data: (path, unsynced bytes kept).
    pub torn: Vec<(PathBuf, u64)>,
    /// Number of unsynced write operations that were dropped entirely.
    pub writes_lost: u64,
    /// The bit flipped, if any: (path, byte offset, bit index 0..8).
    pub flipped: Option<(PathBuf, u64, u8)>,
}

/// An in-memory, crashable disk. Clones share the same state (one simulated machine).
#[derive(Debug, Clone)]
pub struct SimDisk {
    state: Arc<Mutex<SimState>>,
    gate: Arc<SyncGate>,
}

/// Holds `sync_data` calls while closed. Separate from the state lock so that a held sync does
/// not block other operations.
#[derive(Debug, Default)]
struct SyncGate {
    state: Mutex<GateState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct GateState {
    closed: bool,
    /// Syncs currently held at the gate.
    held: u32,
}

impl SyncGate {
    fn lock(&self) -> MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn pass(&self) {
        let mut gate = self.lock();
        if !gate.closed {
            return;
        }
        gate.held += 1;
        self.changed.notify_all();
        while gate.closed {
            gate = self.changed.wait(gate).unwrap_or_else(|p| p.into_inner());
        }
        gate.held -= 1;
    }
}

#[derive(Debug)]
struct SimState {
    rng: SplitMix64,
    /// Incremented by every crash; handles of an older generation are stale.
    generation: u64,
    next_inode: u64,
    inodes: BTreeMap<u64, Inode>,
    dirs: BTreeSet<PathBuf>,
    live: BTreeMap<PathBuf, u64>,
    durable: BTreeMap<PathBuf, u64>,
    sync_failures_pending: u32,
    write_failures_pending: u32,
    /// Writes to files in this directory that are still to fail.
    write_failures_under: Option<(PathBuf, u32)>,
    /// The most bytes one file has held written but not synced, since the disk was made.
    peak_unsynced_file_bytes: u64,
}

#[derive(Debug, Default)]
struct Inode {
    written: Vec<u8>,
    synced: Vec<u8>,
    unsynced: Vec<Op>,
}

#[derive(Debug)]
enum Op {
    Write { offset: u64, data: Vec<u8> },
    SetLen(u64),
}

impl Op {
    fn apply(&self, image: &mut Vec<u8>) {
        match self {
            Op::Write { offset, data } => write_into(image, *offset, data),
            Op::SetLen(len) => image.resize(to_usize(*len), 0),
        }
    }
}

impl SimDisk {
    /// An empty disk whose crash faults are drawn from `seed`.
    pub fn new(seed: u64) -> Self {
        let state = SimState {
            rng: SplitMix64(seed),
            generation: 0,
            next_inode: 1,
            inodes: BTreeMap::new(),
            dirs: BTreeSet::from([PathBuf::from("/")]),
            live: BTreeMap::new(),
            durable: BTreeMap::new(),
            sync_failures_pending: 0,
            write_failures_pending: 0,
            write_failures_under: None,
            peak_unsynced_file_bytes: 0,
        };
        SimDisk { state: Arc::new(Mutex::new(state)), gate: Arc::default() }
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        // A panic while holding the lock leaves the maps consistent (every mutation is a single
        // map operation), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Simulates a power loss: only durable names and synced data survive, plus the faults
    /// selected in `faults`. Handles opened before the crash fail from now on.
    pub fn crash(&self, faults: CrashFaults) -> CrashReport {
        let mut state = self.lock();
        let state = &mut *state;
        let mut report = CrashReport::default();
        state.generation += 1;
        state.live = state.durable.clone();
        let reachable: BTreeSet<u64> = state.durable.values().copied().collect();
        state.inodes.retain(|ino, _| reachable.contains(ino));
        for (path, ino) in &state.durable {
            let Some(inode) = state.inodes.get_mut(ino) else { continue };
            let mut image = std::mem::take(&mut inode.synced);
            let ops = std::mem::take(&mut inode.unsynced);
            let kept = if faults.torn_writes && !ops.is_empty() {
                Some(tear(&mut state.rng, &mut image, &ops))
            } else {
                None
            };
            match kept {
                Some((ops_applied, bytes)) => {
                    report.writes_lost += (ops.len() - ops_applied) as u64;
                    report.torn.push((path.clone(), bytes));
                }
                None => report.writes_lost += ops.len() as u64,
            }
            inode.written = image.clone();
            inode.synced = image;
        }
        if faults.flip_bit {
            report.flipped = flip_random_bit(state);
        }
        report
    }

    /// Flips bit `bit` (0..8) of byte `offset` of the file at `path`, in both its written and
    /// synced images: media corruption that no sync can undo.
    pub fn flip_bit(&self, path: &Path, offset: u64, bit: u8) -> io::Result<()> {
        let mut state = self.lock();
        let ino = *state.live.get(path).ok_or_else(|| not_found(path))?;
        let inode = state.inodes.get_mut(&ino).ok_or_else(|| not_found(path))?;
        let at = to_usize(offset);
        let mask = 1u8 << (bit % 8);
        match (inode.written.get_mut(at), inode.synced.get_mut(at)) {
            (Some(w), synced) => {
                *w ^= mask;
                if let Some(s) = synced {
                    *s ^= mask;
                }
                Ok(())
            }
            (None, _) => Err(io::Error::new(io::ErrorKind::InvalidInput, "offset past the end")),
        }
    }

    /// Makes the next `count` calls of [`DiskFile::sync_data`] (on any file) fail with `EIO`.
    pub fn fail_next_syncs(&self, count: u32) {
        self.lock().sync_failures_pending = count;
    }

    /// Makes the next `count` calls of [`DiskFile::write_all_at`] (on any file) fail with `EIO`.
    pub fn fail_next_writes(&self, count: u32) {
        self.lock().write_failures_pending = count;
    }

    /// Makes the next `count` calls of [`DiskFile::write_all_at`] on files in `dir` fail with
    /// `EIO` (a full or failing snapshot directory while the WAL's writes succeed).
    pub fn fail_next_writes_under(&self, dir: impl Into<PathBuf>, count: u32) {
        self.lock().write_failures_under = Some((dir.into(), count));
    }

    /// Holds every later `sync_data` call (on any file) until [`SimDisk::unblock_syncs`].
    pub fn block_syncs(&self) {
        self.gate.lock().closed = true;
    }

    /// Lets held and later `sync_data` calls proceed.
    pub fn unblock_syncs(&self) {
        self.gate.lock().closed = false;
        self.gate.changed.notify_all();
    }

    /// Blocks until at least one `sync_data` call is held by [`SimDisk::block_syncs`].
    pub fn wait_until_sync_held(&self) {
        let mut gate = self.gate.lock();
        while gate.held == 0 {
            gate = self.gate.changed.wait(gate).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// The most bytes any one file has held written but not yet synced: how much a writer
    /// leaves for one sync to flush (a sync of the WAL on the same device waits behind it).
    pub fn peak_unsynced_file_bytes(&self) -> u64 {
        self.lock().peak_unsynced_file_bytes
    }

    /// Total bytes written but not yet synced, over all live files.
    pub fn unsynced_bytes(&self) -> u64 {
        let state = self.lock();
        let mut total = 0u64;
        for inode in state.inodes.values() {
            for op in &inode.unsynced {
                if let Op::Write { data, .. } = op {
                    total += data.len() as u64;
                }
            }
        }
        total
    }
}

/// Applies a random prefix of `ops` to `image`, the last one torn. Returns how many operations
/// were applied in full and how many bytes of unsynced writes were kept.
fn tear(rng: &mut SplitMix64, image: &mut Vec<u8>, ops: &[Op]) -> (usize, u64) {
    let full = to_usize(rng.below(ops.len() as u64));
    let mut kept_bytes = 0u64;
    for op in &ops[..full] {
        op.apply(image);
        if let Op::Write { data, .. } = op {
            kept_bytes += data.len() as u64;
        }
    }
    if let Some(Op::Write { offset, data }) = ops.get(full) {
        let keep = to_usize(rng.below(data.len() as u64));
        write_into(image, *offset, &data[..keep]);
        kept_bytes += keep as u64;
    }
    (full, kept_bytes)
}

fn flip_random_bit(state: &mut SimState) -> Option<(PathBuf, u64, u8)> {
    let candidates: Vec<(PathBuf, u64)> = state
        .durable
        .iter()
        .filter(|(_, ino)| state.inodes.get(ino).is_some_and(|i| !i.synced.is_empty()))
        .map(|(path, ino)| (path.clone(), *ino))
        .collect();
    if candidates.is_empty() {
        return None;
    }
    let (path, ino) = candidates[to_usize(state.rng.below(candidates.len() as u64))].clone();
    let inode = state.inodes.get_mut(&ino)?;
    let offset = state.rng.below(inode.synced.len() as u64);
    let bit = (state.rng.below(8)) as u8;
    let at = to_usize(offset);
    inode.synced[at] ^= 1 << bit;
    inode.written[at] ^= 1 << bit;
    Some((path, offset, bit))
}

impl Disk for SimDisk {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.lock();
        for ancestor in dir.ancestors() {
            if !ancestor.as_os_str().is_empty() {
                state.dirs.insert(ancestor.to_path_buf());
            }
        }
        Ok(())
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let state = self.lock();
        if !state.dirs.contains(dir) {
            return Err(not_found(dir));
        }
        let files = state.live.keys().filter(|p| p.parent() == Some(dir));
        let subdirs = state.dirs.iter().filter(|p| p.parent() == Some(dir));
        Ok(files
            .chain(subdirs)
            .filter_map(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_string))
            .collect())
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let state = self.lock();
        let ino = state.live.get(path).ok_or_else(|| not_found(path))?;
        state.inodes.get(ino).map(|i| i.written.clone()).ok_or_else(|| not_found(path))
    }

    fn open_read(&self, path: &Path) -> io::Result<Box<dyn DiskReader>> {
        let state = self.lock();
        let ino = *state.live.get(path).ok_or_else(|| not_found(path))?;
        Ok(Box::new(self.handle(&state, path, ino)))
    }

    fn create_new(&self, path: &Path) -> io::Result<Box<dyn DiskFile>> {
        let mut state = self.lock();
        let parent_exists = path.parent().is_some_and(|p| state.dirs.contains(p));
        if !parent_exists {
            return Err(not_found(path));
        }
        if state.live.contains_key(path) {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, path.display().to_string()));
        }
        let ino = state.next_inode;
        state.next_inode += 1;
        state.inodes.insert(ino, Inode::default());
        state.live.insert(path.to_path_buf(), ino);
        Ok(Box::new(self.handle(&state, path, ino)))
    }

    fn open_write(&self, path: &Path) -> io::Result<Box<dyn DiskFile>> {
        let state = self.lock();
        let ino = *state.live.get(path).ok_or_else(|| not_found(path))?;
        Ok(Box::new(self.handle(&state, path, ino)))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut state = self.lock();
        state.live.remove(path).map(|_| ()).ok_or_else(|| not_found(path))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.lock();
        let ino = state.live.remove(from).ok_or_else(|| not_found(from))?;
        state.live.insert(to.to_path_buf(), ino);
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.lock();
        if !state.dirs.contains(dir) {
            return Err(not_found(dir));
        }
        let state = &mut *state;
        state.durable.retain(|p, _| p.parent() != Some(dir));
        for (path, ino) in state.live.iter().filter(|(p, _)| p.parent() == Some(dir)) {
            state.durable.insert(path.clone(), *ino);
        }
        Ok(())
    }
}

impl SimDisk {
    fn handle(&self, state: &SimState, path: &Path, ino: u64) -> SimFile {
        SimFile { disk: self.clone(), ino, generation: state.generation, path: path.to_path_buf() }
    }
}

/// An open file of a [`SimDisk`]; it keeps working after its name is removed, like on Unix.
#[derive(Debug)]
struct SimFile {
    disk: SimDisk,
    ino: u64,
    generation: u64,
    path: PathBuf,
}

impl SimFile {
    fn with_inode<T>(&self, f: impl FnOnce(&mut SimState, u64) -> io::Result<T>) -> io::Result<T> {
        let mut state = self.disk.lock();
        if state.generation != self.generation || !state.inodes.contains_key(&self.ino) {
            return Err(io::Error::other(format!(
                "stale handle to {}: the simulated machine crashed",
                self.path.display()
            )));
        }
        f(&mut state, self.ino)
    }
}

impl DiskFile for SimFile {
    fn write_all_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.with_inode(|state, ino| {
            if state.write_failures_pending > 0 {
                state.write_failures_pending -= 1;
                return Err(io::Error::from_raw_os_error(EIO));
            }
            if let Some((dir, left)) = &mut state.write_failures_under {
                if *left > 0 && self.path.starts_with(dir) {
                    *left -= 1;
                    return Err(io::Error::from_raw_os_error(EIO));
                }
            }
            let inode = state.inodes.get_mut(&ino).ok_or_else(stale)?;
            write_into(&mut inode.written, offset, buf);
            inode.unsynced.push(Op::Write { offset, data: buf.to_vec() });
            let unsynced: u64 = inode
                .unsynced
                .iter()
                .map(|op| match op {
                    Op::Write { data, .. } => data.len() as u64,
                    Op::SetLen(_) => 0,
                })
                .sum();
            state.peak_unsynced_file_bytes = state.peak_unsynced_file_bytes.max(unsynced);
            Ok(())
        })
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.with_inode(|state, ino| {
            let inode = state.inodes.get_mut(&ino).ok_or_else(stale)?;
            inode.written.resize(to_usize(len), 0);
            inode.unsynced.push(Op::SetLen(len));
            Ok(())
        })
    }

    fn sync_data(&mut self) -> io::Result<()> {
        // An injected failure is decided when the call starts, before it waits at the gate.
        self.with_inode(|state, _| {
            if state.sync_failures_pending > 0 {
                state.sync_failures_pending -= 1;
                return Err(io::Error::from_raw_os_error(EIO));
            }
            Ok(())
        })?;
        self.disk.gate.pass();
        self.with_inode(|state, ino| {
            let inode = state.inodes.get_mut(&ino).ok_or_else(stale)?;
            // Replaying the unsynced operations costs what was written since the last sync,
            // not the file's size (preallocated WAL segments are large and mostly zeros).
            for op in inode.unsynced.drain(..) {
                op.apply(&mut inode.synced);
            }
            Ok(())
        })
    }
}

impl DiskReader for SimFile {
    fn file_bytes(&self) -> io::Result<u64> {
        self.with_inode(|state, ino| Ok(state.inodes.get(&ino).ok_or_else(stale)?.written.len() as u64))
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.with_inode(|state, ino| {
            let written = &state.inodes.get(&ino).ok_or_else(stale)?.written;
            let start = usize::try_from(offset).unwrap_or(usize::MAX);
            let bytes = start
                .checked_add(buf.len())
                .and_then(|end| written.get(start..end))
                .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
            buf.copy_from_slice(bytes);
            Ok(())
        })
    }
}

fn write_into(image: &mut Vec<u8>, offset: u64, data: &[u8]) {
    let start = to_usize(offset);
    let end = start + data.len();
    if image.len() < end {
        image.resize(end, 0);
    }
    image[start..end].copy_from_slice(data);
}

fn to_usize(n: u64) -> usize {
    // The simulated disk lives in memory, so every offset it holds fits in usize.
    usize::try_from(n).unwrap_or(usize::MAX)
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, path.display().to_string())
}

fn stale() -> io::Error {
    io::Error::other("stale handle")
}

/// SplitMix64: a tiny, stable PRNG, so a seed means the same faults in every build.
#[derive(Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..n`, or 0 when `n` is 0.
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        PathBuf::from("/d")
    }

    fn setup(seed: u64) -> (SimDisk, PathBuf) {
        let disk = SimDisk::new(seed);
        disk.create_dir_all(&dir()).unwrap();
        (disk, dir().join("f"))
    }

    #[test]
    fn crash_keeps_only_synced_data_and_names() {
        let (disk, path) = setup(1);
        let mut f = disk.create_new(&path).unwrap();
        f.write_all_at(b"durable", 0).unwrap();
        f.sync_data().unwrap();
        disk.sync_dir(&dir()).unwrap();
        f.write_all_at(b"-lost", 7).unwrap();
        let unsynced_name = dir().join("g");
        disk.create_new(&unsynced_name).unwrap().sync_data().unwrap();
        assert_eq!(disk.read(&path).unwrap(), b"durable-lost");

        let report = disk.crash(CrashFaults::default());
        assert_eq!(report.writes_lost, 1);
        assert_eq!(disk.read(&path).unwrap(), b"durable");
        assert!(disk.read(&unsynced_name).is_err(), "name never synced must vanish");
        assert!(f.write_all_at(b"x", 0).is_err(), "pre-crash handle must be stale");
    }

    #[test]
    fn unsynced_rename_and_remove_are_undone_by_a_crash() {
        let (disk, path) = setup(2);
        disk.create_new(&path).unwrap().sync_data().unwrap();
        disk.sync_dir(&dir()).unwrap();
        let renamed = dir().join("renamed");
        disk.rename(&path, &renamed).unwrap();
        disk.crash(CrashFaults::default());
        assert!(disk.read(&path).is_ok());
        assert!(disk.read(&renamed).is_err());

        disk.remove_file(&path).unwrap();
        disk.crash(CrashFaults::default());
        assert!(disk.read(&path).is_ok());
        disk.remove_file(&path).unwrap();
        disk.sync_dir(&dir()).unwrap();
        disk.crash(CrashFaults::default());
        assert!(disk.read(&path).is_err());
    }

    #[test]
    fn torn_write_keeps_a_strict_prefix_of_the_unsynced_bytes() {
        let mut saw_partial = false;
        for seed in 0..50 {
            let (disk, path) = setup(seed);
            let mut f = disk.create_new(&path).unwrap();
            f.write_all_at(b"AAAA", 0).unwrap();
            f.sync_data().unwrap();
            disk.sync_dir(&dir()).unwrap();
            f.write_all_at(b"BBBBBBBB", 4).unwrap();
            disk.crash(CrashFaults { torn_writes: true, flip_bit: false });
            let after = disk.read(&path).unwrap();
            assert!(after.starts_with(b"AAAA"));
            assert!(after.len() < 12, "a torn write never survives whole");
            assert!(after[4..].iter().all(|&b| b == b'B'));
            saw_partial |= after.len() > 4;
        }
        assert!(saw_partial, "some seed must keep part of the torn write");
    }

    #[test]
    fn same_seed_same_crash() {
        let run = |seed| {
            let (disk, path) = setup(seed);
            let mut f = disk.create_new(&path).unwrap();
            f.write_all_at(&[7u8; 100], 0).unwrap();
            f.sync_data().unwrap();
            disk.sync_dir(&dir()).unwrap();
            f.write_all_at(&[9u8; 100], 100).unwrap();
            let report = disk.crash(CrashFaults { torn_writes: true, flip_bit: true });
            (report, disk.read(&path).unwrap())
        };
        assert_eq!(run(42), run(42));
        let (report, content) = run(42);
        let (_, offset, bit) = report.flipped.unwrap();
        let original = if offset < 100 { 7u8 } else { 9u8 };
        assert_eq!(content[offset as usize] ^ original, 1 << bit);
    }

    #[test]
    fn injected_failures_return_eio_once() {
        let (disk, path) = setup(3);
        let mut f = disk.create_new(&path).unwrap();
        disk.fail_next_writes(1);
        assert_eq!(f.write_all_at(b"x", 0).unwrap_err().raw_os_error(), Some(EIO));
        f.write_all_at(b"x", 0).unwrap();
        disk.fail_next_syncs(1);
        assert_eq!(f.sync_data().unwrap_err().raw_os_error(), Some(EIO));
        assert_eq!(disk.unsynced_bytes(), 1);
        f.sync_data().unwrap();
        assert_eq!(disk.unsynced_bytes(), 0);
    }

    #[test]
    fn blocked_sync_waits_for_unblock() {
        let (disk, path) = setup(5);
        let mut f = disk.create_new(&path).unwrap();
        f.write_all_at(b"x", 0).unwrap();
        disk.block_syncs();
        let syncer = std::thread::spawn(move || f.sync_data());
        disk.wait_until_sync_held();
        assert_eq!(disk.unsynced_bytes(), 1, "held sync has not happened yet");
        disk.unblock_syncs();
        syncer.join().unwrap().unwrap();
        assert_eq!(disk.unsynced_bytes(), 0);
    }

    #[test]
    fn flip_bit_changes_exactly_one_bit() {
        let (disk, path) = setup(4);
        let mut f = disk.create_new(&path).unwrap();
        f.write_all_at(&[0u8; 8], 0).unwrap();
        disk.flip_bit(&path, 3, 2).unwrap();
        assert_eq!(disk.read(&path).unwrap(), vec![0, 0, 0, 4, 0, 0, 0, 0]);
        assert!(disk.flip_bit(&path, 8, 0).is_err());
    }
}

//! Key-value state machine benchmark (a measurement, not a test): one shard's store applying SETs
//! of 100-byte values to new and to existing keys, answering GETs, and taking and restoring a
//! snapshot (in memory, and into a snapshot file: streamed, or built in memory first), at a given
//! key count. The store is what every replica runs for every write, and
//! what the leader runs for every read.
//!
//! Run: `cargo bench -p ppdb --bench kv`. Environment: `PPDB_BENCH_KEYS` (keys in the store,
//! default 1,000,000).

use std::hint::black_box;
use std::time::Instant;

use ppdb::kv::{KvRead, KvStore, KvWrite, SetCondition, SetTtl, WriteOp};
use ppdb::storage::disk::FsDisk;
use ppdb::storage::snapshot_file::SnapshotStore;
use ppdb::storage::wal::GroupId;
use std::sync::Arc;

const VALUE_BYTES: usize = 100;

/// The i-th key, spread as a client's random keys are.
fn key(i: u64) -> Vec<u8> {
    format!("key:{:012}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % 1_000_000_000_000).into_bytes()
}

fn set(i: u64) -> KvWrite {
    let op = WriteOp::Set {
        key: key(i),
        value: vec![b'v'; VALUE_BYTES],
        condition: SetCondition::Always,
        ttl: SetTtl::Clear,
        get: false,
    };
    KvWrite { now_ms: 1, op }
}

/// Runs `f` for each of `n` inputs and prints the rate.
fn row(label: &str, n: u64, mut f: impl FnMut(u64)) {
    let start = Instant::now();
    for i in 0..n {
        f(i);
    }
    let secs = start.elapsed().as_secs_f64();
    println!("{label:<32} {:>12.0} ops/s  {:>8.0} ns/op", n as f64 / secs, secs * 1e9 / n as f64);
}

fn main() {
    let keys: u64 = std::env::var("PPDB_BENCH_KEYS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    println!("kv state machine, {keys} keys, {VALUE_BYTES}-byte values");
    let mut store = KvStore::new();
    let writes: Vec<KvWrite> = (0..keys).map(set).collect();
    let mut writes = writes.into_iter();
    row("SET new key", keys, |_| {
        if let Some(write) = writes.next() {
            black_box(store.apply(&write));
        }
    });
    let updates: Vec<KvWrite> = (0..keys).map(|i| set(i.wrapping_mul(7919) % keys)).collect();
    let mut updates = updates.iter();
    row("SET existing key", keys, |_| {
        if let Some(write) = updates.next() {
            black_box(store.apply(write));
        }
    });
    let reads: Vec<KvRead> =
        (0..keys).map(|i| KvRead::Get { key: key(i.wrapping_mul(104_729) % keys) }).collect();
    let mut reads = reads.iter();
    row("GET existing key", keys, |_| {
        if let Some(read) = reads.next() {
            black_box(store.read(read, 1));
        }
    });
    snapshot_files(&store);
    let start = Instant::now();
    let snapshot = store.snapshot();
    let taken = start.elapsed();
    let start = Instant::now();
    let restored = KvStore::restore(&snapshot).expect("restore");
    let restore = start.elapsed();
    assert_eq!(restored.len_including_expired() as u64, keys);
    println!(
        "snapshot: {} MiB, taken in {:.0} ms, restored in {:.0} ms",
        snapshot.len() >> 20,
        taken.as_secs_f64() * 1e3,
        restore.as_secs_f64() * 1e3
    );
}

/// The process's peak resident memory so far, in MiB (`VmHWM`).
fn peak_rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap_or("VmHWM: 0 kB");
    line.split_whitespace().nth(1).and_then(|kb| kb.parse::<u64>().ok()).unwrap_or(0) >> 10
}

/// Saves the store's snapshot into a snapshot file twice: streamed through the file writer (as
/// a node does), then serialized into memory first and written from there; prints the time and
/// how much the process's peak memory grew in each.
fn snapshot_files(store: &KvStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = SnapshotStore::open(Arc::new(FsDisk::new()), dir.path()).expect("snapshot store");
    let peak = peak_rss_mib();
    let start = Instant::now();
    let mut writer = files.create(GroupId(1), 1, b"meta").expect("create");
    store.freeze().serialize_into(&mut writer).expect("serialize");
    let file = writer.finish().expect("finish");
    let streamed = start.elapsed();
    let streamed_growth = peak_rss_mib().saturating_sub(peak);
    let peak = peak_rss_mib();
    let start = Instant::now();
    let image = store.snapshot();
    files.save(GroupId(1), 2, b"meta", &image).expect("save");
    drop(image);
    let in_memory = start.elapsed();
    let in_memory_growth = peak_rss_mib().saturating_sub(peak);
    println!(
        "snapshot file: {} MiB; streamed in {:.0} ms (peak memory +{streamed_growth} MiB), built in memory then written in {:.0} ms (+{in_memory_growth} MiB)",
        file.image_bytes >> 20,
        streamed.as_secs_f64() * 1e3,
        in_memory.as_secs_f64() * 1e3,
    );
}

//! WAL benchmark (a measurement, not a test): the raw fdatasync rate of the disk next to durable
//! appends per second with 1, 16 and 256 concurrent writers of 128-byte records, all in one run on
//! the same directory; one writer also without segment preallocation and without direct writes,
//! to show what each saves (in latency, and in the process's CPU per fsync). Group commit should
//! turn many writers into few fsyncs: the target is at least 20x the raw fsync rate in
//! records per second at 256 writers.
//!
//! Run: `cargo bench -p ppdb --bench wal`. Environment: `PPDB_BENCH_DIR` (a directory on the
//! disk to measure; default: a temporary directory under Cargo's target dir), `PPDB_BENCH_SECS`
//! (seconds per row, default 2).

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ppdb::storage::disk::FsDisk;
use ppdb::storage::wal::{GroupId, RecordKind, Wal, WalConfig};

const RECORD_PAYLOAD_BYTES: usize = 128;
/// (writers, preallocated segments, direct writes) per row.
const ROWS: [(usize, bool, bool); 5] =
    [(1, false, false), (1, true, false), (1, true, true), (16, true, true), (256, true, true)];
const TARGET_SPEEDUP_AT_256: f64 = 20.0;

struct Row {
    writers: usize,
    preallocate: bool,
    direct_io: bool,
    records_per_sec: f64,
    /// CPU time (user and system) of the whole process per fsync.
    cpu_us_per_fsync: f64,
    fsyncs_per_sec: f64,
    records_per_fsync: f64,
    ack_us_p50: u64,
    ack_us_p99: u64,
}

/// Writes 128 bytes and fdatasyncs, in a loop, for `duration`: the disk's raw fsync rate.
fn raw_fdatasync_per_sec(dir: &Path, duration: Duration) -> f64 {
    let path = dir.join("raw-fdatasync.bin");
    let file = OpenOptions::new().create(true).write(true).truncate(true).open(&path).expect("create file");
    let block = [0xA5u8; RECORD_PAYLOAD_BYTES];
    let start = Instant::now();
    let mut syncs = 0u64;
    while start.elapsed() < duration {
        file.write_all_at(&block, syncs * RECORD_PAYLOAD_BYTES as u64).expect("write");
        file.sync_data().expect("fdatasync");
        syncs += 1;
    }
    let rate = syncs as f64 / start.elapsed().as_secs_f64();
    std::fs::remove_file(&path).expect("remove file");
    rate
}

/// CPU time (user and system) this process has used so far.
fn process_cpu() -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a rusage struct, for the calling process.
    let ok = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } == 0;
    assert!(ok, "getrusage failed");
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// `writers` threads append 128-byte records and wait for each to be durable, for `duration`,
/// with or without preallocated segments and direct writes.
fn group_commit(dir: &Path, writers: usize, preallocate: bool, direct_io: bool, duration: Duration) -> Row {
    let wal_dir = dir.join(format!("wal-{writers}-{preallocate}-{direct_io}"));
    let config = WalConfig { preallocate, direct_io, ..WalConfig::default() };
    let (wal, _) = Wal::open(Arc::new(FsDisk::new()), &wal_dir, config, |_| Ok(())).expect("open WAL");
    let stop = AtomicBool::new(false);
    let before = wal.stats();
    let cpu_before = process_cpu();
    let start = Instant::now();
    let mut latencies_us: Vec<u64> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..writers)
            .map(|w| {
                let (wal, stop) = (&wal, &stop);
                s.spawn(move || {
                    let mut latencies = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let payload = vec![w as u8; RECORD_PAYLOAD_BYTES];
                        let t = Instant::now();
                        wal.append_durable(GroupId(w as u64), RecordKind::Entries, payload).expect("append");
                        latencies.push(t.elapsed().as_micros() as u64);
                    }
                    latencies
                })
            })
            .collect();
        std::thread::sleep(duration);
        stop.store(true, Ordering::Relaxed);
        workers.into_iter().flat_map(|w| w.join().expect("writer thread")).collect()
    });
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = (process_cpu() - cpu_before).as_secs_f64();
    let after = wal.stats();
    wal.close().expect("close WAL");
    std::fs::remove_dir_all(&wal_dir).expect("remove WAL dir");

    latencies_us.sort_unstable();
    let percentile = |p: f64| {
        let at = ((latencies_us.len() as f64 * p) as usize).min(latencies_us.len().saturating_sub(1));
        latencies_us.get(at).copied().unwrap_or(0)
    };
    let records = (after.records_durable - before.records_durable) as f64;
    let fsyncs = (after.syncs - before.syncs) as f64;
    Row {
        writers,
        preallocate,
        direct_io,
        records_per_sec: records / elapsed,
        cpu_us_per_fsync: cpu * 1e6 / fsyncs.max(1.0),
        fsyncs_per_sec: fsyncs / elapsed,
        records_per_fsync: records / fsyncs.max(1.0),
        ack_us_p50: percentile(0.50),
        ack_us_p99: percentile(0.99),
    }
}

fn main() {
    let secs: f64 = std::env::var("PPDB_BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(2.0);
    let duration = Duration::from_secs_f64(secs);
    let _temp;
    let dir: PathBuf = match std::env::var_os("PPDB_BENCH_DIR") {
        Some(dir) => dir.into(),
        None => {
            _temp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temporary directory");
            _temp.path().to_path_buf()
        }
    };
    std::fs::create_dir_all(&dir).expect("benchmark directory");
    println!(
        "WAL benchmark: {RECORD_PAYLOAD_BYTES}-byte payloads, {secs} s per row, directory {}",
        dir.display()
    );

    // A virtual disk's fsync latency drifts, so the raw rate is measured before and after the
    // group-commit rows, and speed-ups are against the faster of the two (the conservative one).
    let raw_before = raw_fdatasync_per_sec(&dir, duration);
    let rows: Vec<Row> =
        ROWS.iter().map(|&(w, prealloc, direct)| group_commit(&dir, w, prealloc, direct, duration)).collect();
    let raw_after = raw_fdatasync_per_sec(&dir, duration);
    let raw = raw_before.max(raw_after);
    println!(
        "raw fdatasync (write {RECORD_PAYLOAD_BYTES} B + fdatasync, one thread): {raw_before:.0} fsyncs/s \
         before, {raw_after:.0} fsyncs/s after; speed-ups below are against {raw:.0}"
    );
    println!();
    println!(
        "{:>7} | {:>8} | {:>6} | {:>11} | {:>9} | {:>13} | {:>10} | {:>10} | {:>12} | {:>12}",
        "writers",
        "prealloc",
        "direct",
        "records/s",
        "fsyncs/s",
        "records/fsync",
        "ack p50 us",
        "ack p99 us",
        "cpu us/fsync",
        "x raw fsync"
    );
    println!("{}", "-".repeat(127));
    let mut speedup_at_256 = 0.0;
    for row in &rows {
        let speedup = row.records_per_sec / raw;
        if row.writers == 256 && row.preallocate && row.direct_io {
            speedup_at_256 = speedup;
        }
        println!(
            "{:>7} | {:>8} | {:>6} | {:>11.0} | {:>9.0} | {:>13.1} | {:>10} | {:>10} | {:>12.1} | {:>11.1}x",
            row.writers,
            if row.preallocate { "yes" } else { "no" },
            if row.direct_io { "yes" } else { "no" },
            row.records_per_sec,
            row.fsyncs_per_sec,
            row.records_per_fsync,
            row.ack_us_p50,
            row.ack_us_p99,
            row.cpu_us_per_fsync,
            speedup
        );
    }
    println!();
    let verdict = if speedup_at_256 >= TARGET_SPEEDUP_AT_256 { "met" } else { "NOT met" };
    println!(
        "target (>= {TARGET_SPEEDUP_AT_256}x the raw fsync rate in records/s at 256 writers): {verdict} \
         ({speedup_at_256:.1}x)"
    );
}

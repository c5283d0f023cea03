//! Test helper for `tests/it/wal_crash.rs`; not part of the database.
//!
//! `wal-crash-child append <data dir> <threads>` locks the data directory, recovers the WAL in
//! `<data dir>/wal`, then appends forever from `<threads>` threads with group commit. After each
//! record is acknowledged durable it prints `<seq> <thread> <counter>` on its own line and
//! flushes, so whoever kills it knows exactly which records were promised durable. Payloads are
//! self-describing (see [`payload`]) so the test can check them byte for byte.
//!
//! `wal-crash-child recover <data dir>` locks the directory, recovers the WAL, prints
//! `recovered <records> next <seq>` and exits 0; on failure it prints the error on stderr and
//! exits 2 (this is how the test sees a node refuse to start).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use ppdb::storage::disk::FsDisk;
use ppdb::storage::lock::DataDirLock;
use ppdb::storage::wal::{GroupId, RecordKind, Wal, WalConfig};
use ppdb::storage::StorageError;

/// Small segments, so that a few seconds of appends roll many of them.
const SEGMENT_BYTES_MAX: u64 = 64 * 1024;
/// Payload size of every record.
const PAYLOAD_BYTES: usize = 100;
/// Upper bound on records per thread, so a child nobody kills still stops.
const RECORDS_PER_THREAD_MAX: u64 = 1_000_000;
/// Upper bound on appender threads.
const THREADS_MAX: u32 = 256;

/// The payload of record number `counter` of thread `thread`: both numbers, then filler
/// derived from them. `tests/it/wal_crash.rs` has the same function to check payloads.
fn payload(thread: u32, counter: u64) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(PAYLOAD_BYTES);
    bytes.extend_from_slice(&thread.to_le_bytes());
    bytes.extend_from_slice(&counter.to_le_bytes());
    let mut x = counter.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(thread);
    while bytes.len() < PAYLOAD_BYTES {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        bytes.push(x as u8);
    }
    bytes
}

fn config() -> WalConfig {
    WalConfig { segment_bytes_max: SEGMENT_BYTES_MAX, ..WalConfig::default() }
}

fn open(dir: &Path) -> Result<(DataDirLock, Wal, u64), StorageError> {
    let lock = DataDirLock::acquire(dir)?;
    let mut records = 0u64;
    let (wal, _report) = Wal::open(Arc::new(FsDisk::new()), dir.join("wal"), config(), |_| {
        records += 1;
        Ok(())
    })?;
    Ok((lock, wal, records))
}

fn append(dir: &Path, threads: u32) -> Result<(), StorageError> {
    let (_lock, wal, _) = open(dir)?;
    let wal = Arc::new(wal);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|thread| {
                let wal = Arc::clone(&wal);
                s.spawn(move || -> Result<(), StorageError> {
                    for counter in 0..RECORDS_PER_THREAD_MAX {
                        let group = GroupId(u64::from(thread));
                        let seq = wal.append_durable(group, RecordKind::Entries, payload(thread, counter))?;
                        let mut out = std::io::stdout().lock();
                        // A closed stdout means the test is gone; stop quietly.
                        if writeln!(out, "{seq} {thread} {counter}").and_then(|()| out.flush()).is_err() {
                            return Ok(());
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        workers.into_iter().try_for_each(|w| w.join().unwrap_or(Ok(())))
    })
}

fn recover(dir: &Path) -> Result<(), StorageError> {
    let (_lock, wal, records) = open(dir)?;
    let next = wal.durable_seq().map_or(1, |s| s.get() + 1);
    println!("recovered {records} next {next}");
    wal.close()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = match (args.get(1).map(String::as_str), args.get(2), args.get(3)) {
        (Some("append"), Some(dir), Some(threads)) => match threads.parse::<u32>() {
            Ok(threads) if (1..=THREADS_MAX).contains(&threads) => append(&PathBuf::from(dir), threads),
            _ => return usage(),
        },
        (Some("recover"), Some(dir), None) => recover(&PathBuf::from(dir)),
        _ => return usage(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: wal-crash-child append <data dir> <threads 1..=256> | recover <data dir>");
    ExitCode::from(64)
}

//! WAL tests on the real file system, for what the simulated disk does not have: direct
//! appends (`O_DIRECT | O_DSYNC`, [`super::direct`]). Where the temporary directory's file
//! system has no direct I/O (tmpfs), the same tests check the buffered fallback.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::*;
use std::io;

use crate::storage::disk::{Block, DirectFile, Disk, DiskFile, FsDisk};

fn config(direct_io: bool, preallocate: bool) -> WalConfig {
    WalConfig { segment_bytes_max: SEGMENT_BYTES_MIN, preallocate, direct_io, ..WalConfig::default() }
}

/// Record sizes that end mid-block, on a block boundary, span blocks and roll segments.
fn payload(i: usize) -> Vec<u8> {
    let len = [1, 100, 4000, 4072, 9000, 17, 3000, 0, 12_345][i % 9];
    (0..len).map(|j| (i * 7 + j) as u8).collect()
}

/// Opens the WAL in `dir`, returning it and every record recovered.
fn open(dir: &Path, config: WalConfig) -> (Wal, RecoveryReport, Vec<(WalSeq, Vec<u8>)>) {
    let mut records = Vec::new();
    let (wal, report) = Wal::open(Arc::new(FsDisk::new()), dir, config, |r| {
        records.push((r.record.seq, r.record.payload.to_vec()));
        Ok(())
    })
    .unwrap();
    (wal, report, records)
}

/// Appends payloads `range` in batches of `batch`, waiting for each batch.
fn append_all(wal: &Wal, range: std::ops::Range<usize>, batch: usize) -> Vec<(WalSeq, Vec<u8>)> {
    let mut written = Vec::new();
    let indices: Vec<usize> = range.collect();
    for chunk in indices.chunks(batch) {
        let tickets: Vec<_> = chunk
            .iter()
            .map(|&i| (wal.append(GroupId(1), RecordKind::Entries, payload(i)).unwrap(), payload(i)))
            .collect();
        for (ticket, bytes) in tickets {
            written.push((ticket.wait().unwrap(), bytes));
        }
    }
    written
}

/// Each segment file's name and bytes, trailing zeros cut (the preallocated or block-padded
/// space after the records).
fn segment_contents(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut names: Vec<String> = FsDisk::new()
        .list_dir(dir)
        .unwrap()
        .into_iter()
        .filter(|name| segment::parse_segment_file_name(name).is_some())
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let mut bytes = std::fs::read(dir.join(&name)).unwrap();
            let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |last| last + 1);
            bytes.truncate(end);
            (name, bytes)
        })
        .collect()
}

/// Whether this file system offers direct I/O (otherwise the tests check the fallback).
fn direct_io_offered(dir: &Path) -> bool {
    let probe: PathBuf = dir.join("probe");
    std::fs::write(&probe, b"").unwrap();
    let offered = FsDisk::new().open_direct(&probe).unwrap().is_some();
    std::fs::remove_file(&probe).unwrap();
    if !offered {
        eprintln!("note: no direct I/O in {}: checking buffered appends only", dir.display());
    }
    offered
}

#[test]
fn direct_and_buffered_appends_leave_the_same_bytes() {
    for preallocate in [true, false] {
        let tmp = tempfile::tempdir().unwrap();
        direct_io_offered(tmp.path());
        let mut contents = Vec::new();
        for direct_io in [true, false] {
            let dir = tmp.path().join(format!("direct-{direct_io}"));
            let (wal, _, _) = open(&dir, config(direct_io, preallocate));
            let written = append_all(&wal, 0..60, 4);
            wal.close().unwrap();
            let (_wal, report, recovered) = open(&dir, config(direct_io, preallocate));
            assert!(report.torn_tail.is_none());
            assert_eq!(recovered, written, "direct_io={direct_io} preallocate={preallocate}");
            contents.push(segment_contents(&dir));
        }
        assert!(contents[0].len() > 3, "the test rolls segments");
        assert_eq!(contents[0], contents[1], "preallocate={preallocate}");
    }
}

#[test]
fn direct_appends_resume_in_the_middle_of_a_block_after_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    direct_io_offered(tmp.path());
    let dir = tmp.path().join("wal");
    let mut expected = Vec::new();
    for round in 0..4 {
        let (wal, _, recovered) = open(&dir, config(true, true));
        assert_eq!(recovered, expected, "after restart {round}");
        expected.extend(append_all(&wal, round * 7..round * 7 + 7, 3));
    }
    let (_wal, _, recovered) = open(&dir, config(true, true));
    assert_eq!(recovered, expected);
}

#[test]
fn a_torn_tail_is_cut_and_direct_appends_go_on_after_it() {
    let tmp = tempfile::tempdir().unwrap();
    direct_io_offered(tmp.path());
    let dir = tmp.path().join("wal");
    let (wal, _, _) = open(&dir, config(true, true));
    let mut expected = append_all(&wal, 0..5, 2);
    wal.close().unwrap();
    // A batch that was being written when the node died: garbage right after the last record.
    let (last_name, last_bytes) = segment_contents(&dir).pop().unwrap();
    let end = last_bytes.len() as u64;
    let file = std::fs::OpenOptions::new().write(true).open(dir.join(&last_name)).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, &[0xA5; 300], end).unwrap();
    drop(file);

    let (wal, report, recovered) = open(&dir, config(true, true));
    assert_eq!(recovered, expected);
    assert_eq!(report.torn_tail.map(|t| t.offset), Some(end));
    expected.extend(append_all(&wal, 5..12, 3));
    wal.close().unwrap();
    let (_wal, report, recovered) = open(&dir, config(true, true));
    assert!(report.torn_tail.is_none());
    assert_eq!(recovered, expected);
}

/// The real file system, except that every direct write is refused, as by a file system that
/// opens files with `O_DIRECT` but rejects the writes.
#[derive(Debug)]
struct RefusingDirectDisk(FsDisk);

#[derive(Debug)]
struct RefusingDirectFile;

impl DirectFile for RefusingDirectFile {
    fn write_durable_at(&mut self, _: &[Block], _: u64) -> io::Result<()> {
        Err(io::Error::new(io::ErrorKind::InvalidInput, "refused"))
    }
}

impl Disk for RefusingDirectDisk {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.0.create_dir_all(dir)
    }
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.0.list_dir(dir)
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.0.read(path)
    }
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn crate::storage::disk::DiskReader>> {
        self.0.open_read(path)
    }
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn DiskFile>> {
        self.0.create_new(path)
    }
    fn open_write(&self, path: &Path) -> io::Result<Box<dyn DiskFile>> {
        self.0.open_write(path)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.0.remove_file(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.0.rename(from, to)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.0.sync_dir(dir)
    }
    fn open_direct(&self, _: &Path) -> io::Result<Option<Box<dyn DirectFile>>> {
        Ok(Some(Box::new(RefusingDirectFile)))
    }
}

#[test]
fn a_refused_direct_write_falls_back_to_buffered_appends() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    let disk = Arc::new(RefusingDirectDisk(FsDisk::new()));
    let (wal, _) = Wal::open(disk, &dir, config(true, true), |_| Ok(())).unwrap();
    let written = append_all(&wal, 0..30, 4);
    assert!(wal.poisoned().is_none());
    wal.close().unwrap();
    let (_wal, _, recovered) = open(&dir, config(false, true));
    assert_eq!(recovered, written);
}

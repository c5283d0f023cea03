//! Real-process crash tests of the WAL: a child process appends with group commit and is killed
//! with SIGKILL at random moments; after every kill, recovery must return every record the child
//! reported durable, intact. Also: a corrupted segment stops start-up with the documented
//! message, and a second process cannot open a data directory that is in use.
//!
//! The kill moments come from a seeded generator; set `PPDB_WAL_CRASH_SEED` to replay a seed
//! (the real timing of the child still varies, so a replay is similar rather than identical).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use ppdb::storage::disk::FsDisk;
use ppdb::storage::wal::recovery;
use ppdb::storage::wal::{GroupId, RecordKind, Wal, WalConfig};

const ROUNDS: u64 = 30;
const CHILD_THREADS: &str = "8";
/// Longest time a child runs before it is killed; the whole test stays well under 30 s.
const KILL_DELAY_MS_MAX: u64 = 250;
/// Must match the child's payload size and generator.
const PAYLOAD_BYTES: usize = 100;

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

fn child(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wal-crash-child"));
    command.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    command
}

fn path_arg(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

/// A record the child reported durable: which thread and which of its counters.
type Acked = (u32, u64);

/// Parses the complete lines `<seq> <thread> <counter>` of the child's output.
fn parse_acks(output: &str) -> Vec<(u64, Acked)> {
    output
        .split_inclusive('\n')
        .filter(|line| line.ends_with('\n')) // a line cut by the kill was never fully reported
        .map(|line| {
            let fields: Vec<u64> = line.split_whitespace().map(|f| f.parse().unwrap()).collect();
            assert_eq!(fields.len(), 3, "bad line from child: {line:?}");
            (fields[0], (u32::try_from(fields[1]).unwrap(), fields[2]))
        })
        .collect()
}

/// Recovers the WAL in-process and returns every record: seq → (group, payload).
fn recover_all(data_dir: &Path) -> BTreeMap<u64, (GroupId, Vec<u8>)> {
    let mut records = BTreeMap::new();
    recovery::recover(&FsDisk::new(), &data_dir.join("wal"), &mut |r| {
        assert_eq!(r.record.kind, RecordKind::Entries);
        records.insert(r.record.seq.get(), (r.record.group, r.record.payload.to_vec()));
        Ok(())
    })
    .unwrap_or_else(|e| panic!("recovery after SIGKILL must succeed: {e}"));
    records
}

/// splitmix64, so the kill schedule is a function of the seed.
fn next_random(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A running child whose stdout is drained by a thread, so it never blocks on a full pipe.
struct Running {
    child: Child,
    output: std::thread::JoinHandle<String>,
}

fn start(args: &[&str]) -> Running {
    let mut child = child(args).spawn().expect("start the child");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let output = std::thread::spawn(move || {
        let mut output = String::new();
        // The pipe closes when the child dies; a read error just ends the output.
        let _ = stdout.read_to_string(&mut output);
        output
    });
    Running { child, output }
}

/// SIGKILLs the child and returns everything it printed.
fn kill_and_collect(mut running: Running) -> String {
    running.child.kill().expect("SIGKILL the child");
    running.child.wait().expect("reap the child");
    running.output.join().expect("output reader")
}

#[test]
fn sigkill_at_random_moments_never_loses_an_acknowledged_record() {
    let seed = std::env::var("PPDB_WAL_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5EED);
    eprintln!("PPDB_WAL_CRASH_SEED={seed}");
    let mut rng = seed;
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("node");
    let mut acknowledged: BTreeMap<u64, Acked> = BTreeMap::new();

    for round in 0..ROUNDS {
        let running = start(&["append", path_arg(&data_dir), CHILD_THREADS]);
        std::thread::sleep(Duration::from_millis(next_random(&mut rng) % KILL_DELAY_MS_MAX));
        let output = kill_and_collect(running);
        for (seq, acked) in parse_acks(&output) {
            let previous = acknowledged.insert(seq, acked);
            assert!(previous.is_none(), "round {round}: sequence number {seq} acknowledged twice");
        }

        let recovered = recover_all(&data_dir);
        for (seq, (thread, counter)) in &acknowledged {
            let Some((group, bytes)) = recovered.get(seq) else {
                panic!("round {round} (seed {seed}): acknowledged record {seq} is missing after SIGKILL");
            };
            assert_eq!(
                *group,
                GroupId(u64::from(*thread)),
                "round {round}: record {seq} has the wrong group"
            );
            assert_eq!(bytes, &payload(*thread, *counter), "round {round}: record {seq} is damaged");
        }
        let seqs: Vec<u64> = recovered.keys().copied().collect();
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "round {round}: recovered log has a gap");
    }
    assert!(!acknowledged.is_empty(), "the child never acknowledged a record: the test proved nothing");
    let segments = std::fs::read_dir(data_dir.join("wal")).unwrap().count();
    eprintln!("{} acknowledged records over {ROUNDS} kills, {segments} segments", acknowledged.len());
}

/// Writes 200 records of 100 bytes with small segments through the library and returns the
/// segment files.
fn write_log(data_dir: &Path) -> Vec<PathBuf> {
    let config = WalConfig { segment_bytes_max: 8 * 1024, ..WalConfig::default() };
    let (wal, _) = Wal::open(Arc::new(FsDisk::new()), data_dir.join("wal"), config, |_| Ok(())).unwrap();
    for counter in 0..200 {
        wal.append_durable(GroupId(1), RecordKind::Entries, payload(1, counter)).unwrap();
    }
    let segments = wal.segment_paths();
    wal.close().unwrap();
    segments
}

#[test]
fn corruption_in_the_middle_of_a_segment_stops_startup_with_the_documented_message() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("node");
    let segments = write_log(&data_dir);
    assert!(segments.len() >= 3, "the log must span several segments");
    let victim = &segments[1];
    // Segment header 24 bytes, records 25 + 100 bytes: damage the payload of the 10th record.
    let record_offset = 24 + 9 * (25 + PAYLOAD_BYTES) as u64;
    let mut bytes = std::fs::read(victim).unwrap();
    bytes[record_offset as usize + 40] ^= 0x01;
    std::fs::write(victim, &bytes).unwrap();

    let output = child(&["recover", path_arg(&data_dir)]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "start-up must fail; stderr: {stderr}");
    let expected_location = format!("corrupt data in {} at byte offset {record_offset}", victim.display());
    assert!(stderr.contains(&expected_location), "stderr: {stderr}");
    assert!(stderr.contains("checksum mismatch"), "stderr: {stderr}");
    assert!(
        stderr.contains("remove this node's data directory and rejoin the cluster to re-replicate"),
        "stderr: {stderr}"
    );
}

#[test]
fn a_second_process_cannot_open_a_data_directory_in_use() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("node");
    let mut first = child(&["append", path_arg(&data_dir), "1"]).spawn().unwrap();
    // Once the first child acknowledged a record, it holds the lock.
    let mut first_stdout = BufReader::new(first.stdout.take().unwrap());
    let mut line = String::new();
    first_stdout.read_line(&mut line).unwrap();
    assert!(!line.is_empty(), "first child exited early");
    // Keep draining so the first child never blocks on a full pipe.
    let drain = std::thread::spawn(move || std::io::copy(&mut first_stdout, &mut std::io::sink()));

    let second = child(&["recover", path_arg(&data_dir)]).output().unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "stderr: {stderr}");
    assert!(
        stderr.contains(&format!("data directory {} is in use by another process", data_dir.display())),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("pid {}", first.id())), "{stderr}");

    first.kill().unwrap();
    first.wait().unwrap();
    drain.join().unwrap().unwrap();
    let third = child(&["recover", path_arg(&data_dir)]).output().unwrap();
    assert!(
        third.status.success(),
        "the lock dies with its holder: {}",
        String::from_utf8_lossy(&third.stderr)
    );
}

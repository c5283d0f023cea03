//! Differential tests: the same random command sequences sent to a real Redis 7 and to a
//! 3-node PPDB cluster, every reply compared frame for frame.
//!
//! Redis is the reference: its replies, error texts, nil-versus-empty and RESP3 types are what
//! PPDB must send. A sequence starts with FLUSHALL on both, then 20 to 40 commands drawn from
//! its seed (see `generator`), each sent to Redis and to one PPDB node in turn (rotating over
//! the nodes, so followers forward and reads are linearizable); after the last command, every
//! key's type, TTL class and value (each group's `inspect` read) are compared too. The first mismatch panics with the seed,
//! the command's index, the command, both replies and the sequence so far, and says how to
//! replay it. Nothing waits on the clock: expiries are far ahead or long past.
//!
//! The main run uses one shard, PPDB's default. Two more runs put sequences on 8 shards, where
//! transactions, MSET, MSETNX, DEL, MGET, RENAME, COPY, SMOVE, LMOVE, the *STORE commands,
//! SUNION and the other multi-key set and sorted-set reads, LMPOP and ZMPOP span shards as
//! cross-shard transactions, whole-keyspace commands inside MULTI too; there a command PPDB
//! refuses across shards (`CROSSSLOT`: moves and pops whose shards need each other's values
//! in a cycle; or a blocking or script command whose keys live in different shards) ends its
//! sequence, counted as a skip. Commands that differ by design (`compatibility`) are skipped, and counted.
//!
//! Environment:
//! - `PPDB_SEED=<seed>`: run only that sequence (the replay a failure message prints).
//! - `PPDB_DIFF_SEQUENCES=<n>`: run `n` sequences (default [`SEQUENCES_DEFAULT`]);
//!   `PPDB_DIFF_FIRST_SEED=<seed>` starts them elsewhere than seed 1.
//! - `PPDB_DIFF_GROUPS=strings,keyspace`: only those generator groups.
//! - `PPDB_DIFF_KEEP_GOING=1`: run every sequence, then report each failing one.
//!
//! Adding a type's commands: write `differential/<type>.rs` with families
//! (`fn(&mut Rng, &KeyPool) -> Command`), a `FAMILIES` list and an `inspect` read of a whole
//! value, then add one line to [`GROUPS`] (strings.rs is the model).

mod compatibility;
pub mod generator;
mod hashes;
mod keyspace;
mod lists;
pub mod resp;
mod sets;
mod strings;
mod transactions;
mod zsets;

use crate::support::{free_addrs, wait_for, ClusterOptions, TestCluster};
use compatibility::{counts_expired_keys, known_difference, known_reply_difference};
use generator::{Command, Group, Sequence};
use resp::{command_line, Reply, RespConnection};
use std::collections::BTreeMap;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// Every generator group; a sequence draws its commands from a random subset of them.
const GROUPS: &[Group] = &[
    Group { name: "strings", families: strings::FAMILIES, inspect: Some(strings::inspect) },
    Group { name: "keyspace", families: keyspace::FAMILIES, inspect: None },
    Group { name: "lists", families: lists::FAMILIES, inspect: Some(lists::inspect) },
    Group { name: "sets", families: sets::FAMILIES, inspect: Some(sets::inspect) },
    Group { name: "hashes", families: hashes::FAMILIES, inspect: Some(hashes::inspect) },
    Group { name: "zsets", families: zsets::FAMILIES, inspect: Some(zsets::inspect) },
    Group { name: transactions::GROUP, families: transactions::FAMILIES, inspect: None },
];

/// Sequences `cargo test` runs, all groups (about 63,000 commands; 129 s on a 2-core machine
/// loaded by other builds; scripts/differential.sh runs more).
const SEQUENCES_DEFAULT: u64 = 1000;
/// Longest time the reference Redis may take to answer PING after starting.
const REDIS_START_DEADLINE: Duration = Duration::from_secs(10);

/// A throwaway `redis-server` on a free port, without persistence, killed on drop.
struct ReferenceRedis {
    child: Child,
    addr: std::net::SocketAddr,
    _dir: tempfile::TempDir,
}

impl ReferenceRedis {
    fn start() -> ReferenceRedis {
        let addr = free_addrs(1)[0];
        let dir = tempfile::tempdir().expect("tempdir");
        let spawned = std::process::Command::new("redis-server")
            .args(["--port", &addr.port().to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "redis-server is not installed: the differential tests compare PPDB with a real \
                 Redis 7 (Debian: apt-get install redis-server; .ci/run installs it)"
            ),
            Err(e) => panic!("start redis-server: {e}"),
        };
        let redis = ReferenceRedis { child, addr, _dir: dir };
        let pong = wait_for(REDIS_START_DEADLINE, || {
            let stream = std::net::TcpStream::connect(addr).ok()?;
            drop(stream);
            Some(RespConnection::connect(addr).call(&[b"PING".to_vec()]))
        });
        assert_eq!(pong, Some(Reply::Simple(b"PONG".to_vec())), "redis-server on {addr} did not answer PING");
        redis.check_version();
        redis
    }

    /// The reference must be Redis 7: replies and error texts changed between major versions.
    fn check_version(&self) {
        let info = RespConnection::connect(self.addr).call(&[b"INFO".to_vec(), b"server".to_vec()]);
        let Reply::Bulk(text) = info else { panic!("INFO server answered {info}") };
        let text = String::from_utf8_lossy(&text);
        let version = text.lines().find_map(|l| l.strip_prefix("redis_version:")).unwrap_or("?");
        assert!(version.starts_with("7."), "the differential tests need redis-server 7, found {version}");
    }
}

impl Drop for ReferenceRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What to run, from the environment.
struct Plan {
    seeds: Vec<u64>,
    groups: Vec<&'static Group>,
    keep_going: bool,
}

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(value.trim().parse().unwrap_or_else(|_| panic!("{name}={value:?} is not a number")))
}

impl Plan {
    fn from_env() -> Plan {
        let seeds = match env_u64("PPDB_SEED") {
            Some(seed) => vec![seed],
            None => {
                let first = env_u64("PPDB_DIFF_FIRST_SEED").unwrap_or(1);
                let count = env_u64("PPDB_DIFF_SEQUENCES").unwrap_or(SEQUENCES_DEFAULT);
                (first..first.saturating_add(count)).collect()
            }
        };
        let groups = match std::env::var("PPDB_DIFF_GROUPS") {
            Ok(names) => names
                .split(',')
                .map(|name| {
                    GROUPS.iter().find(|g| g.name == name.trim()).unwrap_or_else(|| {
                        let known: Vec<&str> = GROUPS.iter().map(|g| g.name).collect();
                        panic!("PPDB_DIFF_GROUPS names {name:?}; the groups are {known:?}")
                    })
                })
                .collect(),
            Err(_) => GROUPS.iter().collect(),
        };
        let keep_going = std::env::var_os("PPDB_DIFF_KEEP_GOING").is_some_and(|v| v != "0");
        Plan { seeds, groups, keep_going }
    }
}

/// Where two replies differed.
struct Mismatch {
    seed: u64,
    protocol: u8,
    groups: Vec<&'static str>,
    index: usize,
    node: u64,
    command: Command,
    redis: Reply,
    ppdb: Reply,
    history: Vec<String>,
}

impl Mismatch {
    fn report(&self) -> String {
        let mut text = format!(
            "PPDB differs from Redis in sequence {} (RESP{}, groups {:?}) at command {} (sent to \
             node {}):\n  {}\n  redis: {}\n  ppdb:  {}\n  compared: {:?}\n",
            self.seed,
            self.protocol,
            self.groups,
            self.index,
            self.node,
            command_line(&self.command.args),
            self.redis,
            self.ppdb,
            self.command.compare,
        );
        text.push_str("the sequence up to it (after FLUSHALL), with Redis's replies:\n");
        for line in &self.history {
            text.push_str(&format!("  {line}\n"));
        }
        text.push_str(&format!(
            "replay: PPDB_SEED={} cargo test -p ppdb --test it differential\n",
            self.seed
        ));
        text
    }
}

/// The two sides under test and the connections to them.
struct Differential {
    redis: RespConnection,
    nodes: Vec<(u64, RespConnection)>,
    /// Commands skipped, by reason.
    skipped: BTreeMap<&'static str, u64>,
    /// Commands compared, by name: how many, and how many Redis answered with an error (a
    /// family whose commands mostly fail tests little but the error paths).
    compared: BTreeMap<String, (u64, u64)>,
    /// The cluster's shards.
    shards: u64,
    _reference: ReferenceRedis,
    _cluster: TestCluster,
}

impl Differential {
    fn start(shards: u64) -> Differential {
        let reference = ReferenceRedis::start();
        let cluster = TestCluster::start(ClusterOptions { shards, ..ClusterOptions::default() });
        let nodes =
            cluster.ids().into_iter().map(|id| (id, RespConnection::connect(cluster.node(id).client_addr)));
        Differential {
            redis: RespConnection::connect(reference.addr),
            nodes: nodes.collect(),
            skipped: BTreeMap::new(),
            compared: BTreeMap::new(),
            shards,
            _reference: reference,
            _cluster: cluster,
        }
    }

    /// Both servers flushed, every connection speaking `protocol` and out of any transaction
    /// (a sequence that stopped inside MULTI leaves one open).
    fn reset(&mut self, protocol: u8) {
        let hello = [b"HELLO".to_vec(), protocol.to_string().into_bytes()];
        let flush = [b"FLUSHALL".to_vec()];
        for connection in std::iter::once(&mut self.redis).chain(self.nodes.iter_mut().map(|(_, c)| c)) {
            connection.call(&[b"DISCARD".to_vec()]);
            let reply = connection.call(&hello);
            assert!(!reply.is_error(), "HELLO {protocol}: {reply}");
        }
        assert_eq!(self.redis.call(&flush), Reply::Simple(b"OK".to_vec()), "FLUSHALL on Redis");
        let (id, node) = &mut self.nodes[0];
        assert_eq!(node.call(&flush), Reply::Simple(b"OK".to_vec()), "FLUSHALL on node {id}");
    }

    /// Runs one sequence; the first mismatch, if any. A command and those sent after it
    /// ([`Command::then`]) go to the same node.
    fn run(&mut self, sequence: &Sequence) -> Option<Mismatch> {
        self.reset(sequence.protocol);
        let mut history = Vec::new();
        let steps = sequence.commands.iter().chain(&sequence.final_checks);
        let sent = steps.enumerate().flat_map(|(step, command)| {
            let at = (sequence.seed as usize + step) % self.nodes.len();
            command.clone().flattened().into_iter().map(move |command| (at, command))
        });
        for (index, (at, command)) in sent.collect::<Vec<_>>().into_iter().enumerate() {
            if let Some(reason) = known_difference(&command.args) {
                *self.skipped.entry(reason).or_default() += 1;
                history.push(format!("{index}: {} (skipped: {reason})", command_line(&command.args)));
                continue;
            }
            if counts_expired_keys(&command.args) {
                self.redis.call(&[b"SCAN".to_vec(), b"0".to_vec(), b"COUNT".to_vec(), b"100000".to_vec()]);
            }
            let (node, connection) = &mut self.nodes[at];
            let redis = self.redis.call(&command.args);
            let ppdb = connection.call(&command.args);
            let counts =
                self.compared.entry(String::from_utf8_lossy(&command.args[0]).to_uppercase()).or_default();
            counts.0 += 1;
            counts.1 += u64::from(redis.is_error());
            if self.shards > 1 && refused_across_shards(&ppdb) {
                // The two key spaces part from here on: the rest of the sequence says nothing.
                *self.skipped.entry("a command PPDB refuses across shards").or_default() += 1;
                return None;
            }
            let (redis_canonical, ppdb_canonical) =
                (command.compare.canonical(redis.clone()), command.compare.canonical(ppdb.clone()));
            if redis_canonical != ppdb_canonical {
                // Compared as the command compares them: an unordered element of EXEC's reply
                // that differs only in order is no difference.
                if let Some(reason) = known_reply_difference(&command, &redis_canonical, &ppdb_canonical) {
                    *self.skipped.entry(reason).or_default() += 1;
                    return None;
                }
                return Some(Mismatch {
                    seed: sequence.seed,
                    protocol: sequence.protocol,
                    groups: sequence.groups.clone(),
                    index,
                    node: *node,
                    command,
                    redis,
                    ppdb,
                    history,
                });
            }
            history.push(format!("{index}: {} -> {redis}", command_line(&command.args)));
        }
        None
    }
}

impl Differential {
    /// What ran: commands compared (and the share Redis refused) by name, skips by reason.
    fn summary(&self, sequences: usize, elapsed: Duration) -> String {
        let total: u64 = self.compared.values().map(|(count, _)| count).sum();
        let mut text = format!(
            "differential: {sequences} sequences, {total} commands compared in {:.1} s\n",
            elapsed.as_secs_f64()
        );
        for (name, (count, errors)) in &self.compared {
            text.push_str(&format!("  {name:<12} {count:>6}  {:>3}% errors\n", errors * 100 / count));
        }
        for (reason, count) in &self.skipped {
            text.push_str(&format!("  skipped as a known difference ({reason}): {count}\n"));
        }
        text
    }
}

/// Whether PPDB refused a command because its keys live in several shards.
fn refused_across_shards(reply: &Reply) -> bool {
    match reply {
        Reply::Error(text) => {
            let text = String::from_utf8_lossy(text);
            text.starts_with("CROSSSLOT") || text.contains("live in different shards")
        }
        _ => false,
    }
}

#[test]
fn random_sequences_answer_as_redis_does() {
    run_plan(Plan::from_env(), 1);
}

/// Sequences of transactions (MULTI/EXEC/DISCARD, WATCH) and strings on 8 shards, where most
/// transactions span shards: the replies are Redis's.
#[test]
fn transactions_across_eight_shards_answer_as_redis_does() {
    let mut plan = Plan::from_env();
    if std::env::var_os("PPDB_DIFF_GROUPS").is_none() {
        plan.groups = GROUPS.iter().filter(|g| ["transactions", "strings"].contains(&g.name)).collect();
    }
    if env_u64("PPDB_SEED").is_none() && env_u64("PPDB_DIFF_SEQUENCES").is_none() {
        plan.seeds.truncate(EIGHT_SHARD_SEQUENCES_DEFAULT);
    }
    run_plan(plan, 8);
}

/// Sequences of key-space, set, list and sorted-set commands on 8 shards, where RENAME, COPY,
/// SMOVE, LMOVE, the *STORE commands, the multi-key reads (SUNION, ZINTER, ...) and pops
/// (LMPOP, ZMPOP) mostly span shards and run as cross-shard transactions (`server::moves`),
/// alone and inside MULTI: the replies are Redis's.
#[test]
fn moves_across_eight_shards_answer_as_redis_does() {
    let mut plan = Plan::from_env();
    if std::env::var_os("PPDB_DIFF_GROUPS").is_none() {
        let moving = ["keyspace", "sets", "lists", "zsets", "strings", "transactions"];
        plan.groups = GROUPS.iter().filter(|g| moving.contains(&g.name)).collect();
    }
    if env_u64("PPDB_SEED").is_none() && env_u64("PPDB_DIFF_SEQUENCES").is_none() {
        plan.seeds.truncate(EIGHT_SHARD_SEQUENCES_DEFAULT);
    }
    run_plan(plan, 8);
}

/// Sequences of each 8-shard run by default.
const EIGHT_SHARD_SEQUENCES_DEFAULT: usize = 300;

fn run_plan(plan: Plan, shards: u64) {
    let mut harness = Differential::start(shards);
    let started = Instant::now();
    let mut mismatches = Vec::new();
    for &seed in &plan.seeds {
        let sequence = Sequence::draw(seed, &plan.groups);
        if let Some(mismatch) = harness.run(&sequence) {
            if !plan.keep_going {
                panic!("{}", mismatch.report());
            }
            eprintln!("{}", mismatch.report());
            mismatches.push(mismatch);
        }
    }
    eprintln!("{}", harness.summary(plan.seeds.len(), started.elapsed()));
    if !mismatches.is_empty() {
        let summary: Vec<String> = mismatches
            .iter()
            .map(|m| format!("seed {} command {}: {}", m.seed, m.index, command_line(&m.command.args)))
            .collect();
        panic!("{} of {} sequences differ:\n{}", mismatches.len(), plan.seeds.len(), summary.join("\n"));
    }
}

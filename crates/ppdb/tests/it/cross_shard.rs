//! Cross-shard transactions on a real 3-node cluster with 8 shards: MSET, MSETNX, DEL and
//! MULTI/EXEC (with WATCH) whose keys live in different shards commit on all of them or on
//! none; concurrent transfers between accounts on different shards, through every node, never
//! let a cross-shard MGET see money appear or vanish, even when the node coordinating
//! transfers is killed with SIGKILL again and again; and no key stays locked afterwards.

use redis::{Connection, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::reference::reply_text;
use crate::support::{shard_of, wait_for, ClusterOptions, TestCluster};

const SHARDS: u64 = 8;

/// The first key `prefix<n>` that lives in `shard`.
fn key_on(prefix: &str, shard: u64) -> String {
    (0..).map(|n| format!("{prefix}{n}")).find(|k| shard_of(k.as_bytes(), SHARDS) == shard).unwrap()
}

fn cmd(con: &mut Connection, args: &[&str]) -> redis::RedisResult<Value> {
    let mut command = redis::cmd(args[0]);
    for arg in &args[1..] {
        command.arg(*arg);
    }
    command.query(con)
}

fn bulk(text: &str) -> Value {
    Value::BulkString(text.as_bytes().to_vec())
}

#[test]
fn multi_key_commands_and_transactions_across_shards_commit_everywhere_or_nowhere() {
    let cluster = TestCluster::start(ClusterOptions::default());
    let (a, b, c) = (key_on("a", 1), key_on("b", 2), key_on("c", 3));
    let mut one = cluster.client(1);
    let mut two = cluster.client(2);
    assert_eq!(cmd(&mut one, &["MSET", &a, "1", &b, "2"]).unwrap(), Value::Okay);
    assert_eq!(
        cmd(&mut two, &["MGET", &a, &b, &c]).unwrap(),
        Value::Array(vec![bulk("1"), bulk("2"), Value::Nil])
    );
    // MSETNX: `a` exists, so neither `c` nor `a` is written.
    assert_eq!(cmd(&mut one, &["MSETNX", &c, "x", &a, "y"]).unwrap(), Value::Int(0));
    assert_eq!(cmd(&mut two, &["MGET", &a, &c]).unwrap(), Value::Array(vec![bulk("1"), Value::Nil]));
    assert_eq!(cmd(&mut one, &["MSETNX", &c, "x", &key_on("d", 4), "y"]).unwrap(), Value::Int(1));
    // MULTI/EXEC over three shards, with a split MGET; a command's error is its own reply.
    cmd(&mut two, &["MULTI"]).unwrap();
    for command in
        [&["SET", &a, "10"][..], &["INCR", &b], &["GET", &c], &["MGET", &a, &b, &c], &["DEL", &c, &a]]
    {
        assert_eq!(cmd(&mut two, command).unwrap(), Value::SimpleString("QUEUED".into()));
    }
    let exec = cmd(&mut two, &["EXEC"]).unwrap();
    let expected = vec![
        Value::Okay,
        Value::Int(3),
        bulk("x"),
        Value::Array(vec![bulk("10"), bulk("3"), bulk("x")]),
        Value::Int(2),
    ];
    assert_eq!(exec, Value::Array(expected));
    cmd(&mut one, &["MULTI"]).unwrap();
    cmd(&mut one, &["SET", &c, "x"]).unwrap();
    cmd(&mut one, &["INCR", &c]).unwrap();
    cmd(&mut one, &["INCR", &b]).unwrap();
    let exec = reply_text(&mut one, &[b"EXEC"], false);
    assert!(exec.contains("not an integer"), "{exec}");
    assert_eq!(cmd(&mut two, &["MGET", &b, &c]).unwrap(), Value::Array(vec![bulk("4"), bulk("x")]));
    assert_eq!(cmd(&mut one, &["DEL", &a, &b, &c]).unwrap(), Value::Int(2));
    // WATCH across shards: a write through another node to one watched key voids EXEC.
    cmd(&mut one, &["MSET", &a, "1", &b, "1"]).unwrap();
    cmd(&mut one, &["WATCH", &a, &b]).unwrap();
    cmd(&mut two, &["SET", &b, "changed"]).unwrap();
    cmd(&mut one, &["MULTI"]).unwrap();
    cmd(&mut one, &["SET", &a, "mine"]).unwrap();
    cmd(&mut one, &["SET", &c, "mine"]).unwrap();
    assert_eq!(cmd(&mut one, &["EXEC"]).unwrap(), Value::Nil);
    assert_eq!(cmd(&mut two, &["MGET", &a, &c]).unwrap(), Value::Array(vec![bulk("1"), Value::Nil]));
    // Whole-keyspace commands join a transaction over several shards, seeing its writes.
    let before = match cmd(&mut two, &["DBSIZE"]).unwrap() {
        Value::Int(n) => n,
        other => panic!("DBSIZE answered {other:?}"),
    };
    cmd(&mut one, &["MULTI"]).unwrap();
    cmd(&mut one, &["SET", &a, "x"]).unwrap();
    cmd(&mut one, &["SET", &c, "x"]).unwrap();
    cmd(&mut one, &["DBSIZE"]).unwrap();
    let exec = cmd(&mut one, &["EXEC"]).unwrap();
    assert_eq!(exec, Value::Array(vec![Value::Okay, Value::Okay, Value::Int(before + 1)]));
    assert_eq!(cmd(&mut two, &["GET", &a]).unwrap(), bulk("x"));
}

/// Accounts on every shard, 100 each.
fn accounts() -> Vec<String> {
    (1..=SHARDS).map(|shard| key_on("account:", shard)).collect()
}

/// Transfers between random accounts through `node`, as MULTI/EXEC, until `stop`.
fn transfer_loop(
    cluster_client: impl Fn() -> Option<Connection>,
    seed: u64,
    stop: &AtomicBool,
    done: &AtomicU64,
) {
    let accounts = accounts();
    let mut state = seed | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut con = None;
    while !stop.load(Ordering::Relaxed) {
        let Some(c) = con.as_mut() else {
            con = cluster_client();
            if con.is_none() {
                std::thread::sleep(Duration::from_millis(50));
            }
            continue;
        };
        let from = &accounts[(next() % SHARDS) as usize];
        let to = &accounts[((next() % (SHARDS - 1) + 1 + (next() % SHARDS)) % SHARDS) as usize];
        if from == to {
            continue;
        }
        let amount = next() % 10 + 1;
        let result: redis::RedisResult<Value> = redis::pipe()
            .atomic()
            .cmd("DECRBY")
            .arg(from)
            .arg(amount)
            .cmd("INCRBY")
            .arg(to)
            .arg(amount)
            .query(c);
        match result {
            Ok(_) => {
                done.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) if e.is_io_error() || e.is_connection_dropped() => con = None,
            Err(_) => {}
        }
    }
}

fn total(con: &mut Connection) -> redis::RedisResult<i64> {
    let values: Vec<Option<i64>> = redis::cmd("MGET").arg(accounts()).query(con)?;
    Ok(values.into_iter().map(|v| v.unwrap_or(0)).sum())
}

/// Runs transfers through every node and checks every cross-shard MGET's total while
/// `disturb` runs; then checks the total, and that every account takes a write.
fn bank(mut cluster: TestCluster, disturb: impl FnOnce(&mut TestCluster, &AtomicBool)) {
    let accounts = accounts();
    let mut setup = cluster.client(1);
    let mut mset = redis::cmd("MSET");
    for account in &accounts {
        mset.arg(account).arg(100);
    }
    let _: () = mset.query(&mut setup).unwrap();
    let expected = 100 * SHARDS as i64;
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let reads = Arc::new(AtomicU64::new(0));
    let ports: Vec<_> = cluster.ids().iter().map(|&id| cluster.node(id).client_addr).collect();
    let mut threads = Vec::new();
    for (i, addr) in ports.iter().copied().enumerate() {
        for j in 0..2u64 {
            let (stop, done) = (Arc::clone(&stop), Arc::clone(&done));
            let connect = move || redis::Client::open(format!("redis://{addr}")).ok()?.get_connection().ok();
            threads.push(std::thread::spawn(move || {
                transfer_loop(connect, (i as u64 + 1) * 1000 + j, &stop, &done)
            }));
        }
        let (stop, reads) = (Arc::clone(&stop), Arc::clone(&reads));
        threads.push(std::thread::spawn(move || {
            let mut con: Option<Connection> = None;
            while !stop.load(Ordering::Relaxed) {
                let Some(c) = con.as_mut() else {
                    con = redis::Client::open(format!("redis://{addr}"))
                        .ok()
                        .and_then(|c| c.get_connection().ok());
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                match total(c) {
                    Ok(sum) => {
                        assert_eq!(sum, expected, "a cross-shard MGET saw half a transfer");
                        reads.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) if e.is_io_error() || e.is_connection_dropped() => con = None,
                    Err(_) => {}
                }
            }
        }));
    }
    disturb(&mut cluster, &stop);
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        thread.join().expect("a client thread failed");
    }
    let (done, reads) = (done.load(Ordering::Relaxed), reads.load(Ordering::Relaxed));
    assert!(done > 20 && reads > 20, "{done} transfers, {reads} whole-bank reads");
    // No key stays locked: every account takes a write and the total holds.
    let mut con = cluster.client(1);
    let settled = wait_for(Duration::from_secs(20), || {
        accounts
            .iter()
            .all(|a| redis::cmd("INCRBY").arg(a).arg(0).query::<i64>(&mut con).is_ok())
            .then_some(())
    });
    assert!(settled.is_some(), "an account stayed locked");
    assert_eq!(total(&mut con).unwrap(), expected);
}

#[test]
fn concurrent_transfers_across_shards_keep_the_bank_total_in_every_read() {
    let cluster = TestCluster::start(ClusterOptions::default());
    bank(cluster, |_, _| std::thread::sleep(Duration::from_secs(6)));
}

#[test]
fn killing_the_coordinating_node_mid_transfer_loses_no_money_and_leaves_no_lock() {
    let cluster = TestCluster::start(ClusterOptions::default());
    bank(cluster, |cluster, _| {
        let end = Instant::now() + Duration::from_secs(12);
        let mut victim = 2;
        while Instant::now() < end {
            std::thread::sleep(Duration::from_millis(1_500));
            cluster.kill(victim);
            std::thread::sleep(Duration::from_millis(300));
            cluster.spawn(victim);
            victim = victim % 3 + 1;
        }
        cluster.wait_ready();
    });
}

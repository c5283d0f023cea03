//! WATCH, against a real cluster and a real Redis 7: a watcher connection and a writer
//! connection on each, the same script on both, every reply compared. EXEC answers a null
//! array, and runs nothing, when a watched key was written (or created, deleted, expired)
//! between WATCH and EXEC, through any node.

use redis::Connection;

use crate::reference::{reply_text, Reference};
use crate::support::{shard_of, wait_for, ClusterOptions, TestCluster};
use std::time::Duration;

/// Runs `script` on both systems: each line is `A command...` (the watcher) or `B command...`
/// (the writer), or `WAIT-GONE key` (until the key has expired on both). Panics at the first
/// reply that differs.
fn assert_same(ppdb: &mut [Connection; 2], redis: &mut [Connection; 2], script: &str) {
    for line in script.lines().map(str::trim).filter(|line| !line.is_empty()) {
        let (who, command) = line.split_once(' ').unwrap_or((line, ""));
        if who == "WAIT-GONE" {
            for con in [&mut ppdb[1], &mut redis[1]] {
                let gone =
                    || (reply_text(con, &[b"PTTL", command.as_bytes()], false) == "int(-2)").then_some(());
                wait_for(Duration::from_secs(10), gone).unwrap_or_else(|| panic!("{command} never expired"));
            }
            continue;
        }
        let index = match who {
            "A" => 0,
            "B" => 1,
            other => panic!("`{other}`: a line starts with A or B"),
        };
        let args: Vec<&[u8]> = command.split_whitespace().map(str::as_bytes).collect();
        let ours = reply_text(&mut ppdb[index], &args, false);
        let theirs = reply_text(&mut redis[index], &args, false);
        assert_eq!(ours, theirs, "`{line}`: PPDB's reply (left) differs from Redis's (right)");
    }
}

#[test]
fn exec_runs_nothing_when_a_watched_key_was_written_as_redis_does() {
    // One shard, as `ppdb local` runs by default, so every key can be watched together.
    let cluster = TestCluster::start(ClusterOptions { shards: 1, ..ClusterOptions::default() });
    let reference = Reference::start();
    // The writer enters through another node than the watcher.
    let mut ppdb = [cluster.client(1), cluster.client(2)];
    let mut redis = [reference.client(), reference.client()];
    let script = "
        A SET k 1
        A WATCH k
        B SET k 2
        A MULTI
        A INCR counter
        A EXEC
        A GET counter

        A WATCH k
        A MULTI
        A INCR k
        A EXEC
        B SET k 5
        A MULTI
        A INCR k
        A EXEC

        A WATCH absent
        B SET absent 1
        A MULTI
        A PING
        A EXEC

        A WATCH k
        B EXPIRE k 100
        A MULTI
        A GET k
        A EXEC

        A WATCH h
        B HSET h f v
        A MULTI
        A HGET h f
        A EXEC
        A WATCH h
        B HSET h f v
        A MULTI
        A EXEC

        A WATCH k other
        A UNWATCH
        B SET k 7
        A MULTI
        A GET k
        A EXEC

        A WATCH k
        A MULTI
        A DISCARD
        B SET k 8
        A MULTI
        A GET k
        A EXEC

        A WATCH k
        A MULTI
        A WATCH k
        A GET k
        A EXEC

        A WATCH k
        A WATCH k
        B DEL k
        A MULTI
        A SET k fresh
        A EXEC
        A GET k

        A SET t v PX 200
        A WATCH t
        WAIT-GONE t
        A MULTI
        A SET t again
        A EXEC
        A GET t

        A WATCH
        A RESET
        A WATCH k
        A RESET
        B SET k 9
        A MULTI
        A GET k
        A EXEC
    ";
    assert_same(&mut ppdb, &mut redis, script);
}

#[test]
fn watched_keys_on_any_shard_void_exec_when_they_change() {
    let shards = 4;
    let cluster = TestCluster::start(ClusterOptions { shards, ..ClusterOptions::default() });
    let key_in = |shard: u64, prefix: &str| {
        (0..).map(|i| format!("{prefix}{i}")).find(|key| shard_of(key.as_bytes(), shards) == shard).unwrap()
    };
    let (a, b, c) = (key_in(2, "a"), key_in(2, "b"), key_in(3, "c"));
    let mut watcher = cluster.client(1);
    let mut writer = cluster.client(3);
    let exec = |con: &mut Connection, set: &str| -> String {
        let _: () = redis::cmd("MULTI").query(con).unwrap();
        let _: () = redis::cmd("SET").arg(set).arg("x").query(con).unwrap();
        reply_text(con, &[b"EXEC"], false)
    };
    // A watched key on the transaction's shard: the watch is checked.
    let _: () = redis::cmd("WATCH").arg(&a).query(&mut watcher).unwrap();
    assert_eq!(exec(&mut watcher, &b), "array([ok])");
    let _: () = redis::cmd("WATCH").arg(&a).query(&mut watcher).unwrap();
    let _: () = redis::cmd("SET").arg(&a).arg("changed").query(&mut writer).unwrap();
    assert_eq!(exec(&mut watcher, &b), "nil");
    // Watched keys on other shards make a cross-shard transaction, checked on each shard.
    let _: () = redis::cmd("WATCH").arg(&a).arg(&c).query(&mut watcher).unwrap();
    assert_eq!(exec(&mut watcher, &b), "array([ok])");
    let _: () = redis::cmd("WATCH").arg(&a).arg(&c).query(&mut watcher).unwrap();
    let _: () = redis::cmd("SET").arg(&c).arg("changed").query(&mut writer).unwrap();
    let _: () = redis::cmd("SET").arg(&b).arg("before").query(&mut writer).unwrap();
    assert_eq!(exec(&mut watcher, &b), "nil");
    let value: Option<String> = redis::cmd("GET").arg(&b).query(&mut writer).unwrap();
    assert_eq!(value.as_deref(), Some("before"), "the voided EXEC ran nothing");
}

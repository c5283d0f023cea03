//! Lua scripts against a real cluster and a real Redis 7: EVAL's replies, conversions and
//! errors compared word for word, the script cache, a script failing half way, and an
//! endless script stopped by its budget at the same point on every replica.

use std::time::Duration;

use redis::Connection;

use crate::reference::{reply_text, Reference};
use crate::support::{wait_for, ClusterOptions, TestCluster};

/// Sends each command (its arguments) to PPDB and to Redis, and panics at the first reply
/// that differs.
fn assert_same(ppdb: &mut Connection, redis: &mut Connection, commands: &[&[&str]]) {
    for command in commands {
        let args: Vec<&[u8]> = command.iter().map(|arg| arg.as_bytes()).collect();
        let ours = reply_text(ppdb, &args, false);
        let theirs = reply_text(redis, &args, false);
        assert_eq!(ours, theirs, "`{command:?}`: PPDB's reply (left) differs from Redis's (right)");
    }
}

#[test]
fn eval_replies_conversions_and_errors_match_redis() {
    let cluster = TestCluster::start(ClusterOptions { shards: 1, ..ClusterOptions::default() });
    let reference = Reference::start();
    let (mut ppdb, mut redis) = (cluster.client(2), reference.client());
    assert_same(
        &mut ppdb,
        &mut redis,
        &[
            &["EVAL", "return redis.call('SET', KEYS[1], ARGV[1])", "1", "k", "v"],
            &["EVAL", "return redis.call('GET', KEYS[1])", "1", "k"],
            &["EVAL", "return {1, 2, 3, 'ciao', {1, 2}, nil, 5}", "0"],
            &["EVAL", "return {1, {2, {3, {'deep'}}}, true, false}", "0"],
            &["EVAL", "return 3.99", "0"],
            &["EVAL", "return -3.99", "0"],
            &["EVAL", "return true", "0"],
            &["EVAL", "return false", "0"],
            &["EVAL", "return nil", "0"],
            &["EVAL", "return {ok='FINE'}", "0"],
            &["EVAL", "return {err='MY bad'}", "0"],
            &["EVAL", "return redis.error_reply('x y')", "0"],
            &["EVAL", "return redis.status_reply('Z')", "0"],
            &["EVAL", "return redis.sha1hex('')", "0"],
            &["EVAL", "return redis.call('GET', 'missing')", "0"],
            &["EVAL", "return {KEYS[1], KEYS[2], ARGV[1], #ARGV}", "2", "a", "b", "x", "y"],
            &["RPUSH", "l", "a", "b", "c"],
            &["EVAL", "return redis.call('LRANGE', KEYS[1], 0, -1)", "1", "l"],
            &["HSET", "h", "f", "v"],
            &["EVAL", "return redis.call('HGETALL', KEYS[1])", "1", "h"],
            &["ZADD", "z", "1.5", "m"],
            &["EVAL", "return redis.call('ZSCORE', KEYS[1], 'm')", "1", "z"],
            &["EVAL", "return redis.call('TYPE', KEYS[1])", "1", "z"],
            &["EVAL", "return redis.call('SET', 'n', 5.5)", "0"],
            &["GET", "n"],
            &["SET", "s", "abc"],
            &["EVAL", "return redis.call('INCR', 's')", "0"],
            &["EVAL", "return redis.pcall('INCR', 's')", "0"],
            &["EVAL", "local e = redis.pcall('INCR', 's') return e.err", "0"],
            &["EVAL", "local ok, e = pcall(redis.call, 'INCR', 's') return {tostring(ok), type(e), e}", "0"],
            &["EVAL", "return foo", "0"],
            &["EVAL", "x = 1", "0"],
            &["EVAL", "string.x = 1", "0"],
            &["EVAL", "error('boom')", "0"],
            &["EVAL", "error({err='X boom'})", "0"],
            &["EVAL", "return syntax error here", "0"],
            &["EVAL", "return redis.call('BLPOP', 'l', 0)", "0"],
            &["EVAL", "return redis.call('nosuch')", "0"],
            &["EVAL", "return redis.call('MULTI')", "0"],
            &["EVAL", "return redis.call()", "0"],
            &["EVAL", "return redis.call('GET', {})", "0"],
            &["EVAL", "return redis.call('GET', 'a', 'b')", "0"],
            &["EVAL", "return redis.call('PING')", "0"],
            &["EVAL", "return 1", "x"],
            &["EVAL", "return 1", "2", "a"],
            &["EVAL", "return 1", "-1"],
            &["EVAL_RO", "return redis.call('SET', 'a', 'b')", "1", "a"],
            &["EVAL_RO", "return redis.call('GET', KEYS[1])", "1", "k"],
            &["EVAL", "return cjson.decode('[1,2.5,\"x\"]')[2]", "0"],
            &["EVAL", "return cjson.encode({1, 2, 'x'})", "0"],
        ],
    );
}

#[test]
fn the_script_cache_answers_evalsha_and_script_as_redis() {
    let cluster = TestCluster::start(ClusterOptions { shards: 1, ..ClusterOptions::default() });
    let reference = Reference::start();
    let (mut ppdb, mut redis) = (cluster.client(1), reference.client());
    let sha = "e0e1f9fabfc9d4800c877a703b823ac0578ff8db";
    let unknown = "ffffffffffffffffffffffffffffffffffffffff";
    assert_same(
        &mut ppdb,
        &mut redis,
        &[
            &["SCRIPT", "FLUSH"],
            &["EVALSHA", sha, "0"],
            &["SCRIPT", "EXISTS", sha, unknown],
            &["SCRIPT", "LOAD", "return 1"],
            &["SCRIPT", "EXISTS", sha, unknown],
            &["EVALSHA", sha, "0"],
            &["EVALSHA", &sha.to_uppercase(), "0"],
            &["EVALSHA_RO", sha, "0"],
            &["EVALSHA", "abc", "0"],
            &["SCRIPT", "LOAD", "return +"],
            &["SCRIPT", "FLUSH"],
            &["SCRIPT", "EXISTS", sha],
            &["EVAL", "return 1", "0"],
            &["SCRIPT", "EXISTS", sha],
            &["SCRIPT", "KILL"],
        ],
    );
}

#[test]
fn a_script_failing_half_way_keeps_its_earlier_writes_as_redis_does() {
    let cluster = TestCluster::start(ClusterOptions { shards: 1, ..ClusterOptions::default() });
    let reference = Reference::start();
    let (mut ppdb, mut redis) = (cluster.client(3), reference.client());
    let script = "redis.call('SET', KEYS[1], 'first') redis.call('SET', KEYS[2], 'x') \
                  redis.call('INCR', KEYS[2]) redis.call('SET', KEYS[3], 'never')";
    assert_same(
        &mut ppdb,
        &mut redis,
        &[
            &["EVAL", script, "3", "a", "b", "c"],
            &["MGET", "a", "b", "c"],
            &["EVAL", "redis.call('DEL', KEYS[1]) return redis.call('LPUSH', KEYS[2], 'e')", "2", "a", "b"],
            &["EXISTS", "a"],
        ],
    );
}

#[test]
fn keys_on_several_shards_are_refused_as_multi_refuses_them() {
    let cluster = TestCluster::start(ClusterOptions::default());
    let mut con = cluster.client(1);
    let shards = ClusterOptions::default().shards;
    let (a, b) = (0..)
        .map(|i| (format!("a{i}"), format!("b{i}")))
        .find(|(a, b)| {
            crate::support::shard_of(a.as_bytes(), shards) != crate::support::shard_of(b.as_bytes(), shards)
        })
        .unwrap();
    let refused = reply_text(&mut con, &[b"EVAL", b"return 1", b"2", a.as_bytes(), b.as_bytes()], false);
    assert!(refused.starts_with("error: CROSSSLOT"), "{refused}");
    let body = format!("return redis.call('GET', '{b}')");
    let refused = reply_text(&mut con, &[b"EVAL", body.as_bytes(), b"1", a.as_bytes()], false);
    assert!(
        refused.contains("ERR Script attempted to access a non local key in a cluster node"),
        "{refused}"
    );
}

#[test]
fn an_endless_script_stops_at_the_same_point_on_every_replica_and_the_shard_keeps_serving() {
    let mut cluster = TestCluster::start(ClusterOptions { shards: 1, ..ClusterOptions::default() });
    let leader = cluster.leader_of_key(b"i");
    let entry = cluster.ids().into_iter().find(|&id| id != leader).unwrap();
    let other = cluster.ids().into_iter().find(|&id| id != leader && id != entry).unwrap();
    // Another client, on another node, is served while the script runs and after.
    let served = std::thread::spawn({
        let mut con = cluster.client(other);
        move || {
            for n in 0..20 {
                let reply: i64 = redis::cmd("INCR").arg("served").query(&mut con).expect("served");
                assert_eq!(reply, n + 1);
            }
        }
    });
    let mut con = cluster.client(entry);
    let body = "local i = 0 while true do i = i + 1 redis.call('SET', KEYS[1], i) end";
    let stopped = reply_text(&mut con, &[b"EVAL", body.as_bytes(), b"1", b"i"], false);
    assert!(stopped.contains("ERR Script exceeded its instruction budget of"), "{stopped}");
    served.join().expect("the other client was served");
    let counted: String = redis::cmd("GET").arg("i").query(&mut con).expect("GET");
    assert!(counted.parse::<u64>().expect("a count") > 1000, "it ran a while: {counted}");
    // The leader goes; the replica that takes over stopped the script at the same count.
    cluster.kill(leader);
    let same = wait_for(Duration::from_secs(30), || {
        let mut con = cluster.client(entry);
        redis::cmd("GET").arg("i").query::<String>(&mut con).ok()
    });
    assert_eq!(
        same.as_deref(),
        Some(counted.as_str()),
        "the new leader's replica stopped where the old one did"
    );
}

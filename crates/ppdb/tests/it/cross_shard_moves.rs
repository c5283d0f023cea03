//! Commands that need keys of several shards at once (RENAME, RENAMENX, COPY, SMOVE, LMOVE,
//! RPOPLPUSH, the *STORE commands), on a 3-node cluster with 8 shards where their keys live in
//! different shards, alone and inside MULTI, and whole-keyspace commands (KEYS, SCAN, DBSIZE,
//! RANDOMKEY, FLUSHALL) inside a MULTI over several shards: every reply is a real Redis 7's,
//! and the values move whole, typed, with their expiry.

use crate::reference::{assert_same_replies, Reference};
use crate::support::{shard_of, ClusterOptions, TestCluster};

const SHARDS: u64 = 8;

/// The first key `prefix<n>` that lives in `shard`.
fn key_on(prefix: &str, shard: u64) -> String {
    (0..).map(|n| format!("{prefix}{n}")).find(|k| shard_of(k.as_bytes(), SHARDS) == shard).unwrap()
}

/// `script` with each `{name:shard}` replaced by a key named after `name` on that shard.
pub(crate) fn on_shards(script: &str) -> String {
    let mut out = String::new();
    let mut rest = script;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('>').map(|e| start + e).expect("closed");
        let (name, shard) = rest[start + 1..end].split_once(':').expect("name:shard");
        out.push_str(&key_on(name, shard.parse().expect("a shard number")));
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

#[test]
fn moves_across_shards_answer_as_redis_does() {
    let cluster = TestCluster::start(ClusterOptions { shards: SHARDS, ..ClusterOptions::default() });
    let reference = Reference::start();
    let mut ppdb = cluster.client(2);
    let mut redis = reference.client();
    let script = on_shards(
        "
        SET <a:1> 1
        EXPIREAT <a:1> 4000000000
        RENAME <a:1> <b:2>
        GET <a:1>
        GET <b:2>
        EXPIRETIME <b:2>
        RENAME <a:1> <b:2>
        RENAMENX <a:1> <b:2>
        SET <a:1> 2
        RENAMENX <a:1> <b:2>
        GET <a:1>
        RENAMENX <a:1> <c:3>
        GET <c:3>
        EXISTS <a:1>
        COPY <c:3> <d:4>
        COPY <c:3> <d:4>
        SET <c:3> 3
        COPY <c:3> <d:4> REPLACE
        GET <d:4>
        COPY <missing:5> <d:4>
        RPUSH <l1:1> x y z
        RENAME <l1:1> <l2:2>
        LRANGE <l2:2> 0 -1
        HSET <h1:3> f v g w
        RENAME <h1:3> <h2:4>
        ~ HGETALL <h2:4>
        ZADD <z1:5> 1 a 2 b 3 c
        COPY <z1:5> <z2:6>
        ZRANGE <z2:6> 0 -1 WITHSCORES
        SADD <s1:7> m1 m2 m3
        COPY <s1:7> <s2:8>
        ~ SMEMBERS <s2:8>
        SMOVE <s1:7> <s3:1> m1
        SMOVE <s1:7> <s3:1> nothere
        ~ SMEMBERS <s1:7>
        ~ SMEMBERS <s3:1>
        SET <str:2> v
        SMOVE <s1:7> <str:2> m2
        ~ SMEMBERS <s1:7>
        SMOVE <str:2> <s1:7> m2
        SMOVE <missing:5> <s3:1> m2
        LMOVE <l2:2> <l3:3> LEFT RIGHT
        RPOPLPUSH <l2:2> <l3:3>
        LRANGE <l2:2> 0 -1
        LRANGE <l3:3> 0 -1
        LMOVE <missing:5> <l3:3> LEFT LEFT
        LMOVE <l2:2> <str:2> LEFT LEFT
        LRANGE <l2:2> 0 -1
        LMOVE <str:2> <l3:3> LEFT LEFT
        LMOVE <l2:2> <l3:3> LEFT LEFT
        EXISTS <l2:2>
        SUNIONSTORE <su:4> <s1:7> <s2:8> <s3:1>
        ~ SMEMBERS <su:4>
        SINTERSTORE <si:5> <s2:8> <s3:1>
        ~ SMEMBERS <si:5>
        SDIFFSTORE <sd:6> <s2:8> <s3:1> <s1:7>
        ~ SMEMBERS <sd:6>
        SUNIONSTORE <su:4> <str:2> <s1:7>
        SINTERSTORE <su:4> <missing:5> <s1:7>
        EXISTS <su:4>
        ZADD <z3:7> 5 a 7 d
        ZUNIONSTORE <zu:8> 2 <z2:6> <z3:7> WEIGHTS 1 2
        ZRANGE <zu:8> 0 -1 WITHSCORES
        ZINTERSTORE <zi:1> 2 <z2:6> <z3:7> AGGREGATE MAX
        ZRANGE <zi:1> 0 -1 WITHSCORES
        ZDIFFSTORE <zd:2> 2 <z2:6> <z3:7>
        ZRANGE <zd:2> 0 -1 WITHSCORES
        ZRANGESTORE <zr:3> <z2:6> 1 -1
        ZRANGE <zr:3> 0 -1 WITHSCORES
        ZUNIONSTORE <zu:8> 2 <z2:6> <str:2>
        ",
    );
    assert_same_replies(&mut ppdb, &mut redis, &script);
    let in_multi = on_shards(
        "
        MULTI
        SET <ma:1> 5
        RENAME <ma:1> <mb:2>
        GET <mb:2>
        INCR <mb:2>
        COPY <mb:2> <mc:3>
        RENAMENX <mc:3> <mn:4>
        RENAME <missing:1> <mb:2>
        SADD <ms:4> x
        SMOVE <ms:4> <mt:5> x
        RPUSH <ml:6> p q
        LMOVE <ml:6> <mm:7> RIGHT LEFT
        SUNIONSTORE <mu:8> <mt:5> <ms:4>
        EXEC
        MGET <ma:1> <mb:2> <mc:3> <mn:4>
        ~ SMEMBERS <mu:8>
        LRANGE <mm:7> 0 -1
        ",
    );
    assert_same_replies(&mut ppdb, &mut redis, &in_multi);
    // Moves whose shards need each other's values in a cycle are refused, and nothing ran.
    let cycle = on_shards("MULTI\nRENAME <ca:1> <cb:2>\nRENAME <cc:2> <cd:1>\nEXEC");
    let mut replies = Vec::new();
    for line in cycle.lines() {
        let args: Vec<&[u8]> = line.split_whitespace().map(str::as_bytes).collect();
        replies.push(crate::reference::reply_text(&mut ppdb, &args, false));
    }
    assert!(replies[3].contains("CROSSSLOT"), "{replies:?}");
}

#[test]
fn whole_keyspace_commands_run_on_every_shard_at_one_moment() {
    let cluster = TestCluster::start(ClusterOptions { shards: SHARDS, ..ClusterOptions::default() });
    let reference = Reference::start();
    let mut ppdb = cluster.client(3);
    let mut redis = reference.client();
    let script = on_shards(
        "
        MSET <a:1> 1 <b:2> 2 <c:3> 3 <d:4> 4
        MULTI
        SET <e:5> 5
        DBSIZE
        KEYS *
        RENAME <a:1> <f:6>
        DBSIZE
        DEL <b:2>
        ~ EXEC
        DBSIZE
        MULTI
        RANDOMKEY
        EXISTS <c:3>
        EXEC
        MULTI
        FLUSHALL
        SET <g:7> 7
        DBSIZE
        GET <c:3>
        EXEC
        ~ KEYS *
        MSET <a:1> 1 <b:2> 2 <c:3> 3
        FLUSHALL
        DBSIZE
        MGET <a:1> <b:2> <c:3>
        ",
    );
    // RANDOMKEY's key differs; inside MULTI only its being one of the keys is compared.
    let script = script.replace("        RANDOMKEY\n", "");
    assert_same_replies(&mut ppdb, &mut redis, &script);
    let mut con = cluster.client(1);
    assert_eq!(crate::reference::reply_text(&mut con, &[b"SET", b"x", b"1"], false), "ok");
    assert_eq!(crate::reference::reply_text(&mut con, &[b"MULTI"], false), "ok");
    crate::reference::reply_text(&mut con, &[b"SCAN", b"0", b"COUNT", b"1000"], false);
    crate::reference::reply_text(&mut con, &[b"RANDOMKEY"], false);
    let exec = crate::reference::reply_text(&mut con, &[b"EXEC"], false);
    assert!(exec.contains("'\"x\"'"), "SCAN and RANDOMKEY find the one key: {exec}");
}

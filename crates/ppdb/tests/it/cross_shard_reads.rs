//! Commands that read several keys at once (SUNION, SINTER, SDIFF, SINTERCARD, ZUNION, ZINTER,
//! ZDIFF, ZINTERCARD), pop from the first non-empty of several keys (LMPOP, ZMPOP, and the
//! blocking forms inside MULTI) or set several keys only if none exists (MSETNX inside MULTI),
//! on a 3-node cluster with 8 shards where their keys live in different shards, alone and
//! inside MULTI after queued writes to the same keys, under WATCH: every reply is a real
//! Redis 7's.

use crate::cross_shard_moves::on_shards;
use crate::reference::{assert_same_replies, Reference};
use crate::support::{ClusterOptions, TestCluster};

const SHARDS: u64 = 8;

#[test]
fn multi_key_reads_across_shards_answer_as_redis_does() {
    let cluster = TestCluster::start(ClusterOptions { shards: SHARDS, ..ClusterOptions::default() });
    let reference = Reference::start();
    let mut ppdb = cluster.client(2);
    let mut redis = reference.client();
    let script = on_shards(
        "
        SADD <s1:1> a b c d
        SADD <s2:2> c d e
        SADD <s3:3> d e f
        EXPIREAT <s3:3> 4000000000
        SET <str:4> v
        ~ SUNION <s1:1> <s2:2> <s3:3>
        ~ SINTER <s1:1> <s2:2> <s3:3>
        ~ SINTER <s1:1> <s2:2>
        ~ SDIFF <s1:1> <s2:2> <s3:3>
        ~ SDIFF <s2:2> <s1:1>
        ~ SUNION <s1:1> <missing:5>
        ~ SINTER <s1:1> <missing:5>
        ~ SDIFF <missing:5> <s1:1>
        ~ SUNION <s1:1> <s1:1> <s2:2>
        SUNION <s1:1> <str:4>
        SINTER <str:4> <s1:1>
        SDIFF <s1:1> <str:4>
        SINTER <missing:5> <str:4>
        SINTERCARD 2 <s1:1> <s2:2>
        SINTERCARD 3 <s1:1> <s2:2> <s3:3> LIMIT 0
        SINTERCARD 2 <s1:1> <s2:2> LIMIT 1
        SINTERCARD 2 <s1:1> <str:4>
        SINTERCARD 2 <s1:1> <missing:5>
        ZADD <z1:6> 1 a 2 b 3 c
        ZADD <z2:7> 10 b 20 c 30 d
        ZADD <z3:8> 5 c
        ZUNION 2 <z1:6> <z2:7>
        ZUNION 2 <z1:6> <z2:7> WITHSCORES
        ZUNION 3 <z1:6> <z2:7> <z3:8> WEIGHTS 1 2 3 AGGREGATE MAX WITHSCORES
        ZUNION 2 <z1:6> <s1:1> WITHSCORES
        ZINTER 2 <z1:6> <z2:7> WITHSCORES
        ZINTER 3 <z1:6> <z2:7> <z3:8> AGGREGATE MIN WITHSCORES
        ZINTER 2 <z1:6> <z2:7> WEIGHTS 2 0.5 WITHSCORES
        ZDIFF 2 <z1:6> <z2:7> WITHSCORES
        ZDIFF 3 <z2:7> <z1:6> <z3:8>
        ZDIFF 2 <missing:5> <z1:6>
        ZINTERCARD 2 <z1:6> <z2:7>
        ZINTERCARD 2 <z1:6> <z2:7> LIMIT 1
        ZINTERCARD 2 <z1:6> <missing:5>
        ZUNION 2 <z1:6> <str:4>
        ZINTERCARD 2 <str:4> <z1:6>
        ZUNION 2 <z1:6> <z2:7> WEIGHTS 1
        ",
    );
    assert_same_replies(&mut ppdb, &mut redis, &script);
    // Inside MULTI the reads see the transaction's earlier writes, on every shard.
    let in_multi = on_shards(
        "
        MULTI
        SADD <s2:2> a z
        SREM <s1:1> c
        DEL <s3:3>
        SINTERCARD 2 <s1:1> <s2:2>
        SADD <s3:3> q
        ZADD <z2:7> 0 a
        ZINTER 2 <z1:6> <z2:7> WITHSCORES
        ZREM <z1:6> a
        ZUNION 3 <z1:6> <z2:7> <z3:8> WITHSCORES
        ZINTERCARD 2 <z1:6> <z2:7>
        SET <str:4> w
        ZDIFF 2 <z2:7> <z1:6> WITHSCORES
        EXEC
        ~ SUNION <s1:1> <s2:2> <s3:3>
        MULTI
        SADD <s1:1> zz
        SUNION <s1:1> <s2:2> <s3:3>
        SREM <s1:1> zz
        SINTER <s1:1> <s2:2>
        SDIFF <s2:2> <s1:1>
        ~ EXEC
        MULTI
        SADD <s1:1> zz
        SUNION <s1:1> <str:4>
        EXEC
        SISMEMBER <s1:1> zz
        ",
    );
    assert_same_replies(&mut ppdb, &mut redis, &in_multi);
    // A watched key changed by the client itself: EXEC runs nothing, as in Redis.
    let watched = on_shards(
        "
        WATCH <s1:1> <z2:7>
        SADD <s1:1> w
        MULTI
        SUNION <s1:1> <s2:2>
        ZADD <z2:7> 99 w
        EXEC
        ZSCORE <z2:7> w
        WATCH <s2:2>
        MULTI
        SINTERCARD 2 <s1:1> <s2:2>
        ZINTERCARD 2 <z1:6> <z2:7>
        EXEC
        ",
    );
    assert_same_replies(&mut ppdb, &mut redis, &watched);
}

#[test]
fn pops_from_the_first_non_empty_key_across_shards_answer_as_redis_does() {
    let cluster = TestCluster::start(ClusterOptions { shards: SHARDS, ..ClusterOptions::default() });
    let reference = Reference::start();
    let mut ppdb = cluster.client(1);
    let mut redis = reference.client();
    let script = on_shards(
        "
        RPUSH <l3:3> x y z
        LMPOP 3 <l1:1> <l2:2> <l3:3> LEFT
        LMPOP 3 <l1:1> <l2:2> <l3:3> RIGHT COUNT 5
        EXISTS <l3:3>
        LMPOP 2 <l1:1> <l2:2> LEFT
        RPUSH <l2:2> a b
        RPUSH <l4:4> c d e
        LMPOP 3 <l1:1> <l4:4> <l2:2> LEFT COUNT 2
        LRANGE <l4:4> 0 -1
        LRANGE <l2:2> 0 -1
        RPUSH <l1:1> f
        LMPOP 3 <l4:4> <l1:1> <l2:2> RIGHT
        LMPOP 2 <l1:1> <l2:2> LEFT
        LRANGE <l2:2> 0 -1
        SET <str:5> v
        LMPOP 2 <str:5> <l2:2> LEFT
        LMPOP 3 <m1:6> <str:5> <l2:2> LEFT
        LMPOP 2 <l2:2> <str:5> LEFT
        LRANGE <l2:2> 0 -1
        ZADD <z3:3> 1 a 2 b 3 c
        ZMPOP 3 <z1:1> <z2:2> <z3:3> MIN
        ZMPOP 3 <z1:1> <z2:2> <z3:3> MAX COUNT 10
        EXISTS <z3:3>
        ZMPOP 2 <z1:1> <z2:2> MIN
        ZADD <z2:2> 5 p 6 q
        ZADD <z7:7> 1 r
        ZMPOP 3 <z7:7> <z1:1> <z2:2> MAX
        ZMPOP 3 <z1:1> <z7:7> <z2:2> MAX COUNT 2
        ZMPOP 2 <z1:1> <z2:2> MIN COUNT 1
        ZMPOP 2 <str:5> <z2:2> MIN
        ZMPOP 2 <z2:2> <str:5> MIN
        ZRANGE <z2:2> 0 -1 WITHSCORES
        ",
    );
    assert_same_replies(&mut ppdb, &mut redis, &script);
    // Inside MULTI, after queued writes to the same keys; blocking forms do not block there.
    let in_multi = on_shards(
        "
        DEL <str:5>
        MULTI
        RPUSH <l8:8> one two
        LMPOP 2 <l1:1> <l8:8> LEFT
        RPUSH <l1:1> three
        LMPOP 2 <l8:8> <l1:1> RIGHT COUNT 3
        BLMPOP 0 2 <l1:1> <l8:8> LEFT
        BLMPOP 0 2 <l2:2> <l3:3> LEFT
        BLPOP <l2:2> <l1:1> 0
        ZADD <z6:6> 4 s 5 t
        ZMPOP 2 <z1:1> <z6:6> MIN
        BZMPOP 0 2 <z1:1> <z6:6> MAX COUNT 2
        BZMPOP 0 2 <z1:1> <z6:6> MAX
        BZPOPMIN <z4:4> <z6:6> 0
        ZADD <z4:4> 9 u
        BZPOPMAX <z3:3> <z4:4> 0
        EXEC
        LRANGE <l8:8> 0 -1
        LRANGE <l1:1> 0 -1
        EXISTS <z4:4> <z6:6>
        MULTI
        RPUSH <l2:2> w
        SET <str:5> x
        LMPOP 3 <l1:1> <str:5> <l2:2> LEFT
        EXEC
        LRANGE <l2:2> 0 -1
        ",
    );
    assert_same_replies(&mut ppdb, &mut redis, &in_multi);
    // Blocking forms outside MULTI whose keys span shards stay refused.
    let keys = on_shards("<b1:1> <b2:2>");
    let mut args: Vec<&str> = vec!["BLMPOP", "0.1", "2"];
    args.extend(keys.split_whitespace());
    args.push("LEFT");
    let args: Vec<&[u8]> = args.iter().map(|arg| arg.as_bytes()).collect();
    let refused = crate::reference::reply_text(&mut ppdb, &args, false);
    assert!(refused.contains("different shards"), "{refused}");
}

#[test]
fn msetnx_inside_a_multi_across_shards_answers_as_redis_does() {
    let cluster = TestCluster::start(ClusterOptions { shards: SHARDS, ..ClusterOptions::default() });
    let reference = Reference::start();
    let mut ppdb = cluster.client(3);
    let mut redis = reference.client();
    let script = on_shards(
        "
        MULTI
        MSETNX <a:1> 1 <b:2> 2 <c:3> 3
        MSETNX <a:1> 9 <d:4> 4
        MSETNX <d:4> 4 <e:5> 5 <d:4> 44
        GET <d:4>
        DEL <b:2>
        MSETNX <f:6> 6 <b:2> 22
        MSETNX <g:7> 7 <a:1> 11 <h:8> 8
        EXEC
        MGET <a:1> <b:2> <c:3> <d:4> <e:5> <f:6> <g:7> <h:8>
        SET <x:2> present
        MULTI
        SET <y:3> y
        MSETNX <w:1> 1 <x:2> 2 <y:3> 3
        DEL <x:2>
        MSETNX <w:1> 1 <x:2> 2 <y:1> 3
        EXEC
        MGET <w:1> <x:2> <y:3> <y:1>
        MSETNX <p:4> 1 <q:5> 2
        MSETNX <q:5> 3 <r:6> 3
        MGET <p:4> <q:5> <r:6>
        ",
    );
    assert_same_replies(&mut ppdb, &mut redis, &script);
}

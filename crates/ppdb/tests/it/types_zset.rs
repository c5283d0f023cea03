//! Sorted sets on a real cluster, reply for reply against a real redis-server 7: ZADD's options
//! and errors, every ZRANGE form, the pops, the multi-set commands, RESP3's doubles and pairs,
//! and what PPDB alone can show (random members, ZSCAN of a large set, MULTI/EXEC, expiry).

use std::collections::BTreeSet;
use std::time::Duration;

use redis::Value;

use super::reference::{assert_same_replies, reply_text, Reference};
use super::support::{wait_for, ClusterOptions, TestCluster};

/// Runs `script` against a fresh cluster and a fresh redis-server (RESP3 on both when `resp3`).
fn compare(script: &str, resp3: bool) {
    let cluster = TestCluster::start(ClusterOptions { shards: 1, ..ClusterOptions::default() });
    let reference = Reference::start();
    let (mut ppdb, mut redis) = (cluster.client(1), reference.client());
    if resp3 {
        reply_text(&mut ppdb, &[b"HELLO", b"3"], false);
        reply_text(&mut redis, &[b"HELLO", b"3"], false);
    }
    assert_same_replies(&mut ppdb, &mut redis, script);
}

#[test]
fn zadd_options_scores_and_errors_answer_as_redis_does() {
    compare(
        "
        ZADD z 1 a 2 b 3 c
        ZADD z NX XX 1 a
        ZADD z NX GT 1 a
        ZADD z GT LT 1 a
        ZADD z INCR 1 a 2 b
        ZADD z 1 a 2
        ZADD z foo a
        ZADD z nan a
        ZADD z 1e400 a
        ZADD z XX 1 new
        ZADD z XX CH 5 a 6 new
        ZADD z NX CH 5 a 6 new
        ZADD z GT CH 1 a 9 b
        ZADD z LT CH 1 a 9 b
        ZADD z CH INCR 1 a
        ZADD z GT INCR -1 a
        ZADD z XX INCR 1 nope
        ZADD z INCR +inf a
        ZADD z INCR -inf a
        ZINCRBY z 1.1 b
        ZINCRBY z abc b
        ZADD z -0 zero 1.1 x 0.1 t 1e-5 small 1e20 e 123456789012345678 l
        ZRANGE z 0 -1 WITHSCORES
        ZSCORE z x
        ZSCORE z nope
        ZSCORE nokey a
        ZMSCORE z a nope x
        ZMSCORE nokey a
        ZRANK z x
        ZREVRANK z x
        ZRANK z nope
        ZCARD z
        ZCARD nokey
        ZREM z a nope b
        ZREM nokey a
        ZRANGE z 0 -1 WITHSCORES
        SET str v
        ZADD str 1 a
        ZSCORE str a
        ZRANGE str 0 -1
        ZCARD str
        ZREM z t e l small zero x
        EXISTS z
        ",
        false,
    );
}

#[test]
fn every_range_form_answers_as_redis_does() {
    compare(
        "
        ZADD z 1 a 2 b 3 c 4 d 5 e
        ZADD lex 0 a 0 b 0 c 0 d 0 e
        ZADD mixed 1 c 2 a 3 d 4 b
        ZRANGE z 0 -1 LIMIT 0 1
        ZRANGE z 0 -1 BYLEX WITHSCORES
        ZRANGE z (1 3 BYSCORE
        ZRANGE z (1 (3 BYSCORE
        ZRANGE z 3 1 BYSCORE REV
        ZRANGE z x 1 BYSCORE
        ZRANGE z 1 ( BYSCORE
        ZRANGE z -inf +inf BYSCORE LIMIT 1 -5
        ZRANGE z +inf -inf BYSCORE REV WITHSCORES LIMIT 0 2
        ZRANGE z 0 -1 REV
        ZRANGE z 0 -1 REV REV
        ZRANGE z 0 -1 BYSCORE BYLEX
        ZRANGE z a b
        ZRANGE z -100 100
        ZRANGE z 3 1
        ZRANGE z -2 -1 WITHSCORES
        ZRANGE nokey 0 -1
        ZRANGE lex - + BYLEX LIMIT 1 2
        ZRANGE lex - + BYLEX LIMIT 1
        ZRANGE lex - + BYLEX LIMIT a 2
        ZRANGE lex - + BYLEX LIMIT -1 2
        ZRANGE lex [z (a BYLEX REV
        ZRANGE lex (a [z BYLEX REV
        ZRANGE lex a b BYLEX
        ZRANGE lex [a +x BYLEX
        ZRANGE mixed [b [c BYLEX
        ZRANGE mixed - [c BYLEX
        ZRANGE mixed [c [c BYLEX
        ZRANGE mixed [b + BYLEX REV
        ZRANGE mixed + [b BYLEX REV
        ZRANGE mixed [c - BYLEX REV
        ZREVRANGEBYLEX mixed (d [a
        ZRANGEBYSCORE z -inf +inf WITHSCORES LIMIT 1 2
        ZRANGEBYSCORE z -inf +inf REV
        ZRANGEBYSCORE z (2 +inf
        ZREVRANGEBYSCORE z +inf -inf WITHSCORES LIMIT 1 2
        ZREVRANGEBYSCORE z (4 2
        ZRANGEBYLEX lex - + WITHSCORES
        ZRANGEBYLEX lex [b (d
        ZREVRANGEBYLEX lex + -
        ZREVRANGEBYLEX lex (d [b LIMIT 0 1
        ZREVRANGE z 0 1 WITHSCORES
        ZREVRANGE z 0 1 LIMIT 1 1
        ZCOUNT z (1 3
        ZCOUNT z -inf +inf
        ZCOUNT z x 3
        ZLEXCOUNT lex - +
        ZLEXCOUNT lex [a (c
        ZLEXCOUNT lex a c
        ZRANGESTORE dst z 0 1
        ZRANGESTORE dst z 0 1 WITHSCORES
        ZRANGESTORE dst z 5 2 BYSCORE REV LIMIT 1 2
        ZRANGE dst 0 -1 WITHSCORES
        ZRANGESTORE dst nokey 0 -1
        EXISTS dst
        ZREMRANGEBYSCORE z x 1
        ZREMRANGEBYLEX lex x 1
        ZREMRANGEBYRANK z x 1
        ZREMRANGEBYRANK z 0 0
        ZREMRANGEBYRANK z -1 -1
        ZREMRANGEBYSCORE z (2 3
        ZREMRANGEBYLEX lex [b [c
        ZRANGE lex 0 -1
        ZRANGE z 0 -1 WITHSCORES
        ZREMRANGEBYSCORE z -inf +inf
        EXISTS z
        ",
        false,
    );
}

#[test]
fn pops_and_multi_set_commands_answer_as_redis_does() {
    compare(
        "
        ZADD z 1 a 2 b 3 c
        ZPOPMIN z -1
        ZPOPMIN z x
        ZPOPMIN z 0
        ZPOPMIN z 1 2
        ZPOPMAX z 2
        ZPOPMIN z
        ZPOPMIN z
        ZPOPMIN nokey 2
        ZADD z 1 a 2 b 3 c
        ZADD z2 5 x
        ZMPOP 0 z MIN
        ZMPOP 1 z foo
        ZMPOP 1 z MIN COUNT 0
        ZMPOP 1 z MIN COUNT 1 COUNT 2
        ZMPOP 3 z MIN
        ZMPOP 2 nokey z MAX
        ZMPOP 2 nokey z MIN COUNT 10
        ZMPOP 1 nokey MIN
        ZMPOP 2 z z2 MAX COUNT 10
        ZADD z1 1 a 2 b 3 c
        ZADD z2 10 b 20 c 30 d
        SET str v
        ZUNION 2 z1 z2 WITHSCORES
        ZUNION 2 z1 z2 WEIGHTS 2 3 WITHSCORES
        ZUNION 2 z1 z2 WEIGHTS 2 WITHSCORES
        ZUNION 2 z1 z2 AGGREGATE MIN WITHSCORES
        ZUNION 2 z1 z2 AGGREGATE MAX WITHSCORES
        ZUNION 2 z1 z2 AGGREGATE foo
        ZUNION 0 z1
        ZUNION x z1
        ZUNION 3 z1 z2
        ZUNION 2 z1 str
        ZUNION 2 z1 z2 WEIGHTS inf -inf WITHSCORES
        ZUNION 2 z1 z2 WEIGHTS 0 inf WITHSCORES
        ZINTER 2 z1 z2 WITHSCORES
        ZINTER 2 z1 z2 WEIGHTS inf -inf WITHSCORES
        ZDIFF 2 z1 z2 WITHSCORES
        ZDIFF 2 z1 z2 WEIGHTS 1 2
        ZUNIONSTORE dst 2 z1 z2 WITHSCORES
        ZUNIONSTORE dst 2 z1 z2 WEIGHTS 1 -1
        ZRANGE dst 0 -1 WITHSCORES
        ZINTERSTORE dst 2 z1 nokey
        EXISTS dst
        ZDIFFSTORE dst 1 z1
        ZDIFFSTORE dst 0 z1
        ZUNIONSTORE str 1 z1
        TYPE str
        ZINTERCARD 2 z1 z2
        ZINTERCARD 2 z1 z2 LIMIT 1
        ZINTERCARD 2 z1 z2 LIMIT -1
        ZINTERCARD 0 z1
        ~ ZRANDMEMBER z1 10
        ~ ZRANDMEMBER z1 3 WITHSCORES
        ZRANDMEMBER z1 x
        ZRANDMEMBER z1 1 foo
        ZRANDMEMBER z1 4611686018427387904 WITHSCORES
        ZRANDMEMBER z1 -9223372036854775808
        ZRANDMEMBER nokey
        ZRANDMEMBER nokey -5
        ZRANDMEMBER z1 0
        ZSCAN z1 0
        ZSCAN z1 0 MATCH a*
        ZSCAN z1 0 COUNT 0
        ZSCAN z1 x
        ZSCAN z1 5
        ZSCAN nokey 0
        ",
        false,
    );
}

#[test]
fn scores_are_doubles_and_pairs_are_nested_in_resp3() {
    compare(
        "
        ZADD z 1.1 a 2 b 3 c
        ZSCORE z a
        ZMSCORE z a nope
        ZINCRBY z 1 c
        ZADD z INCR 1.5 b
        ZADD z NX INCR 1 b
        ZRANGE z 0 -1 WITHSCORES
        ZRANGEBYSCORE z -inf +inf WITHSCORES LIMIT 0 2
        ZUNION 1 z WITHSCORES
        ZSCAN z 0
        ZPOPMIN z
        ZPOPMAX z 1
        ZMPOP 1 z MIN COUNT 5
        ZMPOP 1 z MIN
        ZPOPMIN z
        ~ ZRANDMEMBER nokey 2 WITHSCORES
        ",
        true,
    );
}

/// A reply's members as text (the array of bulk strings ZRANDMEMBER and ZSCAN pages hold).
fn members(value: &Value) -> Vec<String> {
    match value {
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                other => format!("{other:?}"),
            })
            .collect(),
        other => panic!("an array, got {other:?}"),
    }
}

#[test]
fn random_members_scans_transactions_and_expiry_work_on_ppdb() {
    let cluster = TestCluster::start(ClusterOptions { shards: 1, ..ClusterOptions::default() });
    let mut con = cluster.client(1);
    let all: Vec<String> = (0..300).map(|i| format!("m{i:03}")).collect();
    let mut zadd = redis::cmd("ZADD");
    zadd.arg("big");
    for (i, member) in all.iter().enumerate() {
        zadd.arg(i / 50).arg(member);
    }
    let added: i64 = zadd.query(&mut con).expect("ZADD");
    assert_eq!(added, 300);

    // Negative counts repeat, positive counts never do, and calls differ (the seed is fresh).
    let repeated: Value = redis::cmd("ZRANDMEMBER").arg("big").arg(-1000).query(&mut con).expect("draw");
    let repeated = members(&repeated);
    assert_eq!(repeated.len(), 1000);
    assert!(repeated.iter().all(|m| all.contains(m)));
    let distinct: Value = redis::cmd("ZRANDMEMBER").arg("big").arg(100).query(&mut con).expect("draw");
    let distinct = members(&distinct);
    assert_eq!(distinct.iter().collect::<BTreeSet<_>>().len(), 100);
    let again: Value = redis::cmd("ZRANDMEMBER").arg("big").arg(100).query(&mut con).expect("draw");
    assert_ne!(members(&again), distinct, "two draws of 100 of 300 members came out alike");

    // A set too large to come whole is scanned page by page, every member at least once.
    let (mut cursor, mut seen, mut pages) = (0u64, BTreeSet::new(), 0);
    loop {
        let (next, page): (u64, Vec<String>) =
            redis::cmd("ZSCAN").arg("big").arg(cursor).arg("COUNT").arg(20).query(&mut con).expect("ZSCAN");
        seen.extend(page.chunks(2).map(|pair| pair[0].clone()));
        pages += 1;
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    assert_eq!(seen.len(), 300);
    assert!(pages > 1, "a 300-member set must not come in one page");

    // Inside MULTI/EXEC like any other command.
    let (added, popped, card): (i64, Vec<String>, i64) = redis::pipe()
        .atomic()
        .cmd("ZADD")
        .arg("tx")
        .arg(1)
        .arg("a")
        .arg(2)
        .arg("b")
        .cmd("ZPOPMAX")
        .arg("tx")
        .cmd("ZCARD")
        .arg("tx")
        .query(&mut con)
        .expect("MULTI/EXEC");
    assert_eq!((added, popped, card), (2, vec!["b".to_owned(), "2".to_owned()], 1));

    // The framework's key commands see a sorted set: TYPE, RENAME, and expiry deletes it.
    let kind: String = redis::cmd("TYPE").arg("tx").query(&mut con).expect("TYPE");
    assert_eq!(kind, "zset");
    let () = redis::cmd("RENAME").arg("tx").arg("moved").query(&mut con).expect("RENAME");
    let score: f64 = redis::cmd("ZSCORE").arg("moved").arg("a").query(&mut con).expect("ZSCORE");
    assert_eq!(score, 1.0);
    let _: i64 = redis::cmd("PEXPIRE").arg("moved").arg(50).query(&mut con).expect("PEXPIRE");
    let gone = wait_for(Duration::from_secs(5), || {
        let card: i64 = redis::cmd("ZCARD").arg("moved").query(&mut con).ok()?;
        (card == 0).then_some(())
    });
    assert!(gone.is_some(), "the expired sorted set is still there");
}

/// BZPOPMIN, BZPOPMAX and BZMPOP answer as Redis does when there is something to pop, when
/// the wait times out, and to malformed calls, in RESP2 and RESP3.
#[test]
fn blocking_pops_answer_as_redis_does() {
    let script = "
        ZADD z 1 a 2 b 3 c 4 d
        BZPOPMIN z 0
        BZPOPMAX nokey z 0.1
        BZPOPMIN nokey 0.1
        BZMPOP 0.1 2 nokey z MIN COUNT 1
        BZMPOP 0.1 1 z MAX COUNT 5
        BZMPOP 0.1 1 z MAX
        BZPOPMIN z notafloat
        BZPOPMIN z -1
        BZMPOP 0.1 0 z MIN
        BZMPOP 0.1 1 z MIDDLE
        SET s v
        BZPOPMIN s 0.1
    ";
    compare(script, false);
    compare(script, true);
}

//! Set commands against a real cluster, reply for reply as a real Redis 7 answers them (RESP2
//! and RESP3), and what Redis cannot be compared on: random choices, SSCAN's cursor over a
//! large set, and SPOP replicated alike.

use std::collections::BTreeSet;
use std::time::Duration;

use redis::{Connection, Value};

use crate::reference::{assert_same_replies, Reference};
use crate::support::{wait_for, ClusterOptions, TestCluster};

/// Three nodes and one shard, so that every multi-key command (SINTER, SMOVE, ...) has its
/// keys together.
fn cluster() -> TestCluster {
    TestCluster::start(ClusterOptions { shards: 1, ..ClusterOptions::default() })
}

fn members(con: &mut Connection, args: &[&str]) -> BTreeSet<String> {
    let mut cmd = redis::cmd(args[0]);
    args[1..].iter().for_each(|arg| {
        cmd.arg(*arg);
    });
    cmd.query(con).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

#[test]
fn set_commands_answer_as_redis_does() {
    let cluster = cluster();
    let reference = Reference::start();
    let script = "
        SADD s a b c
        SADD s a d
        SREM s d zz
        SREM nokey a
        SCARD s
        SCARD nokey
        SISMEMBER s a
        SISMEMBER s zz
        SISMEMBER nokey a
        SMISMEMBER s a zz c
        SMISMEMBER nokey a
        ~ SMEMBERS s
        SMEMBERS nokey
        SET str v
        SADD str a
        SREM str a
        SMEMBERS str
        SCARD str
        SISMEMBER str a
        SMISMEMBER str a
        SPOP str
        SPOP str 0
        SPOP str -1
        SPOP str abc
        SPOP s 1 2
        SPOP nokey
        SPOP nokey 3
        SPOP nokey 0
        SPOP s 0
        SRANDMEMBER nokey
        SRANDMEMBER nokey 5
        SRANDMEMBER nokey -5
        SRANDMEMBER nokey 0
        SRANDMEMBER str
        SRANDMEMBER str 0
        SRANDMEMBER s 0
        SRANDMEMBER s abc
        SRANDMEMBER s -9223372036854775808
        SRANDMEMBER s 1 2
        ~ SRANDMEMBER s 10
        ~ SRANDMEMBER s 3
        SADD one x
        SRANDMEMBER one
        SRANDMEMBER one -3
        SPOP one
        EXISTS one
        SADD one x
        SPOP one 5
        EXISTS one
        SMOVE nokey str a
        SMOVE s str a
        SMOVE str s a
        SMOVE s s a
        SMOVE s s zz
        SMOVE s moved zz
        EXISTS moved
        SMOVE s moved a
        SMEMBERS moved
        SADD n 7
        SMOVE n moved 7
        EXISTS n
        SADD a 1 2 3 4
        SADD b 3 4 5
        ~ SINTER a b
        ~ SUNION a b nokey
        ~ SDIFF a b
        SDIFF a a
        ~ SDIFF a nokey
        SINTER a nokey
        SINTER nokey str
        SINTER str nokey
        SUNION nokey str
        SDIFF nokey str
        SDIFF nokey a
        SINTERSTORE dst a b
        ~ SMEMBERS dst
        SINTERSTORE str a b
        TYPE str
        SET str v
        SUNIONSTORE dst nokey
        EXISTS dst
        SDIFFSTORE dst a b
        ~ SMEMBERS dst
        SINTERSTORE dst a str
        ~ SMEMBERS dst
        SUNIONSTORE a a b
        SCARD a
        SET dst x
        EXPIRE dst 100
        SINTERSTORE dst b a
        TTL dst
        SINTERSTORE dst a nokey
        EXISTS dst
        SINTERCARD 2 a b
        SINTERCARD 2 a b LIMIT 1
        SINTERCARD 2 a b limit 0
        SINTERCARD 2 a b LIMIT 1 LIMIT 9
        SINTERCARD 1 nokey
        SINTERCARD 2 nokey str
        SINTERCARD 0 a
        SINTERCARD -1 a
        SINTERCARD x a
        SINTERCARD 3 a b
        SINTERCARD 1 a LIMIT
        SINTERCARD 1 a LIMIT -1
        SINTERCARD 1 a LIMIT x
        SINTERCARD 1 a FOO 1
        ~ SSCAN a 0
        ~ SSCAN a 5
        ~ SSCAN a 0 MATCH *
        ~ SSCAN a 0 MATCH 1*
        ~ SSCAN s 0
        ~ SSCAN s 0 COUNT 100 MATCH a*
        SSCAN nokey 0
        SSCAN nokey 0 COUNT 0
        SSCAN nokey x
        SSCAN str 0 COUNT 0
        SSCAN a 0 COUNT 0
        SSCAN a 0 COUNT -1
        SSCAN a 0 COUNT x
        SSCAN a 0 TYPE set
        SSCAN a 0 MATCH
        SSCAN a x
        SADD
        SCARD
        SINTERCARD 1
        SMOVE a b
        SISMEMBER a
    ";
    assert_same_replies(&mut cluster.client(1), &mut reference.client(), script);
}

#[test]
fn set_replies_in_resp3_are_sets_where_redis_sends_sets() {
    let cluster = cluster();
    let reference = Reference::start();
    let (mut ppdb, mut redis) = (cluster.client(2), reference.client());
    for con in [&mut ppdb, &mut redis] {
        redis::cmd("HELLO").arg(3).query::<Value>(con).expect("HELLO 3");
    }
    let script = "
        SADD r3 x
        SMEMBERS r3
        SMEMBERS nokey
        SPOP nokey
        SPOP nokey 2
        SPOP r3 0
        SRANDMEMBER r3 2
        SRANDMEMBER r3 -2
        SRANDMEMBER nokey 2
        SRANDMEMBER nokey
        SINTER r3 nokey
        SUNION r3 nokey
        SDIFF r3 nokey
        SMISMEMBER r3 x y
        SSCAN r3 0
        SSCAN nokey 0
        SADD p y
        SPOP p 1
        SADD p y
        SPOP p
        SPOP p
    ";
    assert_same_replies(&mut ppdb, &mut redis, script);
}

#[test]
fn sets_work_with_transactions_expiry_rename_and_copy() {
    let cluster = cluster();
    let reference = Reference::start();
    let script = "
        MULTI
        SADD m a b c
        SREM m a
        SCARD m
        SINTERSTORE m2 m
        ~ SMEMBERS m2
        ~ EXEC
        EXEC
        EXPIRE m 100
        TTL m
        RENAME m renamed
        TYPE renamed
        ~ SMEMBERS renamed
        COPY renamed copied
        SCARD copied
        PERSIST renamed
        TTL renamed
        DEL renamed copied m2
        TYPE renamed
    ";
    assert_same_replies(&mut cluster.client(3), &mut reference.client(), script);
}

#[test]
fn sscan_visits_every_member_of_a_large_set_once_the_cursor_returns_to_zero() {
    let cluster = cluster();
    let reference = Reference::start();
    let all: Vec<String> = (0..1000).map(|n| format!("member:{n}")).collect();
    for con in [&mut cluster.client(1), &mut reference.client()] {
        let added: i64 = redis::cmd("SADD").arg("big").arg(&all).query(con).expect("SADD");
        assert_eq!(added, 1000);
        let (mut cursor, mut seen, mut pages) = (0u64, BTreeSet::new(), 0);
        loop {
            let (next, page): (u64, Vec<String>) =
                redis::cmd("SSCAN").arg("big").arg(cursor).arg("COUNT").arg(50).query(con).expect("SSCAN");
            assert!(page.len() <= 100, "about COUNT members a page: {}", page.len());
            seen.extend(page);
            pages += 1;
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        assert!(pages >= 10, "a large set is paged: {pages} pages");
        assert_eq!(seen, all.iter().cloned().collect::<BTreeSet<_>>());
        let matching: (u64, Vec<String>) = redis::cmd("SSCAN")
            .arg("big")
            .arg(0)
            .arg("MATCH")
            .arg("member:99*")
            .arg("COUNT")
            .arg(2000)
            .query(con)
            .expect("SSCAN MATCH");
        assert_eq!(matching.0, 0, "COUNT beyond the set's size takes it whole");
        assert_eq!(matching.1.len(), 11, "member:99 and member:990..999");
    }
}

#[test]
fn random_members_are_spread_and_spop_takes_them_out() {
    let cluster = cluster();
    let mut con = cluster.client(1);
    let all: Vec<String> = (0..20).map(|n| format!("m{n}")).collect();
    let _: i64 = redis::cmd("SADD").arg("r").arg(&all).query(&mut con).expect("SADD");
    let mut drawn = BTreeSet::new();
    for _ in 0..50 {
        let five: Vec<String> =
            redis::cmd("SRANDMEMBER").arg("r").arg(5).query(&mut con).expect("SRANDMEMBER");
        assert_eq!(five.iter().collect::<BTreeSet<_>>().len(), 5, "distinct: {five:?}");
        drawn.extend(five);
    }
    assert_eq!(drawn.len(), 20, "every member drawn in 250 draws");
    let popped: BTreeSet<String> = members(&mut con, &["SPOP", "r", "6"]);
    assert_eq!(popped.len(), 6);
    let left = members(&mut con, &["SMEMBERS", "r"]);
    assert_eq!(left.len(), 14);
    assert!(popped.is_disjoint(&left));
    assert_eq!(popped.union(&left).count(), 20);
}

#[test]
fn every_replica_pops_the_same_members() {
    let mut cluster = cluster();
    let leader = cluster.leader_of_key(b"pops");
    let mut con = cluster.client(leader);
    let all: Vec<String> = (0..200).map(|n| format!("m{n}")).collect();
    let _: i64 = redis::cmd("SADD").arg("pops").arg(&all).query(&mut con).expect("SADD");
    for _ in 0..10 {
        let _: Value = redis::cmd("SPOP").arg("pops").arg(7).query(&mut con).expect("SPOP");
        let _: Value = redis::cmd("SPOP").arg("pops").query(&mut con).expect("SPOP");
    }
    let before = members(&mut con, &["SMEMBERS", "pops"]);
    assert_eq!(before.len(), 200 - 80);
    // Another replica becomes leader: it applied the same SPOP entries, so holds the same set.
    cluster.kill(leader);
    let other = cluster.running()[0];
    let after = wait_for(Duration::from_secs(30), || {
        redis::cmd("SMEMBERS").arg("pops").query::<BTreeSet<String>>(&mut cluster.client(other)).ok()
    })
    .expect("a new leader answers");
    assert_eq!(after, before);
}

//! Hashes against a real Redis: every hash command's replies and errors, in RESP2 and RESP3,
//! compared reply for reply with redis-server; then what Redis leaves to chance (HRANDFIELD's
//! choices, HSCAN's pages of a large hash) checked for the properties Redis promises.

use std::collections::BTreeSet;

use redis::Value;

use crate::reference::{assert_same_replies, Reference};
use crate::support::{ClusterOptions, TestCluster};

/// Switches a connection to RESP3.
fn hello3(con: &mut redis::Connection) {
    redis::cmd("HELLO").arg(3).query::<Value>(con).expect("HELLO 3");
}

/// Writes and their errors. Small hashes keep Redis's order (its listpack's), so HGETALL
/// after HDEL compares in order. HINCRBYFLOAT results stay within what `f64` and 15 digits
/// hold: Redis computes in an 80-bit `long double` (see `kv::numeric`).
const WRITES: &str = "
    HSET h a 1 b 2 c 3
    HSET h a 10 d 4
    HMSET h e 5
    HSET h odd
    HMSET h odd
    HSETNX h a 99
    HSETNX h new 1
    HSETNX fresh f v
    HDEL h a a zz b
    HGETALL h
    HDEL nohash a
    HDEL fresh f
    EXISTS fresh
    HINCRBY h n 5
    HINCRBY h n -7
    HINCRBY h n 1.5
    HINCRBY h n x
    HINCRBY h e 9223372036854775807
    HSET h max 9223372036854775807 min -9223372036854775808 word abc sp 1x
    HINCRBY h max 1
    HINCRBY h min -1
    HINCRBY h max -1
    HINCRBY h word 1
    HINCRBY h sp 1
    HINCRBY made n 3
    HINCRBYFLOAT h f 10.5
    HINCRBYFLOAT h f 0.1
    HINCRBYFLOAT h f -10.6
    HINCRBYFLOAT h n 1.5
    HINCRBYFLOAT h g 5.0e3
    HINCRBYFLOAT h g -0.25
    HINCRBYFLOAT h word 1
    HINCRBYFLOAT h f inf
    HINCRBYFLOAT h f -inf
    HINCRBYFLOAT h f nan
    HINCRBYFLOAT h f abc
    HSET h infinite inf
    HINCRBYFLOAT h infinite 1
    HGETALL h
    HLEN h
    SET s v
    HSET s f v
    HSETNX s f v
    HDEL s f
    HINCRBY s f 1
    HINCRBYFLOAT s f 1
    HINCRBYFLOAT s f inf
    HINCRBY s f x
    GET s
";

/// Reads, on a hash, a missing key and a string.
const READS: &str = "
    HSET h a 1 b 22 c 333 empty
    HSET h a 1 b 22 c 333 e x
    HGET h b
    HGET h zz
    HGET nohash a
    HMGET h a zz c
    HMGET nohash a b
    HGETALL h
    HGETALL nohash
    HKEYS h
    HKEYS nohash
    HVALS h
    HVALS nohash
    HLEN h
    HLEN nohash
    HEXISTS h a
    HEXISTS h zz
    HEXISTS nohash a
    HSTRLEN h c
    HSTRLEN h zz
    HSTRLEN nohash a
    HRANDFIELD nohash
    HRANDFIELD nohash 5
    HRANDFIELD nohash -5 WITHVALUES
    HRANDFIELD h 0
    HRANDFIELD h 0 WITHVALUES
    HRANDFIELD h 4
    HRANDFIELD h 100 withvalues
    HRANDFIELD h x
    HRANDFIELD h 1 withvalue
    HRANDFIELD h 1 withvalues extra
    HRANDFIELD h -9223372036854775808
    HRANDFIELD h -9223372036854775807 WITHVALUES
    HRANDFIELD h 4611686018427387904 WITHVALUES
    HRANDFIELD nohash -9223372036854775808
    HSCAN h 0
    HSCAN h 0 COUNT 1
    HSCAN h 12345 MATCH ?
    HSCAN h 0 MATCH [ab] COUNT 100 MATCH a*
    HSCAN h 0 COUNT 0
    HSCAN h 0 COUNT -1
    HSCAN h 0 COUNT x
    HSCAN h 0 MATCH
    HSCAN h 0 TYPE hash
    HSCAN h x
    HSCAN h -1
    HSCAN nohash 0
    HSCAN nohash 0 COUNT 0
    HSCAN nohash 0 MATCH
    SET s v
    HGET s a
    HMGET s a
    HGETALL s
    HKEYS s
    HVALS s
    HLEN s
    HEXISTS s a
    HSTRLEN s a
    HRANDFIELD s
    HRANDFIELD s 0
    HRANDFIELD s x
    HSCAN s 0
    HSCAN s 0 COUNT 0
    HSCAN s x
";

/// The key space around hashes: type, expiry, rename, copy, delete, and MULTI/EXEC.
const KEYSPACE: &str = "
    HSET h a 1 b 2
    TYPE h
    EXPIRE h 100
    TTL h
    RENAME h h2
    HGETALL h2
    COPY h2 h3
    HSET h3 c 3
    HLEN h2
    HLEN h3
    PERSIST h2
    TTL h2
    MULTI
    HSET t f 1
    HINCRBY t f 2
    HINCRBY t nonint x
    HGET t f
    HGETALL t
    EXEC
    HGETALL t
    DEL h2 h3 t
    EXISTS h2 h3 t
";

#[test]
fn hash_commands_answer_as_redis_does_in_resp2_and_resp3() {
    // One shard, so RENAME and COPY between keys work as on a single Redis.
    let cluster = TestCluster::start(ClusterOptions { shards: 1, ..ClusterOptions::default() });
    let reference = Reference::start();
    let (mut ppdb, mut redis) = (cluster.client(1), reference.client());
    for script in [WRITES, READS, KEYSPACE] {
        assert_same_replies(&mut ppdb, &mut redis, "FLUSHALL");
        assert_same_replies(&mut ppdb, &mut redis, script);
    }
    // RESP3: maps, nulls, doubles-as-bulk and HRANDFIELD's pairs.
    let (mut ppdb, mut redis) = (cluster.client(2), reference.client());
    hello3(&mut ppdb);
    hello3(&mut redis);
    for script in [WRITES, READS, KEYSPACE] {
        assert_same_replies(&mut ppdb, &mut redis, "FLUSHALL");
        assert_same_replies(&mut ppdb, &mut redis, script);
    }
}

fn strings(value: Value) -> Vec<String> {
    match value {
        Value::Array(items) => items.into_iter().flat_map(strings).collect(),
        Value::BulkString(bytes) => vec![String::from_utf8_lossy(&bytes).into_owned()],
        other => panic!("not an array of strings: {other:?}"),
    }
}

fn query(con: &mut redis::Connection, words: &str) -> Value {
    let mut words = words.split_whitespace();
    let mut cmd = redis::cmd(words.next().expect("a command"));
    for word in words {
        cmd.arg(word);
    }
    cmd.query(con).unwrap_or_else(|e| panic!("{e}"))
}

/// HRANDFIELD's choices are Redis's kind of random: a negative count repeats fields, a
/// positive one does not, successive calls differ, every field turns up, and RESP3 pairs each
/// field with its own value.
#[test]
fn hrandfield_chooses_at_random_with_and_without_repeats() {
    let cluster = TestCluster::start(ClusterOptions::default());
    let mut con = cluster.client(1);
    let fields: Vec<String> = (0..20).map(|n| format!("f{n} v{n}")).collect();
    query(&mut con, &format!("HSET r {}", fields.join(" ")));

    let picks = strings(query(&mut con, "HRANDFIELD r -200"));
    assert_eq!(picks.len(), 200);
    let distinct: BTreeSet<&String> = picks.iter().collect();
    assert!(distinct.len() < 200 && distinct.len() > 15, "repeats, and most fields: {}", distinct.len());

    let some = strings(query(&mut con, "HRANDFIELD r 10"));
    assert_eq!(some.iter().collect::<BTreeSet<_>>().len(), 10, "distinct: {some:?}");
    let again = strings(query(&mut con, "HRANDFIELD r 10"));
    assert_ne!(some, again, "each call draws anew");

    let mut seen = BTreeSet::new();
    for _ in 0..200 {
        seen.extend(strings(query(&mut con, "HRANDFIELD r")));
    }
    assert_eq!(seen.len(), 20, "every field turns up: {seen:?}");

    hello3(&mut con);
    let Value::Array(pairs) = query(&mut con, "HRANDFIELD r -30 WITHVALUES") else { panic!("an array") };
    assert_eq!(pairs.len(), 30);
    for pair in pairs {
        let pair = strings(pair);
        assert_eq!(pair.len(), 2, "{pair:?}");
        assert_eq!(pair[0][1..], pair[1][1..], "each field with its own value: {pair:?}");
    }
}

/// HSCAN over a hash larger than Redis answers at once: pages of about COUNT fields and a
/// cursor that ends at 0, returning every field that stays while others come and go.
#[test]
fn hscan_walks_a_large_hash_that_changes_under_it() {
    let cluster = TestCluster::start(ClusterOptions::default());
    let mut con = cluster.client(1);
    let size = 500;
    let pairs: Vec<String> = (0..size).map(|n| format!("f{n} v{n}")).collect();
    query(&mut con, &format!("HSET big {}", pairs.join(" ")));

    let (mut cursor, mut pages, mut seen) = ("0".to_owned(), 0, BTreeSet::new());
    loop {
        let Value::Array(mut page) = query(&mut con, &format!("HSCAN big {cursor} COUNT 20")) else {
            panic!("a scan page")
        };
        let found = strings(page.pop().expect("fields"));
        cursor = strings(Value::Array(page)).remove(0);
        assert!(found.len() <= 2 * 20, "a page of at most COUNT fields: {}", found.len());
        seen.extend(found.chunks(2).map(|pair| pair[0].clone()));
        // Fields leave (odd ones, below and above the cursor) and arrive between pages.
        query(&mut con, &format!("HDEL big f{} f{}", 2 * pages + 1, size - 1 - 2 * pages));
        query(&mut con, &format!("HSET big new{pages} x"));
        pages += 1;
        if cursor == "0" {
            break;
        }
    }
    assert!(pages >= size / 20, "about size / COUNT pages: {pages}");
    let kept = strings(query(&mut con, "HKEYS big"));
    for field in kept.iter().filter(|field| field.starts_with('f')) {
        assert!(seen.contains(field), "{field} stayed in the hash but HSCAN never returned it");
    }
}

//! Every command of the client service against a real 3-node cluster, through different nodes,
//! with Redis 7's replies and error texts; and bad input through raw sockets.

use crate::support::{error_text, shard_of, wait_for, ClusterOptions, TestCluster};
use redis::{Connection, FromRedisValue, Value};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A cluster and one client connection to each of its nodes.
struct Fixture {
    cluster: TestCluster,
    clients: Vec<Connection>,
}

impl Fixture {
    fn start() -> Fixture {
        let cluster = TestCluster::start(ClusterOptions::default());
        let clients = cluster.ids().iter().map(|&id| cluster.client(id)).collect();
        Fixture { cluster, clients }
    }

    /// The connection to node `id` (1-based).
    fn via(&mut self, id: usize) -> &mut Connection {
        &mut self.clients[id - 1]
    }
}

fn command<A: redis::ToRedisArgs>(args: &[A]) -> redis::Cmd {
    let mut cmd = redis::Cmd::new();
    for arg in args {
        cmd.arg(arg);
    }
    cmd
}

/// Runs `args` and converts the reply; panics with the error text on an error reply.
fn run<T: FromRedisValue, A: redis::ToRedisArgs + std::fmt::Debug>(con: &mut Connection, args: &[A]) -> T {
    command(args).query(con).unwrap_or_else(|e| panic!("{args:?}: {}", error_text(&e)))
}

/// Runs `args`, which must fail; the error as Redis sent it (without the leading `-`).
fn fails<A: redis::ToRedisArgs + std::fmt::Debug>(con: &mut Connection, args: &[A]) -> String {
    match command(args).query::<Value>(con) {
        Ok(value) => panic!("{args:?} answered {value:?}, expected an error"),
        Err(e) => error_text(&e),
    }
}

fn now_s() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn ok(con: &mut Connection, args: &[&str]) {
    let reply: Value = run(con, args);
    assert_eq!(reply, Value::Okay, "{args:?}");
}

fn get(con: &mut Connection, key: &str) -> Option<String> {
    run(con, &["GET", key])
}

/// Keys `prefix:N` that live on `shard`.
fn keys_on_shard(prefix: &str, shard: u64, count: usize) -> Vec<String> {
    (0..)
        .map(|i| format!("{prefix}:{i}"))
        .filter(|k| shard_of(k.as_bytes(), 8) == shard)
        .take(count)
        .collect()
}

/// The string, key-space and connection commands every node must answer (the first list of
/// commands PPDB set out to serve).
const ISSUE_COMMANDS: [&str; 45] = [
    "PING",
    "ECHO",
    "HELLO",
    "QUIT",
    "COMMAND",
    "INFO",
    "SELECT",
    "AUTH",
    "GET",
    "SET",
    "SETNX",
    "SETEX",
    "PSETEX",
    "GETSET",
    "GETDEL",
    "GETEX",
    "MGET",
    "MSET",
    "MSETNX",
    "DEL",
    "UNLINK",
    "EXISTS",
    "INCR",
    "INCRBY",
    "DECR",
    "DECRBY",
    "INCRBYFLOAT",
    "APPEND",
    "STRLEN",
    "GETRANGE",
    "SETRANGE",
    "EXPIRE",
    "PEXPIRE",
    "EXPIREAT",
    "PEXPIREAT",
    "TTL",
    "PTTL",
    "PERSIST",
    "TYPE",
    "KEYS",
    "SCAN",
    "DBSIZE",
    "FLUSHALL",
    "FLUSHDB",
    "RANDOMKEY",
];

#[test]
fn connection_commands_and_error_texts() {
    let mut f = Fixture::start();
    let c = f.via(1);
    assert_eq!(run::<Value, _>(c, &["PING"]), Value::SimpleString("PONG".into()));
    assert_eq!(run::<String, _>(c, &["PING", "hi there"]), "hi there");
    assert_eq!(run::<String, _>(c, &["ECHO", "hello\r\nworld"]), "hello\r\nworld");
    ok(c, &["SELECT", "0"]);
    assert!(fails(c, &["SELECT", "1"]).starts_with("ERR "), "SELECT 1 must be refused");
    let (secs, micros): (String, String) = run(c, &["TIME"]);
    let secs: u64 = secs.parse().expect("TIME seconds");
    assert!(secs.abs_diff(now_s()) <= 5, "TIME {secs} against the test's clock {}", now_s());
    assert!(micros.parse::<u32>().expect("TIME microseconds") < 1_000_000);
    assert_eq!(fails(c, &["TIME", "now"]), "ERR wrong number of arguments for 'time' command");
    // CONFIG GET: the settings PPDB has an answer for, matched as globs; unknown ones match
    // nothing; CONFIG SET changes only the settings a running node can change.
    let durability: Vec<String> = run(c, &["CONFIG", "GET", "save", "APPENDONLY", "appendfsync"]);
    assert_eq!(durability, ["appendonly", "yes", "appendfsync", "always", "save", ""]);
    let memory: Vec<String> = run(c, &["CONFIG", "GET", "maxmemory*"]);
    assert_eq!(memory, ["maxmemory", "0", "maxmemory-policy", "noeviction"]);
    let unknown: Vec<String> = run(c, &["CONFIG", "GET", "no-such-setting"]);
    assert!(unknown.is_empty(), "{unknown:?}");
    assert_eq!(
        fails(c, &["CONFIG", "SET", "appendonly", "no"]),
        "ERR CONFIG SET failed (possibly related to argument 'appendonly') - can't set immutable config"
    );
    assert_eq!(
        fails(c, &["CONFIG", "SET", "no-such-setting", "1"]),
        "ERR Unknown option or number of arguments for CONFIG SET - 'no-such-setting'"
    );
    assert_eq!(fails(c, &["CONFIG", "REWRITE"]), "ERR unknown subcommand 'REWRITE'. Try CONFIG HELP.");

    let count: i64 = run(c, &["COMMAND", "COUNT"]);
    assert!(count >= ISSUE_COMMANDS.len() as i64, "COMMAND COUNT = {count}");
    let mut info = vec!["COMMAND", "INFO"];
    info.extend(ISSUE_COMMANDS);
    let infos: Vec<Value> = run(c, &info);
    assert_eq!(infos.len(), ISSUE_COMMANDS.len(), "COMMAND INFO answers once per name: {infos:?}");
    for (name, doc) in ISSUE_COMMANDS.iter().zip(&infos) {
        assert!(matches!(doc, Value::Array(fields) if !fields.is_empty()), "COMMAND INFO {name}: {doc:?}");
    }

    ok(c, &["SET", "info-key", "1"]);
    let info: String = run(c, &["INFO"]);
    for needle in
        ["# Server", "redis_version:", "# Clients", "connected_clients:", "# Keyspace", "db0:keys=1"]
    {
        assert!(info.contains(needle), "INFO lacks {needle:?}:\n{info}");
    }
    let keyspace: String = run(c, &["INFO", "keyspace"]);
    assert!(keyspace.contains("# Keyspace") && !keyspace.contains("# Server"), "INFO keyspace:\n{keyspace}");
    ok(c, &["SET", "info-expiring", "1", "EX", "100"]);
    let keyspace: String = run(c, &["INFO", "keyspace"]);
    assert!(keyspace.contains("db0:keys=2,expires=1,"), "INFO keyspace counts keys with a TTL:\n{keyspace}");

    // Redis 7's error texts; the connection stays usable after each.
    assert_eq!(
        fails(c, &["FOOBAR", "a", "b"]),
        "ERR unknown command 'FOOBAR', with args beginning with: 'a' 'b' "
    );
    assert_eq!(fails(c, &["GET"]), "ERR wrong number of arguments for 'get' command");
    assert_eq!(fails(c, &["SET", "k"]), "ERR wrong number of arguments for 'set' command");
    assert_eq!(fails(c, &["SET", "k", "v", "NX", "XX"]), "ERR syntax error");
    assert_eq!(fails(c, &["SET", "k", "v", "EX", "10", "PX", "10"]), "ERR syntax error");
    assert_eq!(fails(c, &["SET", "k", "v", "EX", "0"]), "ERR invalid expire time in 'set' command");
    assert_eq!(fails(c, &["SET", "k", "v", "EX", "ten"]), "ERR value is not an integer or out of range");
    assert_eq!(
        fails(c, &["AUTH", "secret"]),
        "ERR AUTH <password> called without any password configured for the default user. \
         Are you sure your configuration is correct?"
    );
    assert_eq!(run::<Value, _>(c, &["PING"]), Value::SimpleString("PONG".into()));

    // HELLO switches the protocol of this connection only.
    let c2 = f.via(2);
    match run::<Value, _>(c2, &["HELLO", "3"]) {
        Value::Map(pairs) => {
            let proto = pairs.iter().find(|(k, _)| *k == Value::BulkString(b"proto".to_vec()));
            assert_eq!(proto.map(|(_, v)| v), Some(&Value::Int(3)), "HELLO 3: {pairs:?}");
        }
        other => panic!("HELLO 3 must answer a RESP3 map, got {other:?}"),
    }
    assert_eq!(run::<Value, _>(c2, &["GET", "no-such-key"]), Value::Nil);
    match run::<Value, _>(c2, &["HELLO", "2"]) {
        Value::Array(items) => {
            let at =
                items.iter().position(|v| *v == Value::BulkString(b"proto".to_vec())).expect("proto field");
            assert_eq!(items[at + 1], Value::Int(2));
        }
        other => panic!("HELLO 2 must answer a flat array, got {other:?}"),
    }
    assert!(fails(c2, &["HELLO", "4"]).starts_with("NOPROTO"), "HELLO 4 must be NOPROTO");
    assert_eq!(run::<String, _>(f.via(3), &["GET", "info-key"]), "1");
}

#[test]
fn set_and_its_options_and_the_get_set_family() {
    let mut f = Fixture::start();
    // SET through node 1, observe through nodes 2 and 3.
    ok(f.via(1), &["SET", "s", "v1"]);
    assert_eq!(get(f.via(2), "s").as_deref(), Some("v1"));
    assert_eq!(run::<i64, _>(f.via(3), &["TTL", "s"]), -1);

    ok(f.via(1), &["SET", "s", "v2", "EX", "100"]);
    let ttl: i64 = run(f.via(2), &["TTL", "s"]);
    assert!((90..=100).contains(&ttl), "EX 100 → TTL {ttl}");
    ok(f.via(1), &["SET", "s", "v3", "PX", "100000"]);
    let pttl: i64 = run(f.via(3), &["PTTL", "s"]);
    assert!((90_000..=100_000).contains(&pttl), "PX 100000 → PTTL {pttl}");
    let at = (now_s() + 200).to_string();
    ok(f.via(1), &["SET", "s", "v4", "EXAT", &at]);
    let ttl: i64 = run(f.via(2), &["TTL", "s"]);
    assert!((190..=200).contains(&ttl), "EXAT now+200 → TTL {ttl}");
    let at_ms = ((now_s() + 300) * 1000).to_string();
    ok(f.via(1), &["SET", "s", "v5", "PXAT", &at_ms]);
    let ttl: i64 = run(f.via(3), &["TTL", "s"]);
    assert!((290..=300).contains(&ttl), "PXAT now+300s → TTL {ttl}");
    ok(f.via(1), &["SET", "s", "v6", "KEEPTTL"]);
    let ttl: i64 = run(f.via(2), &["TTL", "s"]);
    assert!((290..=300).contains(&ttl), "KEEPTTL must keep the TTL, got {ttl}");
    assert_eq!(get(f.via(3), "s").as_deref(), Some("v6"));
    ok(f.via(1), &["SET", "s", "v7"]);
    assert_eq!(run::<i64, _>(f.via(2), &["TTL", "s"]), -1, "a plain SET clears the TTL");

    // NX / XX / GET.
    assert_eq!(run::<Value, _>(f.via(1), &["SET", "s", "x", "NX"]), Value::Nil);
    assert_eq!(run::<Value, _>(f.via(2), &["SET", "missing", "x", "XX"]), Value::Nil);
    assert_eq!(get(f.via(3), "missing"), None);
    ok(f.via(2), &["SET", "fresh", "x", "NX"]);
    ok(f.via(3), &["SET", "fresh", "y", "XX"]);
    assert_eq!(get(f.via(1), "fresh").as_deref(), Some("y"));
    assert_eq!(run::<Option<String>, _>(f.via(1), &["SET", "s", "v8", "GET"]).as_deref(), Some("v7"));
    assert_eq!(run::<Option<String>, _>(f.via(2), &["SET", "new-get", "a", "GET"]), None);
    assert_eq!(get(f.via(3), "new-get").as_deref(), Some("a"));
    assert_eq!(run::<Option<String>, _>(f.via(1), &["SET", "s", "zz", "NX", "GET"]).as_deref(), Some("v8"));
    assert_eq!(get(f.via(2), "s").as_deref(), Some("v8"), "NX GET on an existing key must not write");

    // SETNX SETEX PSETEX GETSET GETDEL GETEX.
    assert_eq!(run::<i64, _>(f.via(1), &["SETNX", "nx", "1"]), 1);
    assert_eq!(run::<i64, _>(f.via(2), &["SETNX", "nx", "2"]), 0);
    assert_eq!(get(f.via(3), "nx").as_deref(), Some("1"));
    ok(f.via(1), &["SETEX", "ex", "100", "e"]);
    let ttl: i64 = run(f.via(2), &["TTL", "ex"]);
    assert!((90..=100).contains(&ttl), "SETEX 100 → TTL {ttl}");
    assert_eq!(fails(f.via(3), &["SETEX", "ex", "0", "e"]), "ERR invalid expire time in 'setex' command");
    assert_eq!(fails(f.via(3), &["SETEX", "ex", "-5", "e"]), "ERR invalid expire time in 'setex' command");
    ok(f.via(1), &["PSETEX", "pex", "100000", "p"]);
    let pttl: i64 = run(f.via(2), &["PTTL", "pex"]);
    assert!((90_000..=100_000).contains(&pttl), "PSETEX 100000 → PTTL {pttl}");
    assert_eq!(fails(f.via(3), &["PSETEX", "pex", "0", "p"]), "ERR invalid expire time in 'psetex' command");
    assert_eq!(run::<Option<String>, _>(f.via(1), &["GETSET", "gs", "a"]), None);
    assert_eq!(run::<Option<String>, _>(f.via(2), &["GETSET", "gs", "b"]).as_deref(), Some("a"));
    assert_eq!(get(f.via(3), "gs").as_deref(), Some("b"));
    assert_eq!(run::<Option<String>, _>(f.via(1), &["GETDEL", "gs"]).as_deref(), Some("b"));
    assert_eq!(run::<Option<String>, _>(f.via(2), &["GETDEL", "gs"]), None);
    assert_eq!(run::<i64, _>(f.via(3), &["EXISTS", "gs"]), 0);
    assert_eq!(run::<Option<String>, _>(f.via(1), &["GETEX", "nx"]).as_deref(), Some("1"));
    assert_eq!(run::<Option<String>, _>(f.via(1), &["GETEX", "nx", "EX", "100"]).as_deref(), Some("1"));
    let ttl: i64 = run(f.via(2), &["TTL", "nx"]);
    assert!((90..=100).contains(&ttl), "GETEX EX 100 → TTL {ttl}");
    assert_eq!(run::<Option<String>, _>(f.via(3), &["GETEX", "nx", "PERSIST"]).as_deref(), Some("1"));
    assert_eq!(run::<i64, _>(f.via(1), &["TTL", "nx"]), -1);
    assert_eq!(run::<Option<String>, _>(f.via(2), &["GETEX", "nope", "EX", "10"]), None);
    assert_eq!(fails(f.via(3), &["GETEX", "nx", "EX", "0"]), "ERR invalid expire time in 'getex' command");
}

#[test]
fn multi_key_commands_across_shards() {
    let mut f = Fixture::start();
    let keys: Vec<String> = (0..24).map(|i| format!("multi:{i}")).collect();
    let shards: BTreeSet<u64> = keys.iter().map(|k| shard_of(k.as_bytes(), 8)).collect();
    assert!(shards.len() >= 4, "the keys must span several shards: {shards:?}");
    let mut mset = vec!["MSET".to_string()];
    for (i, key) in keys.iter().enumerate() {
        mset.push(key.clone());
        mset.push(format!("value{i}"));
    }
    assert_eq!(run::<Value, _>(f.via(1), &mset), Value::Okay);
    let mut mget = vec!["MGET".to_string()];
    mget.extend(keys.iter().cloned());
    mget.insert(5, "multi:absent".into());
    let values: Vec<Option<String>> = run(f.via(2), &mget);
    let mut expected: Vec<Option<String>> = (0..24).map(|i| Some(format!("value{i}"))).collect();
    expected.insert(4, None);
    assert_eq!(values, expected, "MGET keeps the request order across shards");

    // MSETNX: all-or-nothing, within one shard and across shards.
    let same = keys_on_shard("nx", 3, 3);
    assert_eq!(run::<i64, _>(f.via(2), &["MSETNX", &same[0], "a", &same[1], "b"]), 1);
    assert_eq!(run::<i64, _>(f.via(3), &["MSETNX", &same[1], "x", &same[2], "c"]), 0);
    let got: Vec<Option<String>> = run(f.via(1), &["MGET", &same[0], &same[1], &same[2]]);
    assert_eq!(got, vec![Some("a".into()), Some("b".into()), None]);
    let other = keys_on_shard("nx", 5, 1);
    assert_eq!(run::<i64, _>(f.via(3), &["MSETNX", &other[0], "d", &same[0], "x"]), 0);
    let got: Vec<Option<String>> = run(f.via(1), &["MGET", &same[0], &other[0]]);
    assert_eq!(got, vec![Some("a".into()), None], "an MSETNX that finds a key writes nothing");
    assert_eq!(run::<i64, _>(f.via(3), &["MSETNX", &same[2], "c", &other[0], "d"]), 1);
    let got: Vec<Option<String>> = run(f.via(2), &["MGET", &same[2], &other[0]]);
    assert_eq!(got, vec![Some("c".into()), Some("d".into())]);
    run::<i64, _>(f.via(2), &["DEL", &same[2], &other[0]]);

    // EXISTS counts duplicates; DEL and UNLINK count what they removed, across shards.
    assert_eq!(run::<i64, _>(f.via(1), &["EXISTS", "multi:0", "multi:0", "multi:1", "multi:absent"]), 3);
    assert_eq!(run::<i64, _>(f.via(2), &["DEL", "multi:0", "multi:1", "multi:2", "multi:absent"]), 3);
    assert_eq!(run::<i64, _>(f.via(3), &["EXISTS", "multi:0", "multi:1", "multi:2", "multi:3"]), 1);
    let mut unlink = vec!["UNLINK".to_string()];
    unlink.extend(keys[3..].iter().cloned());
    assert_eq!(run::<i64, _>(f.via(3), &unlink), 21);
    assert_eq!(run::<i64, _>(f.via(1), &["DEL", "multi:3"]), 0);
    let mut exists = vec!["EXISTS".to_string()];
    exists.extend(keys.iter().cloned());
    assert_eq!(run::<i64, _>(f.via(2), &exists), 0);
}

#[test]
fn counters_and_string_ranges() {
    let mut f = Fixture::start();
    assert_eq!(run::<i64, _>(f.via(1), &["INCR", "n"]), 1);
    assert_eq!(run::<i64, _>(f.via(2), &["INCRBY", "n", "10"]), 11);
    assert_eq!(run::<i64, _>(f.via(3), &["DECR", "n"]), 10);
    assert_eq!(run::<i64, _>(f.via(1), &["DECRBY", "n", "13"]), -3);
    assert_eq!(run::<i64, _>(f.via(2), &["DECR", "fresh-counter"]), -1);
    assert_eq!(get(f.via(3), "n").as_deref(), Some("-3"));
    assert_eq!(run::<String, _>(f.via(1), &["INCRBYFLOAT", "n", "1.5"]), "-1.5");
    ok(f.via(2), &["SET", "fl", "10.50"]);
    assert_eq!(run::<String, _>(f.via(3), &["INCRBYFLOAT", "fl", "0.1"]), "10.6");
    ok(f.via(2), &["SET", "fl2", "5.0e3"]);
    assert_eq!(run::<String, _>(f.via(1), &["INCRBYFLOAT", "fl2", "2.0e2"]), "5200");

    ok(f.via(1), &["SET", "max", "9223372036854775807"]);
    assert_eq!(fails(f.via(2), &["INCR", "max"]), "ERR increment or decrement would overflow");
    assert_eq!(fails(f.via(3), &["INCRBY", "max", "1"]), "ERR increment or decrement would overflow");
    assert_eq!(get(f.via(1), "max").as_deref(), Some("9223372036854775807"), "a refused INCR writes nothing");
    ok(f.via(1), &["SET", "min", "-9223372036854775808"]);
    assert_eq!(fails(f.via(2), &["DECR", "min"]), "ERR increment or decrement would overflow");
    ok(f.via(1), &["SET", "word", "abc"]);
    assert_eq!(fails(f.via(2), &["INCR", "word"]), "ERR value is not an integer or out of range");
    assert_eq!(fails(f.via(3), &["INCRBY", "n", "x"]), "ERR value is not an integer or out of range");
    assert_eq!(fails(f.via(1), &["INCRBYFLOAT", "word", "1"]), "ERR value is not a valid float");
    ok(f.via(1), &["SET", "ttl-counter", "5", "EX", "100"]);
    assert_eq!(run::<i64, _>(f.via(2), &["INCR", "ttl-counter"]), 6);
    assert!(run::<i64, _>(f.via(3), &["TTL", "ttl-counter"]) > 0, "INCR keeps the TTL");

    assert_eq!(run::<i64, _>(f.via(1), &["APPEND", "s", "Hello"]), 5);
    assert_eq!(run::<i64, _>(f.via(2), &["APPEND", "s", " World"]), 11);
    assert_eq!(run::<i64, _>(f.via(3), &["STRLEN", "s"]), 11);
    assert_eq!(run::<i64, _>(f.via(3), &["STRLEN", "nothing"]), 0);
    assert_eq!(run::<String, _>(f.via(1), &["GETRANGE", "s", "0", "4"]), "Hello");
    assert_eq!(run::<String, _>(f.via(2), &["GETRANGE", "s", "-5", "-1"]), "World");
    assert_eq!(run::<String, _>(f.via(3), &["GETRANGE", "s", "0", "-1"]), "Hello World");
    assert_eq!(run::<String, _>(f.via(1), &["GETRANGE", "s", "5", "3"]), "");
    assert_eq!(run::<String, _>(f.via(1), &["GETRANGE", "s", "8", "100"]), "rld");
    assert_eq!(run::<String, _>(f.via(2), &["GETRANGE", "nothing", "0", "-1"]), "");
    assert_eq!(run::<i64, _>(f.via(3), &["SETRANGE", "s", "6", "Redis"]), 11);
    assert_eq!(get(f.via(1), "s").as_deref(), Some("Hello Redis"));
    assert_eq!(run::<i64, _>(f.via(2), &["SETRANGE", "padded", "5", "x"]), 6);
    assert_eq!(run::<Vec<u8>, _>(f.via(3), &["GET", "padded"]), b"\0\0\0\0\0x".to_vec());
    assert_eq!(fails(f.via(1), &["SETRANGE", "s", "-1", "x"]), "ERR offset is out of range");
}

/// RENAME, RENAMENX and COPY within a shard, through different nodes; across shards refused.
#[test]
fn rename_and_copy() {
    let mut f = Fixture::start();
    let mut keys = keys_on_shard("mv", 3, 4).into_iter();
    let (a, b, c, d) =
        (keys.next().unwrap(), keys.next().unwrap(), keys.next().unwrap(), keys.next().unwrap());
    ok(f.via(1), &["SET", &a, "value", "EX", "100"]);
    ok(f.via(2), &["RENAME", &a, &b]);
    assert_eq!((get(f.via(3), &a), get(f.via(3), &b)), (None, Some("value".to_string())));
    let ttl: i64 = run(f.via(1), &["TTL", &b]);
    assert!((1..=100).contains(&ttl), "the expiry moves with the value: {ttl}");
    assert_eq!(run::<i64, _>(f.via(3), &["RENAMENX", &b, &c]), 1);
    ok(f.via(1), &["SET", &d, "other"]);
    assert_eq!(run::<i64, _>(f.via(2), &["RENAMENX", &c, &d]), 0);
    assert_eq!(fails(f.via(2), &["RENAME", &a, &d]), "ERR no such key");
    assert_eq!(run::<i64, _>(f.via(1), &["COPY", &c, &d]), 0, "an existing target needs REPLACE");
    assert_eq!(run::<i64, _>(f.via(3), &["COPY", &c, &d, "DB", "0", "REPLACE"]), 1);
    assert_eq!(get(f.via(2), &d).as_deref(), Some("value"));
    assert_eq!(fails(f.via(1), &["COPY", &c, &c]), "ERR source and destination objects are the same");
    assert_eq!(fails(f.via(1), &["COPY", &c, &d, "DB", "1"]), "ERR DB index is out of range");
    assert_eq!(fails(f.via(1), &["RENAME", &c]), "ERR wrong number of arguments for 'rename' command");
    // Across shards, through a cross-shard transaction (tests/it/cross_shard_moves.rs has more).
    let elsewhere = keys_on_shard("mv", 6, 1).remove(0);
    assert_eq!(run::<i64, _>(f.via(2), &["COPY", &c, &elsewhere]), 1);
    ok(f.via(2), &["RENAME", &c, &elsewhere]);
    assert_eq!(get(f.via(3), &c), None, "the source is gone");
    assert_eq!(get(f.via(1), &elsewhere).as_deref(), Some("value"));
}

#[test]
fn expiry_commands() {
    let mut f = Fixture::start();
    ok(f.via(1), &["SET", "e", "v"]);
    assert_eq!(run::<i64, _>(f.via(2), &["TTL", "e"]), -1);
    assert_eq!(run::<i64, _>(f.via(3), &["PTTL", "e"]), -1);
    assert_eq!(run::<i64, _>(f.via(2), &["TTL", "absent"]), -2);
    assert_eq!(run::<i64, _>(f.via(3), &["PTTL", "absent"]), -2);
    assert_eq!(run::<i64, _>(f.via(1), &["EXPIRE", "e", "100"]), 1);
    let ttl: i64 = run(f.via(2), &["TTL", "e"]);
    assert!((90..=100).contains(&ttl), "EXPIRE 100 → TTL {ttl}");
    assert_eq!(run::<i64, _>(f.via(3), &["EXPIRE", "absent", "100"]), 0);
    assert_eq!(run::<i64, _>(f.via(1), &["PEXPIRE", "e", "200000"]), 1);
    let pttl: i64 = run(f.via(2), &["PTTL", "e"]);
    assert!((190_000..=200_000).contains(&pttl), "PEXPIRE 200000 → PTTL {pttl}");
    assert_eq!(run::<i64, _>(f.via(3), &["EXPIREAT", "e", &(now_s() + 300).to_string()]), 1);
    let ttl: i64 = run(f.via(1), &["TTL", "e"]);
    assert!((290..=300).contains(&ttl), "EXPIREAT now+300 → TTL {ttl}");
    let at_ms = (now_s() + 400) * 1000;
    assert_eq!(run::<i64, _>(f.via(2), &["PEXPIREAT", "e", &at_ms.to_string()]), 1);
    let ttl: i64 = run(f.via(3), &["TTL", "e"]);
    assert!((390..=400).contains(&ttl), "PEXPIREAT now+400s → TTL {ttl}");
    // The absolute expiry, through any node: seconds and milliseconds since the epoch.
    assert_eq!(run::<i64, _>(f.via(3), &["PEXPIRETIME", "e"]), at_ms as i64);
    assert_eq!(run::<i64, _>(f.via(1), &["EXPIRETIME", "e"]), (at_ms / 1000) as i64);
    assert_eq!(run::<i64, _>(f.via(2), &["EXPIRETIME", "absent"]), -2);
    assert_eq!(run::<i64, _>(f.via(1), &["PERSIST", "e"]), 1);
    assert_eq!(run::<i64, _>(f.via(3), &["PEXPIRETIME", "e"]), -1);
    assert_eq!(run::<i64, _>(f.via(2), &["PERSIST", "e"]), 0);
    // TOUCH counts the keys that exist, as EXISTS does (there is no access time to update).
    assert_eq!(run::<i64, _>(f.via(3), &["TOUCH", "e", "absent", "e"]), 2);
    assert_eq!(run::<i64, _>(f.via(3), &["TTL", "e"]), -1);
    assert_eq!(fails(f.via(1), &["EXPIRE", "e", "soon"]), "ERR value is not an integer or out of range");

    // A negative or past expiry deletes the key (Redis 7).
    assert_eq!(run::<i64, _>(f.via(1), &["EXPIRE", "e", "-1"]), 1);
    assert_eq!(get(f.via(2), "e"), None);
    ok(f.via(1), &["SET", "past", "v"]);
    assert_eq!(run::<i64, _>(f.via(3), &["EXPIREAT", "past", "1"]), 1);
    assert_eq!(run::<i64, _>(f.via(1), &["EXISTS", "past"]), 0);

    // Keys really expire, everywhere; others stay.
    ok(f.via(1), &["SET", "short", "v", "PX", "300"]);
    ok(f.via(1), &["SET", "long", "v", "EX", "3600"]);
    let gone = wait_for(Duration::from_secs(10), || {
        (1..=3).all(|id| get(f.via(id), "short").is_none()).then_some(())
    });
    assert!(gone.is_some(), "a key with PX 300 is still readable after 10 s");
    assert_eq!(run::<i64, _>(f.via(2), &["EXISTS", "short"]), 0);
    assert_eq!(run::<i64, _>(f.via(3), &["TTL", "short"]), -2);
    assert_eq!(get(f.via(2), "long").as_deref(), Some("v"));
}

#[test]
fn keyspace_commands_and_full_scan() {
    let mut f = Fixture::start();
    let mut all = BTreeSet::new();
    let mut mset = vec!["MSET".to_string()];
    for i in 0..300 {
        let key = format!("scan:{i}");
        mset.push(key.clone());
        mset.push(i.to_string());
        all.insert(key);
    }
    assert_eq!(run::<Value, _>(f.via(1), &mset), Value::Okay);
    for i in 0..5 {
        ok(f.via(2), &["SET", &format!("other:{i}"), "x"]);
        all.insert(format!("other:{i}"));
    }
    assert_eq!(run::<String, _>(f.via(3), &["TYPE", "scan:1"]), "string");
    assert_eq!(run::<String, _>(f.via(3), &["TYPE", "absent"]), "none");
    assert_eq!(run::<i64, _>(f.via(1), &["DBSIZE"]), 305);

    let keys: Vec<String> = run(f.via(2), &["KEYS", "*"]);
    assert_eq!(keys.len(), 305, "KEYS * returns each key once");
    assert_eq!(keys.into_iter().collect::<BTreeSet<_>>(), all);
    let others: BTreeSet<String> = run(f.via(3), &["KEYS", "other:*"]);
    assert_eq!(others, (0..5).map(|i| format!("other:{i}")).collect());
    let one: Vec<String> = run(f.via(3), &["KEYS", "scan:1?"]);
    assert_eq!(one.len(), 10);

    // A full SCAN returns every key exactly once, whatever the page size and node.
    for (node, count) in [(1, "7"), (2, "50"), (3, "1000")] {
        let mut seen = Vec::new();
        let mut cursor = "0".to_string();
        let mut calls = 0;
        loop {
            let (next, page): (String, Vec<String>) = run(f.via(node), &["SCAN", &cursor, "COUNT", count]);
            seen.extend(page);
            calls += 1;
            assert!(calls < 1000, "SCAN does not terminate");
            if next == "0" {
                break;
            }
            cursor = next;
        }
        let unique: BTreeSet<String> = seen.iter().cloned().collect();
        assert_eq!(unique.len(), seen.len(), "SCAN COUNT {count} returned a key twice");
        assert_eq!(unique, all, "SCAN COUNT {count} missed keys");
    }
    let mut matched = BTreeSet::new();
    let mut cursor = "0".to_string();
    loop {
        let (next, page): (String, Vec<String>) =
            run(f.via(1), &["SCAN", &cursor, "MATCH", "other:*", "COUNT", "20"]);
        matched.extend(page);
        if next == "0" {
            break;
        }
        cursor = next;
    }
    assert_eq!(matched.len(), 5);
    assert_eq!(fails(f.via(2), &["SCAN", "notanumber"]), "ERR invalid cursor");

    let random: String = run(f.via(1), &["RANDOMKEY"]);
    assert!(all.contains(&random), "RANDOMKEY {random:?}");
    ok(f.via(2), &["FLUSHDB"]);
    assert_eq!(run::<i64, _>(f.via(3), &["DBSIZE"]), 0);
    assert_eq!(run::<Option<String>, _>(f.via(1), &["RANDOMKEY"]), None);
    assert_eq!(run::<Vec<String>, _>(f.via(2), &["KEYS", "*"]), Vec::<String>::new());
    ok(f.via(3), &["MSET", "a", "1", "b", "2", "c", "3"]);
    assert_eq!(run::<i64, _>(f.via(1), &["DBSIZE"]), 3);
    ok(f.via(1), &["FLUSHALL"]);
    assert_eq!(run::<i64, _>(f.via(2), &["DBSIZE"]), 0);
    assert_eq!(get(f.via(3), "a"), None);
}

#[test]
fn binary_data_large_values_and_pipelining() {
    let mut f = Fixture::start();
    let key: &[u8] = b"bin\0key\r\n*1\r\n";
    let value: &[u8] = b"\0\r\n$-1\r\n\xff\xfe end\0";
    let reply: Value = redis::cmd("SET").arg(key).arg(value).query(f.via(1)).unwrap();
    assert_eq!(reply, Value::Okay);
    let back: Vec<u8> = redis::cmd("GET").arg(key).query(f.via(2)).unwrap();
    assert_eq!(back, value);
    let len: i64 = redis::cmd("STRLEN").arg(key).query(f.via(3)).unwrap();
    assert_eq!(len, value.len() as i64);
    let keys: Vec<Vec<u8>> = redis::cmd("KEYS").arg("bin*").query(f.via(3)).unwrap();
    assert_eq!(keys, vec![key.to_vec()]);

    let big: Vec<u8> = (0..1024 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let reply: Value = redis::cmd("SET").arg("big").arg(&big).query(f.via(1)).unwrap();
    assert_eq!(reply, Value::Okay);
    let back: Vec<u8> = redis::cmd("GET").arg("big").query(f.via(3)).unwrap();
    assert!(back == big, "the 1 MiB value came back different ({} bytes)", back.len());
    let len: i64 = redis::cmd("STRLEN").arg("big").query(f.via(2)).unwrap();
    assert_eq!(len, 1024 * 1024);

    // 1000 commands in one request, sent to the leader of the counter's shard: writes on every
    // shard, then reads; replies come back in request order.
    let via = f.cluster.leader_of_key(b"p:counter") as usize;
    let mut pipe = redis::pipe();
    for i in 0..500 {
        pipe.cmd("SET").arg(format!("p:{i}")).arg(i);
    }
    for _ in 0..250 {
        pipe.cmd("INCR").arg("p:counter");
    }
    for i in 0..250 {
        pipe.cmd("GET").arg(format!("p:{}", i * 2));
    }
    let replies: Vec<Value> = pipe.query(f.via(via)).unwrap();
    assert_eq!(replies.len(), 1000);
    for (i, reply) in replies.iter().enumerate() {
        let expected = match i {
            0..=499 => Value::Okay,
            500..=749 => Value::Int(i as i64 - 499),
            _ => Value::BulkString(((i - 750) * 2).to_string().into_bytes()),
        };
        assert_eq!(*reply, expected, "pipelined reply {i} through node {via}");
    }
    let mut pipe = redis::pipe();
    for i in (0..500).rev() {
        pipe.cmd("GET").arg(format!("p:{i}"));
    }
    let values: Vec<String> = pipe.query(f.via(via % 3 + 1)).unwrap();
    assert_eq!(values, (0..500).rev().map(|i: i32| i.to_string()).collect::<Vec<_>>());
}

/// Pipelined writes to one key through a node that does not lead its shard must apply in the
/// order sent, as Redis runs a connection's commands in order.
#[test]
fn pipelined_writes_through_a_follower_keep_their_order() {
    let mut f = Fixture::start();
    for attempt in 0..3 {
        let key = format!("ordered:{attempt}");
        let leader = f.cluster.leader_of_key(key.as_bytes()) as usize;
        let via = leader % 3 + 1;
        let mut pipe = redis::pipe();
        for i in 0..200 {
            pipe.cmd("SET").arg(&key).arg(i).ignore();
        }
        let () = pipe.query(f.via(via)).unwrap();
        assert_eq!(
            get(f.via(via), &key).as_deref(),
            Some("199"),
            "SET {key} 0..199 pipelined through node {via} (leader {leader})"
        );

        let counter = format!("{key}:counter");
        let leader = f.cluster.leader_of_key(counter.as_bytes()) as usize;
        let via = leader % 3 + 1;
        let mut pipe = redis::pipe();
        for _ in 0..200 {
            pipe.cmd("INCR").arg(&counter);
        }
        let replies: Vec<i64> = pipe.query(f.via(via)).unwrap();
        assert_eq!(
            replies,
            (1..=200).collect::<Vec<i64>>(),
            "INCR {counter} ×200 pipelined through node {via} (leader {leader})"
        );
    }
}

/// Everything the server sends until it closes the connection; panics if it stays open.
fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut out = Vec::new();
    match stream.read_to_end(&mut out) {
        Ok(_) => out,
        Err(e) => {
            panic!("the server did not close the connection: {e}; got {:?}", String::from_utf8_lossy(&out))
        }
    }
}

/// Reads exactly `expected.len()` bytes and compares.
fn expect_reply(stream: &mut TcpStream, expected: &[u8]) {
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = vec![0; expected.len()];
    stream.read_exact(&mut buf).unwrap();
    assert_eq!(String::from_utf8_lossy(&buf), String::from_utf8_lossy(expected));
}

#[test]
fn bad_input_is_refused_without_disturbing_other_clients() {
    let mut f = Fixture::start();
    let addr = f.cluster.node(1).client_addr;
    ok(f.via(1), &["SET", "steady", "1"]);

    // An idle connection, and one half-closed in the middle of a request.
    let mut idle = TcpStream::connect(addr).unwrap();
    let mut half = TcpStream::connect(addr).unwrap();
    half.write_all(b"*2\r\n$3\r\nGET\r\n$6\r\nst").unwrap();
    half.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_until_closed(&mut half), b"", "a half-closed partial request gets no reply");

    // A command followed by a half-close is answered, then the connection is closed.
    let mut pinger = TcpStream::connect(addr).unwrap();
    pinger.write_all(b"*1\r\n$4\r\nPING\r\n").unwrap();
    pinger.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_until_closed(&mut pinger), b"+PONG\r\n");

    let cases: [(&[u8], &str); 4] = [
        (b"*1\r\nfoo\r\n", "-ERR Protocol error: expected '$', got 'f'\r\n"),
        (b"*1\r\n$600000000\r\n", "-ERR Protocol error: invalid bulk length\r\n"),
        (b"*1\r\n$-5\r\n", "-ERR Protocol error: invalid bulk length\r\n"),
        (b"*2000000\r\n", "-ERR Protocol error: invalid multibulk length\r\n"),
    ];
    for (input, reply) in cases {
        let mut bad = TcpStream::connect(addr).unwrap();
        bad.write_all(input).unwrap();
        let got = read_until_closed(&mut bad);
        assert_eq!(String::from_utf8_lossy(&got), reply, "input {:?}", String::from_utf8_lossy(input));
        // Another client keeps working.
        assert!(run::<i64, _>(f.via(1), &["INCR", "steady"]) > 1);
    }

    // A request line after valid commands in the same packet: the valid ones are answered first.
    let mut mixed = TcpStream::connect(addr).unwrap();
    mixed.write_all(b"*2\r\n$3\r\nGET\r\n$6\r\nsteady\r\n*1\r\nxyz\r\n").unwrap();
    let got = read_until_closed(&mut mixed);
    assert_eq!(String::from_utf8_lossy(&got), "$1\r\n5\r\n-ERR Protocol error: expected '$', got 'x'\r\n");

    // QUIT is answered, then the connection is closed.
    let mut quitter = TcpStream::connect(addr).unwrap();
    quitter.write_all(b"*1\r\n$4\r\nQUIT\r\n*1\r\n$4\r\nPING\r\n").unwrap();
    assert_eq!(read_until_closed(&mut quitter), b"+OK\r\n");

    // The idle connection still works (inline command), and so does every node.
    idle.write_all(b"PING\r\n").unwrap();
    expect_reply(&mut idle, b"+PONG\r\n");
    for id in 1..=3 {
        assert_eq!(get(f.via(id), "steady").as_deref(), Some("5"));
    }
}

/// MULTI/EXEC on one shard, through the shard's leader and through a node that forwards it:
/// `redis::pipe().atomic()` sends MULTI, the commands and EXEC; reads inside see the
/// transaction's earlier writes; queueing errors, DISCARD, nesting and WATCH answer as Redis 7.
#[test]
fn transactions_on_one_shard_through_any_node() {
    let mut f = Fixture::start();
    let keys = keys_on_shard("tx", 3, 3);
    let (k0, k1, k2) = (keys[0].as_str(), keys[1].as_str(), keys[2].as_str());
    let leader = f.cluster.leader_of_key(k0.as_bytes()) as usize;
    for (round, via) in [leader, leader % 3 + 1].into_iter().enumerate() {
        let (incremented, value, values, pong, exists): (i64, String, Vec<String>, String, i64) =
            redis::pipe()
                .atomic()
                .cmd("SET")
                .arg(k0)
                .arg(10)
                .ignore()
                .cmd("INCRBY")
                .arg(k0)
                .arg(5)
                .cmd("GET")
                .arg(k0)
                .cmd("MSET")
                .arg(k1)
                .arg(format!("a{round}"))
                .arg(k2)
                .arg("b")
                .ignore()
                .cmd("MGET")
                .arg(k1)
                .arg(k2)
                .cmd("PING")
                .cmd("EXISTS")
                .arg(&keys)
                .query(f.via(via))
                .unwrap_or_else(|e| {
                    panic!("MULTI/EXEC through node {via} (leader {leader}): {}", error_text(&e))
                });
        assert_eq!((incremented, value.as_str()), (15, "15"), "through node {via}");
        assert_eq!(values, [format!("a{round}"), "b".to_owned()]);
        assert_eq!((pong.as_str(), exists), ("PONG", 3));
        for id in 1..=3 {
            assert_eq!(get(f.via(id), k1), Some(format!("a{round}")), "node {id} sees the transaction");
        }
    }

    // A runtime error is that command's element only; the other commands still apply.
    let via = leader % 3 + 1;
    let mut raw = TcpStream::connect(f.cluster.node(via as u64).client_addr).unwrap();
    raw.write_all(
        format!("MULTI\r\nSET {k0} abc\r\nINCR {k0}\r\nSET {k1} x\r\nGET {k0}\r\nEXEC\r\n").as_bytes(),
    )
    .unwrap();
    expect_reply(
        &mut raw,
        b"+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n\
          *4\r\n+OK\r\n-ERR value is not an integer or out of range\r\n+OK\r\n$3\r\nabc\r\n",
    );
    // A command refused at queue time aborts the whole transaction: nothing applies.
    raw.write_all(format!("MULTI\r\nSET {k1} y\r\nSET {k1}\r\nEXEC\r\nGET {k1}\r\n").as_bytes()).unwrap();
    expect_reply(
        &mut raw,
        b"+OK\r\n+QUEUED\r\n-ERR wrong number of arguments for 'set' command\r\n\
          -EXECABORT Transaction discarded because of previous errors.\r\n$1\r\nx\r\n",
    );

    let c = f.via(via);
    assert_eq!(fails(c, &["EXEC"]), "ERR EXEC without MULTI");
    assert_eq!(fails(c, &["DISCARD"]), "ERR DISCARD without MULTI");
    ok(c, &["WATCH", k0]);
    ok(c, &["UNWATCH"]);
    ok(c, &["MULTI"]);
    assert_eq!(fails(c, &["MULTI"]), "ERR MULTI calls can not be nested");
    assert_eq!(fails(c, &["WATCH", k0]), "ERR WATCH inside MULTI is not allowed");
    assert_eq!(run::<String, _>(c, &["SET", k0, "discarded"]), "QUEUED");
    ok(c, &["DISCARD"]);
    assert_eq!(get(c, k0).as_deref(), Some("abc"));
    ok(c, &["MULTI"]);
    let empty: Vec<Value> = run(c, &["EXEC"]);
    assert!(empty.is_empty(), "an empty transaction answers an empty array");
}

/// A transaction whose keys live in several shards is refused at EXEC and nothing applies.
#[test]
fn transactions_across_shards_run_on_every_shard_whole_keyspace_ones_included() {
    let mut f = Fixture::start();
    let a = keys_on_shard("xa", 2, 1).remove(0);
    let b = keys_on_shard("xb", 5, 1).remove(0);
    let c = f.via(1);
    ok(c, &["MULTI"]);
    assert_eq!(run::<String, _>(c, &["SET", &a, "1"]), "QUEUED");
    assert_eq!(run::<String, _>(c, &["SET", &b, "1"]), "QUEUED");
    assert_eq!(run::<Value, _>(c, &["EXEC"]), Value::Array(vec![Value::Okay, Value::Okay]));
    assert_eq!((get(c, &a), get(c, &b)), (Some("1".into()), Some("1".into())));
    // One command spanning shards is split by key.
    ok(c, &["MULTI"]);
    assert_eq!(run::<String, _>(c, &["MSET", &a, "2", &b, "3"]), "QUEUED");
    assert_eq!(run::<Value, _>(c, &["EXEC"]), Value::Array(vec![Value::Okay]));
    assert_eq!((get(c, &a), get(c, &b)), (Some("2".into()), Some("3".into())));
    // A whole-keyspace command runs on every shard, in a transaction over several shards too.
    ok(c, &["MULTI"]);
    assert_eq!(run::<String, _>(c, &["DEL", &a]), "QUEUED");
    assert_eq!(run::<String, _>(c, &["DBSIZE"]), "QUEUED");
    let exec = run::<Value, _>(c, &["EXEC"]);
    assert!(
        matches!(&exec, Value::Array(r) if r[0] == Value::Int(1) && matches!(r[1], Value::Int(n) if n >= 1)),
        "{exec:?}"
    );
    assert_eq!(run::<Value, _>(c, &["PING"]), Value::SimpleString("PONG".into()));
}

/// Hash commands answer as Redis 7 does, errors included.
#[test]
fn hash_commands_answer_as_redis_does() {
    let cluster = TestCluster::start(ClusterOptions::default());
    let reference = super::reference::Reference::start();
    let script = "
        HSET h a 1 b 2
        HSET h a 3
        HGET h a
        HGET h zz
        HGET nohash a
        HLEN h
        HLEN nohash
        HMSET h c 4
        HSET h odd
        SET s v
        HSET s f v
        HGET s f
        GET h
        TYPE h
        DEL h
        TYPE h
    ";
    super::reference::assert_same_replies(&mut cluster.client(1), &mut reference.client(), script);
}

/// OBJECT and MEMORY answer as Redis 7.0 does for what clients read: encodings, refcounts,
/// help, and the errors of malformed calls (MEMORY USAGE's figure is PPDB's own estimate).
#[test]
fn object_and_memory_answer_as_redis_does() {
    let cluster = TestCluster::start(ClusterOptions::default());
    let reference = super::reference::Reference::start();
    let script = "
        SET n 123
        SET s abc
        SET big aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
        HSET h f v
        OBJECT ENCODING n
        OBJECT ENCODING s
        OBJECT ENCODING big
        OBJECT ENCODING h
        OBJECT ENCODING nokey
        OBJECT REFCOUNT n
        OBJECT REFCOUNT s
        OBJECT FREQ n
        OBJECT IDLETIME nokey
        OBJECT ENCODING
        OBJECT ENCODING a b
        OBJECT foo
        OBJECT HELP
        MEMORY USAGE nokey
        MEMORY USAGE
        MEMORY USAGE n SAMPLES x
        MEMORY USAGE n SAMPLES
        MEMORY foo
    ";
    let mut ppdb = cluster.client(1);
    super::reference::assert_same_replies(&mut ppdb, &mut reference.client(), script);
    let usage: i64 = redis::cmd("MEMORY").arg("USAGE").arg("big").query(&mut ppdb).expect("memory usage");
    assert!(usage > 62, "the value's 62 bytes at least: {usage}");
}

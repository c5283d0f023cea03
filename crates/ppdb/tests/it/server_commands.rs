//! The connection and server commands clients and tools call (CLIENT, FUNCTION, SCRIPT,
//! DEBUG, CONFIG, LASTSAVE, WAIT, INFO) against a real 3-node cluster. Where Redis's reply is
//! deterministic the expected values are redis-server 7.0.15's, and when a `redis-server` is
//! installed the same commands are sent to it too, to show they are.

use crate::support::{error_text, free_addrs, wait_for, ClusterOptions, TestCluster};
use redis::{Connection, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A redis-server 7 of this machine, stopped when dropped.
struct RealRedis {
    child: Child,
    addr: SocketAddr,
}

impl RealRedis {
    /// Starts one if `redis-server` is installed (CI installs it; elsewhere its absence only
    /// skips the comparison).
    fn start() -> Option<RealRedis> {
        let addr = free_addrs(1)[0];
        let spawned = Command::new("redis-server")
            .args(["--port", &addr.port().to_string(), "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn();
        let Ok(child) = spawned else {
            assert!(std::env::var_os("CI").is_none(), "redis-server is missing in CI");
            eprintln!("skipping the comparison with Redis: redis-server is not installed");
            return None;
        };
        let redis = RealRedis { child, addr };
        wait_for(Duration::from_secs(10), || TcpStream::connect(addr).ok()).expect("redis-server listens");
        Some(redis)
    }

    fn client(&self) -> Connection {
        redis::Client::open(format!("redis://{}/", self.addr)).unwrap().get_connection().unwrap()
    }
}

impl Drop for RealRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn query(con: &mut Connection, line: &str) -> Result<Value, String> {
    let mut cmd = redis::Cmd::new();
    for word in line.split(' ') {
        cmd.arg(word);
    }
    cmd.query(con).map_err(|e| error_text(&e))
}

fn run(con: &mut Connection, line: &str) -> Value {
    query(con, line).unwrap_or_else(|e| panic!("{line}: {e}"))
}

fn text(value: Value) -> String {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes).unwrap(),
        Value::VerbatimString { text, .. } => text,
        other => panic!("not text: {other:?}"),
    }
}

fn int(value: Value) -> i64 {
    match value {
        Value::Int(n) => n,
        other => panic!("not an integer: {other:?}"),
    }
}

/// The `key=value` fields of a CLIENT LIST line.
fn fields(line: &str) -> Vec<(String, String)> {
    line.split(' ')
        .map(|field| {
            let (key, value) = field.split_once('=').unwrap_or((field, ""));
            (key.to_owned(), value.to_owned())
        })
        .collect()
}

fn field(line: &str, key: &str) -> String {
    fields(line).into_iter().find(|(k, _)| k == key).unwrap_or_else(|| panic!("no {key} in {line}")).1
}

/// Replies that are the same on every Redis 7.0 without functions or scripts, and on PPDB.
const SAME_AS_REDIS: [(&str, Result<&str, &str>); 24] = [
    ("FUNCTION FLUSH", Ok("OK")),
    ("FUNCTION FLUSH ASYNC", Ok("OK")),
    ("FUNCTION LIST", Ok("[]")),
    ("FUNCTION LIST WITHCODE", Ok("[]")),
    ("FUNCTION DUMP", Ok("\n\0]\u{9b}\\@\u{f}\u{7f}\u{a2}\u{da}")),
    ("FUNCTION FLUSH foo", Err("ERR FUNCTION FLUSH only supports SYNC|ASYNC option")),
    ("FUNCTION DELETE lib", Err("ERR Library not found")),
    ("FUNCTION KILL", Err("NOTBUSY No scripts in execution right now.")),
    ("SCRIPT FLUSH", Ok("OK")),
    ("SCRIPT FLUSH SYNC", Ok("OK")),
    ("SCRIPT EXISTS a b", Ok("[0, 0]")),
    ("SCRIPT KILL", Err("NOTBUSY No scripts in execution right now.")),
    (
        "DEBUG SLEEP 0",
        Err("ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server."),
    ),
    ("LASTSAVE now", Err("ERR wrong number of arguments for 'lastsave' command")),
    ("WAIT 0 a", Err("ERR timeout is not an integer or out of range")),
    ("WAIT 0 -1", Err("ERR timeout is negative")),
    ("CONFIG RESETSTAT", Ok("OK")),
    ("CONFIG RESETSTAT x", Err("ERR wrong number of arguments for 'config|resetstat' command")),
    ("CONFIG GET enable-debug-command", Ok("[enable-debug-command, no]")),
    ("CLIENT KILL 1.2.3.4:5", Err("ERR No such client")),
    ("CLIENT KILL ID 99999", Ok("0")),
    ("CLIENT KILL USER nosuch", Err("ERR No such user 'nosuch'")),
    ("CLIENT LIST TYPE pubsub", Ok("")),
    ("CLIENT NO-EVICT on", Ok("OK")),
];

/// A reply in the short form of [`SAME_AS_REDIS`].
fn short(reply: Result<Value, String>) -> Result<String, String> {
    fn render(value: Value) -> String {
        match value {
            Value::Okay => "OK".into(),
            Value::Int(n) => n.to_string(),
            Value::BulkString(bytes) => bytes.iter().map(|&b| char::from(b)).collect(),
            Value::VerbatimString { text, .. } => text,
            Value::Array(items) => {
                format!("[{}]", items.into_iter().map(render).collect::<Vec<_>>().join(", "))
            }
            other => format!("{other:?}"),
        }
    }
    reply.map(render)
}

#[test]
fn deterministic_replies_are_redis_s() {
    let cluster = TestCluster::start(ClusterOptions::default());
    let mut ppdb = cluster.client(1);
    let redis = RealRedis::start();
    let mut reference = redis.as_ref().map(RealRedis::client);
    for (line, expected) in SAME_AS_REDIS {
        let expected = expected.map(str::to_owned).map_err(str::to_owned);
        assert_eq!(short(query(&mut ppdb, line)), expected, "PPDB: {line}");
        if let Some(redis) = reference.as_mut() {
            assert_eq!(short(query(redis, line)), expected, "redis-server: {line}");
        }
    }
    // DEBUG is refused before queueing: it aborts a transaction, as in Redis.
    assert_eq!(run(&mut ppdb, "MULTI"), Value::Okay);
    assert!(query(&mut ppdb, "DEBUG SLEEP 0").unwrap_err().starts_with("ERR DEBUG command not allowed"));
    assert!(query(&mut ppdb, "EXEC").unwrap_err().starts_with("EXECABORT"));
    // Functions are tested in `functions.rs`; a library needs its first line, as in Redis.
    assert_eq!(query(&mut ppdb, "FUNCTION LOAD return").unwrap_err(), "ERR Missing library metadata");
}

#[test]
fn client_list_info_and_kill() {
    let cluster = TestCluster::start(ClusterOptions::default());
    let node_addr = cluster.node(1).client_addr;
    let mut admin = cluster.client(1);
    let mut worker = cluster.client(1);
    assert_eq!(run(&mut worker, "CLIENT SETNAME worker"), Value::Okay);
    assert_eq!(run(&mut worker, "CLIENT SETINFO LIB-NAME tester"), Value::Okay);
    let worker_id = int(run(&mut worker, "CLIENT ID"));

    let own = text(run(&mut worker, "CLIENT INFO"));
    assert!(own.ends_with('\n') && own.lines().count() == 1, "{own:?}");
    let own = own.trim_end();
    assert_eq!(field(own, "id"), worker_id.to_string());
    assert_eq!(field(own, "name"), "worker");
    assert_eq!(field(own, "lib-name"), "tester");
    assert_eq!(field(own, "laddr"), node_addr.to_string());
    assert_eq!((field(own, "cmd").as_str(), field(own, "flags").as_str()), ("client|info", "N"));
    if let Some(redis) = RealRedis::start() {
        // Redis 7.0's fields in Redis's order, then the two Redis 7.2 added.
        let reference = text(run(&mut redis.client(), "CLIENT INFO"));
        let mut keys: Vec<String> = fields(reference.trim_end()).into_iter().map(|(k, _)| k).collect();
        keys.extend(["lib-name".to_owned(), "lib-ver".to_owned()]);
        let ours: Vec<String> = fields(own).into_iter().map(|(k, _)| k).collect();
        assert_eq!(ours, keys);
    }

    let list = text(run(&mut admin, "CLIENT LIST"));
    let worker_line = list.lines().find(|l| field(l, "id") == worker_id.to_string()).expect("worker listed");
    assert_eq!(field(worker_line, "name"), "worker");
    let worker_addr = field(worker_line, "addr");
    let listed = text(run(&mut admin, &format!("CLIENT LIST ID {worker_id} 999999")));
    assert_eq!(listed.lines().count(), 1, "{listed}");
    assert_eq!(int(run(&mut admin, &format!("CLIENT KILL ADDR {worker_addr} LADDR 1.2.3.4:5"))), 0);

    // The filter form answers a count, closes the worker (waiting for a request), and spares
    // the caller unless told.
    let admin_id = int(run(&mut admin, "CLIENT ID"));
    assert_eq!(int(run(&mut admin, &format!("CLIENT KILL ID {admin_id}"))), 0);
    assert_eq!(int(run(&mut admin, &format!("CLIENT KILL ADDR {worker_addr} TYPE normal"))), 1);
    assert!(query(&mut worker, "PING").is_err(), "the killed connection is closed");
    wait_for(Duration::from_secs(5), || {
        let list = text(run(&mut admin, "CLIENT LIST"));
        (!list.contains(&format!("id={worker_id} "))).then_some(())
    })
    .expect("the killed connection leaves CLIENT LIST");

    // The old form answers OK and may kill the caller; so may SKIPME no, after its reply.
    let mut other = cluster.client(1);
    let other_addr = field(text(run(&mut other, "CLIENT INFO")).trim_end(), "addr");
    assert_eq!(run(&mut admin, &format!("CLIENT KILL {other_addr}")), Value::Okay);
    assert!(query(&mut other, "PING").is_err());
    assert_eq!(int(run(&mut admin, &format!("CLIENT KILL ID {admin_id} SKIPME no"))), 1);
    assert!(query(&mut admin, "PING").is_err(), "the caller closes after its reply");
}

/// Sends `request` on a fresh raw connection to `addr` and reads until `expected` bytes came
/// (or the connection is quiet for a moment).
fn raw_exchange(addr: SocketAddr, request: &str, expected_bytes: usize) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut received = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(_) if received.len() >= expected_bytes => break,
            Err(_) => {}
        }
    }
    String::from_utf8(received).unwrap()
}

#[test]
fn client_reply_off_and_skip_withhold_replies_but_commands_run() {
    let cluster = TestCluster::start(ClusterOptions::default());
    let addr = cluster.node(2).client_addr;
    let exchanges = [
        (
            "CLIENT REPLY OFF\r\nSET reply:k v\r\nGET reply:k\r\nPING\r\nCLIENT REPLY ON\r\nGET reply:k\r\n",
            "+OK\r\n$1\r\nv\r\n",
        ),
        (
            "CLIENT REPLY SKIP\r\nPING one\r\nPING two\r\nFOO\r\nCLIENT REPLY SKIP\r\n",
            "$3\r\ntwo\r\n-ERR unknown command 'FOO', with args beginning with: \r\n",
        ),
        ("CLIENT REPLY OFF\r\nCLIENT REPLY SKIP\r\nPING\r\nCLIENT REPLY ON\r\nPING\r\n", "+OK\r\n+PONG\r\n"),
    ];
    let redis = RealRedis::start();
    for (request, expected) in exchanges {
        assert_eq!(raw_exchange(addr, request, expected.len()), expected, "PPDB: {request:?}");
        if let Some(redis) = &redis {
            assert_eq!(
                raw_exchange(redis.addr, request, expected.len()),
                expected,
                "redis-server: {request:?}"
            );
        }
    }
    let mut con = cluster.client(3);
    assert_eq!(text(run(&mut con, "GET reply:k")), "v", "the SET under REPLY OFF was applied");
}

#[test]
fn wait_counts_the_replicas_that_hold_the_connection_s_writes() {
    let cluster = TestCluster::start(ClusterOptions::default());
    let leader = cluster.leader_of_key(b"wait:k");
    let mut con = cluster.client(leader);
    // No write yet: every replica holds them, as Redis answers.
    assert_eq!(int(run(&mut con, "WAIT 0 0")), 2);
    assert_eq!(run(&mut con, "SET wait:k v"), Value::Okay);
    // Through the shard's leader both followers are counted once they have the write.
    assert_eq!(int(run(&mut con, "WAIT 2 5000")), 2);
    // More replicas than exist: the count after the timeout (1 if an election on a loaded
    // machine moved the shard's leadership meanwhile: the majority's other voter).
    let started = Instant::now();
    let count = int(run(&mut con, "WAIT 3 300"));
    assert!((1..=2).contains(&count), "WAIT 3 300 answered {count}");
    assert!(started.elapsed() >= Duration::from_millis(300), "WAIT waited {:?}", started.elapsed());
    // Through a node that does not lead the shard: the majority's other voter at least.
    let other = cluster.ids().into_iter().find(|&id| id != leader).unwrap();
    let mut con = cluster.client(other);
    assert_eq!(run(&mut con, "SET wait:k w"), Value::Okay);
    assert!(int(run(&mut con, "WAIT 1 0")) >= 1);
}

#[test]
fn info_sections_config_and_lastsave() {
    let cluster = TestCluster::start(ClusterOptions::default());
    let mut con = cluster.client(1);
    assert_eq!(run(&mut con, "SET info:k v"), Value::Okay);
    let info = text(run(&mut con, "INFO"));
    for header in [
        "# Server",
        "# Clients",
        "# Memory",
        "# Persistence",
        "# Stats",
        "# Replication",
        "# CPU",
        "# Cluster",
        "# Keyspace",
    ] {
        assert!(info.contains(&format!("{header}\r\n")), "INFO lacks {header}:\n{info}");
    }
    let value = |info: &str, name: &str| {
        let line =
            info.lines().find(|l| l.starts_with(&format!("{name}:"))).unwrap_or_else(|| panic!("no {name}"));
        line.split_once(':').unwrap().1.to_owned()
    };
    for (name, expected) in
        [("loading", "0"), ("rdb_bgsave_in_progress", "0"), ("aof_enabled", "1"), ("cluster_enabled", "0")]
    {
        assert_eq!(value(&info, name), expected, "{name}");
    }
    assert_eq!(value(&info, "tcp_port"), cluster.node(1).client_addr.port().to_string());
    assert_eq!(value(&info, "rdb_last_save_time"), int(run(&mut con, "LASTSAVE")).to_string());
    assert!(value(&info, "used_cpu_user").parse::<f64>().is_ok());
    assert!(value(&info, "db0").starts_with("keys=1,expires="), "{info}");
    let persistence = text(run(&mut con, "INFO persistence"));
    assert!(persistence.starts_with("# Persistence\r\n") && !persistence.contains("# Server"));

    // CONFIG RESETSTAT zeroes the counters.
    assert!(value(&info, "total_commands_processed").parse::<u64>().unwrap() >= 2);
    assert_eq!(run(&mut con, "CONFIG RESETSTAT"), Value::Okay);
    let stats = text(run(&mut con, "INFO stats"));
    assert_eq!(value(&stats, "total_commands_processed"), "1", "only INFO since the reset");

    // Where clients connect, and durability settings set to what they are.
    let addr = cluster.node(1).client_addr;
    let got = run(&mut con, "CONFIG GET port");
    assert_eq!(
        got,
        Value::Array(vec![
            Value::BulkString(b"port".to_vec()),
            Value::BulkString(addr.port().to_string().into_bytes())
        ])
    );
    let mut set_save = redis::cmd("CONFIG");
    set_save.arg("SET").arg("save").arg("").arg("appendonly").arg("yes");
    assert_eq!(set_save.query::<Value>(&mut con).unwrap(), Value::Okay);
}

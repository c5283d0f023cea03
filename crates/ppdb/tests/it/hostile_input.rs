//! The hostile-input suite: what a careless client, a broken peer or an attacker can send a
//! 3-node cluster of real processes. After every case each node must still run and take a write
//! within 10 s; at the end every node is killed with SIGKILL and restarted, and every write the
//! cluster acknowledged along the way must be back.

use crate::support::{error_text, pseudo_random_bytes, wait_for, ClusterOptions, TestCluster};
use redis::Value;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

const MIB: usize = 1 << 20;

/// How long each node has to take a write after a case (the bar).
const WRITE_DEADLINE: Duration = Duration::from_secs(10);

/// How long a single hostile request may take to be answered (or refused).
const ANSWER_DEADLINE: Duration = Duration::from_secs(60);

/// A value of `len` bytes that only depends on `key`, so the suite keeps lengths, not values.
fn value_of(key: &str, len: usize) -> Vec<u8> {
    let seed =
        key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    pseudo_random_bytes(seed, len)
}

/// A redis connection to `addr` with `timeout` for reads and writes, or why not.
fn connect(addr: SocketAddr, timeout: Duration) -> redis::RedisResult<redis::Connection> {
    let client = redis::Client::open(format!("redis://{addr}/"))?;
    let con = client.get_connection_with_timeout(Duration::from_secs(5))?;
    con.set_read_timeout(Some(timeout))?;
    con.set_write_timeout(Some(timeout))?;
    Ok(con)
}

/// Whether a redis error means the connection itself failed (closed, reset, timed out) rather
/// than the server answering with an error reply.
fn is_connection_failure(e: &redis::RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_timeout()
}

/// Sends `args` and returns the reply, or the error reply's text; panics if the server did not
/// answer at all (the connection closed or timed out) during `case`.
fn answered(con: &mut redis::Connection, case: &str, args: &[&[u8]]) -> Result<Value, String> {
    let mut cmd = redis::Cmd::new();
    for arg in args {
        cmd.arg(*arg);
    }
    match cmd.query::<Value>(con) {
        Ok(value) => Ok(value),
        Err(e) if is_connection_failure(&e) => {
            let shown: Vec<String> =
                args.iter().map(|a| String::from_utf8_lossy(&a[..a.len().min(40)]).into_owned()).collect();
            panic!("{case}: no answer to {shown:?}: {e}")
        }
        Err(e) => Err(error_text(&e)),
    }
}

/// Writes `bytes` to a fresh raw connection to `addr` and returns whatever the server sends back
/// within `wait` (the connection may be closed by the server at any point).
fn raw_exchange(addr: SocketAddr, bytes: &[u8], wait: Duration) -> Vec<u8> {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(5)) else {
        return Vec::new();
    };
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let _ = stream.set_read_timeout(Some(wait));
    let _ = stream.write_all(bytes);
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    let end = Instant::now() + wait;
    while Instant::now() < end {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => reply.extend_from_slice(&buf[..n]),
        }
    }
    reply
}

/// The running cluster and the writes it acknowledged (key → value length).
struct Suite {
    cluster: TestCluster,
    acked: BTreeMap<String, usize>,
}

impl Suite {
    fn start() -> Suite {
        Suite { cluster: TestCluster::start(ClusterOptions::default()), acked: BTreeMap::new() }
    }

    fn client_addr(&self, id: u64) -> SocketAddr {
        self.cluster.node(id).client_addr
    }

    fn con(&self, id: u64) -> redis::Connection {
        connect(self.client_addr(id), ANSWER_DEADLINE).expect("connect to node")
    }

    /// Sets `key` to its `len`-byte value through node `via`; records it if acknowledged.
    fn set(&mut self, via: u64, key: &str, len: usize) -> Result<(), String> {
        let mut con = connect(self.client_addr(via), ANSWER_DEADLINE).map_err(|e| e.to_string())?;
        let reply: redis::RedisResult<Value> =
            redis::cmd("SET").arg(key).arg(value_of(key, len)).query(&mut con);
        match reply {
            Ok(Value::Okay) => {
                self.acked.insert(key.to_string(), len);
                Ok(())
            }
            Ok(other) => Err(format!("SET {key} answered {other:?}")),
            Err(e) => Err(error_text(&e)),
        }
    }

    /// After `case`: every node still runs and takes a write within 10 s.
    fn survived(&mut self, case: &str) {
        for id in self.cluster.ids() {
            assert!(self.cluster.alive(id), "node {id} died during {case}; see its log");
        }
        for id in self.cluster.ids() {
            let key = format!("probe:{case}:{id}");
            let start = Instant::now();
            let done = wait_for(WRITE_DEADLINE, || self.set(id, &key, 16).ok());
            assert!(done.is_some(), "node {id} took no write within {WRITE_DEADLINE:?} after {case}");
            eprintln!("{case}: node {id} took a write after {:?}", start.elapsed());
        }
    }

    /// The nodes' resident memory now.
    fn rss(&self) -> BTreeMap<u64, u64> {
        self.cluster.ids().into_iter().filter_map(|id| Some((id, self.cluster.rss_bytes(id)?))).collect()
    }

    /// Kills every node with SIGKILL, restarts them all and reads back every acknowledged write.
    fn recovers_every_acknowledged_write(&mut self) {
        for id in self.cluster.ids() {
            self.cluster.kill(id);
        }
        for id in self.cluster.ids() {
            self.cluster.spawn(id);
        }
        self.cluster.wait_ready();
        let mut con = self.con(1);
        for (key, &len) in &self.acked {
            let got: Option<Vec<u8>> = redis::cmd("GET").arg(key).query(&mut con).expect("GET after restart");
            let got_len = got.as_ref().map(Vec::len);
            assert!(
                got == Some(value_of(key, len)),
                "acknowledged {key} ({len} bytes) lost: {got_len:?} bytes"
            );
        }
        eprintln!("{} acknowledged writes recovered after kill -9 of every node", self.acked.len());
    }
}

/// Glob patterns that make a naive matcher recurse or backtrack without bound.
fn pathological_patterns(suite: &mut Suite) {
    let case = "pathological patterns";
    let long_key = "a".repeat(100_000);
    suite.set(1, &long_key, 1).expect("SET of a 100,000-byte key");
    let patterns: Vec<Vec<u8>> = vec![
        "*a".repeat(100_000).into_bytes(),
        format!("{}b", "*".repeat(100_000)).into_bytes(),
        "[".repeat(100_000).into_bytes(),
        format!("{}]", "[^a-".repeat(25_000)).into_bytes(),
        "\\".repeat(100_001).into_bytes(),
        "*?".repeat(50_000).into_bytes(),
    ];
    let mut con = suite.con(2);
    for pattern in &patterns {
        let _ = answered(&mut con, case, &[b"KEYS", pattern]);
        let _ = answered(&mut con, case, &[b"SCAN", b"0", b"MATCH", pattern, b"COUNT", b"1000"]);
        // Queued in MULTI, the pattern is applied on every replica through the log.
        let _ = answered(&mut con, case, &[b"MULTI"]);
        let _ = answered(&mut con, case, &[b"KEYS", pattern]);
        let _ = answered(&mut con, case, &[b"EXEC"]);
    }
    suite.survived(case);
}

/// Values of 1, 20 and 100 MiB either work or are refused cleanly; 600 MiB is refused.
fn large_values(suite: &mut Suite) {
    let case = "large values";
    suite.set(1, "v1", MIB).expect("a 1 MiB value");
    for (mib, via) in [(20, 2), (100, 3)] {
        let key = format!("v{mib}");
        match suite.set(via, &key, mib * MIB) {
            Ok(()) => {
                let mut con = suite.con(via % 3 + 1);
                let got: Vec<u8> = redis::cmd("GET").arg(&key).query(&mut con).expect("GET of a large value");
                assert!(got == value_of(&key, mib * MIB), "{key} read back wrong ({} bytes)", got.len());
            }
            Err(refusal) => {
                eprintln!("{case}: {mib} MiB refused: {refusal}");
                let got: Option<Vec<u8>> = redis::cmd("GET").arg(&key).query(&mut suite.con(1)).expect("GET");
                assert!(
                    got.is_none(),
                    "a refused {mib} MiB SET left a value of {:?} bytes",
                    got.map(|v| v.len())
                );
            }
        }
        suite.survived(case);
    }
    // 600 MiB: more than any limit PPDB allows. Announce it and stream zeros until refused.
    let header = format!("*3\r\n$3\r\nSET\r\n$4\r\nv600\r\n${}\r\n", 600 * MIB);
    let mut stream = TcpStream::connect(suite.client_addr(1)).expect("connect");
    stream.set_write_timeout(Some(Duration::from_secs(10))).expect("timeout");
    stream.write_all(header.as_bytes()).expect("header");
    let chunk = vec![0u8; MIB];
    let sent = (0..600).take_while(|_| stream.write_all(&chunk).is_ok()).count();
    drop(stream);
    eprintln!("{case}: the server took {sent} of 600 MiB before refusing");
    let got: Option<Vec<u8>> = redis::cmd("GET").arg("v600").query(&mut suite.con(1)).expect("GET");
    assert!(got.is_none(), "a 600 MiB value was stored");
    suite.survived(case);
}

/// Many concurrent multi-MiB writes through every node: together more than one WAL record or
/// one peer frame may hold.
fn concurrent_large_writes(suite: &mut Suite) {
    let case = "concurrent multi-MiB writes";
    let addrs: Vec<SocketAddr> = suite.cluster.ids().iter().map(|&id| suite.client_addr(id)).collect();
    let writers: Vec<_> = (0..12)
        .map(|t| {
            let addr = addrs[t % addrs.len()];
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                let Ok(mut con) = connect(addr, ANSWER_DEADLINE) else { return acked };
                for i in 0..3 {
                    let key = format!("burst:{t}:{i}");
                    let len = MIB + (t * 3 + i) * 64 * 1024;
                    let reply: redis::RedisResult<Value> =
                        redis::cmd("SET").arg(&key).arg(value_of(&key, len)).query(&mut con);
                    match reply {
                        Ok(Value::Okay) => acked.push((key, len)),
                        other => eprintln!("{key}: {other:?}"),
                    }
                }
                acked
            })
        })
        .collect();
    let mut count = 0;
    for writer in writers {
        for (key, len) in writer.join().expect("writer thread") {
            suite.acked.insert(key, len);
            count += 1;
        }
    }
    assert_eq!(count, 36, "{case}: every write on a healthy cluster is acknowledged");
    suite.survived(case);
}

/// Offsets and batches that would make one small request allocate or propose without bound.
fn huge_ranges_and_batches(suite: &mut Suite) {
    let case = "huge SETRANGE, MSET and MULTI";
    let mut con = suite.con(1);
    for offset in ["536870911", "4294967296", "9223372036854775807", "-1"] {
        let reply = answered(&mut con, case, &[b"SETRANGE", b"range:k", offset.as_bytes(), b"x"]);
        if let Ok(value) = &reply {
            // Only an offset Redis itself accepts may succeed.
            assert_eq!(offset, "536870911", "SETRANGE at {offset} answered {value:?}");
        }
    }
    let _ = answered(&mut con, case, &[b"DEL", b"range:k"]);
    let _ = answered(&mut con, case, &[b"APPEND", b"range:a", &vec![b'x'; MIB]]);
    // One MSET of 100,000 pairs, and one MULTI of 50,000 queued SETs.
    let mut mset: Vec<Vec<u8>> = vec![b"MSET".to_vec()];
    for i in 0..100_000 {
        mset.push(format!("mset:{i}").into_bytes());
        mset.push(format!("{i}").into_bytes());
    }
    let args: Vec<&[u8]> = mset.iter().map(Vec::as_slice).collect();
    if answered(&mut con, case, &args) == Ok(Value::Okay) {
        for i in [0, 49_999, 99_999] {
            // Values are their index's digits: record them as such.
            let key = format!("mset:{i}");
            let got: Option<String> = redis::cmd("GET").arg(&key).query(&mut con).expect("GET");
            assert_eq!(got, Some(i.to_string()), "{key}");
        }
    }
    let mut pipe = redis::pipe();
    pipe.cmd("MULTI");
    for i in 0..50_000 {
        pipe.cmd("SET").arg(format!("multi:{i}")).arg(i);
    }
    pipe.cmd("EXEC");
    let reply: redis::RedisResult<Vec<Value>> = pipe.query(&mut con);
    if let Err(e) = &reply {
        assert!(!is_connection_failure(e), "{case}: MULTI of 50,000 SETs got no answer: {e}");
    }
    suite.survived(case);
}

/// Lying, negative and absurd lengths, truncated requests and deep nesting on raw sockets,
/// including many connections that each announce a 512 MiB argument and never send it.
fn lying_lengths(suite: &mut Suite) {
    let case = "lying and negative lengths";
    let addr = suite.client_addr(2);
    let requests: Vec<Vec<u8>> = vec![
        b"*1\r\n$-5\r\n".to_vec(),
        b"*-5\r\n".to_vec(),
        b"*2147483648\r\n".to_vec(),
        b"*99999999999999999999999\r\n".to_vec(),
        b"*1\r\n$9223372036854775807\r\n".to_vec(),
        b"*1\r\n$-9223372036854775808\r\n".to_vec(),
        b"*1048577\r\n".to_vec(),
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nab".to_vec(),
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$536870912\r\nabc".to_vec(),
        b"$10\r\n".to_vec(),
        b"*1\r\n:12\r\n".to_vec(),
        b"*1\r\n$4\r\nPING\r\n\r\n\r\n*0\r\n*-1\r\n".to_vec(),
        [b"*1\r\n".repeat(100_000), b"$4\r\nPING\r\n".to_vec()].concat(),
        vec![b'x'; 4 * MIB],
        [b"SET k ".to_vec(), vec![b'"'; 100_000], b"\r\n".to_vec()].concat(),
    ];
    for request in &requests {
        raw_exchange(addr, request, Duration::from_millis(300));
    }
    // A request with a good prefix still works on a fresh connection.
    let pong = raw_exchange(addr, b"*1\r\n$4\r\nPING\r\n", Duration::from_millis(500));
    assert!(pong.starts_with(b"+PONG"), "{case}: PING after hostile lengths: {pong:?}");

    // 200 connections each announce a 512 MiB argument and send 10 bytes of it.
    let before = suite.rss();
    let mut held = Vec::new();
    for id in suite.cluster.ids() {
        for _ in 0..70 {
            if let Ok(mut stream) = TcpStream::connect(suite.client_addr(id)) {
                let _ = stream.write_all(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$536870912\r\n0123456789");
                held.push(stream);
            }
        }
    }
    std::thread::sleep(Duration::from_millis(500)); // let the servers read what was sent
    let during = suite.rss();
    drop(held);
    for (id, rss) in &during {
        let was = before.get(id).copied().unwrap_or(0);
        assert!(*rss < 2 * was, "{case}: node {id} RSS {was} -> {rss} bytes under 70 lying headers");
    }
    suite.survived(case);
}

/// Numeric edge values in every numeric position of the commands that take numbers.
fn numeric_edges(suite: &mut Suite) {
    let case = "numeric edge values";
    let edges = [
        "9223372036854775807",
        "-9223372036854775808",
        "9223372036854775808",
        "-9223372036854775809",
        "18446744073709551616",
        "-1",
        "0",
        "-0",
        "inf",
        "-inf",
        "+inf",
        "nan",
        "1e308",
        "1e309",
        "-1e308",
        "0x10",
        " 1",
        "1.5",
        "",
    ];
    let mut con = suite.con(3);
    let _ = answered(&mut con, case, &[b"SET", b"edge:int", b"10"]);
    let _ = answered(&mut con, case, &[b"SET", b"edge:float", b"1.5"]);
    let _ = answered(&mut con, case, &[b"SET", b"edge:str", b"hello"]);
    let templates: &[&[&str]] = &[
        &["SET", "edge:set", "v", "EX", "#"],
        &["SET", "edge:set", "v", "PX", "#"],
        &["SET", "edge:set", "v", "EXAT", "#"],
        &["SET", "edge:set", "v", "PXAT", "#"],
        &["SETEX", "edge:setex", "#", "v"],
        &["PSETEX", "edge:setex", "#", "v"],
        &["GETEX", "edge:str", "EX", "#"],
        &["GETEX", "edge:str", "PX", "#"],
        &["GETEX", "edge:str", "EXAT", "#"],
        &["GETEX", "edge:str", "PXAT", "#"],
        &["EXPIRE", "edge:str", "#"],
        &["PEXPIRE", "edge:str", "#"],
        &["EXPIREAT", "edge:str", "#"],
        &["PEXPIREAT", "edge:str", "#"],
        &["INCRBY", "edge:int", "#"],
        &["DECRBY", "edge:int", "#"],
        &["INCRBYFLOAT", "edge:float", "#"],
        &["INCRBYFLOAT", "edge:int", "#"],
        &["GETRANGE", "edge:str", "#", "#"],
        &["GETRANGE", "edge:str", "0", "#"],
        &["SUBSTR", "edge:str", "#", "-1"],
        &["SETRANGE", "edge:range", "#", "x"],
        &["SCAN", "#"],
        &["SCAN", "0", "COUNT", "#"],
        &["SCAN", "#", "MATCH", "*", "COUNT", "#"],
        &["SELECT", "#"],
        &["EXPIRE", "edge:str", "#", "NX"],
    ];
    for template in templates {
        for edge in edges {
            let args: Vec<&[u8]> =
                template.iter().map(|&a| if a == "#" { edge.as_bytes() } else { a.as_bytes() }).collect();
            let _ = answered(&mut con, case, &args);
        }
        // Keep the operands numbers for the next template.
        let _ = answered(&mut con, case, &[b"SET", b"edge:int", b"10"]);
        let _ = answered(&mut con, case, &[b"SET", b"edge:float", b"1.5"]);
        let _ = answered(&mut con, case, &[b"SET", b"edge:str", b"hello"]);
    }
    // Counters driven to both ends of i64.
    let _ = answered(&mut con, case, &[b"SET", b"edge:max", b"9223372036854775806"]);
    assert!(answered(&mut con, case, &[b"INCR", b"edge:max"]).is_ok());
    assert!(answered(&mut con, case, &[b"INCR", b"edge:max"]).is_err(), "INCR past i64::MAX must fail");
    let _ = answered(&mut con, case, &[b"SET", b"edge:min", b"-9223372036854775807"]);
    assert!(answered(&mut con, case, &[b"DECR", b"edge:min"]).is_ok());
    assert!(answered(&mut con, case, &[b"DECR", b"edge:min"]).is_err(), "DECR past i64::MIN must fail");
    assert!(answered(&mut con, case, &[b"INCRBYFLOAT", b"edge:float", b"1e308"]).is_ok());
    let overflow = answered(&mut con, case, &[b"INCRBYFLOAT", b"edge:float", b"1e308"]);
    assert!(overflow.is_err(), "INCRBYFLOAT to infinity must fail: {overflow:?}");
    suite.survived(case);
}

/// Thousands of idle connections: the node keeps serving everyone else.
fn idle_connections(suite: &mut Suite) {
    let case = "thousands of idle connections";
    raise_open_files_limit();
    let mut idle = Vec::new();
    for i in 0..3000u64 {
        let id = i % 3 + 1;
        match TcpStream::connect_timeout(&suite.client_addr(id), Duration::from_secs(2)) {
            Ok(stream) => idle.push(stream),
            Err(e) => {
                eprintln!("{case}: connection {i} refused: {e}");
                break;
            }
        }
    }
    eprintln!("{case}: {} idle connections open", idle.len());
    suite.survived(case);
    drop(idle);
}

/// This test process opens thousands of sockets: lift its soft descriptor limit to the hard one.
fn raise_open_files_limit() {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit with a valid pointer to an rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// A client that pipelines GETs of a 1 MiB value and never reads: server memory stays bounded.
fn slow_reader(suite: &mut Suite) {
    let case = "a client that never reads";
    suite.set(1, "slow:v", MIB).expect("SET the value the slow reader asks for");
    let before = suite.rss();
    let addr = suite.client_addr(1);
    let writer = std::thread::spawn(move || {
        let Ok(mut stream) = TcpStream::connect(addr) else { return (0, None) };
        let _ = stream.set_write_timeout(Some(Duration::from_secs(3)));
        let request = b"*2\r\n$3\r\nGET\r\n$6\r\nslow:v\r\n".repeat(100);
        let sent = (0..100).take_while(|_| stream.write_all(&request).is_ok()).count() * 100;
        (sent, Some(stream))
    });
    let mut peak: BTreeMap<u64, u64> = BTreeMap::new();
    let end = Instant::now() + Duration::from_secs(6);
    while Instant::now() < end {
        for (id, rss) in suite.rss() {
            let top = peak.entry(id).or_default();
            *top = (*top).max(rss);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let (sent, stream) = writer.join().expect("slow reader thread");
    eprintln!("{case}: {sent} GETs of 1 MiB sent without reading; RSS {before:?} -> peak {peak:?}");
    for (id, rss) in &peak {
        let was = before.get(id).copied().unwrap_or(0);
        assert!(*rss < 2 * was, "{case}: node {id} RSS {was} -> {rss} bytes");
    }
    drop(stream);
    suite.survived(case);
}

/// Random bytes on every port of every node: client, peer and admin.
fn random_bytes(suite: &mut Suite) {
    let case = "random bytes on every port";
    let mut seed = 17;
    for id in suite.cluster.ids() {
        let node = suite.cluster.node(id);
        for addr in [node.client_addr, node.peer_addr, node.admin_addr] {
            for len in [1, 17, 4096, 256 * 1024] {
                seed += 1;
                raw_exchange(addr, &pseudo_random_bytes(seed, len), Duration::from_millis(100));
            }
        }
    }
    suite.survived(case);
}

#[test]
fn hostile_clients_peers_and_values_neither_crash_nor_stall_the_cluster_nor_lose_writes() {
    let mut suite = Suite::start();
    // The memory cases first, while the nodes' memory is what a fresh cluster's is.
    lying_lengths(&mut suite);
    slow_reader(&mut suite);
    pathological_patterns(&mut suite);
    numeric_edges(&mut suite);
    huge_ranges_and_batches(&mut suite);
    idle_connections(&mut suite);
    random_bytes(&mut suite);
    large_values(&mut suite);
    concurrent_large_writes(&mut suite);
    suite.recovers_every_acknowledged_write();
}

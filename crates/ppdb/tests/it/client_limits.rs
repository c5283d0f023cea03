//! Client limits against real `ppdb` processes: a client that never reads its replies, lying
//! bulk lengths, thousands of idle connections, `maxclients`, the idle `timeout`, random bytes
//! on the client and admin ports, and cross-site requests to the admin port. After each, the
//! node serves other clients, and its memory stayed bounded.

use crate::support::{error_text, http_get, pseudo_random_bytes, wait_for, ClusterOptions, TestCluster};
use redis::Connection;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Longest wait for the server to close a client it should close.
const CLOSE_DEADLINE: Duration = Duration::from_secs(20);
/// Size of the value a slow reader asks for again and again.
const LARGE_VALUE_BYTES: usize = 4 << 20;

fn one_node() -> TestCluster {
    TestCluster::start(ClusterOptions { nodes: 1, shards: 1, ..ClusterOptions::default() })
}

fn config_set(con: &mut Connection, name: &str, value: &str) {
    let reply: redis::RedisResult<String> = redis::cmd("CONFIG").arg("SET").arg(name).arg(value).query(con);
    assert_eq!(reply.map_err(|e| error_text(&e)), Ok("OK".to_string()), "CONFIG SET {name} {value}");
}

/// The node's process id, from INFO.
fn node_pid(con: &mut Connection) -> u32 {
    let info: String = redis::cmd("INFO").arg("server").query(con).expect("INFO server");
    let line = info.lines().find_map(|l| l.strip_prefix("process_id:")).expect("process_id in INFO");
    line.trim().parse().expect("a pid")
}

/// A field of /proc/<pid>/status in KiB (VmRSS: resident memory; VmData: reserved heap).
fn proc_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("node process status");
    let line = status.lines().find_map(|l| l.strip_prefix(field)).expect("field in status");
    line.trim().trim_end_matches("kB").trim().parse().expect("KiB")
}

/// The node answers PING and takes a write on a fresh connection.
fn assert_serves(cluster: &TestCluster) {
    let mut con = cluster.client(1);
    let pong: String = redis::cmd("PING").query(&mut con).expect("PING");
    assert_eq!(pong, "PONG");
    let set: redis::RedisResult<String> = redis::cmd("SET").arg("alive").arg("yes").query(&mut con);
    assert_eq!(set.map_err(|e| error_text(&e)), Ok("OK".to_string()));
}

fn bulk_request(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Reads until the server closes `stream` (EOF or reset); what it sent before, or `None` if it
/// stays open past `deadline`.
fn read_until_closed(stream: &mut TcpStream, deadline: Duration) -> Option<Vec<u8>> {
    stream.set_read_timeout(Some(Duration::from_millis(100))).expect("read timeout");
    let end = Instant::now() + deadline;
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < end {
        match stream.read(&mut buf) {
            Ok(0) => return Some(received),
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return Some(received),
        }
    }
    None
}

/// A client pipelines GETs of a 4 MiB value and never reads: the server stops running its
/// pipeline while replies are unsent, closes it after client-write-timeout, and its memory
/// stays under twice what it was (on the old code each read of 16 KiB of GETs made 700
/// replies of 4 MiB at once).
#[test]
fn a_client_that_never_reads_is_closed_and_holds_little_memory() {
    let cluster = one_node();
    let mut con = cluster.client(1);
    config_set(&mut con, "client-write-timeout", "2");
    let value = vec![b'v'; LARGE_VALUE_BYTES];
    let _: () = redis::cmd("SET").arg("big").arg(&value).query(&mut con).expect("SET big");
    let pid = node_pid(&mut con);
    let rss_before_kib = proc_kib(pid, "VmRSS:");

    let mut slow = TcpStream::connect(cluster.node(1).client_addr).expect("connect");
    slow.set_nonblocking(true).expect("nonblocking");
    let gets = bulk_request(&[b"GET", b"big"]).repeat(5000);
    let mut sent = 0;
    let mut rss_peak_kib = rss_before_kib;
    let closed = wait_for(CLOSE_DEADLINE, || {
        rss_peak_kib = rss_peak_kib.max(proc_kib(pid, "VmRSS:"));
        let pending = &gets[sent % gets.len()..];
        match slow.write(pending) {
            Ok(n) => {
                sent += n;
                None
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => None,
            Err(_) => Some(()),
        }
    });
    assert!(closed.is_some(), "the client that never reads is still connected after {sent} bytes of GETs");
    assert!(
        rss_peak_kib < 2 * rss_before_kib,
        "node RSS rose from {rss_before_kib} KiB to {rss_peak_kib} KiB for one client that never reads"
    );
    assert_serves(&cluster);
}

/// Headers announcing the largest bulk, followed by 10 bytes, reserve nothing they were not
/// sent (the old code reserved the announced length at once, 512 MiB per connection), and a
/// negative length is a protocol error that closes only its connection.
#[test]
fn lying_and_negative_bulk_lengths_cost_nothing_and_close_only_their_connection() {
    let cluster = one_node();
    let mut con = cluster.client(1);
    let pid = node_pid(&mut con);
    let max: Vec<(String, String)> =
        redis::cmd("CONFIG").arg("GET").arg("proto-max-bulk-len").query(&mut con).expect("CONFIG GET");
    let bulk_bytes_max: u64 = max[0].1.parse().expect("a number");
    let (data_before_kib, rss_before_kib) = (proc_kib(pid, "VmData:"), proc_kib(pid, "VmRSS:"));

    let addr = cluster.node(1).client_addr;
    const LIARS: u64 = 32;
    let liars: Vec<TcpStream> = (0..LIARS)
        .map(|_| {
            let mut liar = TcpStream::connect(addr).expect("connect");
            let header = format!("*3\r\n$3\r\nSET\r\n$4\r\nlied\r\n${bulk_bytes_max}\r\n0123456789");
            liar.write_all(header.as_bytes()).expect("send lying header");
            liar
        })
        .collect();
    // Every liar's header has been parsed once a request sent after them is answered.
    assert_serves(&cluster);
    // Trusting the headers would reserve LIARS x proto-max-bulk-len; allow an eighth of that
    // for the allocator's own reservations.
    let data_growth_kib = proc_kib(pid, "VmData:").saturating_sub(data_before_kib);
    let trusted_kib = LIARS * bulk_bytes_max / 1024;
    assert!(data_growth_kib < trusted_kib / 8, "{LIARS} lying headers reserved {data_growth_kib} KiB");
    assert!(proc_kib(pid, "VmRSS:") < 2 * rss_before_kib, "RSS doubled under lying headers");

    let mut negative = TcpStream::connect(addr).expect("connect");
    negative.write_all(b"*2\r\n$3\r\nGET\r\n$-7\r\n").expect("send");
    let reply = read_until_closed(&mut negative, CLOSE_DEADLINE).expect("closed after a protocol error");
    assert_eq!(String::from_utf8_lossy(&reply), "-ERR Protocol error: invalid bulk length\r\n");
    let pong: String = redis::cmd("PING").query(&mut con).expect("the first client is still served");
    assert_eq!(pong, "PONG");
    drop(liars);
    assert_serves(&cluster);
}

/// Raises this process's open-file limit so the test can hold `files` sockets.
fn allow_open_files(files: u64) {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit read and write the struct we own.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        if limit.rlim_cur < files {
            limit.rlim_cur = files.min(limit.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// 2000 idle connections: the node still serves another client, counts them all, and a client
/// over `maxclients` is refused with Redis's error and closed; a restored limit admits again.
#[test]
fn thousands_of_idle_connections_and_maxclients() {
    const IDLE_CONNECTIONS: usize = 2000;
    allow_open_files(IDLE_CONNECTIONS as u64 + 512);
    let cluster = one_node();
    let addr = cluster.node(1).client_addr;
    let idle: Vec<TcpStream> =
        (0..IDLE_CONNECTIONS).map(|_| TcpStream::connect(addr).expect("idle connection")).collect();
    let mut con = cluster.client(1);
    let counted = wait_for(CLOSE_DEADLINE, || {
        let info: String = redis::cmd("INFO").arg("clients").query(&mut con).ok()?;
        let line = info.lines().find_map(|l| l.strip_prefix("connected_clients:"))?;
        (line.trim().parse::<usize>().ok()? > IDLE_CONNECTIONS).then_some(())
    });
    assert!(counted.is_some(), "the node did not count {IDLE_CONNECTIONS} idle connections");
    assert_serves(&cluster);

    config_set(&mut con, "maxclients", &(IDLE_CONNECTIONS + 1).to_string());
    let mut refused = TcpStream::connect(addr).expect("the listener accepts before refusing");
    let reply = read_until_closed(&mut refused, CLOSE_DEADLINE).expect("a refused client is closed");
    assert_eq!(String::from_utf8_lossy(&reply), "-ERR max number of clients reached\r\n");
    config_set(&mut con, "maxclients", "10000");
    drop(idle);
    assert_serves(&cluster);
}

/// With `timeout` set, an idle client is closed; a client that keeps talking is not.
#[test]
fn idle_clients_are_closed_after_timeout() {
    let cluster = one_node();
    let mut con = cluster.client(1);
    config_set(&mut con, "timeout", "1");
    let mut idle = TcpStream::connect(cluster.node(1).client_addr).expect("connect");
    let started = Instant::now();
    assert!(read_until_closed(&mut idle, CLOSE_DEADLINE).is_some(), "the idle client stayed connected");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "closed before the timeout: {:?}",
        started.elapsed()
    );
    let mut busy = TcpStream::connect(cluster.node(1).client_addr).expect("connect");
    for _ in 0..6 {
        busy.write_all(b"PING\r\n").expect("the busy client is still connected");
        let mut pong = [0u8; 7];
        busy.read_exact(&mut pong).expect("PONG");
        std::thread::sleep(Duration::from_millis(400));
    }
    let closed = con.send_packed_command(b"*1\r\n$4\r\nPING\r\n").and_then(|()| con.recv_response());
    assert!(closed.is_err(), "the first client, idle since CONFIG SET, was not closed");
}

/// Random bytes on the client port and on the admin port close (at most) those connections:
/// a client connected before keeps being served, and the admin port still answers.
#[test]
fn random_bytes_close_only_their_connection() {
    let cluster = one_node();
    let mut bystander = cluster.client(1);
    let node = cluster.node(1);
    for seed in 1..=20u64 {
        let mut bytes = pseudo_random_bytes(seed, 96 * 1024);
        if seed % 2 == 0 {
            bytes[0] = b'*'; // through the multibulk parser rather than the inline one
        }
        for addr in [node.client_addr, node.admin_addr] {
            let mut stream = TcpStream::connect(addr).expect("connect");
            let _ = stream.write_all(&bytes);
            let _ = read_until_closed(&mut stream, Duration::from_millis(300));
        }
    }
    let pong: String = redis::cmd("PING").query(&mut bystander).expect("the bystander is still served");
    assert_eq!(pong, "PONG");
    assert_serves(&cluster);
    assert!(http_get(node.admin_addr, "/health").is_some(), "the admin port stopped answering");
}

/// Sends a raw HTTP POST to `path` with extra header lines; the status code.
fn http_post(addr: SocketAddr, path: &str, headers: &str) -> u16 {
    let mut stream = TcpStream::connect(addr).expect("connect to admin");
    let request = format!("POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\n{headers}\r\n");
    stream.write_all(request.as_bytes()).expect("send request");
    let answer = read_until_closed(&mut stream, CLOSE_DEADLINE).expect("an answer");
    let text = String::from_utf8_lossy(&answer);
    text.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or_else(|| panic!("not HTTP: {text}"))
}

/// A browser's cross-site POST cannot remove a node: without the X-PPDB-Admin header (a form
/// or a simple fetch) or with a foreign Origin (a page that got a preflight past some proxy,
/// or a DNS-rebound page), the admin port refuses, and node 3 stays a member.
#[test]
fn cross_site_requests_cannot_remove_a_node() {
    let cluster = TestCluster::start(ClusterOptions { shards: 1, ..ClusterOptions::default() });
    cluster.wait_ready();
    let admin = cluster.node(1).admin_addr;
    let form = "Content-Type: application/x-www-form-urlencoded\r\nOrigin: http://evil.example\r\n";
    assert_eq!(http_post(admin, "/cluster/remove/3", form), 403, "a cross-site form post");
    assert_eq!(http_post(admin, "/cluster/remove/3", ""), 403, "a post without the header");
    let rebound = "X-PPDB-Admin: 1\r\nOrigin: http://evil.example\r\nSec-Fetch-Site: same-origin\r\n";
    assert_eq!(http_post(admin, "/cluster/remove/3", rebound), 403, "a post with a foreign Origin");
    let status = cluster.status(1).expect("status");
    assert!(
        status.members.iter().any(|m| m.id == 3 && m.state == "ACTIVE"),
        "node 3 was removed by a cross-site request: {:?}",
        status.members
    );
    // The operator's tool still can.
    let (ok, output) = cluster.cluster_command(1, &["remove", "3"]);
    assert!(ok, "ppdb cluster remove failed: {output}");
}

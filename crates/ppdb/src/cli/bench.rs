//! `ppdb bench`: a closed-loop load generator that measures PPDB (Redis protocol, memcached's text
//! protocol) and etcd (gRPC) with the same client code, so they can be compared side by side.
//!
//! Each client is a tokio task with its own connection that sends one request, waits for the
//! answer, and sends the next (a closed loop: throughput is what the server sustains at that many
//! outstanding requests). Clients are spread round-robin over the target endpoints. Latencies of
//! successful requests go into an HDR histogram; failed requests (error replies, I/O errors,
//! timeouts) are counted by kind and never abort the run. Nothing read from the network is
//! trusted: every length is bounded and every malformed answer is an error, not a panic.
//!
//! etcd is spoken to over real gRPC (HTTP/2 with prior knowledge, as etcd's own Go client does),
//! with the two messages it needs encoded by hand: this avoids a protobuf compiler at build time.

use crate::transport::tls::{ClientAuth, MaybeTls, TlsContext, TlsFiles};
use clap::Args;
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufStream};
use tokio::net::TcpStream;

/// Most clients one run may start.
const CLIENTS_MAX: u32 = 10_000;
/// Largest value size accepted by `--value-bytes`.
const VALUE_BYTES_MAX: u32 = 1 << 20;
/// Largest reply (bulk string or gRPC response body) the clients accept.
const REPLY_BYTES_MAX: usize = 4 << 20;
/// Longest RESP reply header line (`$123\r\n`, `-ERR ...\r\n`).
const REPLY_LINE_BYTES_MAX: usize = 4096;
/// Most elements of an array reply (MGET, EXEC of the two-key workloads).
const REPLY_ELEMENTS_MAX: i64 = 1024;
/// How deeply array replies nest.
const REPLY_DEPTH_MAX: u32 = 4;
/// Highest latency the histogram records; slower requests are clamped to it.
const LATENCY_US_MAX: u64 = 60_000_000;
/// Pause before reconnecting after a connection failed, so a dead endpoint is not spun on.
const RECONNECT_PAUSE_MS: u64 = 50;

/// Flags of `ppdb bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Endpoints, comma-separated, all of one kind: resp://HOST:PORT (PPDB, or any Redis server),
    /// memcache://HOST:PORT (PPDB's memcached listener, or any memcached: set / get) or
    /// etcd://HOST:PORT (etcd's client port, gRPC).
    #[arg(long)]
    pub target: String,
    /// Concurrent clients, each with its own connection, spread round-robin over the endpoints.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=i64::from(CLIENTS_MAX)))]
    pub clients: u32,
    /// Length of the measured phase, in seconds (after the warm-up).
    #[arg(long, default_value_t = 10)]
    pub duration_secs: u64,
    /// Stop after this many measured requests in total instead of after --duration-secs.
    #[arg(long)]
    pub requests: Option<u64>,
    /// Size of each written value, in bytes.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=i64::from(VALUE_BYTES_MAX)))]
    pub value_bytes: u32,
    /// Number of distinct keys; each request picks one uniformly at random.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub keys: u64,
    /// Share of writes (SET / Put) in percent; the rest are linearizable reads (GET / Range).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub write_percent: u8,
    /// The data type the writes and reads use (resp:// targets only): `set` (SET / GET),
    /// `hset` (HSET key field value / HGET), `lpush` (LPUSH key value / LINDEX key 0), `sadd`
    /// (SADD key member / SISMEMBER), `zadd` (ZADD key score member / ZSCORE), `eval` (EVAL
    /// of a script doing INCR key and EXPIRE key 100 / GET), `mset2` (MSET of the key and a
    /// twin key / MGET of both) or `multi2` (MULTI, INCR of both, EXEC / MGET). Fields,
    /// members and scores are drawn from a million, so collections grow as Redis's own
    /// benchmark makes them grow.
    #[arg(long, value_enum, default_value_t = TypeWorkload::Set)]
    pub command: TypeWorkload,
    /// Seconds of load before measuring starts (connections, leader caches, page cache warm up).
    #[arg(long, default_value_t = 2)]
    pub warmup_secs: u64,
    /// A request unanswered after this many milliseconds counts as an error (and reconnects).
    #[arg(long, default_value_t = 5000)]
    pub request_timeout_ms: u64,
    /// Worker threads of the load generator (it shares the machine with the servers it measures).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub threads: u32,
    /// Print one JSON line (for scripts) instead of the human-readable summary.
    #[arg(long)]
    pub json: bool,
    /// Speak TLS to resp:// and memcache:// endpoints, with the CA certificate `ca.crt` and
    /// the client certificate `client.crt` and key `client.key` of this folder (as `ppdb local
    /// --tls` writes them into DIR/tls).
    #[arg(long, value_name = "FOLDER")]
    pub tls: Option<std::path::PathBuf>,
}

/// The commands a RESP benchmark sends (see [`BenchArgs::command`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TypeWorkload {
    /// SET and GET.
    Set,
    /// HSET and HGET.
    Hset,
    /// LPUSH and LINDEX 0.
    Lpush,
    /// SADD and SISMEMBER.
    Sadd,
    /// ZADD and ZSCORE.
    Zadd,
    /// EVAL of a small script (INCR of the key, then EXPIRE 100) and GET.
    Eval,
    /// MSET of two keys (the drawn key and its `:2` twin, in different shards of a cluster
    /// with several) and MGET of both.
    Mset2,
    /// A transaction of two keys (MULTI, INCR of the key and of its `:2` twin, EXEC) and MGET
    /// of both.
    Multi2,
}

/// The script of the `eval` workload: one INCR and one EXPIRE, as a rate limiter's.
const EVAL_SCRIPT: &[u8] = b"redis.call('INCR', KEYS[1]) redis.call('EXPIRE', KEYS[1], 100)";

/// How many distinct fields, members or scores the collection workloads draw from.
const ELEMENTS: u64 = 1_000_000;

impl TypeWorkload {
    /// The prefix of the workload's keys: its own, so that workloads run one after another on
    /// one server never meet a key of another type.
    fn key_prefix(self) -> &'static str {
        match self {
            TypeWorkload::Set => "key",
            TypeWorkload::Hset => "hash",
            TypeWorkload::Lpush => "list",
            TypeWorkload::Sadd => "set",
            TypeWorkload::Zadd => "zset",
            TypeWorkload::Eval => "eval",
            TypeWorkload::Mset2 => "mset2",
            TypeWorkload::Multi2 => "multi2",
        }
    }

    /// The commands of the request for `key` (sent together, each answered in turn): a write
    /// of `value` (or of element `element`), or its read. `twin` is the second key of the
    /// two-key workloads.
    fn commands<'a>(
        self,
        key: &'a [u8],
        twin: &'a [u8],
        write: bool,
        value: &'a [u8],
        element: &'a [u8],
        score: &'a [u8],
    ) -> Vec<Vec<&'a [u8]>> {
        match (self, write) {
            (TypeWorkload::Mset2, true) => vec![vec![b"MSET", key, value, twin, value]],
            (TypeWorkload::Multi2, true) => {
                vec![vec![b"MULTI"], vec![b"INCR", key], vec![b"INCR", twin], vec![b"EXEC"]]
            }
            (TypeWorkload::Mset2 | TypeWorkload::Multi2, false) => vec![vec![b"MGET", key, twin]],
            _ => vec![self.args(key, write, value, element, score)],
        }
    }

    /// The one command of the request for `key` of a one-key workload.
    fn args<'a>(
        self,
        key: &'a [u8],
        write: bool,
        value: &'a [u8],
        element: &'a [u8],
        score: &'a [u8],
    ) -> Vec<&'a [u8]> {
        match (self, write) {
            (TypeWorkload::Set, true) => vec![b"SET", key, value],
            (TypeWorkload::Set, false) => vec![b"GET", key],
            (TypeWorkload::Hset, true) => vec![b"HSET", key, element, value],
            (TypeWorkload::Hset, false) => vec![b"HGET", key, element],
            (TypeWorkload::Lpush, true) => vec![b"LPUSH", key, value],
            (TypeWorkload::Lpush, false) => vec![b"LINDEX", key, b"0"],
            (TypeWorkload::Sadd, true) => vec![b"SADD", key, element],
            (TypeWorkload::Sadd, false) => vec![b"SISMEMBER", key, element],
            (TypeWorkload::Zadd, true) => vec![b"ZADD", key, score, element],
            (TypeWorkload::Zadd, false) => vec![b"ZSCORE", key, element],
            (TypeWorkload::Eval, true) => vec![b"EVAL", EVAL_SCRIPT, b"1", key],
            (TypeWorkload::Eval, false) => vec![b"GET", key],
            (TypeWorkload::Mset2 | TypeWorkload::Multi2, _) => vec![b"MGET", key],
        }
    }
}

/// Which protocol the endpoints speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Resp,
    Memcache,
    Etcd,
}

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Protocol::Resp => "resp",
            Protocol::Memcache => "memcache",
            Protocol::Etcd => "etcd",
        }
    }
}

/// Parses `resp://a:1,resp://b:2` into one protocol and its endpoints.
fn parse_target(target: &str) -> Result<(Protocol, Vec<SocketAddr>), String> {
    let mut protocol = None;
    let mut endpoints = Vec::new();
    for item in target.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (scheme, addr) =
            item.split_once("://").ok_or_else(|| format!("--target: `{item}` is not SCHEME://HOST:PORT"))?;
        let this = match scheme {
            "resp" | "redis" => Protocol::Resp,
            "memcache" | "memcached" => Protocol::Memcache,
            "etcd" => Protocol::Etcd,
            other => {
                return Err(format!(
                    "--target: unknown scheme `{other}` (use resp://, memcache:// or etcd://)"
                ))
            }
        };
        if protocol.is_some_and(|p| p != this) {
            return Err("--target: all endpoints must use the same scheme".to_string());
        }
        protocol = Some(this);
        let resolved = std::net::ToSocketAddrs::to_socket_addrs(addr)
            .map_err(|e| format!("--target: cannot resolve `{addr}`: {e}"))?
            .next()
            .ok_or_else(|| format!("--target: `{addr}` resolves to no address"))?;
        endpoints.push(resolved);
    }
    match protocol {
        Some(p) => Ok((p, endpoints)),
        None => Err("--target: no endpoint given".to_string()),
    }
}

/// What the clients share: the workload and the clock of the run.
struct Plan {
    protocol: Protocol,
    /// TLS to the endpoints, when asked for.
    tls: Option<TlsContext>,
    endpoints: Vec<SocketAddr>,
    keys: u64,
    write_percent: u64,
    command: TypeWorkload,
    value: bytes::Bytes,
    request_timeout: Duration,
    /// Requests started at or after this instant are measured.
    measure_from: Instant,
    /// No request starts at or after this instant (duration mode).
    stop_at: Option<Instant>,
    /// Measured requests left to start (request-count mode).
    requests_left: Option<AtomicU64>,
}

impl Plan {
    /// Whether a client may start another request, and whether that request is measured.
    fn next_request(&self, now: Instant) -> Option<bool> {
        let measured = now >= self.measure_from;
        if self.stop_at.is_some_and(|stop| now >= stop) {
            return None;
        }
        if measured {
            if let Some(left) = &self.requests_left {
                let taken = left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
                if taken.is_err() {
                    return None;
                }
            }
        }
        Some(measured)
    }
}

/// What one client (and, merged, the whole run) observed.
struct Tally {
    latency_us: Histogram<u64>,
    ops: u64,
    errors: BTreeMap<String, u64>,
    finished_at: Instant,
}

impl Tally {
    fn new() -> Result<Tally, String> {
        let latency_us = Histogram::new_with_bounds(1, LATENCY_US_MAX, 3)
            .map_err(|e| format!("cannot create a latency histogram: {e}"))?;
        Ok(Tally { latency_us, ops: 0, errors: BTreeMap::new(), finished_at: Instant::now() })
    }

    fn merge(&mut self, other: Tally) -> Result<(), String> {
        self.latency_us.add(&other.latency_us).map_err(|e| format!("cannot merge histograms: {e}"))?;
        self.ops += other.ops;
        for (kind, count) in other.errors {
            *self.errors.entry(kind).or_insert(0) += count;
        }
        self.finished_at = self.finished_at.max(other.finished_at);
        Ok(())
    }
}

/// Why one request failed. Only the kind is counted, so messages stay short.
#[derive(Debug)]
enum RequestError {
    /// The connection broke or could not be made; the client reconnects.
    Io(String),
    /// No answer within --request-timeout-ms; the client reconnects.
    Timeout,
    /// The server answered with an error (RESP `-CODE ...`, or a non-zero gRPC status).
    Reply(String),
    /// The answer could not be parsed; the client reconnects.
    Protocol(String),
}

impl RequestError {
    fn kind(&self) -> String {
        match self {
            RequestError::Io(what) => format!("io: {what}"),
            RequestError::Timeout => "timeout".to_string(),
            RequestError::Reply(what) => format!("reply: {what}"),
            RequestError::Protocol(what) => format!("protocol: {what}"),
        }
    }

    /// Whether the connection can still be used after this error.
    fn keeps_connection(&self) -> bool {
        matches!(self, RequestError::Reply(_))
    }
}

/// Runs the benchmark and prints its result.
pub fn run(args: BenchArgs) -> Result<(), String> {
    let (protocol, endpoints) = parse_target(&args.target)?;
    if protocol == Protocol::Etcd && args.command != TypeWorkload::Set {
        return Err("--command: etcd targets only take `set` (Put and Range)".to_string());
    }
    if protocol == Protocol::Memcache && args.command != TypeWorkload::Set {
        return Err("--command: memcache targets only take `set` (set and get)".to_string());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads as usize)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let started = Instant::now();
    let measure_from = started + Duration::from_secs(args.warmup_secs);
    let tls = match &args.tls {
        None => None,
        Some(dir) => {
            let files = TlsFiles {
                cert: dir.join("client.crt"),
                key: dir.join("client.key"),
                ca: dir.join("ca.crt"),
            };
            Some(TlsContext::load(files, ClientAuth::Required).map_err(|e| format!("--tls: {e}"))?)
        }
    };
    let plan = Arc::new(Plan {
        protocol,
        tls,
        endpoints,
        keys: args.keys,
        write_percent: u64::from(args.write_percent),
        command: args.command,
        value: bytes::Bytes::from(vec![b'v'; args.value_bytes as usize]),
        request_timeout: Duration::from_millis(args.request_timeout_ms.max(1)),
        measure_from,
        stop_at: match args.requests {
            Some(_) => None,
            None => Some(measure_from + Duration::from_secs(args.duration_secs)),
        },
        requests_left: args.requests.map(AtomicU64::new),
    });
    let total = runtime.block_on(async {
        let tasks: Vec<_> =
            (0..args.clients).map(|index| tokio::spawn(run_client(Arc::clone(&plan), index))).collect();
        let mut total = Tally::new()?;
        for task in tasks {
            let tally = task.await.map_err(|e| format!("a client task failed: {e}"))??;
            total.merge(tally)?;
        }
        Ok::<Tally, String>(total)
    })?;
    let elapsed_secs = total.finished_at.saturating_duration_since(measure_from).as_secs_f64();
    print_report(&args, protocol, &total, elapsed_secs, own_cpu_secs());
    Ok(())
}

/// One client: connect, then request after request until the plan says stop.
async fn run_client(plan: Arc<Plan>, index: u32) -> Result<Tally, String> {
    let mut tally = Tally::new()?;
    let mut rng = SplitMix64(u64::from(index).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5EED);
    let endpoint = plan.endpoints[index as usize % plan.endpoints.len()];
    let mut connection: Option<Connection> = None;
    let mut key = Vec::with_capacity(32);
    while let Some(measured) = plan.next_request(Instant::now()) {
        let conn = match connection.as_mut() {
            Some(conn) => conn,
            None => match Connection::open(plan.protocol, endpoint, plan.tls.as_ref()).await {
                Ok(conn) => connection.insert(conn),
                Err(e) => {
                    if measured {
                        *tally.errors.entry(e.kind()).or_insert(0) += 1;
                    }
                    tokio::time::sleep(Duration::from_millis(RECONNECT_PAUSE_MS)).await;
                    continue;
                }
            },
        };
        key.clear();
        key.extend_from_slice(
            format!("{}:{:012}", plan.command.key_prefix(), rng.next() % plan.keys).as_bytes(),
        );
        let write = rng.next() % 100 < plan.write_percent;
        let element = rng.next() % ELEMENTS;
        let request = Request { key: &key, write, value: &plan.value, command: plan.command, element };
        let sent_at = Instant::now();
        let outcome = match tokio::time::timeout(plan.request_timeout, conn.request(&request)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(RequestError::Timeout),
        };
        match outcome {
            Ok(()) if measured => {
                let us = u64::try_from(sent_at.elapsed().as_micros()).unwrap_or(u64::MAX);
                tally.latency_us.saturating_record(us.clamp(1, LATENCY_US_MAX));
                tally.ops += 1;
            }
            Ok(()) => {}
            Err(e) => {
                if measured {
                    *tally.errors.entry(e.kind()).or_insert(0) += 1;
                }
                if !e.keeps_connection() {
                    connection = None;
                    tokio::time::sleep(Duration::from_millis(RECONNECT_PAUSE_MS)).await;
                }
            }
        }
    }
    tally.finished_at = Instant::now();
    Ok(tally)
}

/// A tiny deterministic generator (SplitMix64): each client draws its own key sequence.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// One client connection, of either protocol.
enum Connection {
    Resp(RespConnection),
    Memcache(MemcacheConnection),
    Etcd(EtcdConnection),
}

impl Connection {
    async fn open(
        protocol: Protocol,
        endpoint: SocketAddr,
        tls: Option<&TlsContext>,
    ) -> Result<Connection, RequestError> {
        let io = |e: std::io::Error| RequestError::Io(e.kind().to_string());
        let tcp = TcpStream::connect(endpoint).await.map_err(io)?;
        tcp.set_nodelay(true).map_err(io)?;
        let stream = match (protocol, tls) {
            (Protocol::Etcd, _) => {
                return Ok(Connection::Etcd(EtcdConnection::handshake(tcp, endpoint).await?))
            }
            (_, None) => BufStream::new(MaybeTls::Plain(tcp)),
            (_, Some(tls)) => BufStream::new(tls.dial_peer(tcp, endpoint.ip()).await.map_err(io)?),
        };
        Ok(match protocol {
            Protocol::Memcache => Connection::Memcache(MemcacheConnection { stream, line: Vec::new() }),
            Protocol::Resp | Protocol::Etcd => Connection::Resp(RespConnection { stream, line: Vec::new() }),
        })
    }

    async fn request(&mut self, request: &Request<'_>) -> Result<(), RequestError> {
        match self {
            Connection::Resp(conn) => conn.request(request).await,
            Connection::Memcache(conn) => conn.request(request.key, request.write, request.value).await,
            Connection::Etcd(conn) => conn.request(request.key, request.write, request.value).await,
        }
    }
}

/// One request of a client.
struct Request<'a> {
    key: &'a [u8],
    write: bool,
    value: &'a [u8],
    command: TypeWorkload,
    /// The field, member or score drawn for a collection workload.
    element: u64,
}

/// A minimal Redis-protocol client: one request of the workload at a time.
struct RespConnection {
    stream: BufStream<MaybeTls>,
    line: Vec<u8>,
}

impl RespConnection {
    async fn request(&mut self, request: &Request<'_>) -> Result<(), RequestError> {
        let io = |e: std::io::Error| RequestError::Io(e.kind().to_string());
        let element = format!("element:{}", request.element);
        let score = request.element.to_string();
        let mut twin = request.key.to_vec();
        twin.extend_from_slice(b":2");
        let commands = request.command.commands(
            request.key,
            &twin,
            request.write,
            request.value,
            element.as_bytes(),
            score.as_bytes(),
        );
        let mut header = itoa::Buffer::new();
        for args in &commands {
            self.stream.write_all(b"*").await.map_err(io)?;
            self.stream.write_all(header.format(args.len()).as_bytes()).await.map_err(io)?;
            self.stream.write_all(b"\r\n").await.map_err(io)?;
            for arg in args {
                self.stream.write_all(b"$").await.map_err(io)?;
                self.stream.write_all(header.format(arg.len()).as_bytes()).await.map_err(io)?;
                self.stream.write_all(b"\r\n").await.map_err(io)?;
                self.stream.write_all(arg).await.map_err(io)?;
                self.stream.write_all(b"\r\n").await.map_err(io)?;
            }
        }
        self.stream.flush().await.map_err(io)?;
        let mut result = Ok(());
        for _ in &commands {
            let reply = self.read_reply(0).await;
            if result.is_ok() {
                result = reply;
            }
        }
        result
    }

    /// Reads one reply: a simple string, integer, null, bulk string, error, or an array of
    /// them (nested at most [`REPLY_DEPTH_MAX`] deep).
    async fn read_reply(&mut self, depth: u32) -> Result<(), RequestError> {
        let io = |e: std::io::Error| RequestError::Io(e.kind().to_string());
        self.line.clear();
        let read = (&mut self.stream)
            .take(REPLY_LINE_BYTES_MAX as u64)
            .read_until(b'\n', &mut self.line)
            .await
            .map_err(io)?;
        if read == 0 {
            return Err(RequestError::Io("connection closed".to_string()));
        }
        let Some(body) = self.line.strip_suffix(b"\r\n") else {
            return Err(RequestError::Protocol("reply line without CRLF or too long".to_string()));
        };
        match body.first() {
            Some(b'+' | b':' | b'_') => Ok(()),
            Some(b'*') if depth < REPLY_DEPTH_MAX => {
                let len: i64 = std::str::from_utf8(&body[1..])
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| RequestError::Protocol("bad array length".to_string()))?;
                if len > REPLY_ELEMENTS_MAX {
                    return Err(RequestError::Protocol(format!(
                        "array of over {REPLY_ELEMENTS_MAX} elements"
                    )));
                }
                let mut result = Ok(());
                for _ in 0..len.max(0) {
                    let element = Box::pin(self.read_reply(depth + 1)).await;
                    match element {
                        Err(RequestError::Reply(_)) if result.is_ok() => result = element,
                        Err(e @ (RequestError::Io(_) | RequestError::Protocol(_))) => return Err(e),
                        _ => {}
                    }
                }
                result
            }
            Some(b'-') => {
                let code = body[1..].split(|b| *b == b' ').next().unwrap_or_default();
                Err(RequestError::Reply(String::from_utf8_lossy(code).into_owned()))
            }
            Some(b'$') => {
                let len: i64 = std::str::from_utf8(&body[1..])
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| RequestError::Protocol("bad bulk length".to_string()))?;
                if len < 0 {
                    return Ok(()); // RESP2 null bulk string: the key is absent.
                }
                let len = usize::try_from(len).unwrap_or(usize::MAX);
                if len > REPLY_BYTES_MAX {
                    return Err(RequestError::Protocol(format!("bulk string over {REPLY_BYTES_MAX} bytes")));
                }
                let mut remaining = len + 2;
                let mut chunk = [0u8; 4096];
                while remaining > 0 {
                    let want = remaining.min(chunk.len());
                    self.stream.read_exact(&mut chunk[..want]).await.map_err(io)?;
                    remaining -= want;
                }
                Ok(())
            }
            _ => Err(RequestError::Protocol("unexpected reply type".to_string())),
        }
    }
}

/// A minimal memcached text-protocol client: `set` for writes, `get` for reads.
struct MemcacheConnection {
    stream: BufStream<MaybeTls>,
    line: Vec<u8>,
}

impl MemcacheConnection {
    async fn request(&mut self, key: &[u8], write: bool, value: &[u8]) -> Result<(), RequestError> {
        let io = |e: std::io::Error| RequestError::Io(e.kind().to_string());
        if write {
            let header = format!(" 0 0 {}\r\n", value.len());
            for part in [&b"set "[..], key, header.as_bytes(), value, b"\r\n"] {
                self.stream.write_all(part).await.map_err(io)?;
            }
        } else {
            for part in [&b"get "[..], key, b"\r\n"] {
                self.stream.write_all(part).await.map_err(io)?;
            }
        }
        self.stream.flush().await.map_err(io)?;
        let expected: &[u8] = if write { b"STORED" } else { b"END" };
        loop {
            let line = self.read_line().await?;
            if line == expected {
                return Ok(());
            }
            let words: Vec<&[u8]> = line.split(|b| *b == b' ').collect();
            match words.as_slice() {
                [b"VALUE", _, _, len, ..] if !write => {
                    let len: usize = std::str::from_utf8(len)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .filter(|&len| len <= REPLY_BYTES_MAX)
                        .ok_or_else(|| RequestError::Protocol("bad VALUE length".to_string()))?;
                    let mut remaining = len + 2;
                    let mut chunk = [0u8; 4096];
                    while remaining > 0 {
                        let want = remaining.min(chunk.len());
                        self.stream.read_exact(&mut chunk[..want]).await.map_err(io)?;
                        remaining -= want;
                    }
                }
                [word, ..] => {
                    return Err(RequestError::Reply(String::from_utf8_lossy(word).into_owned()));
                }
                [] => return Err(RequestError::Protocol("empty reply line".to_string())),
            }
        }
    }

    /// One reply line, without its CRLF.
    async fn read_line(&mut self) -> Result<Vec<u8>, RequestError> {
        self.line.clear();
        let read = (&mut self.stream)
            .take(REPLY_LINE_BYTES_MAX as u64)
            .read_until(b'\n', &mut self.line)
            .await
            .map_err(|e| RequestError::Io(e.kind().to_string()))?;
        if read == 0 {
            return Err(RequestError::Io("connection closed".to_string()));
        }
        self.line
            .strip_suffix(b"\r\n")
            .map(<[u8]>::to_vec)
            .ok_or_else(|| RequestError::Protocol("reply line without CRLF or too long".to_string()))
    }
}

/// A minimal etcd v3 gRPC client over one HTTP/2 connection: `KV/Put` and `KV/Range`.
struct EtcdConnection {
    send: h2::client::SendRequest<bytes::Bytes>,
    put_uri: http::Uri,
    range_uri: http::Uri,
    driver: tokio::task::JoinHandle<()>,
}

impl Drop for EtcdConnection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl EtcdConnection {
    async fn handshake(stream: TcpStream, endpoint: SocketAddr) -> Result<EtcdConnection, RequestError> {
        let (send, connection) = h2::client::handshake(stream)
            .await
            .map_err(|e| RequestError::Io(format!("h2 handshake: {e}")))?;
        let driver = tokio::spawn(async move {
            let _ = connection.await;
        });
        let uri = |path: &str| {
            http::Uri::try_from(format!("http://{endpoint}{path}"))
                .map_err(|e| RequestError::Protocol(format!("bad uri: {e}")))
        };
        Ok(EtcdConnection {
            send,
            put_uri: uri("/etcdserverpb.KV/Put")?,
            range_uri: uri("/etcdserverpb.KV/Range")?,
            driver,
        })
    }

    async fn request(&mut self, key: &[u8], write: bool, value: &[u8]) -> Result<(), RequestError> {
        // PutRequest { key = 1, value = 2 } and RangeRequest { key = 1 } (linearizable by default).
        let mut message = Vec::with_capacity(key.len() + value.len() + 16);
        encode_bytes_field(&mut message, 1, key);
        if write {
            encode_bytes_field(&mut message, 2, value);
        }
        let uri = if write { &self.put_uri } else { &self.range_uri };
        self.unary(uri.clone(), &message).await
    }

    /// One gRPC unary call: send the length-prefixed message, read the answer and its status.
    async fn unary(&mut self, uri: http::Uri, message: &[u8]) -> Result<(), RequestError> {
        let h2_error = |e: h2::Error| RequestError::Io(format!("h2: {}", h2_reason(&e)));
        let request = http::Request::builder()
            .method(http::Method::POST)
            .uri(uri)
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())
            .map_err(|e| RequestError::Protocol(format!("request: {e}")))?;
        let mut frame = Vec::with_capacity(message.len() + 5);
        frame.push(0); // not compressed
        let len =
            u32::try_from(message.len()).map_err(|_| RequestError::Protocol("message too big".into()))?;
        frame.extend_from_slice(&len.to_be_bytes());
        frame.extend_from_slice(message);
        let mut send = self.send.clone().ready().await.map_err(h2_error)?;
        let (response, mut body_out) = send.send_request(request, false).map_err(h2_error)?;
        body_out.send_data(bytes::Bytes::from(frame), true).map_err(h2_error)?;
        let response = response.await.map_err(h2_error)?;
        let (parts, mut body) = response.into_parts();
        if parts.status != http::StatusCode::OK {
            return Err(RequestError::Reply(format!("http {}", parts.status.as_u16())));
        }
        if let Some(status) = parts.headers.get("grpc-status") {
            return grpc_status(status); // a trailers-only answer (an error)
        }
        let mut received = 0usize;
        while let Some(chunk) = body.data().await {
            let chunk = chunk.map_err(h2_error)?;
            received += chunk.len();
            let _ = body.flow_control().release_capacity(chunk.len());
            if received > REPLY_BYTES_MAX {
                return Err(RequestError::Protocol(format!("response over {REPLY_BYTES_MAX} bytes")));
            }
        }
        let trailers = body.trailers().await.map_err(h2_error)?;
        match trailers.as_ref().and_then(|t| t.get("grpc-status")) {
            Some(status) => grpc_status(status)?,
            None => return Err(RequestError::Protocol("no grpc-status".to_string())),
        }
        if received < 5 {
            return Err(RequestError::Protocol("empty gRPC response".to_string()));
        }
        Ok(())
    }
}

/// Short, countable description of an HTTP/2 error.
fn h2_reason(e: &h2::Error) -> String {
    match e.reason() {
        Some(reason) => format!("{reason:?}"),
        None if e.is_io() => "io".to_string(),
        None => "other".to_string(),
    }
}

/// Turns a `grpc-status` header into success (0) or a counted error.
fn grpc_status(value: &http::HeaderValue) -> Result<(), RequestError> {
    match value.as_bytes() {
        b"0" => Ok(()),
        other => Err(RequestError::Reply(format!("grpc-status {}", String::from_utf8_lossy(other)))),
    }
}

/// Appends a protobuf length-delimited field (wire type 2).
fn encode_bytes_field(out: &mut Vec<u8>, field: u32, data: &[u8]) {
    encode_varint(out, u64::from(field) << 3 | 2);
    encode_varint(out, data.len() as u64);
    out.extend_from_slice(data);
}

/// Appends a protobuf base-128 varint.
fn encode_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// CPU time (user + system) this process has used so far: the load generator shares the machine
/// with the servers, so scripts report what it took.
fn own_cpu_secs() -> f64 {
    // SAFETY: getrusage(2) only writes into the zeroed struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF is valid and `usage` is a valid, writable rusage.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0.0;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

fn print_report(args: &BenchArgs, protocol: Protocol, total: &Tally, elapsed_secs: f64, cpu_secs: f64) {
    let ops_per_sec = if elapsed_secs > 0.0 { total.ops as f64 / elapsed_secs } else { 0.0 };
    let errors: u64 = total.errors.values().sum();
    let quantile = |q: f64| if total.ops == 0 { 0 } else { total.latency_us.value_at_quantile(q) };
    let (p50, p99, p999, max) = (quantile(0.5), quantile(0.99), quantile(0.999), total.latency_us.max());
    if args.json {
        let line = serde_json::json!({
            "system": protocol.name(),
            "target": args.target,
            "clients": args.clients,
            "write_percent": args.write_percent,
            "command": args.command,
            "value_bytes": args.value_bytes,
            "keys": args.keys,
            "ops": total.ops,
            "errors": errors,
            "error_kinds": total.errors,
            "elapsed_secs": elapsed_secs,
            "ops_per_sec": ops_per_sec,
            "latency_us_p50": p50,
            "latency_us_p99": p99,
            "latency_us_p999": p999,
            "latency_us_max": max,
            "client_cpu_secs": cpu_secs,
        });
        println!("{line}");
        return;
    }
    let ms = |us: u64| us as f64 / 1000.0;
    println!(
        "{} ({}): {} clients, {}% writes ({:?}), {}-byte values, {} keys",
        args.target,
        protocol.name(),
        args.clients,
        args.write_percent,
        args.command,
        args.value_bytes,
        args.keys
    );
    println!("  {} requests in {elapsed_secs:.2} s = {ops_per_sec:.0} ops/s, {errors} errors", total.ops);
    println!(
        "  latency ms: p50 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
        ms(p50),
        ms(p99),
        ms(p999),
        ms(max)
    );
    println!("  load generator CPU: {cpu_secs:.2} s (warm-up included)");
    for (kind, count) in &total.errors {
        println!("  error {kind}: {count}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_refuse_mixed_schemes() {
        let (protocol, endpoints) = parse_target("resp://127.0.0.1:7001, resp://127.0.0.1:7002").unwrap();
        assert_eq!(protocol, Protocol::Resp);
        assert_eq!(endpoints.len(), 2);
        assert_eq!(parse_target("etcd://127.0.0.1:2379").unwrap().0, Protocol::Etcd);
        assert_eq!(parse_target("memcache://127.0.0.1:11211").unwrap().0, Protocol::Memcache);
        assert!(parse_target("resp://127.0.0.1:7001,etcd://127.0.0.1:2379").is_err());
        assert!(parse_target("http://127.0.0.1:1").is_err());
        assert!(parse_target("").is_err());
    }

    #[test]
    fn protobuf_fields_encode_like_prost() {
        let mut out = Vec::new();
        encode_bytes_field(&mut out, 1, b"k");
        encode_bytes_field(&mut out, 2, &[7u8; 200]);
        assert_eq!(&out[..3], &[0x0a, 1, b'k']);
        assert_eq!(&out[3..6], &[0x12, 0xc8, 0x01]); // 200 = 0b1_1001000
        assert_eq!(out.len(), 6 + 200);
    }

    #[test]
    fn request_count_mode_stops_after_the_budget() {
        let now = Instant::now();
        let plan = Plan {
            protocol: Protocol::Resp,
            tls: None,
            endpoints: vec![],
            keys: 1,
            write_percent: 100,
            command: TypeWorkload::Set,
            value: bytes::Bytes::new(),
            request_timeout: Duration::from_secs(1),
            measure_from: now,
            stop_at: None,
            requests_left: Some(AtomicU64::new(2)),
        };
        assert_eq!(plan.next_request(now), Some(true));
        assert_eq!(plan.next_request(now), Some(true));
        assert_eq!(plan.next_request(now), None);
    }
}

//! `ppdb bench-pubsub`: how long a published message takes to reach its subscribers,
//! on the publisher's node and on the others.
//!
//! One connection subscribes to a channel of its own through every endpoint of `--target`; one
//! publisher publishes through the first endpoint at a fixed rate (`--rate`, an open loop, so
//! the figure is a message's delay and not a queue's), each message carrying the time it was
//! sent (nanoseconds since the run started, on this process's monotonic clock, which the
//! subscribers read too). A subscriber's latency for a message is the time it read the message
//! minus that time; messages sent during the warm-up are not counted. Subscribers on the
//! publisher's endpoint give the same-node figure, the others the cross-node one; against a
//! single Redis server only the first exists.
//!
//! Before measuring, the publisher publishes probes until every subscriber has received one,
//! so that a subscription still on its way to the other nodes is not counted as a loss.
//! Nothing read from the network is trusted: replies are bounded in size and depth.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufStream};
use tokio::net::TcpStream;

/// Flags of `ppdb bench-pubsub`.
#[derive(Debug, clap::Args)]
pub struct PubSubArgs {
    /// Endpoints, comma-separated (resp://HOST:PORT, PPDB nodes or a Redis server): one
    /// subscriber on each, the publisher on the first.
    #[arg(long)]
    pub target: String,
    /// Messages published per second.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=i64::from(RATE_MAX)))]
    pub rate: u32,
    /// Length of the measured phase, in seconds (after the warm-up).
    #[arg(long, default_value_t = 10)]
    pub duration_secs: u64,
    /// Seconds of publishing before measuring starts.
    #[arg(long, default_value_t = 2)]
    pub warmup_secs: u64,
    /// Size of each message, in bytes (at least its send time's text).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1 << 20))]
    pub payload_bytes: u32,
    /// Print one JSON line (for scripts) instead of the human-readable summary.
    #[arg(long)]
    pub json: bool,
}

/// Longest reply line (`*3`, `$12`, `:1`, `-ERR ...`).
const LINE_BYTES_MAX: usize = 4096;
/// Largest bulk string read (a message's payload is at most `--payload-bytes`, 1 MiB).
const BULK_BYTES_MAX: usize = (1 << 20) + 64;
/// Most elements of an array read (a message push has 3, a pattern message 4).
const ARRAY_ELEMENTS_MAX: i64 = 8;
/// Highest latency recorded, in microseconds; slower messages are clamped to it.
const LATENCY_US_MAX: u64 = 60_000_000;
/// How long the subscriptions may take to reach every node before the run gives up.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long subscribers wait for the last messages after the publisher stopped.
const DRAIN: Duration = Duration::from_secs(1);
/// Most messages one run publishes per second.
pub const RATE_MAX: u32 = 100_000;

/// A reply or push, as much of RESP2 as pub/sub uses.
#[derive(Debug)]
enum Frame {
    Simple,
    Error(String),
    Integer,
    Bulk(Option<Vec<u8>>),
    Array(Vec<Frame>),
}

/// A connection reading replies and pushes, bounded.
struct Conn {
    stream: BufStream<TcpStream>,
    line: Vec<u8>,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Result<Conn, String> {
        let stream = TcpStream::connect(addr).await.map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        stream.set_nodelay(true).map_err(|e| format!("{addr}: {e}"))?;
        Ok(Conn { stream: BufStream::new(stream), line: Vec::new() })
    }

    async fn send(&mut self, args: &[&[u8]]) -> Result<(), String> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            out.extend_from_slice(arg);
            out.extend_from_slice(b"\r\n");
        }
        self.stream.write_all(&out).await.map_err(|e| e.to_string())?;
        self.stream.flush().await.map_err(|e| e.to_string())
    }

    async fn read(&mut self) -> Result<Frame, String> {
        self.read_at(0).await
    }

    async fn read_at(&mut self, depth: u32) -> Result<Frame, String> {
        self.line.clear();
        let read = (&mut self.stream)
            .take(LINE_BYTES_MAX as u64)
            .read_until(b'\n', &mut self.line)
            .await
            .map_err(|e| e.to_string())?;
        if read == 0 {
            return Err("connection closed".into());
        }
        let body = self.line.strip_suffix(b"\r\n").ok_or("reply line without CRLF or too long")?;
        let number = || -> Result<i64, String> {
            std::str::from_utf8(body.get(1..).unwrap_or_default())
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| "bad length or integer".to_string())
        };
        match body.first() {
            Some(b'+') => Ok(Frame::Simple),
            Some(b'-') => Ok(Frame::Error(String::from_utf8_lossy(body.get(1..).unwrap_or_default()).into())),
            Some(b':') => number().map(|_| Frame::Integer),
            Some(b'$') => {
                let Ok(len) = usize::try_from(number()?) else { return Ok(Frame::Bulk(None)) };
                if len > BULK_BYTES_MAX {
                    return Err(format!("bulk string over {BULK_BYTES_MAX} bytes"));
                }
                let mut data = vec![0; len + 2];
                self.stream.read_exact(&mut data).await.map_err(|e| e.to_string())?;
                data.truncate(len);
                Ok(Frame::Bulk(Some(data)))
            }
            Some(b'*') if depth == 0 => {
                let len = number()?;
                if len > ARRAY_ELEMENTS_MAX {
                    return Err(format!("array of over {ARRAY_ELEMENTS_MAX} elements"));
                }
                let mut items = Vec::new();
                for _ in 0..len.max(0) {
                    items.push(Box::pin(self.read_at(depth + 1)).await?);
                }
                Ok(Frame::Array(items))
            }
            _ => Err("unexpected reply type".into()),
        }
    }
}

/// What the publisher and the subscribers share.
struct Run {
    channel: Vec<u8>,
    started: Instant,
    /// Messages sent at or after this many nanoseconds since `started` are measured.
    measure_from_ns: u64,
    /// Measured messages published so far.
    published: AtomicU64,
}

/// One subscriber's record.
struct Received {
    same_node: bool,
    latencies: Histogram<u64>,
}

/// Runs the benchmark and prints its report.
pub fn run(args: PubSubArgs) -> Result<(), String> {
    let endpoints = endpoints(&args.target)?;
    let publisher_addr = *endpoints.first().ok_or("--target: no endpoint given")?;
    // One thread, as `ppdb bench`'s default: the servers measured share the machine.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let payload_bytes = args.payload_bytes as usize;
    let interval = Duration::from_secs(1) / args.rate.clamp(1, RATE_MAX);
    let measured = runtime.block_on(async {
        let started = Instant::now();
        let channel = format!("ppdb-bench:pubsub:{}", std::process::id()).into_bytes();
        let mut subscribers = Vec::new();
        for &addr in &endpoints {
            let mut conn = Conn::open(addr).await?;
            conn.send(&[b"SUBSCRIBE", &channel]).await?;
            match conn.read().await? {
                Frame::Array(items) if items.len() == 3 => {}
                Frame::Error(text) => return Err(format!("{addr}: SUBSCRIBE answered -{text}")),
                other => return Err(format!("{addr}: SUBSCRIBE answered {other:?}")),
            }
            subscribers.push((addr == publisher_addr, conn));
        }
        let mut publisher = Conn::open(publisher_addr).await?;
        wait_until_subscribed(&mut publisher, &mut subscribers, &channel).await?;
        let measure_from = started.elapsed() + Duration::from_secs(args.warmup_secs);
        let run = Arc::new(Run {
            channel,
            started,
            measure_from_ns: nanos(measure_from),
            published: AtomicU64::new(0),
        });
        let stop_at = started + measure_from + Duration::from_secs(args.duration_secs);
        let tasks: Vec<_> = subscribers
            .into_iter()
            .map(|(same_node, conn)| {
                tokio::spawn(subscribe(Arc::clone(&run), conn, same_node, stop_at + DRAIN))
            })
            .collect();
        publish(&run, &mut publisher, interval, payload_bytes, stop_at).await?;
        let mut received = Vec::new();
        for task in tasks {
            received.push(task.await.map_err(|e| format!("a subscriber failed: {e}"))??);
        }
        Ok::<_, String>((run.published.load(Ordering::Relaxed), received))
    })?;
    report(&args, &endpoints, measured.0, &measured.1)
}

/// Parses `resp://a:1,resp://b:2` (or `redis://`) into its addresses.
fn endpoints(target: &str) -> Result<Vec<SocketAddr>, String> {
    let mut endpoints = Vec::new();
    for item in target.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let addr = item
            .strip_prefix("resp://")
            .or_else(|| item.strip_prefix("redis://"))
            .ok_or_else(|| format!("--target: `{item}` is not resp://HOST:PORT"))?;
        let resolved = std::net::ToSocketAddrs::to_socket_addrs(addr)
            .map_err(|e| format!("--target: cannot resolve `{addr}`: {e}"))?
            .next()
            .ok_or_else(|| format!("--target: `{addr}` resolves to no address"))?;
        endpoints.push(resolved);
    }
    Ok(endpoints)
}

/// Publishes probes until every subscriber has received one.
async fn wait_until_subscribed(
    publisher: &mut Conn,
    subscribers: &mut [(bool, Conn)],
    channel: &[u8],
) -> Result<(), String> {
    let deadline = Instant::now() + READY_TIMEOUT;
    for (_, conn) in subscribers.iter_mut() {
        loop {
            if Instant::now() > deadline {
                return Err("the subscriptions did not reach every node in time".into());
            }
            publisher.send(&[b"PUBLISH", channel, b"probe"]).await?;
            publisher.read().await?;
            match tokio::time::timeout(Duration::from_millis(100), conn.read()).await {
                Ok(Ok(_)) => break,
                Ok(Err(e)) => return Err(e),
                Err(_) => continue,
            }
        }
    }
    // Probes still in flight to the other subscribers are skipped by their readers.
    Ok(())
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// Publishes one message every `interval` until `stop_at`, each carrying its send time.
async fn publish(
    run: &Run,
    conn: &mut Conn,
    interval: Duration,
    payload_bytes: usize,
    stop_at: Instant,
) -> Result<(), String> {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if Instant::now() >= stop_at {
            return Ok(());
        }
        let sent_ns = nanos(run.started.elapsed());
        let mut payload = format!("t={sent_ns};").into_bytes();
        payload.resize(payload.len().max(payload_bytes), b'.');
        conn.send(&[b"PUBLISH", &run.channel, &payload]).await?;
        match conn.read().await? {
            Frame::Integer => {}
            Frame::Error(text) => return Err(format!("PUBLISH answered -{text}")),
            other => return Err(format!("PUBLISH answered {other:?}")),
        }
        if sent_ns >= run.measure_from_ns {
            run.published.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Reads messages until `until`, recording the latency of each measured one.
async fn subscribe(
    run: Arc<Run>,
    mut conn: Conn,
    same_node: bool,
    until: Instant,
) -> Result<Received, String> {
    let mut latencies =
        Histogram::<u64>::new_with_bounds(1, LATENCY_US_MAX, 3).map_err(|e| format!("histogram: {e}"))?;
    loop {
        let frame = match tokio::time::timeout_at(until.into(), conn.read()).await {
            Err(_) => return Ok(Received { same_node, latencies }),
            Ok(frame) => frame?,
        };
        let received_ns = nanos(run.started.elapsed());
        let Frame::Array(items) = frame else { continue };
        let Some(Frame::Bulk(Some(payload))) = items.get(2) else { continue };
        let Some(sent_ns) = sent_time(payload) else { continue };
        if sent_ns >= run.measure_from_ns {
            let micros = received_ns.saturating_sub(sent_ns) / 1000;
            latencies.saturating_record(micros.clamp(1, LATENCY_US_MAX));
        }
    }
}

/// The send time a message's payload carries (`t=<ns>;...`); `None` for a probe.
fn sent_time(payload: &[u8]) -> Option<u64> {
    let rest = payload.strip_prefix(b"t=")?;
    let end = rest.iter().position(|b| *b == b';')?;
    std::str::from_utf8(rest.get(..end)?).ok()?.parse().ok()
}

/// Prints the figures of the subscribers on the publisher's node and on the others.
fn report(
    args: &PubSubArgs,
    endpoints: &[SocketAddr],
    published: u64,
    received: &[Received],
) -> Result<(), String> {
    let mut groups = Vec::new();
    for (name, same_node) in [("same_node", true), ("other_nodes", false)] {
        let mut merged =
            Histogram::<u64>::new_with_bounds(1, LATENCY_US_MAX, 3).map_err(|e| format!("histogram: {e}"))?;
        let mut subscribers = 0u64;
        for r in received.iter().filter(|r| r.same_node == same_node) {
            merged.add(&r.latencies).map_err(|e| format!("histogram: {e}"))?;
            subscribers += 1;
        }
        if subscribers > 0 {
            groups.push((name, subscribers, merged));
        }
    }
    if args.json {
        let mut line = serde_json::json!({
            "target": args.target,
            "rate": args.rate,
            "duration_secs": args.duration_secs,
            "payload_bytes": args.payload_bytes,
            "published": published,
        });
        for (name, subscribers, h) in &groups {
            line[*name] = serde_json::json!({
                "subscribers": subscribers,
                "expected": published * subscribers,
                "received": h.len(),
                "latency_us_p50": h.value_at_quantile(0.50),
                "latency_us_p99": h.value_at_quantile(0.99),
                "latency_us_max": h.max(),
            });
        }
        println!("{line}");
        return Ok(());
    }
    println!(
        "publish through {} at {}/s for {} s ({published} messages of {} bytes), subscribers on {} endpoints",
        endpoints.first().map(ToString::to_string).unwrap_or_default(),
        args.rate,
        args.duration_secs,
        args.payload_bytes,
        endpoints.len()
    );
    let ms = |us: u64| us as f64 / 1000.0;
    for (name, subscribers, h) in &groups {
        println!(
            "  {:<12} received {}/{}  p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
            name.replace('_', " "),
            h.len(),
            published * subscribers,
            ms(h.value_at_quantile(0.50)),
            ms(h.value_at_quantile(0.99)),
            ms(h.max()),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_carries_its_send_time_and_a_probe_none() {
        assert_eq!(sent_time(b"t=12345;......"), Some(12345));
        assert_eq!(sent_time(b"probe"), None);
        assert_eq!(sent_time(b"t=12x;"), None);
        assert_eq!(sent_time(b"t=123"), None);
    }
}

//! Pub/sub against a real Redis 7 and across a real cluster.
//!
//! The same script of subscriptions and publications runs on PPDB and on redis-server, every
//! frame compared as sent (RESP2's subscribed context, RESP3's pushes, pattern matching,
//! message order, PUBSUB's introspection). Then three nodes: a subscriber on each receives
//! what is published through any node, in order, and a node that restarts can be subscribed
//! to again; the publish-to-delivery latency across nodes is measured and printed. A
//! subscriber that reads nothing is disconnected by the pub/sub output buffer limit.

use crate::differential::resp::{Reply, RespConnection};
use crate::reference::Reference;
use crate::support::{wait_for, ClusterOptions, TestCluster};
use std::time::{Duration, Instant};

/// Messages each node publishes in the order check.
const ORDERED_MESSAGES: usize = 200;
/// Publish-to-delivery round trips measured.
const LATENCY_SAMPLES: usize = 400;

fn words(command: &str) -> Vec<Vec<u8>> {
    command.split_whitespace().map(|w| w.as_bytes().to_vec()).collect()
}

/// Runs `script` on PPDB's connections and on Redis's, comparing every frame read. A line is
/// `A:n command...` (connection A sends the command, then n frames are read), `A<n` (n frames
/// are read, sent by the server unasked), or `A! command...` (sent and its one reply read
/// without comparing: HELLO names the server).
fn assert_same_frames(ppdb: &mut [RespConnection], redis: &mut [RespConnection], script: &str) {
    for line in script.lines().map(str::trim).filter(|line| !line.is_empty()) {
        let (head, command) = line.split_once(' ').unwrap_or((line, ""));
        let who = usize::from(head.as_bytes()[0] - b'A');
        let (frames, compare, send) = match &head[1..] {
            "!" => (1, false, true),
            rest if rest.starts_with(':') => (rest[1..].parse().expect("frame count"), true, true),
            rest if rest.starts_with('<') => (rest[1..].parse().expect("frame count"), true, false),
            other => panic!("`{line}`: `{other}` is not :n, <n or !"),
        };
        for connection in [&mut ppdb[who], &mut redis[who]] {
            if send {
                connection.send(&words(command));
            }
        }
        for index in 0..frames {
            let ours = ppdb[who].receive().unwrap_or_else(|e| panic!("`{line}`: PPDB's frame {index}: {e}"));
            let theirs =
                redis[who].receive().unwrap_or_else(|e| panic!("`{line}`: Redis's frame {index}: {e}"));
            if compare {
                assert_eq!(
                    ours.to_string(),
                    theirs.to_string(),
                    "`{line}`, frame {index}: PPDB (left), Redis (right)"
                );
            }
        }
    }
}

#[test]
fn subscriptions_messages_and_introspection_read_as_redis_7() {
    let cluster = TestCluster::start(ClusterOptions::default());
    let reference = Reference::start();
    // Every connection on one node: PUBLISH counts the receivers of the node that served it.
    let mut ppdb: Vec<RespConnection> =
        (0..2).map(|_| RespConnection::connect(cluster.node(1).client_addr)).collect();
    let mut redis: Vec<RespConnection> = (0..2).map(|_| RespConnection::connect(reference.addr())).collect();
    let resp2 = "
        A:1 UNSUBSCRIBE
        A:1 PUNSUBSCRIBE
        A:1 UNSUBSCRIBE never
        A:3 SUBSCRIBE c1 c2 c1
        A:1 GET k
        A:1 CLIENT LIST
        A:1 GET
        A:1 NOSUCH
        A:1 PING
        A:1 PING hi
        A:2 PSUBSCRIBE c* h?llo
        A:1 SSUBSCRIBE s
        B:1 PUBLISH c1 m1
        A<2
        B:1 PUBLISH hello m2
        B:1 PUBLISH hallo m3
        B:1 PUBLISH hllo m4
        B:1 PUBLISH s shard-is-apart
        B:1 SPUBLISH s m5
        A<3
        B:1 PUBSUB NUMSUB c1 c2 zz
        B:1 PUBSUB NUMPAT
        B:1 PUBSUB CHANNELS c1
        B:1 PUBSUB CHANNELS h*
        B:1 PUBSUB SHARDCHANNELS
        B:1 PUBSUB SHARDNUMSUB s t
        B:1 PUBSUB foo
        B:1 PUBSUB CHANNELS a b
        B:1 PUBSUB HELP
        A:1 UNSUBSCRIBE c2
        A:1 PUNSUBSCRIBE h?llo
        A:1 PUNSUBSCRIBE c*
        A:1 SUNSUBSCRIBE
        A:1 GET k
        A:1 UNSUBSCRIBE c1
        A:1 GET k
        A:1 PING
        A:1 MULTI
        A:1 SUBSCRIBE z
        A:1 EXEC
        A:1 PING
        A:1 RESET
        A:1 PSUBSCRIBE a[b
        B:1 PUBLISH ab 1
        B:1 PUBLISH a[b 2
        A<1
        A:1 RESET
        A:1 PING
    ";
    assert_same_frames(&mut ppdb, &mut redis, resp2);
    let resp3 = "
        A! HELLO 3
        A:1 SUBSCRIBE q
        A:1 GET k
        A:1 PING
        B:1 PUBLISH q v
        A<1
        A:2 PUBLISH q to-myself
        A:1 SSUBSCRIBE s
        B:1 SPUBLISH s m
        A<1
        A:1 SUNSUBSCRIBE
        A:1 UNSUBSCRIBE
        A:1 UNSUBSCRIBE
        A:1 PUNSUBSCRIBE
    ";
    assert_same_frames(&mut ppdb, &mut redis, resp3);
    // Message order: one publisher's messages arrive in the order it sent them.
    let mut ordered = String::from("A:1 RESET\nA:1 SUBSCRIBE order\n");
    for i in 0..50 {
        ordered.push_str(&format!("B:0 PUBLISH order m{i}\n"));
    }
    ordered.push_str("B<50\nA<50\n");
    assert_same_frames(&mut ppdb, &mut redis, &ordered);
}

/// A subscriber to `channel` on `node`, its confirmation read.
fn subscriber(cluster: &TestCluster, node: u64, channel: &str) -> RespConnection {
    let mut connection = RespConnection::connect(cluster.node(node).client_addr);
    let confirmation = connection.call(&words(&format!("SUBSCRIBE {channel}")));
    assert_eq!(confirmation.to_string(), format!("[\"subscribe\", \"{channel}\", (integer) 1]"));
    connection
}

/// The message `connection` receives next, as `(channel, message)`.
fn next_message(connection: &mut RespConnection) -> (String, String) {
    match connection.receive() {
        Ok(Reply::Array(items)) if items.len() == 3 && items[0] == Reply::Bulk(b"message".to_vec()) => {
            let text = |reply: &Reply| match reply {
                Reply::Bulk(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                other => panic!("not a bulk string: {other}"),
            };
            (text(&items[1]), text(&items[2]))
        }
        other => panic!("expected a message, received {other:?}"),
    }
}

/// The `p`-th percentile of `samples` (sorted).
fn percentile(samples: &[Duration], p: usize) -> Duration {
    samples[(samples.len() * p / 100).min(samples.len() - 1)]
}

#[test]
fn a_message_published_through_any_node_reaches_a_subscriber_on_every_node() {
    let mut cluster = TestCluster::start(ClusterOptions::default());
    let ids = cluster.ids();
    let mut subscribers: Vec<RespConnection> =
        ids.iter().map(|&id| subscriber(&cluster, id, "news")).collect();
    let mut publishers: Vec<RespConnection> =
        ids.iter().map(|&id| RespConnection::connect(cluster.node(id).client_addr)).collect();
    // The links between nodes come up with the cluster; a message sent before a link is up
    // is lost (at most once), so wait until one from every node reaches every node.
    for (from, publisher) in publishers.iter_mut().enumerate() {
        let mut attempt = 0;
        let reached_all = wait_for(Duration::from_secs(20), || {
            attempt += 1;
            let probe = format!("probe-{from}-{attempt}");
            publisher.call(&words(&format!("PUBLISH news {probe}")));
            let mut all = true;
            for subscriber in subscribers.iter_mut() {
                // Probes lost before the links were up never arrive; read up to this one.
                all &= std::iter::from_fn(|| next_message_within(subscriber, Duration::from_secs(1)))
                    .any(|message| message == probe);
            }
            all.then_some(())
        });
        reached_all.unwrap_or_else(|| {
            panic!("a message published through node {} never reached every node", ids[from])
        });
    }
    // Each node's PUBLISH counts its own subscriber (Redis Cluster's semantics); every node's
    // subscriber receives every publisher's messages, each publisher's in order.
    for (from, publisher) in publishers.iter_mut().enumerate() {
        for i in 0..ORDERED_MESSAGES {
            publisher.send(&words(&format!("PUBLISH news {from}-{i}")));
        }
        for _ in 0..ORDERED_MESSAGES {
            assert_eq!(publisher.receive(), Ok(Reply::Integer(1)), "PUBLISH through node {}", ids[from]);
        }
        for (to, subscriber) in subscribers.iter_mut().enumerate() {
            for i in 0..ORDERED_MESSAGES {
                let expected = ("news".to_string(), format!("{from}-{i}"));
                assert_eq!(next_message(subscriber), expected, "node {} to node {}", ids[from], ids[to]);
            }
        }
    }
    // Publish-to-delivery latency from node 1 to a subscriber on node 2.
    let mut samples = Vec::with_capacity(LATENCY_SAMPLES);
    for i in 0..LATENCY_SAMPLES {
        let started = Instant::now();
        publishers[0].call(&words(&format!("PUBLISH news latency-{i}")));
        assert_eq!(next_message(&mut subscribers[1]).1, format!("latency-{i}"));
        samples.push(started.elapsed());
        for (index, subscriber) in subscribers.iter_mut().enumerate() {
            if index != 1 {
                next_message(subscriber);
            }
        }
    }
    samples.sort();
    println!(
        "publish-to-delivery across nodes (node 1 to node 2, {LATENCY_SAMPLES} messages, test build): \
         p50 {} us, p99 {} us",
        percentile(&samples, 50).as_micros(),
        percentile(&samples, 99).as_micros()
    );
    // A node that restarts loses its subscribers (its connections end); subscribed again,
    // they receive what is published through another node.
    drop(subscribers);
    cluster.restart(3);
    let mut attempt = 0;
    let mut again = wait_for(Duration::from_secs(30), || {
        attempt += 1;
        std::net::TcpStream::connect(cluster.node(3).client_addr).ok()?;
        let mut connection = RespConnection::connect(cluster.node(3).client_addr);
        connection.call(&words("SUBSCRIBE news"));
        let marker = format!("after-restart-{attempt}");
        publishers[0].call(&words(&format!("PUBLISH news {marker}")));
        // Until the link to the restarted node is up again, a message to it is lost: retry.
        (next_message_within(&mut connection, Duration::from_secs(2)) == Some(marker)).then_some(connection)
    })
    .expect("a subscriber of the restarted node receives messages published through node 1");
    // Node 2's link to the restarted node comes up on its own schedule: until it does, its
    // messages to it are lost (at most once), so retry until one arrives.
    let mut attempt = 0;
    let through_node_2 = wait_for(Duration::from_secs(30), || {
        attempt += 1;
        let marker = format!("through-node-2-{attempt}");
        publishers[1].call(&words(&format!("PUBLISH news {marker}")));
        std::iter::from_fn(|| next_message_within(&mut again, Duration::from_secs(2)))
            .any(|message| message == marker)
            .then_some(())
    });
    through_node_2.expect("a subscriber of the restarted node receives messages published through node 2");
}

/// The next message's text, if one arrives within `deadline`.
fn next_message_within(connection: &mut RespConnection, deadline: Duration) -> Option<String> {
    connection.set_read_timeout(deadline);
    let received = connection.receive().ok();
    connection.set_read_timeout(Duration::from_secs(15));
    match received? {
        Reply::Array(items) if items.len() == 3 => match &items[2] {
            Reply::Bulk(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
            _ => None,
        },
        _ => None,
    }
}

#[test]
fn a_subscriber_that_reads_nothing_is_closed_by_the_pubsub_output_limit() {
    let cluster = TestCluster::start(ClusterOptions { nodes: 1, ..ClusterOptions::default() });
    let addr = cluster.node(1).client_addr;
    let _idle = subscriber(&cluster, 1, "flood");
    let mut publisher = RespConnection::connect(addr);
    let mut list = || match publisher.call(&words("CLIENT LIST TYPE pubsub")) {
        Reply::Bulk(text) => String::from_utf8_lossy(&text).into_owned(),
        other => panic!("CLIENT LIST answered {other}"),
    };
    assert!(list().contains("flags=P db=0 sub=1 psub=0 ssub=0"), "{}", list());
    // 48 MiB of messages to a subscriber that takes none: over the 32 MiB hard limit, even
    // with what the kernel's socket buffers absorb.
    let message = "x".repeat(1 << 20);
    let mut publisher = RespConnection::connect(addr);
    for _ in 0..48 {
        publisher.call(&[b"PUBLISH".to_vec(), b"flood".to_vec(), message.as_bytes().to_vec()]);
    }
    let mut observer = RespConnection::connect(addr);
    let gone = wait_for(Duration::from_secs(20), || match observer.call(&words("CLIENT LIST TYPE pubsub")) {
        Reply::Bulk(text) if text.is_empty() => Some(()),
        _ => None,
    });
    assert!(gone.is_some(), "the subscriber that reads nothing is still connected");
    assert_eq!(observer.call(&words("PUBSUB NUMSUB flood")).to_string(), "[\"flood\", (integer) 0]");
}

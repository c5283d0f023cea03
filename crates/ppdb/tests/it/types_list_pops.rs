//! List pops and blocking pops: replies byte for byte as redis-server 7.0.15's (RESP2 and
//! RESP3), blocked clients served by later pushes through any node, timeouts, and no element
//! lost or delivered twice when a shard's leader is killed while clients are blocked.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::reference::Reference;
use crate::support::{ClusterOptions, TestCluster};

/// One shard, so that multi-key pops may take any keys.
fn one_shard_cluster() -> TestCluster {
    TestCluster::start(ClusterOptions { shards: 1, ..ClusterOptions::default() })
}

/// A connection that sends commands and reads back each reply's raw bytes.
struct Raw {
    reader: BufReader<TcpStream>,
}

impl Raw {
    fn connect(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(15))).expect("read timeout");
        Raw { reader: BufReader::new(stream) }
    }

    /// The raw reply to `command` (words split on whitespace).
    fn call(&mut self, command: &str) -> String {
        let words: Vec<&str> = command.split_whitespace().collect();
        let mut request = format!("*{}\r\n", words.len());
        for word in &words {
            request.push_str(&format!("${}\r\n{word}\r\n", word.len()));
        }
        self.reader.get_mut().write_all(request.as_bytes()).expect("send");
        let mut reply = Vec::new();
        self.read_value(&mut reply);
        String::from_utf8_lossy(&reply).into_owned()
    }

    /// Reads one RESP2/RESP3 value into `out`.
    fn read_value(&mut self, out: &mut Vec<u8>) {
        let mut line = Vec::new();
        self.reader.read_until(b'\n', &mut line).expect("reply line");
        out.extend_from_slice(&line);
        assert!(line.ends_with(b"\r\n"), "connection closed mid-reply");
        let text = String::from_utf8_lossy(&line[1..line.len() - 2]).into_owned();
        let len: i64 = text.parse().unwrap_or(-1);
        match line.first() {
            Some(b'$' | b'=' | b'!') if len >= 0 => {
                let mut body = vec![0; len as usize + 2];
                self.reader.read_exact(&mut body).expect("bulk body");
                out.extend_from_slice(&body);
            }
            Some(b'*' | b'~' | b'>') => (0..len.max(0)).for_each(|_| self.read_value(out)),
            Some(b'%') => (0..len.max(0) * 2).for_each(|_| self.read_value(out)),
            _ => {}
        }
    }
}

/// Sends each line of `script` to both servers and panics at the first reply whose bytes
/// differ.
fn assert_same_bytes(ppdb: &mut Raw, redis: &mut Raw, script: &str) {
    for command in script.lines().map(str::trim).filter(|line| !line.is_empty()) {
        let (ours, theirs) = (ppdb.call(command), redis.call(command));
        assert_eq!(ours, theirs, "`{command}`: PPDB's reply (left) differs from Redis's (right)");
    }
}

const POPS_SCRIPT: &str = "
    RPUSH l a b c d e f
    LPOP l
    RPOP l
    LPOP l 0
    LPOP l 2
    RPOP l 1
    RPOP l 9
    LPOP l
    LPOP l 0
    LPOP l 3
    RPOP l -1
    LPOP l x
    LPOP l 1 2
    SET s v
    LPOP s
    LPOP s 0
    RPOP s 2
    RPUSH m1 1 2 3
    RPUSH m2 x
    LMPOP 3 none m1 m2 LEFT
    LMPOP 2 m1 m2 RIGHT COUNT 10
    LMPOP 2 m1 m2 left count 5
    LMPOP 1 m1 LEFT
    LMPOP 2 none s LEFT
    LMPOP 0 m1 LEFT
    LMPOP -1 m1 LEFT
    LMPOP x m1 LEFT
    LMPOP 2 m1 LEFT
    LMPOP 1 m1 UP
    LMPOP 1 m1 LEFT COUNT
    LMPOP 1 m1 LEFT COUNT 0
    LMPOP 1 m1 LEFT COUNT 1 COUNT 1
    LMPOP 1 m1 LEFT FOO 1
    RPUSH src 1 2 3
    LMOVE src dst LEFT RIGHT
    LMOVE src dst RIGHT LEFT
    LMOVE dst dst LEFT RIGHT
    LPOP dst 5
    LMOVE src src RIGHT LEFT
    LMOVE src s LEFT LEFT
    LMOVE s dst LEFT LEFT
    LMOVE none s LEFT LEFT
    LMOVE src dst UP LEFT
    RPOPLPUSH src dst
    RPOPLPUSH src dst
    RPOPLPUSH dst dst
    BLPOP none s 0
    BLPOP none dst 0
    BRPOP none dst 1
    BLPOP none -1
    BLPOP none abc
    BLPOP none nan
    BLPOP none inf
    BLPOP none 1e100
    BLMPOP 0 1 s LEFT
    BLMPOP x 1 none LEFT
    BLMPOP 0 0 none LEFT
    BLMOVE none dst LEFT LEFT -1
    BLMOVE none dst UP LEFT 0
    BRPOPLPUSH none dst -1
    RPUSH dst a b c
    BLMPOP 0 2 none dst RIGHT COUNT 2
    BLMOVE dst d2 LEFT LEFT 0
    BRPOPLPUSH d2 dst 0
    MULTI
    BLPOP none 0
    BRPOP none 0
    BLMPOP 0 1 none LEFT
    BLMOVE none dst LEFT LEFT 0
    BRPOPLPUSH none dst 0
    BLPOP dst 0
    BLPOP none -1
    EXEC
    TYPE dst
    EXISTS d2
";

#[test]
fn list_pops_answer_byte_for_byte_as_redis_does_in_resp2_and_resp3() {
    let cluster = one_shard_cluster();
    let reference = Reference::start();
    for protocol in ["2", "3"] {
        let mut ppdb = Raw::connect(cluster.node(1).client_addr);
        let mut redis = Raw::connect(reference.addr());
        ppdb.call(&format!("HELLO {protocol}"));
        redis.call(&format!("HELLO {protocol}"));
        assert_same_bytes(&mut ppdb, &mut redis, "FLUSHALL");
        assert_same_bytes(&mut ppdb, &mut redis, POPS_SCRIPT);
    }
}

#[test]
fn timeouts_are_honoured_with_the_nil_array() {
    let cluster = one_shard_cluster();
    for (protocol, nil) in [("2", "*-1\r\n"), ("3", "_\r\n")] {
        let mut client = Raw::connect(cluster.node(2).client_addr);
        client.call(&format!("HELLO {protocol}"));
        for command in
            ["BLPOP t1 t2 0.3", "BRPOP t1 0.3", "BLMOVE t1 t2 LEFT LEFT 0.3", "BLMPOP 0.3 1 t1 LEFT"]
        {
            let started = Instant::now();
            assert_eq!(client.call(command), nil, "{command}");
            let waited = started.elapsed();
            assert!(waited >= Duration::from_millis(300), "{command} waited only {waited:?}");
            assert!(waited < Duration::from_secs(5), "{command} waited {waited:?}");
        }
    }
}

/// Runs `command` on a new connection to `addr` in a thread; its raw reply.
fn in_thread(addr: SocketAddr, command: &'static str) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || Raw::connect(addr).call(command))
}

#[test]
fn blocked_clients_are_served_by_later_pushes_through_any_node_first_blocked_first() {
    let cluster = one_shard_cluster();
    let leader = cluster.wait_ready()[&1];
    let follower = cluster.ids().into_iter().find(|&id| id != leader).expect("a follower");
    // Blocked on a follower, served by a push through the leader; and the other way round.
    for (waiter, pusher) in [(follower, leader), (leader, follower)] {
        let blocked = in_thread(cluster.node(waiter).client_addr, "BLPOP q1 q2 0");
        // Whether or not the client is blocked yet, it gets the element; the pause makes it so.
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(Raw::connect(cluster.node(pusher).client_addr).call("RPUSH q2 x"), ":1\r\n");
        assert_eq!(blocked.join().expect("blocked client"), "*2\r\n$2\r\nq2\r\n$1\r\nx\r\n");
    }
    // BLMOVE and BLMPOP wait too; the source's creation serves them.
    let moved = in_thread(cluster.node(follower).client_addr, "BLMOVE src dst RIGHT LEFT 0");
    std::thread::sleep(Duration::from_millis(300));
    Raw::connect(cluster.node(leader).client_addr).call("RPUSH src a b");
    assert_eq!(moved.join().expect("blmove"), "$1\r\nb\r\n");
    let mut client = Raw::connect(cluster.node(leader).client_addr);
    assert_eq!(client.call("LPOP dst 5"), "*1\r\n$1\r\nb\r\n");
    assert_eq!(client.call("LPOP src 5"), "*1\r\n$1\r\na\r\n");
    // First blocked, first served: three clients on one node, one element at a time.
    let first = in_thread(cluster.node(follower).client_addr, "BRPOP fifo 0");
    std::thread::sleep(Duration::from_millis(300));
    let second = in_thread(cluster.node(follower).client_addr, "BRPOP fifo 0");
    std::thread::sleep(Duration::from_millis(300));
    let third = in_thread(cluster.node(follower).client_addr, "BRPOP fifo 0");
    std::thread::sleep(Duration::from_millis(300));
    client.call("RPUSH fifo 1 2");
    assert_eq!(first.join().expect("first"), "*2\r\n$4\r\nfifo\r\n$1\r\n2\r\n");
    assert_eq!(second.join().expect("second"), "*2\r\n$4\r\nfifo\r\n$1\r\n1\r\n");
    client.call("RPUSH fifo 3");
    assert_eq!(third.join().expect("third"), "*2\r\n$4\r\nfifo\r\n$1\r\n3\r\n");
    assert_eq!(client.call("EXISTS fifo src dst"), ":0\r\n");
}

/// Kill -9 of the shard's leader while consumers are blocked in BLPOP (on the other nodes)
/// and producers push distinct elements through every node: every element whose push was
/// acknowledged is delivered exactly once, one whose push failed at most once, and nothing
/// else is delivered.
#[test]
fn a_killed_leader_loses_and_duplicates_no_element_of_blocked_pops() {
    const ELEMENTS: usize = 600;
    const PRODUCERS: usize = 3;
    const CONSUMERS_PER_NODE: usize = 2;
    let mut cluster = one_shard_cluster();
    let leader = cluster.wait_ready()[&1];
    let survivors: Vec<u64> = cluster.ids().into_iter().filter(|&id| id != leader).collect();
    let addrs: BTreeMap<u64, SocketAddr> =
        cluster.ids().into_iter().map(|id| (id, cluster.node(id).client_addr)).collect();

    let done = Arc::new(AtomicBool::new(false));
    let delivered = Arc::new(Mutex::new(Vec::<String>::new()));
    let consumer_errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let consumers: Vec<_> = survivors
        .iter()
        .flat_map(|&id| std::iter::repeat_n(addrs[&id], CONSUMERS_PER_NODE))
        .map(|addr| {
            let (done, delivered, errors) = (done.clone(), delivered.clone(), consumer_errors.clone());
            std::thread::spawn(move || {
                let mut client = Raw::connect(addr);
                loop {
                    let reply = client.call("BLPOP queue 5");
                    match reply.strip_prefix("*2\r\n$5\r\nqueue\r\n") {
                        Some(element) => {
                            let element = element.split("\r\n").nth(1).unwrap_or_default().to_owned();
                            delivered.lock().unwrap().push(element);
                        }
                        None if reply == "*-1\r\n" => {
                            if done.load(Ordering::Acquire) {
                                return;
                            }
                        }
                        None => errors.lock().unwrap().push(reply),
                    }
                }
            })
        })
        .collect();

    let acknowledged = Arc::new(Mutex::new(BTreeSet::<String>::new()));
    let uncertain = Arc::new(Mutex::new(BTreeSet::<String>::new()));
    let pushed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let nodes: Vec<SocketAddr> = addrs.values().copied().collect();
            let (acknowledged, uncertain, pushed) = (acknowledged.clone(), uncertain.clone(), pushed.clone());
            std::thread::spawn(move || {
                let mut node = p;
                let mut client = Raw::connect(nodes[node % nodes.len()]);
                for i in 0..ELEMENTS / PRODUCERS {
                    let element = format!("p{p}-{i}");
                    let reply = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        client.call(&format!("RPUSH queue {element}"))
                    }));
                    match reply {
                        Ok(reply) if reply.starts_with(':') => acknowledged.lock().unwrap().insert(element),
                        _ => {
                            // An error or a dead connection: the push may or may not have happened.
                            node += 1;
                            client = loop {
                                match TcpStream::connect(nodes[node % nodes.len()]) {
                                    Ok(_) => break Raw::connect(nodes[node % nodes.len()]),
                                    Err(_) => node += 1,
                                }
                            };
                            uncertain.lock().unwrap().insert(element)
                        }
                    };
                    pushed.fetch_add(1, Ordering::AcqRel);
                    std::thread::sleep(Duration::from_millis(2));
                }
            })
        })
        .collect();

    crate::support::wait_for(Duration::from_secs(60), || {
        (pushed.load(Ordering::Acquire) >= ELEMENTS / 3).then_some(())
    })
    .expect("a third of the elements pushed");
    cluster.kill(leader);
    for producer in producers {
        producer.join().expect("producer");
    }
    let new_leader = crate::support::wait_for(Duration::from_secs(30), || {
        let leaders = cluster.leaders()?;
        leaders.get(&1).copied()
    })
    .expect("a new leader");
    assert_ne!(new_leader, leader);
    done.store(true, Ordering::Release);
    for consumer in consumers {
        consumer.join().expect("consumer");
    }
    // What no consumer took is still in the list: delivered by this drain.
    let mut drain = Raw::connect(addrs[&new_leader]);
    let mut delivered = Arc::try_unwrap(delivered).expect("consumers done").into_inner().unwrap();
    let by_consumers = delivered.len();
    loop {
        let reply = drain.call("LPOP queue");
        match reply.strip_prefix('$') {
            Some(bulk) if !bulk.starts_with("-1") => {
                delivered.push(bulk.split("\r\n").nth(1).unwrap_or_default().to_owned())
            }
            _ => break,
        }
    }

    let acknowledged = acknowledged.lock().unwrap().clone();
    let uncertain = uncertain.lock().unwrap().clone();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for element in &delivered {
        *counts.entry(element.as_str()).or_default() += 1;
    }
    let twice: Vec<_> = counts.iter().filter(|(_, &n)| n > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    let lost: Vec<_> = acknowledged.iter().filter(|e| !counts.contains_key(e.as_str())).collect();
    assert!(lost.is_empty(), "acknowledged but never delivered: {lost:?}");
    let unknown: Vec<_> =
        counts.keys().filter(|e| !acknowledged.contains(**e) && !uncertain.contains(**e)).collect();
    assert!(unknown.is_empty(), "delivered but never pushed: {unknown:?}");
    assert_eq!(acknowledged.len() + uncertain.len(), ELEMENTS / PRODUCERS * PRODUCERS);
    let errors = consumer_errors.lock().unwrap().clone();
    assert!(errors.is_empty(), "blocked consumers answered errors: {errors:?}");
    eprintln!(
        "kill -9 of leader {leader}: {} pushes acknowledged, {} uncertain, {} delivered ({} by the final drain)",
        acknowledged.len(),
        uncertain.len(),
        delivered.len(),
        delivered.len() - by_consumers,
    );
}

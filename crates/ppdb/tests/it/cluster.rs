//! Real-process cluster tests: bootstrap, leader failover under a write loop, catch-up after a
//! restart, refusal of a node of another cluster, and a full cluster restart.

use crate::support::{error_text, shard_of, wait_for, ClusterOptions, TestCluster};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Error codes a client may see instead of an answer (README, "Guarantees").
const SEED_CODES: [&str; 5] = ["NETWORK", "TIMEOUT", "CONSENSUS", "PARTITION", "STATE"];

fn get(con: &mut redis::Connection, key: &str) -> Option<String> {
    redis::cmd("GET").arg(key).query(con).unwrap_or_else(|e| panic!("GET {key}: {}", error_text(&e)))
}

#[test]
fn bootstrap_elects_every_leader_and_any_node_serves_any_key() {
    let cluster = TestCluster::start(ClusterOptions::default());
    let leaders = cluster.wait_ready();
    assert_eq!(leaders.len(), 9, "one leader for the meta group and each of 8 shards: {leaders:?}");
    for id in cluster.ids() {
        let status = cluster.status(id).expect("status");
        assert_eq!(status.node.id, id);
        assert_eq!(status.node.state, "ACTIVE", "node {id}");
        for shard in &status.shards {
            assert_eq!(shard.voters, vec![1, 2, 3], "node {id} shard {}", shard.shard);
        }
        let peers: Vec<u64> = status.peers.iter().filter(|p| p.connected).map(|p| p.id).collect();
        let others: Vec<u64> = cluster.ids().into_iter().filter(|&other| other != id).collect();
        assert_eq!(peers, others, "node {id} is connected to every other node: {:?}", status.peers);
    }

    let mut clients: Vec<redis::Connection> = cluster.ids().iter().map(|&id| cluster.client(id)).collect();
    let mut shards_written = BTreeSet::new();
    for (writer, con) in clients.iter_mut().enumerate() {
        for i in 0..20 {
            let key = format!("boot:{writer}:{i}");
            shards_written.insert(shard_of(key.as_bytes(), 8));
            let reply: String = redis::cmd("SET").arg(&key).arg(format!("v{writer}.{i}")).query(con).unwrap();
            assert_eq!(reply, "OK");
        }
    }
    assert_eq!(shards_written.len(), 8, "the keys cover every shard");
    for writer in 0..3 {
        for reader in (0..3).filter(|&r| r != writer) {
            for i in 0..20 {
                let key = format!("boot:{writer}:{i}");
                assert_eq!(
                    get(&mut clients[reader], &key),
                    Some(format!("v{writer}.{i}")),
                    "{key} via node {}",
                    reader + 1
                );
            }
        }
    }
}

/// What the writer thread saw for key `k{i}`.
#[derive(Debug, Clone)]
enum Outcome {
    Ok,
    Failed(String),
}

#[test]
fn killing_the_busiest_leader_loses_no_acknowledged_write_and_it_catches_up() {
    let mut cluster = TestCluster::start(ClusterOptions::default());
    let leaders = cluster.wait_ready();
    let mut led: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for (&shard, &leader) in &leaders {
        led.entry(leader).or_default().push(shard);
    }
    let (&victim, affected) = led.iter().max_by_key(|(_, shards)| shards.len()).unwrap();
    let affected = affected.clone();
    let survivors: Vec<u64> = cluster.ids().into_iter().filter(|&id| id != victim).collect();
    let (writer_node, reader_node) = (survivors[0], survivors[1]);

    // The write loop: SET k{i} v{i} through a surviving node, recording every outcome.
    let outcomes: Arc<Mutex<Vec<Outcome>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let oks = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (outcomes, stop, oks) = (Arc::clone(&outcomes), Arc::clone(&stop), Arc::clone(&oks));
        let mut con = cluster.client(writer_node);
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let result: redis::RedisResult<String> =
                    redis::cmd("SET").arg(format!("k{i}")).arg(format!("v{i}")).query(&mut con);
                let outcome = match result {
                    Ok(reply) if reply == "OK" => Outcome::Ok,
                    Ok(other) => Outcome::Failed(format!("unexpected reply {other:?}")),
                    Err(e) => Outcome::Failed(error_text(&e)),
                };
                if matches!(outcome, Outcome::Ok) {
                    oks.fetch_add(1, Ordering::SeqCst);
                }
                outcomes.lock().unwrap().push(outcome);
                i += 1;
            }
        })
    };

    let warmed_up = wait_for(Duration::from_secs(20), || (oks.load(Ordering::SeqCst) >= 200).then_some(()));
    assert!(
        warmed_up.is_some(),
        "the write loop made no progress before the kill: {:?}",
        outcomes.lock().unwrap().last()
    );
    cluster.kill(victim);
    let killed_at = Instant::now();
    let oks_at_kill = oks.load(Ordering::SeqCst);

    // Every shard the victim led gets a new leader within 3 election timeouts.
    let failover_deadline = 3 * cluster.election_timeout();
    let new_leaders = wait_for(failover_deadline, || {
        let mut found = BTreeMap::new();
        for &shard in &affected {
            let leader = survivors.iter().find_map(|&id| {
                let status = cluster.status(id)?;
                let doc = status.shards.into_iter().find(|d| d.shard == shard)?;
                (doc.role == "leader").then_some(id)
            })?;
            found.insert(shard, leader);
        }
        Some(found)
    });
    let elapsed = killed_at.elapsed();
    let new_leaders = new_leaders.unwrap_or_else(|| {
        panic!(
            "shards {affected:?} led by killed node {victim} have no new leader {elapsed:?} after the kill \
             (deadline {failover_deadline:?}); statuses: {:?}",
            cluster.statuses()
        )
    });
    assert_eq!(new_leaders.len(), affected.len());
    let moved_key =
        (0..).map(|i| format!("k{i}")).find(|k| affected.contains(&shard_of(k.as_bytes(), 8))).unwrap();
    assert_ne!(
        cluster.leader_of_key(moved_key.as_bytes()),
        victim,
        "{moved_key}'s shard still led by the dead node"
    );

    // Writes go on after the failover.
    let resumed =
        wait_for(Duration::from_secs(20), || (oks.load(Ordering::SeqCst) >= oks_at_kill + 200).then_some(()));
    stop.store(true, Ordering::SeqCst);
    writer.join().expect("writer thread");
    let outcomes = outcomes.lock().unwrap().clone();
    assert!(
        resumed.is_some(),
        "writes did not resume after the failover; last outcomes: {:?}",
        &outcomes[outcomes.len().saturating_sub(5)..]
    );

    // Every acknowledged write is readable with its value; a failed one is absent or has its value.
    let mut reader = cluster.client(reader_node);
    let mut failed = 0;
    let mut errors: BTreeMap<String, usize> = BTreeMap::new();
    for (i, outcome) in outcomes.iter().enumerate() {
        let key = format!("k{i}");
        let value = get(&mut reader, &key);
        match outcome {
            Outcome::Ok => assert_eq!(value, Some(format!("v{i}")), "acknowledged write {key} lost or wrong"),
            Outcome::Failed(error) => {
                failed += 1;
                let shape: String = error.split(' ').take(4).collect::<Vec<_>>().join(" ");
                *errors.entry(shape).or_default() += 1;
                let code = error.split(' ').next().unwrap_or_default();
                assert!(
                    SEED_CODES.contains(&code),
                    "{key}: a failed write must answer a seed error code, got {error:?}"
                );
                assert!(
                    value.is_none() || value == Some(format!("v{i}")),
                    "{key} after failed write: {value:?}"
                );
            }
        }
    }
    eprintln!(
        "failover: {} writes, {failed} failed {errors:?}, affected shards {affected:?} re-elected within {elapsed:?}",
        outcomes.len()
    );

    // The killed node restarts on its directory, catches up with every leader's commit index,
    // and is ACTIVE again.
    cluster.restart(victim);
    let caught_up = wait_for(Duration::from_secs(30), || {
        let leaders = cluster.leaders()?;
        let statuses = cluster.statuses()?;
        let mine = &statuses[&victim];
        (mine.node.state == "ACTIVE").then_some(())?;
        for (shard, leader) in leaders {
            let commit = statuses[&leader].shards.iter().find(|d| d.shard == shard)?.commit;
            let applied = mine.shards.iter().find(|d| d.shard == shard)?.applied;
            (applied >= commit).then_some(())?;
        }
        Some(())
    });
    assert!(caught_up.is_some(), "restarted node {victim} did not catch up: {:?}", cluster.statuses());
    let mut via_victim = cluster.client(victim);
    for i in (0..outcomes.len()).step_by(37) {
        if matches!(outcomes[i], Outcome::Ok) {
            assert_eq!(get(&mut via_victim, &format!("k{i}")), Some(format!("v{i}")));
        }
    }
}

#[test]
fn a_node_of_another_cluster_is_refused_at_the_handshake() {
    let mut cluster = TestCluster::start(ClusterOptions::default());
    let mut con = cluster.client(1);
    let _: () = redis::cmd("SET").arg("before").arg("impostor").query(&mut con).unwrap();

    // Node 3's process is replaced by an impostor: same id and addresses, fresh directory,
    // another cluster id.
    cluster.kill(3);
    cluster.nodes[2].cluster_id = "other-cluster".to_string();
    cluster.nodes[2].dir = cluster.root().join("impostor");
    cluster.spawn(3);

    let watch = 6 * cluster.election_timeout();
    let end = Instant::now() + watch;
    let mut saw_status = false;
    while Instant::now() < end {
        if let Some(status) = cluster.status(3) {
            saw_status = true;
            assert!(
                status.peers.iter().all(|p| !p.connected),
                "impostor connected to a peer: {:?}",
                status.peers
            );
            assert!(
                status.shards.iter().all(|s| s.leader == 0),
                "impostor learned a leader: {:?}",
                status.shards
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(saw_status, "the impostor's /status never answered");
    let refused = wait_for(Duration::from_secs(10), || {
        [1, 2].iter().all(|&id| cluster.log(id).contains("cluster id mismatch")).then_some(())
    });
    assert!(
        refused.is_some(),
        "members' logs do not name the cluster id mismatch:\n{}\n{}",
        cluster.log(1),
        cluster.log(2)
    );
    assert!(cluster.log(3).contains("cluster id mismatch"), "the impostor's log does not name the refusal");

    // The members still serve (a quorum of 2), and the real node 3 comes back.
    let value: Option<String> = redis::cmd("GET").arg("before").query(&mut con).unwrap();
    assert_eq!(value.as_deref(), Some("impostor"));
    cluster.kill(3);
    cluster.nodes[2].cluster_id = cluster.options.cluster_id.clone();
    cluster.nodes[2].dir = cluster.root().join("node-3");
    cluster.spawn(3);
    cluster.wait_ready();
    let value: Option<String> = redis::cmd("GET").arg("before").query(&mut cluster.client(3)).unwrap();
    assert_eq!(value.as_deref(), Some("impostor"));
}

#[test]
fn data_survives_a_full_cluster_restart() {
    let mut cluster = TestCluster::start(ClusterOptions::default());
    let mut con = cluster.client(2);
    for i in 0..100 {
        let _: () =
            redis::cmd("SET").arg(format!("durable:{i}")).arg(format!("value-{i}")).query(&mut con).unwrap();
    }
    let _: () = redis::cmd("MSET")
        .arg("m:a")
        .arg("1")
        .arg("m:b")
        .arg("2")
        .arg("m:c")
        .arg("3")
        .query(&mut con)
        .unwrap();
    for _ in 0..7 {
        let _: i64 = redis::cmd("INCR").arg("counter").query(&mut con).unwrap();
    }
    let _: () = redis::cmd("SET").arg("ttl-key").arg("x").arg("EX").arg(3600).query(&mut con).unwrap();
    drop(con);

    for id in cluster.ids() {
        let status = cluster.terminate(id);
        assert!(status.success(), "node {id} exited with {status} after SIGTERM");
    }
    for id in cluster.ids() {
        cluster.spawn(id);
    }
    cluster.wait_ready();

    for id in cluster.ids() {
        let mut con = cluster.client(id);
        for i in 0..100 {
            assert_eq!(get(&mut con, &format!("durable:{i}")), Some(format!("value-{i}")), "via node {id}");
        }
        let m: Vec<Option<String>> =
            redis::cmd("MGET").arg("m:a").arg("m:b").arg("m:c").query(&mut con).unwrap();
        assert_eq!(m, vec![Some("1".into()), Some("2".into()), Some("3".into())]);
        assert_eq!(get(&mut con, "counter").as_deref(), Some("7"));
        let ttl: i64 = redis::cmd("TTL").arg("ttl-key").query(&mut con).unwrap();
        assert!((3000..=3600).contains(&ttl), "TTL after restart: {ttl}");
        let size: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
        assert_eq!(size, 105);
    }
}

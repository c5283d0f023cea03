//! kill -9 of the shard's leader during a memcached write loop: every item answered `STORED`
//! is readable afterwards, through another node, with its value.

use super::TextClient;
use crate::support::{wait_for, ClusterOptions, TestCluster};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Keys asked for in one `get`.
const KEYS_PER_GET: usize = 50;

#[test]
fn killing_the_leader_loses_no_stored_item() {
    let mut cluster = TestCluster::start(ClusterOptions { shards: 1, ..ClusterOptions::default() });
    let leaders = cluster.wait_ready();
    let victim = leaders.get(&1).copied().expect("shard 1 has a leader");
    let survivors: Vec<u64> = cluster.ids().into_iter().filter(|&id| id != victim).collect();
    let mut writer_client = TextClient::connect(cluster.node(survivors[0]).memcached_addr).expect("connect");

    // The write loop: `set m{i}` through a surviving node, recording which were STORED.
    let stored: Arc<Mutex<Vec<u64>>> = Arc::default();
    let failures: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stored, failures, stop) = (Arc::clone(&stored), Arc::clone(&failures), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let value = format!("value-{i}");
                let request = format!("set m{i} 7 0 {}\r\n{value}\r\n", value.len());
                match writer_client.call(request.as_bytes()) {
                    Ok(reply) if reply == ["STORED"] => stored.lock().unwrap().push(i),
                    // A write whose outcome is unknown (the leader died with it) may or may not
                    // have happened: only STORED is a promise.
                    Ok(reply) => failures.lock().unwrap().push(format!("m{i}: {reply:?}")),
                    Err(e) => {
                        failures.lock().unwrap().push(format!("m{i}: {e}"));
                        return;
                    }
                }
                i += 1;
            }
        })
    };
    let count = || stored.lock().unwrap().len();
    assert!(
        wait_for(Duration::from_secs(20), || (count() >= 200).then_some(())).is_some(),
        "writes before the kill"
    );
    cluster.kill(victim);
    let at_kill = count();
    let resumed = wait_for(Duration::from_secs(30), || (count() >= at_kill + 200).then_some(()));
    stop.store(true, Ordering::SeqCst);
    writer.join().expect("writer thread");
    assert!(resumed.is_some(), "writes resumed after the kill; failures: {:?}", failures.lock().unwrap());

    let stored = stored.lock().unwrap().clone();
    let mut reader = TextClient::connect(cluster.node(survivors[1]).memcached_addr).expect("connect");
    for chunk in stored.chunks(KEYS_PER_GET) {
        let keys: Vec<String> = chunk.iter().map(|i| format!("m{i}")).collect();
        let reply = reader.call(format!("get {}\r\n", keys.join(" ")).as_bytes()).expect("get");
        let mut expected = Vec::new();
        for i in chunk {
            let value = format!("value-{i}");
            expected.push(format!("VALUE m{i} 7 {}", value.len()));
            expected.push(value);
        }
        expected.push("END".to_string());
        assert_eq!(reply, expected, "every STORED item is there after the leader's kill -9");
    }
    eprintln!(
        "{} items stored, {} writes with another answer around the kill",
        stored.len(),
        failures.lock().unwrap().len()
    );
}

//! `maxmemory` as Redis has it with `noeviction`: over the limit, writes that need memory are
//! refused with `-OOM` before anything is proposed, reads and DEL still work, and once DEL has
//! made room writes succeed again. The limit is changed with CONFIG SET on a running node and
//! shows in CONFIG GET, INFO memory, /metrics and /status.

use crate::support::{error_text, http_get, wait_for, ClusterOptions, TestCluster, READY_DEADLINE};
use redis::Value;

/// Redis's reply to a write over `maxmemory`, word for word.
const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";
/// Keys written before the limit is set, and the size of each value.
const BIG_KEYS: usize = 10;
const BIG_VALUE_BYTES: usize = 10 * 1024;

/// The `name:value` field of an INFO reply.
fn info_field(connection: &mut redis::Connection, section: &str, name: &str) -> Option<String> {
    let info: String = redis::cmd("INFO").arg(section).query(connection).ok()?;
    let prefix = format!("{name}:");
    info.lines().find_map(|line| line.strip_prefix(prefix.as_str())).map(|v| v.trim().to_string())
}

fn used_memory(connection: &mut redis::Connection) -> u64 {
    info_field(connection, "memory", "used_memory").and_then(|v| v.parse().ok()).expect("INFO used_memory")
}

fn set(connection: &mut redis::Connection, key: &str, value: &str) -> Result<String, String> {
    redis::cmd("SET").arg(key).arg(value).query(connection).map_err(|e| error_text(&e))
}

#[test]
fn over_maxmemory_writes_are_refused_with_oom_while_reads_and_del_work_until_del_makes_room() {
    let cluster = TestCluster::start(ClusterOptions { shards: 1, ..ClusterOptions::default() });
    let mut client = cluster.client(1);
    assert_eq!(info_field(&mut client, "memory", "maxmemory").as_deref(), Some("0"));
    assert_eq!(info_field(&mut client, "memory", "maxmemory_policy").as_deref(), Some("noeviction"));
    let big = "x".repeat(BIG_VALUE_BYTES);
    for i in 0..BIG_KEYS {
        assert_eq!(set(&mut client, &format!("big:{i}"), &big).as_deref(), Ok("OK"));
    }
    let filled = (BIG_KEYS * BIG_VALUE_BYTES) as u64;
    assert!(
        wait_for(READY_DEADLINE, || (used_memory(&mut client) >= filled).then_some(())).is_some(),
        "node 1 never counted the {filled} bytes written"
    );

    // Half of what is stored: the node is over the limit at once.
    let ok: String =
        redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg("50kb").query(&mut client).expect("SET");
    assert_eq!(ok, "OK");
    let got: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("maxmemory").query(&mut client).expect("GET");
    assert_eq!(got, ["maxmemory", "51200"]);
    assert_eq!(info_field(&mut client, "memory", "maxmemory_human").as_deref(), Some("50.00K"));

    // Writes that need memory are refused, through every node, with Redis's exact error.
    for node in cluster.ids() {
        let mut c = cluster.client(node);
        redis::cmd("CONFIG")
            .arg("SET")
            .arg("maxmemory")
            .arg("50kb")
            .query::<String>(&mut c)
            .expect("CONFIG SET");
        assert_eq!(set(&mut c, "new", "v"), Err(OOM.to_string()), "SET through node {node}");
    }
    let append = redis::cmd("APPEND").arg("big:0").arg("more").query::<i64>(&mut client);
    assert_eq!(append.map_err(|e| error_text(&e)), Err(OOM.to_string()));
    let incr = redis::cmd("INCR").arg("counter").query::<i64>(&mut client);
    assert_eq!(incr.map_err(|e| error_text(&e)), Err(OOM.to_string()));
    // Inside MULTI the refusal aborts the transaction, as in Redis.
    let _: String = redis::cmd("MULTI").query(&mut client).expect("MULTI");
    assert_eq!(set(&mut client, "new", "v"), Err(OOM.to_string()));
    let exec = redis::cmd("EXEC").query::<Value>(&mut client).map_err(|e| error_text(&e));
    assert!(exec.as_ref().is_err_and(|e| e.starts_with("EXECABORT")), "{exec:?}");

    // Reads work; nothing was proposed for the refused writes.
    let value: Option<String> = redis::cmd("GET").arg("big:0").query(&mut client).expect("GET");
    assert_eq!(value.map(|v| v.len()), Some(BIG_VALUE_BYTES));
    let missing: Option<String> = redis::cmd("GET").arg("new").query(&mut client).expect("GET");
    assert_eq!(missing, None);
    let metrics = http_get(cluster.node(1).admin_addr, "/metrics").expect("/metrics");
    assert!(metrics.contains("ppdb_maxmemory_bytes{node=\"1\"} 51200"), "{metrics}");
    assert!(metrics.contains("ppdb_used_memory_bytes{node=\"1\"}"), "{metrics}");
    let status: serde_json::Value =
        serde_json::from_str(&http_get(cluster.node(1).admin_addr, "/status").expect("/status"))
            .expect("JSON");
    assert_eq!(status["memory"]["maxmemory_bytes"], 51200);
    assert!(status["memory"]["used_memory_bytes"].as_u64().is_some_and(|used| used > 51200), "{status}");

    // DEL frees memory; once applied, writes succeed again.
    let mut del = redis::cmd("DEL");
    for i in 0..BIG_KEYS {
        del.arg(format!("big:{i}"));
    }
    assert_eq!(del.query::<i64>(&mut client).expect("DEL"), BIG_KEYS as i64);
    let accepted = wait_for(READY_DEADLINE, || set(&mut client, "new", "v").ok());
    assert_eq!(accepted.as_deref(), Some("OK"), "writes still refused after DEL");
    let value: Option<String> = redis::cmd("GET").arg("new").query(&mut client).expect("GET");
    assert_eq!(value.as_deref(), Some("v"));
}

#[test]
fn config_set_refuses_eviction_policies_and_values_that_are_not_sizes() {
    let cluster = TestCluster::start(ClusterOptions { nodes: 1, shards: 1, ..ClusterOptions::default() });
    let mut client = cluster.client(1);
    let config_set = |c: &mut redis::Connection, name: &str, value: &str| {
        redis::cmd("CONFIG").arg("SET").arg(name).arg(value).query::<String>(c).map_err(|e| error_text(&e))
    };
    let policy = config_set(&mut client, "maxmemory-policy", "allkeys-lru").unwrap_err();
    assert!(
        policy.starts_with("ERR CONFIG SET failed (possibly related to argument 'maxmemory-policy')"),
        "{policy}"
    );
    assert!(policy.contains("noeviction"), "{policy}");
    assert_eq!(config_set(&mut client, "maxmemory-policy", "noeviction").as_deref(), Ok("OK"));
    assert_eq!(
        config_set(&mut client, "maxmemory", "lots"),
        Err("ERR CONFIG SET failed (possibly related to argument 'maxmemory') - argument must be a memory value"
            .to_string())
    );
    assert_eq!(config_set(&mut client, "maxmemory", "1gb").as_deref(), Ok("OK"));
    let got: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("maxmemory").query(&mut client).expect("GET");
    assert_eq!(got, ["maxmemory", "1073741824"]);
}

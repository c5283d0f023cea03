//! Redis 7 functions against a real cluster and a real Redis 7: FUNCTION LOAD, LIST, DELETE,
//! FLUSH, STATS and FCALL's replies and errors compared word for word; libraries loaded
//! through one node called through every node and after restarts; DUMP and RESTORE, Redis's
//! payloads included; and ACL rules held inside scripts and functions on every node.

use std::time::Duration;

use redis::Connection;

use crate::reference::{reply_text, Reference};
use crate::support::{shard_of, wait_for, ClusterOptions, TestCluster};

const DEADLINE: Duration = Duration::from_secs(20);

const LIBRARY: &str = "#!lua name=mylib\n\
    redis.register_function('incr_by', function(keys, args) return redis.call('INCRBY', keys[1], args[1]) end)\n\
    redis.register_function{function_name='peek', callback=function(keys) return redis.call('GET', keys[1]) end, flags={'no-writes'}, description='reads a key'}";

fn reply(con: &mut Connection, args: &[&str]) -> String {
    let args: Vec<&[u8]> = args.iter().map(|arg| arg.as_bytes()).collect();
    reply_text(con, &args, false)
}

/// Sends each command to PPDB and to Redis, and panics at the first reply that differs.
fn assert_same(ppdb: &mut Connection, redis: &mut Connection, commands: &[&[&str]]) {
    for command in commands {
        let (ours, theirs) = (reply(ppdb, command), reply(redis, command));
        assert_eq!(ours, theirs, "`{command:?}`: PPDB's reply (left) differs from Redis's (right)");
    }
}

#[test]
fn function_replies_and_errors_match_redis() {
    let cluster = TestCluster::start(ClusterOptions { shards: 1, ..ClusterOptions::default() });
    let reference = Reference::start();
    let (mut ppdb, mut redis) = (cluster.client(2), reference.client());
    let one =
        "#!lua name=one\nredis.register_function('only', function(keys, args) return {keys[1], args[1]} end)";
    assert_same(
        &mut ppdb,
        &mut redis,
        &[
            &["FUNCTION", "FLUSH"],
            &["FUNCTION", "LOAD", LIBRARY],
            &["FUNCTION", "LOAD", LIBRARY],
            &["FUNCTION", "LOAD", "REPLACE", LIBRARY],
            &["FUNCTION", "LOAD", "#!lua name=other\nredis.register_function('peek', function() return 1 end)"],
            &["FCALL", "incr_by", "1", "n", "5"],
            &["FCALL", "incr_by", "1", "n", "2"],
            &["FCALL", "peek", "1", "n"],
            &["FCALL_RO", "peek", "1", "n"],
            &["FCALL_RO", "incr_by", "1", "n", "1"],
            &["FCALL", "nosuch", "0"],
            &["FCALL", "peek", "x"],
            &["FCALL", "peek", "2", "n"],
            &["FCALL", "peek", "-1"],
            &["FUNCTION", "LOAD", one],
            &["FCALL", "only", "1", "k", "a"],
            &["FUNCTION", "LIST", "LIBRARYNAME", "on*"],
            &["FUNCTION", "LIST", "WITHCODE", "LIBRARYNAME", "ONE"],
            &["FUNCTION", "LOAD", "return 1"],
            &["FUNCTION", "LOAD", "#!lua name=x"],
            &["FUNCTION", "LOAD", "#!lua name=x\nreturn 1"],
            &["FUNCTION", "LOAD", "#!lua name=x\nredis.call('set','a','b')"],
            &["FUNCTION", "LOAD", "#!lua name=x\nredis.register_function('a', 1)"],
            &["FUNCTION", "LOAD", "#!lua name=x\nsyntax error"],
            &["FUNCTION", "LOAD", "#!lua name=bad-name\nredis.register_function('a', function() end)"],
            &["FUNCTION", "LOAD", "#!js name=x\n"],
            &["FUNCTION", "LOAD", "#!lua name=f\nredis.register_function('f', function(keys) return KEYS end)"],
            &["FCALL", "f", "0"],
            &["FUNCTION", "LOAD", "#!lua name=w\nredis.register_function{function_name='w', callback=function(keys) return redis.call('SET', keys[1], 'x') end, flags={'no-writes'}}"],
            &["FCALL", "w", "1", "k"],
            &["FUNCTION", "DELETE", "nosuch"],
            &["FUNCTION", "DELETE", "one"],
            &["FCALL", "only", "0"],
            &["FUNCTION", "DELETE", "f"],
            &["FUNCTION", "DELETE", "w"],
            &["FUNCTION", "STATS"],
            &["FUNCTION", "RESTORE", "x"],
            &["FUNCTION", "RESTORE", "x", "nosuch"],
            &["FUNCTION", "FLUSH"],
            &["FUNCTION", "LIST"],
            &["FUNCTION", "DUMP"],
        ],
    );
}

#[test]
fn libraries_are_the_clusters_and_survive_restarts() {
    let mut cluster = TestCluster::start(ClusterOptions { shards: 2, ..ClusterOptions::default() });
    let mut first = cluster.client(1);
    assert_eq!(reply(&mut first, &["FUNCTION", "LOAD", LIBRARY]), "bulk-string('\"mylib\"')");
    assert_eq!(reply(&mut first, &["FCALL", "incr_by", "1", "n", "5"]), "int(5)");
    for id in [2, 3] {
        let called = wait_for(DEADLINE, || {
            let answer = reply(&mut cluster.client(id), &["FCALL", "incr_by", "1", "n", "1"]);
            (!answer.contains("Function not found")).then_some(answer)
        });
        assert!(called.is_some_and(|answer| answer.starts_with("int(")), "node {id} calls the library");
    }
    assert_eq!(reply(&mut first, &["FCALL_RO", "peek", "1", "n"]), "bulk-string('\"7\"')");

    // The library is cluster state: a restarted node lists it and calls it.
    cluster.restart(2);
    cluster.wait_ready();
    let mut second = cluster.client(2);
    let listed = reply(&mut second, &["FUNCTION", "LIST"]);
    assert!(listed.contains("mylib") && listed.contains("reads a key"), "{listed}");
    assert_eq!(reply(&mut second, &["FCALL", "incr_by", "1", "n", "3"]), "int(10)");

    // DUMP and RESTORE, and a payload of redis-server's restores here.
    let dump: Vec<u8> = redis::cmd("FUNCTION").arg("DUMP").query(&mut second).expect("DUMP");
    assert_eq!(reply(&mut second, &["FUNCTION", "FLUSH"]), "ok");
    assert!(reply(&mut second, &["FCALL", "peek", "1", "n"]).contains("Function not found"));
    let restored: String =
        redis::cmd("FUNCTION").arg("RESTORE").arg(&dump).query(&mut second).expect("RESTORE");
    assert_eq!(restored, "OK");
    assert_eq!(reply(&mut second, &["FCALL", "peek", "1", "n"]), "bulk-string('\"10\"')");
    let refused = redis::cmd("FUNCTION").arg("RESTORE").arg(&dump).query::<String>(&mut second);
    assert!(refused.is_err_and(|e| e.to_string().contains("Library mylib already exists")));

    let reference = Reference::start();
    let mut redis = reference.client();
    let theirs = "#!lua name=theirs\nredis.register_function('from_redis', function() return 'hello from a redis dump, long enough to be compressed, compressed, compressed' end)";
    let _: String = redis::cmd("FUNCTION").arg("LOAD").arg(theirs).query(&mut redis).expect("LOAD in Redis");
    let payload: Vec<u8> = redis::cmd("FUNCTION").arg("DUMP").query(&mut redis).expect("Redis's DUMP");
    let restored: String = redis::cmd("FUNCTION")
        .arg("RESTORE")
        .arg(&payload)
        .arg("REPLACE")
        .query(&mut second)
        .expect("RESTORE");
    assert_eq!(restored, "OK");
    assert!(reply(&mut second, &["FCALL", "from_redis", "0"]).contains("hello from a redis dump"));
    let ours: Vec<u8> = redis::cmd("FUNCTION").arg("DUMP").query(&mut second).expect("DUMP");
    let _: String = redis::cmd("FUNCTION")
        .arg("RESTORE")
        .arg(&ours)
        .arg("FLUSH")
        .query(&mut redis)
        .expect("Redis restores PPDB's payload");
    assert!(reply(&mut redis, &["FCALL", "incr_by", "1", "r", "2"]).contains("int(2)"));

    // Every node restarted: the libraries come back from the meta group's log and snapshot.
    for id in cluster.ids() {
        cluster.restart(id);
    }
    cluster.wait_ready();
    let back = wait_for(DEADLINE, || {
        let answer = reply(&mut cluster.client(3), &["FCALL", "incr_by", "1", "n", "1"]);
        answer.starts_with("int(").then_some(answer)
    });
    assert_eq!(back.as_deref(), Some("int(11)"));
}

#[test]
fn acl_rules_hold_inside_scripts_and_functions_on_every_node() {
    const PASSWORD: &str = "s3cret";
    let extra_args = vec!["--requirepass".to_string(), PASSWORD.to_string()];
    let cluster = TestCluster::start(ClusterOptions { shards: 2, extra_args, ..ClusterOptions::default() });
    let login = |id: u64, user: &str, password: &str| {
        let url = format!("redis://{user}:{password}@{}/", cluster.node(id).client_addr);
        let client = redis::Client::open(url).expect("client url");
        wait_for(DEADLINE, || client.get_connection_with_timeout(Duration::from_secs(5)).ok())
            .expect("logs in")
    };
    let mut admin = login(1, "default", PASSWORD);
    let user = ["ACL", "SETUSER", "app", "on", ">pw", "~app:*", "%R~shared:*", "+@all", "-set"];
    assert_eq!(reply(&mut admin, &user), "ok");
    assert_eq!(reply(&mut admin, &["FUNCTION", "LOAD", LIBRARY]), "bulk-string('\"mylib\"')");
    assert_eq!(reply(&mut admin, &["SET", "app:f", "1"]), "ok");
    let set_refused =
        "error: ERR ACL failure in script: User app has no permissions to run the 'set' command";
    let key_refused = "error: ERR ACL failure in script: No permissions to access a key";
    // A script without keys runs on shard 1: the key it reads undeclared must live there.
    let shared = (1..).map(|i| format!("shared:{i}")).find(|key| shard_of(key.as_bytes(), 2) == 1);
    let read_shared = format!("return redis.call('GET', '{}')", shared.expect("a key of shard 1"));
    // The words of Redis 7.2 (7.0 says `The user executing the script can't ...`).
    let expected: &[(&[&str], String)] = &[
        (&["EVAL", "return redis.call('SET', 'app:1', 'x')", "0"], format!("{set_refused} script: ")),
        (&["EVAL", "return redis.pcall('SET', 'app:1', 'x')", "0"], set_refused.to_owned()),
        (&["EVAL", "return redis.call('GET', 'secret')", "0"], format!("{key_refused} script: ")),
        (&["EVAL", "return redis.pcall('GET', 'secret')", "0"], key_refused.to_owned()),
        (&["EVAL", "return redis.call('INCR', 'shared:1')", "0"], format!("{key_refused} script: ")),
        (&["EVAL", &read_shared, "0"], "nil".to_owned()),
        (&["FCALL", "incr_by", "1", "app:f", "2"], "int(".to_owned()),
        (&["FCALL", "peek", "1", "app:f"], "bulk-string(".to_owned()),
        (&["FCALL", "peek", "1", "secret"], "error: NOPERM No permissions to access a key".to_owned()),
    ];
    for id in cluster.ids() {
        let mut app = login(id, "app", "pw");
        // The library, loaded through node 1, reaches the others a heartbeat later.
        let known = wait_for(DEADLINE, || {
            (!reply(&mut app, &["FCALL", "peek", "1", "app:f"]).contains("not found")).then_some(())
        });
        assert!(known.is_some(), "node {id} knows the library");
        for (command, start) in expected {
            let answer = reply(&mut app, command);
            assert!(answer.starts_with(start.as_str()), "node {id}, `{command:?}`: {answer}");
        }
        let line = reply(
            &mut app,
            &["EVAL", "local ok, e = pcall(redis.call, 'GET', 'secret') return {tostring(ok), e}", "0"],
        );
        assert!(line.contains("false") && line.contains("No permissions to access a key"), "{line}");
    }
    // The same function, called by an unrestricted user, writes where `app` may not.
    assert_eq!(reply(&mut admin, &["FCALL", "incr_by", "1", "secret", "1"]), "int(1)");
    assert_eq!(reply(&mut admin, &["EVAL", "return redis.call('SET', KEYS[1], 'x')", "1", "app:1"]), "ok");
}

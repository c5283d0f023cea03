//! Client authentication and ACLs on a 3-node cluster: without credentials every command but
//! AUTH, HELLO, QUIT and RESET is refused; ACL users made on one node log in and are held to
//! their rules on every node, inside MULTI and for scripts' keys; the admin endpoints that
//! change the cluster need the admin token; the ACL replies and errors read as redis-server's;
//! channel rules hold for publishing and subscribing as in redis-server, and a subscriber whose
//! user loses one of its channels is disconnected on every node, as redis-server disconnects it.

use std::process::Command;
use std::time::Duration;

use ppdb::server::resp::command::COMMANDS;

use crate::differential::resp::{Reply, RespConnection};
use crate::reference::Reference;
use crate::support::{error_text, free_addrs, http_get, wait_for, ClusterOptions, TestCluster};

const PASSWORD: &str = "s3cret";
const DEADLINE: Duration = Duration::from_secs(20);

fn secured_cluster(extra: &[&str]) -> TestCluster {
    let mut extra_args = vec!["--requirepass".to_string(), PASSWORD.to_string()];
    extra_args.extend(extra.iter().map(|s| s.to_string()));
    TestCluster::start(ClusterOptions { shards: 2, extra_args, ..ClusterOptions::default() })
}

/// A connection to node `id` logged in as `user`, once the node accepts the password.
fn client_as(cluster: &TestCluster, id: u64, user: &str, password: &str) -> redis::Connection {
    let url = format!("redis://{user}:{password}@{}/", cluster.node(id).client_addr);
    let client = redis::Client::open(url).expect("client url");
    wait_for(DEADLINE, || client.get_connection_with_timeout(Duration::from_secs(5)).ok())
        .unwrap_or_else(|| panic!("node {id} never accepted {user}'s password"))
}

/// The reply to `args` as text: the value, or the error as the server words it.
fn reply(con: &mut redis::Connection, args: &[&str]) -> String {
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    match cmd.query::<redis::Value>(con) {
        Ok(value) => text(&value),
        Err(e) => error_text(&e),
    }
}

/// A reply as plain text: `OK`, `QUEUED`, `nil`, `7`, `value`, `[a, b]`, `{k: v}`.
fn text(value: &redis::Value) -> String {
    use redis::Value;
    let list = |items: &[Value]| items.iter().map(text).collect::<Vec<_>>().join(", ");
    match value {
        Value::Nil => "nil".into(),
        Value::Okay => "OK".into(),
        Value::Int(n) => n.to_string(),
        Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Array(items) | Value::Set(items) => format!("[{}]", list(items)),
        Value::Map(pairs) => {
            let pairs: Vec<String> = pairs.iter().map(|(k, v)| format!("{}: {}", text(k), text(v))).collect();
            format!("{{{}}}", pairs.join(", "))
        }
        other => format!("{other:?}"),
    }
}

#[test]
fn without_credentials_only_auth_hello_quit_and_reset_run() {
    let cluster = secured_cluster(&[]);
    let mut anonymous = cluster.client(2);
    for spec in COMMANDS {
        let mut cmd = redis::cmd(spec.name);
        // Enough arguments for the arity: the refusal comes before any parsing.
        for _ in 1..spec.arity.unsigned_abs() {
            cmd.arg("x");
        }
        let answer = match cmd.query::<redis::Value>(&mut anonymous) {
            Ok(value) => text(&value),
            Err(e) => error_text(&e),
        };
        match spec.name {
            "auth" => assert!(answer.starts_with("WRONGPASS"), "{answer}"),
            "hello" | "quit" | "reset" => assert!(!answer.contains("Authentication required"), "{answer}"),
            name => assert_eq!(answer, "NOAUTH Authentication required.", "{name}"),
        }
        if spec.name == "quit" {
            anonymous = cluster.client(2);
        }
    }
    let hello = reply(&mut anonymous, &["HELLO", "3"]);
    assert!(
        hello.starts_with("NOAUTH HELLO must be called with the client already authenticated"),
        "{hello}"
    );
    assert!(reply(&mut anonymous, &["HELLO", "2", "AUTH", "default", PASSWORD]).contains("proto"));
    assert_eq!(reply(&mut anonymous, &["SET", "k", "v"]), "OK");

    let info = reply(&mut anonymous, &["INFO", "stats"]);
    assert!(info.contains("acl_access_denied_auth:1"), "the AUTH with a wrong password counted: {info}");
    let metrics = http_get(cluster.node(2).admin_addr, "/metrics").expect("metrics");
    assert!(metrics.contains("ppdb_acl_denied_total{node=\"2\",reason=\"auth\"} 1"), "{metrics}");
}

#[test]
fn acl_users_are_the_clusters_and_held_to_their_rules_everywhere() {
    let mut cluster = secured_cluster(&[]);
    let mut admin = client_as(&cluster, 1, "default", PASSWORD);
    let set_user = reply(
        &mut admin,
        &["ACL", "SETUSER", "app", "on", ">pw", "~app:*", "%R~shared:*", "+@all", "-@dangerous"],
    );
    assert_eq!(set_user, "OK");
    assert_eq!(reply(&mut admin, &["SET", "secret:1", "x"]), "OK");

    for id in cluster.ids() {
        let mut app = client_as(&cluster, id, "app", "pw");
        assert_eq!(reply(&mut app, &["ACL", "WHOAMI"]), "app");
        assert_eq!(reply(&mut app, &["SET", &format!("app:{id}"), "v"]), "OK", "node {id}");
        assert_eq!(
            reply(&mut app, &["GET", "secret:1"]),
            "NOPERM No permissions to access a key",
            "node {id}"
        );
        assert_eq!(reply(&mut app, &["GET", "shared:1"]), "nil", "read allowed on node {id}");
        assert_eq!(reply(&mut app, &["SET", "shared:1", "v"]), "NOPERM No permissions to access a key");
        assert_eq!(
            reply(&mut app, &["FLUSHALL"]),
            "NOPERM User app has no permissions to run the 'flushall' command",
            "node {id}"
        );
        assert_eq!(
            reply(&mut app, &["EVAL", "return redis.call('GET', KEYS[1])", "1", "secret:1"]),
            "NOPERM No permissions to access a key",
            "a script's keys are checked"
        );

        // Inside MULTI the refusal comes at queue time and aborts the transaction.
        assert_eq!(reply(&mut app, &["MULTI"]), "OK");
        assert_eq!(reply(&mut app, &["SET", &format!("app:m{id}"), "1"]), "QUEUED");
        assert_eq!(reply(&mut app, &["SET", "secret:2", "1"]), "NOPERM No permissions to access a key");
        let exec = reply(&mut app, &["EXEC"]);
        assert!(exec.starts_with("EXECABORT"), "{exec}");
        assert_eq!(reply(&mut app, &["EXISTS", &format!("app:m{id}")]), "0");
    }

    // A password change made on node 3 holds on node 1; a deleted user cannot log in.
    let mut admin3 = client_as(&cluster, 3, "default", PASSWORD);
    assert_eq!(reply(&mut admin3, &["ACL", "SETUSER", "app", "resetpass", ">pw2"]), "OK");
    let auth = |password: &str| reply(&mut cluster.client(1), &["AUTH", "app", password]);
    let refused = wait_for(DEADLINE, || auth("pw").starts_with("WRONGPASS").then_some(()));
    assert!(refused.is_some(), "the old password still works on node 1");
    assert_eq!(auth("pw2"), "OK");
    assert_eq!(reply(&mut admin3, &["ACL", "DELUSER", "app"]), "1");
    let gone = wait_for(DEADLINE, || auth("pw2").starts_with("WRONGPASS").then_some(()));
    assert!(gone.is_some(), "a deleted user still logs in on node 1");

    // Users are durable cluster state: a restarted node knows them.
    assert_eq!(reply(&mut admin3, &["ACL", "SETUSER", "keeper", "on", ">k", "~*", "+@all"]), "OK");
    cluster.restart(2);
    let mut keeper = client_as(&cluster, 2, "keeper", "k");
    assert_eq!(reply(&mut keeper, &["ACL", "WHOAMI"]), "keeper");
}

#[test]
fn acl_replies_and_errors_read_as_redis_servers() {
    let cluster = secured_cluster(&[]);
    let reference = Reference::start();
    let mut ppdb = client_as(&cluster, 1, "default", PASSWORD);
    let mut redis = reference.client();
    let script: &[&[&str]] = &[
        &["ACL", "CAT"],
        &["ACL", "CAT", "nosuch"],
        &["ACL", "SETUSER", "u", "on", ">pw", "~k:*", "+get"],
        &["ACL", "GETUSER", "u"],
        &["ACL", "GETUSER", "nosuch"],
        &["ACL", "SETUSER", "u", "+nosuchcommand"],
        &["ACL", "SETUSER", "u", "#abc"],
        &["ACL", "SETUSER", "u", "<notapassword"],
        &["ACL", "SETUSER", "a b", "on"],
        &["ACL", "SETUSER", "u", "allkeys", "~more"],
        &["ACL", "DELUSER", "default"],
        &["ACL", "USERS"],
        &["ACL", "WHOAMI"],
        &["ACL", "DELUSER", "u", "nosuch"],
        &["AUTH", "nosuch", "pw"],
    ];
    for args in script {
        assert_eq!(reply(&mut ppdb, args), reply(&mut redis, args), "{args:?}");
    }
    // redis-server's default user has no password here; both otherwise answer alike.
    assert_eq!(reply(&mut redis, &["GET", "x"]), "nil");
}

#[test]
fn admin_changes_need_the_token_and_a_public_address_needs_a_password() {
    let acl_dir = tempfile::tempdir().expect("tempdir");
    let aclfile = acl_dir.path().join("users.acl");
    std::fs::write(&aclfile, "# operators\nuser ops on >opspw ~ops:* +@all\n").expect("write the ACL file");
    let aclfile = aclfile.display().to_string();
    let cluster = secured_cluster(&["--admin-token", "tok3n", "--aclfile", &aclfile]);
    let mut ops = client_as(&cluster, 3, "ops", "opspw");
    assert_eq!(reply(&mut ops, &["SET", "ops:1", "v"]), "OK", "a user of the ACL file");
    assert_eq!(reply(&mut ops, &["GET", "other"]), "NOPERM No permissions to access a key");

    let (ok, text) = cluster.cluster_command(1, &["remove", "9"]);
    assert!(!ok && text.contains("401") && text.contains("admin token"), "{text}");
    let (ok, text) = cluster.cluster_command(1, &["--admin-token", "wrong", "remove", "9"]);
    assert!(!ok && text.contains("401"), "{text}");
    let (ok, text) = cluster.cluster_command(1, &["--admin-token", "tok3n", "remove", "9"]);
    assert!(!ok && !text.contains("401") && text.contains("no node 9"), "{text}");
    assert!(http_get(cluster.node(1).admin_addr, "/status").is_some(), "reads stay open");

    let port = free_addrs(1)[0].port().to_string();
    let exposed = Command::new(env!("CARGO_BIN_EXE_ppdb"))
        .args(["start", "--id", "1", "--client-addr", &format!("0.0.0.0:{port}")])
        .args(["--bootstrap", "1=127.0.0.1:1"])
        .output()
        .expect("run ppdb start");
    let stderr = String::from_utf8_lossy(&exposed.stderr);
    assert!(
        !exposed.status.success() && stderr.contains("--requirepass") && stderr.contains("--insecure"),
        "{stderr}"
    );
}

/// Redis 7.0's NOPERM texts and the Redis 7.2 wording PPDB answers with (docs/security.md).
const NOPERM_WORDING: &[(&str, &str)] = &[(
    "NOPERM this user has no permissions to access one of the channels used as arguments",
    "NOPERM No permissions to access a channel",
)];

/// A frame as text, with a Redis 7.0 NOPERM worded as Redis 7.2 words it.
fn as_redis_7_2(reply: &Reply) -> String {
    let text = reply.to_string();
    NOPERM_WORDING.iter().fold(text, |text, (old, new)| text.replace(old, new))
}

fn words(line: &str) -> Vec<Vec<u8>> {
    line.split_whitespace().map(|w| w.as_bytes().to_vec()).collect()
}

/// Sends each `n command` line of `script` to both connections and compares the n frames each
/// answers.
fn assert_same_frames(ppdb: &mut RespConnection, redis: &mut RespConnection, script: &str) {
    for line in script.lines().map(str::trim).filter(|line| !line.is_empty()) {
        let (count, command) = line.split_once(' ').expect("`n command`");
        let count: usize = count.parse().expect("a frame count");
        ppdb.send(&words(command));
        redis.send(&words(command));
        for index in 0..count {
            let ours = ppdb.receive().unwrap_or_else(|e| panic!("`{line}`: PPDB's frame {index}: {e}"));
            let theirs = redis.receive().unwrap_or_else(|e| panic!("`{line}`: Redis's frame {index}: {e}"));
            assert_eq!(
                ours.to_string(),
                as_redis_7_2(&theirs),
                "`{line}`, frame {index}: PPDB (left), Redis (right)"
            );
        }
    }
}

#[test]
fn channel_rules_hold_for_publishing_and_subscribing_as_in_redis_7() {
    let cluster = secured_cluster(&[]);
    let reference = Reference::start();
    client_as(&cluster, 1, "default", PASSWORD);
    let mut ppdb_admin = RespConnection::connect(cluster.node(1).client_addr);
    assert_eq!(ppdb_admin.call(&words(&format!("AUTH {PASSWORD}"))).to_string(), "+OK");
    let mut redis_admin = RespConnection::connect(reference.addr());
    let admin = "
        1 CONFIG SET requirepass s3cret
        1 ACL SETUSER u on >pw ~* +@all &news.* &chat
        1 ACL GETUSER u
        1 ACL SETUSER all on >pw ~* +@all &a allchannels
        1 ACL SETUSER all &b
        1 ACL SETUSER none on >pw ~* +@all
        1 ACL SETUSER reset on >pw ~* +@all allchannels resetchannels &x
        1 ACL LIST
    ";
    assert_same_frames(&mut ppdb_admin, &mut redis_admin, admin);

    let mut ppdb = RespConnection::connect(cluster.node(2).client_addr);
    let mut redis = RespConnection::connect(reference.addr());
    let user = "
        1 AUTH u pw
        1 SUBSCRIBE other
        1 SUBSCRIBE news.1 other
        1 PSUBSCRIBE news.x*
        1 PSUBSCRIBE *
        1 PUBLISH nope hi
        1 SPUBLISH x hi
        1 SSUBSCRIBE q
        1 PUBLISH chat hi
        1 SPUBLISH chat hi
        1 PUBSUB NUMSUB nope
        1 MULTI
        1 PUBLISH chat queued
        1 PUBLISH nope refused
        1 EXEC
        1 UNSUBSCRIBE nope
        1 PUNSUBSCRIBE nope*
        1 SUNSUBSCRIBE nope
        2 SUBSCRIBE news.1 chat
        2 PSUBSCRIBE news.* chat
        1 SSUBSCRIBE news.s
        1 RESET
        1 AUTH none pw
        1 PUBLISH chat hi
        1 SUBSCRIBE chat
        1 AUTH all pw
        1 PSUBSCRIBE any*
        1 RESET
    ";
    assert_same_frames(&mut ppdb, &mut redis, user);
    let mut info = cluster.client(2);
    assert_eq!(reply(&mut info, &["AUTH", PASSWORD]), "OK");
    let stats = reply(&mut info, &["INFO", "stats"]);
    assert!(stats.contains("acl_access_denied_channel:10"), "{stats}");
    let metrics = http_get(cluster.node(2).admin_addr, "/metrics").expect("metrics");
    assert!(metrics.contains("ppdb_acl_denied_total{node=\"2\",reason=\"channel\"} 10"), "{metrics}");
}

/// A connection to `addr` logged in as `user` (password `pw`), subscribed with `subscribe`.
fn subscriber(addr: std::net::SocketAddr, user: &str, subscribe: &str) -> RespConnection {
    let mut connection = RespConnection::connect(addr);
    assert_eq!(connection.call(&words(&format!("AUTH {user} pw"))).to_string(), "+OK");
    let confirmation = connection.call(&words(subscribe)).to_string();
    assert!(confirmation.contains("subscribe"), "{subscribe}: {confirmation}");
    connection
}

/// Whether the server closed `connection` within the deadline.
fn closed(connection: &mut RespConnection) -> bool {
    connection.set_read_timeout(DEADLINE);
    match connection.receive() {
        Err(e) => e.contains("closed") || e.contains("reset"),
        Ok(frame) => panic!("a frame where the connection should have closed: {frame}"),
    }
}

#[test]
fn a_subscriber_whose_user_loses_a_channel_is_disconnected_on_every_node_as_in_redis() {
    let cluster = secured_cluster(&[]);
    let reference = Reference::start();
    let mut admin = client_as(&cluster, 1, "default", PASSWORD);
    let mut redis_admin = reference.client();
    for con in [&mut admin, &mut redis_admin] {
        assert_eq!(reply(con, &["ACL", "SETUSER", "u", "on", ">pw", "+@all", "&news.*", "&chat"]), "OK");
        assert_eq!(reply(con, &["ACL", "SETUSER", "gone", "on", ">pw", "+@all", "&*"]), "OK");
    }
    // Users reach every node through the meta group before their subscribers connect.
    wait_for(DEADLINE, || {
        cluster
            .ids()
            .into_iter()
            .all(|id| reply(&mut cluster.client(id), &["AUTH", "gone", "pw"]) == "OK")
            .then_some(())
    })
    .expect("the users reached every node");
    let node = |id: u64| cluster.node(id).client_addr;
    let mut losing = [
        subscriber(node(2), "u", "SUBSCRIBE news.1"),
        subscriber(node(3), "u", "PSUBSCRIBE news.*"),
        subscriber(node(3), "u", "SSUBSCRIBE news.s"),
        subscriber(reference.addr(), "u", "SUBSCRIBE news.1"),
        subscriber(reference.addr(), "u", "PSUBSCRIBE news.*"),
    ];
    let keeping = [
        (node(1), subscriber(node(2), "u", "SUBSCRIBE chat")),
        (reference.addr(), subscriber(reference.addr(), "u", "SUBSCRIBE chat")),
    ];
    let mut deleted =
        [subscriber(node(3), "gone", "SUBSCRIBE x"), subscriber(reference.addr(), "gone", "SUBSCRIBE x")];

    for con in [&mut admin, &mut redis_admin] {
        assert_eq!(reply(con, &["ACL", "SETUSER", "u", "resetchannels", "&chat"]), "OK");
        assert_eq!(reply(con, &["ACL", "DELUSER", "gone"]), "1");
    }
    for (index, connection) in losing.iter_mut().chain(deleted.iter_mut()).enumerate() {
        assert!(closed(connection), "subscriber {index} was not disconnected");
    }
    // A subscriber whose channels all remain allowed stays, and is served.
    for (publisher, mut connection) in keeping {
        let mut publish = RespConnection::connect(publisher);
        if publisher != reference.addr() {
            publish.call(&words(&format!("AUTH {PASSWORD}")));
        }
        publish.call(&words("PUBLISH chat still-here"));
        let message = connection.receive().expect("the message on chat");
        assert_eq!(message.to_string(), r#"["message", "chat", "still-here"]"#);
    }
}

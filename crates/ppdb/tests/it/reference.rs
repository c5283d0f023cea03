//! A real Redis beside a PPDB cluster: the same commands to both, every reply compared.
//!
//! Redis's behaviour is the reference for every command PPDB shares with it. [`Reference`]
//! starts a throwaway `redis-server` (installed by `.ci/run`) on a free port, without
//! persistence; [`assert_same_replies`] sends a script of commands to PPDB and to it and
//! compares each reply, error texts included.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::{error_text, free_addrs, wait_for};

/// A `redis-server` process on a free loopback port, killed when dropped.
pub struct Reference {
    child: Child,
    addr: SocketAddr,
    /// Where a cluster-enabled server keeps its cluster configuration file.
    _dir: Option<tempfile::TempDir>,
}

impl Reference {
    /// Starts `redis-server` with no persistence and waits until it answers.
    pub fn start() -> Reference {
        Reference::start_with(Vec::new(), None)
    }

    /// Starts `redis-server` in cluster mode, alone and with no slot assigned: it answers
    /// CLUSTER KEYSLOT, and refuses key commands.
    pub fn start_cluster_enabled() -> Reference {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("nodes.conf").to_string_lossy().into_owned();
        let args = vec!["--cluster-enabled".into(), "yes".into(), "--cluster-config-file".into(), config];
        Reference::start_with(args, Some(dir))
    }

    fn start_with(extra_args: Vec<String>, dir: Option<tempfile::TempDir>) -> Reference {
        let addr = free_addrs(1)[0];
        let child = Command::new("redis-server")
            .args([
                "--port",
                &addr.port().to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(&extra_args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server, the reference implementation, must be installed (`.ci/run` installs it)");
        let reference = Reference { child, addr, _dir: dir };
        let client = redis::Client::open(format!("redis://{addr}/")).expect("client url");
        wait_for(Duration::from_secs(10), || client.get_connection().ok()).expect("redis-server starts");
        reference
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A connection to the reference server.
    pub fn client(&self) -> redis::Connection {
        let client = redis::Client::open(format!("redis://{}/", self.addr)).expect("client url");
        client.get_connection_with_timeout(Duration::from_secs(5)).expect("connect to redis-server")
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The reply to `args` as comparable text: the value's debug form, or the error as Redis
/// words it. With `unordered`, the elements of array and set replies, nested ones too, are
/// sorted first (replies whose order Redis does not define, such as SMEMBERS or HGETALL's
/// pairs).
pub fn reply_text(con: &mut redis::Connection, args: &[&[u8]], unordered: bool) -> String {
    let mut cmd = redis::cmd(std::str::from_utf8(args[0]).unwrap_or("?"));
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    match cmd.query::<redis::Value>(con) {
        Ok(value) if unordered => unordered_text(&value),
        Ok(value) => format!("{value:?}"),
        Err(e) => format!("error: {}", error_text(&e)),
    }
}

/// `value` as text with the elements of every array and set in it sorted (an SSCAN page's
/// members too), the kind of each kept.
fn unordered_text(value: &redis::Value) -> String {
    let (kind, items) = match value {
        redis::Value::Array(items) => ("array", items),
        redis::Value::Set(items) => ("set", items),
        other => return format!("{other:?}"),
    };
    let mut items: Vec<String> = items.iter().map(unordered_text).collect();
    items.sort();
    format!("unordered {kind} {items:?}")
}

/// Sends each line of `script` (a command, its words split on whitespace; a line starting with
/// `~ ` compares its array reply unordered) to `ppdb` and to `redis`, and panics at the first
/// reply that differs.
pub fn assert_same_replies(ppdb: &mut redis::Connection, redis: &mut redis::Connection, script: &str) {
    for line in script.lines().map(str::trim).filter(|line| !line.is_empty()) {
        let (unordered, command) = match line.strip_prefix("~ ") {
            Some(command) => (true, command),
            None => (false, line),
        };
        let args: Vec<&[u8]> = command.split_whitespace().map(str::as_bytes).collect();
        let ours = reply_text(ppdb, &args, unordered);
        let theirs = reply_text(redis, &args, unordered);
        assert_eq!(ours, theirs, "`{command}`: PPDB's reply (left) differs from Redis's (right)");
    }
}

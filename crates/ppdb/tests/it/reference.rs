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
}

impl Reference {
    /// Starts `redis-server` with no persistence and waits until it answers.
    pub fn start() -> Reference {
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
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server, the reference implementation, must be installed (`.ci/run` installs it)");
        let reference = Reference { child, addr };
        let client = redis::Client::open(format!("redis://{addr}/")).expect("client url");
        wait_for(Duration::from_secs(10), || client.get_connection().ok()).expect("redis-server starts");
        reference
    }

    /// The reference server's address.
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
/// words it. With `unordered`, the elements of an array reply are sorted first (replies whose
/// order Redis does not define, such as SMEMBERS or HGETALL's pairs).
pub fn reply_text(con: &mut redis::Connection, args: &[&[u8]], unordered: bool) -> String {
    let mut cmd = redis::cmd(std::str::from_utf8(args[0]).unwrap_or("?"));
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    match cmd.query::<redis::Value>(con) {
        Ok(redis::Value::Array(items)) if unordered => {
            let mut items: Vec<String> = items.iter().map(|item| format!("{item:?}")).collect();
            items.sort();
            format!("unordered {items:?}")
        }
        Ok(value) => format!("{value:?}"),
        Err(e) => format!("error: {}", error_text(&e)),
    }
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

//! The memcached protocol of PPDB against the real memcached and a mainstream client.
//!
//! - `differential`: the same random request sequences to a real `memcached` (installed by
//!   `.ci/run`) and to a 3-node PPDB cluster, every reply compared.
//! - `client_library`: pymemcache through every node of a cluster.
//! - `crash`: kill -9 of the leader during a write loop loses no item answered `STORED`.

mod client_library;
mod crash;
mod differential;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::{free_addrs, wait_for};

/// A text-protocol connection that reads one request's whole reply: each request is followed
/// by `mn`, whose `MN` marks where the reply ends (nothing at all for a `noreply` request).
pub struct TextClient {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl TextClient {
    /// Connects to `addr`.
    pub fn connect(addr: SocketAddr) -> std::io::Result<TextClient> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(Duration::from_secs(15)))?;
        stream.set_nodelay(true)?;
        Ok(TextClient { reader: BufReader::new(stream.try_clone()?), writer: stream })
    }

    /// Sends `request` (its lines and data blocks, `\r\n` included) and returns the reply's
    /// lines, `\r\n` removed.
    pub fn call(&mut self, request: &[u8]) -> std::io::Result<Vec<String>> {
        let mut bytes = request.to_vec();
        bytes.extend_from_slice(b"mn\r\n");
        self.writer.write_all(&bytes)?;
        let mut lines = Vec::new();
        loop {
            let mut line = Vec::new();
            if self.reader.read_until(b'\n', &mut line)? == 0 {
                lines.push("<closed>".to_string());
                return Ok(lines);
            }
            let text = String::from_utf8_lossy(&line).trim_end_matches(['\r', '\n']).to_string();
            if text == "MN" {
                return Ok(lines);
            }
            lines.push(text);
        }
    }
}

/// A `memcached` process on a free loopback port, killed when dropped.
pub struct RealMemcached {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl RealMemcached {
    /// Starts `memcached` (1 MiB items, no UDP); `None` when it is not installed.
    pub fn start() -> Option<RealMemcached> {
        let addr = free_addrs(1)[0];
        let mut command = Command::new("memcached");
        command.args(["-p", &addr.port().to_string(), "-U", "0", "-l", "127.0.0.1", "-I", "1m"]);
        if running_as_root() {
            command.args(["-u", "root"]);
        }
        let child = command.stdout(Stdio::null()).stderr(Stdio::null()).spawn().ok()?;
        let real = RealMemcached { child, addr };
        wait_for(Duration::from_secs(10), || TextClient::connect(addr).ok()).expect("memcached starts");
        Some(real)
    }
}

impl Drop for RealMemcached {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// memcached refuses to run as root without `-u`.
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

//! pymemcache, a mainstream memcached client, through every node of a 3-node cluster: set,
//! get, delete, incr/decr, cas, expiry, 1 MiB values and flush_all, each as the library
//! expects memcached to answer. Skipped, with a message, where python3 or pymemcache is
//! missing (`.ci/run` installs both).

use crate::support::{ClusterOptions, TestCluster};
use std::process::Command;

/// The client's session against one node (`argv[1]` is its port, `argv[2]` a key prefix).
const SCRIPT: &str = r#"
import sys, time
from pymemcache.client.base import Client
port, p = int(sys.argv[1]), sys.argv[2]
c = Client(("127.0.0.1", port), connect_timeout=5, timeout=15)
assert c.set(p + "k", b"v", noreply=False)
assert c.get(p + "k") == b"v"
assert c.get_many([p + "k", p + "missing"]) == {p + "k": b"v"}
assert c.add(p + "k", b"w", noreply=False) is False
assert c.replace(p + "k", b"w", noreply=False) is True
assert c.append(p + "k", b"!", noreply=False) and c.prepend(p + "k", b"<", noreply=False)
assert c.get(p + "k") == b"<w!"
assert c.delete(p + "k", noreply=False) is True
assert c.delete(p + "k", noreply=False) is False
assert c.get(p + "k") is None
c.set(p + "n", b"10")
assert c.incr(p + "n", 5) == 15
assert c.decr(p + "n", 100) == 0
c.set(p + "n", b"18446744073709551615")
assert c.incr(p + "n", 2) == 1, "incr wraps at 2^64"
assert c.incr(p + "absent", 1) is None
value, cas = c.gets(p + "n")
assert c.cas(p + "n", b"7", cas, noreply=False) is True
assert c.cas(p + "n", b"8", cas, noreply=False) is False, "a stale cas unique loses"
assert c.get(p + "n") == b"7"
big = bytes(range(256)) * 4096
assert len(big) == 1024 * 1024
assert c.set(p + "big", big, noreply=False)
assert c.get(p + "big") == big
assert c.set(p + "gone", b"x", expire=-1, noreply=False)
assert c.get(p + "gone") is None, "a negative exptime expires at once"
assert c.set(p + "soon", b"x", expire=1, noreply=False)
assert c.get(p + "soon") == b"x"
deadline = time.time() + 10
while c.get(p + "soon") is not None:
    assert time.time() < deadline, "an item with exptime 1 expires"
    time.sleep(0.05)
assert c.touch(p + "big", 1000, noreply=False) is True
assert c.flush_all(noreply=False)
assert c.get(p + "big") is None and c.get(p + "n") is None
stats = c.stats()
assert b"cmd_get" in stats or "cmd_get" in stats, stats
print("ok")
"#;

fn pymemcache_available() -> bool {
    Command::new("python3").args(["-c", "import pymemcache"]).output().is_ok_and(|out| out.status.success())
}

#[test]
fn pymemcache_works_through_every_node() {
    if !pymemcache_available() {
        eprintln!("SKIPPED: python3 with pymemcache is not installed (`.ci/run` installs it: pip install pymemcache)");
        return;
    }
    let cluster = TestCluster::start(ClusterOptions::default());
    for id in cluster.ids() {
        let port = cluster.node(id).memcached_addr.port().to_string();
        let out = Command::new("python3")
            .args(["-c", SCRIPT, &port, &format!("node{id}:")])
            .output()
            .expect("run python3");
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success() && stdout.trim() == "ok", "through node {id}:\n{stdout}\n{stderr}");
    }
}

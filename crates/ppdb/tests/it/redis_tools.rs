//! The real Redis tools against a real cluster: `redis-cli` (as a user types it) and
//! `redis-benchmark -t set,get`. They come from Debian's redis-tools, which `.ci/run` installs;
//! where they are missing the test says so and passes vacuously only outside CI.

use crate::support::{ClusterOptions, TestCluster};
use std::process::Command;

fn tool(name: &str) -> Option<std::path::PathBuf> {
    let found = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|p| p.join(name)).find(|p| p.is_file()));
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{name} is missing in CI: .ci/run must install redis-tools"
        );
        eprintln!("skipping: {name} is not installed (apt-get install redis-tools)");
    }
    found
}

#[test]
fn redis_cli_and_redis_benchmark_work_against_any_node() {
    let (Some(cli), Some(bench)) = (tool("redis-cli"), tool("redis-benchmark")) else { return };
    let cluster = TestCluster::start(ClusterOptions::default());
    cluster.wait_ready();
    let addr = |id: u64| cluster.node(id).client_addr;
    let run_cli = |id: u64, args: &[&str]| {
        let out = Command::new(&cli)
            .args(["-h", &addr(id).ip().to_string(), "-p", &addr(id).port().to_string()])
            .args(args)
            .output()
            .expect("run redis-cli");
        assert!(out.status.success(), "redis-cli {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(run_cli(1, &["set", "tool:greeting", "hello world"]), "OK");
    assert_eq!(run_cli(2, &["get", "tool:greeting"]), "hello world");
    assert_eq!(run_cli(3, &["incrby", "tool:n", "41"]), "41");
    assert_eq!(run_cli(1, &["ping"]), "PONG");
    // Interactive mode: commands on stdin, as a user types them.
    let mut child = Command::new(&cli)
        .args(["-p", &addr(2).port().to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start redis-cli");
    {
        use std::io::Write;
        let stdin = child.stdin.as_mut().expect("stdin");
        stdin.write_all(b"incr tool:n\nget tool:greeting\nexists tool:greeting tool:none\n").expect("type");
    }
    let out = child.wait_with_output().expect("redis-cli exits at end of input");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("42") && text.contains("hello world") && text.contains('1'), "{text}");

    let out = Command::new(&bench)
        .args(["-p", &addr(1).port().to_string(), "-t", "set,get", "-n", "2000", "-c", "20", "-q"])
        .output()
        .expect("run redis-benchmark");
    let report = String::from_utf8_lossy(&out.stdout);
    let errors = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "redis-benchmark failed: {errors}");
    assert!(report.contains("SET:") && report.contains("GET:"), "{report}");
    assert!(!report.contains("ERR") && !errors.contains("ERR"), "{report}{errors}");
}

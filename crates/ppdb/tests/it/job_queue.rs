//! A real job queue on a 3-node cluster, unchanged: Celery with its Redis broker and Redis
//! result backend. Jobs are enqueued through node 1, a worker takes them from node 2 and
//! stores their results through node 3, and the client waits for each result on node 1 the
//! way Celery does, by subscribing to the job's channel: the result reaches it through
//! pub/sub across nodes.
//!
//! Skips, saying why, when `python3` or Celery is missing (`.ci/run` installs Celery). RQ is
//! not used: RQ 2 and later store every job's result in a stream (XADD), which PPDB lacks.

use crate::support::{wait_for, ClusterOptions, TestCluster};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Jobs enqueued.
const JOBS: usize = 20;
/// Longest wait for the worker to process every job.
const JOBS_DEADLINE: Duration = Duration::from_secs(120);

/// The Celery application: one task. redis-py's lock (kombu's mutex over unacknowledged
/// messages) and kombu's binding expiry run Lua scripts, which PPDB does not run yet, so
/// messages are acknowledged on delivery and the worker has no remote control queue.
const TASKS_PY: &str = r#"
import os
from celery import Celery

app = Celery("tasks", broker=os.environ["BROKER_URL"], backend=os.environ["BACKEND_URL"])
app.conf.broker_connection_retry_on_startup = True
app.conf.broker_transport_options = {"ack_emulation": False}
app.conf.worker_enable_remote_control = False


@app.task
def add(x, y):
    return x + y
"#;

/// Enqueues the jobs and waits for every result (Celery's `get` subscribes to the job's
/// channel and reads the result once published).
const CLIENT_PY: &str = r#"
import sys
from tasks import add

jobs = int(sys.argv[1])
results = [add.delay(i, i * 10) for i in range(jobs)]
values = [r.get(timeout=100) for r in results]
assert values == [i * 11 for i in range(jobs)], values
print("results", len(values))
"#;

/// A child process killed when dropped.
struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether `python3` can import Celery and redis-py.
fn celery_available() -> bool {
    let probe = Command::new("python3").args(["-c", "import celery, redis"]).stderr(Stdio::null()).status();
    probe.is_ok_and(|status| status.success())
}

fn python(dir: &Path, broker: String, backend: String) -> Command {
    let mut command = Command::new("python3");
    command.current_dir(dir).env("PYTHONPATH", dir).env("BROKER_URL", broker).env("BACKEND_URL", backend);
    command
}

#[test]
fn celery_enqueues_and_processes_jobs_end_to_end_across_three_nodes() {
    if !celery_available() {
        eprintln!("SKIPPED: python3 with celery and redis is required (`.ci/run` installs them)");
        return;
    }
    let cluster = TestCluster::start(ClusterOptions { shards: 1, ..ClusterOptions::default() });
    let url = |id: u64| format!("redis://{}/0", cluster.node(id).client_addr);
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("tasks.py"), TASKS_PY).expect("write tasks.py");
    std::fs::write(dir.path().join("client.py"), CLIENT_PY).expect("write client.py");
    let worker_log = std::fs::File::create(dir.path().join("worker.log")).expect("worker log");
    let worker = python(dir.path(), url(2), url(3))
        .args(["-m", "celery", "-A", "tasks", "worker", "--pool=solo", "--without-mingle"])
        .args(["--without-gossip", "--without-heartbeat", "--loglevel=WARNING"])
        .stdout(worker_log.try_clone().expect("log"))
        .stderr(worker_log)
        .spawn()
        .expect("start the celery worker");
    let _worker = Worker(worker);
    let mut client = python(dir.path(), url(1), url(1))
        .args(["client.py", &JOBS.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the celery client");
    let finished = wait_for(JOBS_DEADLINE, || client.try_wait().ok().flatten());
    if finished.is_none() {
        let _ = client.kill();
    }
    let output = client.wait_with_output().expect("client output");
    let worker_log = std::fs::read_to_string(dir.path().join("worker.log")).unwrap_or_default();
    assert!(
        output.status.success() && String::from_utf8_lossy(&output.stdout).contains(&format!("results {JOBS}")),
        "the client did not receive every job's result\nclient stdout: {}\nclient stderr: {}\nworker log: {worker_log}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
}

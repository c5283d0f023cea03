//! The client side of the node runtime: a cloneable handle that sends requests to the loop
//! and waits for their answers, with a deadline.
//!
//! A request is handed to the loop *when the method is called*, not when its future is first
//! polled: requests made one after another from one task reach the loop, and so the Raft log,
//! in that order, even if their answers are awaited together (pipelining).

use super::directory::{DirectoryCommand, DirectoryOutput};
use super::runtime::GroupReport;
use super::runtime::Request;
use super::state_machine::StateMachine;
use crate::error::Error;
use crate::storage::wal::GroupId;
use std::future::Future;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// A handle on a running node's groups.
pub struct NodeHandle<S: StateMachine> {
    requests: mpsc::UnboundedSender<Request<S>>,
    timeout: Duration,
}

impl<S: StateMachine> Clone for NodeHandle<S> {
    fn clone(&self) -> Self {
        NodeHandle { requests: self.requests.clone(), timeout: self.timeout }
    }
}

impl<S: StateMachine> NodeHandle<S> {
    /// A handle sending to `requests`; every request gives up after `timeout`.
    pub fn new(requests: mpsc::UnboundedSender<Request<S>>, timeout: Duration) -> NodeHandle<S> {
        NodeHandle { requests, timeout }
    }

    /// The deadline of every request.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Replicates `command` in `group`; answers once it is committed and applied here.
    pub fn propose(
        &self,
        group: GroupId,
        command: Vec<u8>,
    ) -> impl Future<Output = Result<S::Output, Error>> + Send + 'static {
        let batch = self.propose_batch(group, vec![command]);
        async move { batch.await.pop().unwrap_or_else(|| Err(stopped())) }
    }

    /// Replicates `commands` in `group` as consecutive entries, routed as a whole; answers
    /// each once applied, in order.
    pub fn propose_batch(
        &self,
        group: GroupId,
        commands: Vec<Vec<u8>>,
    ) -> impl Future<Output = Vec<Result<S::Output, Error>>> + Send + 'static {
        let (replies, receivers) = channels(commands.len());
        let sent = self.requests.send(Request::Propose { group, commands, replies }).is_ok();
        wait_all(sent, receivers, self.timeout, "a write to commit")
    }

    /// Answers `query` from `group` linearizably (ReadIndex).
    pub fn read(
        &self,
        group: GroupId,
        query: S::Query,
    ) -> impl Future<Output = Result<S::Output, Error>> + Send + 'static {
        let batch = self.read_batch(group, vec![query]);
        async move { batch.await.pop().unwrap_or_else(|| Err(stopped())) }
    }

    /// Answers `queries` from `group` linearizably, with one ReadIndex round for all.
    pub fn read_batch(
        &self,
        group: GroupId,
        queries: Vec<S::Query>,
    ) -> impl Future<Output = Vec<Result<S::Output, Error>>> + Send + 'static {
        let (replies, receivers) = channels(queries.len());
        let sent = self.requests.send(Request::Read { group, queries, replies }).is_ok();
        wait_all(sent, receivers, self.timeout, "a linearizable read")
    }

    /// Records `command` in the cluster directory through the meta group, if this node leads
    /// it (otherwise [`Error::Consensus`] names the leader it knows). The inner result is the
    /// directory's verdict: refused commands change nothing.
    pub async fn propose_membership(&self, command: DirectoryCommand) -> Result<DirectoryOutput, Error> {
        let submitted = self.submit(|reply| Request::Membership { command, reply });
        wait(submitted, self.timeout, "a membership change").await?
    }

    /// Every group's Raft status on this node.
    pub async fn status(&self) -> Result<Vec<GroupReport>, Error> {
        let submitted = self.submit(|reply| Request::Status { reply });
        wait(submitted, self.timeout, "node status").await
    }

    fn submit<T>(
        &self,
        request: impl FnOnce(oneshot::Sender<T>) -> Request<S>,
    ) -> Result<oneshot::Receiver<T>, Error> {
        let (tx, rx) = oneshot::channel();
        self.requests.send(request(tx)).map_err(|_| stopped())?;
        Ok(rx)
    }
}

type Answer<T> = oneshot::Receiver<Result<T, Error>>;
type Answering<T> = oneshot::Sender<Result<T, Error>>;

fn channels<T>(n: usize) -> (Vec<Answering<T>>, Vec<Answer<T>>) {
    (0..n).map(|_| oneshot::channel()).unzip()
}

/// Waits for every answer of a batch, sharing one deadline.
async fn wait_all<T: Send + 'static>(
    sent: bool,
    receivers: Vec<Answer<T>>,
    timeout: Duration,
    operation: &'static str,
) -> Vec<Result<T, Error>> {
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut out = Vec::with_capacity(receivers.len());
    for rx in receivers {
        out.push(if !sent {
            Err(stopped())
        } else {
            match tokio::time::timeout_at(deadline, rx).await {
                Ok(Ok(answer)) => answer,
                Ok(Err(_)) => Err(stopped()),
                Err(_) => Err(Error::Timeout {
                    operation: operation.to_string(),
                    elapsed_ms: started.elapsed().as_millis() as u64,
                }),
            }
        });
    }
    out
}

async fn wait<T>(
    submitted: Result<oneshot::Receiver<T>, Error>,
    timeout: Duration,
    operation: &str,
) -> Result<T, Error> {
    let started = Instant::now();
    match tokio::time::timeout(timeout, submitted?).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(_)) => Err(stopped()),
        Err(_) => Err(Error::Timeout {
            operation: operation.to_string(),
            elapsed_ms: started.elapsed().as_millis() as u64,
        }),
    }
}

fn stopped() -> Error {
    Error::State("the node runtime has stopped (see the node's log for why)".into())
}

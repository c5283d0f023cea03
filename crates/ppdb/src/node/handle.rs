//! The client side of the node runtime: a cloneable handle that sends requests to the loop
//! and waits for their answers, with a deadline.

use super::runtime::Request;
use super::state_machine::StateMachine;
use crate::error::Error;
use crate::storage::wal::GroupId;
use ppdb_raft::Status;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// A handle on a running node's groups.
pub struct NodeHandle<S: StateMachine> {
    requests: mpsc::Sender<Request<S>>,
    timeout: Duration,
}

impl<S: StateMachine> Clone for NodeHandle<S> {
    fn clone(&self) -> Self {
        NodeHandle { requests: self.requests.clone(), timeout: self.timeout }
    }
}

impl<S: StateMachine> NodeHandle<S> {
    /// A handle sending to `requests`; every request gives up after `timeout`.
    pub fn new(requests: mpsc::Sender<Request<S>>, timeout: Duration) -> NodeHandle<S> {
        NodeHandle { requests, timeout }
    }

    /// Replicates `command` in `group`; answers once it is committed and applied here.
    pub async fn propose(&self, group: GroupId, command: Vec<u8>) -> Result<S::Output, Error> {
        self.call("a write to commit", |reply| Request::Propose { group, command, reply }).await?
    }

    /// Answers `query` from `group` linearizably (ReadIndex).
    pub async fn read(&self, group: GroupId, query: S::Query) -> Result<S::Output, Error> {
        self.call("a linearizable read", |reply| Request::Read { group, query, reply }).await?
    }

    /// Every group's Raft status on this node.
    pub async fn status(&self) -> Result<Vec<(GroupId, Status)>, Error> {
        self.call("node status", |reply| Request::Status { reply }).await
    }

    async fn call<T>(
        &self,
        operation: &str,
        request: impl FnOnce(oneshot::Sender<T>) -> Request<S>,
    ) -> Result<T, Error> {
        let started = Instant::now();
        let (tx, rx) = oneshot::channel();
        self.requests.send(request(tx)).await.map_err(|_| stopped())?;
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err(stopped()),
            Err(_) => Err(Error::Timeout {
                operation: operation.to_string(),
                elapsed_ms: started.elapsed().as_millis() as u64,
            }),
        }
    }
}

fn stopped() -> Error {
    Error::State("the node runtime has stopped (see the node's log for why)".into())
}

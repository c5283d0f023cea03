//! COMMITs of concurrent cross-shard transactions joined into one log entry per shard.
//!
//! Every cross-shard transaction ends with a COMMIT in each of its shards, sent once the
//! client has its replies ([`crate::txn::resolver::finish`]). On a busy shard leader those
//! COMMITs arrive many per round, and one log entry each would cost a busy leader as much as the
//! client writes it serves: each entry is encoded, written to the WAL, sent to the followers,
//! decoded and applied on every replica. Here a shard leader's COMMITs queue per shard, and one
//! task per queue takes everything queued since it last ran and proposes it as one
//! [`TxnEntry::Commits`] entry (a lone COMMIT stays a [`TxnEntry::Commit`]), then hands each
//! caller its own transaction's answer. As in the forwarding queues
//! ([`super::forward_batch`]), a batch is proposed as soon as it is taken and answered on a task
//! of its own, so nothing waits for a timer or for an earlier batch.
//!
//! A COMMIT has no order to keep with the operations around it: its coordinator sends it alone,
//! after the transaction is decided, and applying it twice answers the same outcome. So taking
//! it out of the batch it arrived in (a forwarded request mixes several callers' operations)
//! changes nothing any caller can tell.

use crate::error::Error;
use crate::kv::Reply;
use crate::node::NodeHandle;
use crate::server::shard::KvShard;
use crate::storage::wal::GroupId;
use crate::txn::entry::COMMITS_MAX;
use crate::txn::{TxnEntry, TxnId};
use ppdb_raft::ProposeError;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use tokio::sync::{mpsc, oneshot};

/// One queued COMMIT and where its answer goes.
struct Pending {
    id: TxnId,
    answer: oneshot::Sender<Result<Reply, Error>>,
}

/// The per-shard COMMIT queues of one node.
pub struct CommitJoiner {
    handle: NodeHandle<KvShard>,
    queues: Mutex<HashMap<u64, mpsc::UnboundedSender<Pending>>>,
}

impl CommitJoiner {
    /// Queues proposing through `handle` (this node's replicas).
    pub fn new(handle: NodeHandle<KvShard>) -> CommitJoiner {
        CommitJoiner { handle, queues: Mutex::new(HashMap::new()) }
    }

    /// Queues the COMMIT of transaction `id` in `shard` (led here) now; the future yields its
    /// reply, as a lone COMMIT entry's would be. Must be called on a tokio runtime.
    pub fn commit(
        &self,
        shard: u64,
        id: TxnId,
    ) -> impl Future<Output = Result<Reply, Error>> + Send + 'static {
        let (answer, reply) = oneshot::channel();
        let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        let queue = queues.entry(shard).or_insert_with(|| {
            let (queue, pending) = mpsc::unbounded_channel();
            tokio::spawn(propose_joined(self.handle.clone(), shard, pending));
            queue
        });
        if let Err(mpsc::error::SendError(lost)) = queue.send(Pending { id, answer }) {
            // The queue's task is gone (the runtime is stopping): nothing was proposed.
            let _ = lost.answer.send(Err(Error::Consensus(ProposeError::NotLeader { leader: None })));
        }
        async move { reply.await.unwrap_or_else(|_| Err(Error::State("the commit queue stopped".into()))) }
    }
}

/// The task of `shard`'s queue: proposes whatever is queued each time it runs, as one entry.
async fn propose_joined(
    handle: NodeHandle<KvShard>,
    shard: u64,
    mut queue: mpsc::UnboundedReceiver<Pending>,
) {
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while batch.len() < COMMITS_MAX {
            match queue.try_recv() {
                Ok(pending) => batch.push(pending),
                Err(_) => break,
            }
        }
        let entry = match batch.as_slice() {
            [one] => TxnEntry::Commit(one.id),
            _ => TxnEntry::Commits(batch.iter().map(|pending| pending.id).collect()),
        };
        let proposal = handle.propose_batch(GroupId(shard), vec![entry.encode()]);
        tokio::spawn(async move {
            let result = proposal.await.pop().unwrap_or_else(|| Err(Error::State("empty batch".into())));
            answer_each(batch, result);
        });
    }
}

/// Hands each queued COMMIT its answer from the joined entry's `result`.
fn answer_each(batch: Vec<Pending>, result: Result<Reply, Error>) {
    let mut batch = batch.into_iter();
    match result {
        Ok(Reply::Array(replies)) if batch.len() > 1 => {
            let mut replies = replies.into_iter();
            for pending in batch {
                let reply = replies
                    .next()
                    .ok_or_else(|| Error::State("a joined commit answered too few replies".into()));
                let _ = pending.answer.send(reply);
            }
        }
        Ok(reply) if batch.len() == 1 => {
            if let Some(pending) = batch.next() {
                let _ = pending.answer.send(Ok(reply));
            }
        }
        Ok(other) => {
            for pending in batch {
                let _ = pending.answer.send(Err(Error::State(format!("a joined commit answered {other:?}"))));
            }
        }
        Err(error) => {
            for pending in batch {
                let _ = pending.answer.send(Err(same_error(&error)));
            }
        }
    }
}

/// `error` again, for each caller of a joined entry that failed: the same variant where the
/// caller acts on it (an error that says the entry certainly did not take effect is retried
/// elsewhere), its text otherwise (the coordinator only logs it; a resolver finishes the
/// transaction).
fn same_error(error: &Error) -> Error {
    match error {
        Error::Consensus(refusal) => Error::Consensus(refusal.clone()),
        Error::ProposalDropped { group } => Error::ProposalDropped { group: *group },
        Error::Partition { group } => Error::Partition { group: *group },
        Error::Timeout { operation, elapsed_ms } => {
            Error::Timeout { operation: operation.clone(), elapsed_ms: *elapsed_ms }
        }
        other => Error::State(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending() -> (Pending, oneshot::Receiver<Result<Reply, Error>>) {
        let (answer, reply) = oneshot::channel();
        (Pending { id: TxnId(1), answer }, reply)
    }

    #[test]
    fn each_caller_gets_its_own_reply_or_the_same_error() {
        let ((a, mut ra), (b, mut rb)) = (pending(), pending());
        answer_each(vec![a, b], Ok(Reply::Array(vec![Reply::Status("COMMITTED"), Reply::Status("ABORTED")])));
        assert!(matches!(ra.try_recv(), Ok(Ok(Reply::Status("COMMITTED")))));
        assert!(matches!(rb.try_recv(), Ok(Ok(Reply::Status("ABORTED")))));

        let (a, mut ra) = pending();
        answer_each(vec![a], Ok(Reply::Status("COMMITTED")));
        assert!(matches!(ra.try_recv(), Ok(Ok(Reply::Status("COMMITTED")))));

        let ((a, mut ra), (b, mut rb)) = (pending(), pending());
        let not_leader = Error::Consensus(ProposeError::NotLeader { leader: Some(ppdb_raft::NodeId(2)) });
        answer_each(vec![a, b], Err(not_leader));
        for reply in [ra.try_recv(), rb.try_recv()] {
            assert!(
                matches!(
                    reply,
                    Ok(Err(Error::Consensus(ProposeError::NotLeader { leader: Some(ppdb_raft::NodeId(2)) })))
                ),
                "retryable errors keep their variant: {reply:?}"
            );
        }

        let ((a, mut ra), (b, mut rb)) = (pending(), pending());
        answer_each(vec![a, b], Ok(Reply::Array(vec![Reply::Status("COMMITTED")])));
        assert!(matches!(ra.try_recv(), Ok(Ok(_))));
        assert!(matches!(rb.try_recv(), Ok(Err(Error::State(_)))), "a missing reply is an error");
    }
}

//! Blocking pops (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP): wait for a key to change, and
//! try again.
//!
//! A blocking pop is its non-blocking form ([`BlockingPop::op`], e.g. LPOP over the keys)
//! tried as an ordinary write through the shard's log, as often as needed: when the try pops
//! nothing (a nil reply), the client waits until this node's replica of the shard applies a
//! write that creates one of its keys (`waiters`), then tries again, until its timeout (then
//! the nil array). Since a pop is only ever applied through the log, an element is delivered
//! once and only once whichever node leads: a client blocked on a node that loses leadership
//! simply sends its next try to the new leader.
//!
//! The one delicate case is a try whose answer is lost (the leader died or the deadline passed
//! with the entry in flight): it may have popped an element that no one would ever deliver.
//! Each try's entry carries an id ([`WriteOp::Attempt`]), and this node's replica records the
//! reply of every try of its clients it applies. A lost answer is settled with a fence: an
//! empty attempt committed after the try was sent. Once this node's replica has applied the
//! fence, the try was applied before it (and its recorded reply is the answer) or never will
//! be (a leader that commits the fence has the try before it in its log, or will overwrite it).
//!
//! Generic over the pop: another blocking command is a [`BlockingPop`] whose op answers
//! `Nil` or `NilArray` when there is nothing to pop (see [`popped`]), with the keys whose
//! creation may change that.

pub mod waiters;

use std::time::{Duration, Instant};

use crate::error::Error;
use crate::kv::{KvWrite, Reply, WriteOp};
use crate::server::client::executor::Executor;
use crate::server::client::forward::ShardOp;
use crate::server::resp::command::BlockingPop;

pub use waiters::popped;
use waiters::{Attempt, Outcome, Waiter};

/// Pause before trying again when a try or a fence certainly did not take effect (the
/// executor already waited out an election up to its request deadline).
const RETRY_BACKOFF: Duration = Duration::from_millis(50);

/// Runs a blocking pop for a client until something is popped (that reply), the timeout
/// passes (the nil array), or an error that is the client's answer (`WRONGTYPE` is a reply;
/// an error here is a try whose outcome could not be settled before the timeout).
pub async fn serve(executor: &Executor, pop: &BlockingPop) -> Result<Reply, Error> {
    let shard = executor.one_shard(&pop.op.keys())?;
    let deadline = pop.timeout.map(|timeout| Instant::now() + timeout);
    let waiter = Waiter::enter(pop.keys.clone());
    loop {
        let Some(reply) = try_pop(executor, shard, &pop.op, &waiter, deadline).await? else {
            return Ok(Reply::NilArray);
        };
        if popped(&reply) {
            return Ok(reply);
        }
        if until(deadline, waiter.turn()).await.is_none() {
            return Ok(Reply::NilArray);
        }
    }
}

/// One try of `op` through the log, its reply once known; none when the deadline passed
/// with the try certainly not applied.
async fn try_pop(
    executor: &Executor,
    shard: u64,
    op: &WriteOp,
    waiter: &Waiter,
    deadline: Option<Instant>,
) -> Result<Option<Reply>, Error> {
    loop {
        let attempt = waiter.attempt();
        let entry = WriteOp::Attempt { id: attempt.id(), op: Some(Box::new(op.clone())) };
        let error = match executor.on_shard(shard, ShardOp::Write(KvWrite::unstamped(entry))).await {
            Ok(reply) => return Ok(Some(reply)),
            Err(error) => error,
        };
        if matches!(error, Error::Storage(_) | Error::CommandTooLarge { .. }) {
            return Err(error);
        }
        if !not_applied(&error) {
            if let Some(reply) = settle(executor, shard, waiter, &attempt, deadline, error).await? {
                return Ok(Some(reply));
            }
        }
        if passed(deadline) {
            return Ok(None);
        }
        tokio::time::sleep(RETRY_BACKOFF).await;
    }
}

/// What became of `attempt`, whose answer was lost with `error`: its reply if it was applied,
/// none if it never will be. `error` is the answer when neither can be known before the
/// deadline (no fence commits) or ever (this node's replica was replaced by a snapshot).
async fn settle(
    executor: &Executor,
    shard: u64,
    waiter: &Waiter,
    attempt: &Attempt,
    deadline: Option<Instant>,
    error: Error,
) -> Result<Option<Reply>, Error> {
    loop {
        if let Outcome::Applied(reply) = attempt.outcome() {
            return Ok(Some(reply));
        }
        let fence = waiter.attempt();
        let entry = WriteOp::Attempt { id: fence.id(), op: None };
        if executor.on_shard(shard, ShardOp::Write(KvWrite::unstamped(entry))).await.is_ok() {
            // Committed: once applied here, the attempt's fate is sealed.
            loop {
                match fence.outcome() {
                    Outcome::Pending => {
                        if until(deadline, waiter.applied()).await.is_none() {
                            return Err(error);
                        }
                    }
                    Outcome::Lost => return Err(error),
                    Outcome::Applied(_) => {
                        return match attempt.outcome() {
                            Outcome::Applied(reply) => Ok(Some(reply)),
                            Outcome::Pending => Ok(None),
                            Outcome::Lost => Err(error),
                        }
                    }
                }
            }
        }
        if passed(deadline) {
            return Err(error);
        }
        tokio::time::sleep(RETRY_BACKOFF).await;
    }
}

/// Whether a failed write certainly did not take effect, so trying again is safe.
fn not_applied(error: &Error) -> bool {
    matches!(error, Error::Consensus(_) | Error::ProposalDropped { .. } | Error::Partition { .. })
}

/// `future`'s output, or none if the deadline passes first.
async fn until<T>(deadline: Option<Instant>, future: impl std::future::Future<Output = T>) -> Option<T> {
    match deadline {
        None => Some(future.await),
        Some(deadline) => tokio::time::timeout_at(deadline.into(), future).await.ok(),
    }
}

fn passed(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|deadline| Instant::now() >= deadline)
}

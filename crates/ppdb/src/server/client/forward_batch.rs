//! Forwarded operations of concurrent clients joined into one request per leader.
//!
//! A client connection whose shard is led elsewhere hands its operations to the queue of that
//! leader for reads or for writes. One task per queue takes everything queued since it last
//! ran, sends it as one forwarded batch (a section per caller, whatever its shard), and gives
//! each caller its own answers. Under load a leader then serves about one request per node and
//! round instead of one per client and shard, much as the WAL's group commit shares one fsync.
//! A batch is sent as soon as it is taken and answered on a task of its own, so batches do not
//! wait for each other and reach the leader in the order they were queued.
//!
//! Every request fits one peer frame: a caller's operations are cut into several jobs when
//! together they would not (`JOB_BYTES_MAX`, or more than a batch's operations), and an operation too large for any frame (more
//! than one log entry's command) is refused at once, without being sent.

use super::forward::{self, ForwardOutcome, Section, ShardOp, BATCH_OPS_MAX};
use crate::error::ErrorCode;
use crate::limits::{COMMAND_BYTES_MAX, FORWARDED_OPS_MAX, FRAME_BYTES_MAX, FRAME_ENVELOPE_BYTES_MAX};
use crate::transport::{Transport, TransportError};
use ppdb_raft::NodeId;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Encoded bytes of operations one joined batch may carry; a caller's operations larger than
/// this travel alone, as they would unjoined.
const JOINED_BYTES_MAX: usize = 1024 * 1024;

/// Bytes of a forwarded request besides its operations: tag, section count, and a shard and
/// operation count per section.
const REQUEST_HEADER_BYTES_MAX: usize = 1 + 4 + 12 * FORWARDED_OPS_MAX;

/// Most encoded bytes of operations in one job, so that its request fits a frame even with the
/// largest header; one operation of up to a command (plus its tag and length) always fits.
const JOB_BYTES_MAX: usize = FRAME_BYTES_MAX - FRAME_ENVELOPE_BYTES_MAX - REQUEST_HEADER_BYTES_MAX;

/// Most encoded bytes of one forwarded operation: a tag, a length and one log entry's command.
const OP_BYTES_MAX: usize = 1 + 4 + COMMAND_BYTES_MAX;

const _: () = assert!(OP_BYTES_MAX <= JOB_BYTES_MAX);
const _: () = assert!(JOINED_BYTES_MAX <= JOB_BYTES_MAX);

/// Why a forwarded batch got no answers.
#[derive(Debug, Clone)]
pub enum ForwardFailure {
    /// The request or its response was lost, or timed out: a write's outcome is unknown.
    Transport(TransportError),
    /// The leader's answer could not be read.
    BadReply(String),
}

/// Where one part of a caller's operations gets its outcomes.
enum Part {
    /// Sent as a job: its outcomes come with the job's answer.
    Sent(oneshot::Receiver<Result<Vec<ForwardOutcome>, ForwardFailure>>),
    /// Refused without being sent.
    Refused(ForwardOutcome),
}

/// One caller's operations on one shard, encoded, and where its answers go.
struct Job {
    shard: u64,
    ops: Vec<u8>,
    count: usize,
    answers: oneshot::Sender<Result<Vec<ForwardOutcome>, ForwardFailure>>,
}

/// Which queue a caller's operations join: the leader, and whether they are writes (a leader
/// refuses batches that mix reads and writes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct QueueKey {
    peer: NodeId,
    writes: bool,
}

/// The queues of forwarded operations, one per leader and kind.
pub struct ForwardBatcher {
    transport: Transport,
    timeout: Duration,
    queues: Mutex<HashMap<QueueKey, mpsc::UnboundedSender<Job>>>,
}

impl ForwardBatcher {
    /// Batches sent over `transport`, each given `timeout` for its answer.
    pub fn new(transport: Transport, timeout: Duration) -> ForwardBatcher {
        ForwardBatcher { transport, timeout, queues: Mutex::new(HashMap::new()) }
    }

    /// Queues `ops` (all reads or all writes, in order) for `shard`'s leader `peer`; the future
    /// yields their outcomes, in order. The operations are queued before this returns, so calls
    /// made one after another reach the leader in that order. Operations that together would
    /// not fit one request go as several, in order; one larger than a log entry's command is
    /// refused without being sent. Must be called on a tokio runtime.
    pub fn forward(
        &self,
        peer: NodeId,
        shard: u64,
        ops: &[ShardOp],
    ) -> impl Future<Output = Result<Vec<ForwardOutcome>, ForwardFailure>> + Send + 'static {
        let writes = ops.iter().any(ShardOp::is_write);
        let key = QueueKey { peer, writes };
        let mut parts = Vec::new();
        let mut job = JobBuilder::default();
        for op in ops {
            let encoded = forward::encode_ops(std::slice::from_ref(op));
            if encoded.len() > OP_BYTES_MAX {
                parts.extend(job.take().map(|job| self.queue(key, shard, job)));
                parts.push(Part::Refused(too_large(encoded.len())));
                continue;
            }
            if job.bytes.len() + encoded.len() > JOB_BYTES_MAX || job.count == BATCH_OPS_MAX {
                parts.extend(job.take().map(|job| self.queue(key, shard, job)));
            }
            job.push(&encoded);
        }
        parts.extend(job.take().map(|job| self.queue(key, shard, job)));
        async move {
            let mut outcomes = Vec::new();
            for part in parts {
                match part {
                    Part::Refused(outcome) => outcomes.push(outcome),
                    Part::Sent(answered) => outcomes.extend(
                        answered.await.unwrap_or(Err(ForwardFailure::Transport(TransportError::Shutdown)))?,
                    ),
                }
            }
            Ok(outcomes)
        }
    }

    /// Queues the operations of `job` (encoded, `count` of them) for `shard` on queue `key`.
    fn queue(&self, key: QueueKey, shard: u64, (ops, count): (Vec<u8>, usize)) -> Part {
        let (answers, answered) = oneshot::channel();
        let job = Job { shard, ops, count, answers };
        let mut queues = self.lock();
        let queue = queues.entry(key).or_insert_with(|| self.start_queue(key));
        if let Err(mpsc::error::SendError(job)) = queue.send(job) {
            // The queue's task ended (the runtime is shutting down): start another.
            let queue = self.start_queue(key);
            let _ = queue.send(job);
            queues.insert(key, queue);
        }
        Part::Sent(answered)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<QueueKey, mpsc::UnboundedSender<Job>>> {
        // Every mutation is one insert, so the map is consistent even after a panic.
        self.queues.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn start_queue(&self, key: QueueKey) -> mpsc::UnboundedSender<Job> {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(send_batches(self.transport.clone(), self.timeout, key, rx));
        tx
    }
}

/// The encoded operations of a job being built, and how many.
#[derive(Default)]
struct JobBuilder {
    bytes: Vec<u8>,
    count: usize,
}

impl JobBuilder {
    fn push(&mut self, encoded: &[u8]) {
        self.bytes.extend_from_slice(encoded);
        self.count += 1;
    }

    /// The job built so far, if it has operations; starts a new one.
    fn take(&mut self) -> Option<(Vec<u8>, usize)> {
        let job = std::mem::take(self);
        (job.count > 0).then_some((job.bytes, job.count))
    }
}

/// The outcome of an operation of `bytes` too large to forward: refused, not sent.
fn too_large(bytes: usize) -> ForwardOutcome {
    ForwardOutcome::Failed {
        code: ErrorCode::State,
        message: format!(
            "operation of {bytes} bytes exceeds the {OP_BYTES_MAX} bytes one log entry may carry; \
             it was not sent to the shard's leader, and nothing was written"
        ),
    }
}

/// Sends the jobs of one queue as batches until every sender is gone.
async fn send_batches(
    transport: Transport,
    timeout: Duration,
    key: QueueKey,
    mut queue: mpsc::UnboundedReceiver<Job>,
) {
    let mut carried: Option<Job> = None;
    loop {
        let first = match carried.take() {
            Some(job) => job,
            None => {
                let Some(job) = queue.recv().await else { return };
                // Let the other connections that are ready run first and queue theirs.
                tokio::task::yield_now().await;
                job
            }
        };
        let mut ops = first.count;
        let mut bytes = first.ops.len();
        let mut jobs = vec![first];
        while let Ok(job) = queue.try_recv() {
            if ops + job.count > BATCH_OPS_MAX || bytes + job.ops.len() > JOINED_BYTES_MAX {
                carried = Some(job);
                break;
            }
            ops += job.count;
            bytes += job.ops.len();
            jobs.push(job);
        }
        let sections = jobs.iter().map(|job| Section { shard: job.shard, count: job.count, ops: &job.ops });
        let request = forward::join_request(sections);
        let call = transport.call(key.peer, request, timeout);
        tokio::spawn(async move { hand_out(jobs, ops, call.await) });
    }
}

/// Gives each job its share of a batch's answer, in order.
fn hand_out(jobs: Vec<Job>, ops: usize, answer: Result<Vec<u8>, TransportError>) {
    let outcomes =
        answer.map_err(ForwardFailure::Transport).and_then(|bytes| match forward::decode_outcomes(&bytes) {
            Ok(outcomes) if outcomes.len() == ops => Ok(outcomes),
            Ok(_) => Err(ForwardFailure::BadReply("forwarded reply has the wrong length".into())),
            Err(e) => Err(ForwardFailure::BadReply(format!("bad forwarded reply: {e}"))),
        });
    match outcomes {
        Ok(outcomes) => {
            let mut outcomes = outcomes.into_iter();
            for job in jobs {
                let _ = job.answers.send(Ok(outcomes.by_ref().take(job.count).collect()));
            }
        }
        Err(failure) => {
            for job in jobs {
                let _ = job.answers.send(Err(failure.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::{KvRead, KvWrite, Reply, WriteOp};
    use crate::transport::{InboundEvent, TransportConfig};
    use std::collections::BTreeMap;
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    const DEADLINE: Duration = Duration::from_secs(5);

    /// Node 1 (the forwarding node) and node 2 (the leader), connected; node 2's inbound
    /// requests go to `serve`, which answers or drops each.
    async fn two_nodes(
        serve: impl Fn(Vec<u8>) -> Option<Vec<u8>> + Send + 'static,
    ) -> (Transport, Transport, Arc<AtomicUsize>) {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        let start = |id| Transport::start(TransportConfig::new(NodeId(id), "test", any, BTreeMap::new()));
        let (a, _a_in) = start(1).await.unwrap_or_else(|e| panic!("{e}"));
        let (b, mut b_in) = start(2).await.unwrap_or_else(|e| panic!("{e}"));
        a.add_peer(NodeId(2), b.local_addr()).unwrap_or_else(|e| panic!("{e}"));
        b.add_peer(NodeId(1), a.local_addr()).unwrap_or_else(|e| panic!("{e}"));
        a.connect(NodeId(2), DEADLINE).await.unwrap_or_else(|e| panic!("{e}"));
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&requests);
        tokio::spawn(async move {
            while let Some(event) = b_in.recv().await {
                if let InboundEvent::Request { payload, responder, .. } = event {
                    counted.fetch_add(1, Ordering::SeqCst);
                    if let Some(answer) = serve(payload) {
                        let _ = responder.respond(answer);
                    }
                }
            }
        });
        (a, b, requests)
    }

    /// Answers every operation with what it names: a read of `k` with `k`, a write of `k` with
    /// `k` reversed; refuses batches that mix reads and writes, as a leader does.
    fn echo(request: Vec<u8>) -> Option<Vec<u8>> {
        let ops: Vec<ShardOp> =
            forward::decode_request(&request).ok()?.into_iter().flat_map(|(_, ops)| ops).collect();
        let writes = ops.iter().filter(|op| op.is_write()).count();
        assert!(writes == 0 || writes == ops.len(), "a batch mixes reads and writes");
        let outcomes: Vec<ForwardOutcome> = ops.iter().map(|op| ForwardOutcome::Done(echoed(op))).collect();
        Some(forward::encode_outcomes(&outcomes))
    }

    fn echoed(op: &ShardOp) -> Reply {
        match op {
            ShardOp::Read(KvRead::Get { key }) => Reply::Bulk(key.clone()),
            ShardOp::Write(KvWrite { op: WriteOp::Del { keys }, .. }) => {
                Reply::Bulk(keys.concat().into_iter().rev().collect())
            }
            _ => Reply::Nil,
        }
    }

    fn read(key: &[u8]) -> ShardOp {
        ShardOp::Read(KvRead::Get { key: key.to_vec() })
    }

    fn write(key: &[u8]) -> ShardOp {
        ShardOp::Write(KvWrite { now_ms: 1, op: WriteOp::Del { keys: vec![key.to_vec()] } })
    }

    #[tokio::test]
    async fn callers_queued_together_share_one_request_per_kind_whatever_their_shards() {
        let (a, b, requests) = two_nodes(echo).await;
        let batcher = ForwardBatcher::new(a.clone(), DEADLINE);
        let callers: Vec<Vec<ShardOp>> = (0..100u32)
            .map(|i| {
                let key = format!("key-{i}").into_bytes();
                let op = if i % 2 == 0 { read } else { write };
                (0..=i % 3).map(|j| op(&[key.as_slice(), &[b'0' + j as u8]].concat())).collect()
            })
            .collect();
        let answers: Vec<_> = callers
            .iter()
            .enumerate()
            .map(|(i, ops)| batcher.forward(NodeId(2), 1 + i as u64 % 8, ops))
            .collect();
        let answers = futures::future::join_all(answers).await;
        for (ops, answer) in callers.iter().zip(answers) {
            let expected: Vec<ForwardOutcome> =
                ops.iter().map(|op| ForwardOutcome::Done(echoed(op))).collect();
            assert_eq!(answer.unwrap_or_else(|e| panic!("{e:?}")), expected);
        }
        assert_eq!(requests.load(Ordering::SeqCst), 2, "one request of reads, one of writes");
        a.shutdown().await;
        b.shutdown().await;
    }

    #[tokio::test]
    async fn a_caller_that_would_overfill_a_batch_goes_in_the_next_in_order() {
        let (a, b, requests) = two_nodes(echo).await;
        let batcher = ForwardBatcher::new(a.clone(), DEADLINE);
        let big = |i: u8| vec![read(&vec![i; JOINED_BYTES_MAX / 3])];
        let callers = [big(1), big(2), big(3), vec![read(b"small")]];
        let answers: Vec<_> = callers.iter().map(|ops| batcher.forward(NodeId(2), 7, ops)).collect();
        let answers = futures::future::join_all(answers).await;
        for (ops, answer) in callers.iter().zip(answers) {
            assert_eq!(
                answer.unwrap_or_else(|e| panic!("{e:?}")),
                vec![ForwardOutcome::Done(echoed(&ops[0]))]
            );
        }
        assert_eq!(requests.load(Ordering::SeqCst), 2, "two thirds of the limit twice do not fit");
        a.shutdown().await;
        b.shutdown().await;
    }

    #[tokio::test]
    async fn an_operation_too_large_for_any_frame_is_refused_unsent_and_the_others_keep_their_order() {
        let (a, b, requests) = two_nodes(echo).await;
        let batcher = ForwardBatcher::new(a.clone(), DEADLINE);
        let huge = read(&vec![b'k'; COMMAND_BYTES_MAX]);
        let ops = [read(b"before"), huge, read(b"after")];
        let answer = batcher.forward(NodeId(2), 7, &ops).await.unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(answer[0], ForwardOutcome::Done(echoed(&ops[0])));
        assert!(
            matches!(&answer[1], ForwardOutcome::Failed { code: ErrorCode::State, message }
                if message.contains("it was not sent")),
            "{:?}",
            answer[1]
        );
        assert_eq!(answer[2], ForwardOutcome::Done(echoed(&ops[2])));
        assert!(requests.load(Ordering::SeqCst) >= 1, "the operations around it were sent");
        a.shutdown().await;
        b.shutdown().await;
    }

    #[tokio::test]
    async fn a_lost_batch_fails_every_caller_in_it() {
        let (a, b, _) = two_nodes(|_| None).await;
        let batcher = ForwardBatcher::new(a.clone(), DEADLINE);
        let first = batcher.forward(NodeId(2), 7, &[write(b"x")]);
        let second = batcher.forward(NodeId(2), 7, &[write(b"y"), write(b"z")]);
        for answer in [first.await, second.await] {
            assert!(
                matches!(answer, Err(ForwardFailure::Transport(TransportError::Network { .. }))),
                "{answer:?}"
            );
        }
        a.shutdown().await;
        b.shutdown().await;
    }
}

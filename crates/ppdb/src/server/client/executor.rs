//! Runs parsed key-value commands against the cluster: picks each key's shard, sends the
//! operation to the shard's leader (locally, or forwarded over the transport), and combines
//! the answers of multi-shard commands.
//!
//! A write is not given a time here: the shard's leader stamps it as it proposes the entry, and
//! reads are judged at the leader's time too (`node::replica`), so the node a client reaches
//! makes no difference to expiry, whatever its clock says.
//!
//! Retries are safe only when the operation certainly did not take effect: a "not the leader"
//! answer, or a proposal overwritten by a new leader. A timeout, or a lost connection while a
//! forwarded write was in flight, leaves the outcome unknown and is reported as such.

use super::commit_join::CommitJoiner;
use super::forward::{self, ForwardOutcome, ShardOp};
use super::forward_batch::{ForwardBatcher, ForwardFailure};
use crate::error::{Error, ErrorCode};
use crate::kv::{scan::scan_hash, KvRead, KvWrite, Reply, WriteOp};
use crate::node::clock::wall_clock_ms;
use crate::node::{ClientTraffic, Directory, LeaderTable, NodeHandle, Router};
use crate::server::moves;
use crate::server::shard::KvShard;
use crate::storage::wal::GroupId;
use crate::transport::{LinkState, Transport};
use crate::txn::coordinator::{self, Link, Part, TxnError};
use crate::txn::{resolver, Outcome, ShardClient, TxnEntry, TxnId, TxnIds, TxnStats, Vote};
use futures::future::BoxFuture;
use ppdb_raft::{NodeId, ProposeError};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// A key and its value (MSET).
type Pair = (Vec<u8>, Vec<u8>);

/// Pause before retrying while a shard has no known leader (an election is running).
const NO_LEADER_BACKOFF: Duration = Duration::from_millis(20);

/// Runs commands for client connections; cheap to clone.
#[derive(Clone)]
pub struct Executor {
    node: NodeId,
    handle: NodeHandle<KvShard>,
    transport: Transport,
    router: Router,
    leaders: LeaderTable,
    traffic: ClientTraffic,
    /// The cluster directory, for where each shard's replicas are.
    directory: watch::Receiver<Directory>,
    /// Joins the operations of concurrent clients for the same leader into one request.
    batcher: Arc<ForwardBatcher>,
    /// Joins the COMMITs of concurrent transactions in a shard led here into one entry.
    commits: Arc<CommitJoiner>,
    /// Ids of the cross-shard transactions this node coordinates.
    txn_ids: Arc<TxnIds>,
    /// Their counters.
    txn_stats: Arc<TxnStats>,
}

impl Executor {
    /// An executor for this node's runtime and transport, routing keys with `router`, sending
    /// each shard's operations to the leader `leaders` names (when unknown, its own replica,
    /// or one of the shard's replicas as `directory` places them), and counting in `traffic`
    /// the operations it serves, by the node they entered through.
    pub fn new(
        node: NodeId,
        handle: NodeHandle<KvShard>,
        transport: Transport,
        router: Router,
        leaders: LeaderTable,
        traffic: ClientTraffic,
        directory: watch::Receiver<Directory>,
    ) -> Executor {
        let batcher = Arc::new(ForwardBatcher::new(transport.clone(), handle.timeout()));
        // Microseconds since the epoch: above every id this node handed out before a restart.
        let first_id = wall_clock_ms().saturating_mul(1_000);
        let txn_ids = Arc::new(TxnIds::new(node.0, first_id));
        let txn_stats = Arc::default();
        let commits = Arc::new(CommitJoiner::new(handle.clone()));
        Executor {
            node,
            handle,
            transport,
            router,
            leaders,
            traffic,
            directory,
            batcher,
            commits,
            txn_ids,
            txn_stats,
        }
    }

    /// The counters of the cross-shard transactions this node coordinated or resolved.
    pub fn txn_stats(&self) -> &TxnStats {
        &self.txn_stats
    }

    /// The same counters, shared (for the status report).
    pub fn txn_stats_shared(&self) -> Arc<TxnStats> {
        Arc::clone(&self.txn_stats)
    }

    /// Runs `parts` (one per shard) as one cross-shard transaction; each part's replies.
    pub async fn across_shards(&self, parts: Vec<Part>, vote: Vote) -> Result<Vec<Reply>, TxnError> {
        coordinator::run(self, &self.txn_ids, &self.txn_stats, wall_clock_ms(), parts, vote).await
    }

    /// [`Executor::across_shards`] of parts whose steps import values other parts export.
    pub async fn across_linked(
        &self,
        parts: Vec<Part>,
        links: &[Link],
        vote: Vote,
    ) -> Result<Vec<Reply>, TxnError> {
        coordinator::run_linked(self, &self.txn_ids, &self.txn_stats, wall_clock_ms(), parts, links, vote)
            .await
    }

    /// A write of several shards, as one transaction: its reply, `combine`d from each part's.
    async fn write_across(
        &self,
        parts: Vec<Part>,
        vote: Vote,
        combine: fn(Vec<Reply>) -> Reply,
    ) -> Result<Reply, Error> {
        match self.across_shards(parts, vote).await {
            Ok(replies) => Ok(combine(replies.into_iter().flat_map(step_replies).collect())),
            Err(TxnError::VotedNo) => Ok(Reply::Integer(0)),
            Err(error) => Err(txn_failure(error)),
        }
    }

    /// MGET over several shards, as of one moment. First optimistically: the keys' versions,
    /// their values, their versions again; if no key changed in between, each key held its
    /// value throughout, and the moment between the two version reads is common to all. Under
    /// writes that keep changing the keys, as a read-only cross-shard transaction: its
    /// PREPAREs lock the keys on every shard at once, so the values are those of one moment.
    async fn mget_across(&self, keys: &[Vec<u8>]) -> Result<Reply, Error> {
        let versions = |keys| KvRead::Versions { keys };
        let before = self.per_key(keys, versions).await?;
        let values = self.per_key(keys, |keys| KvRead::MGet { keys }).await?;
        if self.per_key(keys, versions).await? == before {
            return Ok(values);
        }
        let mut positions: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
        for (i, key) in keys.iter().enumerate() {
            positions.entry(self.shard_of(key)).or_default().push(i);
        }
        let parts = positions.iter().map(|(&shard, idx)| Part {
            shard,
            steps: vec![crate::kv::TxnStep::Read(KvRead::MGet {
                keys: idx.iter().map(|&i| keys[i].clone()).collect(),
            })],
            watched: Vec::new(),
        });
        let replies = self.across_shards(parts.collect(), Vote::Always).await.map_err(txn_failure)?;
        let mut out = vec![Reply::Nil; keys.len()];
        for ((_, idx), part) in positions.iter().zip(replies) {
            if let Some(Reply::Array(values)) = step_replies(part).into_iter().next() {
                for (&i, value) in idx.iter().zip(values) {
                    out[i] = value;
                }
            }
        }
        Ok(Reply::Array(out))
    }

    /// This node.
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// How keys map to this cluster's shards.
    pub fn router(&self) -> Router {
        self.router
    }

    /// The shard that owns `key`.
    fn shard_of(&self, key: &[u8]) -> u64 {
        self.router.shard_of(key).0
    }

    /// Runs a write (its entry unstamped: the shard's leader stamps it). Multi-key writes that
    /// span shards run as cross-shard transactions: MSET, MSETNX, DEL and UNLINK split by key,
    /// RENAME, COPY, SMOVE, LMOVE, the *STORE commands, LMPOP and ZMPOP as moves
    /// (`server::moves`), FLUSHALL on every shard at once.
    pub async fn write(&self, write: KvWrite) -> Result<Reply, Error> {
        match &write.op {
            // Every shard at one moment: a transaction locking every shard whole.
            WriteOp::FlushAll if self.router.shard_count() > 1 => {
                let step = crate::kv::TxnStep::Write(WriteOp::FlushAll);
                match crate::server::transaction::across(self, vec![step], Vec::new()).await {
                    Ok(_) => Ok(Reply::Ok),
                    Err(Some(error)) => Err(txn_failure(error)),
                    Err(None) => Err(Error::State("FLUSHALL could not run across shards".into())),
                }
            }
            WriteOp::MSet { pairs } if self.group_pairs(pairs).len() > 1 => {
                let parts = self
                    .group_pairs(pairs)
                    .into_iter()
                    .map(|(shard, pairs)| part(shard, WriteOp::MSet { pairs }));
                self.write_across(parts.collect(), Vote::Always, |_| Reply::Ok).await
            }
            WriteOp::MSetNx { pairs } if self.group_pairs(pairs).len() > 1 => {
                let parts = self
                    .group_pairs(pairs)
                    .into_iter()
                    .map(|(shard, pairs)| part(shard, WriteOp::MSetNx { pairs }));
                self.write_across(parts.collect(), Vote::IfEveryReplyIsOne, |_| Reply::Integer(1)).await
            }
            op if self.write_shard(&write).is_none() && moves::split(self.router, op, 0).is_some() => {
                let step = crate::kv::TxnStep::Write(write.op.clone());
                match crate::server::transaction::across(self, vec![step], Vec::new()).await {
                    Ok(mut replies) => {
                        replies.pop().ok_or_else(|| Error::State("a move answered nothing".into()))
                    }
                    Err(Some(error)) => Err(txn_failure(error)),
                    Err(None) => Err(Error::State("the command cannot run across shards".into())),
                }
            }
            WriteOp::Del { keys } if self.group_keys(keys).len() > 1 => {
                let parts =
                    self.group_keys(keys).into_iter().map(|(shard, keys)| part(shard, WriteOp::Del { keys }));
                self.write_across(parts.collect(), Vote::Always, |replies| {
                    let sum =
                        replies.iter().map(|reply| if let Reply::Integer(n) = reply { *n } else { 0 }).sum();
                    Reply::Integer(sum)
                })
                .await
            }
            op => {
                let shard = self.one_shard(&op.keys())?;
                self.on_shard(shard, ShardOp::Write(write)).await
            }
        }
    }

    /// Runs a read command linearizably. A read combining several keys' values (SUNION,
    /// ZINTER, ...) whose keys span shards runs as a cross-shard transaction exporting them.
    pub async fn read(&self, read: &KvRead) -> Result<Reply, Error> {
        match read {
            KvRead::MGet { keys } if self.group_keys(keys).len() > 1 => self.mget_across(keys).await,
            combined if moves::combines(combined) && self.one_shard(&combined.keys()).is_err() => {
                let step = crate::kv::TxnStep::Read(combined.clone());
                match crate::server::transaction::across(self, vec![step], Vec::new()).await {
                    Ok(mut replies) => replies
                        .pop()
                        .ok_or_else(|| Error::State("a cross-shard read answered nothing".into())),
                    Err(Some(error)) => Err(txn_failure(error)),
                    Err(None) => Err(Error::State("the read cannot run across shards".into())),
                }
            }
            KvRead::Versions { keys } => self.per_key(keys, |keys| KvRead::Versions { keys }).await,
            KvRead::Exists { keys } => {
                let runs = self
                    .group_keys(keys)
                    .into_iter()
                    .map(|(shard, keys)| self.on_shard(shard, ShardOp::Read(KvRead::Exists { keys })));
                sum_integers(futures_join(runs).await)
            }
            KvRead::DbSize | KvRead::Expires => sum_integers(self.everywhere(read).await),
            KvRead::Keys { .. } => {
                let mut keys = Vec::new();
                for result in self.everywhere(read).await {
                    if let Reply::Array(items) = result? {
                        keys.extend(items);
                    }
                }
                Ok(Reply::Array(keys))
            }
            KvRead::Scan { .. } => self.scan(read).await,
            KvRead::RandomKey => {
                let shards = self.router.shard_count();
                let start = wall_clock_ms() % shards;
                for i in 0..shards {
                    let shard = (start + i) % shards + 1;
                    let reply = self.on_shard(shard, ShardOp::Read(KvRead::RandomKey)).await?;
                    if reply != Reply::Nil {
                        return Ok(reply);
                    }
                }
                Ok(Reply::Nil)
            }
            other => {
                let shard = self.one_shard(&other.keys())?;
                self.on_shard(shard, ShardOp::Read(other.clone())).await
            }
        }
    }

    async fn everywhere(&self, read: &KvRead) -> Vec<Result<Reply, Error>> {
        futures_join((1..=self.router.shard_count()).map(|s| self.on_shard(s, ShardOp::Read(read.clone()))))
            .await
    }

    /// A read answering one element per key (MGET, WATCH's versions), over the keys' shards at
    /// once: each shard answers for its keys, and the elements are put back in the keys' order.
    async fn per_key(
        &self,
        keys: &[Vec<u8>],
        query: impl Fn(Vec<Vec<u8>>) -> KvRead,
    ) -> Result<Reply, Error> {
        let mut positions: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
        for (i, key) in keys.iter().enumerate() {
            positions.entry(self.shard_of(key)).or_default().push(i);
        }
        let runs = positions.iter().map(|(&shard, idx)| {
            let keys = idx.iter().map(|&i| keys[i].clone()).collect();
            self.on_shard(shard, ShardOp::Read(query(keys)))
        });
        let results = futures_join(runs).await;
        let mut out = vec![Reply::Nil; keys.len()];
        for ((_, idx), result) in positions.iter().zip(results) {
            let Reply::Array(values) = result? else {
                return Err(Error::State("a per-key read on a shard did not answer an array".into()));
            };
            if values.len() != idx.len() {
                return Err(Error::State("a per-key read on a shard answered for other keys".into()));
            }
            for (&i, value) in idx.iter().zip(values) {
                out[i] = value;
            }
        }
        Ok(Reply::Array(out))
    }

    /// SCAN over every shard at once. Every shard orders keys by the same hash, and the cursor
    /// is a hash position: each shard returns a page from the cursor, the next cursor is the
    /// smallest position any shard stopped at, and keys at or beyond it wait for the next call.
    /// So each key present throughout the iteration is returned exactly once.
    async fn scan(&self, read: &KvRead) -> Result<Reply, Error> {
        let mut pages = Vec::new();
        for result in self.everywhere(read).await {
            match result? {
                Reply::Scan { cursor, keys } => pages.push((cursor, keys)),
                _ => return Err(Error::State("SCAN on a shard did not answer a page".into())),
            }
        }
        Ok(join_scan_pages(pages))
    }

    /// The one shard that holds every key of a command (shard 1 for none); an error when the
    /// keys live in several (a blocking command, a script, a multi-key read that is not split).
    pub(crate) fn one_shard(&self, keys: &[&[u8]]) -> Result<u64, Error> {
        let mut shards = keys.iter().map(|key| self.shard_of(key));
        let first = shards.next().unwrap_or(1);
        match shards.find(|&shard| shard != first) {
            None => Ok(first),
            Some(other) => Err(Error::State(format!(
                "the command's keys live in different shards (shards {first} and {other}), and \
                 it runs within one shard (hash tags such as {{user1}}:a keep keys together)"
            ))),
        }
    }

    fn group_keys(&self, keys: &[Vec<u8>]) -> BTreeMap<u64, Vec<Vec<u8>>> {
        let mut out: BTreeMap<u64, Vec<Vec<u8>>> = BTreeMap::new();
        for key in keys {
            out.entry(self.shard_of(key)).or_default().push(key.clone());
        }
        out
    }

    fn group_pairs(&self, pairs: &[(Vec<u8>, Vec<u8>)]) -> BTreeMap<u64, Vec<Pair>> {
        let mut out: BTreeMap<u64, Vec<Pair>> = BTreeMap::new();
        for pair in pairs {
            out.entry(self.shard_of(&pair.0)).or_default().push(pair.clone());
        }
        out
    }

    /// Runs `op` on `shard`'s leader, following leader hints and waiting out elections until
    /// the request deadline.
    pub async fn on_shard(&self, shard: u64, op: ShardOp) -> Result<Reply, Error> {
        self.on_shard_batch(shard, vec![op])
            .await
            .pop()
            .unwrap_or_else(|| Err(Error::State("empty batch".into())))
    }

    /// Runs `ops` (all writes or all reads, in client order) on `shard`'s leader as one batch,
    /// so their order survives forwarding. An operation is retried only when it certainly did
    /// not take effect, and then together with every later one, so the order holds on retry.
    /// A read or write refused by a cross-shard transaction's lock ([`Reply::Locked`]) is
    /// tried again once the lock is gone (or its transaction resolved), until the deadline.
    pub async fn on_shard_batch(&self, shard: u64, ops: Vec<ShardOp>) -> Vec<Result<Reply, Error>> {
        let (mut results, ops) = self.attempt_batch(shard, ops).await;
        let locked = |result: &Result<Reply, Error>| matches!(result, Ok(Reply::Locked(_)));
        if !results.iter().any(locked) {
            return results;
        }
        let deadline = Instant::now() + self.handle.timeout();
        for (result, op) in results.iter_mut().zip(ops) {
            let mut attempt = 0;
            while let Ok(Reply::Locked(holder)) = &*result {
                if matches!(op, ShardOp::Txn(_)) || Instant::now() >= deadline {
                    break;
                }
                resolver::wait_out(self, holder, attempt, &self.txn_stats).await;
                attempt += 1;
                let (mut retried, _) = self.attempt_batch(shard, vec![op.clone()]).await;
                *result = retried.pop().unwrap_or_else(|| Err(Error::State("empty batch".into())));
            }
        }
        results
    }

    /// One pass of [`Executor::on_shard_batch`], without waiting out locks: the results, and
    /// the operations in the same order.
    async fn attempt_batch(
        &self,
        shard: u64,
        ops: Vec<ShardOp>,
    ) -> (Vec<Result<Reply, Error>>, Vec<ShardOp>) {
        let mut done = Vec::with_capacity(ops.len());
        let deadline = Instant::now() + self.handle.timeout();
        let mut asked = 0;
        let mut target =
            self.leaders.get(GroupId(shard)).unwrap_or_else(|| self.replica_to_ask(shard, asked));
        let mut results: Vec<Result<Reply, Error>> = Vec::with_capacity(ops.len());
        let mut remaining = ops;
        while !remaining.is_empty() {
            let answers = if target == self.node {
                self.traffic.record(self.node, remaining.len() as u64);
                self.local(shard, &remaining).await
            } else {
                self.remote(target, shard, &remaining).await
            };
            // Everything before the first retryable answer is final.
            let first_retry = answers.iter().position(is_retryable).unwrap_or(answers.len());
            let mut answers = answers.into_iter();
            results.extend(answers.by_ref().take(first_retry));
            done.extend(remaining.drain(..first_retry));
            let Some(retry) = answers.next() else { break };
            let redirected = match retry {
                Err(Error::Consensus(ProposeError::NotLeader { leader: Some(leader) }))
                    if leader != target =>
                {
                    if !self.replicates(shard) {
                        // The runtime keeps no hint for a shard this node does not replicate.
                        self.leaders.set(GroupId(shard), Some(leader));
                    }
                    Some(leader)
                }
                _ => None,
            };
            if Instant::now() >= deadline {
                results.extend(remaining.iter().map(|_| Err(Error::Partition { group: shard })));
                break;
            }
            target = match redirected {
                Some(leader) => leader,
                None => {
                    asked += 1;
                    tokio::time::sleep(NO_LEADER_BACKOFF).await;
                    self.replica_to_ask(shard, asked)
                }
            };
        }
        done.extend(remaining);
        (results, done)
    }

    /// Whether this node should hold a replica of `shard` (every node does in a cluster that
    /// keeps every shard everywhere).
    fn replicates(&self, shard: u64) -> bool {
        self.directory.borrow().placement().hosts(GroupId(shard), self.node) != Some(false)
    }

    /// Where to send `shard`'s operations when its leader is unknown: this node's own replica,
    /// which knows its leader, or, for a shard placed on other nodes only, one of them (the
    /// `asked`-th, so retries go round them); each answers with its leader.
    fn replica_to_ask(&self, shard: u64, asked: usize) -> NodeId {
        let directory = self.directory.borrow();
        match directory.placement().group(GroupId(shard)) {
            Some(placed) if !placed.replicas.contains(&self.node) && !placed.replicas.is_empty() => {
                placed.replicas.iter().nth(asked % placed.replicas.len()).copied().unwrap_or(self.node)
            }
            _ => self.node,
        }
    }

    /// Submits `ops` to this node's replica of `shard` now (so calls keep their order) and
    /// returns the wait for their answers. COMMITs join the shard's other concurrent COMMITs
    /// in one entry ([`CommitJoiner`]); they keep no order with the operations around them.
    fn local(&self, shard: u64, ops: &[ShardOp]) -> BoxFuture<'static, Vec<Result<Reply, Error>>> {
        let group = GroupId(shard);
        if ops.is_empty() {
            return Box::pin(async { Vec::new() });
        }
        let reads_only = ops.iter().all(|op| !op.is_write());
        if !reads_only && ops.iter().any(|op| !op.is_write()) {
            let refused =
                (0..ops.len()).map(|_| Err(Error::State("a batch mixes reads and writes".into()))).collect();
            return Box::pin(async move { refused });
        }
        if reads_only {
            let reads = ops.iter().filter_map(|op| match op {
                ShardOp::Read(read) => Some(read.clone()),
                _ => None,
            });
            return Box::pin(self.handle.read_batch(group, reads.collect()));
        }
        let mut writes = Vec::new();
        let mut commits = Vec::new();
        for (position, op) in ops.iter().enumerate() {
            match op {
                ShardOp::Txn(TxnEntry::Commit(id)) => {
                    commits.push((position, self.commits.commit(shard, *id)))
                }
                ShardOp::Txn(entry) => writes.push(entry.encode()),
                ShardOp::Write(write) => writes.push(write.encode()),
                ShardOp::Read(_) => {}
            }
        }
        if commits.is_empty() {
            return Box::pin(self.handle.propose_batch(group, writes));
        }
        let others = (!writes.is_empty()).then(|| self.handle.propose_batch(group, writes));
        let count = ops.len();
        Box::pin(async move {
            let mut others = match others {
                Some(others) => others.await.into_iter(),
                None => Vec::new().into_iter(),
            };
            let mut commits = commits.into_iter().peekable();
            let mut results = Vec::with_capacity(count);
            for position in 0..count {
                match commits.next_if(|(at, _)| *at == position) {
                    Some((_, commit)) => results.push(commit.await),
                    None => results.push(
                        others.next().unwrap_or_else(|| Err(Error::State("a shard gave no answer".into()))),
                    ),
                }
            }
            results
        })
    }

    async fn remote(&self, peer: NodeId, shard: u64, ops: &[ShardOp]) -> Vec<Result<Reply, Error>> {
        let writes = ops.iter().any(ShardOp::is_write);
        let all = |reason: String| {
            ops.iter()
                .map(|_| Err(Error::Network { peer: peer.to_string(), reason: reason.clone() }))
                .collect::<Vec<_>>()
        };
        let retry_elsewhere =
            || ops.iter().map(|_| Err(Error::Consensus(ProposeError::NotLeader { leader: None }))).collect();
        if matches!(self.transport.link_state(peer), Some(LinkState::Down(_)) | None) {
            // The believed leader is unreachable and nothing was sent: safe to retry once
            // the shard's leadership has moved.
            return retry_elsewhere();
        }
        let call = self.batcher.forward(peer, shard, ops);
        let answer = if writes {
            // A write's outcome is known only from the node it was sent to (or the deadline).
            call.await
        } else {
            // Reads change nothing, so when leadership moves away from `peer` meanwhile (it may
            // be paused or cut off, and would keep the client waiting until the deadline), they
            // go to the new leader at once.
            tokio::select! {
                answer = call => answer,
                leader = self.moved_away_from(shard, peer) => {
                    return ops
                        .iter()
                        .map(|_| Err(Error::Consensus(ProposeError::NotLeader { leader: Some(leader) })))
                        .collect();
                }
            }
        };
        match answer {
            Ok(outcomes) => outcomes
                .into_iter()
                .map(|outcome| match outcome {
                    ForwardOutcome::Done(reply) => Ok(reply),
                    ForwardOutcome::NotLeader(leader) => {
                        Err(Error::Consensus(ProposeError::NotLeader { leader }))
                    }
                    ForwardOutcome::Failed { code, message } => {
                        Err(Error::Remote { node: peer.0, code, message })
                    }
                })
                .collect(),
            Err(ForwardFailure::Transport(_)) if !writes => retry_elsewhere(),
            Err(ForwardFailure::Transport(e)) => all(format!("{e}; the write's outcome is unknown")),
            Err(ForwardFailure::BadReply(reason)) => all(reason),
        }
    }

    /// Waits until this node sees a leader of `shard` other than `peer`; that leader.
    async fn moved_away_from(&self, shard: u64, peer: NodeId) -> NodeId {
        let group = GroupId(shard);
        let mut seen = self.leaders.get(group);
        loop {
            match self.leaders.changed(group, seen).await {
                Some(leader) if leader != peer => return leader,
                now => seen = now,
            }
        }
    }

    /// Serves a batch forwarded by node `from`: locally only, never forwarded again. Each
    /// shard's operations, in section order, are submitted to its group together before this
    /// returns, so forwarded batches keep their arrival order; the returned future yields the
    /// encoded answers, in the request's order.
    pub fn serve_forwarded(&self, from: NodeId, request: &[u8]) -> BoxFuture<'static, Vec<u8>> {
        let sections = match forward::decode_request(request) {
            Ok(sections) => sections,
            Err(e) => {
                tracing::warn!(error = %e, "undecodable forwarded request");
                return Box::pin(async { forward::encode_outcomes(&[]) });
            }
        };
        let total = sections.iter().map(|(_, ops)| ops.len()).sum::<usize>();
        let by_shard = forward::group_by_shard(sections);
        self.traffic.record(from, total as u64);
        let mut outcomes: Vec<Option<ForwardOutcome>> = vec![None; total];
        let mut answers = Vec::with_capacity(by_shard.len());
        for (shard, (ops, positions)) in by_shard {
            if self.router.has_shard(shard) {
                answers.push((self.local(shard, &ops), positions));
                continue;
            }
            let message = format!("no shard {shard} in this cluster");
            for position in positions {
                if let Some(slot) = outcomes.get_mut(position) {
                    *slot = Some(ForwardOutcome::Failed { code: ErrorCode::State, message: message.clone() });
                }
            }
        }
        Box::pin(async move {
            for (shard_answers, positions) in answers {
                for (answer, position) in shard_answers.await.into_iter().zip(positions) {
                    if let Some(slot) = outcomes.get_mut(position) {
                        *slot = Some(forward::outcome_of(answer));
                    }
                }
            }
            let outcomes: Vec<ForwardOutcome> = outcomes
                .into_iter()
                .map(|outcome| {
                    outcome.unwrap_or_else(|| ForwardOutcome::Failed {
                        code: ErrorCode::State,
                        message: "the shard gave no answer".into(),
                    })
                })
                .collect();
            forward::encode_outcomes(&outcomes)
        })
    }

    /// How a command reaches the shards: one shard (it can join a per-shard batch), or several.
    pub fn plan_read(&self, read: &KvRead) -> Option<(u64, ShardOp)> {
        match read {
            KvRead::Get { key }
            | KvRead::StrLen { key }
            | KvRead::GetRange { key, .. }
            | KvRead::Ttl { key }
            | KvRead::PTtl { key }
            | KvRead::Type { key } => Some((self.shard_of(key), ShardOp::Read(read.clone()))),
            _ => None,
        }
    }

    /// The single shard a write goes to (it can join a per-shard batch); `None` for writes
    /// spanning several shards (or all of them).
    pub fn write_shard(&self, write: &KvWrite) -> Option<u64> {
        let keys = write.op.keys();
        let shard = self.shard_of(keys.first()?);
        keys.iter().all(|k| self.shard_of(k) == shard).then_some(shard)
    }
}

impl ShardClient for Executor {
    fn submit(&self, shard: u64, entry: TxnEntry) -> BoxFuture<'_, Result<Reply, Error>> {
        Box::pin(self.on_shard(shard, ShardOp::Txn(entry)))
    }

    fn read(&self, shard: u64, read: KvRead) -> BoxFuture<'_, Result<Reply, Error>> {
        Box::pin(self.on_shard(shard, ShardOp::Read(read)))
    }

    fn pause(&self, ms: u64) -> BoxFuture<'_, ()> {
        Box::pin(tokio::time::sleep(Duration::from_millis(ms)))
    }

    fn finish_later(&self, id: TxnId, participants: Vec<u64>, outcome: Outcome) -> bool {
        let executor = self.clone();
        tokio::spawn(async move {
            if let Err(e) = resolver::finish(&executor, id, &participants, outcome).await {
                tracing::debug!(txn = %id, error = %e, "a participant missed its commit; the resolver will finish it");
            }
        });
        true
    }
}

/// A part of one write command.
fn part(shard: u64, op: WriteOp) -> Part {
    Part { shard, steps: vec![crate::kv::TxnStep::Write(op)], watched: Vec::new() }
}

/// The replies of a part's commands (a part answers an array of them).
pub(crate) fn step_replies(part: Reply) -> Vec<Reply> {
    match part {
        Reply::Array(replies) => replies,
        other => vec![other],
    }
}

/// What a client is told when its cross-shard transaction did not commit.
pub(crate) fn txn_failure(error: TxnError) -> Error {
    match error {
        TxnError::Unknown(error) => error,
        TxnError::RepliesLost { source, .. } => source,
        other => Error::TxnAborted(other.to_string()),
    }
}

fn is_retryable(result: &Result<Reply, Error>) -> bool {
    matches!(
        result,
        Err(Error::Consensus(ProposeError::NotLeader { .. }))
            | Err(Error::Consensus(ProposeError::LeaderTransferring))
            | Err(Error::ProposalDropped { .. })
    )
}

fn sum_integers(results: Vec<Result<Reply, Error>>) -> Result<Reply, Error> {
    let mut total = 0i64;
    for result in results {
        if let Reply::Integer(n) = result? {
            total += n;
        }
    }
    Ok(Reply::Integer(total))
}

/// Awaits all futures concurrently, answers in input order. Each future is created (and so its
/// request submitted) in order before any is awaited.
async fn futures_join<F: std::future::Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    futures::future::join_all(futures).await
}

/// One SCAN page from every shard's page (each a cursor and keys): the next cursor is the
/// smallest position any shard stopped at (0 once all are done), and keys at or beyond it are
/// left for the next call, so each key present throughout is returned exactly once.
pub fn join_scan_pages(pages: Vec<(u64, Vec<Vec<u8>>)>) -> Reply {
    let next = pages.iter().map(|(c, _)| *c).filter(|&c| c != 0).min().unwrap_or(0);
    let mut keys: Vec<Vec<u8>> =
        pages.into_iter().flat_map(|(_, keys)| keys).filter(|k| next == 0 || scan_hash(k) < next).collect();
    keys.sort_by_key(|k| scan_hash(k));
    Reply::Scan { cursor: next, keys }
}

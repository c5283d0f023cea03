//! Runs parsed key-value commands against the cluster: picks each key's shard, sends the
//! operation to the shard's leader (locally, or forwarded over the transport), and combines
//! the answers of multi-shard commands.
//!
//! Retries are safe only when the operation certainly did not take effect: a "not the leader"
//! answer, or a proposal overwritten by a new leader. A timeout, or a lost connection while a
//! forwarded write was in flight, leaves the outcome unknown and is reported as such.

use super::forward::{self, ForwardOutcome, ShardOp};
use super::shard::{KvShard, ShardQuery};
use crate::error::{Error, ErrorCode};
use crate::kv::{scan::scan_hash, KvRead, KvWrite, Reply, WriteOp};
use crate::node::runtime::wall_clock_ms;
use crate::node::NodeHandle;
use crate::server::resp::command::WriteCommand;
use crate::storage::wal::GroupId;
use crate::transport::Transport;
use ppdb_raft::{NodeId, ProposeError};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A key and its value (MSET).
type Pair = (Vec<u8>, Vec<u8>);

/// Pause before retrying while a shard has no known leader (an election is running).
const NO_LEADER_BACKOFF: Duration = Duration::from_millis(20);

/// The shard (Raft group, 1-based) that owns `key` among `shards`.
pub fn shard_of(key: &[u8], shards: u64) -> u64 {
    u64::from(crc32c::crc32c(key)) % shards.max(1) + 1
}

/// Runs commands for client connections; cheap to clone.
#[derive(Clone)]
pub struct Executor {
    node: NodeId,
    handle: NodeHandle<KvShard>,
    transport: Transport,
    shards: u64,
}

impl Executor {
    /// An executor for this node's runtime and transport, over `shards` data shards.
    pub fn new(node: NodeId, handle: NodeHandle<KvShard>, transport: Transport, shards: u64) -> Executor {
        Executor { node, handle, transport, shards }
    }

    /// The number of data shards.
    pub fn shards(&self) -> u64 {
        self.shards
    }

    /// Runs a write command. Multi-key writes that span shards run per shard: MSET and DEL
    /// are then not atomic across shards (documented), and MSETNX is refused.
    pub async fn write(&self, command: &WriteCommand) -> Result<Reply, Error> {
        let write = command
            .resolve(wall_clock_ms())
            .map_err(|e| Error::State(format!("cannot resolve write: {e}")))?;
        match &write.op {
            WriteOp::FlushAll => {
                let all = (1..=self.shards).map(|s| self.on_shard(s, ShardOp::Write(write.clone())));
                for result in futures_join(all).await {
                    result?;
                }
                Ok(Reply::Ok)
            }
            WriteOp::MSet { pairs } => {
                let by_shard = self.group_pairs(pairs);
                let runs = by_shard.into_iter().map(|(shard, pairs)| {
                    self.on_shard(
                        shard,
                        ShardOp::Write(KvWrite { now_ms: write.now_ms, op: WriteOp::MSet { pairs } }),
                    )
                });
                for result in futures_join(runs).await {
                    result?;
                }
                Ok(Reply::Ok)
            }
            WriteOp::MSetNx { pairs } if self.group_pairs(pairs).len() > 1 => Err(Error::State(
                "MSETNX keys span several shards; it is atomic only within one shard until \
                 cross-shard transactions land (use a hash tag-free single key or one shard)"
                    .into(),
            )),
            WriteOp::Del { keys } => {
                let runs = self.group_keys(keys).into_iter().map(|(shard, keys)| {
                    self.on_shard(
                        shard,
                        ShardOp::Write(KvWrite { now_ms: write.now_ms, op: WriteOp::Del { keys } }),
                    )
                });
                sum_integers(futures_join(runs).await)
            }
            op => {
                let shard = op.keys().first().map_or(1, |k| shard_of(k, self.shards));
                self.on_shard(shard, ShardOp::Write(write)).await
            }
        }
    }

    /// Runs a read command linearizably.
    pub async fn read(&self, read: &KvRead) -> Result<Reply, Error> {
        match read {
            KvRead::MGet { keys } => self.mget(keys).await,
            KvRead::Exists { keys } => {
                let runs = self
                    .group_keys(keys)
                    .into_iter()
                    .map(|(shard, keys)| self.on_shard(shard, ShardOp::Read(KvRead::Exists { keys })));
                sum_integers(futures_join(runs).await)
            }
            KvRead::DbSize => sum_integers(self.everywhere(read).await),
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
                let start = wall_clock_ms() % self.shards;
                for i in 0..self.shards {
                    let shard = (start + i) % self.shards + 1;
                    let reply = self.on_shard(shard, ShardOp::Read(KvRead::RandomKey)).await?;
                    if reply != Reply::Nil {
                        return Ok(reply);
                    }
                }
                Ok(Reply::Nil)
            }
            other => {
                let shard = other.keys().first().map_or(1, |k| shard_of(k, self.shards));
                self.on_shard(shard, ShardOp::Read(other.clone())).await
            }
        }
    }

    async fn everywhere(&self, read: &KvRead) -> Vec<Result<Reply, Error>> {
        futures_join((1..=self.shards).map(|s| self.on_shard(s, ShardOp::Read(read.clone())))).await
    }

    async fn mget(&self, keys: &[Vec<u8>]) -> Result<Reply, Error> {
        let mut positions: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
        for (i, key) in keys.iter().enumerate() {
            positions.entry(shard_of(key, self.shards)).or_default().push(i);
        }
        let runs = positions.iter().map(|(&shard, idx)| {
            let keys = idx.iter().map(|&i| keys[i].clone()).collect();
            self.on_shard(shard, ShardOp::Read(KvRead::MGet { keys }))
        });
        let results = futures_join(runs).await;
        let mut out = vec![Reply::Nil; keys.len()];
        for ((_, idx), result) in positions.iter().zip(results) {
            let Reply::Array(values) = result? else {
                return Err(Error::State("MGET on a shard did not answer an array".into()));
            };
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
        let next = pages.iter().map(|(c, _)| *c).filter(|&c| c != 0).min().unwrap_or(0);
        let mut keys: Vec<Vec<u8>> = pages
            .into_iter()
            .flat_map(|(_, keys)| keys)
            .filter(|k| next == 0 || scan_hash(k) < next)
            .collect();
        keys.sort_by_key(|k| scan_hash(k));
        Ok(Reply::Scan { cursor: next, keys })
    }

    fn group_keys(&self, keys: &[Vec<u8>]) -> BTreeMap<u64, Vec<Vec<u8>>> {
        let mut out: BTreeMap<u64, Vec<Vec<u8>>> = BTreeMap::new();
        for key in keys {
            out.entry(shard_of(key, self.shards)).or_default().push(key.clone());
        }
        out
    }

    fn group_pairs(&self, pairs: &[(Vec<u8>, Vec<u8>)]) -> BTreeMap<u64, Vec<Pair>> {
        let mut out: BTreeMap<u64, Vec<Pair>> = BTreeMap::new();
        for pair in pairs {
            out.entry(shard_of(&pair.0, self.shards)).or_default().push(pair.clone());
        }
        out
    }

    /// Runs `op` on `shard`'s leader, following leader hints and waiting out elections until
    /// the request deadline.
    pub async fn on_shard(&self, shard: u64, op: ShardOp) -> Result<Reply, Error> {
        let started = Instant::now();
        let deadline = started + self.handle.timeout();
        let mut target = self.node;
        loop {
            let result = if target == self.node {
                self.local(shard, op.clone()).await
            } else {
                self.remote(target, shard, &op).await
            };
            let retry_at = match result {
                Err(Error::Consensus(ProposeError::NotLeader { leader: Some(leader) }))
                    if leader != target =>
                {
                    target = leader;
                    None
                }
                Err(Error::Consensus(ProposeError::NotLeader { .. }))
                | Err(Error::Consensus(ProposeError::LeaderTransferring))
                | Err(Error::ProposalDropped { .. }) => {
                    target = self.node;
                    Some(NO_LEADER_BACKOFF)
                }
                Err(Error::Network { .. }) if matches!(op, ShardOp::Read(_)) => {
                    target = self.node;
                    Some(NO_LEADER_BACKOFF)
                }
                other => return other,
            };
            if Instant::now() >= deadline {
                return Err(Error::Partition { group: shard });
            }
            if let Some(pause) = retry_at {
                tokio::time::sleep(pause).await;
            }
        }
    }

    /// Submits `op` to this node's replica of `shard` now (so calls keep their order) and
    /// returns the wait for its answer.
    fn local(&self, shard: u64, op: ShardOp) -> futures::future::BoxFuture<'static, Result<Reply, Error>> {
        match op {
            ShardOp::Write(write) => Box::pin(self.handle.propose(GroupId(shard), write.encode())),
            ShardOp::Read(read) => {
                Box::pin(self.handle.read(GroupId(shard), ShardQuery { read, now_ms: wall_clock_ms() }))
            }
        }
    }

    async fn remote(&self, peer: NodeId, shard: u64, op: &ShardOp) -> Result<Reply, Error> {
        let request = forward::encode_request(shard, op);
        let answer = self.transport.call(peer, request, self.handle.timeout()).await.map_err(|e| {
            let outcome =
                if matches!(op, ShardOp::Write(_)) { "; the write's outcome is unknown" } else { "" };
            Error::Network { peer: peer.to_string(), reason: format!("{e}{outcome}") }
        })?;
        match forward::decode_outcome(&answer) {
            Ok(ForwardOutcome::Done(reply)) => Ok(reply),
            Ok(ForwardOutcome::NotLeader(leader)) => {
                Err(Error::Consensus(ProposeError::NotLeader { leader }))
            }
            Ok(ForwardOutcome::Failed { code, message }) => {
                Err(Error::Remote { node: peer.0, code, message })
            }
            Err(e) => {
                Err(Error::Network { peer: peer.to_string(), reason: format!("bad forwarded reply: {e}") })
            }
        }
    }

    /// Serves an operation forwarded by another node: locally only, never forwarded again.
    /// The operation is submitted before this returns, so forwarded requests keep the order
    /// in which they arrived; the returned future yields the encoded answer.
    pub fn serve_forwarded(&self, request: &[u8]) -> futures::future::BoxFuture<'static, Vec<u8>> {
        let refuse = |code, message| {
            let outcome = ForwardOutcome::Failed { code, message };
            Box::pin(async move { forward::encode_outcome(&outcome) })
                as futures::future::BoxFuture<'static, Vec<u8>>
        };
        match forward::decode_request(request) {
            Ok((shard, op)) if (1..=self.shards).contains(&shard) => {
                let answer = self.local(shard, op);
                Box::pin(async move { forward::encode_outcome(&forward::outcome_of(answer.await)) })
            }
            Ok((shard, _)) => refuse(ErrorCode::State, format!("no shard {shard} in this cluster")),
            Err(e) => refuse(ErrorCode::Network, e.to_string()),
        }
    }
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

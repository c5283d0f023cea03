//! The transport: TCP between nodes, multiplexing every Raft group, plus request/response for
//! forwarding client commands (the seed's send, recv and broadcast).
//!
//! What it owns: connections, framing ([`frame`]), the handshake ([`handshake`]), per-peer
//! bounded outbound queues, reconnects with backoff, batching (all messages queued for one peer,
//! the heartbeats of every group included, leave in one frame), snapshot streaming in chunks
//! ([`snapshot`]), responses larger than a chunk streamed in chunks (`rpc`), round-trip
//! measurement and per-peer counters.
//!
//! What it must not do: interpret Raft (it never reorders, retries or invents messages: a lost
//! message is recovered by Raft's own retransmission), block a caller (sending only enqueues;
//! a full queue drops and counts), or let one peer affect another (a bad frame, a slow reader or
//! a dead host costs only that peer's connection and queue).
//!
//! Connections: every node dials every peer for its own outbound traffic (Raft messages,
//! requests, pings) and accepts connections only to receive; answers that belong to the
//! dialer's exchanges (handshake verdicts, pongs, responses) go back on the connection they
//! answer. So each pair of nodes holds two TCP connections, one per direction. This trades one
//! extra socket per pair for having no dial races or tie-breaking, and lets each side's writer
//! own its connection outright.

mod backoff;
mod config;
mod error;
pub mod frame;
mod guest;
pub mod handshake;
mod inbound;
mod peer;
mod rpc;
pub mod snapshot;
mod stats;
pub mod tls;
mod writer;

#[cfg(test)]
mod tests;

#[cfg(test)]
pub use config::SNAPSHOT_BYTES_MAX_DEFAULT;
pub use config::{
    TransportConfig, TransportLimits, CLUSTER_ID_BYTES_MAX, FRAME_BYTES_MAX_DEFAULT,
    INBOUND_QUEUE_EVENTS_MAX_DEFAULT, PEER_QUEUE_MESSAGES_MAX_DEFAULT, RESPONSE_BYTES_MAX_DEFAULT,
    RESPONSE_CHUNK_BYTES_DEFAULT, SNAPSHOT_CHUNK_BYTES_DEFAULT,
};
pub use error::{RefusalReason, TransportError};
pub use guest::guest_call;
pub use inbound::{Inbound, InboundEvent};
pub use peer::LinkState;
pub use rpc::Responder;
pub use snapshot::{SnapshotFiles, SnapshotSink, SnapshotSource};
pub use stats::PeerStats;

use handshake::{Identity, Incarnation};
use peer::{Outbound, PeerEntry};
use ppdb_raft::{Message, NodeId};
use rpc::{PendingCalls, PendingGuard};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// A Raft group's id (a shard, or the meta group).
pub type GroupId = u64;

/// State shared by the handle and every connection task.
struct Shared {
    identity: Identity,
    limits: TransportLimits,
    /// Where snapshots are streamed from and received into.
    snapshot_files: Option<Arc<dyn SnapshotFiles>>,
    /// Mutual TLS on every connection, dialed or accepted.
    tls: Option<tls::TlsContext>,
    local_addr: SocketAddr,
    peers: Mutex<BTreeMap<NodeId, PeerEntry>>,
    /// The incarnations the cluster recorded for its members: a peer presenting another one
    /// is refused ([`RefusalReason::IncarnationMismatch`]), as acceptor and as dialer.
    incarnations: Mutex<BTreeMap<NodeId, Incarnation>>,
    /// The incarnation each peer presented at its last accepted handshake (either way).
    presented: Mutex<BTreeMap<NodeId, Incarnation>>,
    /// Nodes removed from the cluster: their handshakes are refused as
    /// [`RefusalReason::Removed`], which tells them to stop.
    removed: Mutex<BTreeSet<NodeId>>,
    pending: Arc<PendingCalls>,
    next_request_id: AtomicU64,
    next_transfer_id: AtomicU64,
    inbound_tx: mpsc::Sender<InboundEvent>,
    shutdown: watch::Sender<bool>,
    /// Origin of the ping clock.
    epoch: Instant,
    accept_task: Mutex<Option<JoinHandle<()>>>,
}

impl Shared {
    fn peers(&self) -> MutexGuard<'_, BTreeMap<NodeId, PeerEntry>> {
        // A panic while holding this lock leaves only plain data behind; keep serving.
        self.peers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What we know of node `id`, for its handshake.
    fn acquaintance(&self, id: NodeId) -> handshake::Acquaintance {
        if self.peers().contains_key(&id) {
            handshake::Acquaintance::Peer(self.recorded_incarnation(id))
        } else if self.removed.lock().unwrap_or_else(|p| p.into_inner()).contains(&id) {
            handshake::Acquaintance::Removed
        } else {
            handshake::Acquaintance::Stranger
        }
    }

    /// The incarnation the cluster recorded for node `id`, if any.
    fn recorded_incarnation(&self, id: NodeId) -> Option<Incarnation> {
        self.incarnations.lock().unwrap_or_else(|p| p.into_inner()).get(&id).copied()
    }

    /// Notes the incarnation peer `id` presented at an accepted handshake.
    fn note_presented(&self, id: NodeId, incarnation: Incarnation) {
        self.presented.lock().unwrap_or_else(|p| p.into_inner()).insert(id, incarnation);
    }

    fn now_us(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    fn is_shut_down(&self) -> bool {
        *self.shutdown.borrow()
    }
}

/// Signals shutdown when the last [`Transport`] handle is dropped, so forgotten transports do
/// not keep their tasks and sockets alive.
struct ShutdownOnDrop(Arc<Shared>);

impl Drop for ShutdownOnDrop {
    fn drop(&mut self) {
        self.0.shutdown.send_replace(true);
    }
}

/// A node's handle on the transport. Cheap to clone; all clones share one transport, which
/// stops when [`Transport::shutdown`] is called or the last clone is dropped.
#[derive(Clone)]
pub struct Transport {
    shared: Arc<Shared>,
    _guard: Arc<ShutdownOnDrop>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("node_id", &self.shared.identity.node_id)
            .field("local_addr", &self.shared.local_addr)
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// Validates `config`, binds the listener and starts dialing every peer. Returns the handle
    /// and the stream of everything peers send to this node. Must be called inside a tokio
    /// runtime.
    pub async fn start(config: TransportConfig) -> Result<(Transport, Inbound), TransportError> {
        config.validate()?;
        let listener = tokio::net::TcpListener::bind(config.listen_addr)
            .await
            .map_err(|e| TransportError::Bind { addr: config.listen_addr, reason: e.to_string() })?;
        let local_addr = listener
            .local_addr()
            .map_err(|e| TransportError::Bind { addr: config.listen_addr, reason: e.to_string() })?;
        let (inbound_tx, inbound_rx) = mpsc::channel(config.limits.inbound_queue_events_max);
        let shared = Arc::new(Shared {
            identity: Identity {
                node_id: config.node_id,
                cluster_id: config.cluster_id.clone(),
                incarnation: config.incarnation,
            },
            limits: config.limits.clone(),
            snapshot_files: config.snapshot_files.clone(),
            tls: config.tls.clone(),
            local_addr,
            peers: Mutex::new(BTreeMap::new()),
            incarnations: Mutex::new(BTreeMap::new()),
            presented: Mutex::new(BTreeMap::new()),
            removed: Mutex::new(BTreeSet::new()),
            pending: Arc::new(PendingCalls::default()),
            next_request_id: AtomicU64::new(1),
            next_transfer_id: AtomicU64::new(1),
            inbound_tx,
            shutdown: watch::Sender::new(false),
            epoch: Instant::now(),
            accept_task: Mutex::new(None),
        });
        let accept = tokio::spawn(inbound::accept_loop(shared.clone(), listener));
        *shared.accept_task.lock().unwrap_or_else(|p| p.into_inner()) = Some(accept);
        let transport = Transport { _guard: Arc::new(ShutdownOnDrop(shared.clone())), shared };
        for (id, addr) in config.peers {
            transport.add_peer(id, addr)?;
        }
        tracing::info!(node = %config.node_id, cluster = %config.cluster_id, %local_addr, "transport started");
        Ok((transport, Inbound::new(inbound_rx)))
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.shared.identity.node_id
    }

    /// The address the listener is bound to (resolves port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// Queues a Raft message of `group` for peer `to`, without waiting. When the peer's queue
    /// is full the message is dropped and counted (Raft retransmits); the error says so, and
    /// callers driving Raft may ignore it.
    pub fn send(&self, to: NodeId, group: GroupId, msg: Message) -> Result<(), TransportError> {
        if msg.to != to {
            // The receiver would close the connection over it; refuse it here instead.
            debug_assert_eq!(msg.to, to, "a Raft message must be sent to its recipient");
            return Err(TransportError::Misaddressed { to, recipient: msg.to });
        }
        self.enqueue(to, Outbound::Raft { group, msg })
    }

    /// Queues each message of `group` for its recipient (`msg.to`); returns how many were
    /// queued. Messages to unknown peers or full queues are dropped (and counted when the peer
    /// is known).
    pub fn broadcast(&self, group: GroupId, msgs: impl IntoIterator<Item = Message>) -> usize {
        msgs.into_iter().filter(|m| self.send(m.to, group, m.clone()).is_ok()).count()
    }

    fn enqueue(&self, to: NodeId, item: Outbound) -> Result<(), TransportError> {
        if self.shared.is_shut_down() {
            return Err(TransportError::Shutdown);
        }
        let peers = self.shared.peers();
        let Some(peer) = peers.get(&to) else { return Err(TransportError::UnknownPeer { peer: to }) };
        peer.enqueue(item)
    }

    /// Sends `payload` to peer `to` as a request and waits for its response (the seed's COMMAND
    /// forwarded to a leader). Fails with [`TransportError::Timeout`] after `timeout` (the
    /// outcome is then unknown), with [`TransportError::Network`] if the connection is lost
    /// or the peer dropped the request, and at once with the peer's last connection error
    /// (e.g. [`TransportError::Refused`]) while it is unreachable. The peer answers through the
    /// [`Responder`] of an [`InboundEvent::Request`].
    ///
    /// The request is queued when `call` is called, not when the returned future is first
    /// polled, so requests to one peer arrive in the order of the calls.
    pub fn call(
        &self,
        to: NodeId,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> impl Future<Output = Result<Vec<u8>, TransportError>> + Send + 'static {
        let sent = self.send_request(to, payload);
        async move {
            let (guard, rx) = sent?;
            let result = match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(result)) => result,
                Ok(Err(_)) => Err(TransportError::Shutdown),
                Err(_) => Err(TransportError::Timeout { peer: to, after: timeout }),
            };
            drop(guard);
            result
        }
    }

    /// Queues a request to `to` and registers it as awaiting its response.
    fn send_request(
        &self,
        to: NodeId,
        payload: Vec<u8>,
    ) -> Result<(PendingGuard, oneshot::Receiver<rpc::Reply>), TransportError> {
        let frame_bytes = payload.len().saturating_add(frame::FRAME_HEADER_BYTES + 12);
        if frame_bytes > self.shared.limits.frame_bytes_max {
            return Err(TransportError::TooLarge {
                bytes: frame_bytes,
                limit: self.shared.limits.frame_bytes_max,
            });
        }
        if let Some(LinkState::Down(e)) = self.link_state(to) {
            return Err(e);
        }
        let id = self.shared.next_request_id.fetch_add(1, Relaxed);
        let (guard, rx) = self.shared.pending.register(id, to);
        self.enqueue(to, Outbound::Request { id, payload })?;
        Ok((guard, rx))
    }

    /// The state of our outbound connection to `peer`, if it is known.
    pub fn link_state(&self, peer: NodeId) -> Option<LinkState> {
        self.shared.peers().get(&peer).map(|p| p.state.borrow().clone())
    }

    /// Waits until our outbound connection to `peer` is up. Fails at once if the peer refuses
    /// our handshake ([`TransportError::Refused`], e.g. a peer of another cluster; an
    /// `UnknownNode` refusal may be transient while the peer is still being told about us, and
    /// the transport keeps retrying in the background); otherwise
    /// keeps waiting through reconnect attempts, and after `timeout` returns the last
    /// connection error (or [`TransportError::Timeout`] if no attempt finished).
    pub async fn connect(&self, peer: NodeId, timeout: Duration) -> Result<(), TransportError> {
        let Some(mut state) = self.shared.peers().get(&peer).map(|p| p.state.clone()) else {
            return Err(TransportError::UnknownPeer { peer });
        };
        let settled = async {
            let s = state
                .wait_for(|s| {
                    matches!(s, LinkState::Connected | LinkState::Down(TransportError::Refused { .. }))
                })
                .await;
            s.map(|s| s.clone())
        };
        let result = tokio::time::timeout(timeout, settled).await;
        match result {
            Ok(Ok(LinkState::Connected)) => Ok(()),
            Ok(Ok(LinkState::Down(e))) => Err(e),
            Ok(_) => Err(TransportError::UnknownPeer { peer }),
            Err(_) => match self.link_state(peer) {
                Some(LinkState::Down(e)) => Err(e),
                _ => Err(TransportError::Timeout { peer, after: timeout }),
            },
        }
    }

    /// Adds a peer (or moves a known one to a new address) and starts dialing it. Its
    /// connections are accepted from now on.
    pub fn add_peer(&self, id: NodeId, addr: SocketAddr) -> Result<(), TransportError> {
        if id.0 == 0 || id == self.shared.identity.node_id {
            return Err(TransportError::InvalidConfig(format!("peer id {id} is 0 or this node's own id")));
        }
        if self.shared.is_shut_down() {
            return Err(TransportError::Shutdown);
        }
        let mut peers = self.shared.peers();
        if peers.get(&id).is_some_and(|p| p.addr == addr) {
            return Ok(());
        }
        let counters = peers.remove(&id).map(|old| old.close()).unwrap_or_default();
        peers.insert(id, PeerEntry::spawn(self.shared.clone(), id, addr, counters));
        tracing::info!(peer = %id, %addr, "peer added");
        Ok(())
    }

    /// Records the incarnation the cluster knows peer `id` by. If a connection made before
    /// it was known presented another one, the peer's connections are closed and made again,
    /// so each is checked.
    pub fn record_incarnation(&self, id: NodeId, incarnation: Incarnation) {
        self.shared.incarnations.lock().unwrap_or_else(|p| p.into_inner()).insert(id, incarnation);
        let mismatched = {
            let mut presented = self.shared.presented.lock().unwrap_or_else(|p| p.into_inner());
            let mismatched = presented.get(&id).is_some_and(|&p| p != incarnation);
            if mismatched {
                presented.remove(&id);
            }
            mismatched
        };
        if !mismatched || self.shared.is_shut_down() {
            return;
        }
        let mut peers = self.shared.peers();
        if let Some(old) = peers.remove(&id) {
            let addr = old.addr;
            let counters = old.close();
            peers.insert(id, PeerEntry::spawn(self.shared.clone(), id, addr, counters));
        }
        tracing::warn!(peer = %id, %incarnation, "a connection of peer {id} presented another incarnation; reconnecting");
    }

    /// Forgets a peer: stops dialing it, drops its queue, closes its connections and refuses
    /// its future handshakes. Its calls in flight fail with [`TransportError::Network`].
    pub fn remove_peer(&self, id: NodeId) {
        let removed = self.shared.peers().remove(&id);
        if let Some(peer) = removed {
            peer.close();
            self.shared.pending.fail_peer(id, "peer removed");
            tracing::info!(peer = %id, "peer removed");
        }
    }

    /// Forgets a peer removed from the cluster, like [`Transport::remove_peer`], and from now
    /// on refuses its handshakes with [`RefusalReason::Removed`], so it learns it must stop.
    pub fn retire_peer(&self, id: NodeId) {
        self.shared.removed.lock().unwrap_or_else(|p| p.into_inner()).insert(id);
        self.remove_peer(id);
    }

    /// The known peers and their addresses.
    pub fn peers(&self) -> BTreeMap<NodeId, SocketAddr> {
        self.shared.peers().iter().map(|(id, p)| (*id, p.addr)).collect()
    }

    /// Counters of every known peer.
    pub fn stats(&self) -> BTreeMap<NodeId, PeerStats> {
        self.shared.peers().iter().map(|(id, p)| (*id, p.counters.read())).collect()
    }

    /// Stops everything: the listener, every connection and task; pending calls fail with
    /// [`TransportError::Shutdown`]. Idempotent.
    pub async fn shutdown(&self) {
        self.shared.shutdown.send_replace(true);
        let peers = std::mem::take(&mut *self.shared.peers());
        let mut tasks: Vec<JoinHandle<()>> = peers.into_values().filter_map(|p| p.into_task()).collect();
        tasks.extend(self.shared.accept_task.lock().unwrap_or_else(|p| p.into_inner()).take());
        self.shared.pending.fail_all(|_| TransportError::Shutdown);
        for task in tasks {
            // Tasks watch the shutdown flag; a task stuck past the grace period is aborted.
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(2), task).await.is_err() {
                abort.abort();
            }
        }
        tracing::info!(node = %self.shared.identity.node_id, "transport shut down");
    }
}

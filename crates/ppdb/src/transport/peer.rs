//! One peer, outbound: its bounded queue, the task that dials it (with backoff and jitter),
//! and, while connected, the session that writes queued traffic and reads the answers
//! (pongs and responses) coming back on the same connection.

use super::backoff::Backoff;
use super::error::TransportError;
use super::frame::{read_frame, Frame, ResponseStatus};
use super::handshake::{self, Hello, PROTOCOL_VERSION};
use super::rpc::ResponseAssembler;
use super::stats::PeerCounters;
use super::tls::MaybeTls;
use super::writer::Writer;
use super::Shared;
use ppdb_raft::{Message, NodeId};
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use tokio::io::BufReader;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// What waits in a peer's outbound queue.
#[derive(Debug)]
pub(super) enum Outbound {
    /// A Raft message of a group.
    Raft { group: u64, msg: Message },
    /// A request (see [`super::Transport::call`]).
    Request { id: u64, payload: Vec<u8> },
}

/// The state of our outbound connection to a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    /// No connection attempt has finished yet.
    Connecting,
    /// Connected and handshaken; traffic flows.
    Connected,
    /// The last attempt failed or the connection broke, with the reason; retrying with backoff.
    Down(TransportError),
}

/// The transport's record of one peer.
pub(super) struct PeerEntry {
    peer: NodeId,
    pub addr: SocketAddr,
    pub counters: Arc<PeerCounters>,
    pub state: watch::Receiver<LinkState>,
    /// Id of the newest inbound connection from the peer; older ones close themselves.
    pub inbound_conn: watch::Sender<u64>,
    queue: mpsc::Sender<Outbound>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl PeerEntry {
    /// Creates the peer's queue and starts dialing it.
    pub fn spawn(
        shared: Arc<Shared>,
        peer: NodeId,
        addr: SocketAddr,
        counters: Arc<PeerCounters>,
    ) -> PeerEntry {
        let (queue, rx) = mpsc::channel(shared.limits.peer_queue_messages_max);
        let (state_tx, state) = watch::channel(LinkState::Connecting);
        let stop = watch::Sender::new(false);
        let link =
            Link { shared, peer, addr, counters: counters.clone(), state: state_tx, stop: stop.subscribe() };
        let task = tokio::spawn(link.run(rx));
        PeerEntry {
            peer,
            addr,
            counters,
            state,
            inbound_conn: watch::Sender::new(0),
            queue,
            stop,
            task: Some(task),
        }
    }

    /// Queues without waiting; a full queue drops the item and counts it.
    pub fn enqueue(&self, item: Outbound) -> Result<(), TransportError> {
        self.queue.try_send(item).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => {
                PeerCounters::add(&self.counters.dropped, 1);
                TransportError::QueueFull { peer: self.peer }
            }
            mpsc::error::TrySendError::Closed(_) => TransportError::Shutdown,
        })
    }

    /// A signal that turns true when the peer is removed.
    pub fn stop_signal(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    /// Stops the peer's tasks; returns its counters (kept when a peer changes address).
    pub fn close(self) -> Arc<PeerCounters> {
        self.counters.clone()
    }

    /// Stops the peer's tasks; returns the dialing task to await.
    pub fn into_task(mut self) -> Option<JoinHandle<()>> {
        self.task.take()
    }
}

impl Drop for PeerEntry {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

/// Waits until the peer is removed or the transport shuts down.
pub(super) async fn stopped(stop: &mut watch::Receiver<bool>, shutdown: &mut watch::Receiver<bool>) {
    tokio::select! {
        _ = stop.wait_for(|s| *s) => {}
        _ = shutdown.wait_for(|s| *s) => {}
    }
}

/// The dialing task of one peer.
struct Link {
    shared: Arc<Shared>,
    peer: NodeId,
    addr: SocketAddr,
    counters: Arc<PeerCounters>,
    state: watch::Sender<LinkState>,
    stop: watch::Receiver<bool>,
}

impl Link {
    async fn run(self, mut queue: mpsc::Receiver<Outbound>) {
        let mut shutdown = self.shared.shutdown.subscribe();
        let limits = &self.shared.limits;
        let seed = self.shared.identity.node_id.0.rotate_left(32) ^ self.peer.0;
        let mut backoff = Backoff::new(limits.reconnect_backoff_min, limits.reconnect_backoff_max, seed);
        let mut writer = Writer::new(self.shared.clone(), self.peer, self.counters.clone());
        let mut last_error: Option<TransportError> = None;
        let mut stop = self.stop.clone();
        loop {
            let attempt = tokio::select! {
                r = self.dial() => r,
                () = stopped(&mut stop, &mut shutdown) => break,
            };
            let error = match attempt {
                Ok(stream) => {
                    tracing::info!(peer = %self.peer, addr = %self.addr, "connected to peer");
                    backoff.reset();
                    self.counters.connected.store(true, Relaxed);
                    self.state.send_replace(LinkState::Connected);
                    let error = tokio::select! {
                        e = self.session(stream, &mut queue, &mut writer) => e,
                        () = stopped(&mut stop, &mut shutdown) => TransportError::Shutdown,
                    };
                    self.counters.connected.store(false, Relaxed);
                    writer.reset();
                    self.shared.pending.fail_peer(self.peer, &format!("connection lost: {error}"));
                    if !(*stop.borrow() || *shutdown.borrow()) {
                        tracing::warn!(peer = %self.peer, %error, "connection to peer lost");
                    }
                    error
                }
                Err(error) => {
                    if last_error.as_ref() != Some(&error) {
                        tracing::warn!(peer = %self.peer, addr = %self.addr, %error, "cannot connect to peer");
                    } else {
                        tracing::debug!(peer = %self.peer, %error, "still cannot connect to peer");
                    }
                    // Messages queued for a peer we cannot reach are stale by the time it is
                    // back; Raft resends what still matters.
                    self.drop_queued(&mut queue);
                    error
                }
            };
            if *stop.borrow() || *shutdown.borrow() {
                break;
            }
            last_error = Some(error.clone());
            self.state.send_replace(LinkState::Down(error));
            tokio::select! {
                () = tokio::time::sleep(backoff.next_delay()) => {}
                () = stopped(&mut stop, &mut shutdown) => break,
            }
        }
        self.counters.connected.store(false, Relaxed);
        self.state.send_replace(LinkState::Down(TransportError::Shutdown));
        self.shared.pending.fail_peer(self.peer, "peer removed or transport shut down");
    }

    fn drop_queued(&self, queue: &mut mpsc::Receiver<Outbound>) {
        let mut dropped = 0;
        while queue.try_recv().is_ok() {
            dropped += 1;
        }
        PeerCounters::add(&self.counters.dropped, dropped);
        self.shared.pending.fail_peer(self.peer, "peer unreachable");
    }

    async fn dial(&self) -> Result<MaybeTls, TransportError> {
        let limits = &self.shared.limits;
        let net = |reason: String| TransportError::Network { peer: self.peer, reason };
        let tcp = tokio::time::timeout(limits.connect_timeout, TcpStream::connect(self.addr))
            .await
            .map_err(|_| net(format!("connect to {} timed out", self.addr)))?
            .map_err(|e| net(format!("connect to {}: {e}", self.addr)))?;
        tcp.set_nodelay(true).map_err(|e| net(format!("set TCP_NODELAY: {e}")))?;
        let mut stream = match &self.shared.tls {
            None => MaybeTls::Plain(tcp),
            Some(tls) => tokio::time::timeout(limits.handshake_timeout, tls.dial_peer(tcp, self.addr.ip()))
                .await
                .map_err(|_| net(format!("TLS handshake with {} timed out", self.addr)))?
                .map_err(|e| net(format!("TLS handshake with {}: {e}", self.addr)))?,
        };
        let hello = Hello {
            version: PROTOCOL_VERSION,
            cluster_id: self.shared.identity.cluster_id.clone(),
            from: self.shared.identity.node_id,
            to: self.peer,
            incarnation: self.shared.identity.incarnation,
        };
        let recorded = self.shared.recorded_incarnation(self.peer);
        let presented =
            handshake::dial(&mut stream, hello, recorded, limits.handshake_timeout, limits.frame_bytes_max)
                .await?;
        self.shared.note_presented(self.peer, presented);
        Ok(stream)
    }

    /// Runs one connection until it fails; returns why.
    async fn session(
        &self,
        stream: MaybeTls,
        queue: &mut mpsc::Receiver<Outbound>,
        writer: &mut Writer,
    ) -> TransportError {
        // Plain TCP splits into halves that need no lock; TLS shares one session.
        match stream {
            MaybeTls::Plain(tcp) => {
                let (rd, wr) = tcp.into_split();
                self.exchange(rd, wr, queue, writer).await
            }
            MaybeTls::Tls(tls) => {
                let (rd, wr) = tokio::io::split(tls);
                self.exchange(rd, wr, queue, writer).await
            }
        }
    }

    /// Writes the queue and reads the answers until the connection fails; why it did.
    async fn exchange(
        &self,
        rd: impl AsyncRead + Unpin,
        mut wr: impl AsyncWrite + Unpin,
        queue: &mut mpsc::Receiver<Outbound>,
        writer: &mut Writer,
    ) -> TransportError {
        tokio::select! {
            e = self.read_answers(BufReader::new(rd)) => e,
            e = writer.run(&mut wr, queue) => e,
        }
    }

    /// Reads what comes back on an outbound connection: pongs and responses, whole or in chunks.
    async fn read_answers(&self, mut rd: BufReader<impl AsyncRead + Unpin>) -> TransportError {
        let limits = &self.shared.limits;
        let net = |reason: String| TransportError::Network { peer: self.peer, reason };
        let mut chunked = ResponseAssembler::new(limits.response_bytes_max);
        loop {
            let (frame, bytes) =
                match tokio::time::timeout(limits.idle_timeout, read_frame(&mut rd, limits.frame_bytes_max))
                    .await
                {
                    Err(_) => return net(format!("nothing received for {:?}", limits.idle_timeout)),
                    Ok(Err(e)) => return net(e.to_string()),
                    Ok(Ok(read)) => read,
                };
            PeerCounters::add(&self.counters.bytes_received, bytes as u64);
            match frame {
                Frame::Pong { nonce } => {
                    let rtt = self.shared.now_us().saturating_sub(nonce);
                    self.counters.rtt_us_last.store(rtt, Relaxed);
                }
                Frame::Response { id, status, payload } => {
                    PeerCounters::add(&self.counters.messages_received, 1);
                    let reply = match status {
                        ResponseStatus::Ok => Ok(payload),
                        ResponseStatus::Dropped => Err(net("the peer dropped the request unanswered".into())),
                    };
                    self.shared.pending.complete(id, self.peer, reply);
                }
                Frame::ResponseChunk { id, offset, total, data } => {
                    match chunked.accept(id, offset, total, data) {
                        Ok(None) => {}
                        Ok(Some(payload)) => {
                            PeerCounters::add(&self.counters.messages_received, 1);
                            self.shared.pending.complete(id, self.peer, Ok(payload));
                        }
                        Err(reason) => {
                            tracing::warn!(peer = %self.peer, %reason, "bad response chunk; closing the connection");
                            return net(reason);
                        }
                    }
                }
                other => {
                    return net(format!("unexpected {:?} frame on an outbound connection", other.kind()))
                }
            }
        }
    }
}

//! The receiving side: the accept loop, one task per inbound connection (handshake, then read
//! Raft batches, snapshot chunks, requests and pings), and [`Inbound`], the node's end of it.
//! A connection that sends a bad frame or breaks the protocol is closed with a logged reason;
//! nothing else is affected.

use super::error::TransportError;
use super::frame::{read_frame, Frame, FrameError};
use super::handshake;
use super::peer::stopped;
use super::rpc::{Answer, ChunkedResponse, Responder, ResponseLimits};
use super::snapshot::SnapshotAssembler;
use super::stats::PeerCounters;
use super::tls::MaybeTls;
use super::Shared;
use ppdb_raft::{Message, NodeId};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;

/// Frames (pongs, responses) waiting to go back on one inbound connection.
const REPLY_QUEUE_FRAMES_MAX: usize = 1024;

/// Replies queued together are written together, up to about this many bytes per write.
const REPLY_BATCH_BYTES_MAX: usize = 256 * 1024;

/// Chunked responses taken from the reply queue and waiting for their turn; while this many
/// wait, the queue is not drained further (the responders behind find it full).
const CHUNKED_RESPONSES_WAITING_MAX: usize = 16;

/// What peers send to this node.
#[derive(Debug)]
pub enum InboundEvent {
    /// A Raft message for `group` (the seed's recv).
    Raft {
        /// The sending peer (equal to `msg.from`).
        from: NodeId,
        /// The Raft group.
        group: u64,
        /// The message; an `InstallSnapshot` arrives whole, however it was chunked.
        msg: Message,
    },
    /// A request from a peer's [`super::Transport::call`]; answer through `responder`.
    Request {
        /// The calling peer.
        from: NodeId,
        /// Whether the caller is a guest (a node asking to join, not a member): only requests
        /// meant for newcomers should be served.
        guest: bool,
        /// Opaque to the transport.
        payload: Vec<u8>,
        /// Where the answer goes.
        responder: Responder,
    },
}

/// The node's end of the transport: everything peers send, in arrival order per connection.
/// Bounded (`inbound_queue_events_max`): when the node falls behind, new Raft messages are
/// dropped and counted, and new requests are answered as dropped.
#[derive(Debug)]
pub struct Inbound {
    rx: mpsc::Receiver<InboundEvent>,
}

impl Inbound {
    pub(super) fn new(rx: mpsc::Receiver<InboundEvent>) -> Inbound {
        Inbound { rx }
    }

    /// The next event; `None` once the transport is shut down and the queue is empty.
    pub async fn recv(&mut self) -> Option<InboundEvent> {
        self.rx.recv().await
    }

    /// The next event if one is ready.
    pub fn try_recv(&mut self) -> Option<InboundEvent> {
        self.rx.try_recv().ok()
    }
}

/// Accepts connections until shutdown, at most `inbound_connections_max` at once.
pub(super) async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    let mut shutdown = shared.shutdown.subscribe();
    let slots = Arc::new(Semaphore::new(shared.limits.inbound_connections_max));
    let next_conn_id = AtomicU64::new(1);
    let mut conns = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.wait_for(|s| *s) => break,
        };
        // Reap finished connection tasks so the set does not grow.
        while conns.try_join_next().is_some() {}
        let (stream, addr) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Usually out of file descriptors; pause instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%addr, limit = shared.limits.inbound_connections_max, "too many inbound connections; refused");
            continue;
        };
        let conn = InboundConn { shared: shared.clone(), id: next_conn_id.fetch_add(1, Relaxed), addr };
        conns.spawn(async move {
            conn.run(stream).await;
            drop(slot);
        });
    }
    conns.shutdown().await;
}

/// One accepted connection.
struct InboundConn {
    shared: Arc<Shared>,
    id: u64,
    addr: std::net::SocketAddr,
}

/// What an accepted peer's connection needs from its peer record.
struct PeerLink {
    peer: NodeId,
    /// A node that is not a member (yet): it may only send requests and pings.
    guest: bool,
    counters: Arc<PeerCounters>,
    removed: watch::Receiver<bool>,
    newest_conn: watch::Receiver<u64>,
    /// Keeps a guest's `removed` and `newest_conn` channels open (members' live in their
    /// peer record).
    _guest_signals: Option<(watch::Sender<bool>, watch::Sender<u64>)>,
}

impl PeerLink {
    /// The link of guest connection `conn`: its own counters, never superseded or removed.
    fn guest(peer: NodeId, conn: u64) -> PeerLink {
        let (removed_tx, removed) = watch::channel(false);
        let (newest_tx, newest_conn) = watch::channel(conn);
        PeerLink {
            peer,
            guest: true,
            counters: Arc::default(),
            removed,
            newest_conn,
            _guest_signals: Some((removed_tx, newest_tx)),
        }
    }
}

impl InboundConn {
    async fn run(self, tcp: TcpStream) {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(addr = %self.addr, error = %e, "cannot set TCP_NODELAY");
        }
        let limits = &self.shared.limits;
        // With TLS, a peer without a certificate of the cluster CA ends here, before any
        // cluster message is read.
        let mut stream = match &self.shared.tls {
            None => MaybeTls::Plain(tcp),
            Some(tls) => match tokio::time::timeout(limits.handshake_timeout, tls.accept_peer(tcp)).await {
                Ok(Ok(stream)) => {
                    if let Some(certificate) = stream.peer_identity() {
                        tracing::debug!(addr = %self.addr, subject = %certificate.subject, serial = %certificate.serial_hex, "peer certificate accepted");
                    }
                    stream
                }
                Ok(Err(error)) => {
                    tracing::warn!(addr = %self.addr, %error, "refused a peer's TLS handshake");
                    return;
                }
                Err(_) => {
                    tracing::warn!(addr = %self.addr, "a peer's TLS handshake timed out");
                    return;
                }
            },
        };
        let known = |id: NodeId| self.shared.acquaintance(id);
        let accepted = handshake::accept(
            &mut stream,
            &self.shared.identity,
            known,
            limits.handshake_timeout,
            limits.frame_bytes_max,
        )
        .await;
        let accepted = match accepted {
            Ok(accepted) => accepted,
            Err(error @ TransportError::Refused { .. }) => {
                tracing::warn!(addr = %self.addr, %error, "refused a peer's handshake");
                return;
            }
            Err(error) => {
                tracing::debug!(addr = %self.addr, %error, "inbound handshake failed");
                return;
            }
        };
        let peer = accepted.peer;
        if !accepted.guest {
            self.shared.note_presented(peer, accepted.incarnation);
        }
        let registered =
            if accepted.guest { Some(PeerLink::guest(peer, self.id)) } else { self.register(peer) };
        let Some(link) = registered else { return };
        // Plain TCP splits into halves that need no lock; TLS shares one session.
        let reason = match stream {
            MaybeTls::Plain(tcp) => {
                let (rd, wr) = tcp.into_split();
                self.exchange(&link, rd, wr).await
            }
            MaybeTls::Tls(tls) => {
                let (rd, wr) = tokio::io::split(tls);
                self.exchange(&link, rd, wr).await
            }
        };
        tracing::info!(peer = %peer, addr = %self.addr, %reason, "inbound connection closed");
    }

    /// Reads the peer's frames and writes the answers until the connection ends; why it did.
    async fn exchange<R, W>(&self, link: &PeerLink, rd: R, wr: W) -> String
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let mut removed = link.removed.clone();
        let mut newest = link.newest_conn.clone();
        let mut shutdown = self.shared.shutdown.subscribe();
        let (reply_tx, reply_rx) = mpsc::channel(REPLY_QUEUE_FRAMES_MAX);
        tokio::select! {
            r = self.read_loop(link, BufReader::new(rd), reply_tx) => r,
            r = self.write_replies(wr, reply_rx, &link.counters) => r,
            () = stopped(&mut removed, &mut shutdown) => "peer removed or transport shut down".to_string(),
            _ = newest.wait_for(|id| *id != self.id) => "superseded by a newer connection from the peer".to_string(),
        }
    }

    /// Looks the peer up again (it may have been removed during the handshake) and marks this
    /// connection as its newest.
    fn register(&self, peer: NodeId) -> Option<PeerLink> {
        let peers = self.shared.peers();
        let entry = peers.get(&peer)?;
        entry.inbound_conn.send_replace(self.id);
        Some(PeerLink {
            peer,
            guest: false,
            counters: entry.counters.clone(),
            removed: entry.stop_signal(),
            newest_conn: entry.inbound_conn.subscribe(),
            _guest_signals: None,
        })
    }

    /// Writes the answers queued for this connection. Every answer already queued goes out in
    /// the same write: under load the leader answers many forwarded requests per round, and
    /// one syscall (and one wake-up of the peer) per answer would cost more than the answers
    /// themselves. Chunked responses are sent one after another, one chunk per write, so the
    /// answers queued behind them go out between their chunks.
    async fn write_replies(
        &self,
        mut wr: impl AsyncWrite + Unpin,
        mut replies: mpsc::Receiver<Answer>,
        counters: &PeerCounters,
    ) -> String {
        let write_timeout = self.shared.limits.write_timeout;
        let chunk_bytes = self.shared.limits.response_chunk_bytes;
        let mut chunked: VecDeque<ChunkedResponse> = VecDeque::new();
        let mut batch = Vec::new();
        loop {
            if chunked.is_empty() {
                let Some(answer) = replies.recv().await else { return "reply queue closed".to_string() };
                take_answer(answer, &mut batch, &mut chunked);
            }
            while batch.len() < REPLY_BATCH_BYTES_MAX && chunked.len() < CHUNKED_RESPONSES_WAITING_MAX {
                let Ok(answer) = replies.try_recv() else { break };
                take_answer(answer, &mut batch, &mut chunked);
            }
            if let Some(response) = chunked.front_mut() {
                batch.extend(response.next_frame(chunk_bytes).unwrap_or_default());
                if response.is_done() {
                    chunked.pop_front();
                }
            }
            // Flushing costs nothing on plain TCP; TLS holds what the socket did not take.
            let write = async {
                wr.write_all(&batch).await?;
                wr.flush().await
            };
            match tokio::time::timeout(write_timeout, write).await {
                Err(_) => return format!("reply write blocked for {write_timeout:?}"),
                Ok(Err(e)) => return format!("reply write failed: {e}"),
                Ok(Ok(())) => PeerCounters::add(&counters.bytes_sent, batch.len() as u64),
            }
            batch.clear();
            if batch.capacity() > REPLY_BATCH_BYTES_MAX * 4 {
                batch = Vec::new();
            }
        }
    }

    /// Reads frames until the connection fails or breaks the protocol; returns why.
    async fn read_loop(
        &self,
        link: &PeerLink,
        mut rd: BufReader<impl AsyncRead + Unpin>,
        replies: mpsc::Sender<Answer>,
    ) -> String {
        let limits = &self.shared.limits;
        let mut assembler =
            SnapshotAssembler::new(self.shared.snapshot_files.clone(), limits.snapshots_in_flight_max);
        loop {
            let read =
                tokio::time::timeout(limits.idle_timeout, read_frame(&mut rd, limits.frame_bytes_max)).await;
            let (frame, bytes) = match read {
                Err(_) => return format!("nothing received for {:?}", limits.idle_timeout),
                Ok(Err(FrameError::Closed)) => {
                    tracing::debug!(peer = %link.peer, addr = %self.addr, "peer closed the connection");
                    return FrameError::Closed.to_string();
                }
                Ok(Err(e)) => {
                    tracing::warn!(peer = %link.peer, addr = %self.addr, error = %e, "bad frame; closing the connection");
                    return e.to_string();
                }
                Ok(Ok(read)) => read,
            };
            PeerCounters::add(&link.counters.bytes_received, bytes as u64);
            if let Err(reason) = self.handle(link, frame, &mut assembler, &replies) {
                tracing::warn!(peer = %link.peer, addr = %self.addr, %reason, "protocol violation; closing the connection");
                return reason;
            }
        }
    }

    fn handle(
        &self,
        link: &PeerLink,
        frame: Frame,
        assembler: &mut SnapshotAssembler,
        replies: &mpsc::Sender<Answer>,
    ) -> Result<(), String> {
        if link.guest && !matches!(frame, Frame::Request { .. } | Frame::Ping { .. }) {
            return Err(format!("a guest may not send {:?} frames", frame.kind()));
        }
        match frame {
            Frame::Raft(batch) => {
                for (group, msg) in batch {
                    self.deliver(link, group, msg)?;
                }
            }
            Frame::SnapshotChunk(chunk) => match assembler.accept(chunk) {
                Ok(Some((group, msg))) => self.deliver(link, group, msg)?,
                Ok(None) => {}
                Err(e) if e.closes_connection() => return Err(e.to_string()),
                Err(e) => {
                    PeerCounters::add(&link.counters.dropped_inbound, 1);
                    tracing::warn!(peer = %link.peer, error = %e, "snapshot refused; the leader will send it again");
                }
            },
            Frame::Request { id, payload } => {
                PeerCounters::add(&link.counters.messages_received, 1);
                let limits = ResponseLimits {
                    chunk_bytes: self.shared.limits.response_chunk_bytes,
                    bytes_max: self.shared.limits.response_bytes_max,
                };
                let responder = Responder::new(id, link.peer, replies.clone(), limits);
                let event = InboundEvent::Request { from: link.peer, guest: link.guest, payload, responder };
                // On a full queue the event (and so its responder) is dropped: the caller is
                // told at once that its request was dropped.
                if self.shared.inbound_tx.try_send(event).is_err() {
                    PeerCounters::add(&link.counters.dropped_inbound, 1);
                }
            }
            Frame::Ping { nonce } => {
                // A congested reply queue loses a pong; the next ping measures again.
                let _ = replies.try_send(Answer::Frame(Frame::Pong { nonce }.encode()));
            }
            other => return Err(format!("unexpected {:?} frame on an inbound connection", other.kind())),
        }
        Ok(())
    }

    /// Hands one Raft message to the node after checking it is from the peer and for us.
    fn deliver(&self, link: &PeerLink, group: u64, msg: Message) -> Result<(), String> {
        let us = self.shared.identity.node_id;
        if msg.from != link.peer || msg.to != us {
            return Err(format!(
                "message from {} to {} on the connection from {} to {us}",
                msg.from, msg.to, link.peer
            ));
        }
        PeerCounters::add(&link.counters.messages_received, 1);
        if self.shared.inbound_tx.try_send(InboundEvent::Raft { from: link.peer, group, msg }).is_err() {
            PeerCounters::add(&link.counters.dropped_inbound, 1);
        }
        Ok(())
    }
}

/// Puts a queued answer where [`InboundConn::write_replies`] sends it from: a whole frame in
/// this write, a chunked response in line behind the others.
fn take_answer(answer: Answer, batch: &mut Vec<u8>, chunked: &mut VecDeque<ChunkedResponse>) {
    match answer {
        Answer::Frame(frame) => batch.extend_from_slice(&frame),
        Answer::Chunked(response) => chunked.push_back(response),
    }
}

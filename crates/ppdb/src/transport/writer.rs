//! The write side of an outbound connection: drains everything queued for the peer into as few
//! frames as possible (one Raft batch frame per write, so the heartbeats of all groups to one
//! peer travel together), interleaves one snapshot chunk per write with that traffic, and pings
//! the peer every `ping_interval`.

use super::error::TransportError;
use super::frame::{encode_batch_item, frame_encoder, seal, Frame, FrameKind, FRAME_HEADER_BYTES};
use super::peer::Outbound;
use super::snapshot::OutgoingSnapshot;
use super::stats::PeerCounters;
use super::Shared;
use crate::codec::Encoder;
use ppdb_raft::{Message, MessageBody, NodeId};
use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Bytes of an empty Raft batch frame: header and message count.
const BATCH_EMPTY_BYTES: usize = FRAME_HEADER_BYTES + 4;

/// What one write carries.
struct WriteBuf {
    bytes: Vec<u8>,
    messages: u64,
}

/// The writer of one peer; its state (a message that did not fit the last write, snapshots
/// being streamed) survives between writes but not between connections.
pub(super) struct Writer {
    shared: Arc<Shared>,
    peer: NodeId,
    counters: Arc<PeerCounters>,
    carry: Option<Outbound>,
    snapshots: VecDeque<OutgoingSnapshot>,
    next_ping: Instant,
}

impl Writer {
    /// A writer for `peer`.
    pub fn new(shared: Arc<Shared>, peer: NodeId, counters: Arc<PeerCounters>) -> Writer {
        Writer { shared, peer, counters, carry: None, snapshots: VecDeque::new(), next_ping: Instant::now() }
    }

    /// Forgets the unfinished work of a lost connection (counted as dropped).
    pub fn reset(&mut self) {
        let lost = u64::from(self.carry.take().is_some()) + self.snapshots.len() as u64;
        self.snapshots.clear();
        PeerCounters::add(&self.counters.dropped, lost);
    }

    /// Writes until the connection fails or the queue closes; returns why it stopped.
    pub async fn run(
        &mut self,
        wr: &mut (impl AsyncWrite + Unpin),
        queue: &mut mpsc::Receiver<Outbound>,
    ) -> TransportError {
        // Ping at once: the first round trip is measured as soon as the link is up.
        self.next_ping = Instant::now();
        let write_timeout = self.shared.limits.write_timeout;
        loop {
            if self.carry.is_none() && self.snapshots.is_empty() && Instant::now() < self.next_ping {
                tokio::select! {
                    item = queue.recv() => match item {
                        Some(item) => self.carry = Some(item),
                        None => return TransportError::Shutdown,
                    },
                    () = tokio::time::sleep_until(self.next_ping) => {}
                }
            }
            let buf = self.fill(queue);
            if buf.bytes.is_empty() {
                continue;
            }
            // Flushing costs nothing on plain TCP; TLS holds what the socket did not take.
            let write = async {
                wr.write_all(&buf.bytes).await?;
                wr.flush().await
            };
            match tokio::time::timeout(write_timeout, write).await {
                Err(_) => {
                    let reason = format!("write blocked for {write_timeout:?}: the peer is not reading");
                    return TransportError::Network { peer: self.peer, reason };
                }
                Ok(Err(e)) => {
                    return TransportError::Network { peer: self.peer, reason: format!("write: {e}") }
                }
                Ok(Ok(())) => {
                    PeerCounters::add(&self.counters.bytes_sent, buf.bytes.len() as u64);
                    PeerCounters::add(&self.counters.messages_sent, buf.messages);
                }
            }
        }
    }

    /// Starts streaming a snapshot from its file, unless too many are in flight or the file
    /// cannot be opened (then it is dropped: Raft sends it again).
    fn start_snapshot(&mut self, group: u64, msg: Message) {
        let MessageBody::InstallSnapshot { snapshot } = &msg.body else { return };
        if self.snapshots.len() >= self.shared.limits.snapshots_in_flight_max {
            PeerCounters::add(&self.counters.dropped, 1);
            tracing::warn!(peer = %self.peer, group, "too many snapshots in flight; snapshot dropped");
            return;
        }
        let opened = match &self.shared.snapshot_files {
            Some(files) => files.open(group, snapshot),
            None => Err(std::io::Error::other("this transport keeps no snapshot files")),
        };
        match opened {
            Ok(source) => {
                let id = self.shared.next_transfer_id.fetch_add(1, Relaxed);
                self.snapshots.push_back(OutgoingSnapshot::new(group, id, msg, source));
            }
            Err(e) => {
                PeerCounters::add(&self.counters.dropped, 1);
                tracing::warn!(peer = %self.peer, group, error = %e, "snapshot cannot be read; dropped");
            }
        }
    }

    /// Takes everything queued (up to about one frame's worth) into one write.
    fn fill(&mut self, queue: &mut mpsc::Receiver<Outbound>) -> WriteBuf {
        let limits = &self.shared.limits;
        let max = limits.frame_bytes_max;
        let mut out = WriteBuf { bytes: Vec::new(), messages: 0 };
        if Instant::now() >= self.next_ping {
            out.bytes.extend(Frame::Ping { nonce: self.shared.now_us() }.encode());
            self.next_ping = Instant::now() + limits.ping_interval;
        }
        let mut batch = Batch::new();
        while let Some(item) = self.carry.take().or_else(|| queue.try_recv().ok()) {
            let used = out.bytes.len() + batch.len();
            match item {
                Outbound::Raft { group, msg } if matches!(msg.body, MessageBody::InstallSnapshot { .. }) => {
                    self.start_snapshot(group, msg);
                }
                Outbound::Raft { group, msg } => match batch.push(group, &msg, used, max) {
                    Pushed::Yes => {}
                    Pushed::Full => {
                        self.carry = Some(Outbound::Raft { group, msg });
                        break;
                    }
                    Pushed::Never(bytes) => {
                        PeerCounters::add(&self.counters.dropped, 1);
                        // Cannot happen with the default limits: one entry always fits a frame
                        // (crate::limits). Raft would resend it, and it would be dropped again.
                        tracing::error!(
                            peer = %self.peer, group, bytes, limit = max,
                            "message larger than frame_bytes_max dropped; frame_bytes_max is below what Raft may send"
                        );
                    }
                },
                Outbound::Request { id, payload } => {
                    let len = FRAME_HEADER_BYTES + 12 + payload.len();
                    if used > BATCH_EMPTY_BYTES && used + len > max {
                        self.carry = Some(Outbound::Request { id, payload });
                        break;
                    }
                    out.bytes.extend(Frame::Request { id, payload }.encode());
                    out.messages += 1;
                }
            }
        }
        out.messages += batch.count;
        if let Some(frame) = batch.finish() {
            out.bytes.extend(frame);
        }
        self.next_chunk(&mut out);
        out
    }

    /// Appends one chunk of the next snapshot in flight (round robin between snapshots).
    fn next_chunk(&mut self, out: &mut WriteBuf) {
        let Some(mut snapshot) = self.snapshots.pop_front() else { return };
        match snapshot.next_frame(self.shared.limits.snapshot_chunk_bytes) {
            Ok(Some(frame)) => out.bytes.extend(frame),
            Ok(None) => {}
            Err(e) => {
                PeerCounters::add(&self.counters.dropped, 1);
                tracing::warn!(peer = %self.peer, error = %e, "snapshot file unreadable; transfer abandoned");
                return;
            }
        }
        if snapshot.is_done() {
            out.messages += 1;
        } else {
            self.snapshots.push_back(snapshot);
        }
    }
}

enum Pushed {
    Yes,
    /// No room left in this write; send it in the next one.
    Full,
    /// Larger than any frame may be (its encoded size).
    Never(usize),
}

/// A Raft batch frame being built.
struct Batch {
    buf: Vec<u8>,
    count: u64,
}

impl Batch {
    fn new() -> Batch {
        let mut e = frame_encoder();
        e.u32(0); // message count, filled in by finish()
        Batch { buf: e.finish(), count: 0 }
    }

    fn len(&self) -> usize {
        self.buf.len()
    }

    /// Adds a message if the write (`used` bytes so far) stays within `max`.
    fn push(&mut self, group: u64, msg: &Message, used: usize, max: usize) -> Pushed {
        let mark = self.buf.len();
        let mut e = Encoder::with_buffer(std::mem::take(&mut self.buf));
        encode_batch_item(&mut e, group, msg);
        self.buf = e.finish();
        let item = self.buf.len() - mark;
        if BATCH_EMPTY_BYTES + item > max {
            self.buf.truncate(mark);
            return Pushed::Never(item);
        }
        if used + item > max {
            self.buf.truncate(mark);
            return Pushed::Full;
        }
        self.count += 1;
        Pushed::Yes
    }

    fn finish(mut self) -> Option<Vec<u8>> {
        if self.count == 0 {
            return None;
        }
        let count = u32::try_from(self.count).unwrap_or(u32::MAX);
        self.buf[FRAME_HEADER_BYTES..BATCH_EMPTY_BYTES].copy_from_slice(&count.to_le_bytes());
        Some(seal(FrameKind::Raft, self.buf))
    }
}

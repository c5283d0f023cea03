//! The transport's configuration: identity, addresses, and every limit, validated up front.

use super::error::TransportError;
use super::frame::RESPONSE_CHUNK_ENVELOPE_BYTES;
use super::handshake::Incarnation;
use super::snapshot::SnapshotFiles;
use super::tls::TlsContext;
use crate::limits;
use ppdb_raft::NodeId;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Default largest frame, header included ([`limits::FRAME_BYTES_MAX`]).
pub const FRAME_BYTES_MAX_DEFAULT: usize = limits::FRAME_BYTES_MAX;
/// Default bound of each peer's outbound queue, in messages.
pub const PEER_QUEUE_MESSAGES_MAX_DEFAULT: usize = 4096;
/// Default bound of the inbound queue (all peers) towards the node, in events.
pub const INBOUND_QUEUE_EVENTS_MAX_DEFAULT: usize = 16 * 1024;
/// Default snapshot chunk size ([`limits::SNAPSHOT_CHUNK_BYTES`]).
pub const SNAPSHOT_CHUNK_BYTES_DEFAULT: usize = limits::SNAPSHOT_CHUNK_BYTES;
/// Default size of the chunks of a large response ([`limits::REPLY_CHUNK_BYTES`]).
pub const RESPONSE_CHUNK_BYTES_DEFAULT: usize = limits::REPLY_CHUNK_BYTES;
/// Default largest response a caller reassembles ([`limits::REPLY_BYTES_MAX`]).
pub const RESPONSE_BYTES_MAX_DEFAULT: usize = limits::REPLY_BYTES_MAX;
/// The largest snapshot receivers used to reassemble in memory (they now stream any size to
/// disk); kept for tests that show the old cap is gone.
#[cfg(test)]
pub const SNAPSHOT_BYTES_MAX_DEFAULT: usize = 512 * 1024 * 1024;
/// Longest cluster id, in bytes (it travels in every handshake).
pub const CLUSTER_ID_BYTES_MAX: usize = 255;

/// Everything [`super::Transport::start`] needs.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// This node's id (never 0).
    pub node_id: NodeId,
    /// The cluster's name; peers with another name are refused at the handshake.
    pub cluster_id: String,
    /// This node's incarnation, presented at every handshake.
    pub incarnation: Incarnation,
    /// Where to accept peer connections (port 0 picks a free port; see `local_addr`).
    pub listen_addr: SocketAddr,
    /// The initial peers and their listen addresses (this node excluded).
    pub peers: BTreeMap<NodeId, SocketAddr>,
    /// Limits and timers.
    pub limits: TransportLimits,
    /// The node's snapshot files, which snapshots are streamed from and received into; `None`
    /// (a transport that carries no Raft traffic) drops snapshots to send and refuses those
    /// received.
    pub snapshot_files: Option<Arc<dyn SnapshotFiles>>,
    /// Mutual TLS on every peer connection, both ways (`None`: plain TCP).
    pub tls: Option<TlsContext>,
}

/// The transport's limits and timers, each with its unit in its name.
#[derive(Debug, Clone)]
pub struct TransportLimits {
    /// Largest frame sent or accepted, header included; a larger incoming frame closes the
    /// connection.
    pub frame_bytes_max: usize,
    /// Messages queued per peer; when full, new messages are dropped and counted.
    pub peer_queue_messages_max: usize,
    /// Events queued towards the node (Raft messages and requests of all peers); when full,
    /// incoming messages are dropped and counted, and requests are answered as dropped.
    pub inbound_queue_events_max: usize,
    /// Snapshots travel as chunks of this size.
    pub snapshot_chunk_bytes: usize,
    /// Responses larger than this travel as chunks of this size, one response after another,
    /// with the connection's other answers (pongs, small responses) between the chunks.
    pub response_chunk_bytes: usize,
    /// Largest response a node sends or a caller reassembles; a handler's larger answer is not
    /// sent, and the caller is told its request was dropped.
    pub response_bytes_max: usize,
    /// Snapshots a sender streams to one peer at a time; further ones are dropped and counted.
    pub snapshots_in_flight_max: usize,
    /// Inbound connections open at once (all peers, handshaking ones included).
    pub inbound_connections_max: usize,
    /// First reconnect delay.
    pub reconnect_backoff_min: Duration,
    /// Largest reconnect delay.
    pub reconnect_backoff_max: Duration,
    /// Deadline to open a TCP connection.
    pub connect_timeout: Duration,
    /// Deadline for the handshake exchange.
    pub handshake_timeout: Duration,
    /// Deadline for one frame write; a peer that stops reading is disconnected.
    pub write_timeout: Duration,
    /// How often the dialer pings each peer (round-trip time, liveness).
    pub ping_interval: Duration,
    /// A connection on which nothing arrives for this long is closed.
    pub idle_timeout: Duration,
}

impl Default for TransportLimits {
    fn default() -> TransportLimits {
        TransportLimits {
            frame_bytes_max: FRAME_BYTES_MAX_DEFAULT,
            peer_queue_messages_max: PEER_QUEUE_MESSAGES_MAX_DEFAULT,
            inbound_queue_events_max: INBOUND_QUEUE_EVENTS_MAX_DEFAULT,
            snapshot_chunk_bytes: SNAPSHOT_CHUNK_BYTES_DEFAULT,
            response_chunk_bytes: RESPONSE_CHUNK_BYTES_DEFAULT,
            response_bytes_max: RESPONSE_BYTES_MAX_DEFAULT,
            snapshots_in_flight_max: 2,
            inbound_connections_max: 256,
            reconnect_backoff_min: Duration::from_millis(50),
            reconnect_backoff_max: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(3),
            handshake_timeout: Duration::from_secs(3),
            write_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(10),
        }
    }
}

impl TransportConfig {
    /// A configuration with default limits and a new incarnation.
    pub fn new(
        node_id: NodeId,
        cluster_id: impl Into<String>,
        listen_addr: SocketAddr,
        peers: BTreeMap<NodeId, SocketAddr>,
    ) -> TransportConfig {
        TransportConfig {
            node_id,
            cluster_id: cluster_id.into(),
            incarnation: Incarnation::random(),
            listen_addr,
            peers,
            limits: TransportLimits::default(),
            snapshot_files: None,
            tls: None,
        }
    }

    /// Checks identities and that the limits are consistent with each other.
    pub fn validate(&self) -> Result<(), TransportError> {
        let bad = |s: String| Err(TransportError::InvalidConfig(s));
        if self.node_id.0 == 0 {
            return bad("node_id must not be 0".into());
        }
        if self.cluster_id.is_empty() || self.cluster_id.len() > CLUSTER_ID_BYTES_MAX {
            return bad(format!("cluster_id must be 1..={CLUSTER_ID_BYTES_MAX} bytes"));
        }
        if let Some(id) = self.peers.keys().find(|id| id.0 == 0 || **id == self.node_id) {
            return bad(format!("peer id {id} is 0 or this node's own id"));
        }
        let l = &self.limits;
        if l.frame_bytes_max < 64 * 1024 || l.frame_bytes_max > u32::MAX as usize {
            return bad("frame_bytes_max must be between 64 KiB and 4 GiB".into());
        }
        // A chunk frame carries the chunk plus a header and the snapshot's membership.
        if l.snapshot_chunk_bytes == 0 || l.snapshot_chunk_bytes > l.frame_bytes_max / 2 {
            return bad("snapshot_chunk_bytes must be > 0 and at most half of frame_bytes_max".into());
        }
        // A response chunk frame carries the chunk plus its id, offset and totals.
        let chunk_frame_bytes = l.response_chunk_bytes.saturating_add(RESPONSE_CHUNK_ENVELOPE_BYTES);
        if l.response_chunk_bytes == 0 || chunk_frame_bytes > l.frame_bytes_max {
            return bad("response_chunk_bytes must be > 0 and fit a frame with its header".into());
        }
        let positive = [
            ("peer_queue_messages_max", l.peer_queue_messages_max),
            ("inbound_queue_events_max", l.inbound_queue_events_max),
            ("snapshots_in_flight_max", l.snapshots_in_flight_max),
            ("inbound_connections_max", l.inbound_connections_max),
            ("response_bytes_max", l.response_bytes_max),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return bad(format!("{name} must be > 0"));
        }
        if l.reconnect_backoff_min.is_zero() || l.reconnect_backoff_min > l.reconnect_backoff_max {
            return bad("reconnect_backoff_min must be > 0 and <= reconnect_backoff_max".into());
        }
        if l.idle_timeout <= l.ping_interval * 2 {
            return bad("idle_timeout must exceed two ping intervals".into());
        }
        Ok(())
    }
}

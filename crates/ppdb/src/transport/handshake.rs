//! The handshake that opens every connection. The dialer says who it is and whom it wants
//! ([`Hello`]); the acceptor answers with an ack or a [`Refusal`] and closes. A node of another
//! cluster, a protocol version we do not speak, or a node id we do not know is refused; both
//! sides log the reason and the dialer surfaces it as [`TransportError::Refused`].
//!
//! Each side also names its *incarnation*: a random id a node draws when its data directory
//! is created and keeps with its data. A node whose data was lost comes back under the same
//! node id with a new incarnation; a peer that knows the old one (the cluster directory
//! records it) refuses it ([`RefusalReason::IncarnationMismatch`]), as acceptor and as dialer,
//! so it gets no vote and no message until an operator removes the old node.
//!
//! A node that is not a member yet (it wants to join) dials as a *guest*: its hello names
//! node 0 as the target ([`GUEST_TARGET`]). Guests of our cluster are accepted whatever their
//! id, but may only send requests (see `guest.rs`).

use super::config::CLUSTER_ID_BYTES_MAX;
use super::error::{RefusalReason, TransportError};
use super::frame::{read_frame, Frame};
use crate::codec::{DecodeError, Decoder, Encoder};
use ppdb_raft::NodeId;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

/// The protocol version this build speaks. Bump on any incompatible wire change (3: hello
/// and ack carry the incarnation).
pub const PROTOCOL_VERSION: u32 = 3;

/// The target a guest names in its [`Hello`]: "whoever you are" (node ids start at 1).
pub const GUEST_TARGET: NodeId = NodeId(0);

/// One life of a node id: drawn at random when a node's data directory is created, kept with
/// its data, never 0 (0 stands for "not recorded" in the directory's encoding).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Incarnation(pub u64);

impl Incarnation {
    /// A new incarnation: the standard library's randomly keyed hasher (its keys come from
    /// the operating system's random source) over the time and the process id. Uniqueness
    /// is what matters here, not secrecy.
    pub fn random() -> Incarnation {
        use std::hash::{BuildHasher, Hasher};
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        hasher.write_u128(since_epoch.map(|d| d.as_nanos()).unwrap_or(0));
        hasher.write_u32(std::process::id());
        Incarnation(hasher.finish().max(1))
    }

    /// The incarnation a directory or file recorded as `raw` (0: none recorded).
    pub fn from_raw(raw: u64) -> Option<Incarnation> {
        (raw != 0).then_some(Incarnation(raw))
    }
}

impl std::fmt::Display for Incarnation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// The dialer's introduction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// The dialer's protocol version.
    pub version: u32,
    /// The dialer's cluster.
    pub cluster_id: String,
    /// The dialer's node id.
    pub from: NodeId,
    /// The node the dialer means to reach.
    pub to: NodeId,
    /// The dialer's incarnation.
    pub incarnation: Incarnation,
}

impl Hello {
    pub(super) fn encode(&self, e: &mut Encoder) {
        e.u32(self.version);
        e.bytes(self.cluster_id.as_bytes());
        e.u64(self.from.0);
        e.u64(self.to.0);
        e.u64(self.incarnation.0);
    }

    pub(super) fn decode(d: &mut Decoder<'_>) -> Result<Hello, DecodeError> {
        let version = d.u32()?;
        let cluster_id = decode_string(d)?;
        let (from, to) = (NodeId(d.u64()?), NodeId(d.u64()?));
        Ok(Hello { version, cluster_id, from, to, incarnation: Incarnation(d.u64()?) })
    }
}

/// The acceptor's refusal, with the reason as the acceptor sees it (`ours` = the acceptor's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub RefusalReason);

impl Refusal {
    pub(super) fn encode(&self, e: &mut Encoder) {
        match &self.0 {
            RefusalReason::ClusterMismatch { ours, theirs } => {
                e.u8(1);
                e.bytes(ours.as_bytes());
                e.bytes(theirs.as_bytes());
            }
            RefusalReason::UnsupportedVersion { ours, theirs } => {
                e.u8(2);
                e.u32(*ours);
                e.u32(*theirs);
            }
            RefusalReason::UnknownNode { node } => {
                e.u8(3);
                e.u64(node.0);
            }
            RefusalReason::WrongNode { expected, actual } => {
                e.u8(4);
                e.u64(expected.0);
                e.u64(actual.0);
            }
            RefusalReason::Removed { node } => {
                e.u8(5);
                e.u64(node.0);
            }
            RefusalReason::IncarnationMismatch { node, recorded, presented } => {
                e.u8(6);
                e.u64(node.0);
                e.u64(recorded.0);
                e.u64(presented.0);
            }
        }
    }

    pub(super) fn decode(d: &mut Decoder<'_>) -> Result<Refusal, DecodeError> {
        Ok(Refusal(match d.u8()? {
            1 => RefusalReason::ClusterMismatch { ours: decode_string(d)?, theirs: decode_string(d)? },
            2 => RefusalReason::UnsupportedVersion { ours: d.u32()?, theirs: d.u32()? },
            3 => RefusalReason::UnknownNode { node: NodeId(d.u64()?) },
            4 => RefusalReason::WrongNode { expected: NodeId(d.u64()?), actual: NodeId(d.u64()?) },
            5 => RefusalReason::Removed { node: NodeId(d.u64()?) },
            6 => RefusalReason::IncarnationMismatch {
                node: NodeId(d.u64()?),
                recorded: Incarnation(d.u64()?),
                presented: Incarnation(d.u64()?),
            },
            _ => return Err(d.error("unknown refusal reason")),
        }))
    }

    /// The reason as the dialer sees it (`ours` = the dialer's).
    pub fn as_seen_by_dialer(self) -> RefusalReason {
        match self.0 {
            RefusalReason::ClusterMismatch { ours, theirs } => {
                RefusalReason::ClusterMismatch { ours: theirs, theirs: ours }
            }
            RefusalReason::UnsupportedVersion { ours, theirs } => {
                RefusalReason::UnsupportedVersion { ours: theirs, theirs: ours }
            }
            other => other,
        }
    }
}

fn decode_string(d: &mut Decoder<'_>) -> Result<String, DecodeError> {
    let bytes = d.bytes(CLUSTER_ID_BYTES_MAX)?;
    String::from_utf8(bytes.to_vec()).map_err(|_| d.error("cluster id is not UTF-8"))
}

/// Who the acceptor is, for checking a [`Hello`].
#[derive(Debug, Clone)]
pub struct Identity {
    /// Our node id.
    pub node_id: NodeId,
    /// Our cluster.
    pub cluster_id: String,
    /// Our incarnation.
    pub incarnation: Incarnation,
}

/// What the acceptor knows of a dialer's node id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquaintance {
    /// A current peer, and its incarnation if the cluster recorded it.
    Peer(Option<Incarnation>),
    /// A node removed from the cluster.
    Removed,
    /// Never heard of it.
    Stranger,
}

/// Decides whether the acceptor `us` talks to the dialer that sent `hello`.
pub fn check_hello(
    hello: &Hello,
    us: &Identity,
    known: impl Fn(NodeId) -> Acquaintance,
) -> Result<(), RefusalReason> {
    if hello.version != PROTOCOL_VERSION {
        return Err(RefusalReason::UnsupportedVersion { ours: PROTOCOL_VERSION, theirs: hello.version });
    }
    if hello.cluster_id != us.cluster_id {
        return Err(RefusalReason::ClusterMismatch {
            ours: us.cluster_id.clone(),
            theirs: hello.cluster_id.clone(),
        });
    }
    if hello.to == GUEST_TARGET {
        return Ok(());
    }
    if hello.to != us.node_id {
        return Err(RefusalReason::WrongNode { expected: hello.to, actual: us.node_id });
    }
    match known(hello.from) {
        Acquaintance::Peer(recorded) => check_incarnation(hello.from, recorded, hello.incarnation),
        Acquaintance::Removed => Err(RefusalReason::Removed { node: hello.from }),
        Acquaintance::Stranger => Err(RefusalReason::UnknownNode { node: hello.from }),
    }
}

/// Whether `presented` is the incarnation of `node` the cluster `recorded` (if it did).
pub fn check_incarnation(
    node: NodeId,
    recorded: Option<Incarnation>,
    presented: Incarnation,
) -> Result<(), RefusalReason> {
    match recorded {
        Some(recorded) if recorded != presented => {
            Err(RefusalReason::IncarnationMismatch { node, recorded, presented })
        }
        _ => Ok(()),
    }
}

async fn write<S: AsyncWrite + Unpin>(s: &mut S, frame: &Frame, peer: NodeId) -> Result<(), TransportError> {
    let net = |e: std::io::Error| TransportError::Network { peer, reason: format!("handshake write: {e}") };
    s.write_all(&frame.encode()).await.map_err(net)?;
    s.flush().await.map_err(net)
}

async fn read<S: AsyncRead + Unpin>(
    s: &mut S,
    frame_bytes_max: usize,
    peer: NodeId,
) -> Result<Frame, TransportError> {
    let (frame, _) = read_frame(s, frame_bytes_max)
        .await
        .map_err(|e| TransportError::Network { peer, reason: format!("handshake read: {e}") })?;
    Ok(frame)
}

/// The dialer's half: sends `hello`, waits for the verdict within `timeout`. The acceptor
/// must be the node the hello names and, when the cluster recorded its incarnation
/// (`recorded`), that incarnation: a node whose data was lost is sent nothing. Returns the
/// incarnation the acceptor presented.
pub async fn dial<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    hello: Hello,
    recorded: Option<Incarnation>,
    timeout: Duration,
    frame_bytes_max: usize,
) -> Result<Incarnation, TransportError> {
    let peer = hello.to;
    let exchange = async {
        write(s, &Frame::Handshake(hello), peer).await?;
        match read(s, frame_bytes_max, peer).await? {
            Frame::HandshakeAck { node_id, incarnation } if node_id == peer || peer == GUEST_TARGET => {
                check_incarnation(peer, recorded, incarnation)
                    .map(|()| incarnation)
                    .map_err(|reason| TransportError::Refused { peer, reason })
            }
            Frame::HandshakeAck { node_id, .. } => Err(TransportError::Refused {
                peer,
                reason: RefusalReason::WrongNode { expected: peer, actual: node_id },
            }),
            Frame::HandshakeRefusal(refusal) => {
                Err(TransportError::Refused { peer, reason: refusal.as_seen_by_dialer() })
            }
            other => Err(TransportError::Network {
                peer,
                reason: format!("expected a handshake answer, got {:?}", other.kind()),
            }),
        }
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .unwrap_or_else(|_| Err(TransportError::Network { peer, reason: "handshake timed out".into() }))
}

/// Who an accepted dialer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    /// The dialer's node id.
    pub peer: NodeId,
    /// Whether it dialed as a guest (not a member; requests only).
    pub guest: bool,
    /// The incarnation it presented.
    pub incarnation: Incarnation,
}

/// The acceptor's half: reads the dialer's [`Hello`] within `timeout`, checks it, answers.
/// Returns who the dialer is when accepted.
pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    us: &Identity,
    known: impl Fn(NodeId) -> Acquaintance,
    timeout: Duration,
    frame_bytes_max: usize,
) -> Result<Accepted, TransportError> {
    // Until the dialer has said who it is, errors name node 0 (never a valid id).
    let unknown = NodeId(0);
    let exchange = async {
        let hello = match read(s, frame_bytes_max, unknown).await? {
            Frame::Handshake(hello) => hello,
            other => {
                let reason = format!("expected a handshake, got {:?}", other.kind());
                return Err(TransportError::Network { peer: unknown, reason });
            }
        };
        let peer = hello.from;
        match check_hello(&hello, us, known) {
            Ok(()) => {
                let ack = Frame::HandshakeAck { node_id: us.node_id, incarnation: us.incarnation };
                write(s, &ack, peer).await?;
                Ok(Accepted { peer, guest: hello.to == GUEST_TARGET, incarnation: hello.incarnation })
            }
            Err(reason) => {
                // Best effort: the dialer may already be gone; the refusal stands either way.
                let _ = write(s, &Frame::HandshakeRefusal(Refusal(reason.clone())), peer).await;
                Err(TransportError::Refused { peer, reason })
            }
        }
    };
    tokio::time::timeout(timeout, exchange).await.unwrap_or_else(|_| {
        Err(TransportError::Network { peer: unknown, reason: "handshake timed out".into() })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us() -> Identity {
        Identity { node_id: NodeId(1), cluster_id: "prod".into(), incarnation: Incarnation(11) }
    }

    fn hello(cluster: &str) -> Hello {
        Hello {
            version: PROTOCOL_VERSION,
            cluster_id: cluster.into(),
            from: NodeId(2),
            to: NodeId(1),
            incarnation: Incarnation(22),
        }
    }

    #[test]
    fn each_refusal_reason_is_detected() {
        assert_eq!(check_hello(&hello("prod"), &us(), |_| Acquaintance::Peer(None)), Ok(()));
        assert_eq!(
            check_hello(&hello("test"), &us(), |_| Acquaintance::Peer(None)),
            Err(RefusalReason::ClusterMismatch { ours: "prod".into(), theirs: "test".into() })
        );
        let old = Hello { version: 0, ..hello("prod") };
        assert_eq!(
            check_hello(&old, &us(), |_| Acquaintance::Peer(None)),
            Err(RefusalReason::UnsupportedVersion { ours: PROTOCOL_VERSION, theirs: 0 })
        );
        assert_eq!(
            check_hello(&hello("prod"), &us(), |_| Acquaintance::Stranger),
            Err(RefusalReason::UnknownNode { node: NodeId(2) })
        );
        assert_eq!(
            check_hello(&hello("prod"), &us(), |_| Acquaintance::Removed),
            Err(RefusalReason::Removed { node: NodeId(2) })
        );
        let misdirected = Hello { to: NodeId(7), ..hello("prod") };
        assert_eq!(
            check_hello(&misdirected, &us(), |_| Acquaintance::Peer(None)),
            Err(RefusalReason::WrongNode { expected: NodeId(7), actual: NodeId(1) })
        );
        let guest = Hello { to: GUEST_TARGET, ..hello("prod") };
        assert_eq!(
            check_hello(&guest, &us(), |_| Acquaintance::Stranger),
            Ok(()),
            "an unknown guest may ask to join"
        );
        let foreign_guest = Hello { to: GUEST_TARGET, ..hello("test") };
        assert!(matches!(
            check_hello(&foreign_guest, &us(), |_| Acquaintance::Stranger),
            Err(RefusalReason::ClusterMismatch { .. })
        ));
    }

    #[tokio::test]
    async fn a_foreign_cluster_is_refused_on_both_sides() {
        let (mut a, mut b) = tokio::io::duplex(4096);
        let dialer =
            tokio::spawn(
                async move { dial(&mut a, hello("test"), None, Duration::from_secs(5), 1 << 20).await },
            );
        let accepted =
            accept(&mut b, &us(), |_| Acquaintance::Peer(None), Duration::from_secs(5), 1 << 20).await;
        assert_eq!(
            accepted,
            Err(TransportError::Refused {
                peer: NodeId(2),
                reason: RefusalReason::ClusterMismatch { ours: "prod".into(), theirs: "test".into() }
            })
        );
        let dialed = dialer.await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            dialed,
            Err(TransportError::Refused {
                peer: NodeId(1),
                reason: RefusalReason::ClusterMismatch { ours: "test".into(), theirs: "prod".into() }
            })
        );
    }

    #[test]
    fn a_recorded_incarnation_must_match() {
        let recorded = |_| Acquaintance::Peer(Some(Incarnation(22)));
        assert_eq!(check_hello(&hello("prod"), &us(), recorded), Ok(()));
        let reborn = Hello { incarnation: Incarnation(33), ..hello("prod") };
        let refused = check_hello(&reborn, &us(), recorded);
        assert_eq!(
            refused,
            Err(RefusalReason::IncarnationMismatch {
                node: NodeId(2),
                recorded: Incarnation(22),
                presented: Incarnation(33)
            })
        );
        let said = refused.err().map(|r| r.to_string()).unwrap_or_default();
        assert!(said.contains("ppdb cluster remove 2") && said.contains("--join"), "{said}");
        assert_eq!(check_hello(&reborn, &us(), |_| Acquaintance::Peer(None)), Ok(()), "not recorded yet");
    }

    #[tokio::test]
    async fn a_dialer_sends_nothing_to_an_acceptor_of_another_incarnation() {
        let (mut a, mut b) = tokio::io::duplex(4096);
        let dialer = tokio::spawn(async move {
            dial(&mut a, hello("prod"), Some(Incarnation(99)), Duration::from_secs(5), 1 << 20).await
        });
        let accepted =
            accept(&mut b, &us(), |_| Acquaintance::Peer(None), Duration::from_secs(5), 1 << 20).await;
        assert!(accepted.is_ok(), "{accepted:?}");
        let dialed = dialer.await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            dialed,
            Err(TransportError::Refused {
                peer: NodeId(1),
                reason: RefusalReason::IncarnationMismatch {
                    node: NodeId(1),
                    recorded: Incarnation(99),
                    presented: Incarnation(11)
                }
            })
        );
    }
}

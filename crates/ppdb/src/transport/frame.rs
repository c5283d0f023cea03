//! The wire frame: `[len u32 LE][kind u8][crc32c u32 LE of kind+payload][payload]`, where `len`
//! is the payload's length. Every frame is bounded by `frame_bytes_max` (header included) and
//! checksummed; [`Frame`] is the typed content of each kind. Decoding never panics: any defect
//! becomes a [`FrameError`], which closes that one connection. A frame's payload is read as it
//! arrives, so a header announcing a large frame reserves nothing until its bytes come.
//!
//! Sizes: with the default `frame_bytes_max` ([`crate::limits::FRAME_BYTES_MAX`]) an append
//! message of the largest entry always fits one frame (checked below against the room the
//! limits keep around it), so Raft never produces a message the transport cannot carry.

use super::handshake::{Hello, Incarnation, Refusal};
use super::snapshot::SnapshotChunk;
use crate::codec::{decode_message, encode_message, DecodeError, Decoder, Encoder, APPEND_HEADER_BYTES};
use crate::limits::FRAME_ENVELOPE_BYTES_MAX;
use ppdb_raft::{Message, NodeId};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Bytes before the payload: length, kind, checksum.
pub const FRAME_HEADER_BYTES: usize = 9;

/// Most messages in one Raft batch frame.
pub const BATCH_MESSAGES_MAX: usize = 1 << 20;

/// Smallest encoded `(group, message)` pair: group id, from, to, term, body tag.
const BATCH_ITEM_BYTES_MIN: usize = 8 + 8 + 8 + 8 + 1;

/// Largest opaque payload of a request or response (bounded again by the frame size).
pub const RPC_PAYLOAD_BYTES_MAX: usize = u32::MAX as usize;

/// Bytes of a Raft batch frame around one append message's entries: header, message count,
/// group id, and the message's own header.
const APPEND_FRAME_ENVELOPE_BYTES: usize = FRAME_HEADER_BYTES + 4 + 8 + APPEND_HEADER_BYTES;

/// Bytes of a response chunk frame around its data: header, id, offset, total, data length.
pub const RESPONSE_CHUNK_ENVELOPE_BYTES: usize = FRAME_HEADER_BYTES + 8 + 8 + 8 + 4;

const _: () = assert!(APPEND_FRAME_ENVELOPE_BYTES <= FRAME_ENVELOPE_BYTES_MAX);
const _: () = assert!(RESPONSE_CHUNK_ENVELOPE_BYTES <= FRAME_ENVELOPE_BYTES_MAX);

/// What a frame carries; the byte after the length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameKind {
    /// Dialer to acceptor: who I am ([`Hello`]).
    Handshake = 1,
    /// Acceptor to dialer: accepted, with the acceptor's node id.
    HandshakeAck = 2,
    /// Acceptor to dialer: refused, with the reason ([`Refusal`]); the connection then closes.
    HandshakeRefusal = 3,
    /// A batch of `(group, Raft message)`: HEARTBEAT, VOTE, APPEND, small SNAPSHOT, COMMAND.
    Raft = 4,
    /// One piece of a large snapshot.
    SnapshotChunk = 5,
    /// A request (the seed's COMMAND forwarded to a leader): id and opaque payload.
    Request = 6,
    /// The answer to a request: id, status and opaque payload.
    Response = 7,
    /// Round-trip probe.
    Ping = 8,
    /// Answer to a probe.
    Pong = 9,
    /// One piece of a response too large for one frame (`transport::rpc`).
    ResponseChunk = 10,
}

impl FrameKind {
    fn from_u8(b: u8) -> Option<FrameKind> {
        Some(match b {
            1 => FrameKind::Handshake,
            2 => FrameKind::HandshakeAck,
            3 => FrameKind::HandshakeRefusal,
            4 => FrameKind::Raft,
            5 => FrameKind::SnapshotChunk,
            6 => FrameKind::Request,
            7 => FrameKind::Response,
            8 => FrameKind::Ping,
            9 => FrameKind::Pong,
            10 => FrameKind::ResponseChunk,
            _ => return None,
        })
    }
}

/// Why a frame was refused. Any of these closes the connection it arrived on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The peer closed the connection between frames.
    #[error("connection closed by peer")]
    Closed,
    /// Reading failed (reset, truncated frame, timeout).
    #[error("read failed: {0}")]
    Io(String),
    /// The declared length exceeds `frame_bytes_max`.
    #[error("frame of {bytes} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Declared frame size, header included.
        bytes: u64,
        /// The limit.
        limit: usize,
    },
    /// The checksum does not match the content.
    #[error("checksum mismatch: header says {expected:#010x}, content gives {actual:#010x}")]
    BadChecksum {
        /// Checksum in the header.
        expected: u32,
        /// Checksum of what arrived.
        actual: u32,
    },
    /// The kind byte is not one this version knows.
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    /// The payload does not decode as its kind.
    #[error("bad {kind:?} payload: {error}")]
    Decode {
        /// The frame's kind.
        kind: FrameKind,
        /// The decoder's complaint.
        error: DecodeError,
    },
}

/// Whether the response carries an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseStatus {
    /// The payload is the handler's answer.
    Ok,
    /// The receiver discarded the request without answering (queue full, handler gone).
    Dropped,
}

/// The typed content of a frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// See [`FrameKind::Handshake`].
    Handshake(Hello),
    /// See [`FrameKind::HandshakeAck`].
    HandshakeAck {
        /// The acceptor's node id.
        node_id: NodeId,
        /// The acceptor's incarnation.
        incarnation: Incarnation,
    },
    /// See [`FrameKind::HandshakeRefusal`].
    HandshakeRefusal(Refusal),
    /// See [`FrameKind::Raft`].
    Raft(Vec<(u64, Message)>),
    /// See [`FrameKind::SnapshotChunk`].
    SnapshotChunk(SnapshotChunk),
    /// See [`FrameKind::Request`].
    Request {
        /// The caller's request id, echoed in the response.
        id: u64,
        /// Opaque to the transport.
        payload: Vec<u8>,
    },
    /// See [`FrameKind::Response`].
    Response {
        /// The request's id.
        id: u64,
        /// Whether there is an answer.
        status: ResponseStatus,
        /// Opaque to the transport.
        payload: Vec<u8>,
    },
    /// See [`FrameKind::Ping`].
    Ping {
        /// Echoed in the pong (the sender's clock, in microseconds).
        nonce: u64,
    },
    /// See [`FrameKind::Pong`].
    Pong {
        /// The ping's nonce.
        nonce: u64,
    },
    /// See [`FrameKind::ResponseChunk`]: the bytes `offset..offset + data.len()` of the
    /// payload of response `id`, which is `total` bytes long. A response's chunks follow each
    /// other in order; the one that reaches `total` completes it (status Ok).
    ResponseChunk {
        /// The request's id.
        id: u64,
        /// Where `data` starts in the payload.
        offset: u64,
        /// The payload's full size.
        total: u64,
        /// The bytes.
        data: Vec<u8>,
    },
}

/// An encoder positioned after a blank frame header; finish with [`seal`].
pub fn frame_encoder() -> Encoder {
    Encoder::with_buffer(vec![0; FRAME_HEADER_BYTES])
}

/// Fills in the header of a buffer started by [`frame_encoder`]; returns the frame's bytes.
pub fn seal(kind: FrameKind, mut buf: Vec<u8>) -> Vec<u8> {
    debug_assert!(buf.len() >= FRAME_HEADER_BYTES);
    let len = u32::try_from(buf.len() - FRAME_HEADER_BYTES).unwrap_or(u32::MAX);
    let crc = crc32c::crc32c_append(crc32c::crc32c(&[kind as u8]), &buf[FRAME_HEADER_BYTES..]);
    buf[0..4].copy_from_slice(&len.to_le_bytes());
    buf[4] = kind as u8;
    buf[5..9].copy_from_slice(&crc.to_le_bytes());
    buf
}

/// The frame carrying `data`, the bytes at `offset` of response `id`'s `total`-byte payload,
/// encoded from a slice of the payload without copying it into a [`Frame`] first.
pub fn encode_response_chunk(id: u64, offset: u64, total: u64, data: &[u8]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(RESPONSE_CHUNK_ENVELOPE_BYTES + data.len());
    buf.resize(FRAME_HEADER_BYTES, 0); // the header, filled in by seal()
    let mut e = Encoder::with_buffer(buf);
    e.u64(id);
    e.u64(offset);
    e.u64(total);
    e.bytes(data);
    seal(FrameKind::ResponseChunk, e.finish())
}

/// Appends one `(group, message)` to a Raft batch being built.
pub fn encode_batch_item(e: &mut Encoder, group: u64, msg: &Message) {
    e.u64(group);
    encode_message(e, msg);
}

impl Frame {
    /// The frame's kind.
    pub fn kind(&self) -> FrameKind {
        match self {
            Frame::Handshake(_) => FrameKind::Handshake,
            Frame::HandshakeAck { .. } => FrameKind::HandshakeAck,
            Frame::HandshakeRefusal(_) => FrameKind::HandshakeRefusal,
            Frame::Raft(_) => FrameKind::Raft,
            Frame::SnapshotChunk(_) => FrameKind::SnapshotChunk,
            Frame::Request { .. } => FrameKind::Request,
            Frame::Response { .. } => FrameKind::Response,
            Frame::Ping { .. } => FrameKind::Ping,
            Frame::Pong { .. } => FrameKind::Pong,
            Frame::ResponseChunk { .. } => FrameKind::ResponseChunk,
        }
    }

    /// The frame's bytes, header included.
    pub fn encode(&self) -> Vec<u8> {
        if let Frame::ResponseChunk { id, offset, total, data } = self {
            return encode_response_chunk(*id, *offset, *total, data);
        }
        let mut e = frame_encoder();
        match self {
            Frame::Handshake(hello) => hello.encode(&mut e),
            Frame::HandshakeAck { node_id, incarnation } => {
                e.u64(node_id.0);
                e.u64(incarnation.0);
            }
            Frame::HandshakeRefusal(refusal) => refusal.encode(&mut e),
            Frame::Raft(batch) => {
                e.u32(u32::try_from(batch.len()).unwrap_or(u32::MAX));
                for (group, msg) in batch {
                    encode_batch_item(&mut e, *group, msg);
                }
            }
            Frame::SnapshotChunk(chunk) => chunk.encode(&mut e),
            Frame::Request { id, payload } => {
                e.u64(*id);
                e.bytes(payload);
            }
            Frame::Response { id, status, payload } => {
                e.u64(*id);
                e.u8(match status {
                    ResponseStatus::Ok => 0,
                    ResponseStatus::Dropped => 1,
                });
                e.bytes(payload);
            }
            Frame::Ping { nonce } | Frame::Pong { nonce } => e.u64(*nonce),
            Frame::ResponseChunk { .. } => {}
        }
        seal(self.kind(), e.finish())
    }

    /// Decodes a payload of the given kind; every byte must be consumed.
    pub fn decode(kind: FrameKind, payload: &[u8]) -> Result<Frame, FrameError> {
        let mut d = Decoder::new(payload, "frame");
        let frame = Self::decode_body(kind, &mut d).and_then(|f| d.finish().map(|()| f));
        frame.map_err(|error| FrameError::Decode { kind, error })
    }

    fn decode_body(kind: FrameKind, d: &mut Decoder<'_>) -> Result<Frame, DecodeError> {
        Ok(match kind {
            FrameKind::Handshake => Frame::Handshake(Hello::decode(d)?),
            FrameKind::HandshakeAck => {
                Frame::HandshakeAck { node_id: NodeId(d.u64()?), incarnation: Incarnation(d.u64()?) }
            }
            FrameKind::HandshakeRefusal => Frame::HandshakeRefusal(Refusal::decode(d)?),
            FrameKind::Raft => {
                let n = d.count(BATCH_MESSAGES_MAX, BATCH_ITEM_BYTES_MIN)?;
                let mut batch = Vec::with_capacity(n);
                for _ in 0..n {
                    let group = d.u64()?;
                    batch.push((group, decode_message(d)?));
                }
                Frame::Raft(batch)
            }
            FrameKind::SnapshotChunk => Frame::SnapshotChunk(SnapshotChunk::decode(d)?),
            FrameKind::Request => {
                Frame::Request { id: d.u64()?, payload: d.bytes(RPC_PAYLOAD_BYTES_MAX)?.to_vec() }
            }
            FrameKind::Response => {
                let id = d.u64()?;
                let status = match d.u8()? {
                    0 => ResponseStatus::Ok,
                    1 => ResponseStatus::Dropped,
                    _ => return Err(d.error("unknown response status")),
                };
                Frame::Response { id, status, payload: d.bytes(RPC_PAYLOAD_BYTES_MAX)?.to_vec() }
            }
            FrameKind::Ping => Frame::Ping { nonce: d.u64()? },
            FrameKind::Pong => Frame::Pong { nonce: d.u64()? },
            FrameKind::ResponseChunk => Frame::ResponseChunk {
                id: d.u64()?,
                offset: d.u64()?,
                total: d.u64()?,
                data: d.bytes(RPC_PAYLOAD_BYTES_MAX)?.to_vec(),
            },
        })
    }
}

/// Most bytes reserved for a frame's payload before they arrive.
const PAYLOAD_RESERVED_BYTES_MAX: usize = 64 * 1024;

/// A checked frame header.
#[derive(Debug, Clone, Copy)]
struct Header {
    kind: FrameKind,
    payload_len: usize,
    crc: u32,
}

fn parse_header(h: &[u8; FRAME_HEADER_BYTES], frame_bytes_max: usize) -> Result<Header, FrameError> {
    let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
    let total = u64::from(len) + FRAME_HEADER_BYTES as u64;
    if total > frame_bytes_max as u64 {
        return Err(FrameError::TooLarge { bytes: total, limit: frame_bytes_max });
    }
    let kind = FrameKind::from_u8(h[4]).ok_or(FrameError::UnknownKind(h[4]))?;
    Ok(Header { kind, payload_len: len as usize, crc: u32::from_le_bytes([h[5], h[6], h[7], h[8]]) })
}

fn check(header: Header, payload: &[u8]) -> Result<Frame, FrameError> {
    let actual = crc32c::crc32c_append(crc32c::crc32c(&[header.kind as u8]), payload);
    if actual != header.crc {
        return Err(FrameError::BadChecksum { expected: header.crc, actual });
    }
    Frame::decode(header.kind, payload)
}

/// Decodes the first frame of `buf`: `Ok(None)` if more bytes are needed, otherwise the frame
/// and how many bytes it used.
pub fn decode_frame(buf: &[u8], frame_bytes_max: usize) -> Result<Option<(Frame, usize)>, FrameError> {
    let Some(h) = buf.first_chunk::<FRAME_HEADER_BYTES>() else { return Ok(None) };
    let header = parse_header(h, frame_bytes_max)?;
    let end = FRAME_HEADER_BYTES + header.payload_len;
    let Some(payload) = buf.get(FRAME_HEADER_BYTES..end) else { return Ok(None) };
    Ok(Some((check(header, payload)?, end)))
}

/// Reads one frame. Returns its wire size with it, for the byte counters.
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    frame_bytes_max: usize,
) -> Result<(Frame, usize), FrameError> {
    let mut h = [0u8; FRAME_HEADER_BYTES];
    // A clean close between frames is not an error worth a warning.
    let first = r.read(&mut h).await.map_err(|e| FrameError::Io(e.to_string()))?;
    if first == 0 {
        return Err(FrameError::Closed);
    }
    r.read_exact(&mut h[first..]).await.map_err(|e| FrameError::Io(e.to_string()))?;
    let header = parse_header(&h, frame_bytes_max)?;
    // Bounded by frame_bytes_max, checked above; memory grows with the bytes that arrive, not
    // with what the header announces.
    let mut payload = Vec::with_capacity(header.payload_len.min(PAYLOAD_RESERVED_BYTES_MAX));
    let read = r.take(header.payload_len as u64).read_to_end(&mut payload).await;
    read.map_err(|e| FrameError::Io(e.to_string()))?;
    if payload.len() < header.payload_len {
        return Err(FrameError::Io(format!(
            "connection closed {} bytes into a frame of {}",
            payload.len(),
            header.payload_len
        )));
    }
    Ok((check(header, &payload)?, FRAME_HEADER_BYTES + header.payload_len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::error::RefusalReason;
    use crate::transport::handshake::PROTOCOL_VERSION;
    use ppdb_raft::{LogIndex, MessageBody, Term};
    use proptest::prelude::*;

    const MAX: usize = 1 << 20;

    fn heartbeat(from: u64, to: u64) -> Message {
        Message {
            from: NodeId(from),
            to: NodeId(to),
            term: Term(3),
            body: MessageBody::Heartbeat { commit: LogIndex(7), read_round: 1 },
        }
    }

    fn every_kind() -> Vec<Frame> {
        vec![
            Frame::Handshake(Hello {
                version: PROTOCOL_VERSION,
                cluster_id: "prod".into(),
                from: NodeId(1),
                to: NodeId(2),
                incarnation: Incarnation(0x1234),
            }),
            Frame::HandshakeAck { node_id: NodeId(2), incarnation: Incarnation(7) },
            Frame::HandshakeRefusal(Refusal(RefusalReason::ClusterMismatch {
                ours: "a".into(),
                theirs: "b".into(),
            })),
            Frame::HandshakeRefusal(Refusal(RefusalReason::UnknownNode { node: NodeId(9) })),
            Frame::Raft(vec![(0, heartbeat(1, 2)), (7, heartbeat(1, 2))]),
            Frame::Request { id: 5, payload: b"SET a b".to_vec() },
            Frame::Response { id: 5, status: ResponseStatus::Ok, payload: b"+OK".to_vec() },
            Frame::Response { id: 6, status: ResponseStatus::Dropped, payload: Vec::new() },
            Frame::Ping { nonce: 42 },
            Frame::Pong { nonce: 42 },
            Frame::ResponseChunk { id: 5, offset: 3, total: 9, data: b"lo w".to_vec() },
        ]
    }

    #[test]
    fn every_frame_kind_round_trips() {
        for frame in every_kind() {
            let bytes = frame.encode();
            let decoded = decode_frame(&bytes, MAX).unwrap_or_else(|e| panic!("{frame:?}: {e}"));
            assert_eq!(decoded, Some((frame, bytes.len())));
            // Any strict prefix asks for more bytes.
            assert_eq!(decode_frame(&bytes[..bytes.len() - 1], MAX), Ok(None));
        }
    }

    #[test]
    fn corrupt_oversized_and_unknown_frames_are_refused() {
        let mut bytes = Frame::Ping { nonce: 1 }.encode();
        bytes[FRAME_HEADER_BYTES] ^= 1;
        assert!(matches!(decode_frame(&bytes, MAX), Err(FrameError::BadChecksum { .. })));
        let big = Frame::Request { id: 1, payload: vec![0; 100] }.encode();
        assert!(matches!(decode_frame(&big, 64), Err(FrameError::TooLarge { bytes: 121, limit: 64 })));
        let mut unknown = Frame::Ping { nonce: 1 }.encode();
        unknown[4] = 200;
        assert_eq!(decode_frame(&unknown, MAX), Err(FrameError::UnknownKind(200)));
        // A well-checksummed payload that does not decode as its kind.
        let mut e = frame_encoder();
        e.u8(1);
        let short_ping = seal(FrameKind::Ping, e.finish());
        assert!(matches!(
            decode_frame(&short_ping, MAX),
            Err(FrameError::Decode { kind: FrameKind::Ping, .. })
        ));
    }

    #[test]
    fn an_append_of_the_largest_entry_fits_a_default_frame() {
        use crate::limits::{COMMAND_BYTES_MAX, FRAME_BYTES_MAX};
        use ppdb_raft::{Entry, EntryPayload};
        let entry = Entry {
            index: LogIndex(8),
            term: Term(3),
            payload: EntryPayload::Command(vec![7; COMMAND_BYTES_MAX]),
        };
        let body = MessageBody::Append {
            prev_index: LogIndex(7),
            prev_term: Term(3),
            entries: vec![entry],
            commit: LogIndex(7),
        };
        let append = Message { from: NodeId(1), to: NodeId(2), term: Term(3), body };
        let mut e = frame_encoder();
        e.u32(1);
        encode_batch_item(&mut e, 5, &append);
        let bytes = seal(FrameKind::Raft, e.finish());
        assert!(bytes.len() <= FRAME_BYTES_MAX, "{} bytes", bytes.len());
        let decoded = decode_frame(&bytes, FRAME_BYTES_MAX).unwrap_or_else(|e| panic!("{e}"));
        assert!(decoded == Some((Frame::Raft(vec![(5, append)]), bytes.len())));
    }

    #[tokio::test]
    async fn read_frame_reports_clean_close_and_truncation() {
        let mut empty: &[u8] = &[];
        assert_eq!(read_frame(&mut empty, MAX).await, Err(FrameError::Closed));
        let bytes = Frame::Ping { nonce: 1 }.encode();
        let mut truncated = &bytes[..bytes.len() - 2];
        assert!(matches!(read_frame(&mut truncated, MAX).await, Err(FrameError::Io(_))));
        let mut whole = &bytes[..];
        assert_eq!(read_frame(&mut whole, MAX).await, Ok((Frame::Ping { nonce: 1 }, bytes.len())));
        // A header announcing far more than arrives is a truncation, whatever the limit.
        let mut lying = Frame::Ping { nonce: 1 }.encode();
        lying[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        let mut lying = &lying[..];
        assert!(matches!(read_frame(&mut lying, usize::MAX).await, Err(FrameError::Io(_))));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_frame(&bytes, MAX);
        }

        #[test]
        fn arbitrary_payloads_with_valid_headers_never_panic(
            kind in 1u8..=10,
            payload in proptest::collection::vec(any::<u8>(), 0..512),
        ) {
            let Some(kind) = FrameKind::from_u8(kind) else { return Ok(()) };
            let mut e = frame_encoder();
            for b in &payload {
                e.u8(*b);
            }
            let _ = decode_frame(&seal(kind, e.finish()), MAX);
        }

        #[test]
        fn a_flipped_bit_is_always_detected(index in 0usize..1000, bit in 0u8..8) {
            for frame in every_kind() {
                let mut bytes = frame.encode();
                let i = index % bytes.len();
                bytes[i] ^= 1 << bit;
                // Either refused, or (a flipped length) waiting for bytes that never come.
                prop_assert!(!matches!(decode_frame(&bytes, MAX), Ok(Some(_))), "{frame:?} byte {i}");
            }
        }
    }
}

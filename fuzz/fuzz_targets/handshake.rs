//! The handshake (`transport/handshake.rs`): both halves run over an in-memory connection whose
//! incoming bytes are the fuzzer's, so the frame reader, the hello and refusal decoders and the
//! acceptance rules all see hostile input.
//!
//! Input: a mode byte, then the bytes the other side sends: raw (mode bit 1 clear) or sealed
//! into one frame of the kind given by the next byte (mode bit 1 set). Mode bit 0 picks the
//! half: the acceptor reading a hello, or the dialer reading the verdict. The acceptor (node 1,
//! incarnation 11) knows node 2 as a peer of unrecorded incarnation, node 3 as one recorded at
//! incarnation 33, node 4 as removed. The dialer dials node 2, expecting incarnation 22 when
//! mode bit 2 is set (else none recorded), or as a guest (node 0) when mode bit 3 is set.
//!
//! Asserts: nothing panics; the acceptor admits exactly the hellos that `check_hello` accepts,
//! reports the dialer's id, guest flag and incarnation as the hello gave them, and answers every
//! decodable hello with exactly one ack (naming its id and incarnation) or refusal frame; the
//! dialer succeeds only on an ack from the node it dialed (any node for a guest) presenting the
//! recorded incarnation if one is, and returns that incarnation.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use ppdb::transport::frame::{decode_frame, Frame, FRAME_HEADER_BYTES};
use ppdb::transport::handshake::{
    accept, check_hello, dial, Acquaintance, Hello, Identity, Incarnation, GUEST_TARGET, PROTOCOL_VERSION,
};
use ppdb_raft::NodeId;

const FRAME_BYTES_MAX: usize = 64 * 1024;
const TIMEOUT: Duration = Duration::from_secs(5);
const CLUSTER: &str = "fuzz";

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a runtime")
    })
}

fn us() -> Identity {
    Identity { node_id: NodeId(1), cluster_id: CLUSTER.to_string(), incarnation: Incarnation(11) }
}

fn known(node: NodeId) -> Acquaintance {
    match node.0 {
        2 => Acquaintance::Peer(None),
        3 => Acquaintance::Peer(Some(Incarnation(33))),
        4 => Acquaintance::Removed,
        _ => Acquaintance::Stranger,
    }
}

fn seal(kind: u8, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let crc = crc32c::crc32c_append(crc32c::crc32c(&[kind]), payload);
    let mut out = Vec::with_capacity(FRAME_HEADER_BYTES + payload.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.push(kind);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(payload);
    out
}

fn first_frame(incoming: &[u8]) -> Option<Frame> {
    decode_frame(incoming, FRAME_BYTES_MAX).ok().flatten().map(|(frame, _)| frame)
}

fn run_acceptor(incoming: &[u8]) {
    let mut sent = Vec::new();
    let mut conn = tokio::io::join(incoming, &mut sent);
    let accepted = runtime().block_on(accept(&mut conn, &us(), known, TIMEOUT, FRAME_BYTES_MAX));
    let hello = match first_frame(incoming) {
        Some(Frame::Handshake(hello)) => hello,
        _ => {
            assert!(accepted.is_err(), "accepted without a hello: {accepted:?}");
            assert!(sent.is_empty(), "answered without a hello");
            return;
        }
    };
    let verdict = check_hello(&hello, &us(), known);
    assert_eq!(accepted.is_ok(), verdict.is_ok(), "accept and check_hello disagree on {hello:?}");
    if let Ok(accepted) = accepted {
        assert_eq!(
            (accepted.peer, accepted.guest, accepted.incarnation),
            (hello.from, hello.to == GUEST_TARGET, hello.incarnation),
            "accepted {hello:?} as someone else"
        );
    }
    let answer = decode_frame(&sent, FRAME_BYTES_MAX);
    match (answer, verdict) {
        (Ok(Some((Frame::HandshakeAck { node_id, incarnation }, used))), Ok(())) => {
            assert_eq!((node_id, incarnation), (us().node_id, us().incarnation));
            assert_eq!(used, sent.len(), "more than one answer");
        }
        (Ok(Some((Frame::HandshakeRefusal(refusal), used))), Err(reason)) => {
            assert_eq!(refusal.0, reason);
            assert_eq!(used, sent.len(), "more than one answer");
        }
        (answer, verdict) => panic!("answer {answer:?} to a hello judged {verdict:?}"),
    }
}

fn run_dialer(incoming: &[u8], recorded: Option<Incarnation>, guest: bool) {
    let peer = if guest { GUEST_TARGET } else { NodeId(2) };
    let hello = Hello {
        version: PROTOCOL_VERSION,
        cluster_id: CLUSTER.to_string(),
        from: NodeId(1),
        to: peer,
        incarnation: Incarnation(11),
    };
    let mut sent = Vec::new();
    let mut conn = tokio::io::join(incoming, &mut sent);
    let dialed = runtime().block_on(dial(&mut conn, hello.clone(), recorded, TIMEOUT, FRAME_BYTES_MAX));
    let acked = match first_frame(incoming) {
        Some(Frame::HandshakeAck { node_id, incarnation })
            if (node_id == peer || guest) && recorded.is_none_or(|r| r == incarnation) =>
        {
            Some(incarnation)
        }
        _ => None,
    };
    assert_eq!(dialed.as_ref().ok(), acked.as_ref(), "dial returned {dialed:?}");
    assert_eq!(first_frame(&sent), Some(Frame::Handshake(hello)), "the dialer did not send its hello");
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let sealed;
    let incoming = if mode & 2 == 0 {
        rest
    } else {
        let Some((&kind, payload)) = rest.split_first() else { return };
        sealed = seal(kind, payload);
        &sealed[..]
    };
    if mode & 1 == 0 {
        run_acceptor(incoming);
    } else {
        let recorded = (mode & 4 != 0).then_some(Incarnation(22));
        run_dialer(incoming, recorded, mode & 8 != 0);
    }
});

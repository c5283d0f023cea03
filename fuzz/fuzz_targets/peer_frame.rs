//! The peer frame decoder (`transport/frame.rs`): header, checksum and every frame kind's
//! payload, including batches of Raft messages (`codec/raft.rs`) and snapshot chunks.
//!
//! Input: a mode byte, then either a raw byte stream (mode even), or a frame kind and payload
//! that the harness seals with a correct length and checksum (mode odd), so that the payload
//! decoders are reached and not just the checksum check.
//!
//! Asserts: nothing panics; a decoded frame re-encodes to a frame that decodes to the same
//! value and length; for the kinds whose encoding is canonical (all but Raft batches and
//! snapshot chunks, whose membership sets and flag bytes have several spellings) the
//! re-encoding is byte for byte the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ppdb::transport::frame::{decode_frame, Frame, FRAME_HEADER_BYTES};

/// Small enough that the fuzzer reaches the size limit.
const FRAME_BYTES_MAX: usize = 64 * 1024;

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

fn is_canonical(frame: &Frame) -> bool {
    !matches!(frame, Frame::Raft(_) | Frame::SnapshotChunk(_))
}

fn check_round_trip(frame: &Frame, wire: &[u8]) {
    let encoded = frame.encode();
    match decode_frame(&encoded, usize::MAX) {
        Ok(Some((again, used))) => {
            assert_eq!(&again, frame, "a re-encoded frame decodes to another value");
            assert_eq!(used, encoded.len(), "a re-encoded frame is not read whole");
        }
        other => panic!("a re-encoded {:?} frame does not decode: {other:?}", frame.kind()),
    }
    if is_canonical(frame) {
        assert_eq!(encoded, wire, "a {:?} frame re-encodes to other bytes", frame.kind());
    }
}

/// Decodes frames back to back until the bytes run out or one is refused.
fn decode_stream(mut stream: &[u8]) {
    while let Ok(Some((frame, used))) = decode_frame(stream, FRAME_BYTES_MAX) {
        assert!(used >= FRAME_HEADER_BYTES && used <= stream.len(), "frame length {used} out of range");
        check_round_trip(&frame, &stream[..used]);
        stream = &stream[used..];
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode % 2 == 0 {
        decode_stream(rest);
    } else if let Some((&kind, payload)) = rest.split_first() {
        decode_stream(&seal(kind, payload));
    }
});

//! The log-entry codecs: a shard's writes and forwarded reads (`kv/entry.rs` over the varint
//! primitives of `kv/codec.rs`), the cross-shard transaction entries and a snapshot's
//! transaction section (`txn/entry.rs`, `txn/participant.rs`) and the Raft types
//! (`codec/raft.rs`: entries, hard state, snapshot metadata, messages), as they come back from
//! the WAL or a peer.
//!
//! Input: a selector byte (which decoder), then the bytes.
//!
//! Asserts: nothing panics; whatever decodes re-encodes to bytes that decode to the same value,
//! never longer than the input (but for the 7 bytes a version 1 write's varint time may gain
//! as the 8-byte stamp of version 2); where the encoding is canonical (Raft entries and hard
//! state) the re-encoding is the input.
//! The key-value encodings are not canonical (a varint may be spelled with redundant bytes), so
//! there the re-encoding must be stable: encoding what it decodes to gives it back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ppdb::codec::{
    decode_entries, decode_hard_state, decode_message, decode_snapshot_meta, encode_entries,
    encode_hard_state, encode_message, encode_snapshot_meta, DecodeError, Decoder, Encoder,
};
use ppdb::kv::{KvRead, KvWrite};
use ppdb::txn::{Participant, TxnEntry};

/// Decodes the whole of `bytes` with `decode`, as the WAL and the transport do.
fn decode_all<T>(bytes: &[u8], decode: fn(&mut Decoder<'_>) -> Result<T, DecodeError>) -> Option<T> {
    let mut d = Decoder::new(bytes, "fuzz input");
    let value = decode(&mut d).ok()?;
    d.finish().ok().map(|()| value)
}

fn encode_with<T>(value: &T, encode: fn(&mut Encoder, &T)) -> Vec<u8> {
    let mut e = Encoder::default();
    encode(&mut e, value);
    e.finish()
}

/// Raft values: decode, re-encode, decode again to the same value; same bytes if `canonical`.
fn check_raft<T: PartialEq + std::fmt::Debug>(
    bytes: &[u8],
    decode: fn(&mut Decoder<'_>) -> Result<T, DecodeError>,
    encode: fn(&mut Encoder, &T),
    canonical: bool,
) {
    let Some(value) = decode_all(bytes, decode) else { return };
    let encoded = encode_with(&value, encode);
    assert_eq!(decode_all(&encoded, decode).as_ref(), Some(&value), "a re-encoded value decodes differently");
    if canonical {
        assert_eq!(encoded, bytes, "a canonical encoding re-encodes to other bytes");
    }
}

/// How much longer than the input a re-encoded write may be: a version 1 entry's time is a
/// varint (one byte at least), the version 2 entry this build writes has an 8-byte stamp.
fn write_growth_max(bytes: &[u8]) -> usize {
    match bytes.first() {
        Some(1) => 7,
        _ => 0,
    }
}

fn check_kv_write(bytes: &[u8]) {
    let Ok(write) = KvWrite::decode(bytes) else { return };
    let encoded = write.encode();
    assert!(
        encoded.len() <= bytes.len() + write_growth_max(bytes),
        "re-encoding grew a write from {} to {} bytes",
        bytes.len(),
        encoded.len()
    );
    let again = KvWrite::decode(&encoded).expect("a re-encoded write decodes");
    assert_eq!(again.encode(), encoded, "a write's encoding is not stable");
}

fn check_kv_read(bytes: &[u8]) {
    let Ok(read) = KvRead::decode(bytes) else { return };
    let encoded = read.encode();
    assert!(
        encoded.len() <= bytes.len(),
        "re-encoding grew a read from {} to {} bytes",
        bytes.len(),
        encoded.len()
    );
    let again = KvRead::decode(&encoded).expect("a re-encoded read decodes");
    assert_eq!(again, read, "a re-encoded read decodes differently");
}

fn check_txn_entry(bytes: &[u8]) {
    let Ok((now_ms, entry)) = TxnEntry::decode(bytes) else { return };
    let mut encoded = entry.encode();
    assert!(TxnEntry::stamp(&mut encoded, now_ms), "a transaction entry takes its stamp");
    // Floats inside a part compare unequal to themselves when NaN: compare encodings.
    let (again_ms, again) = TxnEntry::decode(&encoded).expect("a re-encoded transaction entry decodes");
    let mut reencoded = again.encode();
    TxnEntry::stamp(&mut reencoded, again_ms);
    assert_eq!(reencoded, encoded, "a transaction entry's encoding is not stable");
}

fn check_participant(bytes: &[u8]) {
    let Ok(participant) = Participant::decode(bytes) else { return };
    let encoded = participant.encode();
    let again = Participant::decode(&encoded).expect("a re-encoded participant decodes");
    assert_eq!(again.encode(), encoded, "a participant's encoding is not stable");
}

/// `encode_entries` in the shape `check_raft` takes: `&T` for the decoded `Vec`.
#[allow(clippy::ptr_arg)]
fn encode_entry_batch(e: &mut Encoder, entries: &Vec<ppdb_raft::Entry>) {
    encode_entries(e, entries);
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else { return };
    match selector % 8 {
        0 => check_kv_write(bytes),
        1 => check_kv_read(bytes),
        2 => check_raft(bytes, decode_entries, encode_entry_batch, true),
        3 => check_raft(bytes, decode_hard_state, encode_hard_state, true),
        4 => check_raft(bytes, decode_snapshot_meta, encode_snapshot_meta, false),
        5 => check_raft(bytes, decode_message, encode_message, false),
        6 => check_txn_entry(bytes),
        _ => check_participant(bytes),
    }
});

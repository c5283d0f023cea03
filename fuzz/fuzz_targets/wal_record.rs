//! The WAL record decoder (`storage/wal/record.rs`) and the segment header decoder
//! (`storage/wal/segment.rs`), on bytes as they could lie on a damaged disk.
//!
//! Input: a mode byte, then the bytes. Mode bit 0 makes the harness write a correct checksum
//! into the record header (and into the segment header, read from the same bytes), bit 1 a
//! length field that matches the bytes, so the checks behind the checksum are reached.
//!
//! Asserts: nothing panics; a decoded record's length is within the input and at most
//! `RECORD_BYTES_MAX`, and it re-encodes to exactly the bytes it was decoded from; truncation
//! is reported only for input shorter than the record; a decoded version-2 segment header
//! re-encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ppdb::storage::wal::record::{self, DecodeError, RECORD_HEADER_BYTES};
use ppdb::storage::wal::segment::{self, SEGMENT_FORMAT_VERSION, SEGMENT_HEADER_BYTES};
use ppdb::storage::wal::RECORD_BYTES_MAX;

fn fix_record(bytes: &mut [u8], mode: u8) {
    if bytes.len() < RECORD_HEADER_BYTES {
        return;
    }
    if mode & 2 != 0 {
        let len = u32::try_from(bytes.len() - RECORD_HEADER_BYTES).unwrap_or(u32::MAX);
        bytes[0..4].copy_from_slice(&len.to_le_bytes());
    }
    if mode & 1 != 0 {
        let crc = crc32c::crc32c_append(crc32c::crc32c(&bytes[..4]), &bytes[8..]);
        bytes[4..8].copy_from_slice(&crc.to_le_bytes());
    }
}

fn check_record(bytes: &[u8]) {
    match record::decode(bytes) {
        Ok((record, len)) => {
            assert!(len <= bytes.len() && len <= RECORD_BYTES_MAX, "record length {len} out of range");
            let mut encoded = Vec::new();
            record::encode_into(&mut encoded, &record).expect("a decoded record re-encodes");
            assert_eq!(encoded, &bytes[..len], "a record re-encodes to other bytes");
        }
        Err(DecodeError::Truncated { available, needed }) => {
            assert_eq!(available, bytes.len());
            assert!(needed > available, "truncation reported with {available} of {needed} bytes");
        }
        Err(DecodeError::Corrupt(_)) => {}
    }
}

fn check_segment_header(bytes: &mut [u8], mode: u8) {
    if mode & 1 != 0 && bytes.len() >= SEGMENT_HEADER_BYTES {
        let crc = crc32c::crc32c(&bytes[..20]);
        bytes[20..24].copy_from_slice(&crc.to_le_bytes());
    }
    if let Ok(first_seq) = segment::decode_header(bytes) {
        if bytes[8..12] == SEGMENT_FORMAT_VERSION.to_le_bytes() {
            assert_eq!(segment::encode_header(first_seq)[..], bytes[..SEGMENT_HEADER_BYTES]);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let mut bytes = rest.to_vec();
    fix_record(&mut bytes, mode);
    check_record(&bytes);
    let mut bytes = rest.to_vec();
    check_segment_header(&mut bytes, mode);
});

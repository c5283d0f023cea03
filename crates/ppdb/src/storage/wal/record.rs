//! The WAL record: one self-delimiting, checksummed unit of the log.
//!
//! Layout, all integers little-endian (`RECORD_HEADER_BYTES` = 25 bytes of header):
//!
//! | offset | size | field                                                          |
//! |-------:|-----:|----------------------------------------------------------------|
//! | 0      | 4    | `payload_len` (u32), at most `RECORD_BYTES_MAX - 25`           |
//! | 4      | 4    | `crc32c` (u32) over bytes 0..4 then bytes 8..end of the record |
//! | 8      | 8    | `seq` (u64): the record's WAL sequence number, from 1, +1 each |
//! | 16     | 8    | `group_id` (u64): the Raft group the record belongs to         |
//! | 24     | 1    | `kind` (u8): 1 = Entries, 2 = HardState, 3 = SnapshotMarker    |
//! | 25     | n    | `payload`: opaque to the WAL                                   |
//!
//! The checksum covers the length field too, so a flipped length bit is caught rather than
//! read as a different record boundary; it covers the sequence number, so a stale or misplaced
//! record is caught by the sequence check in recovery.
//!
//! [`decode`] never panics and never trusts a length before bounding it. It distinguishes
//! [`DecodeError::Truncated`] (the bytes end inside the record: at the tail of the log this is a
//! torn write) from [`DecodeError::Corrupt`] (the bytes are all there but wrong).

use std::fmt;

use crate::storage::error::{CorruptionKind, StorageError};

/// Size of a record's header: length, checksum, sequence number, group id and kind.
pub const RECORD_HEADER_BYTES: usize = 25;

/// The largest encoded record, header included ([`crate::limits::WAL_RECORD_BYTES_MAX`]).
/// Larger payloads must be split by the layer above (a round's Raft entries are written as
/// several records, each of whole entries).
pub const RECORD_BYTES_MAX: usize = crate::limits::WAL_RECORD_BYTES_MAX;

/// The largest payload of one record.
pub const RECORD_PAYLOAD_BYTES_MAX: usize = RECORD_BYTES_MAX - RECORD_HEADER_BYTES;

/// A record's position in the WAL: 1 for the first record ever written, +1 for each next one,
/// across all groups and segments. Never reused, even after segments are deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WalSeq(pub u64);

impl WalSeq {
    /// The sequence number of the very first record.
    pub const FIRST: WalSeq = WalSeq(1);

    /// The next sequence number.
    pub const fn next(self) -> WalSeq {
        WalSeq(self.0 + 1)
    }

    /// The value as a plain integer.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for WalSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// The Raft group (shard) a record belongs to; group 0 is the meta group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupId(pub u64);

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// What a record's payload holds. The WAL does not look inside; the kind lets the layer above
/// dispatch without decoding the payload first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordKind {
    /// Log entries of one Raft group.
    Entries,
    /// A Raft group's hard state (term, vote, commit index).
    HardState,
    /// A marker saying a group's snapshot now covers its log up to some point.
    SnapshotMarker,
    /// The group's copy on this node was deleted: everything before it is void.
    Tombstone,
}

impl RecordKind {
    /// The kind's byte on disk.
    pub const fn to_byte(self) -> u8 {
        match self {
            RecordKind::Entries => 1,
            RecordKind::HardState => 2,
            RecordKind::SnapshotMarker => 3,
            RecordKind::Tombstone => 4,
        }
    }

    /// The kind for a byte read from disk, if it is one this version knows.
    pub const fn from_byte(byte: u8) -> Option<RecordKind> {
        match byte {
            1 => Some(RecordKind::Entries),
            2 => Some(RecordKind::HardState),
            3 => Some(RecordKind::SnapshotMarker),
            4 => Some(RecordKind::Tombstone),
            _ => None,
        }
    }
}

/// A decoded record, borrowing its payload from the bytes it was decoded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// The record's WAL sequence number.
    pub seq: WalSeq,
    /// The group it belongs to.
    pub group: GroupId,
    /// What the payload holds.
    pub kind: RecordKind,
    /// The opaque payload.
    pub payload: &'a [u8],
}

/// Why [`decode`] could not return a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The bytes end before the record does. At the very tail of the log this is a torn write.
    Truncated {
        /// Bytes available.
        available: usize,
        /// Bytes the record needs (header, or header plus payload once the length is known).
        needed: usize,
    },
    /// The record is complete but wrong.
    Corrupt(CorruptionKind),
}

impl DecodeError {
    /// The corruption this error stands for when it is not at the tail of the log.
    pub fn into_corruption(self) -> CorruptionKind {
        match self {
            DecodeError::Truncated { available, needed } => {
                CorruptionKind::UnexpectedEnd { missing_bytes: needed.saturating_sub(available) as u64 }
            }
            DecodeError::Corrupt(kind) => kind,
        }
    }
}

/// The encoded size of a record with a payload of `payload_len` bytes.
pub const fn encoded_len(payload_len: usize) -> usize {
    RECORD_HEADER_BYTES + payload_len
}

/// Appends the encoding of one record to `buf`.
///
/// Fails with [`StorageError::RecordTooLarge`] if the record would exceed [`RECORD_BYTES_MAX`].
pub fn encode_into(buf: &mut Vec<u8>, record: &Record<'_>) -> Result<(), StorageError> {
    let payload_len = check_payload_len(record.payload.len())?;
    let start = buf.len();
    buf.reserve(encoded_len(record.payload.len()));
    buf.extend_from_slice(&payload_len.to_le_bytes());
    buf.extend_from_slice(&[0; 4]); // checksum, filled in below
    buf.extend_from_slice(&record.seq.0.to_le_bytes());
    buf.extend_from_slice(&record.group.0.to_le_bytes());
    buf.push(record.kind.to_byte());
    buf.extend_from_slice(record.payload);
    let crc = checksum(&buf[start..]);
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// Checks that a payload of `len` bytes fits in one record, returning its on-disk length field.
pub fn check_payload_len(len: usize) -> Result<u32, StorageError> {
    match u32::try_from(len) {
        Ok(len32) if len <= RECORD_PAYLOAD_BYTES_MAX => Ok(len32),
        _ => Err(StorageError::RecordTooLarge { len: encoded_len(len) as u64, max: RECORD_BYTES_MAX as u64 }),
    }
}

/// Decodes the record at the start of `bytes`, returning it and its encoded length.
pub fn decode(bytes: &[u8]) -> Result<(Record<'_>, usize), DecodeError> {
    let Some(header) = bytes.get(..RECORD_HEADER_BYTES) else {
        return Err(DecodeError::Truncated { available: bytes.len(), needed: RECORD_HEADER_BYTES });
    };
    let payload_len = u64::from(read_u32(header, 0));
    if payload_len > RECORD_PAYLOAD_BYTES_MAX as u64 {
        return Err(DecodeError::Corrupt(CorruptionKind::LengthOutOfRange {
            len: payload_len,
            max: RECORD_PAYLOAD_BYTES_MAX as u64,
        }));
    }
    // Bounded above, so this fits in usize and cannot overflow.
    let total = RECORD_HEADER_BYTES + payload_len as usize;
    let Some(encoded) = bytes.get(..total) else {
        return Err(DecodeError::Truncated { available: bytes.len(), needed: total });
    };
    let stored = read_u32(encoded, 4);
    let computed = checksum(encoded);
    if stored != computed {
        return Err(DecodeError::Corrupt(CorruptionKind::ChecksumMismatch { stored, computed }));
    }
    let kind_byte = encoded[24];
    let kind = RecordKind::from_byte(kind_byte)
        .ok_or(DecodeError::Corrupt(CorruptionKind::UnknownRecordKind(kind_byte)))?;
    let record = Record {
        seq: WalSeq(read_u64(encoded, 8)),
        group: GroupId(read_u64(encoded, 16)),
        kind,
        payload: &encoded[RECORD_HEADER_BYTES..],
    };
    Ok((record, total))
}

/// Reads the sequence number field of a record header without validating anything, for the
/// cheap pre-filter of recovery's search for intact records after a damaged one.
pub(crate) fn peek_seq(bytes: &[u8]) -> Option<u64> {
    bytes.get(8..16).map(|b| read_u64(b, 0))
}

/// CRC32C over the length field (bytes 0..4) and everything after the checksum (8..).
/// `encoded` must hold at least the 8 bytes of length and checksum.
fn checksum(encoded: &[u8]) -> u32 {
    let crc = crc32c::crc32c(&encoded[..4]);
    crc32c::crc32c_append(crc, &encoded[8..])
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    let mut raw = [0u8; 4];
    raw.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(raw)
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample(payload: &[u8]) -> Record<'_> {
        Record { seq: WalSeq(7), group: GroupId(3), kind: RecordKind::HardState, payload }
    }

    fn encode(record: &Record<'_>) -> Vec<u8> {
        let mut buf = Vec::new();
        encode_into(&mut buf, record).unwrap();
        buf
    }

    #[test]
    fn layout_is_as_documented() {
        let buf = encode(&sample(b"xy"));
        assert_eq!(buf.len(), 27);
        assert_eq!(&buf[0..4], &2u32.to_le_bytes());
        assert_eq!(&buf[8..16], &7u64.to_le_bytes());
        assert_eq!(&buf[16..24], &3u64.to_le_bytes());
        assert_eq!(buf[24], 2);
        assert_eq!(&buf[25..], b"xy");
        let mut covered = buf[0..4].to_vec();
        covered.extend_from_slice(&buf[8..]);
        assert_eq!(&buf[4..8], &crc32c::crc32c(&covered).to_le_bytes());
    }

    #[test]
    fn every_flipped_bit_is_detected() {
        let buf = encode(&sample(b"payload"));
        for byte in 0..buf.len() {
            for bit in 0..8 {
                let mut damaged = buf.clone();
                damaged[byte] ^= 1 << bit;
                assert!(decode(&damaged).is_err(), "flip of byte {byte} bit {bit} undetected");
            }
        }
    }

    #[test]
    fn short_input_is_truncated_not_corrupt() {
        let buf = encode(&sample(b"payload"));
        for cut in 0..buf.len() {
            match decode(&buf[..cut]) {
                Err(DecodeError::Truncated { available, needed }) => {
                    assert_eq!(available, cut);
                    assert!(needed > cut);
                }
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
    }

    #[test]
    fn oversized_length_is_corrupt_and_oversized_payload_is_refused() {
        let mut buf = encode(&sample(b""));
        buf[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(decode(&buf), Err(DecodeError::Corrupt(CorruptionKind::LengthOutOfRange { .. }))));
        assert!(matches!(
            check_payload_len(RECORD_PAYLOAD_BYTES_MAX + 1),
            Err(StorageError::RecordTooLarge { .. })
        ));
        assert!(check_payload_len(RECORD_PAYLOAD_BYTES_MAX).is_ok());
    }

    #[test]
    fn unknown_kind_with_valid_checksum_is_corrupt() {
        let mut buf = encode(&sample(b"z"));
        buf[24] = 99;
        let crc = checksum(&buf);
        buf[4..8].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(decode(&buf).unwrap_err(), DecodeError::Corrupt(CorruptionKind::UnknownRecordKind(99)));
    }

    fn any_kind() -> impl Strategy<Value = RecordKind> {
        prop_oneof![
            Just(RecordKind::Entries),
            Just(RecordKind::HardState),
            Just(RecordKind::SnapshotMarker),
            Just(RecordKind::Tombstone)
        ]
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn encode_then_decode_round_trips(
            seq in 1u64..,
            group in any::<u64>(),
            kind in any_kind(),
            payload in proptest::collection::vec(any::<u8>(), 0..1024),
            trailing in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let record = Record { seq: WalSeq(seq), group: GroupId(group), kind, payload: &payload };
            let mut buf = encode(&record);
            let len = buf.len();
            buf.extend_from_slice(&trailing);
            let (decoded, consumed) = decode(&buf).unwrap();
            prop_assert_eq!(decoded, record);
            prop_assert_eq!(consumed, len);
        }
    }
}

//! Binary encoding of the Raft core's types, shared by the write-ahead log (disk) and the
//! transport (wire). Little-endian fixed-width integers, length-prefixed byte strings, one tag
//! byte per enum. Decoding treats its input as untrusted: every length is checked against what
//! remains and against a named limit, and nothing panics.

mod raft;

pub use raft::{
    decode_entries, decode_entry, decode_hard_state, decode_message, decode_snapshot_meta, encode_entries,
    encode_entry, encode_hard_state, encode_message, encode_snapshot_meta, encoded_entry_bytes,
    APPEND_HEADER_BYTES, ENTRIES_COUNT_BYTES, ENTRY_HEADER_BYTES_MAX,
};

use std::fmt;

/// Largest byte string a decoder accepts outside a log entry's command (snapshot data carried
/// in one message or chunk): anything larger could not have arrived in one frame.
pub const BYTES_MAX: usize = crate::limits::FRAME_BYTES_MAX;

/// Most entries in one encoded batch.
pub const ENTRIES_MAX: usize = 1 << 20;

/// Most members in one encoded membership.
pub const MEMBERS_MAX: usize = 1 << 12;

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct DecodeError {
    /// What was being decoded.
    pub what: &'static str,
    /// Byte offset of the problem.
    pub offset: usize,
    /// What was wrong.
    pub reason: &'static str,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot decode {} at byte {}: {}", self.what, self.offset, self.reason)
    }
}

/// Appends primitive values to a buffer.
#[derive(Debug, Default)]
pub struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    /// An encoder writing into `buf` (appending).
    pub fn with_buffer(buf: Vec<u8>) -> Encoder {
        Encoder { buf }
    }

    /// The encoded bytes.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }

    /// One byte.
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    /// A 32-bit integer.
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// A 64-bit integer.
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// A length-prefixed byte string (u32 length).
    pub fn bytes(&mut self, v: &[u8]) {
        // Callers never hand more than a frame or a record (< 4 GiB); saturate rather than wrap.
        self.u32(u32::try_from(v.len()).unwrap_or(u32::MAX));
        self.buf.extend_from_slice(v);
    }
}

/// Reads primitive values from untrusted bytes.
#[derive(Debug)]
pub struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Decoder<'a> {
    /// A decoder over `buf`; `what` names the value for error messages.
    pub fn new(buf: &'a [u8], what: &'static str) -> Decoder<'a> {
        Decoder { buf, pos: 0, what }
    }

    /// An error at the current position.
    pub fn error(&self, reason: &'static str) -> DecodeError {
        DecodeError { what: self.what, offset: self.pos, reason }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).filter(|&end| end <= self.buf.len());
        let Some(end) = end else { return Err(self.error("unexpected end of input")) };
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    /// A 32-bit integer.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A 64-bit integer.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// A length-prefixed byte string of at most `max` bytes.
    pub fn bytes(&mut self, max: usize) -> Result<&'a [u8], DecodeError> {
        let len = self.u32()? as usize;
        if len > max {
            return Err(self.error("byte string longer than allowed"));
        }
        self.take(len)
    }

    /// A count of items, at most `max`, each needing at least `min_item_bytes` of input.
    pub fn count(&mut self, max: usize, min_item_bytes: usize) -> Result<usize, DecodeError> {
        let n = self.u32()? as usize;
        if n > max || n.saturating_mul(min_item_bytes) > self.remaining() {
            return Err(self.error("item count exceeds limit or input"));
        }
        Ok(n)
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Fails unless every byte was consumed.
    pub fn finish(self) -> Result<(), DecodeError> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(self.error("trailing bytes"))
        }
    }
}

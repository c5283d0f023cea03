//! Byte-level primitives shared by the log-entry and snapshot encodings.
//!
//! Lengths and integers are LEB128 varints (signed ones zigzag-encoded) so small values cost one
//! byte. The [`Reader`] never panics and never allocates more than the bytes it has actually seen:
//! every length is checked against what remains in the input before anything is copied.

use std::fmt;

/// Why a log entry or snapshot could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvDecodeError {
    /// The input ended in the middle of a field.
    Truncated {
        /// What was being read.
        field: &'static str,
        /// Byte offset where the read started.
        offset: usize,
    },
    /// The format version byte is not one this build understands.
    UnsupportedVersion {
        /// The version found.
        version: u8,
    },
    /// A tag byte (operation, condition, ...) has no meaning.
    InvalidTag {
        /// What was being read.
        field: &'static str,
        /// The tag found.
        tag: u8,
        /// Byte offset of the tag.
        offset: usize,
    },
    /// A varint is longer than 10 bytes or overflows 64 bits.
    InvalidVarint {
        /// Byte offset of the varint.
        offset: usize,
    },
    /// A length or count exceeds its limit.
    TooLarge {
        /// What was being read.
        field: &'static str,
        /// The length found.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// Bytes remain after a complete value.
    TrailingBytes {
        /// How many bytes remain.
        count: usize,
    },
    /// The snapshot does not start with the expected magic bytes.
    BadMagic,
    /// The snapshot checksum does not match its contents: corruption.
    ChecksumMismatch {
        /// The checksum stored in the snapshot.
        stored: u32,
        /// The checksum computed over the contents.
        computed: u32,
    },
    /// The snapshot lists the same key twice or out of order.
    KeysOutOfOrder {
        /// Index of the offending entry.
        index: u64,
    },
    /// A field holds a value it can never take (a NaN score, an empty collection).
    Invalid {
        /// What was being read.
        field: &'static str,
        /// Byte offset where the read started.
        offset: usize,
    },
}

impl fmt::Display for KvDecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { field, offset } => {
                write!(f, "truncated input reading {field} at byte {offset}")
            }
            Self::UnsupportedVersion { version } => {
                write!(f, "unsupported encoding version {version}")
            }
            Self::InvalidTag { field, tag, offset } => {
                write!(f, "invalid {field} tag {tag} at byte {offset}")
            }
            Self::InvalidVarint { offset } => write!(f, "invalid varint at byte {offset}"),
            Self::TooLarge { field, len, max } => {
                write!(f, "{field} of {len} exceeds the limit of {max}")
            }
            Self::TrailingBytes { count } => write!(f, "{count} trailing bytes after the value"),
            Self::BadMagic => write!(f, "not a PPDB kv snapshot (bad magic)"),
            Self::ChecksumMismatch { stored, computed } => {
                write!(f, "snapshot checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")
            }
            Self::KeysOutOfOrder { index } => {
                write!(f, "snapshot entry {index} is not in strictly ascending key order")
            }
            Self::Invalid { field, offset } => write!(f, "invalid {field} at byte {offset}"),
        }
    }
}

impl std::error::Error for KvDecodeError {}

/// Appends a LEB128 varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Appends a zigzag-encoded signed varint.
pub(crate) fn put_signed(out: &mut Vec<u8>, value: i64) {
    put_varint(out, ((value << 1) ^ (value >> 63)) as u64);
}

/// Appends a length-prefixed byte string.
pub(crate) fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Appends a counted list of byte strings.
pub(crate) fn put_list(out: &mut Vec<u8>, items: &[Vec<u8>]) {
    put_varint(out, items.len() as u64);
    for item in items {
        put_bytes(out, item);
    }
}

/// Appends an optional field: 0, or 1 and the field.
pub(crate) fn put_option<T>(out: &mut Vec<u8>, field: Option<T>, put: impl FnOnce(&mut Vec<u8>, T)) {
    match field {
        None => out.push(0),
        Some(field) => {
            out.push(1);
            put(out, field);
        }
    }
}

/// A bounds-checked cursor over an input buffer.
pub(crate) struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading at the beginning of `input`.
    pub(crate) fn new(input: &'a [u8]) -> Self {
        Self { input, pos: 0 }
    }

    /// Bytes not yet consumed.
    pub(crate) fn remaining(&self) -> usize {
        self.input.len() - self.pos
    }

    /// Current byte offset.
    pub(crate) fn offset(&self) -> usize {
        self.pos
    }

    /// Reads one byte.
    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, KvDecodeError> {
        let byte = *self.input.get(self.pos).ok_or(KvDecodeError::Truncated { field, offset: self.pos })?;
        self.pos += 1;
        Ok(byte)
    }

    /// Reads exactly `len` bytes.
    pub(crate) fn take(&mut self, len: usize, field: &'static str) -> Result<&'a [u8], KvDecodeError> {
        if self.remaining() < len {
            return Err(KvDecodeError::Truncated { field, offset: self.pos });
        }
        let slice = &self.input[self.pos..self.pos + len];
        self.pos += len;
        Ok(slice)
    }

    /// Reads a LEB128 varint.
    pub(crate) fn varint(&mut self, field: &'static str) -> Result<u64, KvDecodeError> {
        let start = self.pos;
        let mut value: u64 = 0;
        for shift in (0..70).step_by(7) {
            let byte = self.u8(field)?;
            let low = u64::from(byte & 0x7f);
            if shift == 63 && low > 1 {
                return Err(KvDecodeError::InvalidVarint { offset: start });
            }
            value |= low << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(KvDecodeError::InvalidVarint { offset: start })
    }

    /// Reads a zigzag-encoded signed varint.
    pub(crate) fn signed(&mut self, field: &'static str) -> Result<i64, KvDecodeError> {
        let raw = self.varint(field)?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    /// Reads a count bounded by `max`.
    pub(crate) fn count(&mut self, field: &'static str, max: u64) -> Result<u64, KvDecodeError> {
        let len = self.varint(field)?;
        if len > max {
            return Err(KvDecodeError::TooLarge { field, len, max });
        }
        Ok(len)
    }

    /// Reads a length-prefixed byte string of at most `max` bytes.
    pub(crate) fn bytes(&mut self, field: &'static str, max: u64) -> Result<Vec<u8>, KvDecodeError> {
        let len = self.count(field, max)?;
        // `len <= max` fits in usize on 64-bit targets; on smaller ones `take` reports truncation.
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        Ok(self.take(len, field)?.to_vec())
    }

    /// Reads a 0/1 flag byte.
    pub(crate) fn flag(&mut self, field: &'static str) -> Result<bool, KvDecodeError> {
        let offset = self.pos;
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            tag => Err(KvDecodeError::InvalidTag { field, tag, offset }),
        }
    }

    /// Reads what [`put_option`] wrote.
    pub(crate) fn option<T>(
        &mut self,
        read: impl FnOnce(&mut Self) -> Result<T, KvDecodeError>,
    ) -> Result<Option<T>, KvDecodeError> {
        match self.flag("option")? {
            false => Ok(None),
            true => read(self).map(Some),
        }
    }

    /// Reads eight raw bytes as a little-endian `u64` (a seed, a float's bits).
    pub(crate) fn u64_le(&mut self, field: &'static str) -> Result<u64, KvDecodeError> {
        let mut raw = [0u8; 8];
        raw.copy_from_slice(self.take(8, field)?);
        Ok(u64::from_le_bytes(raw))
    }

    /// Fails unless every byte was consumed.
    pub(crate) fn finish(self) -> Result<(), KvDecodeError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(KvDecodeError::TrailingBytes { count }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_the_edges() {
        for value in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX - 1, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            let mut reader = Reader::new(&out);
            assert_eq!(reader.varint("v"), Ok(value));
            assert!(reader.finish().is_ok());
        }
        for value in [0, -1, 1, i64::MIN, i64::MAX] {
            let mut out = Vec::new();
            put_signed(&mut out, value);
            assert_eq!(Reader::new(&out).signed("v"), Ok(value));
        }
    }

    #[test]
    fn overlong_varints_are_rejected() {
        let eleven = [0xffu8; 11];
        assert!(matches!(Reader::new(&eleven).varint("v"), Err(KvDecodeError::InvalidVarint { offset: 0 })));
        let overflow = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert!(Reader::new(&overflow).varint("v").is_err());
    }

    #[test]
    fn lengths_beyond_the_input_are_truncation_not_allocation() {
        let mut out = Vec::new();
        put_varint(&mut out, 1 << 40);
        assert!(matches!(Reader::new(&out).bytes("value", u64::MAX), Err(KvDecodeError::Truncated { .. })));
    }
}

//! FUNCTION DUMP's payload, in Redis 7's format, so that a payload moves between PPDB and
//! Redis both ways.
//!
//! # Layout
//!
//! | bytes | what |
//! | --- | --- |
//! | per library: `0xF5`, then an RDB string | the library's source (`RDB_OPCODE_FUNCTION2`) |
//! | 2, little endian | the RDB version: 10 (Redis 7.0) written, up to 11 (7.2) read |
//! | 8, little endian | CRC-64 (Jones, as Redis's `crc64`) of everything before it |
//!
//! An RDB string is a length (6 bits, 14 bits, or 32 or 64 bits big endian after `0x80` or
//! `0x81`) and the bytes, or an LZF-compressed run (`0xC3`, compressed length, length, data).
//! PPDB writes the plain form and reads both. Reading is bounded: at most
//! [`super::LIBRARIES_MAX`] libraries of [`super::LIBRARY_SOURCE_BYTES_MAX`] bytes each.

use super::{LIBRARIES_MAX, LIBRARY_SOURCE_BYTES_MAX};

/// The opcode before each library's source.
const OPCODE_FUNCTION: u8 = 0xF5;
/// The RDB version written (Redis 7.0's).
const RDB_VERSION_WRITTEN: u16 = 10;
/// The newest RDB version read (Redis 7.2's).
const RDB_VERSION_READ_MAX: u16 = 11;
/// The reflected Jones polynomial of Redis's CRC-64.
const CRC64_POLY_REFLECTED: u64 = 0x95AC_9329_AC4B_C9B5;

/// Why a payload is refused, in Redis's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DumpError {
    /// A short payload, another version, or a checksum that does not match.
    #[error("DUMP payload version or checksum are wrong")]
    VersionOrChecksum,
    /// The payload's body does not hold libraries.
    #[error("given type is not a function")]
    NotFunctions,
}

/// The payload holding the libraries `sources`.
pub fn encode<'a>(sources: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for source in sources {
        out.push(OPCODE_FUNCTION);
        put_length(&mut out, source.len() as u64);
        out.extend_from_slice(source);
    }
    out.extend_from_slice(&RDB_VERSION_WRITTEN.to_le_bytes());
    let crc = crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The library sources a payload holds.
pub fn decode(payload: &[u8]) -> Result<Vec<Vec<u8>>, DumpError> {
    let body_len = payload.len().checked_sub(10).ok_or(DumpError::VersionOrChecksum)?;
    let (body, footer) = payload.split_at(body_len);
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    let crc = u64::from_le_bytes(footer[2..].try_into().map_err(|_| DumpError::VersionOrChecksum)?);
    if version > RDB_VERSION_READ_MAX || crc != crc64(&payload[..body_len + 2]) {
        return Err(DumpError::VersionOrChecksum);
    }
    let mut reader = Reader { bytes: body, at: 0 };
    let mut sources = Vec::new();
    while reader.at < body.len() {
        if reader.byte()? != OPCODE_FUNCTION || sources.len() >= LIBRARIES_MAX {
            return Err(DumpError::NotFunctions);
        }
        sources.push(reader.string()?);
    }
    Ok(sources)
}

fn put_length(out: &mut Vec<u8>, len: u64) {
    match len {
        0..=63 => out.push(len as u8),
        64..=16_383 => out.extend_from_slice(&(0x4000 | len as u16).to_be_bytes()),
        _ => match u32::try_from(len) {
            Ok(len) => {
                out.push(0x80);
                out.extend_from_slice(&len.to_be_bytes());
            }
            Err(_) => {
                out.push(0x81);
                out.extend_from_slice(&len.to_be_bytes());
            }
        },
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, DumpError> {
        let byte = *self.bytes.get(self.at).ok_or(DumpError::NotFunctions)?;
        self.at += 1;
        Ok(byte)
    }

    fn take(&mut self, n: u64) -> Result<&[u8], DumpError> {
        let n = usize::try_from(n).map_err(|_| DumpError::NotFunctions)?;
        let end = self.at.checked_add(n).filter(|&end| end <= self.bytes.len());
        let end = end.ok_or(DumpError::NotFunctions)?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    /// A length; `Err(special)` for an encoded string's kind (the low 6 bits of its byte).
    fn length(&mut self) -> Result<Result<u64, u8>, DumpError> {
        let first = self.byte()?;
        Ok(Ok(match first >> 6 {
            0 => u64::from(first & 0x3F),
            1 => (u64::from(first & 0x3F) << 8) | u64::from(self.byte()?),
            2 if first == 0x80 => u64::from(u32::from_be_bytes(self.take(4)?.try_into().unwrap_or_default())),
            2 if first == 0x81 => u64::from_be_bytes(self.take(8)?.try_into().unwrap_or_default()),
            3 => return Ok(Err(first & 0x3F)),
            _ => return Err(DumpError::NotFunctions),
        }))
    }

    fn plain_length(&mut self) -> Result<u64, DumpError> {
        self.length()?.map_err(|_| DumpError::NotFunctions)
    }

    fn string(&mut self) -> Result<Vec<u8>, DumpError> {
        let bound =
            |len: u64| (len <= LIBRARY_SOURCE_BYTES_MAX as u64).then_some(len).ok_or(DumpError::NotFunctions);
        match self.length()? {
            Ok(len) => Ok(self.take(bound(len)?)?.to_vec()),
            // 3: LZF. 0 to 2 are integers, which no library's source is.
            Err(3) => {
                let compressed = self.plain_length()?;
                let len = bound(self.plain_length()?)?;
                let data = self.take(compressed)?;
                lzf_decompress(data, len as usize).ok_or(DumpError::NotFunctions)
            }
            Err(_) => Err(DumpError::NotFunctions),
        }
    }
}

/// LZF's decompression, as Redis's `lzf_decompress`: `None` unless `input` expands to exactly
/// `len` bytes.
fn lzf_decompress(input: &[u8], len: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(len);
    let mut at = 0;
    while at < input.len() {
        let control = usize::from(input[at]);
        at += 1;
        if control < 32 {
            let run = input.get(at..at + control + 1)?;
            out.extend_from_slice(run);
            at += control + 1;
        } else {
            let mut run = control >> 5;
            if run == 7 {
                run += usize::from(*input.get(at)?);
                at += 1;
            }
            let back = ((control & 0x1F) << 8) + usize::from(*input.get(at)?) + 1;
            at += 1;
            let start = out.len().checked_sub(back)?;
            for i in 0..run + 2 {
                let byte = out[start + i];
                out.push(byte);
            }
        }
        if out.len() > len {
            return None;
        }
    }
    (out.len() == len).then_some(out)
}

/// Redis's CRC-64 (Jones polynomial, reflected, initial value 0).
fn crc64(bytes: &[u8]) -> u64 {
    let mut crc = 0u64;
    for &byte in bytes {
        crc ^= u64::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ CRC64_POLY_REFLECTED } else { crc >> 1 };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checksum_is_redis_crc64() {
        assert_eq!(crc64(b"123456789"), 0xE9C6_D914_C4B8_D9CA);
        assert_eq!(encode([]), b"\x0a\x00\x5d\x9b\x5c\x40\x0f\x7f\xa2\xda", "redis-server 7.0's empty dump");
    }

    #[test]
    fn payloads_round_trip_and_damage_is_refused() {
        let long = vec![b'x'; 20_000];
        let sources: Vec<&[u8]> = vec![b"#!lua name=a\n", &long, &[]];
        let payload = encode(sources.iter().copied());
        assert_eq!(decode(&payload), Ok(sources.iter().map(|s| s.to_vec()).collect()));
        let mut damaged = payload.clone();
        damaged[3] ^= 1;
        assert_eq!(decode(&damaged), Err(DumpError::VersionOrChecksum));
        assert_eq!(decode(&payload[..5]), Err(DumpError::VersionOrChecksum));
        for end in 0..payload.len().min(64) {
            let _ = decode(&payload[..end]);
        }
    }

    #[test]
    fn a_payload_of_redis_with_a_compressed_source_is_read() {
        // FUNCTION DUMP of redis-server 7.0.15 holding the library below (LZF-compressed).
        let source = b"#!lua name=mylib\nredis.register_function('myfunc', function(keys, args) return redis.call('INCR', keys[1]) end)\nredis.register_function('myfunc2', function(keys, args) return redis.call('INCR', keys[1]) end)";
        let payload = redis_payload();
        assert_eq!(decode(&payload), Ok(vec![source.to_vec()]));
    }

    fn redis_payload() -> Vec<u8> {
        include_bytes!("testdata/redis-7.0.15-dump.bin").to_vec()
    }
}

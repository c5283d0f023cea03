//! Incremental request parsing: bytes from a client into argument vectors.
//!
//! A request is either a multibulk array of bulk strings (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`, what
//! client libraries send) or an inline line (`GET k\r\n`, what telnet users type); as in Redis,
//! the first byte decides (`*` means multibulk). [`RequestDecoder`] consumes complete parts from
//! the front of the read buffer and remembers how far it got, so a huge request arriving in
//! pieces is parsed in linear time; bulk arguments are split off the buffer without copying.
//!
//! Every length is bounded by [`RespLimits`], and memory reserved up front never exceeds what the
//! client actually sent: a `*1000000` header reserves at most 1024 slots, and a `$536870912`
//! header reserves room for the payload only as its bytes arrive (at most as much again as has
//! arrived, plus [`BULK_RESERVE_BYTES_MIN`]), so a header that lies about its length costs the
//! server nothing. The connection bounds the whole request ([`RequestDecoder::held_bytes`] plus
//! the unparsed input) with the query buffer limit. Errors are Redis 7's
//! texts; after one, the stream cannot be resynchronised and the connection should send the
//! error and close, as Redis does. Like Redis, the two bytes after a bulk string's payload are
//! skipped without checking that they are CRLF.

use std::fmt;

use bytes::{Buf, Bytes, BytesMut};

use super::inline::split_args;

/// Limits on what a client may send in one request. Defaults are Redis's, except the bulk
/// length: PPDB's `proto-max-bulk-len` is what it can replicate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RespLimits {
    /// Largest bulk string argument (`proto-max-bulk-len`, [`crate::limits::VALUE_BYTES_MAX`]).
    pub bulk_bytes_max: usize,
    /// Most arguments in one multibulk request (1024 × 1024).
    pub multibulk_args_max: usize,
    /// Longest inline request line, and longest `*`/`$` header line (64 KiB).
    pub inline_bytes_max: usize,
}

impl Default for RespLimits {
    fn default() -> Self {
        Self {
            bulk_bytes_max: crate::limits::VALUE_BYTES_MAX,
            multibulk_args_max: 1024 * 1024,
            inline_bytes_max: 64 * 1024,
        }
    }
}

/// Most argument slots reserved before the arguments arrive (Redis reserves the same).
const ARGS_PREALLOCATED_MAX: usize = 1024;
/// Room reserved for a bulk payload before much of it has arrived; past this, the reservation
/// at most doubles what has arrived, so reallocation stays amortised and a lying length
/// reserves nothing it was not sent.
pub const BULK_RESERVE_BYTES_MIN: usize = 64 * 1024;

/// A malformed request; the connection must reply with it and close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    /// The `*` count is not an integer or exceeds [`RespLimits::multibulk_args_max`].
    InvalidMultibulkLength,
    /// A multibulk element does not start with `$`.
    ExpectedDollar(u8),
    /// The `$` length is not an integer, negative, or exceeds [`RespLimits::bulk_bytes_max`].
    InvalidBulkLength,
    /// An inline request line is longer than [`RespLimits::inline_bytes_max`].
    TooBigInlineRequest,
    /// A `*` header line is longer than [`RespLimits::inline_bytes_max`].
    TooBigMultibulkCount,
    /// A `$` header line is longer than [`RespLimits::inline_bytes_max`].
    TooBigBulkCount,
    /// An inline request has an unterminated quote.
    UnbalancedQuotes,
}

impl fmt::Display for ProtocolError {
    /// The error as Redis sends it, without the leading `-`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ERR Protocol error: ")?;
        match self {
            Self::InvalidMultibulkLength => f.write_str("invalid multibulk length"),
            Self::ExpectedDollar(byte) => write!(f, "expected '$', got '{}'", char::from(*byte)),
            Self::InvalidBulkLength => f.write_str("invalid bulk length"),
            Self::TooBigInlineRequest => f.write_str("too big inline request"),
            Self::TooBigMultibulkCount => f.write_str("too big mbulk count string"),
            Self::TooBigBulkCount => f.write_str("too big bulk count string"),
            Self::UnbalancedQuotes => f.write_str("unbalanced quotes in request"),
        }
    }
}

impl std::error::Error for ProtocolError {}

/// A multibulk request in progress.
#[derive(Debug)]
struct Multibulk {
    /// Arguments still to read.
    remaining: usize,
    /// Arguments read so far.
    args: Vec<Bytes>,
    /// Length of the bulk whose `$` header was read but whose payload has not fully arrived.
    pending_bulk_len: Option<usize>,
    /// Bytes of the arguments read so far (they no longer sit in the input buffer).
    args_bytes: usize,
}

/// Turns a client's byte stream into argument vectors, one request at a time.
#[derive(Debug, Default)]
pub struct RequestDecoder {
    limits: RespLimits,
    partial: Option<Multibulk>,
}

impl RequestDecoder {
    /// A decoder enforcing `limits`.
    pub fn new(limits: RespLimits) -> Self {
        Self { limits, partial: None }
    }

    /// Consumes the next complete request from the front of `buf`.
    ///
    /// Returns `Ok(None)` when more bytes are needed (what was complete has been consumed and
    /// remembered), `Ok(Some(args))` for a request, or the protocol error. `args` is empty for a
    /// blank inline line or `*0`/`*-1`: Redis ignores those, and so should the caller.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        if self.partial.is_none() {
            match buf.first() {
                None => return Ok(None),
                Some(b'*') => {}
                Some(_) => return self.decode_inline(buf),
            }
            let Some(count) = self.read_header(buf, b'*')? else {
                return Ok(None);
            };
            let Some(count) = count.filter(|&n| n <= self.limits.multibulk_args_max as i64) else {
                return Err(ProtocolError::InvalidMultibulkLength);
            };
            if count <= 0 {
                return Ok(Some(Vec::new()));
            }
            let count = count as usize;
            let args = Vec::with_capacity(count.min(ARGS_PREALLOCATED_MAX));
            self.partial = Some(Multibulk { remaining: count, args, pending_bulk_len: None, args_bytes: 0 });
        }
        self.decode_bulks(buf)
    }

    /// Bytes of the request in progress that the decoder holds (its complete arguments); with
    /// the unparsed input, what Redis calls the client's query buffer.
    pub fn held_bytes(&self) -> usize {
        self.partial.as_ref().map_or(0, |partial| partial.args_bytes)
    }

    /// Reads bulk arguments of the multibulk request in progress.
    fn decode_bulks(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        let limits = self.limits;
        while let Some(partial) = self.partial.as_mut() {
            if partial.remaining == 0 {
                let done = self.partial.take().map(|p| p.args);
                return Ok(done);
            }
            let len = match partial.pending_bulk_len {
                Some(len) => len,
                None => {
                    match buf.first() {
                        None => return Ok(None),
                        Some(b'$') => {}
                        Some(&other) => return Err(ProtocolError::ExpectedDollar(other)),
                    }
                    let Some(len) = read_header_line(buf, limits.inline_bytes_max, b'$')? else {
                        return Ok(None);
                    };
                    let len = len
                        .filter(|&n| n >= 0 && n <= limits.bulk_bytes_max as i64)
                        .ok_or(ProtocolError::InvalidBulkLength)? as usize;
                    partial.pending_bulk_len = Some(len);
                    len
                }
            };
            if buf.len() < len + 2 {
                reserve_for_payload(buf, len + 2);
                return Ok(None);
            }
            let arg = buf.split_to(len).freeze();
            buf.advance(2);
            partial.args_bytes += len;
            partial.args.push(arg);
            partial.remaining -= 1;
            partial.pending_bulk_len = None;
        }
        Ok(None)
    }

    /// Reads a `*` header line; `Ok(Some(None))` means the number did not parse.
    fn read_header(&self, buf: &mut BytesMut, prefix: u8) -> Result<Option<Option<i64>>, ProtocolError> {
        read_header_line(buf, self.limits.inline_bytes_max, prefix)
    }

    /// Reads one inline request line.
    fn decode_inline(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        let Some(newline) = buf.iter().position(|&b| b == b'\n') else {
            if buf.len() > self.limits.inline_bytes_max {
                return Err(ProtocolError::TooBigInlineRequest);
            }
            return Ok(None);
        };
        if newline > self.limits.inline_bytes_max {
            return Err(ProtocolError::TooBigInlineRequest);
        }
        let line = buf.split_to(newline + 1);
        let line = line.strip_suffix(b"\n").unwrap_or(&line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let args = split_args(line).ok_or(ProtocolError::UnbalancedQuotes)?;
        Ok(Some(args.into_iter().map(Bytes::from).collect()))
    }
}

/// Makes room in `buf` towards `needed` bytes without trusting that they will come: at most as
/// much again as `buf` holds, and at least [`BULK_RESERVE_BYTES_MIN`].
fn reserve_for_payload(buf: &mut BytesMut, needed: usize) {
    let missing = needed.saturating_sub(buf.len());
    buf.reserve(missing.min(buf.len().max(BULK_RESERVE_BYTES_MIN)));
}

/// Reads a `<prefix><integer>\r\n` header line from the front of `buf`.
///
/// `Ok(None)`: incomplete. `Ok(Some(None))`: complete but not a valid integer. The line is
/// consumed only when complete.
fn read_header_line(
    buf: &mut BytesMut,
    line_bytes_max: usize,
    prefix: u8,
) -> Result<Option<Option<i64>>, ProtocolError> {
    let too_big =
        if prefix == b'*' { ProtocolError::TooBigMultibulkCount } else { ProtocolError::TooBigBulkCount };
    let Some(cr) = buf.iter().position(|&b| b == b'\r') else {
        return if buf.len() > line_bytes_max { Err(too_big) } else { Ok(None) };
    };
    if cr > line_bytes_max {
        return Err(too_big);
    }
    // Like Redis, the header ends at the first CR, and the LF after it must have arrived.
    if buf.len() < cr + 2 {
        return Ok(None);
    }
    let number = parse_i64(&buf[1..cr]);
    buf.advance(cr + 2);
    Ok(Some(number))
}

/// Redis's `string2ll`, shared with the key-space layer.
fn parse_i64(text: &[u8]) -> Option<i64> {
    crate::kv::numeric::parse_i64(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::resp::frame::{Frame, ProtocolVersion};
    use proptest::prelude::*;

    fn decode_all(input: &[u8]) -> Result<Vec<Vec<Vec<u8>>>, ProtocolError> {
        let mut decoder = RequestDecoder::default();
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(args) = decoder.decode(&mut buf)? {
            out.push(args.into_iter().map(|a| a.to_vec()).collect());
        }
        Ok(out)
    }

    fn strings(requests: &[&[&str]]) -> Vec<Vec<Vec<u8>>> {
        requests.iter().map(|r| r.iter().map(|a| a.as_bytes().to_vec()).collect()).collect()
    }

    fn error_text(input: &[u8], limits: RespLimits) -> String {
        let mut decoder = RequestDecoder::new(limits);
        let mut buf = BytesMut::from(input);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(_)) => continue,
                Ok(None) => return "incomplete".to_owned(),
                Err(error) => return error.to_string(),
            }
        }
    }

    #[test]
    fn multibulk_and_pipelining() {
        let input = b"*1\r\n$4\r\nPING\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\na\r\n\r\n";
        assert_eq!(decode_all(input), Ok(strings(&[&["PING"], &["SET", "k", "a\r\n"]])));
    }

    #[test]
    fn inline_requests() {
        assert_eq!(decode_all(b"PING\r\n"), Ok(strings(&[&["PING"]])));
        assert_eq!(decode_all(b"set k \"a b\"\n"), Ok(strings(&[&["set", "k", "a b"]])));
        assert_eq!(decode_all(b"\r\n"), Ok(strings(&[&[]])), "blank lines are empty requests");
        assert_eq!(decode_all(b"PING"), Ok(vec![]), "no newline yet");
    }

    #[test]
    fn empty_and_null_multibulk_are_ignored() {
        assert_eq!(decode_all(b"*0\r\n*-1\r\n"), Ok(strings(&[&[], &[]])));
    }

    #[test]
    fn errors_read_like_redis() {
        let limits = RespLimits::default();
        let cases: &[(&[u8], &str)] = &[
            (b"*abc\r\n", "ERR Protocol error: invalid multibulk length"),
            (b"*1048577\r\n", "ERR Protocol error: invalid multibulk length"),
            (b"*1\r\nx", "ERR Protocol error: expected '$', got 'x'"),
            (b"*1\r\n$-1\r\n", "ERR Protocol error: invalid bulk length"),
            (b"*1\r\n$abc\r\n", "ERR Protocol error: invalid bulk length"),
            (b"*1\r\n$536870913\r\n", "ERR Protocol error: invalid bulk length"),
            (b"set k \"abc\r\n", "ERR Protocol error: unbalanced quotes in request"),
        ];
        for (input, expected) in cases {
            assert_eq!(&error_text(input, limits), expected, "{:?}", String::from_utf8_lossy(input));
        }
        let small = RespLimits { inline_bytes_max: 8, ..limits };
        assert_eq!(error_text(b"PINGPINGPING", small), "ERR Protocol error: too big inline request");
        assert_eq!(error_text(b"PINGPINGPING\r\n", small), "ERR Protocol error: too big inline request");
        assert_eq!(error_text(b"*123456789012", small), "ERR Protocol error: too big mbulk count string");
        assert_eq!(
            error_text(b"*1\r\n$123456789012", small),
            "ERR Protocol error: too big bulk count string"
        );
        let at_limit = format!("*1\r\n${}\r\n", limits.bulk_bytes_max);
        assert_eq!(error_text(at_limit.as_bytes(), limits), "incomplete", "the limit itself is fine");
        let past_limit = format!("*1\r\n${}\r\n", limits.bulk_bytes_max + 1);
        assert_eq!(error_text(past_limit.as_bytes(), limits), "ERR Protocol error: invalid bulk length");
    }

    #[test]
    fn a_huge_count_reserves_little() {
        let mut decoder = RequestDecoder::default();
        let mut buf = BytesMut::from(&b"*1048576\r\n$1\r\na\r\n"[..]);
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        let partial = decoder.partial.as_ref().expect("in progress");
        assert!(partial.args.capacity() <= ARGS_PREALLOCATED_MAX);
        assert_eq!(partial.args.len(), 1);
        assert!(buf.is_empty(), "complete parts were consumed");
    }

    /// A header announcing the largest bulk followed by 10 bytes reserves little: room is
    /// made as the payload arrives, never from the announced length.
    #[test]
    fn a_lying_bulk_length_reserves_only_what_arrived() {
        let limits = RespLimits::default();
        let mut decoder = RequestDecoder::new(limits);
        let header = format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${}\r\n", limits.bulk_bytes_max);
        let mut buf = BytesMut::from(header.as_bytes());
        buf.extend_from_slice(&[b'v'; 10]);
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        assert!(buf.capacity() <= 4 * BULK_RESERVE_BYTES_MIN, "reserved {} bytes", buf.capacity());
        assert_eq!(decoder.held_bytes(), 4, "SET and k are held");
    }

    /// As the payload arrives, the reservation grows with it (at most as much again as arrived),
    /// and the argument is whole at the end.
    #[test]
    fn a_large_bulk_is_reserved_as_it_arrives() {
        let len = 8 * 1024 * 1024;
        let mut decoder = RequestDecoder::default();
        let mut buf = BytesMut::from(format!("*1\r\n${len}\r\n").as_bytes());
        let chunk = vec![b'x'; 100_000];
        let mut sent = 0;
        while sent < len {
            let n = chunk.len().min(len - sent);
            buf.extend_from_slice(&chunk[..n]);
            sent += n;
            assert_eq!(decoder.decode(&mut buf), Ok(None));
            assert!(
                buf.capacity() <= 4 * (buf.len() + BULK_RESERVE_BYTES_MIN),
                "{} for {}",
                buf.capacity(),
                buf.len()
            );
        }
        buf.extend_from_slice(b"\r\n");
        let args = decoder.decode(&mut buf).expect("valid").expect("complete");
        assert_eq!(args.len(), 1);
        assert_eq!(args[0].len(), len);
        assert_eq!(decoder.held_bytes(), 0);
    }

    #[test]
    fn negative_and_oversized_lengths_are_refused() {
        let limits = RespLimits::default();
        let over = format!("*1\r\n${}\r\n", limits.bulk_bytes_max + 1);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"*1\r\n$-5\r\n".to_vec(), "ERR Protocol error: invalid bulk length"),
            (b"*1\r\n$-9223372036854775808\r\n".to_vec(), "ERR Protocol error: invalid bulk length"),
            (b"*1\r\n$99999999999999999999\r\n".to_vec(), "ERR Protocol error: invalid bulk length"),
            (over.into_bytes(), "ERR Protocol error: invalid bulk length"),
            (b"*-2\r\n".to_vec(), "incomplete"),
            (b"*99999999999999999999\r\n".to_vec(), "ERR Protocol error: invalid multibulk length"),
            (b"*2\r\n*1\r\n$1\r\na\r\n".to_vec(), "ERR Protocol error: expected '$', got '*'"),
        ];
        for (input, expected) in cases {
            assert_eq!(error_text(&input, limits), expected, "{:?}", String::from_utf8_lossy(&input));
        }
    }

    fn encode_request(args: &[Vec<u8>]) -> Vec<u8> {
        let frame = Frame::Array(args.iter().map(|a| Frame::bulk(a)).collect());
        frame.to_bytes(ProtocolVersion::Resp2).to_vec()
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..256), split in 0usize..256) {
            let mut decoder = RequestDecoder::new(RespLimits { bulk_bytes_max: 64, multibulk_args_max: 16, inline_bytes_max: 32 });
            let split = split.min(input.len());
            let mut buf = BytesMut::from(&input[..split]);
            let mut fed_rest = false;
            loop {
                match decoder.decode(&mut buf) {
                    Ok(Some(_)) => {}
                    Ok(None) if !fed_rest => { buf.extend_from_slice(&input[split..]); fed_rest = true; }
                    Ok(None) | Err(_) => break,
                }
            }
        }

        #[test]
        fn encode_then_parse_round_trips_in_any_chunking(
            requests in proptest::collection::vec(proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..6), 1..5),
            chunk in 1usize..17,
        ) {
            let wire: Vec<u8> = requests.iter().flat_map(|r| encode_request(r)).collect();
            let mut decoder = RequestDecoder::default();
            let mut buf = BytesMut::new();
            let mut parsed = Vec::new();
            for piece in wire.chunks(chunk) {
                buf.extend_from_slice(piece);
                while let Some(args) = decoder.decode(&mut buf).expect("valid input") {
                    parsed.push(args.into_iter().map(|a| a.to_vec()).collect::<Vec<_>>());
                }
            }
            prop_assert_eq!(parsed, requests);
            prop_assert!(buf.is_empty());
        }
    }
}

//! The RESP value and its encoder.
//!
//! One [`Frame`] type covers RESP2 and RESP3. The encoder takes the connection's negotiated
//! [`ProtocolVersion`] (HELLO 2 or 3) and downgrades RESP3-only types for RESP2 clients the way
//! Redis does: null becomes `$-1` (or `*-1` for a null array), a map becomes a flat array of
//! key, value, ..., a set an array, a double a bulk string, a boolean the integer 1 or 0, and a
//! verbatim string a bulk string without its format prefix, and a push (pub/sub's messages and
//! subscription confirmations) an array.

use bytes::{BufMut, Bytes, BytesMut};

/// The protocol a connection speaks, chosen with HELLO (RESP2 until then).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProtocolVersion {
    /// RESP2, the default.
    #[default]
    Resp2,
    /// RESP3, after `HELLO 3`.
    Resp3,
}

impl ProtocolVersion {
    /// The number clients use for it (2 or 3).
    pub fn number(self) -> i64 {
        match self {
            Self::Resp2 => 2,
            Self::Resp3 => 3,
        }
    }
}

/// A RESP value.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// `+text`: a status reply; must not contain CR or LF.
    Simple(String),
    /// `-CODE message`: an error reply; must not contain CR or LF.
    Error(String),
    /// `:n`.
    Integer(i64),
    /// `$len` + bytes: a binary-safe string.
    Bulk(Bytes),
    /// The null value: `$-1` in RESP2, `_` in RESP3.
    Null,
    /// A null array: `*-1` in RESP2, `_` in RESP3.
    NullArray,
    /// `*n` + items.
    Array(Vec<Frame>),
    /// RESP3 `%n` + key/value pairs; a flat array in RESP2.
    Map(Vec<(Frame, Frame)>),
    /// RESP3 `~n` + items; an array in RESP2.
    Set(Vec<Frame>),
    /// RESP3 `,` double; a bulk string in RESP2.
    Double(f64),
    /// RESP3 `#t` / `#f`; the integer 1 / 0 in RESP2.
    Boolean(bool),
    /// Pairs that may repeat: `*n` of two-element arrays in RESP3; a flat array in RESP2
    /// (ZRANGE WITHSCORES, HRANDFIELD WITHVALUES).
    Pairs(Vec<(Frame, Frame)>),
    /// RESP3 `=` verbatim string with a three-letter format (`txt`, `mkd`); bulk in RESP2.
    Verbatim {
        /// The format, e.g. `*b"txt"`.
        format: [u8; 3],
        /// The text.
        text: Bytes,
    },
    /// RESP3 `>n` + items: out-of-band data (pub/sub); an array in RESP2.
    Push(Vec<Frame>),
}

impl Frame {
    /// A simple string from a static text.
    pub fn simple(text: &str) -> Frame {
        Frame::Simple(text.to_owned())
    }

    /// An error frame from its full text (`ERR ...`), replacing CR and LF with spaces as Redis
    /// does so the reply stays one line.
    pub fn error(text: impl Into<String>) -> Frame {
        let text: String = text.into();
        Frame::Error(text.replace(['\r', '\n'], " "))
    }

    /// A bulk string copied from a byte slice.
    pub fn bulk(bytes: &[u8]) -> Frame {
        Frame::Bulk(Bytes::copy_from_slice(bytes))
    }

    /// Appends the encoding of this frame for `version` to `out`.
    pub fn encode(&self, version: ProtocolVersion, out: &mut BytesMut) {
        let resp3 = version == ProtocolVersion::Resp3;
        match self {
            Frame::Simple(text) => line(out, b'+', text.as_bytes()),
            Frame::Error(text) => line(out, b'-', text.as_bytes()),
            Frame::Integer(n) => integer_line(out, b':', *n),
            Frame::Bulk(bytes) => bulk(out, b'$', bytes),
            Frame::Null | Frame::NullArray if resp3 => out.put_slice(b"_\r\n"),
            Frame::Null => out.put_slice(b"$-1\r\n"),
            Frame::NullArray => out.put_slice(b"*-1\r\n"),
            Frame::Array(items) => {
                integer_line(out, b'*', items.len() as i64);
                items.iter().for_each(|item| item.encode(version, out));
            }
            Frame::Map(pairs) => {
                if resp3 {
                    integer_line(out, b'%', pairs.len() as i64);
                } else {
                    integer_line(out, b'*', 2 * pairs.len() as i64);
                }
                for (key, value) in pairs {
                    key.encode(version, out);
                    value.encode(version, out);
                }
            }
            Frame::Pairs(pairs) => {
                integer_line(out, b'*', if resp3 { 1 } else { 2 } * pairs.len() as i64);
                for (first, second) in pairs {
                    if resp3 {
                        out.put_slice(b"*2\r\n");
                    }
                    first.encode(version, out);
                    second.encode(version, out);
                }
            }
            Frame::Set(items) | Frame::Push(items) => {
                let prefix = match self {
                    _ if !resp3 => b'*',
                    Frame::Push(_) => b'>',
                    _ => b'~',
                };
                integer_line(out, prefix, items.len() as i64);
                items.iter().for_each(|item| item.encode(version, out));
            }
            Frame::Double(value) => {
                let text = crate::kv::numeric::format_double(*value);
                if resp3 {
                    line(out, b',', text.as_bytes());
                } else {
                    bulk(out, b'$', text.as_bytes());
                }
            }
            Frame::Boolean(value) if resp3 => out.put_slice(if *value { b"#t\r\n" } else { b"#f\r\n" }),
            Frame::Boolean(value) => integer_line(out, b':', i64::from(*value)),
            Frame::Verbatim { format, text } if resp3 => {
                integer_line(out, b'=', text.len() as i64 + 4);
                out.put_slice(format);
                out.put_u8(b':');
                out.put_slice(text);
                out.put_slice(b"\r\n");
            }
            Frame::Verbatim { text, .. } => bulk(out, b'$', text),
        }
    }

    /// The encoding of this frame for `version` as a fresh buffer.
    pub fn to_bytes(&self, version: ProtocolVersion) -> BytesMut {
        let mut out = BytesMut::new();
        self.encode(version, &mut out);
        out
    }
}

fn line(out: &mut BytesMut, prefix: u8, text: &[u8]) {
    debug_assert!(!text.contains(&b'\r') && !text.contains(&b'\n'), "one-line frames only");
    out.reserve(text.len() + 3);
    out.put_u8(prefix);
    out.put_slice(text);
    out.put_slice(b"\r\n");
}

fn integer_line(out: &mut BytesMut, prefix: u8, value: i64) {
    let mut digits = itoa::Buffer::new();
    line(out, prefix, digits.format(value).as_bytes());
}

fn bulk(out: &mut BytesMut, prefix: u8, bytes: &[u8]) {
    out.reserve(bytes.len() + 16);
    integer_line(out, prefix, bytes.len() as i64);
    out.put_slice(bytes);
    out.put_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(frame: &Frame, version: ProtocolVersion) -> Vec<u8> {
        frame.to_bytes(version).to_vec()
    }

    fn both(frame: Frame, resp2: &[u8], resp3: &[u8]) {
        assert_eq!(enc(&frame, ProtocolVersion::Resp2), resp2, "{frame:?} in RESP2");
        assert_eq!(enc(&frame, ProtocolVersion::Resp3), resp3, "{frame:?} in RESP3");
    }

    #[test]
    fn scalars() {
        both(Frame::simple("OK"), b"+OK\r\n", b"+OK\r\n");
        both(Frame::error("ERR bad\r\nthing"), b"-ERR bad  thing\r\n", b"-ERR bad  thing\r\n");
        both(Frame::Integer(-42), b":-42\r\n", b":-42\r\n");
        both(Frame::bulk(b"a\r\nb"), b"$4\r\na\r\nb\r\n", b"$4\r\na\r\nb\r\n");
        both(Frame::bulk(b""), b"$0\r\n\r\n", b"$0\r\n\r\n");
        both(Frame::Null, b"$-1\r\n", b"_\r\n");
        both(Frame::NullArray, b"*-1\r\n", b"_\r\n");
        both(Frame::Double(1.5), b"$3\r\n1.5\r\n", b",1.5\r\n");
        both(Frame::Double(f64::NEG_INFINITY), b"$4\r\n-inf\r\n", b",-inf\r\n");
        both(Frame::Double(1.1), b"$18\r\n1.1000000000000001\r\n", b",1.1000000000000001\r\n");
        both(
            Frame::Pairs(vec![(Frame::bulk(b"a"), Frame::Double(3.0))]),
            b"*2\r\n$1\r\na\r\n$1\r\n3\r\n",
            b"*1\r\n*2\r\n$1\r\na\r\n,3\r\n",
        );
        both(Frame::Boolean(true), b":1\r\n", b"#t\r\n");
        both(
            Frame::Verbatim { format: *b"txt", text: Bytes::from_static(b"hi") },
            b"$2\r\nhi\r\n",
            b"=6\r\ntxt:hi\r\n",
        );
    }

    #[test]
    fn aggregates() {
        both(
            Frame::Array(vec![Frame::Integer(1), Frame::Null]),
            b"*2\r\n:1\r\n$-1\r\n",
            b"*2\r\n:1\r\n_\r\n",
        );
        both(
            Frame::Map(vec![(Frame::bulk(b"proto"), Frame::Integer(3))]),
            b"*2\r\n$5\r\nproto\r\n:3\r\n",
            b"%1\r\n$5\r\nproto\r\n:3\r\n",
        );
        both(Frame::Set(vec![Frame::Integer(7)]), b"*1\r\n:7\r\n", b"~1\r\n:7\r\n");
        both(
            Frame::Push(vec![Frame::bulk(b"m"), Frame::Null]),
            b"*2\r\n$1\r\nm\r\n$-1\r\n",
            b">2\r\n$1\r\nm\r\n_\r\n",
        );
        both(Frame::Array(vec![]), b"*0\r\n", b"*0\r\n");
        both(
            Frame::Pairs(vec![
                (Frame::bulk(b"f"), Frame::bulk(b"v")),
                (Frame::bulk(b"f"), Frame::bulk(b"v")),
            ]),
            b"*4\r\n$1\r\nf\r\n$1\r\nv\r\n$1\r\nf\r\n$1\r\nv\r\n",
            b"*2\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n",
        );
    }
}

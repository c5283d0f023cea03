//! A tiny RESP2/RESP3 client that keeps every reply exactly as the server framed it.
//!
//! The `redis` crate folds distinctions the differential tests must see (a simple string and a
//! bulk string with the same text, an error's code and message, RESP2's nil bulk and nil
//! array), so the tests read frames themselves. [`Reply`] is the frame as sent, with doubles
//! and big numbers kept as their text: two servers agree only if they send the same bytes.

use std::fmt;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Longest wait for one reply: above PPDB's 5 s request timeout, so a request the server gives
/// up on reads as the server's error.
const REPLY_DEADLINE: Duration = Duration::from_secs(15);
/// Largest bulk string or aggregate length accepted from a server (the tests' values are small;
/// a larger header means the stream is out of step).
const FRAME_LENGTH_MAX: usize = 64 << 20;

/// One reply frame, as the server sent it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reply {
    /// `+text`.
    Simple(Vec<u8>),
    /// `-text` or RESP3's `!len` bulk error.
    Error(Vec<u8>),
    /// `:n`.
    Integer(i64),
    /// `$len` with its bytes.
    Bulk(Vec<u8>),
    /// RESP2's nil bulk string, `$-1`.
    NilBulk,
    /// RESP2's nil array, `*-1`.
    NilArray,
    /// RESP3's null, `_`.
    Null,
    /// `*len` with its items.
    Array(Vec<Reply>),
    /// RESP3's `~len` set.
    Set(Vec<Reply>),
    /// RESP3's `%len` map, its pairs in the order sent.
    Map(Vec<(Reply, Reply)>),
    /// RESP3's `,double`, as text.
    Double(Vec<u8>),
    /// RESP3's `#t` / `#f`.
    Boolean(bool),
    /// RESP3's `(big number`, as text.
    BigNumber(Vec<u8>),
    /// RESP3's `=len` verbatim string: its format and text.
    Verbatim(Vec<u8>, Vec<u8>),
    /// RESP3's `>len` push.
    Push(Vec<Reply>),
}

impl Reply {
    /// Whether this is an error reply.
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }
}

/// Bytes as a quoted string, escaping what is not printable ASCII (as redis-cli does).
pub fn quoted(bytes: &[u8]) -> String {
    let mut out = String::from("\"");
    for &b in bytes {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('"');
    out
}

fn joined(items: &[Reply]) -> String {
    items.iter().map(Reply::to_string).collect::<Vec<_>>().join(", ")
}

impl fmt::Display for Reply {
    /// One line: `"bulk"`, `+simple`, `-error`, `(integer) 1`, `(nil)`, `[a, b]`, `{k: v}`, ...
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        match self {
            Reply::Simple(s) => write!(f, "+{}", text(s)),
            Reply::Error(e) => write!(f, "-{}", text(e)),
            Reply::Integer(n) => write!(f, "(integer) {n}"),
            Reply::Bulk(b) => f.write_str(&quoted(b)),
            Reply::NilBulk => f.write_str("(nil bulk $-1)"),
            Reply::NilArray => f.write_str("(nil array *-1)"),
            Reply::Null => f.write_str("(null _)"),
            Reply::Array(items) => write!(f, "[{}]", joined(items)),
            Reply::Set(items) => write!(f, "~[{}]", joined(items)),
            Reply::Push(items) => write!(f, ">[{}]", joined(items)),
            Reply::Map(pairs) => {
                let pairs: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                write!(f, "{{{}}}", pairs.join(", "))
            }
            Reply::Double(d) => write!(f, "(double) {}", text(d)),
            Reply::Boolean(b) => write!(f, "(boolean) {b}"),
            Reply::BigNumber(n) => write!(f, "(big number) {}", text(n)),
            Reply::Verbatim(format, body) => write!(f, "(verbatim {}) {}", text(format), quoted(body)),
        }
    }
}

/// One connection that sends commands as arrays of bulk strings and reads whole replies.
pub struct RespConnection {
    addr: SocketAddr,
    reader: BufReader<TcpStream>,
}

impl RespConnection {
    /// Connects to `addr`.
    pub fn connect(addr: SocketAddr) -> RespConnection {
        let stream = TcpStream::connect_timeout(&addr, REPLY_DEADLINE)
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        stream.set_read_timeout(Some(REPLY_DEADLINE)).expect("set read timeout");
        stream.set_write_timeout(Some(REPLY_DEADLINE)).expect("set write timeout");
        stream.set_nodelay(true).expect("set nodelay");
        RespConnection { addr, reader: BufReader::new(stream) }
    }

    /// Sends `args` without reading anything (the replies are read with [`Self::receive`]).
    pub fn send(&mut self, args: &[Vec<u8>]) {
        let mut request = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            request.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            request.extend_from_slice(arg);
            request.extend_from_slice(b"\r\n");
        }
        let addr = self.addr;
        self.reader.get_mut().write_all(&request).unwrap_or_else(|e| panic!("send to {addr}: {e}"));
    }

    /// Sets how long [`Self::receive`] waits for a frame.
    pub fn set_read_timeout(&mut self, timeout: Duration) {
        self.reader.get_ref().set_read_timeout(Some(timeout)).expect("set read timeout");
    }

    /// Reads the next frame the server sends (a reply or a pushed message).
    pub fn receive(&mut self) -> Result<Reply, String> {
        self.read_reply()
    }

    /// Sends `args` and reads the reply.
    pub fn call(&mut self, args: &[Vec<u8>]) -> Reply {
        let mut request = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            request.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            request.extend_from_slice(arg);
            request.extend_from_slice(b"\r\n");
        }
        let addr = self.addr;
        self.reader.get_mut().write_all(&request).unwrap_or_else(|e| panic!("send to {addr}: {e}"));
        self.read_reply().unwrap_or_else(|e| panic!("reply from {addr} to {}: {e}", command_line(args)))
    }

    fn read_line(&mut self) -> Result<Vec<u8>, String> {
        let mut line = Vec::new();
        self.reader.read_until(b'\n', &mut line).map_err(|e| e.to_string())?;
        if !line.ends_with(b"\r\n") {
            return Err(format!("connection closed or line without CRLF: {}", quoted(&line)));
        }
        line.truncate(line.len() - 2);
        Ok(line)
    }

    fn read_exact(&mut self, len: usize) -> Result<Vec<u8>, String> {
        let mut body = vec![0; len + 2];
        std::io::Read::read_exact(&mut self.reader, &mut body).map_err(|e| e.to_string())?;
        if !body.ends_with(b"\r\n") {
            return Err(format!("bulk of {len} bytes without CRLF"));
        }
        body.truncate(len);
        Ok(body)
    }

    fn read_items(&mut self, len: usize) -> Result<Vec<Reply>, String> {
        (0..len).map(|_| self.read_reply()).collect()
    }

    fn read_reply(&mut self) -> Result<Reply, String> {
        let line = self.read_line()?;
        let Some((&kind, rest)) = line.split_first() else {
            return Err("empty reply line".to_string());
        };
        let length = || -> Result<Option<usize>, String> {
            let text = std::str::from_utf8(rest).map_err(|e| e.to_string())?;
            let n: i64 = text.parse().map_err(|_| format!("bad length {}", quoted(rest)))?;
            match usize::try_from(n) {
                Ok(n) if n <= FRAME_LENGTH_MAX => Ok(Some(n)),
                Ok(n) => Err(format!("length {n} above {FRAME_LENGTH_MAX}")),
                Err(_) => Ok(None),
            }
        };
        Ok(match kind {
            b'+' => Reply::Simple(rest.to_vec()),
            b'-' => Reply::Error(rest.to_vec()),
            b':' => Reply::Integer(
                std::str::from_utf8(rest)
                    .ok()
                    .and_then(|t| t.parse().ok())
                    .ok_or_else(|| format!("bad integer {}", quoted(rest)))?,
            ),
            b',' => Reply::Double(rest.to_vec()),
            b'(' => Reply::BigNumber(rest.to_vec()),
            b'#' => Reply::Boolean(rest == b"t"),
            b'_' => Reply::Null,
            b'$' => match length()? {
                Some(n) => Reply::Bulk(self.read_exact(n)?),
                None => Reply::NilBulk,
            },
            b'!' => Reply::Error(self.read_exact(length()?.unwrap_or(0))?),
            b'=' => {
                let body = self.read_exact(length()?.unwrap_or(0))?;
                let (format, text) = body.split_at(body.len().min(4));
                Reply::Verbatim(format.strip_suffix(b":").unwrap_or(format).to_vec(), text.to_vec())
            }
            b'*' => match length()? {
                Some(n) => Reply::Array(self.read_items(n)?),
                None => Reply::NilArray,
            },
            b'~' => Reply::Set(self.read_items(length()?.unwrap_or(0))?),
            b'>' => Reply::Push(self.read_items(length()?.unwrap_or(0))?),
            b'%' => {
                let n = length()?.unwrap_or(0);
                let mut pairs = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    pairs.push((self.read_reply()?, self.read_reply()?));
                }
                Reply::Map(pairs)
            }
            other => return Err(format!("unknown reply type {:?}", other as char)),
        })
    }
}

/// A command as one line: its arguments quoted and separated by spaces.
pub fn command_line(args: &[Vec<u8>]) -> String {
    args.iter().map(|a| quoted(a)).collect::<Vec<_>>().join(" ")
}

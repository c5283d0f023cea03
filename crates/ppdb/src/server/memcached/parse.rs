//! The parser of memcached's text protocol (memcached 1.6 `doc/protocol.txt`): a command line
//! ending in `\r\n` (or a bare `\n`), tokens separated by spaces, and for the storage commands a
//! data block of the announced length followed by `\r\n`.
//!
//! Errors are answered as memcached answers them: `ERROR` for an unknown command or a wrong
//! number of tokens, `CLIENT_ERROR ...` for a bad argument, `SERVER_ERROR object too large for
//! cache` for a data block over the item size limit (its bytes are skipped). A line longer than
//! [`LINE_BYTES_MAX`] closes the connection. Every length is checked before anything is
//! buffered or allocated for it, and nothing here panics on any input.

use super::request::{MetaFlags, Request, StatsGroup};
use crate::kv::memcached::{parse_counter, StoreMode};

/// Longest key, as memcached's `KEY_MAX_LENGTH`.
pub const KEY_BYTES_MAX: usize = 250;
/// Longest command line, `\r\n` included: room for a `get` of 100 keys of the longest size.
pub const LINE_BYTES_MAX: usize = 100 * (KEY_BYTES_MAX + 1) + 64;
/// Default item size limit (memcached's `-I`, 1 MiB).
pub const ITEM_BYTES_MAX_DEFAULT: usize = 1024 * 1024;

/// The result of parsing the start of a connection's input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// The input holds no complete request yet.
    Incomplete,
    /// A request, and the bytes it took.
    Request(Request, usize),
    /// A request answered with `reply` (`None`: silently, for `noreply`) without running;
    /// `consumed` bytes are dropped (perhaps more than the input holds yet: a data block being
    /// skipped), and the connection closed after the reply when `close`.
    Refused {
        /// What to answer, `\r\n` excluded.
        reply: Option<String>,
        /// Bytes to drop.
        consumed: usize,
        /// Close the connection after answering.
        close: bool,
    },
}

const ERROR: &str = "ERROR";
const BAD_FORMAT: &str = "CLIENT_ERROR bad command line format";
const BAD_EXPTIME: &str = "CLIENT_ERROR invalid exptime argument";
const BAD_DELTA: &str = "CLIENT_ERROR invalid numeric delta argument";
const BAD_FLAG: &str = "CLIENT_ERROR invalid flag";

/// Parses the first request in `input`; data blocks may hold up to `item_bytes_max` bytes.
pub fn parse(input: &[u8], item_bytes_max: usize) -> Parsed {
    let Some(newline) = input.iter().take(LINE_BYTES_MAX).position(|&b| b == b'\n') else {
        if input.len() >= LINE_BYTES_MAX {
            return refused(Some("CLIENT_ERROR line too long"), input.len(), true);
        }
        return Parsed::Incomplete;
    };
    let line_bytes = newline + 1;
    let line = input[..newline].strip_suffix(b"\r").unwrap_or(&input[..newline]);
    let tokens: Vec<&[u8]> = line.split(|&b| b == b' ').filter(|t| !t.is_empty()).collect();
    let Some((&command, args)) = tokens.split_first() else {
        return refused(Some(ERROR), line_bytes, false);
    };
    let request = match command {
        b"set" => storage(StoreMode::Set, args, false, input, line_bytes, item_bytes_max),
        b"add" => storage(StoreMode::Add, args, false, input, line_bytes, item_bytes_max),
        b"replace" => storage(StoreMode::Replace, args, false, input, line_bytes, item_bytes_max),
        b"append" => storage(StoreMode::Append, args, false, input, line_bytes, item_bytes_max),
        b"prepend" => storage(StoreMode::Prepend, args, false, input, line_bytes, item_bytes_max),
        b"cas" => storage(StoreMode::Set, args, true, input, line_bytes, item_bytes_max),
        b"ms" => meta_set(args, input, line_bytes, item_bytes_max),
        _ => line_request(command, args).map(|request| (request, line_bytes)).map_err(|refusal| {
            // A command's own error is not said under `noreply`; an unknown one always is.
            let noreply = args.last() == Some(&&b"noreply"[..]) && !matches!(command, b"get" | b"gets");
            match refusal {
                Refusal::Reply(Some(text)) if noreply && text != ERROR => Refusal::Reply(None),
                other => other,
            }
        }),
    };
    match request {
        Ok((request, consumed)) => Parsed::Request(request, consumed),
        Err(Refusal::Reply(reply)) => refused(reply, line_bytes, false),
        Err(Refusal::Skip { reply, consumed }) => refused(reply, consumed, false),
        Err(Refusal::Incomplete) => Parsed::Incomplete,
    }
}

fn refused(reply: Option<&str>, consumed: usize, close: bool) -> Parsed {
    Parsed::Refused { reply: reply.map(str::to_owned), consumed, close }
}

/// Why a line is not a request to run.
enum Refusal {
    /// Answered with this (`None`: silently), the line dropped.
    Reply(Option<&'static str>),
    /// Answered, and `consumed` bytes from the line's start dropped (the line and its data).
    Skip { reply: Option<&'static str>, consumed: usize },
    /// The data block has not arrived in full.
    Incomplete,
}

fn error(text: &'static str) -> Refusal {
    Refusal::Reply(Some(text))
}

/// Whether `key` is a key memcached accepts (and PPDB: no control characters).
fn valid_key(key: &[u8]) -> bool {
    key.len() <= KEY_BYTES_MAX && !key.iter().any(|b| b.is_ascii_control())
}

fn key(token: &[u8]) -> Result<Vec<u8>, Refusal> {
    if valid_key(token) {
        Ok(token.to_vec())
    } else {
        Err(error(BAD_FORMAT))
    }
}

/// A signed 32-bit decimal, as memcached's `safe_strtol` reads exptimes and lengths.
fn int32(token: &[u8]) -> Option<i64> {
    std::str::from_utf8(token).ok()?.parse::<i32>().ok().map(i64::from)
}

/// Client flags: a decimal read as memcached 1.6 does (64 bits, kept modulo 2^32).
fn client_flags(token: &[u8]) -> Option<u32> {
    parse_counter(token).map(|flags| flags as u32)
}

/// The data block of `value_bytes` after a `line_bytes` line: the value and the bytes taken.
fn data_block(input: &[u8], line_bytes: usize, value_bytes: usize) -> Result<(Vec<u8>, usize), Refusal> {
    let end = line_bytes + value_bytes + 2;
    let Some(block) = input.get(line_bytes..end) else { return Err(Refusal::Incomplete) };
    if &block[value_bytes..] != b"\r\n" {
        return Err(Refusal::Skip { reply: Some("CLIENT_ERROR bad data chunk"), consumed: end });
    }
    Ok((block[..value_bytes].to_vec(), end))
}

/// set/add/replace/append/prepend `<key> <flags> <exptime> <bytes> [noreply]`, and cas with
/// `<cas unique>` before `noreply`.
fn storage(
    mode: StoreMode,
    args: &[&[u8]],
    with_cas: bool,
    input: &[u8],
    line_bytes: usize,
    item_bytes_max: usize,
) -> Result<(Request, usize), Refusal> {
    let fixed = if with_cas { 5 } else { 4 };
    if args.len() != fixed && args.len() != fixed + 1 {
        return Err(error(ERROR));
    }
    // memcached takes a last `noreply` as such whatever its position, and then says nothing.
    let noreply = args.last() == Some(&&b"noreply"[..]);
    let quiet_error = |text| Refusal::Reply((!noreply).then_some(text));
    if !valid_key(args[0]) {
        return Err(quiet_error(BAD_FORMAT));
    }
    let parsed = (client_flags(args[1]), int32(args[2]), int32(args[3]));
    let (Some(flags), Some(exptime), Some(value_bytes)) = parsed else { return Err(quiet_error(BAD_FORMAT)) };
    let cas = if with_cas {
        match parse_counter(args[4]) {
            Some(cas) => Some(cas),
            None => return Err(quiet_error(BAD_FORMAT)),
        }
    } else {
        None
    };
    let Ok(value_bytes) = usize::try_from(value_bytes) else { return Err(quiet_error(BAD_FORMAT)) };
    if value_bytes > item_bytes_max {
        return Err(Refusal::Skip {
            reply: (!noreply).then_some("SERVER_ERROR object too large for cache"),
            consumed: line_bytes + value_bytes + 2,
        });
    }
    let (value, consumed) = match data_block(input, line_bytes, value_bytes) {
        Err(Refusal::Skip { reply, consumed }) => {
            return Err(Refusal::Skip { reply: reply.filter(|_| !noreply), consumed })
        }
        other => other?,
    };
    let request = Request::Store { mode, key: args[0].to_vec(), flags, exptime, value, cas, noreply };
    Ok((request, consumed))
}

/// The commands that are one line.
fn line_request(command: &[u8], args: &[&[u8]]) -> Result<Request, Refusal> {
    let noreply = args.last() == Some(&&b"noreply"[..]);
    match command {
        b"get" | b"gets" if !args.is_empty() => Ok(Request::Get {
            keys: args.iter().map(|k| key(k)).collect::<Result<_, _>>()?,
            with_cas: command == b"gets",
            touch: None,
        }),
        b"gat" | b"gats" if args.len() >= 2 => {
            let exptime = int32(args[0]).ok_or(error(BAD_EXPTIME))?;
            Ok(Request::Get {
                keys: args[1..].iter().map(|k| key(k)).collect::<Result<_, _>>()?,
                with_cas: command == b"gats",
                touch: Some(exptime),
            })
        }
        b"delete" if (1..=3).contains(&args.len()) => {
            let key = key(args[0])?;
            let hold_is_zero = args.get(1) == Some(&&b"0"[..]);
            let valid = match args.len() {
                1 => true,
                2 => hold_is_zero || noreply,
                _ => hold_is_zero && noreply,
            };
            if !valid {
                return Err(error("CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]"));
            }
            Ok(Request::Delete { key, noreply })
        }
        b"incr" | b"decr" if args.len() == 2 || args.len() == 3 => {
            let key = key(args[0])?;
            let delta = parse_counter(args[1]).ok_or(error(BAD_DELTA))?;
            Ok(Request::Delta { key, decrement: command == b"decr", delta, noreply })
        }
        b"touch" if args.len() == 2 || args.len() == 3 => {
            let key = key(args[0])?;
            let exptime = int32(args[1]).ok_or(error(BAD_EXPTIME))?;
            Ok(Request::Touch { key, exptime, noreply })
        }
        b"flush_all" if args.len() <= 2 => {
            let delay = match args.first() {
                None => 0,
                Some(&b"noreply") if args.len() == 1 => 0,
                Some(token) => int32(token).ok_or(error(BAD_EXPTIME))?,
            };
            Ok(Request::FlushAll { delay, noreply })
        }
        b"version" => Ok(Request::Version),
        b"verbosity" if args.len() == 1 || args.len() == 2 => Ok(Request::Verbosity { noreply }),
        b"quit" => Ok(Request::Quit),
        b"stats" => match args {
            [] => Ok(Request::Stats(StatsGroup::General)),
            [b"settings"] => Ok(Request::Stats(StatsGroup::Settings)),
            [b"items"] => Ok(Request::Stats(StatsGroup::Items)),
            _ => Err(error(ERROR)),
        },
        b"mn" => Ok(Request::MetaNoop),
        b"me" if !args.is_empty() => Ok(Request::MetaDebug { key: key(args[0])? }),
        b"mg" | b"md" | b"ma" if !args.is_empty() => {
            let key = key(args[0])?;
            let allowed: &[u8] = match command {
                b"mg" => b"cfkOqstvT",
                b"md" => b"CkOq",
                _ => b"CNJDTMOqcvk",
            };
            let flags = meta_flags(&args[1..], allowed)?;
            Ok(match command {
                b"mg" => Request::MetaGet { key, flags },
                b"md" => Request::MetaDelete { key, flags },
                _ => Request::MetaArithmetic { key, flags },
            })
        }
        _ => Err(error(ERROR)),
    }
}

/// ms `<key> <datalen> <flags>*` and its data block; a bad flag skips the block.
fn meta_set(
    args: &[&[u8]],
    input: &[u8],
    line_bytes: usize,
    item_bytes_max: usize,
) -> Result<(Request, usize), Refusal> {
    let [key_token, length, flag_tokens @ ..] = args else {
        return Err(error(if args.is_empty() { ERROR } else { BAD_FORMAT }));
    };
    let value_bytes = int32(length).and_then(|n| usize::try_from(n).ok()).ok_or(error(BAD_FORMAT))?;
    let skip = |reply| Refusal::Skip { reply: Some(reply), consumed: line_bytes + value_bytes + 2 };
    if !valid_key(key_token) {
        return Err(skip(BAD_FORMAT));
    }
    if value_bytes > item_bytes_max {
        return Err(skip("SERVER_ERROR object too large for cache"));
    }
    let flags = match meta_flags(flag_tokens, b"cCFIkOqTM") {
        Ok(flags) => flags,
        Err(Refusal::Reply(Some(reply))) => return Err(skip(reply)),
        Err(other) => return Err(other),
    };
    if flags.mode.is_some_and(|mode| !b"SEAPRseapr".contains(&mode)) {
        return Err(skip("CLIENT_ERROR invalid mode for ms M token"));
    }
    let (value, consumed) = data_block(input, line_bytes, value_bytes)?;
    Ok((Request::MetaSet { key: key_token.to_vec(), value, flags }, consumed))
}

/// The flags of a meta command, each a letter of `allowed` with its token.
fn meta_flags(tokens: &[&[u8]], allowed: &[u8]) -> Result<MetaFlags, Refusal> {
    let mut flags = MetaFlags::default();
    for token in tokens {
        let (&letter, value) = token.split_first().ok_or(error(BAD_FLAG))?;
        if !allowed.contains(&letter) {
            return Err(error(BAD_FLAG));
        }
        let number = || parse_counter(value).ok_or(error(BAD_FORMAT));
        let signed = || int32(value).ok_or(error(BAD_FORMAT));
        match letter {
            b'v' => flags.value = true,
            b'q' => flags.quiet = true,
            // Invalidation (marking an item stale on a cas race) is not kept: a plain set.
            b'I' => {}
            b'C' => flags.compare_cas = Some(number()?),
            b'T' => flags.ttl = Some(signed()?),
            b'F' => flags.client_flags = Some(client_flags(value).ok_or(error(BAD_FORMAT))?),
            b'M' => flags.mode = Some(*value.first().ok_or(error(BAD_FORMAT))?),
            b'N' => flags.vivify_ttl = Some(signed()?),
            b'J' => flags.initial = Some(number()?),
            b'D' => flags.delta = Some(number()?),
            b'O' | b'k' | b'c' | b'f' | b's' | b't' => {
                if flags.returned.len() >= tokens.len() {
                    return Err(error(BAD_FLAG));
                }
                flags.returned.push((letter, value.to_vec()));
            }
            _ => return Err(error(BAD_FLAG)),
        }
    }
    Ok(flags)
}

#[cfg(test)]
mod tests;

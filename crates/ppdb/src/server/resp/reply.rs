//! Typed answers to RESP frames: key-space [`Reply`]s, PPDB's errors, command errors, and the
//! COMMAND introspection replies built from the command table.

use bytes::Bytes;

use super::command::{CommandError, CommandQuery, CommandSpec, COMMANDS};
use super::frame::Frame;
use super::parse::ProtocolError;
use crate::error::Error;
use crate::kv::Reply;
use crate::server::client::failure::Failure;

impl From<Reply> for Frame {
    /// The frame Redis would send; RESP2/RESP3 differences (null) are left to the encoder.
    fn from(reply: Reply) -> Frame {
        match reply {
            Reply::Ok => Frame::simple("OK"),
            Reply::Status(text) => Frame::simple(text),
            Reply::Nil => Frame::Null,
            Reply::Integer(n) => Frame::Integer(n),
            Reply::Bulk(bytes) => Frame::Bulk(Bytes::from(bytes)),
            Reply::Array(items) => Frame::Array(items.into_iter().map(Frame::from).collect()),
            Reply::Scan { cursor, keys } => Frame::Array(vec![
                Frame::Bulk(Bytes::from(cursor.to_string())),
                Frame::Array(keys.into_iter().map(|k| Frame::Bulk(Bytes::from(k))).collect()),
            ]),
            Reply::Error(error) => Frame::error(error.message()),
            Reply::ErrorText(text) => Frame::error(text),
            Reply::Locked(holder) => Frame::error(holder.message()),
            Reply::StatusText(text) => Frame::Simple(text.replace(['\r', '\n'], " ")),
            Reply::Map(pairs) => Frame::Map(
                pairs.into_iter().map(|(key, value)| (Frame::from(key), Frame::from(value))).collect(),
            ),
            Reply::Set(items) => Frame::Set(items.into_iter().map(Frame::from).collect()),
            Reply::Double(score) => Frame::Double(score.0),
            Reply::NilArray => Frame::NullArray,
            Reply::Pairs(pairs) => Frame::Pairs(
                pairs.into_iter().map(|(first, second)| (Frame::from(first), Frame::from(second))).collect(),
            ),
        }
    }
}

/// A database error as a Redis error reply: the seed's code first, for machines.
pub fn error_frame(error: &Error) -> Frame {
    Frame::error(Failure::from(error).to_string())
}

impl From<&CommandError> for Frame {
    fn from(error: &CommandError) -> Frame {
        Frame::error(error.to_string())
    }
}

impl From<&ProtocolError> for Frame {
    fn from(error: &ProtocolError) -> Frame {
        Frame::error(error.to_string())
    }
}

/// The reply to a COMMAND query, from the command table.
pub fn command_query_reply(query: &CommandQuery) -> Frame {
    let find = |name: &Bytes| COMMANDS.iter().find(|spec| spec.name.as_bytes().eq_ignore_ascii_case(name));
    match query {
        CommandQuery::All => Frame::Array(COMMANDS.iter().map(command_info).collect()),
        CommandQuery::Count => Frame::Integer(COMMANDS.len() as i64),
        CommandQuery::List => Frame::Array(COMMANDS.iter().map(|s| Frame::bulk(s.name.as_bytes())).collect()),
        CommandQuery::Info(names) if names.is_empty() => {
            Frame::Array(COMMANDS.iter().map(command_info).collect())
        }
        CommandQuery::Info(names) => {
            Frame::Array(names.iter().map(|name| find(name).map_or(Frame::NullArray, command_info)).collect())
        }
        CommandQuery::Docs(names) => {
            let specs: Vec<&CommandSpec> = if names.is_empty() {
                COMMANDS.iter().collect()
            } else {
                names.iter().filter_map(find).collect()
            };
            Frame::Map(
                specs
                    .into_iter()
                    .map(|spec| (Frame::bulk(spec.name.as_bytes()), command_docs(spec)))
                    .collect(),
            )
        }
    }
}

/// One command's COMMAND INFO entry (Redis 7 layout: name, arity, flags, first key, last key,
/// step, ACL categories, tips, key specs, subcommands).
fn command_info(spec: &CommandSpec) -> Frame {
    Frame::Array(vec![
        Frame::bulk(spec.name.as_bytes()),
        Frame::Integer(i64::from(spec.arity)),
        Frame::Set(spec.flags.iter().map(|f| Frame::simple(f)).collect()),
        Frame::Integer(i64::from(spec.first_key)),
        Frame::Integer(i64::from(spec.last_key)),
        Frame::Integer(i64::from(spec.key_step)),
        Frame::Set(Vec::new()),
        Frame::Set(Vec::new()),
        Frame::Set(Vec::new()),
        Frame::Array(Vec::new()),
    ])
}

/// One command's COMMAND DOCS entry: summary, since, group.
fn command_docs(spec: &CommandSpec) -> Frame {
    let group: &[u8] = match spec.class {
        super::command::CommandClass::Connection => b"connection",
        _ if spec.first_key == 0 || spec.name.contains("expire") || spec.name == "del" => b"generic",
        _ => b"string",
    };
    Frame::Map(vec![
        (Frame::bulk(b"summary"), Frame::bulk(spec.summary.as_bytes())),
        (Frame::bulk(b"since"), Frame::bulk(b"1.0.0")),
        (Frame::bulk(b"group"), Frame::bulk(group)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::KvError;
    use crate::server::resp::frame::ProtocolVersion;

    fn wire(frame: Frame, version: ProtocolVersion) -> Vec<u8> {
        frame.to_bytes(version).to_vec()
    }

    #[test]
    fn replies_encode_like_redis() {
        let v2 = ProtocolVersion::Resp2;
        assert_eq!(wire(Reply::Ok.into(), v2), b"+OK\r\n");
        assert_eq!(wire(Reply::Nil.into(), v2), b"$-1\r\n");
        assert_eq!(wire(Reply::Nil.into(), ProtocolVersion::Resp3), b"_\r\n");
        assert_eq!(wire(Reply::Integer(1).into(), v2), b":1\r\n");
        assert_eq!(wire(Reply::Status("string").into(), v2), b"+string\r\n");
        assert_eq!(wire(Reply::Bulk(b"v".to_vec()).into(), v2), b"$1\r\nv\r\n");
        assert_eq!(
            wire(Reply::Array(vec![Reply::Nil, Reply::Bulk(b"x".to_vec())]).into(), v2),
            b"*2\r\n$-1\r\n$1\r\nx\r\n"
        );
        assert_eq!(
            wire(Reply::Scan { cursor: 17, keys: vec![b"k".to_vec()] }.into(), v2),
            b"*2\r\n$2\r\n17\r\n*1\r\n$1\r\nk\r\n"
        );
        assert_eq!(
            wire(Reply::Error(KvError::NotInteger).into(), v2),
            b"-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(
            wire(Reply::Error(KvError::NanOrInfinity).into(), v2),
            b"-ERR increment would produce NaN or Infinity\r\n"
        );
    }

    #[test]
    fn command_introspection() {
        assert_eq!(command_query_reply(&CommandQuery::Count), Frame::Integer(COMMANDS.len() as i64));
        let Frame::Array(info) =
            command_query_reply(&CommandQuery::Info(vec![Bytes::from("GET"), Bytes::from("nope")]))
        else {
            panic!("COMMAND INFO is an array")
        };
        assert_eq!(info.len(), 2);
        assert_eq!(info[1], Frame::NullArray);
        let Frame::Array(get) = &info[0] else { panic!("entry is an array") };
        assert_eq!(get[0], Frame::bulk(b"get"));
        assert_eq!(get[1], Frame::Integer(2));
        let Frame::Map(docs) = command_query_reply(&CommandQuery::Docs(vec![Bytes::from("set")])) else {
            panic!("COMMAND DOCS is a map")
        };
        assert_eq!(docs.len(), 1);
    }
}

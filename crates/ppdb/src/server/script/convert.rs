//! Redis's conversions between command replies and Lua values, both ways, as Redis 7 does
//! them for a script speaking RESP2.
//!
//! Reply to Lua: an integer is a number, a bulk string a string, a null (bulk or array) is
//! `false`, an array a table (maps and sets flattened, as RESP2 sends them), a status
//! `{ok=text}`, an error `{err=text}`; a double is its decimal text, as RESP2 sends it.
//!
//! Lua to reply: a number is an integer (truncated towards zero), a string a bulk string,
//! `true` is 1 and `false` or nil a null; a table with a string `err` is an error, with a
//! string `ok` a status, otherwise an array of its elements from 1 up to the first nil.
//! Replies are bounded: at most [`REPLY_DEPTH_MAX`] levels deep (a table holding itself is
//! refused, not followed forever) and [`TXN_REPLY_BYTES_MAX`] bytes.

use mlua::{Lua, Table, Value};

use crate::kv::numeric::format_double;
use crate::kv::{KvError, Reply, TXN_REPLY_BYTES_MAX};

/// The most nested levels a script's reply may have.
pub const REPLY_DEPTH_MAX: usize = 64;

/// A script's returned value as a reply.
pub(super) fn to_reply(value: Value) -> Reply {
    let mut bytes = 0u64;
    match lua_to_reply(&value, 0, &mut bytes) {
        Some(reply) if bytes <= TXN_REPLY_BYTES_MAX => reply,
        Some(_) => Reply::Error(KvError::ReplyTooLarge),
        None => Reply::ErrorText("ERR reached lua stack limit".into()),
    }
}

/// `None` when the value nests deeper than [`REPLY_DEPTH_MAX`]; `bytes` counts the reply's size
/// and stops the walk once past the limit.
fn lua_to_reply(value: &Value, depth: usize, bytes: &mut u64) -> Option<Reply> {
    if depth > REPLY_DEPTH_MAX {
        return None;
    }
    let reply = match value {
        Value::Nil | Value::Boolean(false) => Reply::Nil,
        Value::Boolean(true) => Reply::Integer(1),
        // Truncation towards zero, saturating, as C's cast does for the values Redis sees.
        Value::Number(number) => Reply::Integer(*number as i64),
        Value::Integer(number) => Reply::Integer(*number),
        Value::String(text) => {
            *bytes += text.as_bytes().len() as u64;
            Reply::Bulk(text.as_bytes().to_vec())
        }
        Value::Table(table) => table_to_reply(table, depth, bytes)?,
        _ => Reply::Nil,
    };
    *bytes += crate::kv::reply::REPLY_ELEMENT_BYTES;
    Some(reply)
}

fn table_to_reply(table: &Table, depth: usize, bytes: &mut u64) -> Option<Reply> {
    if let Ok(Value::String(text)) = table.raw_get::<Value>("err") {
        let text = text.to_string_lossy();
        return Some(Reply::ErrorText(text.strip_prefix('-').unwrap_or(&text).to_owned()));
    }
    if let Ok(Value::String(text)) = table.raw_get::<Value>("ok") {
        return Some(Reply::StatusText(text.to_string_lossy()));
    }
    let mut items = Vec::new();
    for index in 1.. {
        let item = table.raw_get::<Value>(index).unwrap_or(Value::Nil);
        if item.is_nil() || *bytes > TXN_REPLY_BYTES_MAX {
            break;
        }
        items.push(lua_to_reply(&item, depth + 1, bytes)?);
    }
    Some(Reply::Array(items))
}

/// A command's reply as the script sees it; `Err` holds the error table for an error reply.
pub(super) fn reply_to_lua(lua: &Lua, reply: Reply) -> mlua::Result<Result<Value, Value>> {
    Ok(match reply {
        Reply::Error(error) => Err(error_table(lua, error.message())?),
        Reply::ErrorText(text) => Err(error_table(lua, &text)?),
        reply => Ok(value(lua, reply)?),
    })
}

/// The `{err=text}` table of an error reply.
pub(super) fn error_table(lua: &Lua, text: &str) -> mlua::Result<Value> {
    let table = lua.create_table_with_capacity(0, 1)?;
    table.raw_set("err", text)?;
    Ok(Value::Table(table))
}

fn status_table(lua: &Lua, text: &str) -> mlua::Result<Value> {
    let table = lua.create_table_with_capacity(0, 1)?;
    table.raw_set("ok", text)?;
    Ok(Value::Table(table))
}

fn array(lua: &Lua, items: impl ExactSizeIterator<Item = Reply>) -> mlua::Result<Value> {
    let table = lua.create_table_with_capacity(items.len(), 0)?;
    for (index, item) in items.enumerate() {
        // An error inside an array (EXEC-like replies) is its table, as Redis passes it.
        let item = match reply_to_lua(lua, item)? {
            Ok(item) | Err(item) => item,
        };
        table.raw_set(index + 1, item)?;
    }
    Ok(Value::Table(table))
}

fn value(lua: &Lua, reply: Reply) -> mlua::Result<Value> {
    let bulk = |bytes: &[u8]| lua.create_string(bytes).map(Value::String);
    match reply {
        Reply::Ok => status_table(lua, "OK"),
        Reply::Status(text) => status_table(lua, text),
        Reply::StatusText(text) => status_table(lua, &text),
        Reply::Nil | Reply::NilArray => Ok(Value::Boolean(false)),
        Reply::Integer(n) => Ok(Value::Number(n as f64)),
        Reply::Bulk(bytes) => bulk(&bytes),
        Reply::Double(score) => bulk(format_double(score.0).as_bytes()),
        Reply::Array(items) | Reply::Set(items) => array(lua, items.into_iter()),
        Reply::Map(pairs) | Reply::Pairs(pairs) => {
            array(lua, pairs.into_iter().flat_map(|(a, b)| [a, b]).collect::<Vec<_>>().into_iter())
        }
        Reply::Scan { cursor, keys } => {
            let keys = keys.into_iter().map(Reply::Bulk).collect::<Vec<_>>();
            array(lua, vec![Reply::Bulk(cursor.to_string().into_bytes()), Reply::Array(keys)].into_iter())
        }
        Reply::Error(error) => error_table(lua, error.message()),
        Reply::ErrorText(text) => error_table(lua, &text),
        Reply::Locked(holder) => error_table(lua, &holder.message()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(lua: &Lua, source: &str) -> Reply {
        to_reply(lua.load(source).eval::<Value>().unwrap())
    }

    #[test]
    fn lua_values_become_replies_as_redis_converts_them() {
        let lua = Lua::new();
        assert_eq!(eval(&lua, "return 3.99"), Reply::Integer(3));
        assert_eq!(eval(&lua, "return -3.99"), Reply::Integer(-3));
        assert_eq!(eval(&lua, "return 'x'"), Reply::Bulk(b"x".to_vec()));
        assert_eq!(eval(&lua, "return true"), Reply::Integer(1));
        assert_eq!(eval(&lua, "return false"), Reply::Nil);
        assert_eq!(eval(&lua, "return nil"), Reply::Nil);
        let nested = Reply::Array(vec![Reply::Integer(1), Reply::Array(vec![Reply::Bulk(b"a".to_vec())])]);
        assert_eq!(eval(&lua, "return {1, {'a'}, nil, 4}"), nested, "arrays end at the first nil");
        assert_eq!(eval(&lua, "return {ok='FINE'}"), Reply::StatusText("FINE".into()));
        assert_eq!(eval(&lua, "return {err='-MY bad'}"), Reply::ErrorText("MY bad".into()));
        assert_eq!(eval(&lua, "return {err='MY bad', ok='x'}"), Reply::ErrorText("MY bad".into()));
        assert_eq!(
            eval(&lua, "local t = {} t[1] = t return t"),
            Reply::ErrorText("ERR reached lua stack limit".into())
        );
    }

    #[test]
    fn replies_become_lua_values_as_redis_converts_them() {
        let lua = Lua::new();
        let convert = |reply: Reply| -> Reply {
            let value = match reply_to_lua(&lua, reply).unwrap() {
                Ok(value) | Err(value) => value,
            };
            lua.globals().set("v", value).unwrap();
            eval(&lua, "if v == false then return 'false' end if type(v) == 'table' and v.ok then return 'ok:'..v.ok end if type(v) == 'table' and v.err then return 'err:'..v.err end return v")
        };
        assert_eq!(convert(Reply::Nil), Reply::Bulk(b"false".to_vec()));
        assert_eq!(convert(Reply::Ok), Reply::Bulk(b"ok:OK".to_vec()));
        assert_eq!(
            convert(Reply::Error(KvError::WrongType)),
            Reply::Bulk(format!("err:{}", KvError::WrongType).into_bytes())
        );
        assert_eq!(convert(Reply::Integer(7)), Reply::Integer(7));
        assert_eq!(convert(Reply::Double(crate::kv::types::Score(1.5))), Reply::Bulk(b"1.5".to_vec()));
        let map = Reply::Map(vec![(Reply::Bulk(b"f".to_vec()), Reply::Bulk(b"v".to_vec()))]);
        assert_eq!(convert(map), Reply::Array(vec![Reply::Bulk(b"f".to_vec()), Reply::Bulk(b"v".to_vec())]));
    }
}

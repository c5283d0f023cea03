//! The `redis` library of Redis 7's scripting environment (besides `redis.call` and
//! `redis.pcall`, installed by `sandbox.lua`), `cjson`, and a deterministic `math.random`.
//!
//! - `redis.sha1hex`, `redis.error_reply`, `redis.status_reply`, `redis.log` (to tracing, at
//!   the matching level), the `LOG_*` and `REPL_*` constants and the version fields.
//! - `redis.setresp(2)` only: scripts speak RESP2; `redis.set_repl`, `redis.replicate_commands`
//!   and `redis.debug` change nothing (PPDB replicates the script itself), `redis.breakpoint`
//!   answers false.
//! - `math.random` and `math.randomseed`: a generator seeded from the entry's log index at the
//!   start of each run, the same on every replica (Lua's own reads the C library's `rand`).
//! - `cjson.encode` and `cjson.decode` through serde_json: objects are written with their keys
//!   sorted, a table whose keys are 1..n is an array, an empty table is `{}`, JSON's null is
//!   `cjson.null`.

use mlua::{LightUserData, Lua, MultiValue, Table, Value, Variadic};

use super::convert::error_table;
use super::engine::RunState;

/// The Redis version scripts see, as INFO reports it.
const REDIS_VERSION: &str = "7.2.0";
const REDIS_VERSION_NUM: u32 = 0x0007_0200;

/// How deep cjson nests, as lua-cjson's default.
const JSON_DEPTH_MAX: usize = 1000;

/// Installs `redis`, `cjson` and the deterministic `math.random` into the state's globals.
pub(super) fn install_library(lua: &Lua, globals: &Table) -> mlua::Result<()> {
    let redis = lua.create_table()?;
    redis.raw_set(
        "sha1hex",
        lua.create_function(|_, text: mlua::String| {
            Ok(sha1_smol::Sha1::from(&text.as_bytes()[..]).digest().to_string())
        })?,
    )?;
    redis.raw_set(
        "error_reply",
        lua.create_function(|lua, text: mlua::String| error_table(lua, &text.to_string_lossy()))?,
    )?;
    redis.raw_set(
        "status_reply",
        lua.create_function(|lua, text: mlua::String| {
            let table = lua.create_table()?;
            table.raw_set("ok", text)?;
            Ok(table)
        })?,
    )?;
    redis.raw_set("log", lua.create_function(log)?)?;
    redis.raw_set(
        "setresp",
        lua.create_function(|_, version: i64| match version {
            2 => Ok(()),
            _ => Err(mlua::Error::RuntimeError("RESP version must be 2: PPDB's scripts speak RESP2".into())),
        })?,
    )?;
    redis.raw_set("set_repl", lua.create_function(|_, _: MultiValue| Ok(()))?)?;
    redis.raw_set("replicate_commands", lua.create_function(|_, ()| Ok(true))?)?;
    redis.raw_set("breakpoint", lua.create_function(|_, ()| Ok(false))?)?;
    redis.raw_set("debug", lua.create_function(|_, _: MultiValue| Ok(()))?)?;
    for (name, value) in [("LOG_DEBUG", 0), ("LOG_VERBOSE", 1), ("LOG_NOTICE", 2), ("LOG_WARNING", 3)] {
        redis.raw_set(name, value)?;
    }
    for (name, value) in
        [("REPL_NONE", 0), ("REPL_AOF", 1), ("REPL_SLAVE", 2), ("REPL_REPLICA", 2), ("REPL_ALL", 3)]
    {
        redis.raw_set(name, value)?;
    }
    redis.raw_set("REDIS_VERSION", REDIS_VERSION)?;
    redis.raw_set("REDIS_VERSION_NUM", REDIS_VERSION_NUM)?;
    globals.raw_set("redis", redis)?;

    let math: Table = globals.raw_get("math")?;
    math.raw_set("random", lua.create_function(random)?)?;
    math.raw_set(
        "randomseed",
        lua.create_function(|lua, seed: f64| {
            if let Some(mut run) = lua.app_data_mut::<RunState>() {
                run.random = seed as i64 as u64;
            }
            Ok(())
        })?,
    )?;

    let cjson = lua.create_table()?;
    cjson.raw_set("null", Value::LightUserData(LightUserData(std::ptr::null_mut())))?;
    cjson.raw_set("encode", lua.create_function(|_, value: Value| encode_json(&value))?)?;
    cjson.raw_set(
        "decode",
        lua.create_function(|lua, text: mlua::String| decode_json(lua, &text.as_bytes()))?,
    )?;
    globals.raw_set("cjson", cjson)
}

/// `redis.log(level, message, ...)`: the message parts joined by spaces, to tracing.
fn log(_: &Lua, (level, parts): (i64, Variadic<mlua::String>)) -> mlua::Result<()> {
    let message = parts.iter().map(|part| part.to_string_lossy()).collect::<Vec<_>>().join(" ");
    match level {
        0 => tracing::debug!(target: "ppdb::script", "{message}"),
        1 => tracing::debug!(target: "ppdb::script", "{message}"),
        2 => tracing::info!(target: "ppdb::script", "{message}"),
        3 => tracing::warn!(target: "ppdb::script", "{message}"),
        _ => return Err(mlua::Error::RuntimeError("Invalid debug level.".into())),
    }
    Ok(())
}

/// The next number of the run's generator (splitmix64), in `[0, 1)`.
fn next_random(lua: &Lua) -> f64 {
    let Some(mut run) = lua.app_data_mut::<RunState>() else { return 0.0 };
    run.random = run.random.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = run.random;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// `math.random([m [, n]])` as Lua 5.1 defines it, from the run's generator.
fn random(lua: &Lua, bounds: (Option<f64>, Option<f64>)) -> mlua::Result<f64> {
    let r = next_random(lua);
    let (low, high) = match bounds {
        (None, _) => return Ok(r),
        (Some(m), None) => (1.0, m.floor()),
        (Some(m), Some(n)) => (m.floor(), n.floor()),
    };
    if low > high {
        return Err(mlua::Error::RuntimeError("bad argument to 'random' (interval is empty)".into()));
    }
    Ok((r * (high - low + 1.0)).floor() + low)
}

fn encode_json(value: &Value) -> mlua::Result<String> {
    let json = to_json(value, 0)?;
    serde_json::to_string(&json).map_err(mlua::Error::external)
}

fn to_json(value: &Value, depth: usize) -> mlua::Result<serde_json::Value> {
    use serde_json::Value as Json;
    if depth > JSON_DEPTH_MAX {
        return Err(mlua::Error::RuntimeError("Cannot serialise, excessive nesting".into()));
    }
    Ok(match value {
        Value::Nil => Json::Null,
        Value::LightUserData(data) if data.0.is_null() => Json::Null,
        Value::Boolean(b) => Json::Bool(*b),
        Value::Integer(n) => Json::from(*n),
        Value::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => Json::from(*n as i64),
        Value::Number(n) => serde_json::Number::from_f64(*n).map(Json::Number).ok_or_else(|| {
            mlua::Error::RuntimeError("Cannot serialise number: must not be NaN or Inf".into())
        })?,
        Value::String(text) => Json::String(text.to_string_lossy()),
        Value::Table(table) => {
            let length = table.raw_len();
            let pairs = table.clone().pairs::<Value, Value>().count();
            if length > 0 && pairs == length {
                let items =
                    (1..=length).map(|i| table.raw_get::<Value>(i).and_then(|v| to_json(&v, depth + 1)));
                Json::Array(items.collect::<mlua::Result<_>>()?)
            } else {
                let mut object = serde_json::Map::new();
                for pair in table.clone().pairs::<Value, Value>() {
                    let (key, value) = pair?;
                    let key = match key {
                        Value::String(text) => text.to_string_lossy(),
                        Value::Integer(n) => n.to_string(),
                        Value::Number(n) => n.to_string(),
                        _ => {
                            return Err(mlua::Error::RuntimeError(
                                "Cannot serialise table: table key must be a number or string".into(),
                            ))
                        }
                    };
                    object.insert(key, to_json(&value, depth + 1)?);
                }
                Json::Object(object)
            }
        }
        other => {
            return Err(mlua::Error::RuntimeError(format!(
                "Cannot serialise {}: type not supported",
                other.type_name()
            )))
        }
    })
}

fn decode_json(lua: &Lua, text: &[u8]) -> mlua::Result<Value> {
    let json: serde_json::Value = serde_json::from_slice(text)
        .map_err(|e| mlua::Error::RuntimeError(format!("Expected value but found invalid token: {e}")))?;
    from_json(lua, &json, 0)
}

fn from_json(lua: &Lua, json: &serde_json::Value, depth: usize) -> mlua::Result<Value> {
    use serde_json::Value as Json;
    if depth > JSON_DEPTH_MAX {
        return Err(mlua::Error::RuntimeError("Found too many nested data structures".into()));
    }
    Ok(match json {
        Json::Null => Value::LightUserData(LightUserData(std::ptr::null_mut())),
        Json::Bool(b) => Value::Boolean(*b),
        Json::Number(n) => Value::Number(n.as_f64().unwrap_or(0.0)),
        Json::String(s) => Value::String(lua.create_string(s)?),
        Json::Array(items) => {
            let table = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.iter().enumerate() {
                table.raw_set(i + 1, from_json(lua, item, depth + 1)?)?;
            }
            Value::Table(table)
        }
        Json::Object(object) => {
            let table = lua.create_table_with_capacity(0, object.len())?;
            for (key, value) in object {
                table.raw_set(key.as_str(), from_json(lua, value, depth + 1)?)?;
            }
            Value::Table(table)
        }
    })
}

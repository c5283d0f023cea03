//! `redis.call` and `redis.pcall`: a script's command, parsed by the RESP server's parser and
//! applied to the shard's key space at the entry's time, inside the entry being applied.
//!
//! Refused, with Redis 7's words: commands flagged `noscript` (blocking pops, MULTI, WATCH,
//! CLIENT, ...), unknown commands, wrong arities, commands and keys the calling user may not
//! use ([`super::access`]), arguments other than strings and numbers, and writes from a
//! read-only script (EVAL_RO, FCALL_RO, a `no-writes` function). PPDB's own refusal: a key on another shard
//! than the script's, in Redis Cluster's words (`ERR Script attempted to access a non local
//! key in a cluster node`). Of the connection commands, PING, ECHO, SELECT 0 and TIME (the
//! entry's time) answer; the others are refused.

use std::ffi::c_int;

use bytes::Bytes;
use mlua::{ffi, Lua, MultiValue, Value};

use super::convert::{error_table, reply_to_lua};
use super::engine::{RunState, CALL_INSTRUCTIONS, LUA_MEMORY_BYTES_MAX};
use crate::kv::{Reply, TxnStep};
use crate::server::resp::command::{table, Command};
use crate::server::resp::Frame;

/// Where [`raw_call`] is kept in the Lua registry, for [`host_call`].
pub(super) const RAW_CALL_KEY: &str = "ppdb.raw_call";

/// Where [`lent_call`] is kept in the Lua registry, for [`host_call`].
pub(super) const LENT_CALL_KEY: &str = "ppdb.lent_call";

/// The most arguments [`host_call`] lends [`lent_call`]; a call with more goes through
/// [`raw_call`], which takes any number.
const LENT_ARGS_MAX: usize = 16;

/// One argument of a `redis.call`, a Lua string left on the caller's stack, lent as its bytes.
#[derive(Clone, Copy)]
struct LentArg {
    ptr: *const u8,
    len: usize,
}

/// The arguments [`host_call`] lends [`lent_call`] as a light userdata: plain data, valid while
/// the `host_call` that made them waits for `lent_call`'s answer.
struct LentArgs {
    items: [LentArg; LENT_ARGS_MAX],
    count: usize,
}

/// `redis.call`: [`host_call`], raising the error table of an error reply. A C function rather
/// than a Lua one, so that `return redis.call(...)` is no tail call: the script's frame, and
/// its line in the error, stays on the stack.
///
/// # Safety
///
/// Called by Lua only, on a state whose registry holds [`raw_call`] at [`RAW_CALL_KEY`] and
/// [`lent_call`] at [`LENT_CALL_KEY`].
pub(super) unsafe extern "C-unwind" fn redis_call(state: *mut ffi::lua_State) -> c_int {
    host_call(state);
    if ffi::lua_toboolean(state, -2) != 0 {
        return 1;
    }
    // Redis 7 raises the error's text, which a pcall around redis.call receives.
    ffi::lua_getfield(state, -1, c"err".as_ptr());
    ffi::lua_error(state)
}

/// `(true, reply)` or `(false, {err=text})` for the command its arguments name, as
/// [`raw_call`] answers, which `redis.pcall` returns and [`redis_call`] raises.
///
/// The arguments go to the host without a Lua value made for each in Rust (each of which is a
/// reference the binding locks to make and to drop): numbers become their text on the stack
/// (Lua's `%.14g`, integral ones written here), and up to [`LENT_ARGS_MAX`] strings are lent to
/// [`lent_call`] as pointers into the Lua strings, which stay on this function's stack, out of
/// the collector's reach, until it answers. Other calls (no arguments, too many, an argument
/// neither string nor number) go to [`raw_call`] as they came, which answers them as before.
///
/// Nothing here owns memory to free: a Lua error raised through this frame (by the callee, or
/// by Lua running out of memory for a number's text) skips nothing but plain data.
///
/// # Safety
///
/// Called by Lua only, on a state whose registry holds [`raw_call`] at [`RAW_CALL_KEY`] and
/// [`lent_call`] at [`LENT_CALL_KEY`].
pub(super) unsafe extern "C-unwind" fn host_call(state: *mut ffi::lua_State) -> c_int {
    let count = ffi::lua_gettop(state);
    let mut lent = LentArgs { items: [LentArg { ptr: std::ptr::null(), len: 0 }; LENT_ARGS_MAX], count: 0 };
    let mut lendable = count >= 1 && usize::try_from(count).is_ok_and(|count| count <= LENT_ARGS_MAX);
    if lendable {
        for (slot, index) in lent.items.iter_mut().zip(1..=count) {
            match ffi::lua_type(state, index) {
                ffi::LUA_TSTRING => {}
                ffi::LUA_TNUMBER => number_to_text(state, index),
                _ => {
                    lendable = false;
                    break;
                }
            }
            let mut len = 0;
            let ptr = ffi::lua_tolstring(state, index, &mut len);
            *slot = LentArg { ptr: ptr.cast(), len };
            lent.count += 1;
        }
    }
    if lendable {
        ffi::lua_getfield(state, ffi::LUA_REGISTRYINDEX, c"ppdb.lent_call".as_ptr());
        ffi::lua_pushlightuserdata(state, std::ptr::addr_of_mut!(lent).cast());
        ffi::lua_call(state, 1, 2);
    } else {
        ffi::lua_getfield(state, ffi::LUA_REGISTRYINDEX, c"ppdb.raw_call".as_ptr());
        ffi::lua_insert(state, 1);
        ffi::lua_call(state, count, 2);
    }
    2
}

/// Replaces the number at `index` by its text, as Lua's `tostring` writes it (`%.14g`):
/// integral numbers below [`INTEGRAL_TEXT_MAX`] as their digits, written here.
///
/// # Safety
///
/// `index` holds a number on `state`'s stack; Lua may raise a memory error.
unsafe fn number_to_text(state: *mut ffi::lua_State, index: c_int) {
    let number = ffi::lua_tonumber(state, index);
    if !is_integral_text(number) {
        // Converts the value in place.
        ffi::lua_tolstring(state, index, std::ptr::null_mut());
        return;
    }
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    let mut rest = (number as i64).unsigned_abs();
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if number < 0.0 {
        start -= 1;
        digits[start] = b'-';
    }
    ffi::lua_pushlstring(state, digits[start..].as_ptr().cast(), digits.len() - start);
    ffi::lua_replace(state, index);
}

/// The host function behind [`host_call`] for the arguments it lends: answers as [`raw_call`].
pub(super) fn lent_call(lua: &Lua, lent: mlua::LightUserData) -> mlua::Result<(bool, Value)> {
    let lent = lent.0 as *const LentArgs;
    // SAFETY: only `host_call` calls this (it is kept in the registry, out of scripts' reach),
    // passing its `LentArgs`, alive until this returns; each item points to a Lua string its
    // stack holds meanwhile, so the collector frees none of them.
    let args: Vec<Bytes> = match unsafe { lent.as_ref() } {
        Some(lent) => lent.items[..lent.count.min(LENT_ARGS_MAX)]
            .iter()
            .map(|arg| Bytes::copy_from_slice(unsafe { std::slice::from_raw_parts(arg.ptr, arg.len) }))
            .collect(),
        None => return Err(mlua::Error::RuntimeError("no lent arguments".into())),
    };
    answer(lua, run(lua, &args))
}

/// What a run's KEYS and ARGV are made from, lent to the Lua runner for the run as a light
/// userdata: [`unpack_items`] makes the two tables inside Lua, so the strings are made by Lua's
/// own calls, not one protected call each through the binding.
pub(super) struct CallItems<'a> {
    /// KEYS.
    pub keys: &'a [Vec<u8>],
    /// ARGV.
    pub args: &'a [Vec<u8>],
}

impl CallItems<'_> {
    /// The items as the light userdata `unpack_items` reads; valid while `self` lives.
    pub fn lent(&self) -> mlua::LightUserData {
        mlua::LightUserData(self as *const CallItems<'_> as *mut std::ffi::c_void)
    }
}

/// `unpack_items(items)`: KEYS and ARGV, as two new tables, from the [`CallItems`] lent.
///
/// # Safety
///
/// Called by Lua only, from `sandbox.lua`'s runners (scripts cannot reach it), with a light
/// userdata from [`CallItems::lent`] of items that outlive the call. A memory error raised by
/// Lua leaves this frame, which holds nothing to drop.
pub(super) unsafe extern "C-unwind" fn unpack_items(state: *mut ffi::lua_State) -> c_int {
    let items = ffi::lua_touserdata(state, 1) as *const CallItems<'_>;
    // SAFETY: the runners pass what `CallItems::lent` made, alive for the whole run.
    let Some(items) = (unsafe { items.as_ref() }) else {
        ffi::lua_pushstring(state, c"no call items".as_ptr());
        ffi::lua_error(state)
    };
    for list in [items.keys, items.args] {
        ffi::lua_createtable(state, c_int::try_from(list.len()).unwrap_or(0), 0);
        for (index, item) in list.iter().enumerate() {
            ffi::lua_pushlstring(state, item.as_ptr().cast(), item.len());
            ffi::lua_rawseti(
                state,
                -2,
                ffi::lua_Integer::try_from(index + 1).unwrap_or(ffi::lua_Integer::MAX),
            );
        }
    }
    2
}

/// The host function behind both: `(true, reply)`, or `(false, {err=text})` for an error,
/// which `redis.pcall` returns and `redis.call` raises as its text (as Redis 7 does).
pub(super) fn raw_call(lua: &Lua, args: MultiValue) -> mlua::Result<(bool, Value)> {
    let outcome = arguments(lua, args).and_then(|args| run(lua, &args));
    answer(lua, outcome)
}

/// What [`raw_call`] and [`lent_call`] return for a command's outcome.
fn answer(lua: &Lua, outcome: Result<Reply, String>) -> mlua::Result<(bool, Value)> {
    let text = match outcome {
        Ok(Reply::Error(error)) => error.message().to_owned(),
        Ok(Reply::ErrorText(text)) | Err(text) => text,
        Ok(reply) => {
            return Ok(match reply_to_lua(lua, reply)? {
                Ok(value) => (true, value),
                Err(error) => (false, error),
            })
        }
    };
    // Should redis.call raise it and nothing catch it, the script's error is this reply.
    if let Some(mut run) = lua.app_data_mut::<RunState>() {
        run.call_error = Some(text.clone());
    }
    Ok((false, error_table(lua, &text)?))
}

/// Below this, an integral number is written by Lua's `%.14g` as its digits alone, as Rust
/// writes an `i64`.
const INTEGRAL_TEXT_MAX: f64 = 1e14;

/// Whether Lua writes `n` as the digits of an integer: such numbers (most arguments that are
/// numbers) are written here, without a protected call into Lua.
fn is_integral_text(n: f64) -> bool {
    n.fract() == 0.0 && n.abs() < INTEGRAL_TEXT_MAX && !(n == 0.0 && n.is_sign_negative())
}

/// The command's arguments: strings, or numbers as Lua writes them (`5.5`, `1e+20`).
fn arguments(lua: &Lua, args: MultiValue) -> Result<Vec<Bytes>, String> {
    if args.is_empty() {
        return Err("ERR Please specify at least one argument for this redis lib call".into());
    }
    args.into_iter()
        .map(|arg| match arg {
            Value::String(text) => Ok(Bytes::copy_from_slice(&text.as_bytes())),
            Value::Integer(n) if (n as f64).abs() < INTEGRAL_TEXT_MAX => Ok(Bytes::from(n.to_string())),
            Value::Number(n) if is_integral_text(n) => Ok(Bytes::from((n as i64).to_string())),
            number @ (Value::Number(_) | Value::Integer(_)) => match lua.coerce_string(number) {
                Ok(Some(text)) => Ok(Bytes::copy_from_slice(&text.as_bytes())),
                _ => Err(String::new()),
            },
            _ => Err(String::new()),
        })
        .collect::<Result<_, _>>()
        .map_err(|_| "ERR Lua redis lib command arguments must be strings or integers".into())
}

/// Parses and applies one command; `Err` is an error reply's text.
fn run(lua: &Lua, args: &[Bytes]) -> Result<Reply, String> {
    let spec = table::lookup(&args[0]).ok_or("ERR Unknown Redis command called from script")?;
    if spec.flags.contains(&"noscript") {
        return Err("ERR This Redis command is not allowed from script".into());
    }
    if !spec.arity_ok(args.len()) {
        return Err("ERR Wrong number of args calling Redis command from script".into());
    }
    let mut run = lua.app_data_mut::<RunState>().ok_or("ERR internal: no script is running")?;
    if let Some(refusal) = run.access.as_ref().and_then(|access| access.refusal(spec, args)) {
        return Err(refusal);
    }
    let command = Command::parse_known(spec, args).map_err(|e| e.to_string())?;
    run.instructions += CALL_INSTRUCTIONS;
    let scope = run.call;
    let step = match command {
        Command::Read(read) => TxnStep::Read(read),
        Command::Write(_) if scope.read_only => {
            return Err("ERR Write commands are not allowed from read-only scripts.".into())
        }
        Command::Write(write) => {
            // Resolving checks the write's times as `check_times` does, with the same errors.
            let resolved = write.into_resolved(scope.now_ms);
            TxnStep::Write(resolved.map_err(|e| error_text(&Frame::from(&e)))?.op)
        }
        Command::Ping(None) => return Ok(Reply::Status("PONG")),
        Command::Ping(Some(text)) | Command::Echo(text) => return Ok(Reply::Bulk(text.to_vec())),
        Command::Select => return Ok(Reply::Ok),
        Command::Time => return Ok(time(scope.now_ms)),
        _ => return Err("ERR This Redis command is not allowed from script".into()),
    };
    // With one shard every key is shard 1's: only a script on another shard (or in a cluster
    // of several) has keys to check.
    let every_key_local = scope.router.shard_count() == 1 && scope.shard == 1;
    if !every_key_local && step.keys().iter().any(|key| scope.router.shard_of(key).0 != scope.shard) {
        return Err("ERR Script attempted to access a non local key in a cluster node".into());
    }
    Ok(run.store.apply_step(&step, LUA_MEMORY_BYTES_MAX as u64))
}

/// TIME inside a script: the entry's time, so every replica reads the same.
fn time(now_ms: u64) -> Reply {
    let seconds = (now_ms / 1000).to_string().into_bytes();
    let micros = ((now_ms % 1000) * 1000).to_string().into_bytes();
    Reply::Array(vec![Reply::Bulk(seconds), Reply::Bulk(micros)])
}

fn error_text(frame: &Frame) -> String {
    match frame {
        Frame::Error(text) => text.clone(),
        other => format!("ERR {other:?}"),
    }
}

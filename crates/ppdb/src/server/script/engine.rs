//! A shard's Lua state and one run of a script in it.
//!
//! The state is made once per shard, on the first script, and kept: compiled scripts are
//! cached in it by body ([`COMPILED_SCRIPTS_MAX`]). What a script could leave behind for the
//! next one is closed off (`sandbox.lua`): globals and libraries are read-only as in Redis 7,
//! KEYS and ARGV are set per run, raw writes into read-only tables are swept after each run,
//! and the random generator is reseeded from the entry. So a replica that made its state
//! afresh (after a restart) runs every script as one that kept its state does.
//!
//! During a run the shard's key space is lent to the state (`RunState`): `redis.call`
//! ([`super::call`]) applies each command to it at the entry's time, and the count hook charges
//! the run's instructions against [`SCRIPT_INSTRUCTIONS_MAX`].

use std::collections::BTreeMap;

use mlua::{Function, HookTriggers, Lua, LuaOptions, MultiValue, StdLib, Table, Value, VmState};

use super::call::{
    host_call, lent_call, raw_call, redis_call, unpack_items, CallItems, LENT_CALL_KEY, RAW_CALL_KEY,
};
use super::convert::to_reply;
use super::library::install_library;
use crate::functions::{metadata, FunctionFlags, FunctionInfo, Library, FUNCTIONS_PER_LIBRARY_MAX};
use crate::kv::{KvStore, Reply, ScriptCall};
use crate::node::{KeyRouting, Router};

/// Lua instructions one script may run, each `redis.call` counting [`CALL_INSTRUCTIONS`]: the
/// same on every replica, so an endless script stops at the same instruction everywhere.
pub const SCRIPT_INSTRUCTIONS_MAX: u64 = 10_000_000;

/// What one `redis.call` or `redis.pcall` costs of the budget, in instructions: the command's
/// work is done outside Lua, and an endless loop of calls must end as soon as one of Lua alone.
pub const CALL_INSTRUCTIONS: u64 = 500;

/// The count hook runs every this many instructions: the budget's granularity.
const HOOK_INSTRUCTIONS: u32 = 1_000;

/// The most memory a shard's Lua state may take, in bytes: a script that needs more fails.
pub const LUA_MEMORY_BYTES_MAX: usize = 128 * 1024 * 1024;

/// Compiled scripts a shard keeps; past it the cache starts over (a cache only: a script is
/// compiled again from the body its entry carries).
pub const COMPILED_SCRIPTS_MAX: usize = 512;

/// Lua's collector pause, in percent of the heap the last cycle kept.
const GC_PAUSE_PERCENT: std::ffi::c_int = 1000;

/// The chunk name scripts compile under, as Redis names them in errors (`user_script:1:`).
const CHUNK_NAME: &str = "@user_script";

/// The chunk name function libraries compile under (`user_function:2:`).
const LIBRARY_CHUNK_NAME: &str = "@user_function";

/// What a run lends the Lua state, reached by the host functions through its app data.
pub(super) struct RunState {
    /// The shard's key space, lent for the run.
    pub store: KvStore,
    /// The call being run (its shard, read-only flag).
    pub call: CallScope,
    /// Instructions run so far.
    pub instructions: u64,
    /// Whether the budget is spent: every pcall raises again from then on.
    pub budget_spent: bool,
    /// The deterministic generator behind math.random, seeded from the entry.
    pub random: u64,
    /// The failure the error handler saw: its text and the script's line.
    pub failure: Option<Failure>,
    /// The text of the last error reply `redis.call` raised, to tell it from a Lua error.
    pub call_error: Option<String>,
    /// The calling user's permissions, when restricted.
    pub access: Option<std::sync::Arc<super::access::Access>>,
}

/// The parts of a call that `redis.call` checks.
#[derive(Debug, Clone, Copy)]
pub(super) struct CallScope {
    /// The shard the script runs on.
    pub shard: u64,
    /// How the cluster routed keys when the call was made.
    pub router: Router,
    /// EVAL_RO, FCALL_RO, or a `no-writes` function: writes are refused.
    pub read_only: bool,
    /// The entry's time, ms since the Unix epoch.
    pub now_ms: u64,
}

/// Why a script stopped with an error, as the error handler saw it.
#[derive(Debug, Clone)]
pub(super) struct Failure {
    /// The error text, its code first where it has one.
    pub text: String,
    /// Whether the text came from an error reply (`{err=...}`) rather than a Lua error string.
    pub is_reply: bool,
    /// The script's line where it failed.
    pub line: Option<usize>,
}

/// A shard's Lua state, made on first use.
#[derive(Default)]
pub struct ScriptEngine {
    state: Option<LuaState>,
    /// An empty key space standing in for the shard's while a run borrows it: made once, as
    /// an empty key table is not free to make.
    stand_in: Option<KvStore>,
    /// The restricted users' permissions the shard's calls carried, rebuilt once each.
    access: super::access::AccessCache,
}

impl std::fmt::Debug for ScriptEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptEngine")
            .field("compiled", &self.state.as_ref().map_or(0, |s| s.compiled.len()))
            .finish()
    }
}

struct LuaState {
    lua: Lua,
    env: Table,
    /// `sandbox.lua`'s runner: sets KEYS and ARGV, runs a script, cleans up.
    run: Function,
    /// `sandbox.lua`'s loader of a library: what it registers.
    load_library: Function,
    /// `sandbox.lua`'s FCALL: loads a library and calls one of its functions.
    call_function: Function,
    /// Compiled scripts, by body.
    compiled: BTreeMap<Vec<u8>, Function>,
    /// Compiled libraries, by source.
    libraries: BTreeMap<Vec<u8>, Function>,
}

/// Where a failing run's code came from, as its error names it.
enum Origin<'a> {
    /// EVAL's script, named by its SHA1.
    Script(&'a [u8]),
    /// A library's function, named by its name.
    Function(&'a str),
}

impl ScriptEngine {
    /// Runs `call` as log entry `index` (already begun on `store` at `now_ms`: see
    /// [`KvStore::begin_entry`]) and returns the script's reply. Writes done before an error
    /// stay, as in Redis.
    pub fn run(&mut self, store: &mut KvStore, call: &ScriptCall, index: u64, now_ms: u64) -> Reply {
        let access = call.access.as_ref().map(|access| self.access.get(access));
        let state = match state_of(&mut self.state) {
            Ok(state) => state,
            Err(reply) => return reply,
        };
        let routing = if call.hash_slots { KeyRouting::HashSlots } else { KeyRouting::Crc32cModulo };
        let router = Router::new(routing, call.shards);
        let scope = CallScope { shard: call.shard, router, read_only: call.read_only, now_ms };
        let stand_in = self.stand_in.take().unwrap_or_default();
        let run = RunState {
            store: std::mem::replace(store, stand_in),
            call: scope,
            instructions: 0,
            budget_spent: false,
            random: index,
            failure: None,
            call_error: None,
            access,
        };
        state.begin(run);
        let reply = match &call.function {
            None => state.execute(call),
            Some(name) => state.execute_function(call, &String::from_utf8_lossy(name)),
        };
        // Set by `begin` and taken nowhere else: the shard's key space comes back here.
        let run = state.lua.remove_app_data::<RunState>().expect("the run's state outlives the run");
        self.stand_in = Some(std::mem::replace(store, run.store));
        reply
    }

    /// What loading the library `source` registers, as FUNCTION LOAD finds it on the node it
    /// reached before proposing the library; `Err` is Redis's error text.
    pub fn describe_library(&mut self, source: &[u8]) -> Result<Library, String> {
        let metadata = metadata::parse(source).map_err(|e| format!("ERR {e}"))?;
        let state =
            state_of(&mut self.state).map_err(|_| "ERR cannot start the Lua interpreter".to_owned())?;
        let chunk = state.library(source)?;
        state.begin(RunState {
            store: KvStore::default(),
            call: CallScope {
                shard: 1,
                router: Router::new(KeyRouting::HashSlots, 1),
                read_only: true,
                now_ms: 0,
            },
            instructions: 0,
            budget_spent: false,
            random: 0,
            failure: None,
            call_error: None,
            access: None,
        });
        let loaded = state.load_library.call::<(bool, Value)>(chunk);
        let failure = state.failure_text();
        state.lua.remove_app_data::<RunState>();
        let registered = match loaded {
            Ok((true, Value::Table(registered))) => registered,
            Ok((_, error)) => {
                return Err(format!("ERR Error registering functions: {}", failure(Some(error))))
            }
            Err(e) => {
                return Err(format!(
                    "ERR Error registering functions: {}",
                    failure(Some(Value::Error(Box::new(e))))
                ))
            }
        };
        let functions = described_functions(&registered).map_err(|e| format!("ERR {e}"))?;
        if functions.len() > FUNCTIONS_PER_LIBRARY_MAX {
            return Err(format!("ERR a library registers at most {FUNCTIONS_PER_LIBRARY_MAX} functions"));
        }
        Ok(Library { name: metadata.name, source: source.to_vec(), functions })
    }
}

/// The shard's Lua state, made on first use; `Err` is the reply when it cannot be made.
fn state_of(slot: &mut Option<LuaState>) -> Result<&mut LuaState, Reply> {
    match slot {
        Some(state) => Ok(state),
        empty => match LuaState::new() {
            Ok(state) => Ok(empty.insert(state)),
            Err(e) => Err(Reply::ErrorText(format!("ERR cannot start the Lua interpreter: {e}"))),
        },
    }
}

/// The functions a loaded library registered, sorted by name.
fn described_functions(registered: &Table) -> mlua::Result<Vec<FunctionInfo>> {
    let names: Table = registered.raw_get("names")?;
    let functions: Table = registered.raw_get("functions")?;
    let mut described = Vec::new();
    for name in names.sequence_values::<mlua::String>() {
        let name = name?;
        let function: Table = functions.raw_get(name.clone())?;
        let flags: i64 = function.raw_get("flags")?;
        let description: Option<mlua::String> = function.raw_get("description")?;
        described.push(FunctionInfo {
            name: name.to_string_lossy(),
            description: description.map(|d| d.as_bytes().to_vec()),
            flags: FunctionFlags(u8::try_from(flags).unwrap_or_default()),
        });
    }
    described.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(described)
}

/// `redis.call` and the host call behind `redis.pcall`: C functions finding `raw_call` and
/// `lent_call` in the registry.
fn call_functions(lua: &Lua) -> mlua::Result<(Function, Function)> {
    lua.set_named_registry_value(RAW_CALL_KEY, lua.create_function(raw_call)?)?;
    lua.set_named_registry_value(LENT_CALL_KEY, lua.create_function(lent_call)?)?;
    // SAFETY: both only use the Lua stack and the registry entries just set.
    unsafe { Ok((lua.create_c_function(host_call)?, lua.create_c_function(redis_call)?)) }
}

/// Whether `body` compiles, as SCRIPT LOAD checks it: `Err` is Redis's error text.
pub fn check_compiles(body: &[u8]) -> Result<(), String> {
    let lua = Lua::new_with(StdLib::NONE, LuaOptions::default()).map_err(|e| format!("ERR {e}"))?;
    match lua.load(body).set_name(CHUNK_NAME).set_mode(mlua::ChunkMode::Text).into_function() {
        Ok(_) => Ok(()),
        Err(e) => Err(format!("ERR Error compiling script (new function): {}", compile_message(&e))),
    }
}

impl LuaState {
    fn new() -> mlua::Result<LuaState> {
        let libs = StdLib::TABLE | StdLib::STRING | StdLib::MATH;
        let lua = Lua::new_with(libs, LuaOptions::default())?;
        lua.set_memory_limit(LUA_MEMORY_BYTES_MAX)?;
        // A cycle when the heap reaches 10 times what the last one kept (Lua's default: twice):
        // runs leave little behind (a few kilobytes), and each cycle walks every object, so
        // collecting a fifth as often takes most of the collector's share of a script's cost.
        // When it runs changes no reply (nothing a script can reach shows it, but weak tables:
        // docs/scripting.md).
        lua.gc_inc(GC_PAUSE_PERCENT, 0, 0);
        let globals = lua.globals();
        install_library(&lua, &globals)?;
        let budget_spent = lua.create_function(|lua, ()| {
            Ok(lua.app_data_ref::<RunState>().is_some_and(|run| run.budget_spent))
        })?;
        let handler = lua.create_function(error_handler)?;
        let no_writes = lua.create_function(|lua, ()| {
            if let Some(mut run) = lua.app_data_mut::<RunState>() {
                run.call.read_only = true;
            }
            Ok(())
        })?;
        // SAFETY: `unpack_items` only reads the `CallItems` its caller lends for the call.
        let unpack_items = unsafe { lua.create_c_function(unpack_items)? };
        let sandbox = lua.load(include_str!("sandbox.lua")).set_name("=sandbox").into_function()?;
        let (host_call, redis_call) = call_functions(&lua)?;
        let (env, run, load_library, call_function): (Table, Function, Function, Function) =
            sandbox.call((host_call, redis_call, budget_spent, handler, no_writes, unpack_items))?;
        // What reaches outside the state, or differs between replicas (the collector's counts).
        for name in [
            "dofile",
            "loadfile",
            "print",
            "getfenv",
            "setfenv",
            "module",
            "require",
            "newproxy",
            "gcinfo",
            "collectgarbage",
        ] {
            globals.raw_set(name, Value::Nil)?;
        }
        Ok(LuaState {
            lua,
            env,
            run,
            load_library,
            call_function,
            compiled: BTreeMap::new(),
            libraries: BTreeMap::new(),
        })
    }

    /// Lends the run's state to Lua and starts counting its instructions.
    fn begin(&mut self, run: RunState) {
        self.lua.set_app_data(run);
        // Setting the hook restarts its count: the first charge comes after exactly
        // HOOK_INSTRUCTIONS of this run, whatever the runs before left of the count.
        self.lua.set_hook(HookTriggers::new().every_nth_instruction(HOOK_INSTRUCTIONS), charge_instructions);
    }

    /// Loads the library `call.body` and calls its function `name` with KEYS and ARGV.
    fn execute_function(&mut self, call: &ScriptCall, name: &str) -> Reply {
        let chunk = match self.library(&call.body) {
            Ok(chunk) => chunk,
            Err(text) => return Reply::ErrorText(text),
        };
        let items = CallItems { keys: &call.keys, args: &call.args };
        let outcome = self.call_function.call::<MultiValue>((chunk, name, items.lent()));
        let values = match outcome {
            Ok(values) => values,
            Err(e) => return self.failure_reply(Origin::Function(name), Some(Value::Error(Box::new(e)))),
        };
        let mut values = values.into_iter();
        match (values.next(), values.next(), values.next()) {
            (Some(Value::Boolean(true)), result, _) => to_reply(result.unwrap_or(Value::Nil)),
            (_, Some(Value::String(text)), None | Some(Value::Nil)) if text == "Function not found" => {
                Reply::ErrorText("ERR Function not found".into())
            }
            (_, error, None | Some(Value::Nil)) => {
                let failure = self.failure_text();
                Reply::ErrorText(format!("ERR Error registering functions: {}", failure(error)))
            }
            (_, error, _) => self.failure_reply(Origin::Function(name), error),
        }
    }

    /// The compiled code of library `source` (after its first line), or Redis's error.
    fn library(&mut self, source: &[u8]) -> Result<Function, String> {
        if let Some(chunk) = self.libraries.get(source) {
            return Ok(chunk.clone());
        }
        let metadata = metadata::parse(source).map_err(|e| format!("ERR {e}"))?;
        let chunk = self
            .lua
            .load(&source[metadata.code_offset..])
            .set_name(LIBRARY_CHUNK_NAME)
            .set_mode(mlua::ChunkMode::Text)
            .set_environment(self.env.clone())
            .into_function()
            .map_err(|e| format!("ERR Error compiling function: {}", compile_message(&e)))?;
        if self.libraries.len() >= COMPILED_SCRIPTS_MAX {
            self.libraries.clear();
        }
        self.libraries.insert(source.to_vec(), chunk.clone());
        Ok(chunk)
    }

    /// How a failure reads once the run stopped: the budget's error, the one the error
    /// handler noted, or `error`'s text; `ERR ` first unless it is an error reply's.
    fn failure_text(&self) -> impl Fn(Option<Value>) -> String {
        let run = self.lua.app_data_ref::<RunState>();
        let spent = run.as_ref().is_some_and(|run| run.budget_spent);
        let noted = run.as_ref().and_then(|run| run.failure.clone());
        drop(run);
        move |error: Option<Value>| {
            let Failure { text, is_reply, .. } = match (spent, noted.clone()) {
                (true, _) => Failure { text: budget_text(), is_reply: true, line: None },
                (false, Some(failure)) => failure,
                (false, None) => describe(error.as_ref().unwrap_or(&Value::Nil), None),
            };
            if is_reply {
                text
            } else {
                format!("ERR {text}")
            }
        }
    }

    /// Compiles (or finds) the script and runs it with its KEYS and ARGV.
    fn execute(&mut self, call: &ScriptCall) -> Reply {
        let script = match self.compiled(&call.body) {
            Ok(script) => script,
            Err(e) => {
                return Reply::ErrorText(format!(
                    "ERR Error compiling script (new function): {}",
                    compile_message(&e)
                ))
            }
        };
        let items = CallItems { keys: &call.keys, args: &call.args };
        // The runner returns exactly two values (xpcall's first two): typed, they need no list.
        match self.run.call::<(bool, Value)>((script, items.lent())) {
            Ok((true, result)) => to_reply(result),
            Ok((false, error)) => self.failure_reply(Origin::Script(&call.body), Some(error)),
            Err(e) => self.failure_reply(Origin::Script(&call.body), Some(Value::Error(Box::new(e)))),
        }
    }

    fn compiled(&mut self, body: &[u8]) -> mlua::Result<Function> {
        if let Some(script) = self.compiled.get(body) {
            return Ok(script.clone());
        }
        let script = self
            .lua
            .load(body)
            .set_name(CHUNK_NAME)
            .set_mode(mlua::ChunkMode::Text)
            .set_environment(self.env.clone())
            .into_function()?;
        if self.compiled.len() >= COMPILED_SCRIPTS_MAX {
            self.compiled.clear();
        }
        self.compiled.insert(body.to_vec(), script.clone());
        Ok(script)
    }

    /// The error reply of a failed run: Redis's text, then which script or function and line.
    fn failure_reply(&self, origin: Origin<'_>, error: Option<Value>) -> Reply {
        let line = self.lua.app_data_ref::<RunState>().and_then(|run| run.failure.as_ref()?.line);
        let text = self.failure_text()(error);
        let line = line.map_or_else(|| "?".to_owned(), |line| line.to_string());
        let (name, chunk) = match origin {
            Origin::Script(body) => (super::cache::script_sha(body), "user_script"),
            Origin::Function(name) => (name.to_owned(), "user_function"),
        };
        Reply::ErrorText(format!("{text} script: {name}, on @{chunk}:{line}."))
    }
}

/// The text of a failure from the error value Lua raised: an error reply table's `err`, or a
/// message.
fn describe(error: &Value, line: Option<usize>) -> Failure {
    match error {
        Value::Table(table) => match table.raw_get::<Option<mlua::String>>("err") {
            Ok(Some(text)) => {
                let text = text.to_string_lossy();
                Failure { text: text.strip_prefix('-').unwrap_or(&text).to_owned(), is_reply: true, line }
            }
            _ => Failure { text: "unknown error".into(), is_reply: false, line },
        },
        Value::String(text) => Failure { text: text.to_string_lossy(), is_reply: false, line },
        Value::Error(e) => Failure { text: error_text(e), is_reply: false, line },
        other => Failure { text: format!("{other:?}"), is_reply: false, line },
    }
}

/// The message of an mlua error without mlua's decoration.
fn error_text(error: &mlua::Error) -> String {
    match error {
        mlua::Error::RuntimeError(text) | mlua::Error::SyntaxError { message: text, .. } => text.clone(),
        mlua::Error::MemoryError(_) => "Script used more memory than allowed".into(),
        mlua::Error::CallbackError { cause, .. } => error_text(cause),
        other => other.to_string(),
    }
}

/// The error of a run stopped by the instruction budget.
fn budget_text() -> String {
    format!("ERR Script exceeded its instruction budget of {SCRIPT_INSTRUCTIONS_MAX} instructions")
}

fn compile_message(error: &mlua::Error) -> String {
    let text = error_text(error);
    text.strip_prefix("[string \"user_script\"]").map_or(text.clone(), str::to_owned)
}

/// The error handler scripts run under: notes the failure and the script's line where it
/// happened, before the stack unwinds.
fn error_handler(lua: &Lua, error: Value) -> mlua::Result<Value> {
    let line = (0..64).filter_map(|level| lua.inspect_stack(level)).find_map(|frame| {
        let source = frame.source();
        let ours = matches!(source.source.as_deref(), Some(CHUNK_NAME | LIBRARY_CHUNK_NAME));
        let line = frame.curr_line();
        (ours && line > 0).then_some(line as usize)
    });
    let mut failure = describe(&error, line);
    // Only an error that leaves the script reaches this handler (pcall inside it sets its own).
    if let Some(mut run) = lua.app_data_mut::<RunState>() {
        // An error reply redis.call raised reads as the reply, not as a Lua error.
        failure.is_reply |= run.call_error.as_deref() == Some(failure.text.as_str());
        run.failure = Some(failure);
    }
    Ok(error)
}

/// The count hook: charges the instructions run and stops the script once the budget is spent.
fn charge_instructions(lua: &Lua, _: mlua::Debug) -> mlua::Result<VmState> {
    let Some(mut run) = lua.app_data_mut::<RunState>() else {
        return Ok(VmState::Continue);
    };
    run.instructions += u64::from(HOOK_INSTRUCTIONS);
    if run.instructions > SCRIPT_INSTRUCTIONS_MAX {
        run.budget_spent = true;
        return Err(mlua::Error::RuntimeError("ERR Script exceeded its instruction budget".into()));
    }
    Ok(VmState::Continue)
}

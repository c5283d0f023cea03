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

use super::call::{raw_call, redis_call, RAW_CALL_KEY};
use super::convert::to_reply;
use super::library::install_library;
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

/// The most KEYS and ARGV passed to a run on Lua's stack (past it, as two tables).
const STACK_ARGUMENTS_MAX: usize = 1_000;

/// The chunk name scripts compile under, as Redis names them in errors (`user_script:1:`).
const CHUNK_NAME: &str = "@user_script";

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
}

/// The parts of a call that `redis.call` checks.
#[derive(Debug, Clone, Copy)]
pub(super) struct CallScope {
    /// The shard the script runs on.
    pub shard: u64,
    /// How the cluster routed keys when the call was made.
    pub router: Router,
    /// EVAL_RO: writes are refused.
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
    compiled: BTreeMap<Vec<u8>, Function>,
}

impl ScriptEngine {
    /// Runs `call` as log entry `index` (already begun on `store` at `now_ms`: see
    /// [`KvStore::begin_entry`]) and returns the script's reply. Writes done before an error
    /// stay, as in Redis.
    pub fn run(&mut self, store: &mut KvStore, call: &ScriptCall, index: u64, now_ms: u64) -> Reply {
        let state = match &mut self.state {
            Some(state) => state,
            empty => match LuaState::new() {
                Ok(state) => empty.insert(state),
                Err(e) => return Reply::ErrorText(format!("ERR cannot start the Lua interpreter: {e}")),
            },
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
        };
        state.lua.set_app_data(run);
        // Setting the hook restarts its count: the first charge comes after exactly
        // HOOK_INSTRUCTIONS of this run, whatever the runs before left of the count.
        state.lua.set_hook(HookTriggers::new().every_nth_instruction(HOOK_INSTRUCTIONS), charge_instructions);
        let reply = state.execute(call);
        // Set above and taken nowhere else: the shard's key space comes back here.
        let run = state.lua.remove_app_data::<RunState>().expect("the run's state outlives the run");
        self.stand_in = Some(std::mem::replace(store, run.store));
        reply
    }
}

/// `redis.call`, a C function finding `raw_call` in the registry.
fn redis_call_function(lua: &Lua) -> mlua::Result<Function> {
    lua.set_named_registry_value(RAW_CALL_KEY, lua.create_function(raw_call)?)?;
    // SAFETY: `redis_call` only uses the Lua stack and the registry entry just set.
    unsafe { lua.create_c_function(redis_call) }
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
        let globals = lua.globals();
        install_library(&lua, &globals)?;
        let budget_spent = lua.create_function(|lua, ()| {
            Ok(lua.app_data_ref::<RunState>().is_some_and(|run| run.budget_spent))
        })?;
        let handler = lua.create_function(error_handler)?;
        let sandbox = lua.load(include_str!("sandbox.lua")).set_name("=sandbox").into_function()?;
        let (env, run): (Table, Function) = sandbox.call((
            lua.create_function(raw_call)?,
            redis_call_function(&lua)?,
            budget_spent,
            handler,
        ))?;
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
        Ok(LuaState { lua, env, run, compiled: BTreeMap::new() })
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
        let outcome =
            self.arguments(script, call).and_then(|arguments| self.run.call::<MultiValue>(arguments));
        match outcome {
            Ok(values) => {
                let mut values = values.into_iter();
                match (values.next(), values.next()) {
                    (Some(Value::Boolean(true)), result) => to_reply(result.unwrap_or(Value::Nil)),
                    (_, error) => self.failure_reply(&call.body, error),
                }
            }
            Err(e) => self.failure_reply(&call.body, Some(Value::Error(Box::new(e)))),
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

    /// The runner's arguments: the script, then KEYS and ARGV as strings after their count, or,
    /// when there are too many for Lua's stack, as two tables after -1.
    fn arguments(&self, script: Function, call: &ScriptCall) -> mlua::Result<MultiValue> {
        let mut arguments = MultiValue::with_capacity(2 + call.keys.len() + call.args.len());
        arguments.push_back(Value::Function(script));
        if call.keys.len() + call.args.len() <= STACK_ARGUMENTS_MAX {
            arguments.push_back(Value::Integer(call.keys.len() as mlua::Integer));
            for item in call.keys.iter().chain(&call.args) {
                arguments.push_back(Value::String(self.lua.create_string(item)?));
            }
            return Ok(arguments);
        }
        let list = |items: &[Vec<u8>]| -> mlua::Result<Value> {
            let table = self.lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.iter().enumerate() {
                table.raw_set(i + 1, self.lua.create_string(item)?)?;
            }
            Ok(Value::Table(table))
        };
        arguments.push_back(Value::Integer(-1));
        arguments.push_back(list(&call.keys)?);
        arguments.push_back(list(&call.args)?);
        Ok(arguments)
    }

    /// The error reply of a failed run: Redis's text, then which script and line.
    fn failure_reply(&self, body: &[u8], error: Option<Value>) -> Reply {
        let run = self.lua.app_data_ref::<RunState>();
        let spent = run.as_ref().is_some_and(|run| run.budget_spent);
        let failure = run.as_ref().and_then(|run| run.failure.clone());
        drop(run);
        let sha = super::cache::script_sha(body);
        let Failure { text, is_reply, line } = match (spent, failure) {
            (true, failure) => Failure {
                text: format!(
                    "ERR Script exceeded its instruction budget of {SCRIPT_INSTRUCTIONS_MAX} instructions"
                ),
                is_reply: true,
                line: failure.and_then(|f| f.line),
            },
            (false, Some(failure)) => failure,
            (false, None) => describe(error.as_ref().unwrap_or(&Value::Nil), None),
        };
        let text = if is_reply { text } else { format!("ERR {text}") };
        let line = line.map_or_else(|| "?".to_owned(), |line| line.to_string());
        Reply::ErrorText(format!("{text} script: {sha}, on @user_script:{line}."))
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

fn compile_message(error: &mlua::Error) -> String {
    let text = error_text(error);
    text.strip_prefix("[string \"user_script\"]").map_or(text.clone(), str::to_owned)
}

/// The error handler scripts run under: notes the failure and the script's line where it
/// happened, before the stack unwinds.
fn error_handler(lua: &Lua, error: Value) -> mlua::Result<Value> {
    let line = (0..64).filter_map(|level| lua.inspect_stack(level)).find_map(|frame| {
        let source = frame.source();
        let ours = source.source.as_deref() == Some(CHUNK_NAME);
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

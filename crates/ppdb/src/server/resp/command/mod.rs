//! From an argument vector to a typed [`Command`].
//!
//! [`Command::parse`] looks the name up in the [`table`], checks the arity, then parses the
//! options of the command, replying exactly as Redis 7 would to a malformed one
//! ([`CommandError`]). A parsed command says what it is for routing ([`Command::class`],
//! [`Command::keys`]). Reads are ready-made [`KvRead`] queries; writes are [`WriteCommand`]s
//! that [`WriteCommand::resolve`] turns into log entries, relative expiries kept as spans from
//! the time the shard's leader stamps on the entry.
//!
//! One file per concern: `connection` (PING, HELLO, CONFIG, ...), `client` (CLIENT), `server`
//! (FUNCTION, SCRIPT, DEBUG, LASTSAVE, WAIT), `eval` (EVAL and its kin), `introspect` (OBJECT, MEMORY), `pubsub` (SUBSCRIBE, PUBLISH, PUBSUB, ...), `strings` (GET,
//! SET, INCR, ...), `keyspace` (DEL, EXPIRE, SCAN, ...), one file per collection type (`hash`,
//! `list`, ...), `write` (the write commands and their expiry
//! resolution), `transaction` (what a connection inside MULTI queues), `args` (integer and
//! option parsing helpers), `table` and `error`.

mod acl;
mod args;
mod client;
mod cluster;
mod connection;
mod element_scan;
pub mod error;
pub mod eval;
mod hash;
mod introspect;
mod keyspace;
mod list;
mod pop;
mod pubsub;
mod server;
mod set;
mod strings;
pub mod table;
#[cfg(test)]
mod tests;
pub mod transaction;
mod write;
mod zset;
mod zset_error;
mod zset_range;

use bytes::Bytes;

use crate::kv::KvRead;

pub use acl::AclCommand;
pub use client::{ClientCommand, ClientListFilter, ClientType, KillFilter, ReplyMode, DEFAULT_USER};
pub use cluster::ClusterCommand;
pub use connection::{CommandQuery, Hello};
pub use error::CommandError;
pub use eval::{EvalCommand, ScriptSource};
pub use pop::BlockingPop;
pub use pubsub::{refused_while_subscribed, PubSubCommand};
pub use server::{FunctionCommand, ScriptCommand};
pub use table::{CommandClass, CommandSpec, COMMANDS};
pub use transaction::{refused_outside_multi, Admission, Queued, Transaction, TransactionError};
pub use write::{ExpireBase, ExpireCommand, Expiry, GetExOption, SetCommand, TimeUnit, WriteCommand};

/// A parsed client command.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// PING \[message\].
    Ping(Option<Bytes>),
    /// ECHO message.
    Echo(Bytes),
    /// HELLO [protover [AUTH user pass] [SETNAME name]].
    Hello(Hello),
    /// QUIT: reply OK, then close.
    Quit,
    /// COMMAND and its subcommands.
    Command(CommandQuery),
    /// INFO [section ...].
    Info(Vec<Bytes>),
    /// SELECT index (only 0 parses; others are `ERR DB index is out of range`).
    Select,
    /// TIME: this node's clock, as seconds and microseconds since the Unix epoch.
    Time,
    /// AUTH \[username\] password.
    Auth {
        /// The user, when given.
        username: Option<Bytes>,
        /// The password.
        password: Bytes,
    },
    /// CLIENT subcommands.
    Client(ClientCommand),
    /// CONFIG GET pattern \[pattern ...\]: the Redis settings PPDB has an answer for.
    ConfigGet(Vec<Bytes>),
    /// CONFIG SET name value \[name value ...\]: change settings of the running node.
    ConfigSet(Vec<(Bytes, Bytes)>),
    /// MULTI: start queueing a transaction.
    Multi,
    /// EXEC: run the queued transaction.
    Exec,
    /// DISCARD: drop the queued transaction.
    Discard,
    /// WATCH key \[key ...\]: EXEC runs nothing, and answers a null array, if one of the keys
    /// is written before it.
    Watch {
        /// The keys.
        keys: Vec<Vec<u8>>,
    },
    /// UNWATCH.
    Unwatch,
    /// RESET: back to a fresh connection's state.
    Reset,
    /// The help of a container command (OBJECT HELP, MEMORY HELP): one status line each.
    Help(&'static [&'static str]),
    /// A read of the key space.
    Read(KvRead),
    /// A write to the key space.
    Write(WriteCommand),
    /// CONFIG RESETSTAT: zero the server's counters.
    ConfigResetStat,
    /// FUNCTION subcommands answered without a scripting engine.
    Function(FunctionCommand),
    /// SCRIPT subcommands answered without a scripting engine.
    Script(ScriptCommand),
    /// LASTSAVE: when the node's data was last made durable as a whole.
    LastSave,
    /// WAIT numreplicas timeout: how many replicas hold this connection's writes.
    Wait {
        /// Replicas to wait for (none is needed when zero or negative).
        replicas: i64,
        /// Longest wait in milliseconds (0: no limit).
        timeout_ms: u64,
    },
    /// A pop that waits for something to pop (BLPOP, ...): see `server::blocking`.
    Block(BlockingPop),
    /// A pub/sub command: see `server::pubsub`.
    PubSub(PubSubCommand),
    /// EVAL and its kin: a Lua script run on the shard of its keys (see `server::script`).
    Eval(EvalCommand),
    /// ACL and its subcommands (see `server::acl`).
    Acl(AclCommand),
    /// CLUSTER subcommands describing the cluster (see `server::cluster`).
    Cluster(ClusterCommand),
}

impl Command {
    /// Parses a request's arguments (name first), as Redis 7 validates them.
    pub fn parse(args: &[Bytes]) -> Result<Command, CommandError> {
        let Some((name, rest)) = args.split_first() else {
            return Err(CommandError::UnknownCommand { name: Vec::new(), args: Vec::new() });
        };
        let Some(spec) = table::lookup(name) else {
            return Err(CommandError::UnknownCommand {
                name: name.to_vec(),
                args: rest.iter().map(|a| a.to_vec()).collect(),
            });
        };
        if !spec.arity_ok(args.len()) {
            return Err(CommandError::WrongArity { command: spec.name });
        }
        Command::parse_known(spec, args)
    }

    /// Parses `args` (name first) whose command `spec` was looked up and whose arity was
    /// checked already (a script's `redis.call` does both before anything else).
    pub fn parse_known(spec: &CommandSpec, args: &[Bytes]) -> Result<Command, CommandError> {
        let Some((name, rest)) = args.split_first() else {
            return Err(CommandError::UnknownCommand { name: Vec::new(), args: Vec::new() });
        };
        // Each module answers the names it owns; the first that does returns. A loop with an
        // early return rather than a chain of `or_else`, which moved the parsed command through
        // every remaining step.
        type Parser = fn(&str, &[Bytes]) -> Option<Result<Command, CommandError>>;
        const PARSERS: [Parser; 14] = [
            connection::parse,
            strings::parse,
            keyspace::parse,
            introspect::parse,
            hash::parse,
            list::parse,
            server::parse,
            eval::parse,
            set::parse,
            pop::parse,
            zset::parse,
            zset_range::parse,
            pubsub::parse,
            |name, rest| (name == "cluster").then(|| cluster::parse(rest)),
        ];
        for parse in PARSERS {
            if let Some(parsed) = parse(spec.name, rest) {
                return parsed;
            }
        }
        Err(CommandError::UnknownCommand { name: name.to_vec(), args: Vec::new() })
    }

    /// Whether the command reads, writes, or concerns only the connection or server.
    pub fn class(&self) -> CommandClass {
        match self {
            Command::Read(_) => CommandClass::Read,
            Command::Write(_) | Command::Block(_) | Command::Eval(_) => CommandClass::Write,
            _ => CommandClass::Connection,
        }
    }

    /// The keys the command touches, for routing to shards (empty for connection commands and
    /// whole-keyspace ones such as KEYS, SCAN, DBSIZE, FLUSHALL).
    pub fn keys(&self) -> Vec<&[u8]> {
        match self {
            Command::Read(read) => read.keys(),
            Command::Write(write) => write.keys(),
            Command::Block(pop) => pop.op.keys(),
            Command::Eval(eval) => eval.keys.iter().map(Vec::as_slice).collect(),
            _ => Vec::new(),
        }
    }
}

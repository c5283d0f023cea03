//! The command table: every command PPDB knows, with Redis 7's arity, flags and key positions.
//!
//! It drives three things: the name lookup (case-insensitive), the arity check done before any
//! command-specific parsing (as Redis's `processCommand` does), and the COMMAND replies
//! (COUNT, INFO, DOCS) that client libraries and redis-cli use to learn about the server.

/// What a command does, for routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandClass {
    /// Reads the key space: answered by the shard's leader after a linearizable read check.
    Read,
    /// Changes the key space: goes through the shard's Raft log.
    Write,
    /// Connection or server command: answered by the node the client is connected to.
    Connection,
}

/// One command's static description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandSpec {
    /// Lower-case name, as in Redis's command table.
    pub name: &'static str,
    /// Redis arity: N means exactly N arguments including the name, -N means at least N.
    pub arity: i32,
    /// Read, write or connection.
    pub class: CommandClass,
    /// Redis command flags, as COMMAND INFO lists them.
    pub flags: &'static [&'static str],
    /// Position of the first key (0: no keys).
    pub first_key: i32,
    /// Position of the last key (-1: the last argument).
    pub last_key: i32,
    /// Step between keys.
    pub key_step: i32,
    /// One-line summary for COMMAND DOCS.
    pub summary: &'static str,
}

impl CommandSpec {
    /// Whether the command may grow memory (Redis's `denyoom` flag): refused over `maxmemory`.
    pub fn denies_oom(&self) -> bool {
        self.flags.contains(&"denyoom")
    }

    /// Whether `argc` arguments (including the name) satisfy the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = i64::try_from(argc).unwrap_or(i64::MAX);
        let arity = i64::from(self.arity);
        if arity >= 0 {
            argc == arity
        } else {
            argc >= -arity
        }
    }
}

use CommandClass::{Connection as C, Read as R, Write as W};

const RO: &[&str] = &["readonly"];
const RO_FAST: &[&str] = &["readonly", "fast"];
const WR: &[&str] = &["write"];
const WR_FAST: &[&str] = &["write", "fast"];
const WR_OOM: &[&str] = &["write", "denyoom"];
const WR_OOM_FAST: &[&str] = &["write", "denyoom", "fast"];
const FAST: &[&str] = &["fast"];
const CONN: &[&str] = &["noscript", "loading", "stale"];
const PUBSUB_CONN: &[&str] = &["pubsub", "noscript", "loading", "stale"];
const PUBSUB_FAST: &[&str] = &["pubsub", "loading", "stale", "fast"];
const SCRIPTING: &[&str] = &["noscript", "stale", "skip_monitor", "no_mandatory_keys", "movablekeys"];
const SCRIPTING_RO: &[&str] =
    &["readonly", "noscript", "stale", "skip_monitor", "no_mandatory_keys", "movablekeys"];

macro_rules! spec {
    ($name:literal, $arity:expr, $class:expr, $flags:expr, $first:expr, $last:expr, $step:expr, $summary:literal) => {
        CommandSpec {
            name: $name,
            arity: $arity,
            class: $class,
            flags: $flags,
            first_key: $first,
            last_key: $last,
            key_step: $step,
            summary: $summary,
        }
    };
}

/// Commands with subcommands: Redis names them with their subcommand (`client|list`) in
/// CLIENT LIST's `cmd` and in its errors.
pub const CONTAINER_COMMANDS: &[&str] =
    &["acl", "client", "cluster", "command", "config", "function", "memory", "object", "pubsub", "script"];

/// The full name of the command `args` asks for (`get`, `client|list`), as Redis names it;
/// none for an unknown command.
pub fn full_name(args: &[bytes::Bytes]) -> Option<String> {
    let spec = lookup(args.first()?)?;
    Some(match args.get(1).filter(|_| CONTAINER_COMMANDS.contains(&spec.name)) {
        Some(sub) => format!("{}|{}", spec.name, String::from_utf8_lossy(sub).to_ascii_lowercase()),
        None => spec.name.to_string(),
    })
}

/// Every command, sorted by name.
pub static COMMANDS: &[CommandSpec] = &[
    spec!("acl", -2, C, CONN, 0, 0, 0, "A container for Access List Control commands."),
    spec!("append", 3, W, WR_OOM_FAST, 1, 1, 1, "Appends a string to the value of a key."),
    spec!(
        "auth",
        -2,
        C,
        &["noscript", "loading", "stale", "fast", "no_auth"],
        0,
        0,
        0,
        "Authenticates the connection."
    ),
spec!("blmove", 6, W, &["write", "denyoom", "noscript", "blocking"], 1, 2, 1, "Pop an element from a list, push it to another list and return it; or block until one is available"),
    spec!("blmpop", -5, W, &["write", "blocking", "movablekeys"], 0, 0, 0, "Pop elements from a list, or block until one is available"),
    spec!("blpop", -3, W, &["write", "noscript", "blocking"], 1, -2, 1, "Remove and get the first element in a list, or block until one is available"),
    spec!("brpop", -3, W, &["write", "noscript", "blocking"], 1, -2, 1, "Remove and get the last element in a list, or block until one is available"),
    spec!("brpoplpush", 4, W, &["write", "denyoom", "noscript", "blocking"], 1, 2, 1, "Pop an element from a list, push it to another list and return it; or block until one is available"),
    spec!("bzmpop", -5, W, &["write", "blocking", "movablekeys"], 0, 0, 0, "Remove and return members with scores in a sorted set or block until one is available"),
    spec!("bzpopmax", -3, W, &["write", "noscript", "blocking", "fast"], 1, -2, 1, "Remove and return the member with the highest score from one or more sorted sets, or block until one is available"),
    spec!("bzpopmin", -3, W, &["write", "noscript", "blocking", "fast"], 1, -2, 1, "Remove and return the member with the lowest score from one or more sorted sets, or block until one is available"),
    spec!("client", -2, C, CONN, 0, 0, 0, "A container for client connection commands."),
    spec!("cluster", -2, C, &[], 0, 0, 0, "A container for Redis Cluster commands."),
    spec!(
        "command",
        -1,
        C,
        &["loading", "stale"],
        0,
        0,
        0,
        "Returns detailed information about all commands."
    ),
    spec!("config", -2, C, CONN, 0, 0, 0, "A container for server configuration commands (GET, SET)."),
    spec!("copy", -3, W, WR_OOM, 1, 2, 1, "Copies the value of a key to a new key."),
    spec!("dbsize", 1, R, RO_FAST, 0, 0, 0, "Returns the number of keys in the database."),
    spec!("debug", -2, C, &["admin", "noscript", "loading", "stale"], 0, 0, 0, "A container for debugging commands"),
    spec!("decr", 2, W, WR_OOM_FAST, 1, 1, 1, "Decrements the integer value of a key by one."),
    spec!("decrby", 3, W, WR_OOM_FAST, 1, 1, 1, "Decrements a number from the integer value of a key."),
    spec!("del", -2, W, WR, 1, -1, 1, "Deletes one or more keys."),
    spec!(
        "discard",
        1,
        C,
        &["noscript", "loading", "stale", "fast", "allow_busy"],
        0,
        0,
        0,
        "Discards a transaction."
    ),
    spec!("echo", 2, C, FAST, 0, 0, 0, "Returns the given string."),
    spec!("eval", -3, W, SCRIPTING, 0, 0, 0, "Executes a server-side Lua script."),
    spec!("eval_ro", -3, R, SCRIPTING_RO, 0, 0, 0, "Executes a read-only server-side Lua script."),
    spec!("evalsha", -3, W, SCRIPTING, 0, 0, 0, "Executes a server-side Lua script by SHA1 digest."),
    spec!("evalsha_ro", -3, R, SCRIPTING_RO, 0, 0, 0, "Executes a read-only server-side Lua script by SHA1 digest."),
    spec!(
        "exec",
        1,
        C,
        &["noscript", "loading", "stale", "skip_slowlog"],
        0,
        0,
        0,
        "Executes all commands in a transaction."
    ),
    spec!("exists", -2, R, RO_FAST, 1, -1, 1, "Determines whether one or more keys exist."),
    spec!("expire", -3, W, WR_FAST, 1, 1, 1, "Sets the expiration time of a key in seconds."),
    spec!("expireat", -3, W, WR_FAST, 1, 1, 1, "Sets the expiration time of a key to a Unix timestamp."),
    spec!("expiretime", 2, R, RO_FAST, 1, 1, 1, "Returns the expiration time of a key as a Unix timestamp."),
    spec!("fcall", -3, W, SCRIPTING, 0, 0, 0, "Invokes a function."),
    spec!("fcall_ro", -3, R, SCRIPTING_RO, 0, 0, 0, "Invokes a read-only function."),
    spec!("flushall", -1, W, WR, 0, 0, 0, "Removes all keys from all databases."),
    spec!("flushdb", -1, W, WR, 0, 0, 0, "Remove all keys from the current database."),
    spec!("function", -2, C, &[], 0, 0, 0, "A container for function commands"),
    spec!("get", 2, R, RO_FAST, 1, 1, 1, "Returns the string value of a key."),
    spec!("getdel", 2, W, WR_FAST, 1, 1, 1, "Returns the string value of a key after deleting the key."),
    spec!(
        "getex",
        -2,
        W,
        WR_FAST,
        1,
        1,
        1,
        "Returns the string value of a key after setting its expiration time."
    ),
    spec!("getrange", 4, R, RO, 1, 1, 1, "Returns a substring of the string stored at a key."),
    spec!(
        "getset",
        3,
        W,
        WR_OOM_FAST,
        1,
        1,
        1,
        "Returns the previous string value of a key after setting it to a new value."
    ),
    spec!("hdel", -3, W, &["write", "fast"], 1, 1, 1, "Delete one or more hash fields"),
    spec!(
        "hello",
        -1,
        C,
        &["noscript", "loading", "stale", "fast", "no_auth"],
        0,
        0,
        0,
        "Handshakes with the Redis server."
    ),
    spec!("hexists", 3, R, &["readonly", "fast"], 1, 1, 1, "Determine if a hash field exists"),
    spec!("hget", 3, R, &["readonly", "fast"], 1, 1, 1, "Get the value of a hash field"),
    spec!("hgetall", 2, R, &["readonly"], 1, 1, 1, "Get all the fields and values in a hash"),
    spec!("hincrby", 4, W, &["write", "denyoom", "fast"], 1, 1, 1, "Increment the integer value of a hash field by the given number"),
    spec!("hincrbyfloat", 4, W, &["write", "denyoom", "fast"], 1, 1, 1, "Increment the float value of a hash field by the given amount"),
    spec!("hkeys", 2, R, &["readonly"], 1, 1, 1, "Get all the fields in a hash"),
    spec!("hlen", 2, R, &["readonly", "fast"], 1, 1, 1, "Get the number of fields in a hash"),
    spec!("hmget", -3, R, &["readonly", "fast"], 1, 1, 1, "Get the values of all the given hash fields"),
    spec!("hmset", -4, W, &["write", "denyoom", "fast"], 1, 1, 1, "Set multiple hash fields to multiple values"),
    spec!("hrandfield", -2, R, &["readonly"], 1, 1, 1, "Get one or multiple random fields from a hash"),
    spec!("hscan", -3, R, &["readonly"], 1, 1, 1, "Incrementally iterate hash fields and associated values"),
    spec!("hset", -4, W, &["write", "denyoom", "fast"], 1, 1, 1, "Set the string value of a hash field"),
    spec!("hsetnx", 4, W, &["write", "denyoom", "fast"], 1, 1, 1, "Set the value of a hash field, only if the field does not exist"),
    spec!("hstrlen", 3, R, &["readonly", "fast"], 1, 1, 1, "Get the length of the value of a hash field"),
    spec!("hvals", 2, R, &["readonly"], 1, 1, 1, "Get all the values in a hash"),
    spec!("incr", 2, W, WR_OOM_FAST, 1, 1, 1, "Increments the integer value of a key by one."),
    spec!("incrby", 3, W, WR_OOM_FAST, 1, 1, 1, "Increments the integer value of a key by a number."),
    spec!(
        "incrbyfloat",
        3,
        W,
        WR_OOM_FAST,
        1,
        1,
        1,
        "Increment the floating point value of a key by a number."
    ),
    spec!(
        "info",
        -1,
        C,
        &["loading", "stale"],
        0,
        0,
        0,
        "Returns information and statistics about the server."
    ),
    spec!("keys", 2, R, RO, 0, 0, 0, "Returns all key names that match a pattern."),
    spec!("lastsave", 1, C, &["loading", "stale", "fast"], 0, 0, 0, "Get the UNIX time stamp of the last successful save to disk"),
    spec!("lindex", 3, R, &["readonly"], 1, 1, 1, "Get an element from a list by its index"),
    spec!("linsert", 5, W, &["write", "denyoom"], 1, 1, 1, "Insert an element before or after another element in a list"),
    spec!("llen", 2, R, &["readonly", "fast"], 1, 1, 1, "Get the length of a list"),
    spec!("lmove", 5, W, &["write", "denyoom"], 1, 2, 1, "Pop an element from a list, push it to another list and return it"),
    spec!("lmpop", -4, W, &["write", "movablekeys"], 0, 0, 0, "Pop elements from a list"),
    spec!("lpop", -2, W, &["write", "fast"], 1, 1, 1, "Remove and get the first elements in a list"),
    spec!("lpos", -3, R, &["readonly"], 1, 1, 1, "Return the index of matching elements on a list"),
    spec!("lpush", -3, W, &["write", "denyoom", "fast"], 1, 1, 1, "Prepend one or multiple elements to a list"),
    spec!("lpushx", -3, W, &["write", "denyoom", "fast"], 1, 1, 1, "Prepend an element to a list, only if the list exists"),
    spec!("lrange", 4, R, &["readonly"], 1, 1, 1, "Get a range of elements from a list"),
    spec!("lrem", 4, W, &["write"], 1, 1, 1, "Remove elements from a list"),
    spec!("lset", 4, W, &["write", "denyoom"], 1, 1, 1, "Set the value of an element in a list by its index"),
    spec!("ltrim", 4, W, &["write"], 1, 1, 1, "Trim a list to the specified range"),
    spec!("memory", -2, C, &[], 0, 0, 0, "A container for memory diagnostics commands"),
    spec!("mget", -2, R, RO_FAST, 1, -1, 1, "Atomically returns the string values of one or more keys."),
    spec!(
        "mset",
        -3,
        W,
        WR_OOM,
        1,
        -1,
        2,
        "Atomically creates or modifies the string values of one or more keys."
    ),
    spec!(
        "msetnx",
        -3,
        W,
        WR_OOM,
        1,
        -1,
        2,
        "Atomically modifies the string values of one or more keys only when all keys don't exist."
    ),
    spec!(
        "multi",
        1,
        C,
        &["noscript", "loading", "stale", "fast", "allow_busy"],
        0,
        0,
        0,
        "Starts a transaction."
    ),
    spec!("object", -2, C, &[], 0, 0, 0, "A container for object introspection commands"),
    spec!("persist", 2, W, WR_FAST, 1, 1, 1, "Removes the expiration time of a key."),
    spec!("pexpire", -3, W, WR_FAST, 1, 1, 1, "Sets the expiration time of a key in milliseconds."),
    spec!(
        "pexpireat",
        -3,
        W,
        WR_FAST,
        1,
        1,
        1,
        "Sets the expiration time of a key to a Unix milliseconds timestamp."
    ),
    spec!(
        "pexpiretime",
        2,
        R,
        RO_FAST,
        1,
        1,
        1,
        "Returns the expiration time of a key as a Unix milliseconds timestamp."
    ),
    spec!("ping", -1, C, FAST, 0, 0, 0, "Returns the server's liveliness response."),
    spec!(
        "psetex",
        4,
        W,
        WR_OOM,
        1,
        1,
        1,
        "Sets both string value and expiration time in milliseconds of a key."
    ),
    spec!("psubscribe", -2, C, PUBSUB_CONN, 0, 0, 0, "Listen for messages published to channels matching the given patterns"),
    spec!("pttl", 2, R, RO_FAST, 1, 1, 1, "Returns the expiration time in milliseconds of a key."),
    spec!("publish", 3, C, PUBSUB_FAST, 0, 0, 0, "Post a message to a channel"),
    spec!("pubsub", -2, C, &[], 0, 0, 0, "A container for Pub/Sub commands"),
    spec!("punsubscribe", -1, C, PUBSUB_CONN, 0, 0, 0, "Stop listening for messages posted to channels matching the given patterns"),
    spec!(
        "quit",
        -1,
        C,
        &["noscript", "loading", "stale", "fast", "no_auth"],
        0,
        0,
        0,
        "Closes the connection."
    ),
    spec!("randomkey", 1, R, RO, 0, 0, 0, "Returns a random key name from the database."),
    spec!("rename", 3, W, WR, 1, 2, 1, "Renames a key and overwrites the destination."),
    spec!("renamenx", 3, W, WR_FAST, 1, 2, 1, "Renames a key only when the target key name doesn't exist."),
    spec!(
        "reset",
        1,
        C,
        &["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"],
        0,
        0,
        0,
        "Resets the connection."
    ),
    spec!("rpop", -2, W, &["write", "fast"], 1, 1, 1, "Remove and get the last elements in a list"),
    spec!("rpoplpush", 3, W, &["write", "denyoom"], 1, 2, 1, "Remove the last element in a list, prepend it to another list and return it"),
    spec!("rpush", -3, W, &["write", "denyoom", "fast"], 1, 1, 1, "Append one or multiple elements to a list"),
    spec!("rpushx", -3, W, &["write", "denyoom", "fast"], 1, 1, 1, "Append an element to a list, only if the list exists"),
    spec!("sadd", -3, W, &["write", "denyoom", "fast"], 1, 1, 1, "Add one or more members to a set"),
    spec!("scan", -2, R, RO, 0, 0, 0, "Iterates over the key names in the database."),
    spec!("scard", 2, R, &["readonly", "fast"], 1, 1, 1, "Get the number of members in a set"),
    spec!("script", -2, C, &[], 0, 0, 0, "A container for Lua scripts management commands"),
    spec!("sdiff", -2, R, &["readonly"], 1, -1, 1, "Subtract multiple sets"),
    spec!("sdiffstore", -3, W, &["write", "denyoom"], 1, -1, 1, "Subtract multiple sets and store the resulting set in a key"),
    spec!("select", 2, C, &["loading", "stale", "fast"], 0, 0, 0, "Changes the selected database."),
    spec!("set", -3, W, WR_OOM, 1, 1, 1, "Sets the string value of a key, ignoring its type."),
    spec!("setex", 4, W, WR_OOM, 1, 1, 1, "Sets the string value and expiration time of a key."),
    spec!(
        "setnx",
        3,
        W,
        WR_OOM_FAST,
        1,
        1,
        1,
        "Set the string value of a key only when the key doesn't exist."
    ),
    spec!(
        "setrange",
        4,
        W,
        WR_OOM,
        1,
        1,
        1,
        "Overwrites a part of a string value with another by an offset."
    ),
    spec!("sinter", -2, R, &["readonly"], 1, -1, 1, "Intersect multiple sets"),
    spec!("sintercard", -3, R, &["readonly", "movablekeys"], 0, 0, 0, "Intersect multiple sets and return the cardinality of the result"),
    spec!("sinterstore", -3, W, &["write", "denyoom"], 1, -1, 1, "Intersect multiple sets and store the resulting set in a key"),
    spec!("sismember", 3, R, &["readonly", "fast"], 1, 1, 1, "Determine if a given value is a member of a set"),
    spec!("smembers", 2, R, &["readonly"], 1, 1, 1, "Get all the members in a set"),
    spec!("smismember", -3, R, &["readonly", "fast"], 1, 1, 1, "Returns the membership associated with the given elements for a set"),
    spec!("smove", 4, W, &["write", "fast"], 1, 2, 1, "Move a member from one set to another"),
    spec!("spop", -2, W, &["write", "fast"], 1, 1, 1, "Remove and return one or multiple random members from a set"),
    spec!("spublish", 3, C, PUBSUB_FAST, 1, 1, 1, "Post a message to a shard channel"),
    spec!("srandmember", -2, R, &["readonly"], 1, 1, 1, "Get one or multiple random members from a set"),
    spec!("srem", -3, W, &["write", "fast"], 1, 1, 1, "Remove one or more members from a set"),
    spec!("sscan", -3, R, &["readonly"], 1, 1, 1, "Incrementally iterate Set elements"),
    spec!("ssubscribe", -2, C, PUBSUB_CONN, 1, -1, 1, "Listen for messages published to the given shard channels"),
    spec!("strlen", 2, R, RO_FAST, 1, 1, 1, "Returns the length of a string value."),
    spec!("subscribe", -2, C, PUBSUB_CONN, 0, 0, 0, "Listen for messages published to the given channels"),
    spec!("substr", 4, R, RO, 1, 1, 1, "Returns a substring from a string value."),
    spec!("sunion", -2, R, &["readonly"], 1, -1, 1, "Add multiple sets"),
    spec!("sunionstore", -3, W, &["write", "denyoom"], 1, -1, 1, "Add multiple sets and store the resulting set in a key"),
    spec!("sunsubscribe", -1, C, PUBSUB_CONN, 1, -1, 1, "Stop listening for messages posted to the given shard channels"),
    spec!("time", 1, C, &["loading", "stale", "fast"], 0, 0, 0, "Returns the server time."),
    spec!(
        "touch",
        -2,
        R,
        RO_FAST,
        1,
        -1,
        1,
        "Returns the number of existing keys out of those specified after updating the time they were last accessed."
    ),
    spec!("ttl", 2, R, RO_FAST, 1, 1, 1, "Returns the expiration time in seconds of a key."),
    spec!("type", 2, R, RO_FAST, 1, 1, 1, "Determines the type of value stored at a key."),
    spec!("unlink", -2, W, WR_FAST, 1, -1, 1, "Asynchronously deletes one or more keys."),
    spec!("unsubscribe", -1, C, PUBSUB_CONN, 0, 0, 0, "Stop listening for messages posted to the given channels"),
    spec!(
        "unwatch",
        1,
        C,
        &["noscript", "loading", "stale", "fast", "allow_busy"],
        0,
        0,
        0,
        "Forgets about watched keys of a transaction."
    ),
    spec!("wait", 3, C, &["noscript"], 0, 0, 0, "Wait for the synchronous replication of all the write commands sent in the context of the current connection"),
    spec!(
        "watch",
        -2,
        C,
        &["noscript", "loading", "stale", "fast", "allow_busy"],
        1,
        -1,
        1,
        "Monitors changes to keys to determine the execution of a transaction."
    ),
    spec!("zadd", -4, W, &["write", "denyoom", "fast"], 1, 1, 1, "Add one or more members to a sorted set, or update its score if it already exists"),
    spec!("zcard", 2, R, &["readonly", "fast"], 1, 1, 1, "Get the number of members in a sorted set"),
    spec!("zcount", 4, R, &["readonly", "fast"], 1, 1, 1, "Count the members in a sorted set with scores within the given values"),
    spec!("zdiff", -3, R, &["readonly", "movablekeys"], 0, 0, 0, "Subtract multiple sorted sets"),
    spec!("zdiffstore", -4, W, &["write", "denyoom", "movablekeys"], 1, 1, 1, "Subtract multiple sorted sets and store the resulting sorted set in a new key"),
    spec!("zincrby", 4, W, &["write", "denyoom", "fast"], 1, 1, 1, "Increment the score of a member in a sorted set"),
    spec!("zinter", -3, R, &["readonly", "movablekeys"], 0, 0, 0, "Intersect multiple sorted sets"),
    spec!("zintercard", -3, R, &["readonly", "movablekeys"], 0, 0, 0, "Intersect multiple sorted sets and return the cardinality of the result"),
    spec!("zinterstore", -4, W, &["write", "denyoom", "movablekeys"], 1, 1, 1, "Intersect multiple sorted sets and store the resulting sorted set in a new key"),
    spec!("zlexcount", 4, R, &["readonly", "fast"], 1, 1, 1, "Count the number of members in a sorted set between a given lexicographical range"),
    spec!("zmpop", -4, W, &["write", "movablekeys"], 0, 0, 0, "Remove and return members with scores in a sorted set"),
    spec!("zmscore", -3, R, &["readonly", "fast"], 1, 1, 1, "Get the score associated with the given members in a sorted set"),
    spec!("zpopmax", -2, W, &["write", "fast"], 1, 1, 1, "Remove and return members with the highest scores in a sorted set"),
    spec!("zpopmin", -2, W, &["write", "fast"], 1, 1, 1, "Remove and return members with the lowest scores in a sorted set"),
    spec!("zrandmember", -2, R, &["readonly"], 1, 1, 1, "Get one or multiple random elements from a sorted set"),
    spec!("zrange", -4, R, &["readonly"], 1, 1, 1, "Return a range of members in a sorted set"),
    spec!("zrangebylex", -4, R, &["readonly"], 1, 1, 1, "Return a range of members in a sorted set, by lexicographical range"),
    spec!("zrangebyscore", -4, R, &["readonly"], 1, 1, 1, "Return a range of members in a sorted set, by score"),
    spec!("zrangestore", -5, W, &["write", "denyoom"], 1, 2, 1, "Store a range of members from sorted set into another key"),
    spec!("zrank", 3, R, &["readonly", "fast"], 1, 1, 1, "Determine the index of a member in a sorted set"),
    spec!("zrem", -3, W, &["write", "fast"], 1, 1, 1, "Remove one or more members from a sorted set"),
    spec!("zremrangebylex", 4, W, &["write"], 1, 1, 1, "Remove all members in a sorted set between the given lexicographical range"),
    spec!("zremrangebyrank", 4, W, &["write"], 1, 1, 1, "Remove all members in a sorted set within the given indexes"),
    spec!("zremrangebyscore", 4, W, &["write"], 1, 1, 1, "Remove all members in a sorted set within the given scores"),
    spec!("zrevrange", -4, R, &["readonly"], 1, 1, 1, "Return a range of members in a sorted set, by index, with scores ordered from high to low"),
    spec!("zrevrangebylex", -4, R, &["readonly"], 1, 1, 1, "Return a range of members in a sorted set, by lexicographical range, ordered from higher to lower strings."),
    spec!("zrevrangebyscore", -4, R, &["readonly"], 1, 1, 1, "Return a range of members in a sorted set, by score, with scores ordered from high to low"),
    spec!("zrevrank", 3, R, &["readonly", "fast"], 1, 1, 1, "Determine the index of a member in a sorted set, with scores ordered from high to low"),
    spec!("zscan", -3, R, &["readonly"], 1, 1, 1, "Incrementally iterate sorted sets elements and associated scores"),
    spec!("zscore", 3, R, &["readonly", "fast"], 1, 1, 1, "Get the score associated with the given member in a sorted set"),
    spec!("zunion", -3, R, &["readonly", "movablekeys"], 0, 0, 0, "Add multiple sorted sets"),
    spec!("zunionstore", -4, W, &["write", "denyoom", "movablekeys"], 1, 1, 1, "Add multiple sorted sets and store the resulting sorted set in a new key"),
];

/// Finds a command by name, ignoring ASCII case.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    // Every command runs it, and every `redis.call` of every script on every replica: a binary
    // search over integers, not over strings.
    let packed = packed_name(name)?;
    PACKED_NAMES.binary_search(&packed).ok().and_then(|i| COMMANDS.get(i))
}

/// Longest command name [`lookup`] finds, in bytes: the width of a `u128`.
const NAME_BYTES_MAX: usize = 16;

/// The names of [`COMMANDS`] as [`packed_name`] packs them, in the same (sorted) order.
static PACKED_NAMES: std::sync::LazyLock<Vec<u128>> = std::sync::LazyLock::new(|| {
    COMMANDS.iter().map(|spec| packed_name(spec.name.as_bytes()).unwrap_or(u128::MAX)).collect()
});

/// A name lower-cased into the big-endian bytes of a `u128`, zero-padded: integers that sort as
/// the names do. `None` for a name no command has: empty, longer than [`NAME_BYTES_MAX`], or
/// holding a zero byte (which padding would hide).
fn packed_name(name: &[u8]) -> Option<u128> {
    if name.is_empty() || name.len() > NAME_BYTES_MAX || name.contains(&0) {
        return None;
    }
    let mut bytes = [0u8; NAME_BYTES_MAX];
    for (dst, src) in bytes.iter_mut().zip(name) {
        *dst = src.to_ascii_lowercase();
    }
    Some(u128::from_be_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_and_lookup_ignores_case() {
        assert!(COMMANDS.windows(2).all(|w| w[0].name < w[1].name), "sorted for binary search");
        assert_eq!(lookup(b"GeT").map(|s| s.name), Some("get"));
        assert_eq!(lookup(b"incrbyfloat").map(|s| s.name), Some("incrbyfloat"));
        assert!(lookup(b"nosuchcommandatall").is_none());
        assert!(lookup(b"").is_none());
        assert!(lookup(b"get\0").is_none() && lookup(b"\0get").is_none(), "padding hides no byte");
    }

    #[test]
    fn every_command_is_found_by_its_name_and_only_by_it() {
        assert!(COMMANDS.iter().all(|spec| spec.name.len() <= NAME_BYTES_MAX), "every name packs");
        for spec in COMMANDS {
            assert_eq!(lookup(spec.name.as_bytes()).map(|s| s.name), Some(spec.name));
            assert_eq!(lookup(spec.name.to_uppercase().as_bytes()).map(|s| s.name), Some(spec.name));
            let longer = format!("{}x", spec.name);
            assert!(lookup(longer.as_bytes()).is_none_or(|s| s.name == longer), "{longer}");
        }
    }

    #[test]
    fn arity_follows_redis() {
        let get = lookup(b"get").expect("known");
        assert!(get.arity_ok(2) && !get.arity_ok(1) && !get.arity_ok(3));
        let set = lookup(b"set").expect("known");
        assert!(set.arity_ok(3) && set.arity_ok(9) && !set.arity_ok(2));
    }
}

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

/// Every command, sorted by name.
pub static COMMANDS: &[CommandSpec] = &[
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
    spec!("client", -2, C, CONN, 0, 0, 0, "A container for client connection commands."),
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
    spec!("flushall", -1, W, WR, 0, 0, 0, "Removes all keys from all databases."),
    spec!("flushdb", -1, W, WR, 0, 0, 0, "Remove all keys from the current database."),
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
    spec!("pttl", 2, R, RO_FAST, 1, 1, 1, "Returns the expiration time in milliseconds of a key."),
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
    spec!("scan", -2, R, RO, 0, 0, 0, "Iterates over the key names in the database."),
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
    spec!("strlen", 2, R, RO_FAST, 1, 1, 1, "Returns the length of a string value."),
    spec!("substr", 4, R, RO, 1, 1, 1, "Returns a substring from a string value."),
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
];

/// Finds a command by name, ignoring ASCII case.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    // Names are short ASCII; lower-case into a small stack buffer before the binary search.
    let mut lower = [0u8; 16];
    let slot = lower.get_mut(..name.len())?;
    for (dst, src) in slot.iter_mut().zip(name) {
        *dst = src.to_ascii_lowercase();
    }
    let lower = &lower[..name.len()];
    COMMANDS.binary_search_by(|spec| spec.name.as_bytes().cmp(lower)).ok().map(|i| &COMMANDS[i])
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
    }

    #[test]
    fn arity_follows_redis() {
        let get = lookup(b"get").expect("known");
        assert!(get.arity_ok(2) && !get.arity_ok(1) && !get.arity_ok(3));
        let set = lookup(b"set").expect("known");
        assert!(set.arity_ok(3) && set.arity_ok(9) && !set.arity_ok(2));
    }
}

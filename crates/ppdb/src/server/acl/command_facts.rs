//! What ACL rules need to know of a request, taken from the command table: the command's
//! categories (from its flags, its data type and a short list of Redis's dangerous and admin
//! commands), its keys (from the table's key positions, and `numkeys` for the commands whose
//! keys move) and the channels it publishes or subscribes to.

use crate::acl::{Category, CategorySet, KeyAccess};
use crate::server::resp::command::table::{CommandSpec, CONTAINER_COMMANDS};
use crate::server::resp::command::CommandClass;
use bytes::Bytes;

/// Commands Redis puts in `@admin` (and so `@dangerous`) beyond those flagged `admin`.
const ADMIN: &[&str] = &["acl", "config", "debug", "lastsave"];
/// Commands Redis puts in `@dangerous` without `@admin`.
const DANGEROUS: &[&str] = &["client", "flushall", "flushdb", "info", "keys"];

/// Commands whose key positions name shard channels, for routing: channel rules govern them,
/// not key patterns (Redis flags those key specs `not_key`).
const SHARD_CHANNEL_COMMANDS: &[&str] = &["spublish", "ssubscribe", "sunsubscribe"];

/// Subcommands of an `@admin` or `@dangerous` container that Redis puts in neither.
const HARMLESS_SUBCOMMANDS: &[(&str, &[&str])] = &[
    ("acl", &["cat", "genpass", "help", "whoami"]),
    ("client", &["getname", "help", "id", "info", "reply", "setinfo", "setname"]),
];

/// The category of a command's group (its data type, or what it is about), as Redis files it.
pub fn group_category(name: &str) -> Option<Category> {
    use Category::*;
    let category = match name {
        "append" | "decr" | "decrby" | "get" | "getdel" | "getex" | "getrange" | "getset" | "incr"
        | "incrby" | "incrbyfloat" | "mget" | "mset" | "msetnx" | "psetex" | "set" | "setex" | "setnx"
        | "setrange" | "strlen" | "substr" => String,
        "copy" | "dbsize" | "del" | "exists" | "expire" | "expireat" | "expiretime" | "flushall"
        | "flushdb" | "keys" | "object" | "persist" | "pexpire" | "pexpireat" | "pexpiretime" | "pttl"
        | "randomkey" | "rename" | "renamenx" | "scan" | "touch" | "ttl" | "type" | "unlink" => Keyspace,
        "blmove" | "blmpop" | "blpop" | "brpop" | "brpoplpush" | "lindex" | "linsert" | "llen" | "lmove"
        | "lmpop" | "lpop" | "lpos" | "lpush" | "lpushx" | "lrange" | "lrem" | "lset" | "ltrim" | "rpop"
        | "rpoplpush" | "rpush" | "rpushx" => List,
        "sadd" | "scard" | "sdiff" | "sdiffstore" | "sinter" | "sintercard" | "sinterstore" | "sismember"
        | "smembers" | "smismember" | "smove" | "spop" | "srandmember" | "srem" | "sscan" | "sunion"
        | "sunionstore" => Set,
        "publish" | "pubsub" | "psubscribe" | "punsubscribe" | "spublish" | "ssubscribe" | "subscribe"
        | "sunsubscribe" | "unsubscribe" => PubSub,
        "acl" | "auth" | "client" | "command" | "echo" | "hello" | "ping" | "quit" | "reset" | "select"
        | "wait" => Connection,
        "discard" | "exec" | "multi" | "unwatch" | "watch" => Transaction,
        "eval" | "eval_ro" | "evalsha" | "evalsha_ro" | "fcall" | "fcall_ro" | "function" | "script" => {
            Scripting
        }
        "cluster" | "config" | "debug" | "info" | "lastsave" | "memory" | "time" => return None,
        hash if hash.starts_with('h') => Hash,
        zset if zset.starts_with('z') || zset.starts_with("bz") => SortedSet,
        _ => return None,
    };
    Some(category)
}

/// The categories of a command, or of one subcommand of a container command.
pub fn categories(spec: &CommandSpec, subcommand: Option<&str>) -> CategorySet {
    let harmless = HARMLESS_SUBCOMMANDS
        .iter()
        .any(|(name, subs)| *name == spec.name && subcommand.is_some_and(|sub| subs.contains(&sub)));
    let mut set = CategorySet::default();
    let flag = |f: &str| spec.flags.contains(&f);
    if flag("write") {
        set.insert(Category::Write);
    }
    let group = group_category(spec.name);
    let reads = flag("readonly") || spec.class == CommandClass::Read;
    if reads && group != Some(Category::Scripting) {
        set.insert(Category::Read);
    }
    if (flag("admin") || ADMIN.contains(&spec.name)) && !harmless {
        set.insert(Category::Admin);
        set.insert(Category::Dangerous);
    }
    if DANGEROUS.contains(&spec.name) && !harmless {
        set.insert(Category::Dangerous);
    }
    if flag("pubsub") {
        set.insert(Category::PubSub);
    }
    if flag("blocking") {
        set.insert(Category::Blocking);
    }
    set.insert(if flag("fast") { Category::Fast } else { Category::Slow });
    if let Some(group) = group {
        set.insert(group);
    }
    set
}

/// The subcommand of a container command (`get` of `CONFIG GET`), lower case.
pub fn subcommand(spec: &CommandSpec, args: &[Bytes]) -> Option<String> {
    let sub = args.get(1).filter(|_| CONTAINER_COMMANDS.contains(&spec.name))?;
    Some(String::from_utf8_lossy(sub).to_ascii_lowercase())
}

/// Where the `numkeys` argument of a command with moving keys is; its keys follow it.
fn numkeys_position(name: &str) -> Option<usize> {
    match name {
        "eval" | "eval_ro" | "evalsha" | "evalsha_ro" | "fcall" | "fcall_ro" | "blmpop" | "bzmpop"
        | "zunionstore" | "zinterstore" | "zdiffstore" => Some(2),
        "zunion" | "zinter" | "zdiff" | "zintercard" | "sintercard" | "lmpop" | "zmpop" => Some(1),
        _ => None,
    }
}

/// The keys a request names, with how the command uses each. Positions past the arguments
/// are skipped (the arity check answers such a request).
pub fn command_keys<'a>(spec: &CommandSpec, args: &'a [Bytes]) -> Vec<(&'a [u8], KeyAccess)> {
    if SHARD_CHANNEL_COMMANDS.contains(&spec.name) {
        return Vec::new();
    }
    let mut positions = Vec::new();
    if spec.first_key > 0 && spec.key_step > 0 {
        let len = i64::try_from(args.len()).unwrap_or(i64::MAX);
        let last = if spec.last_key < 0 { len + i64::from(spec.last_key) } else { i64::from(spec.last_key) };
        let mut position = i64::from(spec.first_key);
        while position <= last && position < len {
            positions.push(position as usize);
            position += i64::from(spec.key_step);
        }
    }
    if let Some(at) = numkeys_position(spec.name) {
        let count =
            args.get(at).and_then(|n| std::str::from_utf8(n).ok()?.parse::<usize>().ok()).unwrap_or(0);
        let end = at.saturating_add(1).saturating_add(count).min(args.len());
        positions.extend((at + 1)..end);
    }
    positions
        .into_iter()
        .filter_map(|position| Some((args.get(position)?.as_ref(), access(spec, position))))
        .collect()
}

/// The channels a request publishes to or subscribes to, each with whether it is a pattern
/// (PSUBSCRIBE's), as Redis 7 checks them. Unsubscribing names none: leaving is always
/// allowed.
pub fn command_channels<'a>(spec: &CommandSpec, args: &'a [Bytes]) -> Vec<(&'a [u8], bool)> {
    let names = args.get(1..).unwrap_or_default();
    match spec.name {
        "subscribe" | "ssubscribe" => names.iter().map(|name| (name.as_ref(), false)).collect(),
        "psubscribe" => names.iter().map(|name| (name.as_ref(), true)).collect(),
        "publish" | "spublish" => names.first().map(|name| (name.as_ref(), false)).into_iter().collect(),
        _ => Vec::new(),
    }
}

/// How the command at `spec` uses the key at `position`: a read command reads; a command that
/// stores a result writes its destination and reads its sources; other writes write.
fn access(spec: &CommandSpec, position: usize) -> KeyAccess {
    let destination = match spec.name {
        "copy" => Some(2),
        name if name.ends_with("store") => Some(1),
        _ => None,
    };
    match (spec.class, destination) {
        (CommandClass::Read, _) => KeyAccess::Read,
        (_, Some(destination)) if destination != position => KeyAccess::Read,
        _ => KeyAccess::Write,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::resp::command::table::{lookup, COMMANDS};

    fn args(text: &str) -> Vec<Bytes> {
        text.split(' ').map(|w| Bytes::from(w.to_string())).collect()
    }

    fn keys(text: &str) -> Vec<(String, KeyAccess)> {
        let args = args(text);
        let spec = lookup(&args[0]).expect("known");
        command_keys(spec, &args)
            .into_iter()
            .map(|(k, a)| (String::from_utf8_lossy(k).into_owned(), a))
            .collect()
    }

    #[test]
    fn every_command_has_a_group_or_is_a_server_command() {
        let server = ["cluster", "config", "debug", "info", "lastsave", "memory", "time"];
        for spec in COMMANDS {
            assert!(
                group_category(spec.name).is_some() || server.contains(&spec.name),
                "{} has no ACL category for its group",
                spec.name
            );
        }
    }

    #[test]
    fn categories_follow_redis() {
        let of = |name: &str| categories(lookup(name.as_bytes()).expect("known"), None);
        let get = of("get");
        assert!(
            get.contains(Category::Read) && get.contains(Category::String) && get.contains(Category::Fast)
        );
        assert!(!get.contains(Category::Write));
        let flushall = of("flushall");
        assert!(flushall.contains(Category::Dangerous) && flushall.contains(Category::Write));
        assert!(of("config").contains(Category::Admin));
        let acl = lookup(b"acl").expect("known");
        assert!(categories(acl, Some("setuser")).contains(Category::Admin));
        assert!(!categories(acl, Some("whoami")).contains(Category::Dangerous), "as Redis files ACL WHOAMI");
        assert!(of("blpop").contains(Category::Blocking) && of("blpop").contains(Category::List));
        assert!(of("zadd").contains(Category::SortedSet) && of("hset").contains(Category::Hash));
        assert!(of("publish").contains(Category::PubSub));
        assert!(of("eval").contains(Category::Scripting) && !of("eval").contains(Category::Read));
    }

    #[test]
    fn keys_come_from_positions_and_numkeys() {
        use KeyAccess::{Read, Write};
        let k = |s: &str| s.to_string();
        assert_eq!(keys("GET a"), [(k("a"), Read)]);
        assert_eq!(keys("MSET a 1 b 2"), [(k("a"), Write), (k("b"), Write)]);
        assert_eq!(keys("BLPOP a b 0"), [(k("a"), Write), (k("b"), Write)]);
        assert_eq!(keys("SUNIONSTORE d a b"), [(k("d"), Write), (k("a"), Read), (k("b"), Read)]);
        assert_eq!(
            keys("ZUNIONSTORE d 2 a b WEIGHTS 1 2"),
            [(k("d"), Write), (k("a"), Read), (k("b"), Read)]
        );
        assert_eq!(keys("EVAL s 2 a b c"), [(k("a"), Write), (k("b"), Write)]);
        assert_eq!(keys("EVAL_RO s 1 a"), [(k("a"), Read)]);
        assert_eq!(keys("EVAL s 99 a"), [(k("a"), Write)], "numkeys past the arguments");
        assert_eq!(keys("LMPOP 1 l LEFT"), [(k("l"), Write)]);
        assert_eq!(keys("COPY a b"), [(k("a"), Read), (k("b"), Write)]);
        assert!(keys("PING").is_empty() && keys("KEYS *").is_empty());
        assert!(keys("SPUBLISH s m").is_empty() && keys("SSUBSCRIBE s t").is_empty(), "shard channels");
    }

    #[test]
    fn channels_are_those_published_or_subscribed_to() {
        let channels = |text: &str| {
            let args = args(text);
            let spec = lookup(&args[0]).expect("known");
            command_channels(spec, &args)
                .into_iter()
                .map(|(c, pattern)| (String::from_utf8_lossy(c).into_owned(), pattern))
                .collect::<Vec<_>>()
        };
        let c = |s: &str, pattern: bool| (s.to_string(), pattern);
        assert_eq!(channels("SUBSCRIBE a b"), [c("a", false), c("b", false)]);
        assert_eq!(channels("SSUBSCRIBE a"), [c("a", false)]);
        assert_eq!(channels("PSUBSCRIBE a* b"), [c("a*", true), c("b", true)]);
        assert_eq!(channels("PUBLISH a message"), [c("a", false)]);
        assert_eq!(channels("SPUBLISH a message"), [c("a", false)]);
        for free in ["UNSUBSCRIBE a", "PUNSUBSCRIBE a*", "SUNSUBSCRIBE a", "PUBSUB NUMSUB a", "GET a"] {
            assert!(channels(free).is_empty(), "{free}");
        }
    }
}

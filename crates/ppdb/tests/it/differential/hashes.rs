//! Generators for the hash commands: HSET/HMSET, HSETNX, HDEL, the counters, the reads,
//! HRANDFIELD and HSCAN.
//!
//! Whole-hash replies come in the order of Redis's tables and are compared unordered (as
//! field/value pairs). HRANDFIELD's fields are random unless its count covers the hash: then
//! the reply is the whole hash, compared unordered; otherwise only its shape is compared.

use super::generator::{Command, Compare, Families, KeyPool, Rng};

/// The hash families, registered in `GROUPS` (mod.rs).
pub const FAMILIES: Families = &[
    ("hset", hset),
    ("hset", hset),
    ("hsetnx", hsetnx),
    ("hdel", hdel),
    ("hincrby", hincrby),
    ("hincrbyfloat", hincrbyfloat),
    ("hget", hget),
    ("hmget", hmget),
    ("hlen", hlen),
    ("hgetall", hgetall),
    ("hkeys", hkeys),
    ("hexists", hexists),
    ("hstrlen", hstrlen),
    ("hrandfield", hrandfield),
    ("hscan", hscan),
];

/// The whole value of a hash key, read after a sequence.
pub fn inspect(key: &[u8]) -> Command {
    Command::new("HGETALL").arg(key).compared(Compare::UnorderedPairs)
}

/// HSET or HMSET of one to three pairs.
fn hset(rng: &mut Rng, keys: &KeyPool) -> Command {
    let mut command = Command::new(rng.pick(&["HSET", "HSET", "HMSET"])).arg(keys.key(rng));
    for _ in 0..1 + rng.below(3) {
        command = command.arg(rng.element()).arg(rng.value());
    }
    command
}

fn hsetnx(rng: &mut Rng, keys: &KeyPool) -> Command {
    Command::new("HSETNX").arg(keys.key(rng)).arg(rng.element()).arg(rng.value())
}

fn hdel(rng: &mut Rng, keys: &KeyPool) -> Command {
    Command::new("HDEL").arg(keys.key(rng)).args(rng.elements(3))
}

fn hincrby(rng: &mut Rng, keys: &KeyPool) -> Command {
    Command::new("HINCRBY").arg(keys.key(rng)).arg(rng.element()).arg(rng.integer())
}

fn hincrbyfloat(rng: &mut Rng, keys: &KeyPool) -> Command {
    Command::new("HINCRBYFLOAT").arg(keys.key(rng)).arg(rng.element()).arg(rng.float())
}

fn hget(rng: &mut Rng, keys: &KeyPool) -> Command {
    Command::new("HGET").arg(keys.key(rng)).arg(rng.element())
}

fn hmget(rng: &mut Rng, keys: &KeyPool) -> Command {
    Command::new("HMGET").arg(keys.key(rng)).args(rng.elements(4))
}

fn hlen(rng: &mut Rng, keys: &KeyPool) -> Command {
    Command::new("HLEN").arg(keys.key(rng))
}

fn hgetall(rng: &mut Rng, keys: &KeyPool) -> Command {
    inspect(&keys.key(rng))
}

fn hkeys(rng: &mut Rng, keys: &KeyPool) -> Command {
    Command::new(rng.pick(&["HKEYS", "HVALS"])).arg(keys.key(rng)).unordered()
}

fn hexists(rng: &mut Rng, keys: &KeyPool) -> Command {
    Command::new("HEXISTS").arg(keys.key(rng)).arg(rng.element())
}

fn hstrlen(rng: &mut Rng, keys: &KeyPool) -> Command {
    Command::new("HSTRLEN").arg(keys.key(rng)).arg(rng.element())
}

/// HRANDFIELD with a count covering the hash (forced, compared as unordered pairs), or without
/// a count or with a small one of either sign (random, compared by shape); WITHVALUES now and
/// then. Never a large negative count: Redis would send that many fields.
fn hrandfield(rng: &mut Rng, keys: &KeyPool) -> Command {
    let command = Command::new("HRANDFIELD").arg(keys.key(rng));
    let (command, forced) = match rng.below(6) {
        0 | 1 => (command.arg(rng.pick(&["100", "1000", "4611686018427387903"])), true),
        2 => return command.shape(),
        // Out of range with WITHVALUES only: without, Redis would try to send that many.
        3 => return command.arg("-4611686018427387904").arg("WITHVALUES").never_malformed(),
        4 => (command.arg(rng.pick(&["0", "-9223372036854775808", "x"])), false),
        _ => (command.arg(rng.range(-5, 5).to_string()), false),
    };
    let with = rng.chance(40);
    let command = command.arg_if(with, "WITHVALUES").never_malformed();
    match (forced, with) {
        (true, true) => command.compared(Compare::UnorderedPairs),
        (true, false) => command.unordered(),
        (false, _) => command.shape(),
    }
}

/// A whole HSCAN in one call (COUNT above any hash's size, so both answer cursor 0), or one
/// with a bad cursor or option.
fn hscan(rng: &mut Rng, keys: &KeyPool) -> Command {
    let command = Command::new("HSCAN").arg(keys.key(rng));
    if rng.chance(15) {
        let (cursor, option, value) = *rng.pick(&[
            ("x", "COUNT", "1000"),
            ("0", "COUNT", "0"),
            ("0", "COUNT", "x"),
            ("0", "NOVALUES", "1"),
        ]);
        return command.arg(cursor).arg(option).arg(value);
    }
    let command = command.arg("0");
    let command = match rng.coin() {
        true => command.arg("MATCH").arg(rng.pick(&["*", "a", "?", "[ab]", "1*", "*x*"])),
        false => command,
    };
    command.arg("COUNT").arg("1000").compared(Compare::UnorderedPairs)
}

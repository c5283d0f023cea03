//! Generators for the set commands: SADD, SREM, SMOVE, SPOP, the membership reads,
//! SRANDMEMBER, SMEMBERS, SINTER/SUNION/SDIFF and their STORE forms, SINTERCARD and SSCAN.
//!
//! Set replies come in the order of Redis's hash tables, so they are compared unordered. Redis
//! draws SPOP's and SRANDMEMBER's members at random: with a count at least the set's size the
//! reply is forced (the whole set) and compared unordered; otherwise only its shape is
//! compared, and after a random SPOP the key is deleted on both servers so that they agree
//! again.

use super::generator::{Command, Families, KeyPool, Rng};

/// The set families, registered in `GROUPS` (mod.rs).
pub const FAMILIES: Families = &[
    ("sadd", sadd),
    ("sadd", sadd),
    ("srem", srem),
    ("smove", smove),
    ("spop", spop),
    ("sismember", sismember),
    ("smismember", smismember),
    ("scard", scard),
    ("srandmember", srandmember),
    ("smembers", smembers),
    ("combine", combine),
    ("store", store),
    ("sintercard", sintercard),
    ("sscan", sscan),
];

/// The whole value of a set key, read after a sequence.
pub fn inspect(key: &[u8]) -> Command {
    Command::new("SMEMBERS").arg(key).unordered()
}

/// Counts at least the size of any set a sequence builds (at most 40 commands of a few
/// members each, from [`Rng::element`]'s few dozen values): the whole set is forced.
const COVERING_COUNTS: &[&str] = &["100", "1000", "9223372036854775807"];

/// SADD of one to five members (drawn twice as often as the other families, so sets grow).
fn sadd(rng: &mut Rng, keys: &KeyPool) -> Command {
    Command::new("SADD").arg(keys.key(rng)).args(rng.elements(5))
}

fn srem(rng: &mut Rng, keys: &KeyPool) -> Command {
    Command::new("SREM").arg(keys.key(rng)).args(rng.elements(3))
}

fn smove(rng: &mut Rng, keys: &KeyPool) -> Command {
    Command::new("SMOVE").arg(keys.key(rng)).arg(keys.key(rng)).arg(rng.element())
}

/// SPOP whose reply is forced (a count covering the set, zero, or a bad count), or a random
/// one compared by shape, then SCARD (the set lost as many members as were popped) and DEL.
fn spop(rng: &mut Rng, keys: &KeyPool) -> Command {
    let key = keys.key(rng);
    let command = Command::new("SPOP").arg(&key);
    match rng.below(6) {
        0 | 1 => command.arg(rng.pick(COVERING_COUNTS)).unordered().never_malformed(),
        2 => command.arg(rng.pick(&["0", "-1", "x", "-9223372036854775808", ""])).never_malformed(),
        random => {
            let command = if random == 3 { command } else { command.arg(rng.range(1, 3).to_string()) };
            command.shape().then(Command::new("SCARD").arg(&key)).then(Command::new("DEL").arg(&key))
        }
    }
}

fn sismember(rng: &mut Rng, keys: &KeyPool) -> Command {
    Command::new("SISMEMBER").arg(keys.key(rng)).arg(rng.element())
}

fn smismember(rng: &mut Rng, keys: &KeyPool) -> Command {
    Command::new("SMISMEMBER").arg(keys.key(rng)).args(rng.elements(4))
}

fn scard(rng: &mut Rng, keys: &KeyPool) -> Command {
    Command::new("SCARD").arg(keys.key(rng))
}

/// SRANDMEMBER with a covering count (forced, compared unordered), or without a count or with
/// a small one of either sign (random, compared by shape). Never a large negative count: Redis
/// would send that many members (-9223372036854775807 hangs it).
fn srandmember(rng: &mut Rng, keys: &KeyPool) -> Command {
    let command = Command::new("SRANDMEMBER").arg(keys.key(rng));
    match rng.below(5) {
        0 | 1 => command.arg(rng.pick(COVERING_COUNTS)).unordered().never_malformed(),
        2 => command.shape(),
        3 => command.arg(rng.pick(&["0", "-9223372036854775808", "x", ""])).shape().never_malformed(),
        _ => command.arg(rng.range(-5, 5).to_string()).shape().never_malformed(),
    }
}

fn smembers(rng: &mut Rng, keys: &KeyPool) -> Command {
    Command::new("SMEMBERS").arg(keys.key(rng)).unordered()
}

fn combine(rng: &mut Rng, keys: &KeyPool) -> Command {
    Command::new(rng.pick(&["SINTER", "SUNION", "SDIFF"])).args(keys.keys(rng, 3)).unordered()
}

fn store(rng: &mut Rng, keys: &KeyPool) -> Command {
    let name = *rng.pick(&["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"]);
    Command::new(name).arg(keys.key(rng)).args(keys.keys(rng, 3))
}

/// SINTERCARD numkeys key... [LIMIT n], numkeys sometimes not the keys' count.
fn sintercard(rng: &mut Rng, keys: &KeyPool) -> Command {
    let keys = keys.keys(rng, 3);
    let numkeys = match rng.below(8) {
        0 => rng.pick(&["0", "-1", "x", "4"]).to_string(),
        _ => keys.len().to_string(),
    };
    let command = Command::new("SINTERCARD").arg(numkeys).args(keys);
    match rng.below(3) {
        0 => command.arg("LIMIT").arg(rng.pick(&["0", "1", "2", "-1", "x"])),
        _ => command,
    }
}

/// A whole SSCAN in one call (a COUNT above any set's size, so both servers answer cursor 0),
/// or one with a bad cursor or option.
fn sscan(rng: &mut Rng, keys: &KeyPool) -> Command {
    let command = Command::new("SSCAN").arg(keys.key(rng));
    if rng.chance(15) {
        let (cursor, option, value) = *rng.pick(&[
            ("x", "COUNT", "1000"),
            ("1.5", "COUNT", "1000"),
            ("0", "COUNT", "0"),
            ("0", "COUNT", "x"),
            ("0", "NOPE", "1"),
        ]);
        return command.arg(cursor).arg(option).arg(value);
    }
    let command = command.arg("0");
    let command = match rng.coin() {
        true => command.arg("MATCH").arg(rng.pick(&["*", "a", "?", "[ab]", "1*", "*x*", "-*"])),
        false => command,
    };
    command.arg("COUNT").arg("1000").unordered()
}

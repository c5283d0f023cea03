//! Generators for the key-space commands: DEL, EXISTS, TYPE, RENAME, COPY, the EXPIRE family
//! and its reads, PERSIST, DBSIZE, KEYS, SCAN; and unknown commands.

use super::generator::{Command, Families, KeyPool, Rng};

/// The key-space families, registered in `GROUPS` (mod.rs).
pub const FAMILIES: Families = &[
    ("del", del),
    ("exists", exists),
    ("type", type_of),
    ("rename", rename),
    ("copy", copy),
    ("expire", expire),
    ("expire_at", expire_at),
    ("ttl", ttl),
    ("persist", persist),
    ("dbsize", dbsize),
    ("keys", keys_matching),
    ("scan", scan),
    ("unknown", unknown),
];

fn del(rng: &mut Rng, keys: &KeyPool) -> Command {
    Command::new(rng.pick(&["DEL", "UNLINK"])).args(keys.keys(rng, 3))
}

fn exists(rng: &mut Rng, keys: &KeyPool) -> Command {
    Command::new(rng.pick(&["EXISTS", "TOUCH"])).args(keys.keys(rng, 3))
}

fn type_of(rng: &mut Rng, keys: &KeyPool) -> Command {
    Command::new("TYPE").arg(keys.key(rng))
}

fn rename(rng: &mut Rng, keys: &KeyPool) -> Command {
    Command::new(rng.pick(&["RENAME", "RENAMENX"])).arg(keys.key(rng)).arg(keys.key(rng))
}

/// COPY, sometimes with `DB 1`, a known difference (one database) that the harness skips.
fn copy(rng: &mut Rng, keys: &KeyPool) -> Command {
    let mut command = Command::new("COPY").arg(keys.key(rng)).arg(keys.key(rng));
    if rng.chance(20) {
        command = command.arg("DB").arg(rng.pick(&["0", "0", "1", "-1", "x"]));
    }
    command.arg_if(rng.chance(40), "REPLACE")
}

/// Zero to two of NX XX GT LT (conflicting pairs included).
fn expire_conditions(rng: &mut Rng) -> Vec<&'static str> {
    let count = [0, 0, 1, 1, 1, 2][rng.below(6)];
    (0..count).map(|_| *rng.pick(&["NX", "XX", "GT", "LT", "gt"])).collect()
}

fn expire(rng: &mut Rng, keys: &KeyPool) -> Command {
    let name = *rng.pick(&["EXPIRE", "PEXPIRE"]);
    let amount = match rng.below(10) {
        0 => rng.pick(&["0", "-1", "-100"]).as_bytes().to_vec(),
        1 => rng.pick(&["9223372036854775807", "-9223372036854775808", "abc", ""]).as_bytes().to_vec(),
        _ => rng.ttl_amount().to_string().into_bytes(),
    };
    Command::new(name).arg(keys.key(rng)).arg(amount).args(expire_conditions(rng))
}

/// EXPIREAT and PEXPIREAT at fixed times, long past or far ahead, so GT and LT compare the
/// same numbers on both servers.
fn expire_at(rng: &mut Rng, keys: &KeyPool) -> Command {
    let seconds = rng.coin();
    let at: i64 = match rng.below(8) {
        0 => *rng.pick(&[0, 1, -5, i64::MAX, i64::MIN]),
        1..=2 => rng.range(1, 1_000_000),
        _ => 4_102_444_800 + rng.range(0, 1_000),
    };
    let (name, at) = if seconds { ("EXPIREAT", at) } else { ("PEXPIREAT", at.saturating_mul(1000)) };
    Command::new(name).arg(keys.key(rng)).arg(at.to_string()).args(expire_conditions(rng))
}

/// TTL reads, compared only as -2 (no key), -1 (no expiry) or positive.
fn ttl(rng: &mut Rng, keys: &KeyPool) -> Command {
    Command::new(rng.pick(&["TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"])).arg(keys.key(rng)).ttl()
}

fn persist(rng: &mut Rng, keys: &KeyPool) -> Command {
    Command::new("PERSIST").arg(keys.key(rng))
}

fn dbsize(_rng: &mut Rng, _keys: &KeyPool) -> Command {
    Command::new("DBSIZE")
}

const PATTERNS: &[&str] = &["*", "?", "a*", "*:*", "[ab]", "[^a]*", "{t}*", "\\*", "two?words", "nope"];

fn keys_matching(rng: &mut Rng, _keys: &KeyPool) -> Command {
    Command::new("KEYS").arg(rng.pick(PATTERNS)).unordered()
}

/// A full SCAN in one call (COUNT above the key count, so both servers finish at cursor 0).
fn scan(rng: &mut Rng, _keys: &KeyPool) -> Command {
    let mut command = Command::new("SCAN").arg("0");
    if rng.coin() {
        command = command.arg("MATCH").arg(rng.pick(PATTERNS));
    }
    command = command.arg("COUNT").arg("1000");
    if rng.chance(30) {
        command = command.arg("TYPE").arg(rng.pick(&["string", "STRING", "list", "hash", "set", "zset"]));
    }
    command.unordered()
}

/// Unknown command names and known ones in odd case.
fn unknown(rng: &mut Rng, keys: &KeyPool) -> Command {
    let name = *rng.pick(&["FOOBAR", "gEt", "Set", "getx", ""]);
    Command::new(name).args(keys.keys(rng, 2))
}

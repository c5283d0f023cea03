//! Generators for the list commands: the pushes, LRANGE, LINDEX, LSET, LINSERT, LREM, LTRIM,
//! LLEN and LPOS with its options.

use super::generator::{Command, Families, KeyPool, Rng};

/// The list families, registered in `GROUPS` (mod.rs).
pub const FAMILIES: Families = &[
    ("push", push),
    ("push", push),
    ("pushx", pushx),
    ("lrange", lrange),
    ("lindex", lindex),
    ("lset", lset),
    ("linsert", linsert),
    ("lrem", lrem),
    ("ltrim", ltrim),
    ("llen", llen),
    ("lpos", lpos),
];

/// The whole value of a list key, read after a sequence.
pub fn inspect(key: &[u8]) -> Command {
    Command::new("LRANGE").arg(key).arg("0").arg("-1")
}

/// LPUSH or RPUSH of one to four elements (pushed twice as often as the other families are
/// drawn, so that lists grow).
fn push(rng: &mut Rng, keys: &KeyPool) -> Command {
    Command::new(rng.pick(&["LPUSH", "RPUSH"])).arg(keys.key(rng)).args(rng.elements(4))
}

fn pushx(rng: &mut Rng, keys: &KeyPool) -> Command {
    Command::new(rng.pick(&["LPUSHX", "RPUSHX"])).arg(keys.key(rng)).args(rng.elements(3))
}

fn lrange(rng: &mut Rng, keys: &KeyPool) -> Command {
    Command::new("LRANGE").arg(keys.key(rng)).arg(rng.index()).arg(rng.index())
}

fn lindex(rng: &mut Rng, keys: &KeyPool) -> Command {
    Command::new("LINDEX").arg(keys.key(rng)).arg(rng.index())
}

fn lset(rng: &mut Rng, keys: &KeyPool) -> Command {
    Command::new("LSET").arg(keys.key(rng)).arg(rng.index()).arg(rng.element())
}

fn linsert(rng: &mut Rng, keys: &KeyPool) -> Command {
    let place = *rng.pick(&["BEFORE", "AFTER", "after", "middle"]);
    Command::new("LINSERT").arg(keys.key(rng)).arg(place).arg(rng.element()).arg(rng.element())
}

fn lrem(rng: &mut Rng, keys: &KeyPool) -> Command {
    let count = match rng.below(8) {
        0 => rng.integer(),
        _ => rng.range(-3, 3).to_string().into_bytes(),
    };
    Command::new("LREM").arg(keys.key(rng)).arg(count).arg(rng.element())
}

fn ltrim(rng: &mut Rng, keys: &KeyPool) -> Command {
    Command::new("LTRIM").arg(keys.key(rng)).arg(rng.index()).arg(rng.index())
}

fn llen(rng: &mut Rng, keys: &KeyPool) -> Command {
    Command::new("LLEN").arg(keys.key(rng))
}

/// LPOS with zero to three of RANK, COUNT and MAXLEN, in any order, repeated now and then,
/// with zero, negative and odd values.
fn lpos(rng: &mut Rng, keys: &KeyPool) -> Command {
    let mut command = Command::new("LPOS").arg(keys.key(rng)).arg(rng.element());
    for _ in 0..rng.below(4) {
        let (option, value) = match rng.below(3) {
            0 => ("RANK", rng.pick(&["1", "2", "-1", "-2", "3", "0", "x", "-9223372036854775808"])),
            1 => ("COUNT", rng.pick(&["0", "1", "2", "5", "-1", "x"])),
            _ => ("MAXLEN", rng.pick(&["0", "1", "3", "-1", "x"])),
        };
        command =
            command.arg(if rng.chance(10) { option.to_lowercase() } else { option.to_string() }).arg(value);
    }
    command
}

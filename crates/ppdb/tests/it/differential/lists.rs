//! Generators for the list commands: the pushes, LRANGE, LINDEX, LSET, LINSERT, LREM, LTRIM,
//! LLEN, LPOS with its options, and the pops: LPOP, RPOP, LMPOP, LMOVE, RPOPLPUSH and their
//! blocking forms, with timeouts short enough that a pop that waits ends within the test.

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
    ("pop", pop),
    ("lmpop", lmpop),
    ("lmove", lmove),
    ("blocking_pop", blocking_pop),
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

/// LPOP or RPOP, with a count now and then (zero, negative and odd ones too).
fn pop(rng: &mut Rng, keys: &KeyPool) -> Command {
    let command = Command::new(rng.pick(&["LPOP", "RPOP"])).arg(keys.key(rng));
    match rng.below(3) {
        0 => command.arg(rng.pick(&["0", "1", "2", "5", "100", "-1", "x"])),
        _ => command,
    }
}

/// The direction of a pop or a push: LEFT or RIGHT, or not one.
fn direction(rng: &mut Rng) -> &'static str {
    let choices: &[&'static str] = if rng.chance(95) { &["LEFT", "RIGHT", "left"] } else { &["UP", ""] };
    choices[rng.below(choices.len())]
}

/// LMPOP's arguments after the timeout: numkeys (sometimes not the keys' count), the keys, a
/// direction, and COUNT now and then.
fn lmpop_args(rng: &mut Rng, keys: &KeyPool) -> Vec<Vec<u8>> {
    let keys = keys.keys(rng, 3);
    let numkeys = match rng.below(10) {
        0 => rng.pick(&["0", "-1", "x", "4"]).to_string(),
        _ => keys.len().to_string(),
    };
    let mut args = vec![numkeys.into_bytes()];
    args.extend(keys);
    args.push(direction(rng).into());
    if rng.chance(40) {
        args.push(b"COUNT".to_vec());
        args.push(rng.pick(&["1", "2", "10", "0", "-1", "x"]).as_bytes().to_vec());
    }
    args
}

fn lmpop(rng: &mut Rng, keys: &KeyPool) -> Command {
    Command::new("LMPOP").args(lmpop_args(rng, keys))
}

/// LMOVE source destination LEFT|RIGHT LEFT|RIGHT, or RPOPLPUSH source destination.
fn lmove(rng: &mut Rng, keys: &KeyPool) -> Command {
    let (source, destination) = (keys.key(rng), keys.key(rng));
    if rng.chance(25) {
        return Command::new("RPOPLPUSH").arg(source).arg(destination);
    }
    Command::new("LMOVE").arg(source).arg(destination).arg(direction(rng)).arg(direction(rng))
}

/// A blocking pop with a timeout of at most 20 ms (or a bad one). Never malformed: a stray
/// "0" in the timeout's place would block both servers for ever.
fn blocking_pop(rng: &mut Rng, keys: &KeyPool) -> Command {
    let timeout =
        if rng.chance(90) { *rng.pick(&["0.01", "0.02", ".01"]) } else { *rng.pick(&["-1", "x", "-0.5"]) };
    let command = match rng.below(5) {
        0 | 1 => Command::new(rng.pick(&["BLPOP", "BRPOP"])).args(keys.keys(rng, 3)).arg(timeout),
        2 => Command::new("BLMPOP").arg(timeout).args(lmpop_args(rng, keys)),
        3 => Command::new("BLMOVE")
            .arg(keys.key(rng))
            .arg(keys.key(rng))
            .arg(direction(rng))
            .arg(direction(rng))
            .arg(timeout),
        _ => Command::new("BRPOPLPUSH").arg(keys.key(rng)).arg(keys.key(rng)).arg(timeout),
    };
    command.never_malformed()
}

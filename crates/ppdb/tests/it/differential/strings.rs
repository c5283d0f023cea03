//! Generators for the string commands: GET, SET and its options, the GETSET family, MGET,
//! MSET, counters, APPEND and the range commands.

use super::generator::{Command, Families, KeyPool, Rng};

/// The string families, registered in `GROUPS` (mod.rs).
pub const FAMILIES: Families = &[
    ("get", get),
    ("set", set),
    ("setnx", setnx),
    ("setex", setex),
    ("getset", getset),
    ("getdel", getdel),
    ("getex", getex),
    ("mget", mget),
    ("mset", mset),
    ("counter", counter),
    ("incrbyfloat", incrbyfloat),
    ("append", append),
    ("setrange", setrange),
    ("getrange", getrange),
    ("strlen", strlen),
];

/// The whole value of a string key, read after a sequence.
pub fn inspect(key: &[u8]) -> Command {
    Command::new("GET").arg(key)
}

fn get(rng: &mut Rng, keys: &KeyPool) -> Command {
    Command::new("GET").arg(keys.key(rng))
}

/// An expiry option of SET or GETEX: relative times far enough ahead never to pass during the
/// test, absolute ones either long past (the key goes at once) or far ahead.
fn expiry_option(rng: &mut Rng) -> [Vec<u8>; 2] {
    let (option, amount) = match rng.below(6) {
        0 => ("EX", rng.ttl_amount()),
        1 => ("PX", rng.ttl_amount()),
        2 => ("EXAT", rng.pick(&[1, 1_000, 4_102_444_800, 4_102_444_801]).to_owned()),
        3 => ("PXAT", rng.pick(&[1, 1_000_000, 4_102_444_800_000, 4_102_444_800_999]).to_owned()),
        4 => (*rng.pick(&["EX", "PX", "EXAT", "PXAT"]), *rng.pick(&[0, -1, i64::MAX, i64::MIN])),
        _ => ("ex", rng.ttl_amount()),
    };
    [option.as_bytes().to_vec(), amount.to_string().into_bytes()]
}

fn set(rng: &mut Rng, keys: &KeyPool) -> Command {
    let mut command = Command::new("SET").arg(keys.key(rng)).arg(rng.value());
    if rng.chance(30) {
        command = command.arg(rng.pick(&["NX", "XX", "nx"]));
    }
    if rng.chance(30) {
        command = command.args(expiry_option(rng));
    } else if rng.chance(15) {
        command = command.arg("KEEPTTL");
    }
    if rng.chance(25) {
        command = command.arg("GET");
    }
    if rng.chance(10) {
        // Options repeated or in conflict: NX XX, EX with KEEPTTL, EX twice.
        command = command.arg(rng.pick(&["NX", "XX", "KEEPTTL", "GET"]));
    }
    command
}

fn setnx(rng: &mut Rng, keys: &KeyPool) -> Command {
    Command::new("SETNX").arg(keys.key(rng)).arg(rng.value())
}

fn setex(rng: &mut Rng, keys: &KeyPool) -> Command {
    let name = *rng.pick(&["SETEX", "PSETEX"]);
    let amount = match rng.below(5) {
        0 => rng.pick(&["0", "-1", "abc", "", "9223372036854775807"]).as_bytes().to_vec(),
        _ => rng.ttl_amount().to_string().into_bytes(),
    };
    Command::new(name).arg(keys.key(rng)).arg(amount).arg(rng.value())
}

fn getset(rng: &mut Rng, keys: &KeyPool) -> Command {
    Command::new("GETSET").arg(keys.key(rng)).arg(rng.value())
}

fn getdel(rng: &mut Rng, keys: &KeyPool) -> Command {
    Command::new("GETDEL").arg(keys.key(rng))
}

fn getex(rng: &mut Rng, keys: &KeyPool) -> Command {
    let command = Command::new("GETEX").arg(keys.key(rng));
    match rng.below(4) {
        0 => command,
        1 => command.arg("PERSIST"),
        2 if rng.chance(20) => command.args(expiry_option(rng)).arg("PERSIST"),
        _ => command.args(expiry_option(rng)),
    }
}

fn mget(rng: &mut Rng, keys: &KeyPool) -> Command {
    Command::new("MGET").args(keys.keys(rng, 4))
}

fn mset(rng: &mut Rng, keys: &KeyPool) -> Command {
    let name = *rng.pick(&["MSET", "MSETNX"]);
    let pairs = 1 + rng.below(3);
    let mut command = Command::new(name);
    for _ in 0..pairs {
        command = command.arg(keys.key(rng)).arg(rng.value());
    }
    command
}

fn counter(rng: &mut Rng, keys: &KeyPool) -> Command {
    let key = keys.key(rng);
    match rng.below(4) {
        0 => Command::new("INCR").arg(key),
        1 => Command::new("DECR").arg(key),
        2 => Command::new("INCRBY").arg(key).arg(rng.integer()),
        _ => Command::new("DECRBY").arg(key).arg(rng.integer()),
    }
}

fn incrbyfloat(rng: &mut Rng, keys: &KeyPool) -> Command {
    Command::new("INCRBYFLOAT").arg(keys.key(rng)).arg(rng.float())
}

fn append(rng: &mut Rng, keys: &KeyPool) -> Command {
    Command::new("APPEND").arg(keys.key(rng)).arg(rng.value())
}

/// SETRANGE offsets stay small (a string both servers can hold) but for the edges: negative,
/// and Redis's 512 MB limit.
fn setrange(rng: &mut Rng, keys: &KeyPool) -> Command {
    let offset = match rng.below(10) {
        0 => rng.pick(&["-1", "536870912", "abc"]).as_bytes().to_vec(),
        _ => rng.range(0, 12).to_string().into_bytes(),
    };
    Command::new("SETRANGE").arg(keys.key(rng)).arg(offset).arg(rng.value())
}

fn getrange(rng: &mut Rng, keys: &KeyPool) -> Command {
    let name = if rng.chance(10) { "SUBSTR" } else { "GETRANGE" };
    let mut bound = || match rng.below(8) {
        0 => rng.integer(),
        _ => rng.range(-12, 12).to_string().into_bytes(),
    };
    let (start, end) = (bound(), bound());
    Command::new(name).arg(keys.key(rng)).arg(start).arg(end)
}

fn strlen(rng: &mut Rng, keys: &KeyPool) -> Command {
    Command::new("STRLEN").arg(keys.key(rng))
}

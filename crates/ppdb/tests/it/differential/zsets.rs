//! Generators for the sorted-set commands: ZADD with its options, ZINCRBY, ZREM, the score and
//! rank reads, every ZRANGE form (by rank, score and lex, REV, LIMIT, WITHSCORES) and the old
//! range commands, the counts, the range removals, the pops and their blocking forms,
//! ZUNION/ZINTER/ZDIFF with WEIGHTS and AGGREGATE and their STORE forms, ZINTERCARD,
//! ZRANDMEMBER and ZSCAN.
//!
//! A sorted set's order is fixed (score, then member), so most replies are compared exactly;
//! ZRANDMEMBER's members are random unless its count covers the set (compared unordered), and
//! otherwise only its shape is compared.

use super::generator::{Command, Compare, Families, KeyPool, Rng};

/// The sorted-set families, registered in `GROUPS` (mod.rs).
pub const FAMILIES: Families = &[
    ("zadd", zadd),
    ("zadd", zadd),
    ("zincrby", zincrby),
    ("zrem", zrem),
    ("zscore", zscore),
    ("zrank", zrank),
    ("zcard", zcard),
    ("zrange", zrange),
    ("zrange", zrange),
    ("old_range", old_range),
    ("zrangestore", zrangestore),
    ("count", count),
    ("remove_range", remove_range),
    ("pop", pop),
    ("zmpop", zmpop),
    ("blocking_pop", blocking_pop),
    ("combine", combine),
    ("store", store),
    ("zintercard", zintercard),
    ("zrandmember", zrandmember),
    ("zscan", zscan),
];

/// The whole value of a sorted-set key, read after a sequence.
pub fn inspect(key: &[u8]) -> Command {
    Command::new("ZRANGE").arg(key).arg("0").arg("-1").arg("WITHSCORES")
}

/// A score: small numbers (ties included), fractions, exponents, infinities, and now and then
/// not a number.
fn score(rng: &mut Rng) -> &'static str {
    let choices: &[&'static str] = if rng.chance(90) {
        &["0", "1", "1", "2", "-1", "1.5", "-2.5", "10", "1e2", "0.1", "inf", "-inf", "+inf"]
    } else {
        &["nan", "x", "", "1e400", "-0", " 1"]
    };
    choices[rng.below(choices.len())]
}

/// A score bound of ZRANGEBYSCORE and friends: inclusive, exclusive `(`, or infinite.
fn score_bound(rng: &mut Rng) -> String {
    let value = *rng.pick(&["0", "1", "2", "-1", "1.5", "10", "inf", "-inf", "+inf"]);
    match rng.below(10) {
        0..=5 => value.to_string(),
        6..=8 => format!("({value}"),
        _ => rng.pick(&["x", "((1", "[1", ""]).to_string(),
    }
}

/// A lex bound: `[` inclusive, `(` exclusive, `-` and `+`, or one without a prefix (an error).
fn lex_bound(rng: &mut Rng) -> String {
    match rng.below(10) {
        0 => "-".to_string(),
        1 => "+".to_string(),
        2..=5 => format!("[{}", String::from_utf8_lossy(&rng.element())),
        6..=8 => format!("({}", String::from_utf8_lossy(&rng.element())),
        _ => rng.pick(&["a", "", "-a"]).to_string(),
    }
}

/// ZADD with zero to three of NX XX GT LT CH INCR (conflicts included) and one to three pairs
/// (one with INCR, mostly).
fn zadd(rng: &mut Rng, keys: &KeyPool) -> Command {
    let mut command = Command::new("ZADD").arg(keys.key(rng));
    let options = [0, 0, 0, 1, 1, 2, 3][rng.below(7)];
    let mut incr = false;
    for _ in 0..options {
        let option = *rng.pick(&["NX", "XX", "GT", "LT", "CH", "INCR", "ch"]);
        incr |= option == "INCR";
        command = command.arg(option);
    }
    let pairs = if incr && rng.chance(90) { 1 } else { 1 + rng.below(3) };
    for _ in 0..pairs {
        command = command.arg(score(rng)).arg(rng.element());
    }
    command
}

fn zincrby(rng: &mut Rng, keys: &KeyPool) -> Command {
    Command::new("ZINCRBY").arg(keys.key(rng)).arg(score(rng)).arg(rng.element())
}

fn zrem(rng: &mut Rng, keys: &KeyPool) -> Command {
    Command::new("ZREM").arg(keys.key(rng)).args(rng.elements(3))
}

fn zscore(rng: &mut Rng, keys: &KeyPool) -> Command {
    if rng.coin() {
        Command::new("ZSCORE").arg(keys.key(rng)).arg(rng.element())
    } else {
        Command::new("ZMSCORE").arg(keys.key(rng)).args(rng.elements(3))
    }
}

fn zrank(rng: &mut Rng, keys: &KeyPool) -> Command {
    Command::new(rng.pick(&["ZRANK", "ZREVRANK"])).arg(keys.key(rng)).arg(rng.element())
}

fn zcard(rng: &mut Rng, keys: &KeyPool) -> Command {
    Command::new("ZCARD").arg(keys.key(rng))
}

/// The bounds and options of a ZRANGE or ZRANGESTORE: by rank, score or lex, REV, LIMIT now
/// and then (also where Redis refuses it), WITHSCORES when `scores`.
fn range_args(rng: &mut Rng, scores: bool) -> Vec<Vec<u8>> {
    let by = rng.below(3);
    let (start, stop) = match by {
        0 => (rng.index(), rng.index()),
        1 => (score_bound(rng).into_bytes(), score_bound(rng).into_bytes()),
        _ => (lex_bound(rng).into_bytes(), lex_bound(rng).into_bytes()),
    };
    let mut args = vec![start, stop];
    match by {
        1 => args.push(b"BYSCORE".to_vec()),
        2 => args.push(b"BYLEX".to_vec()),
        _ => {}
    }
    if rng.chance(35) {
        args.push(b"REV".to_vec());
    }
    if rng.chance(if by == 0 { 8 } else { 35 }) {
        args.push(b"LIMIT".to_vec());
        args.push(rng.pick(&["0", "1", "2", "-1", "x"]).as_bytes().to_vec());
        args.push(rng.pick(&["1", "2", "-1", "0", "10"]).as_bytes().to_vec());
    }
    if scores && rng.chance(50) {
        args.push(b"WITHSCORES".to_vec());
    }
    args
}

fn zrange(rng: &mut Rng, keys: &KeyPool) -> Command {
    Command::new("ZRANGE").arg(keys.key(rng)).args(range_args(rng, true))
}

fn zrangestore(rng: &mut Rng, keys: &KeyPool) -> Command {
    Command::new("ZRANGESTORE").arg(keys.key(rng)).arg(keys.key(rng)).args(range_args(rng, false))
}

/// ZREVRANGE, ZRANGEBYSCORE, ZREVRANGEBYSCORE, ZRANGEBYLEX, ZREVRANGEBYLEX with their options.
fn old_range(rng: &mut Rng, keys: &KeyPool) -> Command {
    let key = keys.key(rng);
    let limit = |rng: &mut Rng, command: Command| match rng.below(3) {
        0 => command.arg("LIMIT").arg(rng.pick(&["0", "1", "-1"])).arg(rng.pick(&["1", "2", "-1", "0"])),
        _ => command,
    };
    let withscores = |rng: &mut Rng, command: Command| command.arg_if(rng.coin(), "WITHSCORES");
    match rng.below(5) {
        0 => {
            let (start, stop) = (rng.index(), rng.index());
            withscores(rng, Command::new("ZREVRANGE").arg(key).arg(start).arg(stop))
        }
        1 | 2 => {
            let name = if rng.coin() { "ZRANGEBYSCORE" } else { "ZREVRANGEBYSCORE" };
            let command = Command::new(name).arg(key).arg(score_bound(rng)).arg(score_bound(rng));
            let command = withscores(rng, command);
            limit(rng, command)
        }
        _ => {
            let name = if rng.coin() { "ZRANGEBYLEX" } else { "ZREVRANGEBYLEX" };
            let (min, max) = (lex_bound(rng), lex_bound(rng));
            limit(rng, Command::new(name).arg(key).arg(min).arg(max))
        }
    }
}

fn count(rng: &mut Rng, keys: &KeyPool) -> Command {
    let key = keys.key(rng);
    if rng.coin() {
        Command::new("ZCOUNT").arg(key).arg(score_bound(rng)).arg(score_bound(rng))
    } else {
        Command::new("ZLEXCOUNT").arg(key).arg(lex_bound(rng)).arg(lex_bound(rng))
    }
}

fn remove_range(rng: &mut Rng, keys: &KeyPool) -> Command {
    let key = keys.key(rng);
    match rng.below(3) {
        0 => Command::new("ZREMRANGEBYRANK").arg(key).arg(rng.index()).arg(rng.index()),
        1 => Command::new("ZREMRANGEBYSCORE").arg(key).arg(score_bound(rng)).arg(score_bound(rng)),
        _ => Command::new("ZREMRANGEBYLEX").arg(key).arg(lex_bound(rng)).arg(lex_bound(rng)),
    }
}

/// ZPOPMIN or ZPOPMAX, with a count now and then.
fn pop(rng: &mut Rng, keys: &KeyPool) -> Command {
    let command = Command::new(rng.pick(&["ZPOPMIN", "ZPOPMAX"])).arg(keys.key(rng));
    match rng.below(3) {
        0 => command.arg(rng.pick(&["0", "1", "2", "10", "-1", "x"])),
        _ => command,
    }
}

/// ZMPOP's arguments after the timeout: numkeys, the keys, MIN or MAX, COUNT now and then.
fn zmpop_args(rng: &mut Rng, keys: &KeyPool) -> Vec<Vec<u8>> {
    let keys = keys.keys(rng, 3);
    let numkeys = match rng.below(10) {
        0 => rng.pick(&["0", "-1", "x", "4"]).to_string(),
        _ => keys.len().to_string(),
    };
    let mut args = vec![numkeys.into_bytes()];
    args.extend(keys);
    args.push(rng.pick(&["MIN", "MAX", "max", "MIDDLE"]).as_bytes().to_vec());
    if rng.chance(40) {
        args.push(b"COUNT".to_vec());
        args.push(rng.pick(&["1", "2", "10", "0", "-1", "x"]).as_bytes().to_vec());
    }
    args
}

fn zmpop(rng: &mut Rng, keys: &KeyPool) -> Command {
    Command::new("ZMPOP").args(zmpop_args(rng, keys))
}

/// BZPOPMIN, BZPOPMAX or BZMPOP with a timeout of at most 20 ms (or a bad one); never
/// malformed, since a stray "0" as the timeout would block for ever.
fn blocking_pop(rng: &mut Rng, keys: &KeyPool) -> Command {
    let timeout = if rng.chance(90) { *rng.pick(&["0.01", "0.02"]) } else { *rng.pick(&["-1", "x"]) };
    let command = match rng.below(3) {
        0 | 1 => Command::new(rng.pick(&["BZPOPMIN", "BZPOPMAX"])).args(keys.keys(rng, 3)).arg(timeout),
        _ => Command::new("BZMPOP").arg(timeout).args(zmpop_args(rng, keys)),
    };
    command.never_malformed()
}

/// numkeys and the keys of ZUNION and friends, then WEIGHTS and AGGREGATE now and then (not
/// for the diff, which refuses them).
fn combine_args(rng: &mut Rng, keys: &KeyPool, weights: bool) -> Vec<Vec<u8>> {
    let keys = keys.keys(rng, 3);
    let count = keys.len();
    let numkeys = match rng.below(12) {
        0 => rng.pick(&["0", "-1", "x", "4"]).to_string(),
        _ => count.to_string(),
    };
    let mut args = vec![numkeys.into_bytes()];
    args.extend(keys);
    if weights && rng.chance(30) {
        args.push(b"WEIGHTS".to_vec());
        let given = if rng.chance(90) { count } else { count + 1 };
        for _ in 0..given {
            args.push(rng.pick(&["1", "2", "0", "-1", "0.5", "inf", "-inf", "x"]).as_bytes().to_vec());
        }
    }
    if weights && rng.chance(30) {
        args.push(b"AGGREGATE".to_vec());
        args.push(rng.pick(&["SUM", "MIN", "MAX", "max", "AVG"]).as_bytes().to_vec());
    }
    args
}

fn combine(rng: &mut Rng, keys: &KeyPool) -> Command {
    let name = *rng.pick(&["ZUNION", "ZINTER", "ZDIFF"]);
    let args = combine_args(rng, keys, name != "ZDIFF");
    Command::new(name).args(args).arg_if(rng.coin(), "WITHSCORES")
}

fn store(rng: &mut Rng, keys: &KeyPool) -> Command {
    let name = *rng.pick(&["ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE"]);
    let destination = keys.key(rng);
    Command::new(name).arg(destination).args(combine_args(rng, keys, name != "ZDIFFSTORE"))
}

fn zintercard(rng: &mut Rng, keys: &KeyPool) -> Command {
    let keys = keys.keys(rng, 3);
    let numkeys = match rng.below(8) {
        0 => rng.pick(&["0", "-1", "x", "4"]).to_string(),
        _ => keys.len().to_string(),
    };
    let command = Command::new("ZINTERCARD").arg(numkeys).args(keys);
    match rng.below(3) {
        0 => command.arg("LIMIT").arg(rng.pick(&["0", "1", "2", "-1", "x"])),
        _ => command,
    }
}

/// ZRANDMEMBER with a count covering the set (forced, compared as unordered pairs), or
/// without a count or with a small one (random, compared by shape); WITHSCORES now and then.
/// Never a large negative count: Redis would send that many members.
fn zrandmember(rng: &mut Rng, keys: &KeyPool) -> Command {
    let command = Command::new("ZRANDMEMBER").arg(keys.key(rng));
    let (command, forced) = match rng.below(6) {
        0 | 1 => (command.arg(rng.pick(&["100", "1000", "4611686018427387903"])), true),
        2 => return command.shape(),
        3 => return command.arg("-4611686018427387904").arg("WITHSCORES").never_malformed(),
        4 => (command.arg(rng.pick(&["0", "-9223372036854775808", "x"])), false),
        _ => (command.arg(rng.range(-5, 5).to_string()), false),
    };
    let with = rng.chance(40);
    let command = command.arg_if(with, "WITHSCORES").never_malformed();
    match (forced, with) {
        (true, true) => command.compared(Compare::UnorderedPairs),
        (true, false) => command.unordered(),
        (false, _) => command.shape(),
    }
}

/// A whole ZSCAN in one call (COUNT above any set's size: both answer cursor 0), or one with
/// a bad cursor or option.
fn zscan(rng: &mut Rng, keys: &KeyPool) -> Command {
    let command = Command::new("ZSCAN").arg(keys.key(rng));
    if rng.chance(15) {
        let (cursor, option, value) = *rng.pick(&[
            ("x", "COUNT", "1000"),
            ("0", "COUNT", "0"),
            ("0", "COUNT", "x"),
            ("0", "NOPE", "1"),
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

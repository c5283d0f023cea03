//! Generators for transactions: MULTI, two to five commands of the other groups (of every
//! type, on the same keys), then EXEC or DISCARD, sometimes under WATCH; and EXEC, DISCARD and
//! MULTI out of place.
//!
//! A transaction is one step of a sequence: MULTI, its commands and EXEC go to the same node.
//! Each queued command's reply (`QUEUED`, or an error that aborts the transaction) is compared
//! exactly, and EXEC's reply element by element, each as its command's own reply would be.

use super::compatibility::{counts_expired_keys, is_float_increment, known_difference};
use super::generator::{draw_command, Command, Compare, Families, Group, KeyPool, Rng};

/// The transaction families, registered in `GROUPS` (mod.rs).
pub const FAMILIES: Families = &[
    ("multi_exec", multi_exec),
    ("multi_exec", multi_exec),
    ("multi_discard", multi_discard),
    ("watch_exec", watch_exec),
    ("stray", stray),
];

/// The name the group is registered under: its own families are not drawn inside a transaction.
pub const GROUP: &str = "transactions";

/// MULTI, its commands, EXEC.
fn multi_exec(rng: &mut Rng, keys: &KeyPool) -> Command {
    let body = body(rng, keys);
    let modes = body.iter().map(|command| command.compare.clone()).collect();
    with_body(body).then(Command::new("EXEC").compared(Compare::Elements(modes)))
}

/// WATCH of one or two keys, perhaps a command between (one that PPDB and Redis both count as
/// a write of the key, or not: PPDB also counts a collection write that changed nothing), now
/// and then UNWATCH, then MULTI, its commands, EXEC: a null reply when a watched key changed.
fn watch_exec(rng: &mut Rng, keys: &KeyPool) -> Command {
    let (watched, other) = (keys.key(rng), keys.key(rng));
    let watch = Command::new("WATCH").arg(&watched).arg_if(rng.chance(50), &other);
    let between = match rng.below(7) {
        0 => None,
        1 => Some(Command::new("SET").arg(&watched).arg("w")),
        2 => Some(Command::new("DEL").arg(&watched)),
        3 => Some(Command::new("EXPIRE").arg(&watched).arg("100")),
        4 => Some(Command::new("GET").arg(&watched)),
        5 => Some(Command::new("SET").arg(&other).arg("o")),
        _ => Some(Command::new("UNWATCH").then(Command::new("SET").arg(&watched).arg("u"))),
    };
    let watch = match between {
        Some(command) => watch.then(command),
        None => watch,
    };
    watch.then(multi_exec(rng, keys))
}

/// MULTI, its commands, DISCARD (nothing is applied).
fn multi_discard(rng: &mut Rng, keys: &KeyPool) -> Command {
    with_body(body(rng, keys)).then(Command::new("DISCARD"))
}

/// EXEC or DISCARD without MULTI, or MULTI inside MULTI.
fn stray(rng: &mut Rng, _keys: &KeyPool) -> Command {
    match rng.below(3) {
        0 => Command::new("EXEC"),
        1 => Command::new("DISCARD"),
        _ => Command::new("MULTI").then(Command::new("MULTI")).then(Command::new("EXEC")),
    }
}

fn with_body(body: Vec<Command>) -> Command {
    body.into_iter().fold(Command::new("MULTI"), Command::then)
}

/// Two to five commands of the other groups, with the ones that follow them, each compared as
/// it is alone.
fn body(rng: &mut Rng, keys: &KeyPool) -> Vec<Command> {
    let groups: Vec<&Group> = super::GROUPS.iter().filter(|group| group.name != GROUP).collect();
    let count = 2 + rng.below(4);
    let mut body = Vec::new();
    let mut drawn = 0;
    while drawn < count {
        let commands = draw_command(rng, &groups, keys).flattened();
        if commands.iter().all(|command| comparable_in_exec(&command.args)) {
            body.extend(commands);
            drawn += 1;
        }
    }
    body
}

/// Whether a command's reply inside EXEC is compared like its reply alone: not one the harness
/// skips or treats specially (a known difference, DBSIZE, and the float increments, whose
/// precision difference ends a sequence only when it is the reply of a command of its own).
fn comparable_in_exec(args: &[Vec<u8>]) -> bool {
    known_difference(args).is_none() && !counts_expired_keys(args) && !is_float_increment(args)
}

//! What the differential tests send: random command sequences drawn from registered families.
//!
//! A *family* is a function that makes one random command of a kind (`SET` with its options,
//! `EXPIRE` with NX/XX/GT/LT, ...), drawing keys from the sequence's small [`KeyPool`] (so
//! types collide and WRONGTYPE paths run) and values from small pools of numbers, floats,
//! empty and binary strings ([`Rng::value`] and friends). Families are grouped by the file
//! that defines them (`strings`, `keyspace`, later one per type); [`GROUPS`] in `mod.rs`
//! registers the groups. Each sequence draws its own mix of groups (swarm testing: a sequence
//! of only string and hash commands finds different bugs from one that mixes everything), its
//! key pool, its protocol and its length, all from its seed, so a seed replays it exactly.

use super::resp::Reply;

/// A deterministic PRNG (SplitMix64): the same seed gives the same sequence on every machine
/// and in every release, so the seed in a failure message replays the failure.
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "below(0)");
        (self.next_u64() % n as u64) as usize
    }

    /// A number in `low..=high`.
    pub fn range(&mut self, low: i64, high: i64) -> i64 {
        let span = high.abs_diff(low).saturating_add(1);
        low.wrapping_add((self.next_u64() % span) as i64)
    }

    /// True `percent` times in a hundred.
    pub fn chance(&mut self, percent: u32) -> bool {
        self.below(100) < percent as usize
    }

    /// One of `items` (not empty).
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// A value to store: numbers (so counters and string commands meet), floats, empty,
    /// text and binary.
    pub fn value(&mut self) -> Vec<u8> {
        self.pick(VALUES).to_vec()
    }

    /// An element of a collection (a list element, a set member, a hash field): mostly one of
    /// a handful, so that LREM, LPOS, SISMEMBER and intersections find what they look for, and
    /// integers among them (Redis keeps a set of integers as an intset); sometimes any value.
    pub fn element(&mut self) -> Vec<u8> {
        if self.chance(75) {
            self.pick(ELEMENTS).to_vec()
        } else {
            self.value()
        }
    }

    /// 1 to `max` elements ([`Rng::element`]).
    pub fn elements(&mut self, max: usize) -> Vec<Vec<u8>> {
        (0..1 + self.below(max)).map(|_| self.element()).collect()
    }

    /// An index or a range bound: mostly small and of either sign, sometimes at the edges of
    /// i64 or not a number.
    pub fn index(&mut self) -> Vec<u8> {
        if self.chance(90) {
            self.range(-8, 8).to_string().into_bytes()
        } else {
            self.integer()
        }
    }

    /// An integer argument: mostly small, sometimes at the edges of i64 or not a number.
    pub fn integer(&mut self) -> Vec<u8> {
        if self.chance(80) {
            self.range(-20, 20).to_string().into_bytes()
        } else {
            self.pick(ODD_INTEGERS).to_vec()
        }
    }

    /// A float argument: plain, exponent, infinite, or not a float.
    pub fn float(&mut self) -> Vec<u8> {
        self.pick(FLOATS).to_vec()
    }

    /// A relative expiry amount large enough never to pass during a test and random enough
    /// that two drawn in one sequence never tie (a tie would make GT/LT depend on which
    /// millisecond each server ran the command in).
    pub fn ttl_amount(&mut self) -> i64 {
        self.range(10_000, 100_000_000)
    }

    /// `true` or `false` with even odds.
    pub fn coin(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }
}

/// Values [`Rng::value`] draws from.
const VALUES: &[&[u8]] = &[
    b"0",
    b"1",
    b"-1",
    b"10",
    b"42",
    b"-7",
    b"007",
    b" 1",
    b"9223372036854775807",
    b"-9223372036854775808",
    b"9223372036854775808",
    b"3.14",
    b"-0.5",
    b"1e3",
    b"1.5e308",
    b"inf",
    b"nan",
    b"",
    b"a",
    b"hello",
    b"hello world",
    b"\x00\xff\r\n",
    b"\xc3\xa9t\xc3\xa9",
];

/// Elements [`Rng::element`] draws most often.
const ELEMENTS: &[&[u8]] = &[b"a", b"b", b"c", b"x", b"1", b"2", b"-3", b"10", b""];

/// Integers [`Rng::integer`] draws beside small ones.
const ODD_INTEGERS: &[&[u8]] = &[
    b"9223372036854775807",
    b"-9223372036854775808",
    b"9223372036854775806",
    b"-9223372036854775807",
    b"9223372036854775808",
    b"1.5",
    b"",
    b"abc",
    b" 1",
    b"+1",
    b"0x10",
    b"-0",
    b"1000000",
];

/// Floats [`Rng::float`] draws from.
const FLOATS: &[&[u8]] = &[
    b"0",
    b"1",
    b"-1",
    b"0.1",
    b"-2.5",
    b"3.0",
    b"1e3",
    b"1E-2",
    b"5.0e2",
    b"1.7976931348623157e308",
    b"inf",
    b"-inf",
    b"+inf",
    b"nan",
    b"",
    b"abc",
    b" 1",
    b"1 ",
    b"0x10",
    b"10000000000000000000",
];

/// Key names a sequence's [`KeyPool`] is drawn from: short, with a hash tag, with a space,
/// binary, and empty (a valid key).
const KEY_NAMES: &[&[u8]] = &[b"a", b"b", b"c", b"key:1", b"{t}x", b"two words", b"\x00\xff", b""];

/// The few keys one sequence uses, so commands of different types meet on the same keys.
pub struct KeyPool {
    keys: Vec<Vec<u8>>,
}

impl KeyPool {
    /// A pool of 2 to 5 keys from [`KEY_NAMES`].
    pub fn draw(rng: &mut Rng) -> KeyPool {
        let size = 2 + rng.below(4);
        let mut names: Vec<&[u8]> = KEY_NAMES.to_vec();
        let keys = (0..size).map(|_| names.remove(rng.below(names.len())).to_vec()).collect();
        KeyPool { keys }
    }

    /// One key of the pool.
    pub fn key(&self, rng: &mut Rng) -> Vec<u8> {
        rng.pick(&self.keys).clone()
    }

    /// `1..=max` keys of the pool (repeats allowed, as clients send them).
    pub fn keys(&self, rng: &mut Rng, max: usize) -> Vec<Vec<u8>> {
        (0..1 + rng.below(max)).map(|_| self.key(rng)).collect()
    }

    /// Every key of the pool.
    pub fn all(&self) -> &[Vec<u8>] {
        &self.keys
    }
}

/// How the two replies to a command are compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compare {
    /// Frame for frame.
    Exact,
    /// Every array, set and map sorted first (at every depth): for replies whose order Redis
    /// leaves to its hash tables (SMEMBERS, KEYS, SCAN).
    Unordered,
    /// Flat arrays sorted as (field, value) pairs, maps sorted by entry: for RESP2 replies of
    /// pairs whose order is the hash table's (HGETALL).
    UnorderedPairs,
    /// Positive integers compare equal, others exactly: for TTL, PTTL, EXPIRETIME, whose
    /// exact value depends on when each server ran the command (-2 and -1 still must match).
    Ttl,
    /// Only the reply's shape: its types, lengths and nesting, every string and double
    /// emptied. For replies Redis draws at random (SRANDMEMBER, HRANDFIELD, ZRANDMEMBER with
    /// a count below the collection's size): the same number of elements, of the same kinds.
    Shape,
    /// An array compared element by element, each as its own command's replies are: EXEC's
    /// reply to the commands of a transaction. Any other reply (an error) is compared exactly.
    Elements(Vec<Compare>),
}

impl Compare {
    /// `reply` in the canonical form this comparison compares.
    pub fn canonical(&self, reply: Reply) -> Reply {
        match self {
            Compare::Exact => reply,
            Compare::Unordered => sorted(reply),
            Compare::UnorderedPairs => sorted_pairs(reply),
            Compare::Ttl => match reply {
                Reply::Integer(n) if n > 0 => Reply::Integer(1),
                other => other,
            },
            Compare::Shape => shape(reply),
            Compare::Elements(modes) => match reply {
                Reply::Array(items) if items.len() == modes.len() => Reply::Array(
                    items.into_iter().zip(modes).map(|(item, mode)| mode.canonical(item)).collect(),
                ),
                other => other,
            },
        }
    }
}

fn shape(reply: Reply) -> Reply {
    let shapes = |items: Vec<Reply>| items.into_iter().map(shape).collect();
    match reply {
        Reply::Bulk(_) => Reply::Bulk(Vec::new()),
        Reply::Double(_) => Reply::Double(Vec::new()),
        Reply::Array(items) => Reply::Array(shapes(items)),
        Reply::Set(items) => Reply::Set(shapes(items)),
        Reply::Map(pairs) => Reply::Map(pairs.into_iter().map(|(k, v)| (shape(k), shape(v))).collect()),
        other => other,
    }
}

fn sorted(reply: Reply) -> Reply {
    let sort = |items: Vec<Reply>| {
        let mut items: Vec<Reply> = items.into_iter().map(sorted).collect();
        items.sort();
        items
    };
    match reply {
        Reply::Array(items) => Reply::Array(sort(items)),
        Reply::Set(items) => Reply::Set(sort(items)),
        Reply::Push(items) => Reply::Push(sort(items)),
        Reply::Map(pairs) => {
            let mut pairs: Vec<(Reply, Reply)> =
                pairs.into_iter().map(|(k, v)| (sorted(k), sorted(v))).collect();
            pairs.sort();
            Reply::Map(pairs)
        }
        other => other,
    }
}

/// Arrays sorted as (field, value) pairs, or as a list of pairs when every element is an array
/// (RESP3's HRANDFIELD WITHVALUES), nested arrays first (HSCAN's [cursor, pairs]); maps sorted
/// by entry.
fn sorted_pairs(reply: Reply) -> Reply {
    match reply {
        Reply::Array(items) => {
            let mut items: Vec<Reply> = items.into_iter().map(sorted_pairs).collect();
            if items.iter().all(|item| matches!(item, Reply::Array(_))) {
                items.sort();
                return Reply::Array(items);
            }
            if items.len() % 2 != 0 {
                return Reply::Array(items);
            }
            let mut pairs: Vec<[Reply; 2]> =
                items.chunks_exact(2).map(|pair| [pair[0].clone(), pair[1].clone()]).collect();
            pairs.sort();
            Reply::Array(pairs.into_iter().flatten().collect())
        }
        Reply::Map(mut pairs) => {
            pairs.sort();
            Reply::Map(pairs)
        }
        other => other,
    }
}

/// One generated command: its arguments (name first), how its replies are compared, and the
/// commands sent right after it on the same connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The arguments, the command's name first.
    pub args: Vec<Vec<u8>>,
    /// How the two servers' replies are compared.
    pub compare: Compare,
    /// Commands sent next on the same connection, each compared by its own mode: a
    /// transaction's body and its EXEC, or the reads and the DEL that bring the two servers
    /// back in step after a random write (SPOP).
    pub then: Vec<Command>,
    /// Sent as drawn, never malformed: its arguments force a reply that would otherwise be
    /// random (SPOP with a count above the set's size), or keep it from hanging the reference.
    pub never_malformed: bool,
}

impl Command {
    /// The command `name` without arguments, compared exactly.
    pub fn new(name: impl AsRef<[u8]>) -> Command {
        Command {
            args: vec![name.as_ref().to_vec()],
            compare: Compare::Exact,
            then: Vec::new(),
            never_malformed: false,
        }
    }

    /// This command and the ones sent after it, in order.
    pub fn flattened(mut self) -> Vec<Command> {
        let then = std::mem::take(&mut self.then);
        let mut all = vec![self];
        all.extend(then.into_iter().flat_map(Command::flattened));
        all
    }

    /// Sends `command` (and what follows it) after this one.
    pub fn then(mut self, command: Command) -> Command {
        self.then.push(command);
        self
    }

    /// Appends one argument.
    pub fn arg(mut self, arg: impl AsRef<[u8]>) -> Command {
        self.args.push(arg.as_ref().to_vec());
        self
    }

    /// Appends several arguments.
    pub fn args<A: AsRef<[u8]>>(mut self, args: impl IntoIterator<Item = A>) -> Command {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_vec()));
        self
    }

    /// Appends `arg` when `yes`.
    pub fn arg_if(self, yes: bool, arg: impl AsRef<[u8]>) -> Command {
        if yes {
            self.arg(arg)
        } else {
            self
        }
    }

    /// Compares the replies as [`Compare::Unordered`].
    pub fn unordered(self) -> Command {
        self.compared(Compare::Unordered)
    }

    /// Compares the replies as [`Compare::Ttl`].
    pub fn ttl(self) -> Command {
        self.compared(Compare::Ttl)
    }

    /// Never malformed (see [`Command::never_malformed`]).
    pub fn never_malformed(mut self) -> Command {
        self.never_malformed = true;
        self
    }

    /// Compares the replies as [`Compare::Shape`].
    pub fn shape(self) -> Command {
        self.compared(Compare::Shape)
    }

    /// Compares the replies as `compare`.
    pub fn compared(mut self, compare: Compare) -> Command {
        self.compare = compare;
        self
    }
}

/// A command family: one random command of a kind.
pub type Family = fn(&mut Rng, &KeyPool) -> Command;

/// The families of one file, by name.
pub type Families = &'static [(&'static str, Family)];

/// A registered group of families (one file of generators).
pub struct Group {
    /// The group's name (`strings`, `keyspace`, `hashes`, ...), as `PPDB_DIFF_GROUPS` names it.
    pub name: &'static str,
    /// Its families.
    pub families: Families,
    /// The read that shows a key's whole value of this group's type (GET, HGETALL, LRANGE 0 -1,
    /// ...), sent for every key of the pool after a sequence that used the group; `None` for
    /// groups without a type of their own.
    pub inspect: Option<Inspect>,
}

/// A read of one key's whole value (see [`Group::inspect`]).
pub type Inspect = fn(&[u8]) -> Command;

/// Arguments a malformed command may gain: options in the wrong place, bad numbers.
const STRAY_ARGS: &[&[u8]] = &[
    b"",
    b"junk",
    b"0",
    b"-1",
    b"NX",
    b"XX",
    b"GT",
    b"LT",
    b"GET",
    b"EX",
    b"PX",
    b"KEEPTTL",
    b"PERSIST",
    b"REPLACE",
    b"WITHSCORES",
    b"COUNT",
    b"LIMIT",
    b"9223372036854775808",
];

/// One sequence: what the harness sends to both servers, all drawn from one seed.
pub struct Sequence {
    /// The seed it was drawn from.
    pub seed: u64,
    /// RESP protocol version both connections speak (2 or 3).
    pub protocol: u8,
    /// The groups its commands come from.
    pub groups: Vec<&'static str>,
    /// The commands, in order (FLUSHALL, sent first, is not among them).
    pub commands: Vec<Command>,
    /// Reads of the state the commands left, compared after them: DBSIZE, then the type, the
    /// TTL class and the [`Group::inspect`] reads of every key of the pool.
    pub final_checks: Vec<Command>,
}

/// Commands per sequence, at least and at most.
const SEQUENCE_COMMANDS: (usize, usize) = (20, 40);
/// Percent of commands made malformed (an argument dropped, added or replaced).
const MALFORMED_PERCENT: u32 = 6;

impl Sequence {
    /// The sequence of `seed`, its commands drawn from `groups` (not empty).
    pub fn draw(seed: u64, groups: &[&Group]) -> Sequence {
        assert!(!groups.is_empty(), "no generator group selected");
        let mut rng = Rng::new(seed);
        let protocol = if rng.chance(25) { 3 } else { 2 };
        let mut chosen: Vec<&Group> = groups.iter().copied().filter(|_| rng.coin()).collect();
        if chosen.is_empty() {
            chosen.push(groups[rng.below(groups.len())]);
        }
        let pool = KeyPool::draw(&mut rng);
        let count = SEQUENCE_COMMANDS.0 + rng.below(SEQUENCE_COMMANDS.1 - SEQUENCE_COMMANDS.0 + 1);
        let commands = (0..count).map(|_| draw_command(&mut rng, &chosen, &pool)).collect();
        let inspects: Vec<Inspect> = chosen.iter().filter_map(|g| g.inspect).collect();
        let final_checks = std::iter::once(Command::new("DBSIZE"))
            .chain(pool.all().iter().flat_map(|key| {
                let generic = [Command::new("TYPE").arg(key), Command::new("PTTL").arg(key).ttl()];
                generic.into_iter().chain(inspects.iter().map(|inspect| inspect(key)))
            }))
            .collect();
        let groups = chosen.iter().map(|g| g.name).collect();
        Sequence { seed, protocol, groups, commands, final_checks }
    }
}

/// One command of a family of one of `groups` (not empty), malformed now and then.
pub fn draw_command(rng: &mut Rng, groups: &[&Group], pool: &KeyPool) -> Command {
    let group = groups[rng.below(groups.len())];
    let (_, family) = rng.pick(group.families);
    let command = family(rng, pool);
    if rng.chance(MALFORMED_PERCENT) && !command.never_malformed {
        malformed(rng, command)
    } else {
        command
    }
}

/// `command` with one argument dropped, added or replaced (never the name), for the arity and
/// syntax errors. Stray arguments are never small positive numbers: as an expiry they could
/// pass during the test.
fn malformed(rng: &mut Rng, mut command: Command) -> Command {
    let stray = rng.pick(STRAY_ARGS).to_vec();
    match rng.below(3) {
        0 if command.args.len() > 1 => {
            let at = 1 + rng.below(command.args.len() - 1);
            command.args.remove(at);
        }
        1 if command.args.len() > 1 => {
            let at = 1 + rng.below(command.args.len() - 1);
            command.args[at] = stray;
        }
        _ => command.args.push(stray),
    }
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(rng: &mut Rng, keys: &KeyPool) -> Command {
        Command::new("SET").arg(keys.key(rng)).arg(rng.value())
    }

    #[test]
    fn a_seed_draws_the_same_sequence_every_time() {
        let group = Group { name: "test", families: &[("set", set)], inspect: None };
        let one = Sequence::draw(7, &[&group]);
        let two = Sequence::draw(7, &[&group]);
        assert_eq!(one.commands, two.commands);
        assert_eq!(one.protocol, two.protocol);
        assert_ne!(one.commands, Sequence::draw(8, &[&group]).commands);
    }

    #[test]
    fn canonical_forms_ignore_only_what_they_should() {
        let bulk = |s: &str| Reply::Bulk(s.as_bytes().to_vec());
        let ab = Reply::Array(vec![bulk("a"), bulk("b")]);
        let ba = Reply::Array(vec![bulk("b"), bulk("a")]);
        assert_eq!(Compare::Unordered.canonical(ab.clone()), Compare::Unordered.canonical(ba.clone()));
        assert_ne!(Compare::Exact.canonical(ab), Compare::Exact.canonical(ba));
        let pairs = |items: &[&str]| Reply::Array(items.iter().map(|s| bulk(s)).collect());
        let canonical = |r| Compare::UnorderedPairs.canonical(r);
        assert_eq!(canonical(pairs(&["f", "1", "g", "2"])), canonical(pairs(&["g", "2", "f", "1"])));
        assert_ne!(canonical(pairs(&["f", "1", "g", "2"])), canonical(pairs(&["f", "2", "g", "1"])));
        assert_eq!(Compare::Ttl.canonical(Reply::Integer(99)), Compare::Ttl.canonical(Reply::Integer(3)));
        assert_ne!(Compare::Ttl.canonical(Reply::Integer(-1)), Compare::Ttl.canonical(Reply::Integer(-2)));
    }
}

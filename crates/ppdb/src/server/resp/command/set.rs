//! Set commands: SADD, SPOP, SINTER, SSCAN and the rest.
//!
//! SPOP and SRANDMEMBER carry a seed drawn here, so the kv layer chooses members without any
//! randomness of its own: the same SPOP entry pops the same members on every replica.

use std::cell::RefCell;

use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};

use super::args::{arg, integer, is, owned, owned_from};
use super::element_scan::element_scan;
use super::error::CommandError;
use super::write::WriteCommand;
use super::Command;
use crate::kv::numeric::parse_i64;
use crate::kv::types::set::SetAlgebra;
use crate::kv::types::{SetRead, SetWrite};
use crate::kv::{CollectionRead, CollectionWrite, KvRead, WriteOp};

type Parsed = Result<Command, CommandError>;

/// Parses the set command `name` (lower case) with its arguments; `None` if not one.
pub(super) fn parse(name: &str, args: &[Bytes]) -> Option<Parsed> {
    let key = || owned(args, 0);
    let combine = |algebra| read(SetRead::Combine { algebra, keys: owned_from(args, 0) });
    let store = |algebra| write(SetWrite::Store { algebra, destination: key(), keys: owned_from(args, 1) });
    Some(match name {
        "sadd" => write(SetWrite::Add { key: key(), members: owned_from(args, 1) }),
        "srem" => write(SetWrite::Remove { key: key(), members: owned_from(args, 1) }),
        "smove" => {
            write(SetWrite::Move { source: key(), destination: owned(args, 1), member: owned(args, 2) })
        }
        "spop" => pop(args),
        "sismember" => read(SetRead::IsMember { key: key(), member: owned(args, 1) }),
        "smismember" => read(SetRead::AreMembers { key: key(), members: owned_from(args, 1) }),
        "scard" => read(SetRead::Card { key: key() }),
        "srandmember" => random_members(args),
        // Redis 7.0 answers SMEMBERS as the intersection of one set.
        "smembers" => combine(SetAlgebra::Intersection),
        "sinter" => combine(SetAlgebra::Intersection),
        "sunion" => combine(SetAlgebra::Union),
        "sdiff" => combine(SetAlgebra::Difference),
        "sinterstore" => store(SetAlgebra::Intersection),
        "sunionstore" => store(SetAlgebra::Union),
        "sdiffstore" => store(SetAlgebra::Difference),
        "sintercard" => intersection_card(args),
        "sscan" => scan(args),
        _ => return None,
    })
}

/// A ready set write.
fn write(op: SetWrite) -> Parsed {
    Ok(Command::Write(WriteCommand::Ready(WriteOp::Collection(CollectionWrite::Set(op)))))
}

/// A set read.
fn read(query: SetRead) -> Parsed {
    Ok(Command::Read(KvRead::Collection(CollectionRead::Set(query))))
}

thread_local! {
    /// Each connection thread's source of seeds, seeded once from the operating system.
    static SEEDS: RefCell<SmallRng> = RefCell::new(SmallRng::from_entropy());
}

/// A fresh seed for a random choice.
fn seed() -> u64 {
    SEEDS.with(|seeds| seeds.borrow_mut().next_u64())
}

/// SPOP key [count]: the count must be a non-negative integer.
fn pop(args: &[Bytes]) -> Parsed {
    let count = match args {
        [_] => None,
        [_, count] => match parse_i64(count) {
            Some(count) if count >= 0 => Some(count.unsigned_abs()),
            _ => return Err(CommandError::CountNotPositive),
        },
        _ => return Err(CommandError::Syntax),
    };
    write(SetWrite::Pop { key: owned(args, 0), count, seed: seed() })
}

/// SRANDMEMBER key [count]: any integer but the smallest (whose negation does not exist).
fn random_members(args: &[Bytes]) -> Parsed {
    let count = match args {
        [_] => None,
        [_, count] => match integer(count)? {
            i64::MIN => return Err(CommandError::ValueOutOfRange { min: -i64::MAX, max: i64::MAX }),
            count => Some(count),
        },
        _ => return Err(CommandError::Syntax),
    };
    read(SetRead::RandomMembers { key: owned(args, 0), count, seed: seed() })
}

/// SINTERCARD numkeys key [key ...] [LIMIT limit].
fn intersection_card(args: &[Bytes]) -> Parsed {
    let keys_given = args.len() - 1;
    let numkeys = match parse_i64(arg(args, 0)) {
        Some(numkeys) if numkeys > 0 => numkeys.unsigned_abs(),
        _ => return Err(CommandError::NumKeysNotPositive),
    };
    if numkeys > keys_given as u64 {
        return Err(CommandError::NumKeysExceedArgs);
    }
    // numkeys <= the arguments' count, so it is a usize.
    let keys_end = 1 + numkeys as usize;
    let mut limit = 0;
    let mut options = args[keys_end..].iter();
    while let Some(option) = options.next() {
        match options.next() {
            Some(value) if is(option, "limit") => match parse_i64(value) {
                Some(value) if value >= 0 => limit = value.unsigned_abs(),
                _ => return Err(CommandError::LimitNegative),
            },
            _ => return Err(CommandError::Syntax),
        }
    }
    read(SetRead::IntersectionCard { keys: owned_from(&args[..keys_end], 1), limit })
}

/// SSCAN key cursor [MATCH pattern] [COUNT count] (see [`element_scan`]).
fn scan(args: &[Bytes]) -> Parsed {
    read(element_scan(args)?.map_or_else(SetRead::ScanRefused, SetRead::Scan))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::types::{ScanQuery, ScanRefusal};
    use crate::kv::KvError;

    fn parse_line(line: &str) -> Parsed {
        let args: Vec<Bytes> = line.split(' ').map(|a| Bytes::from(a.to_owned())).collect();
        Command::parse(&args)
    }

    fn error(line: &str) -> String {
        match parse_line(line) {
            Ok(command) => panic!("{line:?} parsed as {command:?}"),
            Err(error) => error.to_string(),
        }
    }

    fn set_read(line: &str) -> SetRead {
        match parse_line(line) {
            Ok(Command::Read(KvRead::Collection(CollectionRead::Set(query)))) => query,
            other => panic!("{line:?} is not a set read: {other:?}"),
        }
    }

    #[test]
    fn argument_errors_read_as_redis_7_words_them() {
        let cases = [
            ("SADD k", "ERR wrong number of arguments for 'sadd' command"),
            ("SPOP k -1", "ERR value is out of range, must be positive"),
            ("SPOP k abc", "ERR value is out of range, must be positive"),
            ("SPOP k 1 2", "ERR syntax error"),
            ("SRANDMEMBER k abc", "ERR value is not an integer or out of range"),
            (
                "SRANDMEMBER k -9223372036854775808",
                "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
            ),
            ("SRANDMEMBER k 1 2", "ERR syntax error"),
            ("SINTERCARD 0 k", "ERR numkeys should be greater than 0"),
            ("SINTERCARD -1 k", "ERR numkeys should be greater than 0"),
            ("SINTERCARD abc k", "ERR numkeys should be greater than 0"),
            ("SINTERCARD 9223372036854775808 k", "ERR numkeys should be greater than 0"),
            ("SINTERCARD 2 k", "ERR Number of keys can't be greater than number of args"),
            ("SINTERCARD 1 k LIMIT", "ERR syntax error"),
            ("SINTERCARD 1 k LIMIT -1", "ERR LIMIT can't be negative"),
            ("SINTERCARD 1 k LIMIT abc", "ERR LIMIT can't be negative"),
            ("SINTERCARD 1 k FOO 1", "ERR syntax error"),
            ("SSCAN k abc", "ERR invalid cursor"),
            ("SMOVE a b", "ERR wrong number of arguments for 'smove' command"),
        ];
        for (line, expected) in cases {
            assert_eq!(error(line), expected, "{line}");
        }
    }

    #[test]
    fn sscan_options_are_refused_only_when_read() {
        let refused = |line, error| {
            assert_eq!(
                set_read(line),
                SetRead::ScanRefused(ScanRefusal { key: b"k".to_vec(), error }),
                "{line}"
            )
        };
        refused("SSCAN k 0 COUNT 0", KvError::Syntax);
        refused("SSCAN k 0 COUNT abc", KvError::NotInteger);
        refused("SSCAN k 0 TYPE set", KvError::Syntax);
        refused("SSCAN k 0 MATCH", KvError::Syntax);
        assert_eq!(
            set_read("SSCAN k 18446744073709551615 match a* COUNT 3 count 5"),
            SetRead::Scan(ScanQuery {
                key: b"k".to_vec(),
                cursor: u64::MAX,
                pattern: Some(b"a*".to_vec()),
                count: 5
            })
        );
    }

    #[test]
    fn sintercard_takes_numkeys_keys_then_options() {
        assert_eq!(
            set_read("SINTERCARD 2 a b limit 1 LIMIT 3"),
            SetRead::IntersectionCard { keys: vec![b"a".to_vec(), b"b".to_vec()], limit: 3 }
        );
        assert_eq!(
            set_read("SINTERCARD 1 limit"),
            SetRead::IntersectionCard { keys: vec![b"limit".to_vec()], limit: 0 }
        );
    }

    #[test]
    fn random_commands_carry_fresh_seeds() {
        let seed_of = |line| match set_read(line) {
            SetRead::RandomMembers { seed, .. } => seed,
            other => panic!("{other:?}"),
        };
        assert_ne!(seed_of("SRANDMEMBER k 2"), seed_of("SRANDMEMBER k 2"));
        let pop = parse_line("SPOP k 0").expect("SPOP with count 0 parses");
        assert!(matches!(
            pop,
            Command::Write(WriteCommand::Ready(WriteOp::Collection(CollectionWrite::Set(SetWrite::Pop {
                count: Some(0),
                ..
            }))))
        ));
    }
}

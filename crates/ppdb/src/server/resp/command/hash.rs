//! Hash commands: HSET, HGET and friends. Arguments are checked here in Redis's order, and
//! what Redis checks only after looking the key up (HSCAN's options) travels with the query.

use bytes::Bytes;

use super::args::{arg, float, integer, is, owned, owned_from};
use super::element_scan::element_scan;
use super::error::CommandError;
use super::write::WriteCommand;
use super::Command;
use crate::kv::types::{HashRead, HashWrite};
use crate::kv::{CollectionRead, CollectionWrite, KvRead, WriteOp};

type Parsed = Result<Command, CommandError>;

/// Parses the hash command `name` (lower case) with its arguments; `None` if not one.
pub(super) fn parse(name: &str, args: &[Bytes]) -> Option<Parsed> {
    let key = || owned(args, 0);
    let field = || owned(args, 1);
    Some(match name {
        "hset" | "hmset" => set(name, args),
        "hsetnx" => write(HashWrite::SetIfAbsent { key: key(), field: field(), value: owned(args, 2) }),
        "hdel" => write(HashWrite::Delete { key: key(), fields: owned_from(args, 1) }),
        "hincrby" => integer(arg(args, 2))
            .and_then(|delta| write(HashWrite::IncrBy { key: key(), field: field(), delta })),
        "hincrbyfloat" => incr_by_float(args),
        "hget" => read(HashRead::Get { key: key(), field: field() }),
        "hmget" => read(HashRead::MGet { key: key(), fields: owned_from(args, 1) }),
        "hlen" => read(HashRead::Len { key: key() }),
        "hgetall" => read(HashRead::GetAll { key: key() }),
        "hkeys" => read(HashRead::Keys { key: key() }),
        "hvals" => read(HashRead::Values { key: key() }),
        "hexists" => read(HashRead::Exists { key: key(), field: field() }),
        "hstrlen" => read(HashRead::StrLen { key: key(), field: field() }),
        "hrandfield" => random_fields(args),
        "hscan" => scan(args),
        _ => return None,
    })
}

/// A ready hash write.
fn write(op: HashWrite) -> Parsed {
    Ok(Command::Write(WriteCommand::Ready(WriteOp::Collection(CollectionWrite::Hash(op)))))
}

/// A hash read.
fn read(query: HashRead) -> Parsed {
    Ok(Command::Read(KvRead::Collection(CollectionRead::Hash(query))))
}

/// HSET key field value [field value ...] and HMSET: fields and values come in pairs.
fn set(name: &str, args: &[Bytes]) -> Parsed {
    let fields = args.get(1..).unwrap_or_default();
    if fields.len() % 2 != 0 {
        return Err(CommandError::WrongArity { command: if name == "hset" { "hset" } else { "hmset" } });
    }
    let pairs = fields.chunks_exact(2).map(|pair| (pair[0].to_vec(), pair[1].to_vec())).collect();
    write(HashWrite::Set { key: owned(args, 0), pairs, reply_ok: name == "hmset" })
}

/// HINCRBYFLOAT key field increment: an infinite increment is refused before the key is looked
/// up, as Redis does.
fn incr_by_float(args: &[Bytes]) -> Parsed {
    let delta = float(arg(args, 2))?;
    if !delta.is_finite() {
        return Err(CommandError::NanOrInfinity);
    }
    write(HashWrite::IncrByFloat { key: owned(args, 0), field: owned(args, 1), delta })
}

/// HRANDFIELD key [count [WITHVALUES]]. Redis bounds the count to ±`i64::MAX` (and to half
/// of it with WITHVALUES, whose reply is twice as long); the seed of the choices is drawn here.
fn random_fields(args: &[Bytes]) -> Parsed {
    let count = match args.get(1) {
        None => None,
        Some(count) => Some(integer(count)?),
    };
    if count == Some(i64::MIN) {
        return Err(CommandError::ValueOutOfRange { min: -i64::MAX, max: i64::MAX });
    }
    let with_values = match args.get(2..).unwrap_or_default() {
        [] => false,
        [option] if is(option, "withvalues") => true,
        _ => return Err(CommandError::Syntax),
    };
    if with_values && count.is_some_and(|count| count.unsigned_abs() > (i64::MAX / 2) as u64) {
        return Err(CommandError::OutOfRange);
    }
    read(HashRead::RandomFields { key: owned(args, 0), count, with_values, seed: rand::random() })
}

/// HSCAN key cursor [MATCH pattern] [COUNT count] (see [`element_scan`]).
fn scan(args: &[Bytes]) -> Parsed {
    read(element_scan(args)?.map_or_else(HashRead::ScanRefused, HashRead::Scan))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::types::{ScanQuery, ScanRefusal};
    use crate::kv::KvError;

    fn parse_words(words: &str) -> Parsed {
        let mut words = words.split_whitespace();
        let name = words.next().unwrap_or_default();
        let args: Vec<Bytes> = words.map(|w| Bytes::copy_from_slice(w.as_bytes())).collect();
        parse(name, &args).unwrap_or_else(|| panic!("{name} is a hash command"))
    }

    fn error(words: &str) -> String {
        match parse_words(words) {
            Err(error) => error.to_string(),
            Ok(command) => panic!("`{words}` parsed as {command:?}"),
        }
    }

    fn query(words: &str) -> HashRead {
        match parse_words(words) {
            Ok(Command::Read(KvRead::Collection(CollectionRead::Hash(query)))) => query,
            other => panic!("`{words}` is not a hash query: {other:?}"),
        }
    }

    #[test]
    fn argument_errors_read_as_redis_words_them() {
        assert_eq!(error("hincrby h f 1.5"), "ERR value is not an integer or out of range");
        assert_eq!(error("hincrbyfloat h f abc"), "ERR value is not a valid float");
        assert_eq!(error("hincrbyfloat h f inf"), "ERR value is NaN or Infinity");
        assert_eq!(error("hincrbyfloat h f -inf"), "ERR value is NaN or Infinity");
        assert_eq!(error("hrandfield h x"), "ERR value is not an integer or out of range");
        assert_eq!(
            error("hrandfield h -9223372036854775808"),
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
        );
        assert_eq!(error("hrandfield h -4611686018427387904 withvalues"), "ERR value is out of range");
        assert_eq!(error("hrandfield h 1 withvalue"), "ERR syntax error");
        assert_eq!(error("hrandfield h 1 withvalues x"), "ERR syntax error");
        assert_eq!(error("hscan h x"), "ERR invalid cursor");
        assert_eq!(error("hset h f"), "ERR wrong number of arguments for 'hset' command");
    }

    #[test]
    fn hrandfield_counts_and_withvalues_at_the_edges_of_redis_range() {
        let HashRead::RandomFields { count, with_values, .. } =
            query("hrandfield h -4611686018427387903 WITHVALUES")
        else {
            panic!("hrandfield");
        };
        assert_eq!((count, with_values), (Some(-4611686018427387903), true));
        assert!(matches!(query("hrandfield h"), HashRead::RandomFields { count: None, .. }));
        assert!(matches!(
            query("hrandfield h -9223372036854775807"),
            HashRead::RandomFields { count: Some(_), .. }
        ));
    }

    #[test]
    fn hscan_options_are_kept_or_their_error_travels_with_the_query() {
        assert_eq!(
            query("hscan h 5 MATCH a* COUNT 3 match b*"),
            HashRead::Scan(ScanQuery {
                key: b"h".to_vec(),
                cursor: 5,
                pattern: Some(b"b*".to_vec()),
                count: 3
            })
        );
        assert_eq!(
            query("hscan h 0"),
            HashRead::Scan(ScanQuery { key: b"h".to_vec(), cursor: 0, pattern: None, count: 10 })
        );
        for (words, error) in [
            ("hscan h 0 count 0", KvError::Syntax),
            ("hscan h 0 count -1", KvError::Syntax),
            ("hscan h 0 count x", KvError::NotInteger),
            ("hscan h 0 match", KvError::Syntax),
            ("hscan h 0 type hash", KvError::Syntax),
            ("hscan h 0 novalues", KvError::Syntax),
        ] {
            assert_eq!(
                query(words),
                HashRead::ScanRefused(ScanRefusal { key: b"h".to_vec(), error }),
                "{words}"
            );
        }
    }
}

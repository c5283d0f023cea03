//! The commands PPDB answers differently from Redis by design, each named after its section of
//! docs/compatibility.md: the harness skips them, and counts the skips by section.

use super::generator::Command;
use super::resp::Reply;

/// Why a command is not compared, when it is one PPDB answers differently by design; each
/// reason names its section of docs/compatibility.md.
pub fn known_difference(args: &[Vec<u8>]) -> Option<&'static str> {
    let name = String::from_utf8_lossy(args.first()?).to_ascii_lowercase();
    let integer_at = |i: usize| args.get(i).and_then(|a| redis_integer(a));
    match name.as_str() {
        "select" | "swapdb" | "move" => Some("One database"),
        "copy" => {
            let db_at = args.iter().position(|a| a.eq_ignore_ascii_case(b"db"))?;
            integer_at(db_at + 1).is_some_and(|db| (1..16).contains(&db)).then_some("One database")
        }
        "getex" => {
            let at = args.iter().position(|a| {
                [&b"ex"[..], b"px", b"exat", b"pxat"].iter().any(|option| a.eq_ignore_ascii_case(option))
            })?;
            // Seconds up to i64::MAX / 1000 and milliseconds far from overflowing the clock.
            let valid = integer_at(at + 1).is_some_and(|n| n > 0 && n <= i64::MAX / 1000);
            (!valid).then_some("GETEX with an invalid expiry")
        }
        "incrbyfloat" if args.iter().skip(2).any(|a| is_hexadecimal(a)) => Some("Floats in hexadecimal"),
        "incrbyfloat" => args
            .get(2)
            .is_some_and(|a| !is_decimal_float(a))
            .then_some("INCRBYFLOAT with a malformed increment"),
        "hincrbyfloat" => args.iter().skip(3).any(|a| is_hexadecimal(a)).then_some("Floats in hexadecimal"),
        "zincrby" => args
            .get(2)
            .is_some_and(|a| {
                [&b"nx"[..], b"xx", b"gt", b"lt", b"ch", b"incr"].iter().any(|o| a.eq_ignore_ascii_case(o))
            })
            .then_some("ZINCRBY with a ZADD option"),
        // Scores, bounds and weights: any argument of a sorted-set command.
        zset if zset.starts_with('z') || zset.starts_with("bz") => {
            args.iter().skip(1).any(|a| is_hexadecimal(a)).then_some("Floats in hexadecimal")
        }
        _ => None,
    }
}

/// Whether `arg` reads as a decimal float that is not NaN, as PPDB's parser accepts it.
fn is_decimal_float(arg: &[u8]) -> bool {
    std::str::from_utf8(arg).ok().and_then(|text| text.parse::<f64>().ok()).is_some_and(|v| !v.is_nan())
}

/// Whether `arg` reads as a hexadecimal number (`0x10`, `-0X1p3`).
fn is_hexadecimal(arg: &[u8]) -> bool {
    let unsigned = arg.strip_prefix(b"-").or_else(|| arg.strip_prefix(b"+")).unwrap_or(arg);
    unsigned.get(..2).is_some_and(|prefix| prefix.eq_ignore_ascii_case(b"0x"))
}

/// Why two different replies are not a failure: PPDB's INCRBYFLOAT and HINCRBYFLOAT compute in
/// 64-bit floats and print 15 significant digits, where Redis's 80-bit long double prints more
/// (the states may differ from then on, so the sequence ends there); and the differences of
/// [`difference_by_design`].
pub fn known_reply_difference(command: &Command, redis: &Reply, ppdb: &Reply) -> Option<&'static str> {
    if let Some(reason) = difference_by_design(redis, ppdb) {
        return Some(reason);
    }
    // A stored value beyond a 64-bit float's range (1.5e3080) is a number to Redis's long
    // double only (docs/compatibility.md): the states may differ from then on.
    let not_a_float = |reply: &Reply| matches!(reply, Reply::Error(text) if text.starts_with(b"ERR value is not a valid float"));
    if is_float_increment(&command.args) && not_a_float(ppdb) && !not_a_float(redis) {
        return Some("INCRBYFLOAT range");
    }
    let Reply::Bulk(text) = redis else { return None };
    let digits =
        text.iter().skip_while(|&&b| b == b'-' || b == b'0' || b == b'.').filter(|b| b.is_ascii_digit());
    let significant =
        String::from_utf8_lossy(&digits.copied().collect::<Vec<u8>>()).trim_end_matches('0').len();
    (is_float_increment(&command.args) && significant > 15).then_some("INCRBYFLOAT precision")
}

/// The reason two replies differ, when they differ only by design, alone or in EXEC's reply:
/// one answered WRONGTYPE and the other another error (an argument checked before or after the
/// key's type), or Redis answered `-0` where PPDB answers `0` (a sorted-set increment of a new
/// member by `-0`).
fn difference_by_design(redis: &Reply, ppdb: &Reply) -> Option<&'static str> {
    let wrongtype = |text: &[u8]| text.starts_with(b"WRONGTYPE");
    match (redis, ppdb) {
        (Reply::Error(a), Reply::Error(b)) if wrongtype(a) != wrongtype(b) => {
            Some("Argument errors before the key's type")
        }
        (Reply::Bulk(a), Reply::Bulk(b)) | (Reply::Double(a), Reply::Double(b))
            if a == b"-0" && b == b"0" =>
        {
            Some("Negative zero")
        }
        (Reply::Array(a), Reply::Array(b)) if a.len() == b.len() => {
            let reasons: Vec<_> =
                a.iter().zip(b).filter(|(a, b)| a != b).map(|(a, b)| difference_by_design(a, b)).collect();
            reasons.first().copied().flatten().filter(|_| reasons.iter().all(Option::is_some))
        }
        _ => None,
    }
}

/// Whether `args` is INCRBYFLOAT or HINCRBYFLOAT, whose replies may show the precision
/// difference.
pub fn is_float_increment(args: &[Vec<u8>]) -> bool {
    args.first().is_some_and(|name| {
        name.eq_ignore_ascii_case(b"incrbyfloat") || name.eq_ignore_ascii_case(b"hincrbyfloat")
    })
}

/// Whether Redis may count keys that have expired but that it has not removed yet in the
/// reply to `args` (DBSIZE): Redis removes an expired key when a command touches it or in its
/// background cycle, so the harness first makes Redis visit every key with a full SCAN (which
/// removes the expired ones it meets).
pub fn counts_expired_keys(args: &[Vec<u8>]) -> bool {
    args.first().is_some_and(|name| name.eq_ignore_ascii_case(b"dbsize"))
}

/// `arg` as Redis reads an integer (`string2ll`): canonical decimal only, no sign `+`, no
/// leading zeros or spaces.
fn redis_integer(arg: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(arg).ok()?;
    text.parse::<i64>().ok().filter(|n| n.to_string() == text)
}

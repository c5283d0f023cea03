//! HSCAN, SSCAN and ZSCAN's arguments: `key cursor [MATCH pattern] [COUNT count]`, parsed once
//! for the three types. A bad cursor is refused at once; bad options are refused by the query,
//! after the key is looked up ([`ScanRefusal`]), as Redis checks them.

use bytes::Bytes;

use super::args::{arg, integer, is, owned};
use super::error::CommandError;
use crate::kv::scan::parse_cursor;
use crate::kv::types::{ScanQuery, ScanRefusal};
use crate::kv::KvError;

/// How many elements a page visits when COUNT is not given (Redis's default).
const SCAN_COUNT_DEFAULT: u64 = 10;

/// The scan the arguments ask for, or the refusal its options earn once the key is found.
pub(super) fn element_scan(args: &[Bytes]) -> Result<Result<ScanQuery, ScanRefusal>, CommandError> {
    let cursor = parse_cursor(arg(args, 1)).ok_or(CommandError::InvalidCursor)?;
    let key = owned(args, 0);
    Ok(match scan_options(args.get(2..).unwrap_or_default()) {
        Ok((pattern, count)) => Ok(ScanQuery { key, cursor, pattern, count }),
        Err(error) => Err(ScanRefusal { key, error }),
    })
}

/// MATCH and COUNT (the last of each wins), or Redis's error for the first bad one.
fn scan_options(options: &[Bytes]) -> Result<(Option<Vec<u8>>, u64), KvError> {
    let (mut pattern, mut count) = (None, SCAN_COUNT_DEFAULT);
    for option in options.chunks(2) {
        match option {
            [name, value] if is(name, "count") => {
                let value = integer(value).map_err(|_| KvError::NotInteger)?;
                count = u64::try_from(value).ok().filter(|&n| n >= 1).ok_or(KvError::Syntax)?;
            }
            [name, value] if is(name, "match") => pattern = Some(value.to_vec()),
            _ => return Err(KvError::Syntax),
        }
    }
    Ok((pattern, count))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(line: &str) -> Result<Result<ScanQuery, ScanRefusal>, CommandError> {
        let args: Vec<Bytes> = line.split(' ').map(|w| Bytes::copy_from_slice(w.as_bytes())).collect();
        element_scan(&args)
    }

    #[test]
    fn options_are_read_in_order_the_last_wins_and_bad_ones_wait_for_the_key() {
        let query = |cursor, pattern: Option<&str>, count| {
            Ok(Ok(ScanQuery { key: b"k".to_vec(), cursor, pattern: pattern.map(|p| p.into()), count }))
        };
        assert_eq!(scan("k 0"), query(0, None, 10));
        assert_eq!(scan("k 7 MATCH a* count 3 match b*"), query(7, Some("b*"), 3));
        let refused = |error| Ok(Err(ScanRefusal { key: b"k".to_vec(), error }));
        assert_eq!(scan("k 0 COUNT 0"), refused(KvError::Syntax));
        assert_eq!(scan("k 0 COUNT x"), refused(KvError::NotInteger));
        assert_eq!(scan("k 0 MATCH"), refused(KvError::Syntax));
        assert_eq!(scan("k 0 TYPE string"), refused(KvError::Syntax));
        assert!(matches!(scan("k x"), Err(CommandError::InvalidCursor)));
    }
}

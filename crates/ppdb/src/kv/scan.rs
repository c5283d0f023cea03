//! The SCAN cursor.
//!
//! Clients treat a SCAN cursor as an unsigned 64-bit integer, so it cannot be a key. PPDB keeps,
//! beside the key-ordered map, an index of keys ordered by a fixed 64-bit hash ([`scan_hash`]);
//! a cursor is "the hash where the next page starts" and 0 means both "start" and "done", as in
//! Redis. A page always ends between two different hashes, so a key that exists for the whole
//! iteration is returned exactly once, whatever is written meanwhile (Redis promises at least
//! once); keys added or removed during the iteration may or may not be returned. Every page costs
//! O(log n + COUNT). The hash is part of the protocol (a client may continue a scan on another
//! replica): FNV-1a followed by the splitmix64 finalizer; never change it.

use std::collections::BTreeSet;

use super::glob::glob_match;

/// The fixed hash that orders keys for SCAN.
pub fn scan_hash(key: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in key {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // splitmix64 finalizer: spreads FNV's weak low bits over the whole word.
    hash = (hash ^ (hash >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash = (hash ^ (hash >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^ (hash >> 31)
}

/// Parses a SCAN cursor like Redis's `strtoul` check: decimal, optional sign (a negative value
/// wraps around as in C), no leading space, no trailing garbage, no overflow. An empty string is
/// cursor 0, as in Redis.
pub fn parse_cursor(text: &[u8]) -> Option<u64> {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, text),
    };
    if digits.is_empty() && !text.is_empty() {
        return None;
    }
    let mut value: u64 = 0;
    for &byte in digits {
        if !byte.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(byte - b'0'))?;
    }
    Some(if negative { value.wrapping_neg() } else { value })
}

/// One page of a scan over the hash-ordered index.
pub(crate) struct ScanPage<'a> {
    /// Keys visited on this page, in hash order (before MATCH/TYPE filtering).
    pub(crate) visited: Vec<&'a [u8]>,
    /// The cursor of the next page, 0 when the index is exhausted.
    pub(crate) next_cursor: u64,
}

/// Visits at least `count` entries (all of the last hash group) starting at `cursor`.
pub(crate) fn scan_page(index: &BTreeSet<(u64, Vec<u8>)>, cursor: u64, count: u64) -> ScanPage<'_> {
    let mut visited = Vec::new();
    let mut last_hash = None;
    let mut iter = index.range((cursor, Vec::new())..);
    for (hash, key) in iter.by_ref() {
        if visited.len() as u64 >= count.max(1) && last_hash != Some(*hash) {
            return ScanPage { visited, next_cursor: *hash };
        }
        visited.push(key.as_slice());
        last_hash = Some(*hash);
    }
    ScanPage { visited, next_cursor: 0 }
}

/// Whether a key of type `key_type` (its TYPE name) passes SCAN's MATCH and TYPE filters.
pub(crate) fn scan_filter(
    key: &[u8],
    pattern: Option<&[u8]>,
    type_name: Option<&[u8]>,
    key_type: &str,
) -> bool {
    let type_ok = type_name.is_none_or(|t| t.eq_ignore_ascii_case(key_type.as_bytes()));
    // `*` matches everything, even the empty key, as Redis's fast path does (glob `*` alone
    // would not match an empty string).
    type_ok && pattern.is_none_or(|p| p == b"*" || glob_match(p, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_parse_like_strtoul() {
        assert_eq!(parse_cursor(b"0"), Some(0));
        assert_eq!(parse_cursor(b""), Some(0));
        assert_eq!(parse_cursor(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"-1"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"18446744073709551616"), None);
        assert_eq!(parse_cursor(b"abc"), None);
        assert_eq!(parse_cursor(b" 1"), None);
        assert_eq!(parse_cursor(b"-"), None);
    }

    #[test]
    fn the_hash_is_stable() {
        // Part of the protocol: a cursor from one replica or build must work on another.
        assert_eq!(scan_hash(b""), 0xf52a_15e9_a9b5_e89b);
        assert_eq!(scan_hash(b"key:1"), 0xcd76_cb99_9eef_dfd5);
    }
}

//! Glob-style matching for KEYS, SCAN MATCH and CONFIG GET, with the semantics of Redis 7.2's
//! `stringmatchlen`, computed without recursion.
//!
//! `*` matches any run of bytes, `?` one byte, `[abc]`, `[^abc]` and `[a-z]` classes (a reversed
//! range `[z-a]` works too), `\x` matches `x` literally. Quirks kept from Redis on purpose, so
//! that patterns behave identically: an unterminated class `[abc` matches like `[abc]`; class
//! ranges compare bytes as C `char`, which is signed, so bytes >= 0x80 sort before ASCII; a
//! trailing lone `\` matches a literal `\`; an empty string matches only the empty pattern (so
//! `*` alone does not match it); and a pattern with more than [`STAR_GROUPS_MAX`] groups of
//! stars before its last token matches nothing (Redis's guard against abusive patterns).
//!
//! Redis recurses once per star, so a pattern of 100,000 stars overflowed the stack of the
//! port this replaces. Here every token but `*` matches exactly one byte, so the classic
//! iterative algorithm applies: scan forward, and on a mismatch let the most recent star
//! absorb one more byte and retry from just after it. Earlier stars never need to absorb more
//! (whatever a later star's retry would need, the most recent one can take), so the state is
//! two positions and the work is O(pattern × string) at worst, with no allocation.

/// Most groups of consecutive stars a pattern may hold before its last token and still match:
/// Redis stops at a recursion depth of 1000 (`nesting > 1000`), and a match must go through
/// every group.
pub const STAR_GROUPS_MAX: usize = 1000;

/// Returns whether `string` matches the glob `pattern` (case-sensitive).
pub fn glob_match(pattern: &[u8], string: &[u8]) -> bool {
    if string.is_empty() {
        // Redis's loop never starts on an empty string: only the empty pattern is left over.
        return pattern.is_empty();
    }
    let (mut p, mut s) = (0usize, 0usize);
    // After a star: where the pattern resumes, and where in the string it was last tried.
    let mut retry: Option<(usize, usize)> = None;
    let mut star_groups = 0usize;
    while s < string.len() {
        if pattern.get(p) == Some(&b'*') {
            while at(pattern, p + 1) == b'*' {
                p += 1;
            }
            if p + 1 == pattern.len() {
                return true;
            }
            star_groups += 1;
            if star_groups > STAR_GROUPS_MAX {
                return false;
            }
            p += 1;
            retry = Some((p, s));
            continue;
        }
        if p < pattern.len() {
            let (matched, next) = match_token(pattern, p, string[s]);
            if matched {
                p = next;
                s += 1;
                continue;
            }
        }
        // A mismatch, or pattern left over: the last star takes one more byte, if there is one.
        let Some((resume, tried)) = retry else {
            return false;
        };
        retry = Some((resume, tried + 1));
        (p, s) = (resume, tried + 1);
    }
    // The string is used up: only stars may be left of the pattern.
    while pattern.get(p) == Some(&b'*') {
        p += 1;
    }
    p >= pattern.len()
}

/// The byte at `i`, or 0 past the end: C's view of the NUL terminator that Redis relies on.
fn at(bytes: &[u8], i: usize) -> u8 {
    bytes.get(i).copied().unwrap_or(0)
}

/// A byte as C's signed `char`, which is how Redis compares class ranges.
fn signed(byte: u8) -> i32 {
    i32::from(byte as i8)
}

/// Matches `byte` against the one-byte token at `p` (anything but `*`); returns whether it
/// matched and where the next token starts.
fn match_token(pattern: &[u8], p: usize, byte: u8) -> (bool, usize) {
    match pattern[p] {
        b'?' => (true, p + 1),
        b'[' => {
            let (matched, class_end) = match_class(pattern, p + 1, byte);
            (matched, class_end + 1)
        }
        b'\\' if pattern.len() - p >= 2 => (pattern[p + 1] == byte, p + 2),
        literal => (literal == byte, p + 1),
    }
}

/// Matches `byte` against the class starting at `start` (just after `[`). Returns whether it
/// matched and the index of the class's last pattern byte (the `]`, or the last byte when the
/// class is unterminated), so that the caller's `p += 1` moves past it.
fn match_class(pattern: &[u8], start: usize, byte: u8) -> (bool, usize) {
    let mut p = start;
    let negate = at(pattern, p) == b'^';
    if negate {
        p += 1;
    }
    let mut matched = false;
    loop {
        let remaining = pattern.len().saturating_sub(p);
        if at(pattern, p) == b'\\' && remaining >= 2 {
            p += 1;
            if pattern[p] == byte {
                matched = true;
            }
        } else if at(pattern, p) == b']' {
            break;
        } else if remaining == 0 {
            // Unterminated class: step back so the caller's increment ends the pattern.
            p -= 1;
            break;
        } else if remaining >= 3 && pattern[p + 1] == b'-' {
            let (mut low, mut high) = (signed(pattern[p]), signed(pattern[p + 2]));
            if low > high {
                std::mem::swap(&mut low, &mut high);
            }
            let c = signed(byte);
            if c >= low && c <= high {
                matched = true;
            }
            p += 2;
        } else if pattern[p] == byte {
            matched = true;
        }
        p += 1;
    }
    (matched != negate, p)
}

#[cfg(test)]
mod tests {
    use super::{glob_match, STAR_GROUPS_MAX};
    use proptest::prelude::*;
    use std::time::{Duration, Instant};

    fn m(pattern: &str, string: &str) -> bool {
        glob_match(pattern.as_bytes(), string.as_bytes())
    }

    #[test]
    fn stars_and_question_marks() {
        assert!(m("*", "anything"));
        assert!(!m("*", ""), "as stringmatchlen; KEYS and SCAN special-case a lone `*`");
        assert!(!m("?", ""));
        assert!(m("h?llo", "hello"));
        assert!(m("h*llo", "hllo"));
        assert!(m("h*llo", "heeeello"));
        assert!(!m("h*llo", "hell"));
        assert!(m("**a**", "bab"));
        assert!(m("a*", "a"));
        assert!(m("a**", "a"));
        assert!(!m("", "a"));
        assert!(m("", ""));
        assert!(m("*b*c", "abxbc"));
    }

    #[test]
    fn classes_ranges_and_negation() {
        assert!(m("h[ae]llo", "hello"));
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(m("h[b-a]llo", "hallo"), "reversed ranges are swapped");
        assert!(!m("h[a-b]llo", "hcllo"));
        assert!(m("[abc", "a"), "an unterminated class behaves as if closed");
        assert!(m("[a-]", "-") || !m("[a-]", "-"), "no panic on a dangling dash");
        assert!(m("[\\]]", "]"));
        assert!(m("[]", "]") || !m("[]", "]"));
    }

    #[test]
    fn escapes() {
        assert!(m("h\\*llo", "h*llo"));
        assert!(!m("h\\*llo", "hello"));
        assert!(m("\\?", "?"));
        assert!(m("a\\", "a\\"), "a trailing backslash is literal");
        assert!(m("[\\-]", "-"));
    }

    #[test]
    fn signed_char_ranges_like_redis() {
        // In C, 0xff is -1 as char, so it is inside [\x80-a] and outside [a-\xff].
        assert!(glob_match(b"[\x80-a]", b"\xff"));
        assert!(!glob_match(b"[a-\xff]", b"b"));
    }

    #[test]
    fn pathological_patterns_finish_quickly() {
        let pattern = "a*".repeat(30) + "b";
        let string = "a".repeat(100);
        assert!(!m(&pattern, &string));
    }

    /// The pattern of the stack overflow: one star group per byte of a 100,000-byte key.
    #[test]
    fn a_hundred_thousand_stars_neither_recurse_nor_match() {
        let key = vec![b'a'; 100_000];
        let started = Instant::now();
        assert!(!glob_match(&b"*a".repeat(100_000), &key), "over Redis's 1000 star groups");
        assert!(glob_match(&b"*".repeat(100_000), &key), "adjacent stars are one group");
        assert!(!glob_match(&[b"*a".repeat(100_000), b"*".to_vec()].concat(), b"x"));
        assert!(started.elapsed() < Duration::from_secs(1), "took {:?}", started.elapsed());
    }

    #[test]
    fn star_groups_are_bounded_as_redis_bounds_its_recursion() {
        let key = vec![b'k'; 2000];
        let groups = |n: usize| b"*?".repeat(n);
        assert!(glob_match(&groups(STAR_GROUPS_MAX), &key));
        assert!(!glob_match(&groups(STAR_GROUPS_MAX + 1), &key));
        // A trailing star is no group of its own: Redis returns before recursing for it.
        assert!(glob_match(&[groups(STAR_GROUPS_MAX), b"*".to_vec()].concat(), &key));
        assert!(redis_stringmatchlen(&groups(STAR_GROUPS_MAX), &key));
        assert!(!redis_stringmatchlen(&groups(STAR_GROUPS_MAX + 1), &key));
    }

    /// The worst case of the algorithm, O(pattern × string): every position of a long key
    /// nearly matches one long segment after a star.
    #[test]
    fn the_quadratic_worst_case_is_bounded() {
        let key = vec![b'a'; 20_000];
        let pattern = [b"*".to_vec(), vec![b'a'; 10_000], b"b".to_vec()].concat();
        let started = Instant::now();
        assert!(!glob_match(&pattern, &key));
        assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    }

    /// Redis 7.2's `stringmatchlen`, transliterated (recursive, case-sensitive), as the oracle.
    fn redis_stringmatchlen(pattern: &[u8], string: &[u8]) -> bool {
        fn at(bytes: &[u8], i: usize) -> u8 {
            bytes.get(i).copied().unwrap_or(0)
        }
        fn imp(pat: &[u8], s: &[u8], skip_longer: &mut bool, nesting: usize) -> bool {
            if nesting > 1000 {
                return false;
            }
            let (mut p, mut i) = (0usize, 0usize);
            while p < pat.len() && i < s.len() {
                match pat[p] {
                    b'*' => {
                        while at(pat, p + 1) == b'*' {
                            p += 1;
                        }
                        if pat.len() - p == 1 {
                            return true;
                        }
                        while i < s.len() {
                            if imp(&pat[p + 1..], &s[i..], skip_longer, nesting + 1) {
                                return true;
                            }
                            if *skip_longer {
                                return false;
                            }
                            i += 1;
                        }
                        *skip_longer = true;
                        return false;
                    }
                    b'?' => i += 1,
                    b'[' => {
                        p += 1;
                        let not = at(pat, p) == b'^';
                        if not {
                            p += 1;
                        }
                        let mut matched = false;
                        loop {
                            let left = pat.len() as isize - p as isize;
                            if at(pat, p) == b'\\' && left >= 2 {
                                p += 1;
                                matched |= pat[p] == s[i];
                            } else if at(pat, p) == b']' {
                                break;
                            } else if left == 0 {
                                p -= 1;
                                break;
                            } else if left >= 3 && pat[p + 1] == b'-' {
                                let (mut lo, mut hi) = (pat[p] as i8 as i32, pat[p + 2] as i8 as i32);
                                if lo > hi {
                                    std::mem::swap(&mut lo, &mut hi);
                                }
                                let c = s[i] as i8 as i32;
                                matched |= c >= lo && c <= hi;
                                p += 2;
                            } else {
                                matched |= pat[p] == s[i];
                            }
                            p += 1;
                        }
                        if matched == not {
                            return false;
                        }
                        i += 1;
                    }
                    _ => {
                        if pat[p] == b'\\' && pat.len() - p >= 2 {
                            p += 1;
                        }
                        if pat[p] != s[i] {
                            return false;
                        }
                        i += 1;
                    }
                }
                p += 1;
                if i == s.len() {
                    while at(pat, p) == b'*' {
                        p += 1;
                    }
                    break;
                }
            }
            p >= pat.len() && i == s.len()
        }
        imp(pattern, string, &mut false, 0)
    }

    /// Pattern bytes drawn mostly from the glob syntax, so classes, ranges and escapes occur.
    fn pattern_bytes() -> impl Strategy<Value = Vec<u8>> {
        let byte = prop_oneof![
            4 => prop::sample::select(b"*?[]^-\\ab".to_vec()),
            1 => any::<u8>(),
        ];
        prop::collection::vec(byte, 0..12)
    }

    fn string_bytes() -> impl Strategy<Value = Vec<u8>> {
        let byte = prop_oneof![4 => prop::sample::select(b"ab-]*".to_vec()), 1 => any::<u8>()];
        prop::collection::vec(byte, 0..12)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]
        /// The iterative matcher answers as Redis's recursive one on every pattern and string.
        #[test]
        fn agrees_with_redis_stringmatchlen(pattern in pattern_bytes(), string in string_bytes()) {
            prop_assert_eq!(glob_match(&pattern, &string), redis_stringmatchlen(&pattern, &string));
        }
    }
}

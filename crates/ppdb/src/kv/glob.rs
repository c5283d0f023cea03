//! Glob-style matching for KEYS and SCAN MATCH, a faithful port of Redis 7's `stringmatchlen`.
//!
//! `*` matches any run of bytes, `?` one byte, `[abc]`, `[^abc]` and `[a-z]` classes (a reversed
//! range `[z-a]` works too), `\x` matches `x` literally. Quirks kept from Redis on purpose, so
//! that patterns behave identically: an unterminated class `[abc` matches like `[abc]`; class
//! ranges compare bytes as C `char`, which is signed, so bytes >= 0x80 sort before ASCII; a
//! trailing lone `\` matches a literal `\`. Like Redis 7.0.9+, a failed `*` stops trying longer
//! matches for earlier stars, which bounds the work to O(pattern × string).

/// Returns whether `string` matches the glob `pattern` (case-sensitive).
pub fn glob_match(pattern: &[u8], string: &[u8]) -> bool {
    let mut skip_longer_matches = false;
    match_impl(pattern, string, &mut skip_longer_matches)
}

/// The byte at `i`, or 0 past the end: C's view of the NUL terminator that Redis relies on.
fn at(bytes: &[u8], i: usize) -> u8 {
    bytes.get(i).copied().unwrap_or(0)
}

/// A byte as C's signed `char`, which is how Redis compares class ranges.
fn signed(byte: u8) -> i32 {
    i32::from(byte as i8)
}

fn match_impl(pattern: &[u8], string: &[u8], skip_longer_matches: &mut bool) -> bool {
    let (mut p, mut s) = (0usize, 0usize);
    while p < pattern.len() && s < string.len() {
        match pattern[p] {
            b'*' => {
                while p < pattern.len() && at(pattern, p + 1) == b'*' {
                    p += 1;
                }
                if pattern.len() - p == 1 {
                    return true;
                }
                while s < string.len() {
                    if match_impl(&pattern[p + 1..], &string[s..], skip_longer_matches) {
                        return true;
                    }
                    if *skip_longer_matches {
                        return false;
                    }
                    s += 1;
                }
                *skip_longer_matches = true;
                return false;
            }
            b'?' => s += 1,
            b'[' => {
                let (matched, class_end) = match_class(pattern, p + 1, string[s]);
                if !matched {
                    return false;
                }
                p = class_end;
                s += 1;
            }
            literal => {
                let mut expected = literal;
                if literal == b'\\' && pattern.len() - p >= 2 {
                    p += 1;
                    expected = pattern[p];
                }
                if expected != string[s] {
                    return false;
                }
                s += 1;
            }
        }
        p += 1;
        if s == string.len() {
            while at(pattern, p) == b'*' {
                p += 1;
            }
            break;
        }
    }
    p >= pattern.len() && s == string.len()
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
    use super::glob_match;

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
}

//! The glob matcher of KEYS and SCAN MATCH (`kv/glob.rs`), against a reference matcher written
//! here from the documented rules (Redis's `stringmatchlen`, quirks included).
//!
//! Input: one byte saying where the rest splits (0 = all string, 255 = all pattern, in
//! proportion between), then the pattern and the string. A proportion rather than a length lets
//! a mutation that repeats part of the input grow the pattern and the string together.
//! libFuzzer's `-max_len` (4 KiB in `scripts/fuzz.sh`) bounds them together.
//!
//! The matcher runs on a thread with a small stack (`MATCHER_STACK_BYTES`): a pattern and key
//! come from clients and may be up to 512 MiB, so the matcher's stack use must not grow with
//! them. A matcher whose depth grows with the number of `*` overflows this stack within the
//! 4 KiB inputs, which libFuzzer reports as a crash (the recursive matcher of 585e066 does).
//!
//! Asserts: nothing panics or overflows the stack; the answer is the reference matcher's.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ppdb::kv::glob::glob_match;

/// Stack of the thread the matcher runs on: ample for a matcher whose depth is constant.
const MATCHER_STACK_BYTES: usize = 64 * 1024;

/// One element of a pattern; which bytes of a string it stands for depends only on the pattern.
enum Token {
    /// `*`: any run of bytes, possibly empty.
    Star,
    /// `?`, a class, a literal or an escaped byte: exactly one byte from the set.
    One(Box<[bool; 256]>),
}

fn one_of(matches: impl Fn(u8) -> bool) -> Token {
    let mut set = Box::new([false; 256]);
    for byte in 0..=255u8 {
        set[usize::from(byte)] = matches(byte);
    }
    Token::One(set)
}

/// A byte as C's signed `char`: Redis compares class ranges that way.
fn signed(byte: u8) -> i8 {
    byte as i8
}

/// The class starting just after `[` at `start`: its byte set and the index of its last
/// pattern byte (the `]`, or the pattern's last byte when the class is unterminated).
fn class(pattern: &[u8], start: usize) -> (Token, usize) {
    let negate = pattern.get(start) == Some(&b'^');
    let mut p = start + usize::from(negate);
    let mut members: Vec<(i8, i8)> = Vec::new();
    let end = loop {
        let Some(&c) = pattern.get(p) else { break pattern.len() - 1 };
        if c == b'\\' && p + 1 < pattern.len() {
            p += 1;
            members.push((signed(pattern[p]), signed(pattern[p])));
        } else if c == b']' {
            break p;
        } else if p + 2 < pattern.len() && pattern[p + 1] == b'-' {
            let (a, b) = (signed(c), signed(pattern[p + 2]));
            members.push((a.min(b), a.max(b)));
            p += 2;
        } else {
            members.push((signed(c), signed(c)));
        }
        p += 1;
    };
    let token = one_of(|byte| members.iter().any(|&(lo, hi)| (lo..=hi).contains(&signed(byte))) != negate);
    (token, end)
}

fn tokens(pattern: &[u8]) -> Vec<Token> {
    let mut out = Vec::new();
    let mut p = 0;
    while p < pattern.len() {
        let token = match pattern[p] {
            b'*' => Token::Star,
            b'?' => one_of(|_| true),
            b'[' => {
                let (token, end) = class(pattern, p + 1);
                p = end;
                token
            }
            b'\\' if p + 1 < pattern.len() => {
                p += 1;
                let literal = pattern[p];
                one_of(|byte| byte == literal)
            }
            literal => one_of(|byte| byte == literal),
        };
        out.push(token);
        p += 1;
    }
    out
}

/// Whether `string` matches `pattern`, by dynamic programming over the tokens.
fn reference_match(pattern: &[u8], string: &[u8]) -> bool {
    let tokens = tokens(pattern);
    if string.is_empty() {
        // As `stringmatchlen`: an empty string matches the empty pattern only (not even `*`).
        return tokens.is_empty();
    }
    // matches[j]: whether tokens[i..] match string[j..], for the current i (from the end).
    let mut matches = vec![false; string.len() + 1];
    matches[string.len()] = true;
    for token in tokens.iter().rev() {
        let mut next = vec![false; string.len() + 1];
        for j in (0..=string.len()).rev() {
            next[j] = match token {
                Token::Star => matches[j] || (j < string.len() && next[j + 1]),
                Token::One(set) => j < string.len() && set[usize::from(string[j])] && matches[j + 1],
            };
        }
        matches = next;
    }
    matches[0]
}

fn match_on_small_stack(pattern: &[u8], string: &[u8]) -> bool {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .stack_size(MATCHER_STACK_BYTES)
            .spawn_scoped(scope, || glob_match(pattern, string))
            .expect("spawn the matcher thread")
            .join()
            .expect("the matcher panicked")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else { return };
    let (pattern, string) = rest.split_at(rest.len() * usize::from(split) / 255);
    let expected = reference_match(pattern, string);
    assert_eq!(match_on_small_stack(pattern, string), expected, "glob_match disagrees with the reference");
});

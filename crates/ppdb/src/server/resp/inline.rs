//! Inline commands (`PING\r\n`, what telnet users type): splitting a line into arguments exactly
//! as Redis's `sdssplitargs`.
//!
//! Arguments are separated by white space (space, `\t`, `\n`, `\r`, `\v`, `\f`). A double-quoted
//! argument understands `\xHH`, `\n`, `\r`, `\t`, `\b`, `\a` and `\<any>`; a single-quoted one
//! only `\'`. A closing quote must be followed by white space or the end of the line; an
//! unterminated quote or text glued to a closing quote makes the whole line invalid.

/// C's `isspace` in the "C" locale.
fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

fn hex_pair(high: Option<u8>, low: Option<u8>) -> Option<u8> {
    Some(hex_value(high?)? * 16 + hex_value(low?)?)
}

/// Splits an inline command line into arguments; `None` means unbalanced quotes.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    // Redis works on a C string: a NUL byte ends the line (inside quotes: unterminated).
    let line = line.iter().position(|&b| b == 0).map_or(line, |nul| &line[..nul]);
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < line.len() && is_space(line[i]) {
            i += 1;
        }
        if i == line.len() {
            return Some(args);
        }
        let (arg, next) = split_one(line, i)?;
        args.push(arg);
        i = next;
    }
}

/// Reads one argument starting at `start` (not white space); returns it and the next index.
fn split_one(line: &[u8], start: usize) -> Option<(Vec<u8>, usize)> {
    let at = |i: usize| line.get(i).copied();
    let mut current = Vec::new();
    let (mut in_double, mut in_single) = (false, false);
    let mut i = start;
    loop {
        if in_double {
            match at(i) {
                None => return None,
                Some(b'\\') if at(i + 1) == Some(b'x') && hex_pair(at(i + 2), at(i + 3)).is_some() => {
                    current.extend(hex_pair(at(i + 2), at(i + 3)));
                    i += 3;
                }
                Some(b'\\') if at(i + 1).is_some() => {
                    i += 1;
                    current.push(match line[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                }
                Some(b'"') => {
                    // The closing quote must be followed by a space or nothing.
                    if at(i + 1).is_some_and(|next| !is_space(next)) {
                        return None;
                    }
                    return Some((current, i + 1));
                }
                Some(byte) => current.push(byte),
            }
        } else if in_single {
            match at(i) {
                None => return None,
                Some(b'\\') if at(i + 1) == Some(b'\'') => {
                    i += 1;
                    current.push(b'\'');
                }
                Some(b'\'') => {
                    if at(i + 1).is_some_and(|next| !is_space(next)) {
                        return None;
                    }
                    return Some((current, i + 1));
                }
                Some(byte) => current.push(byte),
            }
        } else {
            match at(i) {
                None => return Some((current, i)),
                Some(byte) if is_space(byte) => return Some((current, i)),
                Some(b'"') => in_double = true,
                Some(b'\'') => in_single = true,
                Some(byte) => current.push(byte),
            }
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::split_args;

    fn split(line: &str) -> Option<Vec<String>> {
        split_args(line.as_bytes())
            .map(|args| args.into_iter().map(|a| String::from_utf8_lossy(&a).into_owned()).collect())
    }

    #[test]
    fn plain_words() {
        assert_eq!(split("PING"), Some(vec!["PING".into()]));
        assert_eq!(split("  set  k\tv  "), Some(vec!["set".into(), "k".into(), "v".into()]));
        assert_eq!(split(""), Some(vec![]));
        assert_eq!(split("   "), Some(vec![]));
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(split(r#"set "a b" 'c d'"#), Some(vec!["set".into(), "a b".into(), "c d".into()]));
        assert_eq!(split(r#""\x41\n""#), Some(vec!["A\n".into()]));
        assert_eq!(split(r#""\xZZ""#), Some(vec!["xZZ".into()]), "a bad hex escape drops the backslash");
        assert_eq!(split("a\0b c"), Some(vec!["a".into()]), "NUL ends the line");
        assert_eq!(split(r#"'it\'s'"#), Some(vec!["it's".into()]));
        assert_eq!(split(r#""""#), Some(vec!["".into()]));
        assert_eq!(split(r#"a"b c"d"#), None, "text glued to a closing quote");
        assert_eq!(split(r#"ab"c d" e"#), Some(vec!["abc d".into(), "e".into()]));
    }

    #[test]
    fn unbalanced_quotes() {
        assert_eq!(split(r#"set "abc"#), None);
        assert_eq!(split("set 'abc"), None);
        assert_eq!(split(r#""abc"x"#), None);
        assert_eq!(split(r#""abc\"#), None);
    }
}

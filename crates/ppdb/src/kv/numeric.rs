//! Numbers stored as strings, read and written the way Redis does.
//!
//! Redis keeps counters as decimal strings and accepts only canonical integers: no sign `+`, no
//! leading zeros, no spaces (`string2ll`). INCRBYFLOAT parses with `strtold` and prints with
//! `%.17Lf` on an x87 80-bit `long double`, trimming trailing zeros. Rust has no 80-bit float, so
//! PPDB computes in `f64` and prints the shortest decimal that identifies the result, rounded to
//! 15 significant digits when the shortest form is longer (that removes the binary noise of
//! `0.1 + 0.2` exactly as Redis's wider type does). Results agree with Redis for values with up
//! to 15 significant digits; beyond that Redis prints the noise digits of its 64-bit mantissa
//! (`10000.19999999999999929`) where PPDB prints the rounded decimal (`10000.2`).

/// Longest accepted integer string (Redis's `LONG_STR_SIZE` - 1).
const INTEGER_CHARS_MAX: usize = 20;
/// Longest accepted float string (Redis's `MAX_LONG_DOUBLE_CHARS` - 1).
const FLOAT_CHARS_MAX: usize = 5 * 1024 - 1;
/// Significant digits kept when the shortest representation is longer.
const FLOAT_SIGNIFICANT_DIGITS: usize = 15;

/// Parses a canonical signed 64-bit decimal integer exactly as Redis's `string2ll`.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > INTEGER_CHARS_MAX {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut magnitude: u64 = 0;
    for &byte in digits {
        if !byte.is_ascii_digit() {
            return None;
        }
        magnitude = magnitude.checked_mul(10)?.checked_add(u64::from(byte - b'0'))?;
    }
    if negative {
        if magnitude > i64::MAX as u64 + 1 {
            return None;
        }
        Some((magnitude as i64).wrapping_neg())
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// Parses a float as Redis's `string2ld` accepts it: no leading space, the whole string used,
/// no NaN. Infinities are accepted (INCRBYFLOAT then refuses the result); values that overflow
/// `f64` are refused since they cannot be represented.
pub fn parse_f64(s: &[u8]) -> Option<f64> {
    if s.is_empty() || s.len() > FLOAT_CHARS_MAX {
        return None;
    }
    let text = std::str::from_utf8(s).ok()?;
    let value: f64 = text.parse().ok()?;
    if value.is_nan() {
        return None;
    }
    if value.is_infinite() && !text.trim_start_matches(['+', '-']).to_ascii_lowercase().starts_with("inf") {
        return None;
    }
    Some(value)
}

/// Formats a finite float the way INCRBYFLOAT stores it: plain decimal notation, no exponent, no
/// trailing zeros (`10.5`, `3000`, `0.3`). See the module docs for the precision rule.
pub fn format_f64(value: f64) -> String {
    debug_assert!(value.is_finite(), "INCRBYFLOAT results are checked for finiteness first");
    if value == 0.0 {
        return "0".to_owned();
    }
    let shortest = format!("{:e}", value);
    let (mantissa, _) = shortest.split_once('e').unwrap_or((&shortest, "0"));
    let significant = mantissa.bytes().filter(u8::is_ascii_digit).count();
    let scientific = if significant <= FLOAT_SIGNIFICANT_DIGITS {
        shortest
    } else {
        format!("{:.*e}", FLOAT_SIGNIFICANT_DIGITS - 1, value)
    };
    scientific_to_plain(&scientific)
}

/// Significant digits of a reply's double (Redis 7.0's `%.17g`).
const DOUBLE_SIGNIFICANT_DIGITS: i32 = 17;

/// Formats a double as Redis 7.0 replies with it (ZSCORE, WITHSCORES, RESP3 doubles): C's
/// `%.17g`, i.e. 17 significant digits without trailing zeros, in exponent form below `1e-4`
/// and from `1e17` (`1.1000000000000001`, `3`, `1e+20`, `1.0000000000000001e-05`), and `inf`,
/// `-inf`, `nan`.
pub fn format_double(value: f64) -> String {
    if value.is_nan() {
        return "nan".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    if value == 0.0 {
        return if value.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    // The exponent %g chooses by is the one after rounding to 17 digits.
    let scientific = format!("{:.*e}", (DOUBLE_SIGNIFICANT_DIGITS - 1) as usize, value);
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if !(-4..DOUBLE_SIGNIFICANT_DIGITS).contains(&exponent) {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", without_trailing_zeros(mantissa), exponent.unsigned_abs())
    } else {
        let decimals = (DOUBLE_SIGNIFICANT_DIGITS - 1 - exponent) as usize;
        without_trailing_zeros(&format!("{value:.decimals$}")).to_owned()
    }
}

/// `1.500` -> `1.5`, `2.000` -> `2`; a number without a point is left alone.
fn without_trailing_zeros(number: &str) -> &str {
    if number.contains('.') {
        number.trim_end_matches('0').trim_end_matches('.')
    } else {
        number
    }
}

/// Rewrites `-d.ddde±x` as plain decimal notation without trailing zeros.
fn scientific_to_plain(scientific: &str) -> String {
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((scientific, "0"));
    let exponent: i64 = exponent.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    // The decimal point sits after `point` digits of `digits`.
    let point = exponent + 1;
    let len = digits.len() as i64;
    let mut out = String::with_capacity(digits.len() + point.unsigned_abs() as usize + 3);
    out.push_str(sign);
    if point <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', point.unsigned_abs() as usize));
        out.push_str(digits);
    } else if point >= len {
        out.push_str(digits);
        out.extend(std::iter::repeat_n('0', (point - len) as usize));
    } else {
        out.push_str(&digits[..point as usize]);
        out.push('.');
        out.push_str(&digits[point as usize..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_must_be_canonical_like_string2ll() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-1"), Some(-1));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"+1",
            b"01",
            b"-0",
            b" 1",
            b"1 ",
            b"1.0",
            b"9223372036854775808",
            b"-9223372036854775809",
            b"123456789012345678901",
            b"abc",
        ] {
            assert_eq!(parse_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn floats_follow_string2ld() {
        assert_eq!(parse_f64(b"10.5"), Some(10.5));
        assert_eq!(parse_f64(b"3.0e3"), Some(3000.0));
        assert_eq!(parse_f64(b".5"), Some(0.5));
        assert_eq!(parse_f64(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_f64(b"inf"), Some(f64::INFINITY));
        for bad in [&b""[..], b" 1", b"1 ", b"nan", b"abc", b"1e400", b"1.2.3"] {
            assert_eq!(parse_f64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn doubles_print_like_redis_7_0_replies() {
        // Each expected text is what redis-server 7.0.15 replied (ZSCORE / ZRANGE WITHSCORES).
        let cases = [
            (1.1, "1.1000000000000001"),
            (3.0, "3"),
            (-1.5, "-1.5"),
            (16.0, "16"),
            (0.1, "0.10000000000000001"),
            (1e-5, "1.0000000000000001e-05"),
            (0.0001, "0.0001"),
            (1e16, "10000000000000000"),
            (12345678901234567.0, "12345678901234568"),
            (1e17, "1e+17"),
            (1e20, "1e+20"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (1e-300, "1e-300"),
            (5e-324, "4.9406564584124654e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            // 2^-25 has 18 significant digits ending in 5: the tie rounds to even.
            (2f64.powi(-25), "2.9802322387695312e-08"),
            (4.1 - 0.0, "4.0999999999999996"),
            (1234567.0, "1234567"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (0.0, "0"),
            (-0.0, "-0"),
        ];
        for (value, text) in cases {
            assert_eq!(format_double(value), text, "{value:e}");
        }
    }

    #[test]
    fn floats_print_like_incrbyfloat() {
        assert_eq!(format_f64(10.5), "10.5");
        assert_eq!(format_f64(3000.0), "3000");
        assert_eq!(format_f64(0.1 + 0.2), "0.3");
        assert_eq!(format_f64(10.5 + 0.1), "10.6");
        assert_eq!(format_f64(5200.0), "5200");
        assert_eq!(format_f64(-5.6), "-5.6");
        assert_eq!(format_f64(0.0), "0");
        assert_eq!(format_f64(1e20), "100000000000000000000");
        assert_eq!(format_f64(1.5e-7), "0.00000015");
        assert_eq!(format_f64(123.0), "123");
    }
}

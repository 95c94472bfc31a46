//! Number parsing and formatting with Redis's exact acceptance rules
//! (`string2ll` and `string2ld` in Redis's util.c).

use crate::reply::{error, Reply, NOT_FLOAT, NOT_INTEGER, SYNTAX};
use resp::Frame;

/// Redis's `string2ll`: optional `-`, then digits without leading zeros (the
/// lone `0` aside), no spaces, no `+`, no overflow.
pub(crate) fn parse_i64(bytes: &[u8]) -> Option<i64> {
    if bytes == b"0" {
        return Some(0);
    }
    let (negative, digits) = match bytes.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, bytes),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut magnitude: u64 = 0;
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return None;
        }
        magnitude = magnitude.checked_mul(10)?.checked_add(u64::from(digit - b'0'))?;
    }
    if negative {
        if magnitude == 1 << 63 {
            Some(i64::MIN)
        } else {
            i64::try_from(magnitude).ok().map(|value| -value)
        }
    } else {
        i64::try_from(magnitude).ok()
    }
}

pub(crate) fn integer_argument(bytes: &[u8]) -> Result<i64, Frame> {
    parse_i64(bytes).ok_or_else(|| error(NOT_INTEGER))
}

/// Redis's `string2ld`: the whole string is a number, no leading space, not
/// NaN. Infinity parses (callers reject infinite results).
pub(crate) fn parse_f64(bytes: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(bytes).ok()?;
    if text.is_empty() || text.starts_with(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    let value: f64 = text.parse().ok()?;
    if value.is_nan() {
        None
    } else {
        Some(value)
    }
}

pub(crate) fn float_argument(bytes: &[u8]) -> Result<f64, Frame> {
    parse_f64(bytes).ok_or_else(|| error(NOT_FLOAT))
}

/// Human-readable float as INCRBYFLOAT prints it: fixed notation, no
/// exponent, no trailing zeros. Redis uses `long double` and `%.17Lf`; the
/// shortest round-trip `f64` text gives the same digits for the usual cases
/// (`10.6`, `5200`) but may differ in the last places for values that need
/// more than double precision. The replicas all agree, which is what matters
/// for consistency.
pub(crate) fn format_f64(value: f64) -> String {
    assert!(value.is_finite());
    format!("{value}")
}

/// A non-negative count argument (COUNT, LIMIT …) that must be an integer.
pub(crate) fn count_argument(bytes: &[u8], negative_error: &str) -> Result<u64, Frame> {
    let value = integer_argument(bytes)?;
    u64::try_from(value).map_err(|_| error(negative_error))
}

/// Case-insensitive option comparison.
pub(crate) fn is_option(argument: &[u8], name: &str) -> bool {
    argument.eq_ignore_ascii_case(name.as_bytes())
}

pub(crate) fn syntax_error<T>() -> Result<T, Frame> {
    Err(error(SYNTAX))
}

pub(crate) fn ok() -> Reply {
    Ok(Frame::ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_follow_string2ll() {
        // Goal: accept exactly what Redis's string2ll accepts.
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-12"), Some(-12));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in
            [&b""[..], b"-", b"-0", b"01", b"+1", b" 1", b"1 ", b"9223372036854775808", b"1a"]
        {
            assert_eq!(parse_i64(bad), None, "{:?}", bad);
        }
    }

    #[test]
    fn floats_follow_string2ld() {
        // Goal: accept numbers and infinity, reject NaN, spaces and junk.
        assert_eq!(parse_f64(b"10.5"), Some(10.5));
        assert_eq!(parse_f64(b"5.0e3"), Some(5000.0));
        assert_eq!(parse_f64(b"inf"), Some(f64::INFINITY));
        for bad in [&b""[..], b"nan", b" 1", b"1 ", b"abc"] {
            assert_eq!(parse_f64(bad), None);
        }
        assert_eq!(format_f64(10.6), "10.6");
        assert_eq!(format_f64(5200.0), "5200");
    }
}

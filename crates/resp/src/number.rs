//! Number conversions that must match Redis byte for byte.

/// Parses a length the way Redis's `string2ll` (util.c) does: an optional `-`, then digits with no
/// leading zero (except `0` itself), no `+`, no spaces, at most 20 bytes, within `i64`. Being this
/// strict keeps `$01` or `$+1` from being read differently by two parsers.
pub(crate) fn parse_strict_integer(text: &[u8]) -> Option<i64> {
    // LONG_STR_SIZE in Redis is 21: longer strings are refused before any digit is looked at.
    if text.is_empty() || text.len() >= 21 {
        return None;
    }
    if text == b"0" {
        return Some(0);
    }
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let (first, rest) = digits.split_first()?;
    if !(b'1'..=b'9').contains(first) {
        return None;
    }
    let mut magnitude = u64::from(first - b'0');
    for digit in rest {
        if !digit.is_ascii_digit() {
            return None;
        }
        magnitude = magnitude.checked_mul(10)?.checked_add(u64::from(digit - b'0'))?;
    }
    let magnitude = i128::from(magnitude);
    i64::try_from(if negative { -magnitude } else { magnitude }).ok()
}

/// Formats a double as Redis 7.2's `d2string` does for `addReplyDouble`: `nan`, `inf`, `-inf`,
/// `0`/`-0`, integral values within ±`i64::MAX / 2` as plain integers, and everything else as the
/// shortest round-tripping digits laid out by `fpconv_dtoa`'s `emit_digits` (plain up to a few
/// zeros, scientific `1.5e+20` / `1e-7` beyond). Redis uses Grisu2, which is shortest for all but
/// a tiny fraction of doubles; Rust's formatter is always shortest, so those rare values may print
/// one digit shorter here while still parsing back to the same double.
pub(crate) fn format_double(value: f64) -> String {
    if value.is_nan() {
        return "nan".to_string();
    }
    if value.is_infinite() {
        return if value < 0.0 { "-inf" } else { "inf" }.to_string();
    }
    if value == 0.0 {
        return if value.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    // double2ll: integral values in this range print through the integer formatter.
    let integer_bound = (i64::MAX / 2) as f64;
    if value >= -integer_bound && value <= integer_bound && value.fract() == 0.0 {
        return (value as i64).to_string();
    }
    let mut text = String::new();
    if value < 0.0 {
        text.push('-');
    }
    // `{:e}` yields the shortest digits as `d.ddde±x`; recover the digit string and the power of
    // ten of its last digit (fpconv's `K`).
    let scientific = format!("{:e}", value.abs());
    let (mantissa, exponent) = scientific.split_once('e').expect("`{:e}` always has an exponent");
    let exponent: i32 = exponent.parse().expect("`{:e}` exponent is an integer");
    let digits: String = mantissa.chars().filter(|character| *character != '.').collect();
    let digit_count = digits.len() as i32;
    let last_digit_power = exponent - digit_count + 1;
    emit_digits(&digits, last_digit_power, &mut text);
    text
}

/// fpconv's `emit_digits`: the layout rules Redis applies to `digits × 10^last_digit_power`.
fn emit_digits(digits: &str, last_digit_power: i32, text: &mut String) {
    let digit_count = digits.len() as i32;
    let exponent = (last_digit_power + digit_count - 1).abs();
    if last_digit_power >= 0 && exponent < digit_count + 7 {
        text.push_str(digits);
        text.extend(std::iter::repeat('0').take(last_digit_power as usize));
        return;
    }
    if last_digit_power < 0 && (last_digit_power > -7 || exponent < 4) {
        let offset = digit_count + last_digit_power;
        if offset <= 0 {
            text.push_str("0.");
            text.extend(std::iter::repeat('0').take((-offset) as usize));
            text.push_str(digits);
        } else {
            let (whole, fraction) = digits.split_at(offset as usize);
            text.push_str(whole);
            text.push('.');
            text.push_str(fraction);
        }
        return;
    }
    let (first, rest) = digits.split_at(1);
    text.push_str(first);
    if !rest.is_empty() {
        text.push('.');
        text.push_str(rest);
    }
    text.push('e');
    text.push(if last_digit_power + digit_count - 1 < 0 { '-' } else { '+' });
    text.push_str(&exponent.to_string());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Goal: lengths follow `string2ll` exactly, refusing every lenient spelling.
    #[test]
    fn strict_integer_matches_string2ll() {
        assert_eq!(parse_strict_integer(b"0"), Some(0));
        assert_eq!(parse_strict_integer(b"42"), Some(42));
        assert_eq!(parse_strict_integer(b"-1"), Some(-1));
        assert_eq!(parse_strict_integer(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_strict_integer(b"-9223372036854775808"), Some(i64::MIN));
        for refused in [
            &b""[..],
            b"-",
            b"-0",
            b"01",
            b"+1",
            b" 1",
            b"1 ",
            b"1a",
            b"9223372036854775808",
            b"-9223372036854775809",
            b"000000000000000000001",
        ] {
            assert_eq!(parse_strict_integer(refused), None, "{:?}", refused);
        }
    }

    /// Goal: doubles print as Redis 7.2's `d2string` prints them.
    #[test]
    fn doubles_format_like_redis() {
        let cases: [(f64, &str); 16] = [
            (f64::NAN, "nan"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (-42.0, "-42"),
            (1.5, "1.5"),
            (2.75, "2.75"),
            (0.1, "0.1"),
            (0.0001, "0.0001"),
            (0.000001, "0.000001"),
            (1e-7, "1e-7"),
            (1.25e-10, "1.25e-10"),
            (1e20, "1e+20"),
            (1.5e300, "1.5e+300"),
        ];
        for (value, expected) in cases {
            assert_eq!(format_double(value), expected, "{value:?}");
        }
        // Beyond i64::MAX / 2 integral values take the fpconv path.
        assert_eq!(format_double(4e18), "4000000000000000000");
        assert_eq!(format_double(1e19), "1e+19");
        assert_eq!(format_double(1.2345678901234568e20), "123456789012345680000");
        assert_eq!(format_double(1e25), "1e+25");
        assert_eq!(format_double(123.456e-3), "0.123456");
    }

    /// Goal: every formatted finite double parses back to the same value.
    #[test]
    fn formatted_doubles_round_trip() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let value = f64::from_bits(state);
            if value.is_nan() {
                continue;
            }
            let text = format_double(value);
            assert_eq!(text.parse::<f64>().unwrap().to_bits(), value.to_bits(), "{text}");
        }
    }
}

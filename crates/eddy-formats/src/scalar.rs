//! Text forms of scalar values shared by the formats: decimals, floats, base64.

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// Standard base64; padding optional on input, like Java's `Base64.getDecoder()`.
pub(crate) const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a decimal text could not be turned into an unscaled integer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum DecimalError {
    /// Not a number.
    Invalid,
    /// Too many digits for 128 bits.
    Overflow,
    /// Digits would be lost and rounding was not allowed.
    Inexact,
}

/// Parses a decimal number (`-12.5`, `1e3`, `+.5`) into its unscaled value at `scale`,
/// rounding HALF_UP when `round` is set and failing on lost digits otherwise.
pub(crate) fn parse_decimal(text: &str, scale: i8, round: bool) -> Result<i128, DecimalError> {
    let b = text.as_bytes();
    let mut i = 0;
    let negative = match b.first() {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_digits = &b[int_start..i];
    let mut frac_digits: &[u8] = &[];
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        frac_digits = &b[start..i];
    }
    if int_digits.is_empty() && frac_digits.is_empty() {
        return Err(DecimalError::Invalid);
    }
    let mut exponent: i64 = 0;
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        let exp_negative = match b.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            // Saturate: anything this large is out of range for 38 digits anyway.
            exponent = (exponent * 10 + i64::from(b[i] - b'0')).min(1_000_000);
            i += 1;
        }
        if i == start {
            return Err(DecimalError::Invalid);
        }
        if exp_negative {
            exponent = -exponent;
        }
    }
    if i != b.len() {
        return Err(DecimalError::Invalid);
    }

    let digits = || {
        int_digits
            .iter()
            .chain(frac_digits)
            .map(|d| i128::from(d - b'0'))
    };
    let total = (int_digits.len() + frac_digits.len()) as i64;
    // value = digits * 10^(exponent - frac_len); the result is value * 10^scale.
    let shift = exponent - frac_digits.len() as i64 + i64::from(scale);
    let mut acc: i128 = 0;
    if shift >= 0 {
        for d in digits() {
            acc = acc
                .checked_mul(10)
                .and_then(|a| a.checked_add(d))
                .ok_or(DecimalError::Overflow)?;
        }
        if acc != 0 {
            let factor = u32::try_from(shift)
                .ok()
                .and_then(|s| 10i128.checked_pow(s))
                .ok_or(DecimalError::Overflow)?;
            acc = acc.checked_mul(factor).ok_or(DecimalError::Overflow)?;
        }
    } else {
        let keep = total + shift;
        let mut dropped_nonzero = false;
        let mut round_up = false;
        for (n, d) in digits().enumerate() {
            let n = n as i64;
            if n < keep {
                acc = acc
                    .checked_mul(10)
                    .and_then(|a| a.checked_add(d))
                    .ok_or(DecimalError::Overflow)?;
            } else {
                if n == keep && d >= 5 {
                    round_up = true;
                }
                dropped_nonzero |= d != 0;
            }
        }
        if dropped_nonzero && !round {
            return Err(DecimalError::Inexact);
        }
        if round_up {
            acc = acc.checked_add(1).ok_or(DecimalError::Overflow)?;
        }
    }
    Ok(if negative { -acc } else { acc })
}

/// Whether `unscaled` has at most `precision` digits.
pub(crate) fn fits_precision(unscaled: i128, precision: u8) -> bool {
    match 10i128.checked_pow(u32::from(precision)) {
        Some(limit) => unscaled.unsigned_abs() < limit.unsigned_abs(),
        None => true,
    }
}

/// Writes `unscaled / 10^scale` with exactly `scale` fraction digits (`12.30`, `-0.05`).
pub(crate) fn write_decimal(out: &mut Vec<u8>, unscaled: i128, scale: i8) {
    if unscaled < 0 {
        out.push(b'-');
    }
    let mut buffer = itoa::Buffer::new();
    let digits = buffer.format(unscaled.unsigned_abs()).as_bytes();
    if scale <= 0 {
        out.extend_from_slice(digits);
        if unscaled != 0 {
            out.resize(out.len() + scale.unsigned_abs() as usize, b'0');
        }
        return;
    }
    let scale = scale as usize;
    if digits.len() > scale {
        let (int, frac) = digits.split_at(digits.len() - scale);
        out.extend_from_slice(int);
        out.push(b'.');
        out.extend_from_slice(frac);
    } else {
        out.extend_from_slice(b"0.");
        out.resize(out.len() + scale - digits.len(), b'0');
        out.extend_from_slice(digits);
    }
}

/// Writes an integer in decimal.
pub(crate) fn write_int(out: &mut Vec<u8>, value: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// Writes a finite double the shortest way that reads back exactly (`1.0`, `0.5`, `1e21`).
pub(crate) fn write_finite_f64(out: &mut Vec<u8>, value: f64) {
    out.extend_from_slice(ryu::Buffer::new().format_finite(value).as_bytes());
}

/// Writes a double as Java's `Double.toString` does: plain notation from 10^-3 up to 10^7
/// (`0.001`, `1234567.0`), else `1.0E10`, `4.9E-324`; always at least two significant digits.
pub(crate) fn write_f64_text(out: &mut Vec<u8>, value: f64) {
    if value.is_finite() {
        let magnitude = value.abs();
        if magnitude == 0.0 || (1e-3..1e7).contains(&magnitude) {
            write_finite_f64(out, value);
            return;
        }
        // `{:e}` is the shortest round-tripping form; Java shows one digit after the point
        // even when one significant digit would do, rounding the exact value to two.
        let mut text = format!("{value:e}");
        if !text.contains('.') {
            text = format!("{value:.1e}");
        }
        out.extend_from_slice(text.replace('e', "E").as_bytes());
    } else if value.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if value > 0.0 {
        out.extend_from_slice(b"Infinity");
    } else {
        out.extend_from_slice(b"-Infinity");
    }
}

/// Appends the base64 form of `bytes`.
pub(crate) fn write_base64(out: &mut Vec<u8>, bytes: &[u8]) {
    use base64::Engine;
    let start = out.len();
    // 4 output bytes per 3 input bytes, padded.
    out.resize(start + bytes.len().div_ceil(3) * 4, 0);
    let written = BASE64.encode_slice(bytes, &mut out[start..]).unwrap_or(0);
    out.truncate(start + written);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(text: &str, scale: i8) -> Result<i128, DecimalError> {
        parse_decimal(text, scale, true)
    }

    fn show(unscaled: i128, scale: i8) -> String {
        let mut out = Vec::new();
        write_decimal(&mut out, unscaled, scale);
        String::from_utf8(out).unwrap_or_default()
    }

    #[test]
    fn parses_and_rescales_decimals() {
        assert_eq!(dec("12.3", 2), Ok(1230));
        assert_eq!(dec("-12.345", 2), Ok(-1235));
        assert_eq!(dec("12.344", 2), Ok(1234));
        assert_eq!(dec("0.005", 2), Ok(1));
        assert_eq!(dec("0.0049", 2), Ok(0));
        assert_eq!(dec("1e3", 1), Ok(10000));
        assert_eq!(dec("1.5E-1", 2), Ok(15));
        assert_eq!(dec("+.5", 0), Ok(1));
        assert_eq!(dec("5.", 0), Ok(5));
        assert_eq!(dec("0e99999999", 2), Ok(0));
        assert_eq!(dec("1e99", 2), Err(DecimalError::Overflow));
        assert_eq!(dec("abc", 2), Err(DecimalError::Invalid));
        assert_eq!(dec("1.2.3", 2), Err(DecimalError::Invalid));
        assert_eq!(dec("", 2), Err(DecimalError::Invalid));
        assert_eq!(dec("1e", 2), Err(DecimalError::Invalid));
        assert_eq!(parse_decimal("1.5", 0, false), Err(DecimalError::Inexact));
        assert_eq!(parse_decimal("1.0e1", 0, false), Ok(10));
        assert_eq!(parse_decimal("-1500e-2", 0, false), Ok(-15));
    }

    #[test]
    fn checks_precision() {
        assert!(fits_precision(9999, 4));
        assert!(!fits_precision(10000, 4));
        assert!(!fits_precision(-10000, 4));
        assert!(fits_precision(10i128.pow(38) - 1, 38));
        assert!(!fits_precision(10i128.pow(38), 38));
    }

    #[test]
    fn writes_decimals_with_their_scale() {
        assert_eq!(show(1230, 2), "12.30");
        assert_eq!(show(-5, 2), "-0.05");
        assert_eq!(show(0, 2), "0.00");
        assert_eq!(show(42, 0), "42");
        assert_eq!(show(-42, 0), "-42");
    }

    #[test]
    fn writes_doubles_and_base64() {
        let mut out = Vec::new();
        write_finite_f64(&mut out, 1.0);
        out.push(b' ');
        write_f64_text(&mut out, f64::NEG_INFINITY);
        out.push(b' ');
        write_base64(&mut out, b"hello");
        assert_eq!(out, b"1.0 -Infinity aGVsbG8=");
        let java = |v: f64| {
            let mut out = Vec::new();
            write_f64_text(&mut out, v);
            String::from_utf8(out).unwrap_or_default()
        };
        assert_eq!(java(f64::MIN_POSITIVE * f64::EPSILON), "4.9E-324");
        assert_eq!(java(-1.7976931348623157e308), "-1.7976931348623157E308");
        assert_eq!(java(1e7), "1.0E7");
        assert_eq!(java(1234567.5), "1234567.5");
        assert_eq!(java(0.001), "0.001");
        assert_eq!(java(0.0001), "1.0E-4");
    }
}

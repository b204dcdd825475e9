//! C99 hexadecimal floats (`0x10`, `0x1.8p3`), which C's `strtod` and `strtold` read and so
//! Redis accepts wherever it parses a float: sorted-set scores and range bounds (`strtod`),
//! and INCRBYFLOAT and HINCRBYFLOAT (`strtold`). One parser serves both; each caller rounds
//! the exact value to what it keeps (a double, or 17 decimals).

/// A hexadecimal float's value, `mantissa * 2^exponent`, exact up to 31 significant hex digits
/// (124 bits); `dropped` says a further digit was nonzero.
pub(crate) struct HexFloat {
    mantissa: u128,
    exponent: i64,
    dropped: bool,
}

/// Significant hex digits kept exactly: 124 bits, so ten times the mantissa fits in a `u128`.
const KEPT_DIGITS: u32 = 31;

/// What follows the sign and the `0x` of `text`, if `text` is a hexadecimal float.
pub(crate) fn hex_digits(text: &[u8]) -> Option<&[u8]> {
    let unsigned = text.strip_prefix(b"+").or_else(|| text.strip_prefix(b"-")).unwrap_or(text);
    unsigned.strip_prefix(b"0x").or_else(|| unsigned.strip_prefix(b"0X"))
}

impl HexFloat {
    /// Parses what follows the `0x`: hex digits with an optional point (at least one digit),
    /// then an optional binary exponent `p[+-]digits`; None if that is not all of `hex`.
    pub(crate) fn parse(hex: &[u8]) -> Option<HexFloat> {
        let (digits, exponent) = match hex.iter().position(|&c| c == b'p' || c == b'P') {
            Some(at) => (&hex[..at], std::str::from_utf8(&hex[at + 1..]).ok()?.parse::<i64>().ok()?.clamp(-100_000, 100_000)),
            None => (hex, 0),
        };
        let point = digits.iter().position(|&c| c == b'.');
        let whole = point.unwrap_or(digits.len());
        if digits.len() - usize::from(point.is_some()) == 0 {
            return None;
        }
        let mut float = HexFloat { mantissa: 0, exponent, dropped: false };
        let mut kept = 0;
        for (i, &c) in digits.iter().enumerate().filter(|&(i, _)| Some(i) != point) {
            let digit = u128::from(char::from(c).to_digit(16)?);
            if i > whole {
                float.exponent -= 4; // a fraction digit
            }
            if kept < KEPT_DIGITS {
                float.mantissa = float.mantissa << 4 | digit;
                kept += u32::from(float.mantissa != 0);
            } else {
                float.exponent += 4; // a digit dropped
                float.dropped |= digit != 0;
            }
        }
        Some(float)
    }

    /// The nearest double (ties to even, as `strtod` rounds), infinite or zero out of range.
    pub(crate) fn to_f64(&self) -> f64 {
        // A dropped digit lies below the 124 bits kept, far below a double's 53: folded into
        // the lowest bit it breaks a tie the right way and changes nothing else.
        let mut value = (self.mantissa | u128::from(self.dropped)) as f64;
        // Scales by 2^exponent in steps a double can hold.
        let mut scale = self.exponent;
        while scale != 0 {
            let step = scale.clamp(-1000, 1000);
            value *= 2f64.powi(step as i32);
            scale -= step;
        }
        value
    }

    /// The value times `10^decimals`, rounded half away from zero; None past `u128`.
    pub(crate) fn to_scaled(&self, decimals: u32) -> Option<u128> {
        let scale = 10u128.checked_pow(decimals)?;
        if self.mantissa == 0 {
            return Some(0);
        }
        if self.exponent >= 0 {
            let shift = u32::try_from(self.exponent).ok().filter(|&s| s < self.mantissa.leading_zeros())?;
            return (self.mantissa << shift).checked_mul(scale);
        }
        // Bits below the 124th place after the point can only move the value within a unit
        // of that place, which never carries a rounding at the 17th decimal across the half.
        let fraction_bits = self.exponent.unsigned_abs().min(u64::from(KEPT_DIGITS * 4)) as u32;
        let mantissa = self.mantissa >> (self.exponent.unsigned_abs() - u64::from(fraction_bits)).min(127);
        if mantissa == 0 {
            return Some(0);
        }
        let mask = (1u128 << fraction_bits) - 1;
        let mut scaled = (mantissa >> fraction_bits).checked_mul(scale)?;
        let mut fraction = mantissa & mask;
        let mut decimal_part = 0u128;
        for _ in 0..decimals {
            fraction *= 10;
            decimal_part = decimal_part * 10 + (fraction >> fraction_bits);
            fraction &= mask;
        }
        let half_or_more = fraction >> (fraction_bits - 1) != 0;
        scaled = scaled.checked_add(decimal_part + u128::from(half_or_more))?;
        Some(scaled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(text: &str) -> HexFloat {
        HexFloat::parse(hex_digits(text.as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn values_scale_to_decimals_exactly_and_round_half_away() {
        assert_eq!(hex("0x10").to_scaled(17), Some(16 * 10u128.pow(17)));
        assert_eq!(hex("0x1.8p1").to_scaled(2), Some(300));
        assert_eq!(hex("0x.1").to_scaled(4), Some(625), "1/16 = 0.0625");
        assert_eq!(hex("0x.1").to_scaled(3), Some(63), "0.0625 rounds away at 3 decimals");
        assert_eq!(hex("0x1p-60").to_scaled(17), Some(0), "8.7e-19 is below the 17th decimal");
        assert_eq!(hex("0x1p-56").to_scaled(17), Some(1), "1.39e-17");
        assert_eq!(hex("0x1p-200").to_scaled(17), Some(0));
        assert_eq!(hex("0x0.0000000000000000000000000000000000000000000000001p0").to_scaled(17), Some(0));
        assert_eq!(hex("0x1p200").to_scaled(17), None);
        assert_eq!(hex("0x0p500").to_scaled(17), Some(0));
    }

    #[test]
    fn malformed_hex_floats_are_refused() {
        for bad in ["", ".", "g", "1p", "1p1.5", "1 ", "1.2.3", "1pp2"] {
            assert!(HexFloat::parse(bad.as_bytes()).is_none(), "{bad:?}");
        }
        assert!(hex_digits(b"10").is_none() && hex_digits(b"+-0x1").is_none());
    }
}

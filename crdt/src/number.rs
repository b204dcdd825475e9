//! Numbers as Redis's INCR family sees them, in exact fixed-point.
//!
//! Redis computes INCRBYFLOAT in the C `long double` of the build machine and prints 17 decimals.
//! Replicas must compute bit-identical sums whatever order increments arrive in, so Meridian keeps
//! every counter contribution as an exact decimal with 17 fractional digits in an `i128`.
//! Addition is then exact and associative: `0.1` added ten times prints `1`, as Redis prints it,
//! and two regions summing the same contributions in any order agree. The range is about
//! ±1.7e21; beyond it the value is refused rather than rounded.

use crate::hexfloat::{hex_digits, HexFloat};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Fractional decimal digits kept (Redis prints INCRBYFLOAT results with at most 17).
const DECIMALS: u32 = 17;
const SCALE: i128 = 10i128.pow(DECIMALS);
/// Redis refuses float strings longer than this (MAX_LONG_DOUBLE_CHARS).
const MAX_FLOAT_CHARS: usize = 5 * 1024;

/// Why a value or an increment was refused; each maps to one Redis error reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    /// The stored value or the argument is not a 64-bit integer.
    #[error("value is not an integer or out of range")]
    NotInteger,
    /// The stored value or the argument is not a float.
    #[error("value is not a valid float")]
    NotFloat,
    /// An integer increment would leave the 64-bit range.
    #[error("increment or decrement would overflow")]
    Overflow,
    /// A float is infinite, or an increment would make it so (Redis's wording).
    #[error("increment would produce NaN or Infinity")]
    NonFinite,
    /// A finite float beyond the exact range Meridian keeps (about ±1.7e21), where Redis would
    /// round in `long double`; refused rather than silently rounded differently per region.
    #[error("value is outside the exact decimal range of about +/-1.7e21")]
    OutOfRange,
}

/// An exact decimal with 17 fractional digits.
#[derive(Copy, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Number(i128);

impl Number {
    /// Zero.
    pub const ZERO: Number = Number(0);

    /// The integer `i`.
    pub fn from_i64(i: i64) -> Number {
        Number(i as i128 * SCALE)
    }

    /// The integer `i`, if it is in range.
    pub(crate) fn from_whole(i: i128) -> Option<Number> {
        i.checked_mul(SCALE).map(Number)
    }

    /// The value as an integer, if it is one (any size).
    pub(crate) fn integer_part_if_whole(self) -> Option<i128> {
        (self.0 % SCALE == 0).then_some(self.0 / SCALE)
    }

    /// The fixed-point representation: the value times 10^17.
    pub(crate) fn raw(self) -> i128 {
        self.0
    }

    /// The number whose fixed-point representation is `raw`.
    pub(crate) fn from_raw(raw: i128) -> Number {
        Number(raw)
    }

    /// The value as an `i64`, if it is integral and in range.
    pub fn to_i64(self) -> Option<i64> {
        if self.0 % SCALE != 0 {
            return None;
        }
        i64::try_from(self.0 / SCALE).ok()
    }

    /// Parses a Redis integer (see [`parse_redis_int`]).
    pub fn parse_int(s: &[u8]) -> Result<Number, NumberError> {
        parse_redis_int(s).map(Number::from_i64).ok_or(NumberError::NotInteger)
    }

    /// Parses a float the way Redis's `string2ld` (C's `strtold`) accepts it: optional sign,
    /// then digits with an optional point and an optional exponent, or a hexadecimal float
    /// (`0x1.8p3`); no surrounding spaces. `inf` parses but is refused as
    /// [`NumberError::NonFinite`], as Redis refuses to increment to infinity; `nan` is not a float.
    pub fn parse_float(s: &[u8]) -> Result<Number, NumberError> {
        if s.is_empty() || s.len() > MAX_FLOAT_CHARS {
            return Err(NumberError::NotFloat);
        }
        let (negative, body) = match s[0] {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        let lower = body.to_ascii_lowercase();
        if lower == b"inf" || lower == b"infinity" {
            return Err(NumberError::NonFinite);
        }
        let magnitude = match hex_digits(s) {
            Some(hex) => HexFloat::parse(hex).ok_or(NumberError::NotFloat)?.to_scaled(DECIMALS).and_then(|m| i128::try_from(m).ok()),
            None => Decimal::parse(body).ok_or(NumberError::NotFloat)?.to_fixed(),
        };
        let magnitude = magnitude.ok_or(NumberError::OutOfRange)?;
        Ok(Number(if negative { -magnitude } else { magnitude }))
    }

    /// Exact sum, or `None` outside the representable range.
    pub fn checked_add(self, other: Number) -> Option<Number> {
        self.0.checked_add(other.0).map(Number)
    }

    /// Exact difference, or `None` outside the representable range.
    pub fn checked_sub(self, other: Number) -> Option<Number> {
        self.0.checked_sub(other.0).map(Number)
    }

    /// Adds an integer increment with Redis's INCRBY rules: both sides must be 64-bit integers
    /// and so must the result.
    pub fn incr_int(self, by: i64) -> Result<Number, NumberError> {
        let current = self.to_i64().ok_or(NumberError::NotInteger)?;
        current.checked_add(by).map(Number::from_i64).ok_or(NumberError::Overflow)
    }

    /// Adds a float increment with Redis's INCRBYFLOAT rules.
    pub fn incr_float(self, by: Number) -> Result<Number, NumberError> {
        self.checked_add(by).ok_or(NumberError::OutOfRange)
    }
}

impl fmt::Display for Number {
    /// Redis's human float format: no exponent, no trailing zeros, no point for integers.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let (int, frac) = (abs / SCALE as u128, abs % SCALE as u128);
        if frac == 0 {
            return write!(f, "{sign}{int}");
        }
        let digits = format!("{frac:017}");
        write!(f, "{sign}{int}.{}", digits.trim_end_matches('0'))
    }
}

impl fmt::Debug for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Parses a Redis integer the way `string2ll` does: optional `-`, no `+`, no leading zeros
/// (except `0` itself), no spaces, at most 20 characters, within `i64`.
pub fn parse_redis_int(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (negative, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !(b'1'..=b'9').contains(&digits[0]) {
        return None;
    }
    let mut magnitude: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        magnitude = magnitude.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    if negative {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// An unsigned decimal as parsed: significant digits and a power of ten.
struct Decimal {
    digits: u128,
    exponent: i64,
}

impl Decimal {
    /// Parses `digits[.digits][e[+-]digits]` with at least one mantissa digit.
    fn parse(s: &[u8]) -> Option<Decimal> {
        // Beyond 37 significant digits the value is out of range or below the 17th decimal.
        const MAX_DIGITS: u128 = 10u128.pow(37);
        let mut digits: u128 = 0;
        let mut exponent: i64 = 0;
        let mut seen_digit = false;
        let mut i = 0;
        let mut after_point = false;
        while i < s.len() {
            match s[i] {
                c @ b'0'..=b'9' => {
                    seen_digit = true;
                    if digits < MAX_DIGITS {
                        digits = digits * 10 + (c - b'0') as u128;
                        if after_point {
                            exponent -= 1;
                        }
                    } else if !after_point {
                        exponent += 1;
                    }
                }
                b'.' if !after_point => after_point = true,
                b'e' | b'E' => break,
                _ => return None,
            }
            i += 1;
        }
        if !seen_digit {
            return None;
        }
        if i < s.len() {
            let rest = &s[i + 1..];
            let (neg, exp_digits) = match rest.first() {
                Some(b'-') => (true, &rest[1..]),
                Some(b'+') => (false, &rest[1..]),
                _ => (false, rest),
            };
            if exp_digits.is_empty() || !exp_digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let mut e: i64 = 0;
            for &c in exp_digits {
                e = (e * 10 + (c - b'0') as i64).min(1_000_000);
            }
            exponent += if neg { -e } else { e };
        }
        Some(Decimal { digits, exponent })
    }

    /// The value in units of 10^-17, rounded half away from zero; `None` if out of range.
    fn to_fixed(&self) -> Option<i128> {
        if self.digits == 0 {
            return Some(0);
        }
        let shift = self.exponent + DECIMALS as i64;
        let value = if shift >= 0 {
            let factor = 10u128.checked_pow(u32::try_from(shift).ok()?)?;
            self.digits.checked_mul(factor)?
        } else {
            let drop = u32::try_from(-shift).ok()?;
            match 10u128.checked_pow(drop) {
                Some(divisor) => {
                    let (q, r) = (self.digits / divisor, self.digits % divisor);
                    q + u128::from(r * 2 >= divisor)
                }
                None => 0,
            }
        };
        i128::try_from(value).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn float(s: &str) -> Number {
        Number::parse_float(s.as_bytes()).unwrap()
    }

    #[test]
    fn redis_integer_rules() {
        assert_eq!(parse_redis_int(b"0"), Some(0));
        assert_eq!(parse_redis_int(b"-12"), Some(-12));
        assert_eq!(parse_redis_int(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_redis_int(b"-9223372036854775808"), Some(i64::MIN));
        for bad in ["", "007", "+1", " 1", "1 ", "-0", "9223372036854775808", "1.0", "-", "a"] {
            assert_eq!(parse_redis_int(bad.as_bytes()), None, "{bad:?}");
        }
    }

    #[test]
    fn floats_print_like_redis() {
        // The examples of Redis's INCRBYFLOAT documentation.
        let v = float("10.50").incr_float(float("0.1")).unwrap();
        assert_eq!(v.to_string(), "10.6");
        assert_eq!(v.incr_float(float("-5")).unwrap().to_string(), "5.6");
        assert_eq!(float("5.0e3").incr_float(float("2.0e2")).unwrap().to_string(), "5200");
        let tenth = float("0.1");
        let sum = (0..10).fold(Number::ZERO, |acc, _| acc.checked_add(tenth).unwrap());
        assert_eq!(sum.to_string(), "1");
        assert_eq!(float("-0.5").to_string(), "-0.5");
        assert_eq!(float(".5").to_string(), "0.5");
        assert_eq!(float("3.").to_string(), "3");
        assert_eq!(float("1e-20").to_string(), "0");
    }

    #[test]
    fn float_errors() {
        for bad in ["", "abc", "nan", "1.2.3", "1e", " 1", "1 ", "--1", "."] {
            assert_eq!(Number::parse_float(bad.as_bytes()), Err(NumberError::NotFloat), "{bad:?}");
        }
        for inf in ["inf", "-Infinity"] {
            assert_eq!(Number::parse_float(inf.as_bytes()), Err(NumberError::NonFinite), "{inf:?}");
        }
        for huge in ["1e30", "1e1000000"] {
            assert_eq!(Number::parse_float(huge.as_bytes()), Err(NumberError::OutOfRange), "{huge:?}");
        }
    }

    #[test]
    fn hexadecimal_floats_parse_as_strtold_parses_them() {
        // What redis-server 7.0.15 answers to INCRBYFLOAT on a new key with these increments.
        for (text, value) in [("0x10", "16"), ("-0x1.8p1", "-3"), ("+0x.8", "0.5"), ("0X1P-2", "0.25"), ("0x1p-56", "0.00000000000000001"), ("0xa.8", "10.5")] {
            assert_eq!(float(text).to_string(), value, "{text}");
        }
        for bad in ["0x", "0x1p", "0xg", "0x1.8p1.5", "0x10 ", "-+0x1"] {
            assert_eq!(Number::parse_float(bad.as_bytes()), Err(NumberError::NotFloat), "{bad:?}");
        }
        assert_eq!(Number::parse_float(b"0x1p100"), Err(NumberError::OutOfRange));
    }

    #[test]
    fn integer_increments_follow_redis() {
        let max = Number::from_i64(i64::MAX);
        assert_eq!(max.incr_int(1), Err(NumberError::Overflow));
        assert_eq!(float("1.5").incr_int(1), Err(NumberError::NotInteger));
        assert_eq!(Number::from_i64(5).incr_int(-7).unwrap().to_i64(), Some(-2));
    }

    proptest! {
        #[test]
        fn integers_round_trip(i in any::<i64>()) {
            let n = Number::from_i64(i);
            prop_assert_eq!(n.to_i64(), Some(i));
            prop_assert_eq!(Number::parse_float(n.to_string().as_bytes()).unwrap(), n);
            prop_assert_eq!(parse_redis_int(i.to_string().as_bytes()), Some(i));
        }

        #[test]
        fn display_round_trips(raw in -(10i128.pow(38))..10i128.pow(38)) {
            let n = Number(raw);
            prop_assert_eq!(Number::parse_float(n.to_string().as_bytes()).unwrap(), n);
        }

        #[test]
        fn addition_is_associative(a in -(10i128.pow(36))..10i128.pow(36),
                                   b in -(10i128.pow(36))..10i128.pow(36),
                                   c in -(10i128.pow(36))..10i128.pow(36)) {
            let (a, b, c) = (Number(a), Number(b), Number(c));
            let left = a.checked_add(b).unwrap().checked_add(c).unwrap();
            let right = a.checked_add(b.checked_add(c).unwrap()).unwrap();
            prop_assert_eq!(left, right);
        }
    }
}

//! Sorted-set scores: a last-writer-wins score plus additive increments.
//!
//! A member's score is a [`StrState`] whose register holds a double: ZADD writes it (concurrent
//! ZADDs: the larger stamp wins), ZINCRBY adds to the per-origin counter, so concurrent
//! ZINCRBYs all count and a ZADD or ZREM removes only the increments its writer had seen (the
//! rule Redis Enterprise uses for ZREM against ZINCRBY). A write carries the score as the
//! client typed it and every node parses it with [`parse_score`], so all hold the same bits.
//!
//! Increments add up exactly, as the INCR family's do (see `number.rs`), and the sum is added
//! to the written score once, when read: replicas agree bit for bit whatever order increments
//! arrive in. Redis rounds after each ZINCRBY instead, so after two or more fractional
//! increments the two may differ in the last binary digit: ZINCRBY 0.1 then ZINCRBY 0.2 on a new
//! member reads `0.30000000000000004` in Redis and `0.29999999999999999` (the double nearest
//! 0.3) here. One increment of a written score agrees with Redis exactly.

use crate::hexfloat::{hex_digits, HexFloat};
use crate::number::Number;
use crate::string::{StrState, Written};
use serde::{Deserialize, Serialize};

/// A written score: the bits of a double that is never NaN.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScoreValue(u64);

impl ScoreValue {
    /// The score.
    pub fn get(self) -> f64 {
        f64::from_bits(self.0)
    }
}

impl Written for ScoreValue {
    fn from_written(bytes: &[u8]) -> Option<Self> {
        parse_score(bytes).map(|s| ScoreValue(s.to_bits()))
    }

    fn is_number(&self) -> bool {
        true
    }
}

/// One sorted-set member's score state.
pub type ScoreState = StrState<ScoreValue>;

impl ScoreState {
    /// The score a read returns: the written score (0 if only increments were made) plus the
    /// increments not cleared; `None` if the member is not live.
    pub fn score(&self) -> Option<f64> {
        let written = self.written().map(|v| v.get());
        match self.pending_increments() {
            None => written,
            Some(sum) => Some(written.unwrap_or(0.0) + number_to_f64(sum)),
        }
    }
}

/// The double nearest to an exact decimal (correctly rounded, so the same on every node).
pub fn number_to_f64(n: Number) -> f64 {
    n.to_string().parse().expect("a printed Number parses as f64")
}

/// Parses a score the way Redis's `getDoubleFromObject` (C's `strtod`) accepts it: a decimal
/// float, a hexadecimal one (`0x10`, `0x1.8p3`), or `inf`/`-inf` (any case, `+` allowed), no
/// surrounding spaces; NaN is not a score, and neither is a number too large for a double or
/// too small to be told from zero. `-0` reads as `0`, as Redis 7.0 answers for it.
pub fn parse_score(bytes: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(bytes).ok()?;
    if text.is_empty() || text.starts_with(|c: char| c.is_ascii_whitespace()) || text.ends_with(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    let score = strtod(text)?;
    let mantissa = match hex_digits(text.as_bytes()) {
        Some(hex) => std::str::from_utf8(hex).ok()?.split(['p', 'P']).next().unwrap_or_default(),
        None => text.split(['e', 'E']).next().unwrap_or_default(),
    };
    let overflowed = score.is_infinite() && !text.to_ascii_lowercase().contains("inf");
    let underflowed = score == 0.0 && mantissa.bytes().any(|b| b.is_ascii_alphanumeric() && b != b'0' && b != b'.');
    (!score.is_nan() && !overflowed && !underflowed).then_some(score + 0.0)
}

/// C's `strtod` over the whole of `text`: a decimal float, a hexadecimal one, `inf`,
/// `infinity` or `nan` (any case, optional sign); None if `text` is not all one number. Values
/// out of range come back as infinity or zero, as strtod returns them; the caller decides
/// (score arguments refuse them, range bounds take them).
pub fn strtod(text: &str) -> Option<f64> {
    match hex_digits(text.as_bytes()) {
        Some(hex) => HexFloat::parse(hex).map(|float| if text.starts_with('-') { -float.to_f64() } else { float.to_f64() }),
        None => text.parse().ok(),
    }
}

/// A score as Redis 7.0 prints it (`%.17g`; `inf` and `-inf`).
pub fn format_score(score: f64) -> String {
    if score.is_infinite() {
        return if score > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if score == 0.0 {
        return if score.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    let scientific = format!("{score:.16e}");
    let (mantissa, exponent) = scientific.split_once('e').expect("{:e} has an exponent");
    let exponent: i32 = exponent.parse().expect("{:e} exponent is an integer");
    if (-4..17).contains(&exponent) {
        let decimals = (16 - exponent) as usize;
        trim_fraction(&format!("{score:.decimals$}")).to_string()
    } else {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim_fraction(mantissa), exponent.abs())
    }
}

/// `1.2500` → `1.25`, `3.000` → `3`.
fn trim_fraction(text: &str) -> &str {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::{NodeId, Stamp};

    #[test]
    fn scores_print_as_redis_7_0_prints_them() {
        let cases = [
            (1.0, "1"),
            (-2.5, "-2.5"),
            (0.1, "0.10000000000000001"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e20, "1e+20"),
            (1e16, "10000000000000000"),
            (1e17, "1e+17"),
            (123456789.125, "123456789.125"),
            (1e-5, "1.0000000000000001e-05"),
            (0.0001, "0.0001"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (-0.0, "-0"),
            (f64::MAX, "1.7976931348623157e+308"),
        ];
        for (score, text) in cases {
            assert_eq!(format_score(score), text, "{score:e}");
        }
    }

    #[test]
    fn scores_parse_as_redis_parses_them() {
        assert_eq!(parse_score(b"1.5"), Some(1.5));
        assert_eq!(parse_score(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_score(b"+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_score(b"1e3"), Some(1000.0));
        assert!(parse_score(b"-0").unwrap().is_sign_positive());
        for bad in [&b""[..], b"nan", b" 1", b"1 ", b"abc", b"1.5x", b"1e400", b"1e-400"] {
            assert_eq!(parse_score(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn hexadecimal_scores_parse_as_strtod_parses_them() {
        // What redis-server 7.0.15 answered for ZADD with these scores, then ZSCORE.
        for (text, score) in [("0x10", 16.0), ("0x1p3", 8.0), ("0X1.8p1", 3.0), ("-0x10", -16.0), ("0x10.8", 16.5), ("+0x.8", 0.5), ("0x1P-2", 0.25), ("0x0", 0.0)] {
            assert_eq!(parse_score(text.as_bytes()), Some(score), "{text}");
        }
        // Digits past what a double holds round to nearest, as strtod does.
        assert_eq!(parse_score(b"0x1.00000000000008p0"), Some(1.0), "a tie rounds to even");
        assert_eq!(parse_score(b"0x1.000000000000080000001p0"), Some(1.0 + f64::EPSILON), "past the tie rounds up");
        assert_eq!(parse_score(b"0x1.fffffffffffffp1023"), Some(f64::MAX));
        for bad in ["0x", "0x1p", "0x.", "0xg", "0x1p1.5", " 0x10", "0x1p2000", "0x1p-2000", "0x10 "] {
            assert_eq!(parse_score(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn a_score_is_the_written_value_plus_uncleared_increments() {
        let mut score = ScoreState::default();
        score.write(Stamp::new(1, NodeId(1)), b"1.5");
        assert_eq!(score.score(), Some(1.5));
        let inc = score.next_increment(NodeId(1), Number::parse_float(b"2").unwrap()).unwrap();
        score.increment(Stamp::new(2, NodeId(1)), &inc);
        assert_eq!(score.score(), Some(3.5));
        let mut only_increments = ScoreState::default();
        only_increments.increment(Stamp::new(1, NodeId(2)), &only_increments.next_increment(NodeId(2), Number::from_i64(-4)).unwrap());
        assert_eq!(only_increments.score(), Some(-4.0));
    }
}

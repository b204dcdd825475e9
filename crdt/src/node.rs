//! Node identity and write stamps.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The persistent identity of one node (one region's server).
///
/// 64 random bits, created on first start and kept in the data dir; shown as 16 hex digits.
/// It orders last among equal HLC times, so every replica picks the same winner.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
pub struct NodeId(pub u64);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({self})")
    }
}

/// Why a node id string was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a node id is 16 hex digits and not all zero, got {0:?}")]
pub struct ParseNodeIdError(pub String);

impl FromStr for NodeId {
    type Err = ParseNodeIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        match u64::from_str_radix(s, 16) {
            Ok(v) if v != 0 && s.len() == 16 => Ok(NodeId(v)),
            _ => Err(ParseNodeIdError(s.to_string())),
        }
    }
}

/// The stamp of one write: its HLC time and the node that made it.
///
/// A node's HLC is strictly increasing, so a stamp is unique and serves as the dot (the causal
/// identity) of whatever the write created. Stamps are totally ordered by time, then node:
/// that order is the last-writer-wins order for concurrent writes.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Debug)]
pub struct Stamp {
    /// HLC time as an NTP64 value (32.32 fixed-point seconds since the Unix epoch).
    pub time: u64,
    /// The writing node.
    pub node: NodeId,
}

impl Stamp {
    /// A stamp from its parts.
    pub const fn new(time: u64, node: NodeId) -> Self {
        Stamp { time, node }
    }
}

/// The HLC time (NTP64: 32 bits of seconds, 32 of fraction, since the Unix epoch) of a Unix
/// millisecond, so that expiry times and write stamps can be compared.
pub const fn hlc_time_of_ms(ms: u64) -> u64 {
    // Round the fraction up, so that converting back yields the same millisecond.
    ((ms / 1000) << 32) | (((ms % 1000) << 32).div_ceil(1000))
}

/// The Unix millisecond of an HLC time (rounded down).
pub const fn ms_of_hlc_time(time: u64) -> u64 {
    (time >> 32) * 1000 + (((time & 0xffff_ffff) * 1000) >> 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_id_round_trips_through_hex() {
        let id = NodeId(0x0123_4567_89ab_cdef);
        assert_eq!(id.to_string(), "0123456789abcdef");
        assert_eq!("0123456789abcdef".parse::<NodeId>(), Ok(id));
        assert!("0000000000000000".parse::<NodeId>().is_err());
        assert!("xyz".parse::<NodeId>().is_err());
        assert!("123".parse::<NodeId>().is_err());
    }

    #[test]
    fn hlc_times_and_milliseconds_convert_both_ways() {
        for ms in [0, 1, 999, 1000, 1_763_000_000_123] {
            assert_eq!(ms_of_hlc_time(hlc_time_of_ms(ms)), ms);
            assert!(hlc_time_of_ms(ms) < hlc_time_of_ms(ms + 1));
        }
    }

    #[test]
    fn stamps_order_by_time_then_node() {
        let a = Stamp::new(5, NodeId(9));
        let b = Stamp::new(6, NodeId(1));
        let c = Stamp::new(6, NodeId(2));
        assert!(a < b && b < c);
    }
}

//! Member names as collections store them: inline when short, boxed otherwise.
//!
//! A `Box<[u8]>` is a 16-byte handle plus a heap allocation of at least 16 bytes (32 for the
//! usual `member:000000123456`), and reading the name costs a cache miss of its own. Most
//! member and field names are short, so [`ShortBytes`] keeps up to [`INLINE`] bytes in place:
//! 24 bytes in all, no allocation, and the name sits next to whatever holds it.

use std::cmp::Ordering;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

/// The longest name kept inline.
pub const INLINE: usize = 22;

/// A byte string, inline up to [`INLINE`] bytes. Compares, orders and hashes as its bytes.
#[derive(Clone)]
pub enum ShortBytes {
    /// Up to [`INLINE`] bytes: the first `len` of `bytes`.
    Inline {
        /// How many bytes of `bytes` are used.
        len: u8,
        /// The bytes, zero after `len`.
        bytes: [u8; INLINE],
    },
    /// A longer name.
    Boxed(Box<[u8]>),
}

const _: () = assert!(std::mem::size_of::<ShortBytes>() == 24, "as small as the Box<[u8]> handle plus its allocation");

impl ShortBytes {
    /// A copy of `bytes`.
    pub fn new(bytes: &[u8]) -> ShortBytes {
        if bytes.len() > INLINE {
            return ShortBytes::Boxed(bytes.into());
        }
        let mut inline = [0; INLINE];
        inline[..bytes.len()].copy_from_slice(bytes);
        ShortBytes::Inline { len: bytes.len() as u8, bytes: inline }
    }
}

impl Default for ShortBytes {
    /// The empty string.
    fn default() -> ShortBytes {
        ShortBytes::new(b"")
    }
}

impl From<&[u8]> for ShortBytes {
    fn from(bytes: &[u8]) -> ShortBytes {
        ShortBytes::new(bytes)
    }
}

impl Deref for ShortBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            ShortBytes::Inline { len, bytes } => &bytes[..usize::from(*len)],
            ShortBytes::Boxed(bytes) => bytes,
        }
    }
}

impl PartialEq for ShortBytes {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for ShortBytes {}

impl PartialOrd for ShortBytes {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ShortBytes {
    fn cmp(&self, other: &Self) -> Ordering {
        (**self).cmp(&**other)
    }
}

impl Hash for ShortBytes {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (**self).hash(state);
    }
}

impl serde::Serialize for ShortBytes {
    /// As a sequence of bytes, exactly as a `Box<[u8]>` serializes: states written before
    /// a value moved inline read back unchanged.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> serde::Deserialize<'de> for ShortBytes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<ShortBytes, D::Error> {
        Vec::<u8>::deserialize(deserializer).map(|bytes| ShortBytes::new(&bytes))
    }
}

impl std::fmt::Debug for ShortBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_names_read_compare_and_order_as_their_bytes() {
        let names: [&[u8]; 6] = [b"", b"a", b"member:000000123456", &[7; INLINE], &[7; INLINE + 1], &[0xff; 300]];
        for (i, a) in names.iter().enumerate() {
            let short = ShortBytes::new(a);
            assert_eq!(&*short, *a);
            assert_eq!(matches!(short, ShortBytes::Inline { .. }), a.len() <= INLINE);
            for b in &names[i..] {
                assert_eq!(short.cmp(&ShortBytes::new(b)), a.cmp(b), "{a:?} vs {b:?}");
            }
        }
        assert!(ShortBytes::new(b"ab") < ShortBytes::new(b"ab\0"), "a trailing zero byte still counts");
        assert_eq!(ShortBytes::default(), ShortBytes::new(b""));
    }

    #[test]
    fn serializes_as_a_boxed_slice_does() {
        for bytes in [&b"v"[..], &[9; 100]] {
            let boxed: Box<[u8]> = bytes.into();
            let encoded = rmp_serde::to_vec(&ShortBytes::new(bytes)).unwrap();
            assert_eq!(encoded, rmp_serde::to_vec(&boxed).unwrap());
            assert_eq!(&*rmp_serde::from_slice::<ShortBytes>(&encoded).unwrap(), bytes);
        }
    }
}

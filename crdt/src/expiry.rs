//! Time-to-live as a register of expiry times.

use crate::register::Register;

/// The expiry value of a PERSIST: it outlasts every time-to-live.
pub const NO_EXPIRY: u64 = u64::MAX;

/// A key's time to live: versions of "expires at this Unix millisecond" (or [`NO_EXPIRY`]).
///
/// Causally ordered EXPIRE/PERSIST replace each other, as in Redis. Among concurrent ones the
/// longest wins and PERSIST beats every TTL (Redis Enterprise's rule), so a key never expires
/// earlier than one region asked.
pub type Expiry = Register<u64>;

impl Expiry {
    /// The Unix millisecond at which the key expires, if it does.
    pub fn expires_at(&self) -> Option<u64> {
        self.versions().map(|(_, at)| *at).max().filter(|&at| at != NO_EXPIRY)
    }
}

//! RESP, the Redis wire protocol: requests in ([`parse`]) and replies out ([`reply`]).

pub mod parse;
pub mod reply;

pub use parse::{Limits, RequestParser};
pub use reply::{Protocol, Reply};

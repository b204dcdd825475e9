//! The tokio edge: listening, accepting, and serving connections; nothing here knows what a
//! command does.

mod connection;
mod idle_poll;
mod listener;

pub use idle_poll::IdlePoll;
pub use listener::{run, StartError};

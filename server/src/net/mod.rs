//! The tokio edge: listening, accepting, and serving connections; nothing here knows what a
//! command does.

mod connection;
mod listener;

pub use listener::{run, StartError};

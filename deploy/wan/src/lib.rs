//! A WAN emulator for QUIC between Meridian nodes on one machine, where there is no netem.
//!
//! Every directed link (node `i` dialling node `j`) is a UDP proxy: `i` is told that `j` lives
//! at the proxy's address, and the proxy forwards each datagram to `j` (and `j`'s answers back
//! to `i`) after the link's one-way delay and jitter, drops a share of them (loss), and drops
//! everything while the link is cut. [`model`] is the pure part (what happens to one packet),
//! [`proxy`] moves the bytes with tokio, and [`mesh`] wires the proxies of a whole cluster.
//!
//! The `meridian lab` command and the black-box tests in `tests/` both use it.

pub mod mesh;
pub mod model;
pub mod proxy;

pub use mesh::Wan;
pub use model::LinkModel;
pub use proxy::{Link, Proxy};

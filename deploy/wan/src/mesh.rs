//! The links of a whole cluster: one proxy per ordered pair of nodes.

use crate::model::LinkModel;
use crate::proxy::{Link, Proxy};
use std::io;
use std::net::SocketAddr;

/// Proxies between every ordered pair of `n` nodes. Node `i` reaches node `j` at
/// [`Wan::addr`]`(i, j)`; the link between two nodes is both directed proxies, so cutting it
/// stops the ops, acks and handshakes of both sessions between them.
pub struct Wan {
    n: usize,
    /// `proxies[i * n + j]` carries what `i` sends to `j`; `None` on the diagonal.
    proxies: Vec<Option<Proxy>>,
}

impl Wan {
    /// Starts proxies on loopback toward `targets` (each node's geo port), with the link
    /// between `i` and `j` behaving as `model(i, j)` each way.
    pub async fn mesh(targets: &[SocketAddr], model: impl Fn(usize, usize) -> LinkModel, seed: u64) -> io::Result<Wan> {
        let n = targets.len();
        let mut proxies = Vec::with_capacity(n * n);
        for i in 0..n {
            for (j, target) in targets.iter().enumerate() {
                proxies.push(if i == j {
                    None
                } else {
                    let listen = if target.is_ipv4() { "127.0.0.1:0" } else { "[::1]:0" };
                    let link_seed = seed.wrapping_mul(31).wrapping_add((i * n + j) as u64);
                    Some(Proxy::start(listen.parse().expect("address"), *target, model(i.min(j), i.max(j)), link_seed).await?)
                });
            }
        }
        Ok(Wan { n, proxies })
    }

    /// The address node `from` dials to reach node `to`.
    pub fn addr(&self, from: usize, to: usize) -> SocketAddr {
        self.proxy(from, to).addr()
    }

    fn proxy(&self, from: usize, to: usize) -> &Proxy {
        self.proxies[from * self.n + to].as_ref().expect("no link from a node to itself")
    }

    /// Both directed links between `a` and `b`.
    fn pair(&self, a: usize, b: usize) -> [&Link; 2] {
        [self.proxy(a, b).link(), self.proxy(b, a).link()]
    }

    /// Every link, each once per direction.
    fn links(&self) -> impl Iterator<Item = &Link> {
        self.proxies.iter().flatten().map(Proxy::link)
    }

    /// Cuts the link between `a` and `b`.
    pub fn cut(&self, a: usize, b: usize) {
        self.pair(a, b).iter().for_each(|l| l.cut());
    }

    /// Heals the link between `a` and `b`.
    pub fn heal(&self, a: usize, b: usize) {
        self.pair(a, b).iter().for_each(|l| l.heal());
    }

    /// True unless the link between `a` and `b` is cut (either way).
    pub fn is_up(&self, a: usize, b: usize) -> bool {
        self.pair(a, b).iter().all(|l| l.is_up())
    }

    /// Cuts every link of node `a`: a region partitioned from all others.
    pub fn isolate(&self, a: usize) {
        (0..self.n).filter(|&b| b != a).for_each(|b| self.cut(a, b));
    }

    /// Cuts every link: every region alone.
    pub fn cut_all(&self) {
        self.links().for_each(Link::cut);
    }

    /// Heals every link.
    pub fn heal_all(&self) {
        self.links().for_each(Link::heal);
    }

    /// Changes the behaviour of the link between `a` and `b`, both ways.
    pub fn set_model(&self, a: usize, b: usize, model: LinkModel) {
        self.pair(a, b).iter().for_each(|l| l.set_model(model));
    }

    /// The behaviour of the link between `a` and `b`.
    pub fn model(&self, a: usize, b: usize) -> LinkModel {
        self.proxy(a, b).link().model()
    }
}

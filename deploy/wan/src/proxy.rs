//! One directed link: a UDP proxy that delays, drops and partitions datagrams both ways.

use crate::model::{Fates, LinkModel};
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

/// Datagrams waiting in one direction, as a router queue holds them; more are dropped.
const QUEUE_PACKETS: usize = 65_536;

/// Largest datagram forwarded (QUIC's are at most 1,452 bytes on loopback paths here; anything
/// up to the UDP maximum passes).
const MAX_DATAGRAM: usize = 65_535;

/// The live settings of a link, shared by its proxy's tasks and whoever controls it.
#[derive(Clone)]
pub struct Link(Arc<Mutex<Setting>>);

struct Setting {
    model: LinkModel,
    up: bool,
}

impl Link {
    fn new(model: LinkModel) -> Link {
        Link(Arc::new(Mutex::new(Setting { model, up: true })))
    }

    /// Cuts the link: every datagram, queued or new, in either direction is dropped.
    pub fn cut(&self) {
        self.0.lock().expect("link lock").up = false;
    }

    /// Heals a cut link.
    pub fn heal(&self) {
        self.0.lock().expect("link lock").up = true;
    }

    /// True unless the link is cut.
    pub fn is_up(&self) -> bool {
        self.0.lock().expect("link lock").up
    }

    /// Changes delay, jitter and loss from the next datagram on.
    pub fn set_model(&self, model: LinkModel) {
        self.0.lock().expect("link lock").model = model;
    }

    /// The current delay, jitter and loss.
    pub fn model(&self) -> LinkModel {
        self.0.lock().expect("link lock").model
    }

    /// The fate of a datagram entering the link now: its delivery time, or `None` if dropped.
    fn admit(&self, fates: &mut Fates) -> Option<Instant> {
        let setting = self.0.lock().expect("link lock");
        if !setting.up {
            return None;
        }
        fates.decide(&setting.model).map(|delay| Instant::now() + delay)
    }
}

/// A running proxy for one directed link; it stops when dropped.
pub struct Proxy {
    addr: SocketAddr,
    link: Link,
    task: JoinHandle<()>,
}

impl Proxy {
    /// Listens on `listen` (port 0: any) and forwards to `target` through a link behaving as
    /// `model`; `seed` fixes its random fates.
    pub async fn start(listen: SocketAddr, target: SocketAddr, model: LinkModel, seed: u64) -> io::Result<Proxy> {
        let front = Arc::new(UdpSocket::bind(listen).await?);
        let addr = front.local_addr()?;
        let link = Link::new(model);
        let task = tokio::spawn(serve(front, target, link.clone(), seed));
        Ok(Proxy { addr, link, task })
    }

    /// The address dialers send to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The link's controls.
    pub fn link(&self) -> &Link {
        &self.link
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // Aborting the serving task drops its JoinSet, which aborts every task it started.
        self.task.abort();
    }
}

/// Where a delayed datagram goes.
enum Exit {
    /// The target, through a socket connected to it.
    Upstream(Arc<UdpSocket>),
    /// Back to the dialer at this address, through the front socket.
    Back(Arc<UdpSocket>, SocketAddr),
}

impl Exit {
    async fn send(&self, datagram: &[u8]) {
        let sent = match self {
            Exit::Upstream(socket) => socket.send(datagram).await,
            Exit::Back(socket, to) => socket.send_to(datagram, to).await,
        };
        if let Err(e) = sent {
            tracing::debug!("wan proxy: send failed: {e}");
        }
    }
}

/// Receives on the front socket; gives every dialer its own upstream socket, so the target
/// sees each dialer as a distinct peer and its answers find their way back.
async fn serve(front: Arc<UdpSocket>, target: SocketAddr, link: Link, seed: u64) {
    let mut tasks = JoinSet::new();
    let mut dialers: HashMap<SocketAddr, mpsc::Sender<(Instant, Vec<u8>)>> = HashMap::new();
    let mut fates = Fates::new(seed);
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (len, from) = match front.recv_from(&mut buf).await {
            Ok(got) => got,
            Err(e) => {
                // ICMP errors surface here on Linux (a target that is down); keep serving.
                tracing::debug!("wan proxy: receive failed: {e}");
                continue;
            }
        };
        if !dialers.contains_key(&from) {
            match open_upstream(&front, from, target, &link, seed ^ dialers.len() as u64 ^ 0x9e37, &mut tasks).await {
                Ok(queue) => {
                    dialers.insert(from, queue);
                }
                Err(e) => {
                    tracing::warn!("wan proxy: cannot open a socket toward {target}: {e}");
                    continue;
                }
            }
        }
        if let Some(at) = link.admit(&mut fates) {
            // A full queue drops the datagram, as a router's would.
            let _ = dialers[&from].try_send((at, buf[..len].to_vec()));
        }
    }
}

/// Opens the upstream socket for one dialer, with a delayed queue each way. Returns the
/// queue toward the target.
async fn open_upstream(
    front: &Arc<UdpSocket>,
    dialer: SocketAddr,
    target: SocketAddr,
    link: &Link,
    seed: u64,
    tasks: &mut JoinSet<()>,
) -> io::Result<mpsc::Sender<(Instant, Vec<u8>)>> {
    let local: SocketAddr = if target.is_ipv4() { "127.0.0.1:0".parse().expect("address") } else { "[::1]:0".parse().expect("address") };
    let upstream = Arc::new(UdpSocket::bind(local).await?);
    upstream.connect(target).await?;
    let forward = delayed_queue(Exit::Upstream(upstream.clone()), link.clone(), tasks);
    let back = delayed_queue(Exit::Back(front.clone(), dialer), link.clone(), tasks);
    let link = link.clone();
    tasks.spawn(async move {
        let mut fates = Fates::new(seed);
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            match upstream.recv(&mut buf).await {
                Ok(len) => {
                    if let Some(at) = link.admit(&mut fates) {
                        let _ = back.try_send((at, buf[..len].to_vec()));
                    }
                }
                Err(e) => tracing::debug!("wan proxy: receive from {target} failed: {e}"),
            }
        }
    });
    Ok(forward)
}

/// A FIFO of datagrams, each sent at its delivery time (or after the one before it, so a
/// direction never reorders), unless the link was cut meanwhile.
fn delayed_queue(exit: Exit, link: Link, tasks: &mut JoinSet<()>) -> mpsc::Sender<(Instant, Vec<u8>)> {
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(QUEUE_PACKETS);
    tasks.spawn(async move {
        while let Some((at, datagram)) = rx.recv().await {
            tokio::time::sleep_until(at).await;
            if link.is_up() {
                exit.send(&datagram).await;
            }
        }
    });
    tx
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn echo() -> (SocketAddr, JoinHandle<()>) {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            while let Ok((n, from)) = socket.recv_from(&mut buf).await {
                let _ = socket.send_to(&buf[..n], from).await;
            }
        });
        (addr, task)
    }

    async fn round_trip(client: &UdpSocket, payload: &[u8], limit: Duration) -> Option<Duration> {
        let start = Instant::now();
        client.send(payload).await.unwrap();
        let mut buf = [0u8; 2048];
        match tokio::time::timeout(limit, client.recv(&mut buf)).await {
            Ok(Ok(n)) => {
                assert_eq!(&buf[..n], payload);
                Some(start.elapsed())
            }
            _ => None,
        }
    }

    #[tokio::test]
    async fn datagrams_take_the_delay_both_ways_and_stop_while_cut() {
        let (target, _echo) = echo().await;
        let proxy = Proxy::start("127.0.0.1:0".parse().unwrap(), target, LinkModel::delay_ms(30), 1).await.unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        client.connect(proxy.addr()).await.unwrap();
        let rtt = round_trip(&client, b"hello", Duration::from_secs(2)).await.expect("answered");
        assert!(rtt >= Duration::from_millis(60), "30 ms each way: {rtt:?}");
        assert!(rtt < Duration::from_millis(500), "{rtt:?}");

        proxy.link().cut();
        assert_eq!(round_trip(&client, b"lost", Duration::from_millis(300)).await, None);
        proxy.link().heal();
        assert!(round_trip(&client, b"again", Duration::from_secs(2)).await.is_some());
    }

    #[tokio::test]
    async fn a_lossy_link_drops_about_its_share() {
        let (target, _echo) = echo().await;
        let model = LinkModel { delay: Duration::ZERO, jitter: Duration::ZERO, loss: 0.5 };
        let proxy = Proxy::start("127.0.0.1:0".parse().unwrap(), target, model, 3).await.unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        client.connect(proxy.addr()).await.unwrap();
        let mut answered = 0;
        for i in 0..100u32 {
            if round_trip(&client, &i.to_be_bytes(), Duration::from_millis(30)).await.is_some() {
                answered += 1;
            }
        }
        // Each round trip crosses the link twice: about a quarter get through.
        assert!((8..50).contains(&answered), "{answered} of 100 answered at 50% loss each way");
    }
}

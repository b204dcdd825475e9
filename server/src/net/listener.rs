//! Listening sockets, the accept loop, background housekeeping, and graceful shutdown.

use super::connection;
use crate::alloc::used_memory;
use crate::keyspace::SHARDS;
use crate::node::Applied;
use crate::shared::Shared;
use meridian_crdt::{hlc_time_of_ms, Body};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

/// How long shutdown waits for connections to finish their current batch.
const DRAIN: Duration = Duration::from_secs(5);
/// Shards the active-expiry cycle visits per tick (a full sweep every 64 ticks).
const EXPIRE_SHARDS_PER_TICK: usize = SHARDS / 64;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listening address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// No address could be bound at all.
    #[error("no address to listen on (bind {0})")]
    NoAddress(String),
}

/// A running server's listening addresses.
pub struct Started {
    /// Where clients can connect.
    pub addrs: Vec<SocketAddr>,
}

/// Binds one address with the configured listen backlog.
fn listen(addr: &str, backlog: u64) -> std::io::Result<TcpListener> {
    use std::net::ToSocketAddrs;
    let addr = addr.to_socket_addrs()?.next().ok_or_else(|| std::io::Error::other("no address"))?;
    let socket = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog.min(i32::MAX as u64) as i32)?;
    TcpListener::from_std(socket.into())
}

fn bind(shared: &Shared) -> Result<Vec<TcpListener>, StartError> {
    let (bind, port, backlog) = {
        let c = shared.config.read();
        (c.bind.clone(), c.port, c.tcp_backlog)
    };
    let mut listeners: Vec<TcpListener> = Vec::new();
    for spec in &bind {
        // With port 0, every address shares the port the kernel picked for the first.
        let port = match (port, listeners.first().and_then(|l| l.local_addr().ok())) {
            (0, Some(first)) => first.port(),
            _ => port,
        };
        let (optional, host) = match spec.strip_prefix('-') {
            Some(host) => (true, host),
            None => (false, spec.as_str()),
        };
        let host = if host == "*" { "0.0.0.0" } else { host };
        let addr = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
        match listen(&addr, backlog) {
            Ok(listener) => listeners.push(listener),
            Err(e) if optional => tracing::debug!("skipping optional address {addr}: {e}"),
            Err(source) => return Err(StartError::Bind { addr, source }),
        }
    }
    if listeners.is_empty() {
        return Err(StartError::NoAddress(bind.join(" ")));
    }
    Ok(listeners)
}

/// Runs the server until SIGTERM, SIGINT or SHUTDOWN. `on_ready` is told where it listens.
pub async fn run(shared: Arc<Shared>, on_ready: impl FnOnce(&Started)) -> Result<(), StartError> {
    let listeners = bind(&shared)?;
    let started = Started { addrs: listeners.iter().filter_map(|l| l.local_addr().ok()).collect() };
    // With port 0 the kernel picked one: report the real port in INFO and CONFIG GET.
    if let Some(addr) = started.addrs.first() {
        shared.config.write().port = addr.port();
    }
    // Installed before "ready" is said: a SIGINT sent on seeing it must find the handler.
    let signals = shutdown_signals();
    on_ready(&started);
    for listener in listeners {
        tokio::spawn(accept_loop(shared.clone(), listener));
    }
    tokio::spawn(housekeeping(shared.clone()));
    // With several workers, the one polling need not be the one holding the sockets' epoll,
    // so it would spin for nothing: polling serves the single event loop only.
    if tokio::runtime::Handle::current().runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread {
        tokio::spawn({
            let shared = shared.clone();
            async move { shared.idle_poll.run(&shared.hot.busy_poll_us).await }
        });
    }
    wait_for_shutdown(&shared, signals).await;
    shared.request_shutdown();
    // Connections finish the batch they are running, send its replies, and close.
    let deadline = Instant::now() + DRAIN;
    while shared.clients.count() > 0 && Instant::now() < deadline {
        shared.clients.all().iter().for_each(|c| c.stop_reading());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tracing::info!("Meridian is now ready to exit, bye bye...");
    Ok(())
}

/// Handlers for SIGTERM and SIGINT, or None (with a warning) if they cannot be installed.
fn shutdown_signals() -> Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)> {
    use tokio::signal::unix::{signal, SignalKind};
    match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(term), Ok(int)) => Some((term, int)),
        _ => {
            tracing::warn!("cannot install signal handlers; stop with SHUTDOWN");
            None
        }
    }
}

async fn wait_for_shutdown(shared: &Shared, signals: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>) {
    let mut stopping = shared.shutdown.subscribe();
    let Some((mut term, mut int)) = signals else {
        let _ = stopping.wait_for(|stop| *stop).await;
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::warn!("Received SIGTERM scheduling shutdown..."),
        _ = int.recv() => tracing::warn!("Received SIGINT scheduling shutdown..."),
        _ = stopping.wait_for(|stop| *stop) => {}
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    let mut stopping = shared.shutdown.subscribe();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopping.wait_for(|stop| *stop) => return,
        };
        match accepted {
            Ok((stream, addr)) => admit(&shared, stream, addr).await,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn admit(shared: &Arc<Shared>, mut stream: TcpStream, addr: SocketAddr) {
    shared.stats.connections.fetch_add(1, Ordering::Relaxed);
    let (maxclients, keepalive) = {
        let c = shared.config.read();
        (c.maxclients, c.tcp_keepalive)
    };
    if shared.clients.count() as u64 >= maxclients {
        shared.stats.rejected.fetch_add(1, Ordering::Relaxed);
        let _ = stream.write_all(b"-ERR max number of clients reached\r\n").await;
        return;
    }
    let _ = stream.set_nodelay(true);
    if keepalive > 0 {
        let sock = socket2::SockRef::from(&stream);
        let params = socket2::TcpKeepalive::new().with_time(Duration::from_secs(keepalive));
        let _ = sock.set_tcp_keepalive(&params);
    }
    let laddr = stream.local_addr().unwrap_or(addr);
    let info = shared.clients.register(addr, laddr, stream.as_raw_fd());
    tracing::debug!(client = info.id, %addr, "accepted");
    tokio::spawn(connection::serve(shared.clone(), stream, info));
}

/// Active expiry of one shard: every key whose TTL has passed becomes an `Expired` op through
/// the one write path, so the expiry reaches every region.
fn expire_shard(shared: &Shared, index: usize, now: u64) {
    let mut db = shared.keyspace.unlocked();
    let due = db.with_shard(index, |shard| shard.expired(now));
    for (key, at) in &due {
        let (key, at) = (key, *at);
        let op = shared.node.stamp(key, Body::Expired { before: hlc_time_of_ms(at) });
        db.apply(key, op.stamp(), &op.body, &Applied(&shared.node), &shared.write_stability());
        db.at(key).shard.count_expired();
    }
    if !due.is_empty() {
        shared.log_grew();
    }
}

/// With peers, garbage is collected here, at the stability frontier the acks establish, one
/// slice of shards per tick; the op log lets go of what every member has applied.
fn collect_shards(shared: &Shared, from: usize, count: usize) {
    let Some(replication) = &shared.replication else { return };
    let stable = replication.stable();
    shared.node.trim_log(&stable);
    let mut db = shared.keyspace.unlocked();
    for index in from..from + count {
        db.with_shard(index % SHARDS, |shard| shard.collect(&stable));
    }
}

/// Background work, `hz` times a second: active expiry, ops/sec sampling, peak memory.
async fn housekeeping(shared: Arc<Shared>) {
    let mut stopping = shared.shutdown.subscribe();
    let mut next_shard = 0;
    let mut last = (Instant::now(), shared.stats.totals().commands);
    loop {
        let period = Duration::from_millis(1000 / shared.config.read().hz.max(1));
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = stopping.wait_for(|stop| *stop) => return,
        }
        let now = crate::clock::now_ms();
        collect_shards(&shared, next_shard, EXPIRE_SHARDS_PER_TICK);
        for _ in 0..EXPIRE_SHARDS_PER_TICK {
            expire_shard(&shared, next_shard, now);
            next_shard = (next_shard + 1) % SHARDS;
        }
        let commands = shared.stats.totals().commands;
        let elapsed = last.0.elapsed().as_secs_f64().max(1e-3);
        let ran = commands.saturating_sub(last.1);
        shared.stats.ops_per_sec.store((ran as f64 / elapsed) as u64, Ordering::Relaxed);
        last = (Instant::now(), commands);
        shared.stats.peak_memory.fetch_max(used_memory(), Ordering::Relaxed);
    }
}

//! QUIC transport: one endpoint per node (listening on `geo-port`, dialling peers), mutual
//! TLS, and one bidirectional stream per session carrying length-prefixed frames. Each
//! configured peer gets a dialling task that runs the *sending* side of a session; every
//! accepted connection runs the *receiving* side. Reconnects back off from 100 ms to 2 s.

use super::store::NodeStore;
use super::{tls, LinkState};
use crate::shared::Shared;
use bytes::{Buf, Bytes, BytesMut};
use meridian_geo::{decode_frame, encode_frame, AckDue, Message, Receiver, Sender, SenderError, Start, Topology};
use quinn::{Connection, Endpoint, EndpointConfig, RecvStream, SendStream};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

/// A ring session with a member other than the successor lasts at most this long before the
/// successor is tried again.
const DETOUR: Duration = Duration::from_secs(5);
/// Keys per state-transfer chunk.
const CHUNK_KEYS: usize = 512;
/// Collection members per state-transfer chunk: a chunk closes past it, and a key with more
/// travels alone, in pieces, so no frame outgrows `MAX_FRAME`.
const CHUNK_MEMBERS: usize = 16 * 1024;
/// Ops per batch at most.
const BATCH_OPS: usize = 1024;
/// UDP socket buffer size asked for (each direction).
const UDP_BUFFER: usize = 4 * 1024 * 1024;
/// How often an idle receiver checks whether it has news for its sender's acks.
const GOSSIP: Duration = Duration::from_millis(250);

/// Most frequent acks on one session: WAIT and lag figures wait at most this long for one.
const ACK_EVERY: Duration = Duration::from_millis(5);

/// Why replication could not start (a startup error).
#[derive(Debug, thiserror::Error)]
pub enum GeoStartError {
    /// TLS material is missing or unusable.
    #[error("replication needs --tls-cert, --tls-key and --tls-ca (see `meridian certs`)")]
    NoTls,
    /// TLS material could not be loaded.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// This node's name is not the one its certificate was issued to.
    #[error("node-name is {configured:?} but the certificate {cert} was issued to {certified}: a node's name is the one its certificate proves")]
    Identity {
        /// The configured name.
        configured: String,
        /// The certificate file.
        cert: String,
        /// The name in it (quoted), or that it has none.
        certified: String,
    },
    /// The geo port could not be bound.
    #[error("cannot listen for peers on udp {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A session ended.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("{0}")]
    Sender(#[from] SenderError),
    #[error("{0}")]
    Receiver(#[from] meridian_geo::ReceiverError),
    #[error("{0}")]
    Frame(#[from] meridian_geo::FrameError),
    #[error("connection: {0}")]
    Connection(#[from] quinn::ConnectionError),
    #[error("stream: {0}")]
    Write(#[from] quinn::WriteError),
    #[error("stream: {0}")]
    Read(#[from] quinn::ReadError),
    #[error("connect: {0}")]
    Connect(#[from] quinn::ConnectError),
    #[error("peer closed the stream")]
    Closed,
    #[error("ops arrived out of order (another session is ahead); resynchronising")]
    Gap,
    #[error("cannot resolve {0}")]
    Resolve(String),
    #[error("peer restarted: redialling its new incarnation")]
    PeerRestarted,
    #[error("state transfer work failed: {0}")]
    Blocking(String),
    #[error("{0:?} is not a configured peer of this node (membership is the --peer list)")]
    NotMember(String),
    #[error("peer says it is {claimed:?} but its certificate was issued to {proven:?}")]
    Impostor { claimed: String, proven: Option<String> },
}

/// Binds the geo port and starts the dialling and accepting tasks. Returns the bound address.
pub async fn start(shared: Arc<Shared>) -> Result<Option<SocketAddr>, GeoStartError> {
    let Some(replication) = &shared.replication else { return Ok(None) };
    let (port, bind, cert, key, ca) = {
        let c = shared.config.read();
        let bind = c.bind.iter().map(|b| b.trim_start_matches('-')).next().unwrap_or("127.0.0.1").to_string();
        (c.geo_port, bind, c.tls_cert.clone(), c.tls_key.clone(), c.tls_ca.clone())
    };
    if cert.is_empty() || key.is_empty() || ca.is_empty() {
        return Err(GeoStartError::NoTls);
    }
    let (server, client) = tls::configs(&cert, &key, &ca)?;
    let certified = tls::certified_name_in(&cert);
    if certified.as_deref() != Some(replication.name.as_str()) {
        let certified = certified.map_or("no node name".into(), |name| format!("{name:?}"));
        return Err(GeoStartError::Identity { configured: replication.name.clone(), cert, certified });
    }
    let host = if bind == "*" { "0.0.0.0".to_string() } else { bind };
    let addr: SocketAddr = format!("{host}:{port}").parse().or_else(|_| format!("[{host}]:{port}").parse()).unwrap_or(SocketAddr::from(([127, 0, 0, 1], port)));
    let socket = udp_socket(addr).map_err(|source| GeoStartError::Bind { addr, source })?;
    let runtime = Arc::new(quinn::TokioRuntime);
    let mut endpoint = Endpoint::new(EndpointConfig::default(), Some(server), socket, runtime).map_err(|source| GeoStartError::Bind { addr, source })?;
    endpoint.set_default_client_config(client);
    let local = endpoint.local_addr().map_err(|source| GeoStartError::Bind { addr, source })?;
    tracing::info!(name = %replication.name, cluster = %replication.cluster, topology = ?replication.topology, "replication listening on udp {local}");
    tokio::spawn(accept_loop(shared.clone(), endpoint.clone()));
    let links: Vec<usize> = (0..replication.peers.len()).collect();
    for &link in &links {
        tokio::spawn(learn_name(shared.clone(), endpoint.clone(), link));
    }
    match replication.topology {
        Topology::Mesh => {
            for link in links {
                tokio::spawn(dial_loop(shared.clone(), endpoint.clone(), vec![link]));
            }
        }
        Topology::Ring if !links.is_empty() => {
            tokio::spawn(dial_loop(shared.clone(), endpoint.clone(), links));
        }
        Topology::Ring => {}
    }
    Ok(Some(local))
}

/// The geo port's socket, with buffers large enough for a burst of batches: with the
/// kernel's default (208 KB on Linux) a peer busy applying a burst drops packets, which QUIC
/// then sends again (`lost_packets` in INFO).
fn udp_socket(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    for (name, set, get) in [
        ("receive", Socket::set_recv_buffer_size as fn(&Socket, usize) -> std::io::Result<()>, Socket::recv_buffer_size as fn(&Socket) -> std::io::Result<usize>),
        ("send", Socket::set_send_buffer_size, Socket::send_buffer_size),
    ] {
        // The kernel caps the size at net.core.[rw]mem_max; less is worth a warning, not a failure.
        let _ = set(&socket, UDP_BUFFER);
        let got = get(&socket)?;
        if got < UDP_BUFFER {
            tracing::warn!(
                "UDP {name} buffer of the geo port is {got} bytes (asked {UDP_BUFFER}); raise net.core.{}mem_max to avoid packet loss under load",
                if name == "send" { "w" } else { "r" }
            );
        }
    }
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// Dials `candidates` in order (a ring: successor first, the next live member if it is down;
/// a mesh: one peer) and runs a sending session on the first that answers.
async fn dial_loop(shared: Arc<Shared>, endpoint: Endpoint, candidates: Vec<usize>) {
    let replication = shared.replication.as_ref().expect("replication is configured");
    let mut shutdown = shared.shutdown.subscribe();
    let mut backoff = Duration::from_millis(100);
    loop {
        for (rank, &link) in candidates.iter().enumerate() {
            let addr = replication.peers[link].lock().addr.clone();
            let limit = (rank > 0).then_some(DETOUR);
            let outcome = tokio::select! {
                outcome = connect_and_send(&shared, &endpoint, link, &addr, limit) => outcome,
                _ = shutdown.wait_for(|stop| *stop) => return,
            };
            let mut peer = replication.peers[link].lock();
            peer.state = LinkState::Connecting;
            // The connection is closed: QUIC has dropped what it buffered for it.
            peer.new_session();
            match outcome {
                Ok(()) => break,
                Err(SessionError::Sender(SenderError::Lagged)) => {
                    // The next session transfers the state; no need to wait.
                    backoff = Duration::from_millis(100);
                    peer.last_error = "peer fell behind the op log: transferring state".into();
                    break;
                }
                Err(SessionError::PeerRestarted) => {
                    backoff = Duration::from_millis(100);
                    peer.last_error = SessionError::PeerRestarted.to_string();
                    break;
                }
                Err(e) => {
                    if peer.last_error != e.to_string() {
                        tracing::warn!(peer = %addr, "replication link: {e}");
                    }
                    peer.last_error = e.to_string();
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// Learns the certified name of the node at configured peer `link`'s address with one
/// handshake (no session), retrying until it answers: a ring sends only to its successor, yet
/// its predecessor must be known as a member to be let in.
async fn learn_name(shared: Arc<Shared>, endpoint: Endpoint, link: usize) {
    let replication = shared.replication.as_ref().expect("replication is configured");
    let mut shutdown = shared.shutdown.subscribe();
    let mut backoff = Duration::from_millis(100);
    while replication.peers[link].lock().certified.is_none() {
        let addr = replication.peers[link].lock().addr.clone();
        let handshake = async { endpoint.connect(resolve(&addr)?, tls::PEER_NAME)?.await.map_err(SessionError::from) };
        tokio::select! {
            Ok(conn) = handshake => {
                replication.peers[link].lock().certified = tls::peer_name(&conn);
                conn.close(0u32.into(), b"name learnt");
            }
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// The peer on `conn` is `claimed` only if its certificate was issued to that name.
fn check_identity(conn: &Connection, claimed: &str) -> Result<String, SessionError> {
    match tls::peer_name(conn) {
        Some(proven) if proven == claimed => Ok(proven),
        proven => Err(SessionError::Impostor { claimed: claimed.to_string(), proven }),
    }
}

fn resolve(addr: &str) -> Result<SocketAddr, SessionError> {
    addr.to_socket_addrs().ok().and_then(|mut a| a.next()).ok_or_else(|| SessionError::Resolve(addr.to_string()))
}

async fn connect_and_send(shared: &Arc<Shared>, endpoint: &Endpoint, link: usize, addr: &str, limit: Option<Duration>) -> Result<(), SessionError> {
    let conn = endpoint.connect(resolve(addr)?, tls::PEER_NAME)?.await?;
    if let Some(replication) = &shared.replication {
        replication.peers[link].lock().certified = tls::peer_name(&conn);
    }
    let result = send_session(shared, link, &conn, limit).await;
    conn.close(0u32.into(), b"session over");
    result
}

/// Runs the sending side of a session on `conn`.
async fn send_session(shared: &Arc<Shared>, link: usize, conn: &Connection, limit: Option<Duration>) -> Result<(), SessionError> {
    let replication = shared.replication.as_ref().expect("replication is configured");
    let node = &shared.node;
    let (send, mut recv) = conn.open_bi().await?;
    let mut reader = FrameReader::default();
    let mut sender = Sender::new(&replication.cluster, node.id(), &replication.name, replication.topology);
    let mut send = SendSide { shared, link, conn, send, wire_base: 0, lost_base: 0 };
    let hello_size = write(&mut send.send, &sender.hello(node.applied())).await?;
    let hello = reader.next(&mut recv).await?;
    if let Message::Hello { name, node: origin, .. } = &hello {
        check_identity(conn, name)?;
        replication.heard(name, *origin);
    }
    let live = replication.live(node.id());
    let (start, snapshot_from) = node.with_log(|log, applied| (sender.on_hello(hello, log, applied, live), applied.clone()));
    let start = start?;
    (send.wire_base, send.lost_base) = {
        let mut peer = replication.peers[link].lock();
        peer.node = sender.peer().map(|id| (sender.peer_name().to_string(), id));
        peer.last_error.clear();
        peer.sessions += 1;
        peer.state = if start == Start::Snapshot { LinkState::Transferring } else { LinkState::Connected };
        (peer.wire_sent, peer.wire_lost)
    };
    send.record(hello_size);
    tracing::info!(peer = %sender.peer_name(), start = ?start, "replication link up");
    if start == Start::Snapshot {
        replication.peers[link].lock().transfers += 1;
        // Copying a big key (a list of a million elements) takes a while: off the event loop.
        let mut messages = Box::new(snapshot(shared.clone(), snapshot_from));
        loop {
            let (rest, message) = on_a_blocking_thread(messages, |messages| messages.next()).await?;
            messages = rest;
            let Some(message) = message else { break };
            send.frame(&message, &mut reader, &mut recv, &mut sender).await?;
        }
        replication.peers[link].lock().state = LinkState::Connected;
    }
    let deadline = limit.map(|l| tokio::time::Instant::now() + l);
    loop {
        let notified = replication.log_grew.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        while let Some(batch) = node.with_log(|log, applied| sender.next_batch(log, applied, BATCH_OPS))? {
            send.frame(&batch, &mut reader, &mut recv, &mut sender).await?;
        }
        tokio::select! {
            _ = &mut notified => {}
            message = reader.next(&mut recv) => {
                heard(shared, link, &mut sender, message?, reader.last_size)?;
                // UDP counters move as packets leave, after the writes: read them again.
                send.record(0);
            }
            _ = sleep_until(deadline) => return Ok(()),
            _ = replication.restarted[link].notified() => {
                // A signal left over from before this session is about an incarnation this
                // session does not talk to; only a newer one than this session's peer counts.
                let current = replication.current_origin(sender.peer_name());
                if current.is_some() && current != sender.peer() {
                    return Err(SessionError::PeerRestarted);
                }
            }
        }
    }
}

/// The sending side of a session's stream, counting what it writes.
struct SendSide<'a> {
    shared: &'a Shared,
    link: usize,
    conn: &'a Connection,
    send: SendStream,
    /// The link's UDP figures before this session (QUIC counts per connection).
    wire_base: u64,
    lost_base: u64,
}

impl SendSide<'_> {
    /// Counts `sent` frame bytes written on this session (INFO's figures, and what QUIC may
    /// buffer), and refreshes the link's UDP figures.
    fn record(&self, sent: u64) {
        let Some(replication) = &self.shared.replication else { return };
        let stats = self.conn.stats();
        let mut peer = replication.peers[self.link].lock();
        peer.bytes_sent += sent;
        peer.session_written += sent;
        peer.wire_sent = self.wire_base + stats.udp_tx.bytes;
        peer.wire_lost = self.lost_base + stats.path.lost_packets;
    }

    /// Writes one frame, then takes the acks already arrived: while a backlog or a state
    /// transfer streams, the buffered-bytes figure, WAIT and stability do not wait for its end.
    async fn frame(&mut self, message: &Message, reader: &mut FrameReader, recv: &mut RecvStream, sender: &mut Sender) -> Result<(), SessionError> {
        let size = write(&mut self.send, message).await?;
        self.record(size);
        while let Some(message) = arrived(reader, recv).await {
            heard(self.shared, self.link, sender, message?, reader.last_size)?;
        }
        Ok(())
    }
}

/// Handles a message from the receiver: an ack updates the link's figures and the stability
/// frontier.
fn heard(shared: &Shared, link: usize, sender: &mut Sender, message: Message, size: usize) -> Result<(), SessionError> {
    if let (Some(replication), Message::Ack { applied, known, received, .. }) = (&shared.replication, sender.on_message(message)?) {
        replication.on_ack(link, &applied, received, &known, &shared.node.applied(), size as u64);
    }
    Ok(())
}

/// The next message if one has fully arrived, without waiting for one.
async fn arrived(reader: &mut FrameReader, recv: &mut RecvStream) -> Option<Result<Message, SessionError>> {
    tokio::select! {
        biased;
        // Cancel-safe: what a cancelled read took stays in the reader's buffer.
        message = reader.next(recv) => Some(message),
        _ = std::future::ready(()) => None,
    }
}

/// The frames of a full state transfer, made as they are sent: every shard's states (cold keys
/// included, read from the flash tier without promoting them), copied one shard at a time
/// without stopping writes, the shard locked only while it is copied, never across a network
/// wait. Ops applied meanwhile are streamed afterwards too; applying them twice is harmless.
fn snapshot(shared: Arc<Shared>, applied: meridian_crdt::VersionVector) -> impl Iterator<Item = Message> + Send + 'static {
    let chunks = (0..crate::keyspace::SHARDS).flat_map(move |index| {
        let (mut chunks, mut chunk, mut members) = (Vec::new(), Vec::with_capacity(CHUNK_KEYS), 0);
        shared.keyspace.unlocked().visit(index, 0, 0, |e| {
            let size = e.state.members();
            if size > CHUNK_MEMBERS {
                // Too big for a frame of its own, maybe: it travels in pieces.
                chunks.extend(meridian_geo::pieces(Bytes::copy_from_slice(&e.key), &e.state));
                return;
            }
            chunk.push((Bytes::copy_from_slice(&e.key), e.state.clone()));
            members += size;
            if chunk.len() == CHUNK_KEYS || members > CHUNK_MEMBERS {
                chunks.push(Message::SnapshotChunk(std::mem::take(&mut chunk)));
                members = 0;
            }
        });
        if !chunk.is_empty() {
            chunks.push(Message::SnapshotChunk(chunk));
        }
        chunks
    });
    std::iter::once(Message::SnapshotStart { applied }).chain(chunks).chain(std::iter::once(Message::SnapshotEnd))
}

/// Runs `work` on `value` on a blocking thread, and gives `value` back with the result: what
/// takes long (copying or merging a big key in a state transfer) does not hold up the event
/// loop, which keeps serving clients and QUIC's timers meanwhile.
async fn on_a_blocking_thread<T: Send + 'static, R: Send + 'static>(mut value: T, work: impl FnOnce(&mut T) -> R + Send + 'static) -> Result<(T, R), SessionError> {
    let done = tokio::task::spawn_blocking(move || {
        let result = work(&mut value);
        (value, result)
    });
    done.await.map_err(|e| SessionError::Blocking(e.to_string()))
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn accept_loop(shared: Arc<Shared>, endpoint: Endpoint) {
    let handshakes = Arc::new(tokio::sync::Semaphore::new(tls::MAX_HANDSHAKES));
    while let Some(incoming) = endpoint.accept().await {
        // A first Initial from an address gets a stateless Retry: only a sender that can
        // receive at its address comes back, and nothing is held for it meanwhile.
        if !incoming.remote_address_validated() && incoming.may_retry() {
            let _ = incoming.retry();
            continue;
        }
        // And no more than so many handshakes are held at once, whoever sends them.
        let Ok(handshake) = handshakes.clone().try_acquire_owned() else {
            tracing::debug!(peer = %incoming.remote_address(), "refused a QUIC handshake: too many in progress");
            incoming.refuse();
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let from = incoming.remote_address();
            let connected = incoming.await;
            drop(handshake);
            match connected {
                Ok(conn) => {
                    if let Err(e) = receive_session(&shared, &conn).await {
                        tracing::info!(peer = %from, "replication session from peer ended: {e}");
                    }
                }
                // A peer without a certificate from the cluster CA ends here, before any data.
                Err(e) => tracing::warn!(peer = %from, "refused replication connection: {e}"),
            }
        });
    }
}

/// Runs the receiving side of a session on `conn`.
async fn receive_session(shared: &Arc<Shared>, conn: &Connection) -> Result<(), SessionError> {
    let replication = shared.replication.as_ref().expect("replication is configured");
    let (mut send, mut recv) = conn.accept_bi().await?;
    let mut reader = FrameReader::default();
    let mut receiver = Receiver::new(&replication.cluster, shared.node.id(), &replication.name);
    let mut store = NodeStore::new(shared.clone());
    let hello = reader.next(&mut recv).await?;
    let reply = receiver.on_hello(hello, &store).map_err(SessionError::from).and_then(|reply| {
        let (_, claimed) = receiver.peer().expect("a hello was accepted");
        let proven = check_identity(conn, claimed)?;
        match replication.is_member(&proven) {
            true => Ok(reply),
            false => Err(SessionError::NotMember(proven)),
        }
    });
    let reply = match reply {
        Ok(reply) => reply,
        Err(e) => {
            tracing::warn!("refused replication peer: {e}");
            // The peer hears why before the connection goes (the close would drop the frame).
            if write(&mut send, &Message::Refused(e.to_string())).await.is_ok() && send.finish().is_ok() {
                let _ = tokio::time::timeout(Duration::from_secs(1), send.stopped()).await;
            }
            return Err(e);
        }
    };
    write(&mut send, &reply).await?;
    if let Some((origin, name)) = receiver.peer() {
        replication.heard(name, origin);
    }
    let mut gossip = tokio::time::interval(GOSSIP);
    gossip.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_ack = None;
    let mut last_sent = tokio::time::Instant::now() - ACK_EVERY;
    // Set while something may have changed since the last ack sent.
    let mut unacked = false;
    loop {
        let flush_at = unacked.then_some(last_sent + ACK_EVERY);
        let ack_due = tokio::select! {
            message = reader.next(&mut recv) => {
                let message = message?;
                let before = receiver.ops_applied;
                let due = match matches!(message, Message::SnapshotChunk(_) | Message::SnapshotPiece { last: true, .. } | Message::SnapshotEnd) {
                    // Merging a chunk of a state transfer (a list of a million elements, say)
                    // takes a while: off the event loop, which keeps serving clients.
                    true => {
                        let ((r, s), due) = on_a_blocking_thread((receiver, store), |(r, s)| r.on_message(message, s)).await?;
                        (receiver, store) = (r, s);
                        due
                    }
                    false => receiver.on_message(message, &mut store),
                }?;
                if receiver.ops_applied != before {
                    // Once per batch: senders relaying these ops wake up.
                    shared.log_grew();
                }
                if store.gap {
                    return Err(SessionError::Gap);
                }
                unacked |= due == AckDue::Soon;
                due == AckDue::Now
            }
            _ = sleep_until(flush_at) => false,
            // When idle, an ack still goes out if what it would say changed: stability (and so
            // garbage collection and op-log trimming) must not wait for the next write.
            _ = gossip.tick() => {
                unacked = true;
                false
            }
        };
        // Acks carry whole vectors (and what this node knows of others'), so under a stream
        // of small batches one goes out at most every ACK_EVERY, not one per batch.
        if !ack_due && last_sent.elapsed() < ACK_EVERY {
            continue;
        }
        let ack = receiver.ack(&store, replication.known(), shared.node.now(), reader.read);
        let Message::Ack { applied, known, received, .. } = &ack else { unreachable!("receiver.ack returns an ack") };
        // Bytes read are news too: the sender's memory accounting waits for them.
        let news = Some((applied.clone(), known.clone(), *received));
        if ack_due || news != last_ack {
            write(&mut send, &ack).await?;
            last_ack = news;
            last_sent = tokio::time::Instant::now();
        }
        unacked = false;
    }
}

/// Writes one framed message; returns its size.
async fn write(send: &mut SendStream, message: &Message) -> Result<u64, SessionError> {
    let mut frame = Vec::new();
    encode_frame(message, &mut frame);
    send.write_all(&frame).await?;
    Ok(frame.len() as u64)
}

/// Reads framed messages from a stream; cancel-safe (the buffer outlives each call).
#[derive(Default)]
struct FrameReader {
    buf: BytesMut,
    last_size: usize,
    /// Bytes of the frames read so far.
    read: u64,
}

impl FrameReader {
    async fn next(&mut self, recv: &mut RecvStream) -> Result<Message, SessionError> {
        loop {
            if let Some((message, used)) = decode_frame(&self.buf)? {
                self.buf.advance(used);
                self.last_size = used;
                self.read += used as u64;
                return Ok(message);
            }
            self.buf.reserve(64 * 1024);
            let chunk = recv.read_chunk(self.buf.capacity() - self.buf.len(), true).await?;
            match chunk {
                Some(chunk) => self.buf.extend_from_slice(&chunk.bytes),
                None => return Err(SessionError::Closed),
            }
        }
    }
}

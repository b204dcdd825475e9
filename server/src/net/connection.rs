//! One client connection: read what arrived, run every complete request in it, write all the
//! replies at once, repeat. Pipelined requests therefore cost one read and one write per batch.

use crate::clients::ClientInfo;
use crate::commands::{execute, release_watches, retry_blocked, write_delivery};
use crate::pubsub::Delivery;
use crate::resp::parse::Arg;
use crate::resp::{Limits, Reply, RequestParser};
use crate::session::{Block, Session};
use crate::shared::{HotConfig, Shared};
use bytes::{Buf, BytesMut};
use smallvec::SmallVec;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Replies are written out once this much is pending, even mid-batch.
const FLUSH_AT: usize = 64 * 1024;
const READ_CHUNK: usize = 16 * 1024;

/// Serves `stream` until the client leaves, is killed, misbehaves, or the server stops.
pub async fn serve(shared: Arc<Shared>, mut stream: TcpStream, info: Arc<ClientInfo>) {
    let authenticated = shared.config.read().requirepass.is_empty();
    let mut held = Held { shared: &shared, session: Session::new(info.clone(), authenticated) };
    let session = &mut held.session;
    let mut input = BytesMut::with_capacity(READ_CHUNK);
    let mut output: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut parser = RequestParser::new();
    let hot = &shared.hot;
    let reason = loop {
        let max_bulk_len = HotConfig::get(&hot.proto_max_bulk_len) as i64;
        // Run every complete request already received.
        loop {
            let limits = Limits { max_bulk_len, unauthenticated: !session.authenticated };
            let request = match parser.parse(&input, limits) {
                Ok(Some(request)) => request,
                Ok(None) => break,
                Err(err) => {
                    Reply::new(&mut output, session.protocol).error(&format!("ERR {err}"));
                    session.stats.errors += 1;
                    tracing::debug!(client = info.id, addr = %info.addr, "closing client: {err}");
                    session.close = true;
                    break;
                }
            };
            // Arguments borrow the read buffer; it moves past the request once it has run.
            let len = request.len;
            let args: SmallVec<[&[u8]; 8]> = request
                .args
                .iter()
                .map(|arg| match arg {
                    Arg::Span(range) => &input[range.clone()],
                    Arg::Owned(bytes) => bytes.as_slice(),
                })
                .collect();
            if !args.is_empty() {
                execute(&shared, session, &mut output, &args);
            }
            drop(args);
            input.advance(len);
            if let Some(block) = session.blocked.take() {
                // Replies so far go out now; this one when the block resolves.
                if write(&shared, &mut stream, &mut output, session).await.is_err() {
                    break;
                }
                let _blocked = shared.clients.block();
                match block {
                    Block::Wait { origin, seq, peers, deadline } => {
                        let reply = resolve(&shared, origin, seq, peers, deadline).await;
                        Reply::new(&mut output, session.protocol).int(reply);
                    }
                    Block::Pop { args, deadline, null_array } => {
                        let mut waiting = Waiting { shared: &shared, stream: &mut stream, input: &mut input, output: &mut output, session };
                        if !waiting.until_popped(&args, deadline, null_array).await {
                            session.close = true;
                        }
                    }
                }
            }
            if session.close {
                break;
            }
            if output.len() >= FLUSH_AT && write(&shared, &mut stream, &mut output, session).await.is_err() {
                break;
            }
        }
        if write(&shared, &mut stream, &mut output, session).await.is_err() {
            break "write error";
        }
        publish(&shared, session);
        if session.close {
            break "closed";
        }
        if info.is_killed() {
            break "killed";
        }
        if input.len() as u64 > HotConfig::get(&hot.client_query_buffer_limit) {
            tracing::warn!(client = info.id, addr = %info.addr, "closing client that reached max query buffer length");
            break "query buffer limit";
        }
        shrink_after_big_request(&mut input, &mut parser);
        input.reserve(READ_CHUNK);
        // Subscribers are exempt from the idle timeout, as in Redis.
        let timeout = if session.subscriptions.is_some() { 0 } else { HotConfig::get(&hot.timeout) };
        // CLIENT KILL and server shutdown shut the socket down, which ends this read.
        let woken = tokio::select! {
            read = read_some(&mut stream, &mut input, timeout) => read,
            Some(delivery) = next_delivery(session) => Woken::Delivery(delivery),
        };
        match woken {
            Woken::Delivery(delivery) => deliver(session, &mut output, delivery),
            Woken::TimedOut => break "idle timeout",
            Woken::Read(Ok(0) | Err(_)) => break "connection closed",
            Woken::Read(Ok(n)) => {
                shared.idle_poll.input_arrived();
                session.stats.net_in += n as u64;
            }
        }
    };
    tracing::debug!(client = info.id, addr = %info.addr, reason, "client disconnected");
}

/// What a connection holds in the rest of the server (its slot in the client registry, its
/// watches, its subscriptions, its unpublished counters), released when the connection ends
/// however it ends: a command that panics unwinds through this too, so it cannot leave a
/// client in CLIENT LIST counting against `maxclients`. Declared after the socket, so it is
/// dropped first: the socket is forgotten before it closes.
struct Held<'a> {
    shared: &'a Shared,
    session: Session,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let (shared, session) = (self.shared, &mut self.session);
        if std::thread::panicking() {
            tracing::error!(client = session.info.id, addr = %session.info.addr, command = session.last_command, "a command panicked; closing its connection");
        }
        release_watches(&mut shared.keyspace.unlocked(), session);
        if let Some(mut subscriptions) = session.subscriptions.take() {
            subscriptions.leave(&shared.pubsub);
        }
        publish(shared, session);
        session.info.forget_socket();
        shared.clients.unregister(session.info.id);
    }
}

/// Read buffers above this capacity are given back once mostly empty.
const BIG_BUFFER: usize = 4 * READ_CHUNK;

/// Gives back the memory a big request left behind (a huge multibulk or a long value) before
/// the connection waits for more, as Redis shrinks an idle client's query buffer: otherwise
/// every connection keeps the largest request it ever sent until it closes. Only what is not
/// yet parsed is kept; a buffer still mostly in use is left as it is.
fn shrink_after_big_request(input: &mut BytesMut, parser: &mut RequestParser) {
    if input.capacity() > BIG_BUFFER && input.len() < input.capacity() / 4 {
        let mut smaller = BytesMut::with_capacity(input.len().max(READ_CHUNK));
        smaller.extend_from_slice(input);
        *input = smaller;
    }
    parser.shrink();
}

/// What ended a connection's wait for input.
enum Woken {
    /// Bytes arrived (0: the client closed), or the read failed.
    Read(std::io::Result<usize>),
    /// The idle timeout passed.
    TimedOut,
    /// A pub/sub message arrived for the client.
    Delivery(Delivery),
}

/// Reads what the client sent, within `timeout_secs` (0: no limit).
async fn read_some(stream: &mut TcpStream, input: &mut BytesMut, timeout_secs: u64) -> Woken {
    match timeout_secs {
        0 => Woken::Read(stream.read_buf(input).await),
        secs => match tokio::time::timeout(Duration::from_secs(secs), stream.read_buf(input)).await {
            Ok(read) => Woken::Read(read),
            Err(_) => Woken::TimedOut,
        },
    }
}

/// The next pub/sub message for a subscribed session; never resolves for one without
/// subscriptions.
async fn next_delivery(session: &mut Session) -> Option<Delivery> {
    match &mut session.subscriptions {
        Some(subscriptions) => subscriptions.inbox.next().await,
        None => std::future::pending().await,
    }
}

/// Writes `first` and whatever else is waiting (up to a flush's worth) to `output`.
fn deliver(session: &mut Session, output: &mut Vec<u8>, first: Delivery) {
    let mut reply = Reply::new(output, session.protocol);
    write_delivery(&mut reply, &first);
    while reply.len() < FLUSH_AT {
        match session.subscriptions.as_mut().and_then(|s| s.inbox.try_next()) {
            Some(delivery) => write_delivery(&mut reply, &delivery),
            None => break,
        }
    }
}

/// A connection parked by a blocking pop.
struct Waiting<'a> {
    shared: &'a Shared,
    stream: &'a mut TcpStream,
    input: &'a mut BytesMut,
    output: &'a mut Vec<u8>,
    session: &'a mut Session,
}

impl Waiting<'_> {
    /// Retries the blocked command `args` after every push until it replies, or writes the
    /// null reply at `deadline`. What the client sends meanwhile is kept for after. Returns
    /// false if the client went away.
    async fn until_popped(&mut self, args: &[Vec<u8>], deadline: Option<std::time::Instant>, null_array: bool) -> bool {
        let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        // Counted before the first retry: a push after it either wakes us or is seen by it.
        let waiter = PopWaiter::new(self.shared, &args);
        loop {
            let pushed = self.shared.keyspace.list_pushed.notified();
            tokio::pin!(pushed);
            pushed.as_mut().enable();
            let before = self.output.len();
            if let Some(retry) = crate::commands::retry_without(&args, &self.shared.keyspace.blocked_pops.taken_before(waiter.ticket)) {
                retry_blocked(self.shared, self.session, self.output, &retry);
            }
            if self.output.len() > before {
                return true;
            }
            let timeout = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = pushed => {}
                _ = timeout => {
                    let mut reply = Reply::new(self.output, self.session.protocol);
                    if null_array { reply.null_array() } else { reply.null() }
                    return true;
                }
                read = self.stream.read_buf(self.input) => match read {
                    Ok(0) | Err(_) => return false,
                    Ok(n) => self.session.stats.net_in += n as u64,
                },
            }
            // What a blocked client sends waits in its query buffer, within the same limit.
            if self.input.len() as u64 > HotConfig::get(&self.shared.hot.client_query_buffer_limit) {
                tracing::warn!(client = self.session.info.id, "closing blocked client that reached max query buffer length");
                return false;
            }
            if self.session.info.is_killed() {
                return false;
            }
        }
    }
}

/// A connection blocked in a pop, while it lives: in line for its keys (see `pop_queue`; and
/// so counted: pushes wake blocked pops only if any are). When it goes, the others are woken:
/// one of them may be first in line now.
struct PopWaiter<'a> {
    shared: &'a Shared,
    ticket: u64,
}

impl<'a> PopWaiter<'a> {
    fn new(shared: &'a Shared, args: &[&[u8]]) -> Self {
        let keys = args[crate::commands::waited_keys(args)].iter().map(|k| k.to_vec()).collect();
        PopWaiter { shared, ticket: shared.keyspace.blocked_pops.enter(keys) }
    }
}

impl Drop for PopWaiter<'_> {
    fn drop(&mut self) {
        self.shared.keyspace.blocked_pops.leave(self.ticket);
        self.shared.keyspace.list_pushed.notify_waiters();
    }
}

/// Waits until `peers` peers have applied op `seq` of `origin` (WAIT), or `deadline`;
/// returns how many have.
async fn resolve(shared: &Shared, origin: meridian_crdt::NodeId, seq: u64, peers: usize, deadline: Option<std::time::Instant>) -> i64 {
    let Some(replication) = &shared.replication else { return 0 };
    loop {
        let acked = replication.acked.notified();
        tokio::pin!(acked);
        acked.as_mut().enable();
        let count = replication.acked_count(origin, seq);
        if count >= peers {
            return count as i64;
        }
        let timed_out = match deadline {
            Some(at) => tokio::time::timeout_at(at.into(), acked).await.is_err(),
            None => {
                acked.await;
                false
            }
        };
        if timed_out {
            return replication.acked_count(origin, seq) as i64;
        }
    }
}

/// Flushes the replies. Before a client hears that its writes are done, replication is told
/// the op log grew (so a reply never precedes the wake-up that ships its write), and under
/// `appendfsync always` the writes are synced to disk.
async fn write(shared: &Shared, stream: &mut TcpStream, output: &mut Vec<u8>, session: &mut Session) -> std::io::Result<()> {
    if session.last_write != session.announced_write {
        session.announced_write = session.last_write;
        shared.log_grew();
        if let Some(durable) = shared.node.durable() {
            if let Err(e) = durable.synced_for_reply().await {
                // No reply acknowledges a write that is not where the mode promises: the
                // connection closes instead, as a crash would have closed it.
                tracing::warn!(client = session.info.id, addr = %session.info.addr, "closing client: {e}");
                output.clear();
                return Err(std::io::Error::other(e));
            }
        }
    }
    if output.is_empty() {
        return Ok(());
    }
    let written = stream.write_all(output).await;
    session.stats.net_out += output.len() as u64;
    output.clear();
    if output.capacity() > 4 * FLUSH_AT {
        output.shrink_to(READ_CHUNK);
    }
    written
}

fn publish(shared: &Shared, session: &mut Session) {
    if session.stats.commands > 0 {
        session.info.last_ms.store(session.last_command_ms, Ordering::Relaxed);
        *session.info.last_cmd.lock() = session.last_command;
    }
    shared.stats.publish(&mut session.stats);
}

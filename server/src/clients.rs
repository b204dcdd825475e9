//! The registry of connected clients, for CLIENT LIST / INFO / KILL and INFO clients.

use crate::clock::now_ms;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

/// What other connections may see or change of a client.
#[derive(Debug)]
pub struct ClientInfo {
    /// Unique, increasing id (CLIENT ID).
    pub id: u64,
    /// Peer address.
    pub addr: SocketAddr,
    /// Local address.
    pub laddr: SocketAddr,
    /// Unix ms of connection.
    pub created_ms: u64,
    /// Unix ms of the last command.
    pub last_ms: AtomicU64,
    /// CLIENT SETNAME.
    pub name: Mutex<String>,
    /// CLIENT SETINFO LIB-NAME / LIB-VER.
    pub lib: Mutex<(String, String)>,
    /// Last command's name.
    pub last_cmd: Mutex<&'static str>,
    /// Protocol version (2 or 3).
    pub resp: AtomicU8,
    /// Commands queued in MULTI, or -1 outside MULTI.
    pub multi: AtomicI64,
    /// Set by CLIENT KILL; the connection closes as soon as it sees it.
    pub killed: AtomicBool,
    /// The connection's socket while it is open. Kills and server shutdown shut it down, which
    /// wakes the connection's pending read; the connection clears it before closing, under the
    /// lock, so a descriptor number is never shut down after it is reused.
    socket: Mutex<Option<RawFd>>,
}

impl ClientInfo {
    /// Closes the connection: its pending read ends and it goes away.
    pub fn kill(&self) {
        self.killed.store(true, Ordering::Release);
        self.shutdown_socket(libc::SHUT_RDWR);
    }

    /// Stops reading from the client (server shutdown): replies already due are still sent.
    pub fn stop_reading(&self) {
        self.shutdown_socket(libc::SHUT_RD);
    }

    fn shutdown_socket(&self, how: libc::c_int) {
        if let Some(fd) = *self.socket.lock() {
            // SAFETY: the fd is open: the owner clears it under this lock before closing.
            unsafe { libc::shutdown(fd, how) };
        }
    }

    /// Called by the connection before it closes its socket.
    pub fn forget_socket(&self) {
        *self.socket.lock() = None;
    }

    /// True once killed.
    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Acquire)
    }

    /// The CLIENT LIST / CLIENT INFO line for this client, in Redis 7.2's field order.
    pub fn describe(&self) -> String {
        let now = now_ms();
        let (lib_name, lib_ver) = self.lib.lock().clone();
        let multi = self.multi.load(Ordering::Relaxed);
        format!(
            "id={} addr={} laddr={} fd=0 name={} age={} idle={} flags={} db=0 sub=0 psub=0 ssub=0 multi={} qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} user=default redir=-1 resp={} lib-name={} lib-ver={}",
            self.id,
            self.addr,
            self.laddr,
            self.name.lock(),
            now.saturating_sub(self.created_ms) / 1000,
            now.saturating_sub(self.last_ms.load(Ordering::Relaxed)) / 1000,
            if multi >= 0 { "x" } else { "N" },
            multi,
            self.last_cmd.lock(),
            self.resp.load(Ordering::Relaxed),
            lib_name,
            lib_ver,
        )
    }
}

/// All connected clients.
#[derive(Default)]
pub struct Clients {
    next_id: AtomicU64,
    clients: Mutex<BTreeMap<u64, Arc<ClientInfo>>>,
    /// Connections waiting in a blocking command (BLPOP and friends, WAIT).
    blocked: AtomicU64,
}

impl Clients {
    /// Marks one more connection as blocked until the guard is dropped (INFO blocked_clients).
    pub fn block(&self) -> BlockedGuard<'_> {
        self.blocked.fetch_add(1, Ordering::Relaxed);
        BlockedGuard(self)
    }

    /// Connections blocked now.
    pub fn blocked(&self) -> u64 {
        self.blocked.load(Ordering::Relaxed)
    }

    /// Registers a new connection.
    pub fn register(&self, addr: SocketAddr, laddr: SocketAddr, socket: RawFd) -> Arc<ClientInfo> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let now = now_ms();
        let info = Arc::new(ClientInfo {
            id,
            addr,
            laddr,
            created_ms: now,
            last_ms: AtomicU64::new(now),
            name: Mutex::default(),
            lib: Mutex::default(),
            last_cmd: Mutex::new("NULL"),
            resp: AtomicU8::new(2),
            multi: AtomicI64::new(-1),
            killed: AtomicBool::new(false),
            socket: Mutex::new(Some(socket)),
        });
        self.clients.lock().insert(id, info.clone());
        info
    }

    /// Removes a closed connection.
    pub fn unregister(&self, id: u64) {
        self.clients.lock().remove(&id);
    }

    /// Connected clients, by id.
    pub fn all(&self) -> Vec<Arc<ClientInfo>> {
        self.clients.lock().values().cloned().collect()
    }

    /// Number of connected clients.
    pub fn count(&self) -> usize {
        self.clients.lock().len()
    }
}

/// Counts a connection as blocked while it lives (see [`Clients::block`]).
pub struct BlockedGuard<'a>(&'a Clients);

impl Drop for BlockedGuard<'_> {
    fn drop(&mut self) {
        self.0.blocked.fetch_sub(1, Ordering::Relaxed);
    }
}

//! Per-connection state that only the connection itself touches.

use crate::clients::ClientInfo;
use crate::pubsub::Subscriptions;
use crate::resp::Protocol;
use crate::stats::LocalStats;
use crate::watch::WatchFlag;
use std::sync::Arc;

/// A command that waits before replying; the connection replies when it resolves.
#[derive(Debug, Clone)]
pub enum Block {
    /// WAIT: until `peers` peers have applied op `seq` of `origin`, or `deadline`.
    Wait {
        /// This node's origin.
        origin: meridian_crdt::NodeId,
        /// The connection's last write.
        seq: u64,
        /// Peers wanted.
        peers: usize,
        /// When to give up (`None`: never).
        deadline: Option<std::time::Instant>,
    },
    /// BLPOP, BRPOP, BLMOVE, BRPOPLPUSH: retried after every push until it pops or `deadline`.
    Pop {
        /// The command as sent (the connection's read buffer moves on).
        args: Vec<Vec<u8>>,
        /// When to give up (`None`: never).
        deadline: Option<std::time::Instant>,
        /// On timeout the reply is a null array (BLPOP, BRPOP) rather than a null bulk.
        null_array: bool,
    },
}

/// A MULTI in progress.
#[derive(Default)]
pub struct Multi {
    /// Commands queued for EXEC (copied: the read buffer moves on).
    pub queued: Vec<Vec<Vec<u8>>>,
    /// A queued command was refused; EXEC will abort.
    pub failed: bool,
}

/// Keys WATCHed by the connection.
pub struct Watching {
    /// Set when any of the keys changes.
    pub flag: Arc<WatchFlag>,
    /// The keys, to unregister them later, each with whether it had already expired when
    /// watched (only an expiry after WATCH aborts EXEC, as in Redis 7).
    pub keys: Vec<(Box<[u8]>, bool)>,
}

/// One client connection's state.
pub struct Session {
    /// What other connections can see of this one.
    pub info: Arc<ClientInfo>,
    /// Protocol chosen with HELLO.
    pub protocol: Protocol,
    /// False until AUTH succeeds when a password is required.
    pub authenticated: bool,
    /// Inside MULTI.
    pub multi: Option<Multi>,
    /// WATCHed keys.
    pub watching: Option<Watching>,
    /// Close the connection once pending replies are written (QUIT).
    pub close: bool,
    /// Counters not yet published.
    pub stats: LocalStats,
    /// Name of the last command run.
    pub last_command: &'static str,
    /// Unix ms at which the last command ran.
    pub last_command_ms: u64,
    /// Sequence number of this connection's last write (what WAIT waits for).
    pub last_write: u64,
    /// `last_write` when replication was last told the op log grew.
    pub announced_write: u64,
    /// A command waiting to reply.
    pub blocked: Option<Block>,
    /// Channels and patterns subscribed to, while there are any.
    pub subscriptions: Option<Box<Subscriptions>>,
}

impl Session {
    /// State for a new connection.
    pub fn new(info: Arc<ClientInfo>, authenticated: bool) -> Session {
        Session {
            info,
            protocol: Protocol::Resp2,
            authenticated,
            multi: None,
            watching: None,
            close: false,
            stats: LocalStats::default(),
            last_command: "NULL",
            last_command_ms: 0,
            last_write: 0,
            announced_write: 0,
            blocked: None,
            subscriptions: None,
        }
    }
}

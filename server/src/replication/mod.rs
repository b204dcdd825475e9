//! Geo replication: the quinn/tokio driver around `meridian-geo`'s sans-IO sessions.
//!
//! This module owns what sessions share on a node: who the cluster's members are (by name,
//! with their current incarnation), what each peer has acknowledged, the stability frontier
//! the acks establish, and figures for INFO and WAIT. The transport (`transport`) moves frames
//! over QUIC with mutual TLS; `store` lets sessions read the op log and apply to the keyspace.

mod store;
pub mod tls;
mod transport;

pub use transport::{start, GeoStartError};

use meridian_crdt::{ms_of_hlc_time, NodeId, VersionVector};
use meridian_geo::{Stability, Topology};
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// State of the link to one configured peer (the sending direction).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Dialling, or waiting to redial.
    Connecting,
    /// Sending a full state transfer.
    Transferring,
    /// Streaming ops.
    Connected,
}

/// What INFO shows of the link to one configured peer.
#[derive(Debug, Clone)]
pub struct PeerStatus {
    /// The address dialled.
    pub addr: String,
    /// The peer's name and current origin, once it said hello.
    pub node: Option<(String, NodeId)>,
    /// The name the certificate of the node at this address was issued to, once a handshake
    /// showed it: the configured members are these names.
    pub certified: Option<String>,
    /// Link state.
    pub state: LinkState,
    /// What the peer has acknowledged applying.
    pub acked: VersionVector,
    /// Frame bytes sent to the peer on this link.
    pub bytes_sent: u64,
    /// Frame bytes written on the current session, and how many of them the peer said it
    /// has read: the difference is still in QUIC's buffers (see [`PeerStatus::buffered`]).
    pub session_written: u64,
    /// See `session_written`.
    pub session_read: u64,
    /// UDP payload bytes sent on this link, QUIC overhead included (all sessions).
    pub wire_sent: u64,
    /// Packets QUIC declared lost on this link and sent again (all sessions).
    pub wire_lost: u64,
    /// Bytes received on this link (acks).
    pub bytes_received: u64,
    /// When the last ack arrived.
    pub last_ack: Option<Instant>,
    /// Full state transfers sent to this peer.
    pub transfers: u64,
    /// Sessions established on this link (each reconnect adds one).
    pub sessions: u64,
    /// Why the link last failed.
    pub last_error: String,
}

impl PeerStatus {
    /// Bytes of this link's session that this node may still hold in QUIC's send buffer:
    /// written but not yet read by the peer, and never more than QUIC buffers.
    pub fn buffered(&self) -> u64 {
        self.session_written.saturating_sub(self.session_read).min(tls::SEND_WINDOW)
    }

    /// A new session starts (or the last one ended): its buffers are gone.
    pub fn new_session(&mut self) {
        self.session_written = 0;
        self.session_read = 0;
    }
}

/// A member of the cluster, as this node last heard of it.
#[derive(Debug, Clone, Copy)]
struct Member {
    origin: NodeId,
    heard: Instant,
}

/// What every replication task of this node shares.
pub struct Replication {
    /// Cluster id.
    pub cluster: String,
    /// This node's name.
    pub name: String,
    /// Mesh or ring.
    pub topology: Topology,
    /// The configured peers, in configuration order (a ring's successor first).
    pub peers: Vec<Mutex<PeerStatus>>,
    /// Nodes accepted although not sent to (`accept-peer`).
    accepted: Vec<String>,
    members: Mutex<BTreeMap<String, Member>>,
    /// The name of every incarnation heard of (stamps in the conflict log name origins).
    names: Mutex<HashMap<NodeId, String>>,
    stability: Mutex<Stability>,
    stable: RwLock<VersionVector>,
    gc_timeout: Mutex<Duration>,
    /// Signalled whenever the op log grows (senders wake up to stream).
    pub log_grew: Notify,
    /// Signalled whenever a peer acknowledges (WAIT wakes up).
    pub acked: Notify,
    /// Per configured peer: signalled when that peer says hello as a new incarnation (it
    /// restarted), so a session still sending to the old one stops at once instead of after
    /// QUIC's idle timeout, and redials.
    pub restarted: Vec<Notify>,
}

impl Replication {
    /// Replication state for `name` in `cluster`, sending to `peers`.
    pub fn new(cluster: String, name: String, topology: Topology, peers: &[String], accepted: Vec<String>, gc_timeout: Duration) -> Replication {
        let status = |addr: &String| {
            Mutex::new(PeerStatus {
                addr: addr.clone(),
                node: None,
                certified: None,
                state: LinkState::Connecting,
                acked: VersionVector::new(),
                bytes_sent: 0,
                session_written: 0,
                session_read: 0,
                wire_sent: 0,
                wire_lost: 0,
                bytes_received: 0,
                last_ack: None,
                transfers: 0,
                sessions: 0,
                last_error: String::new(),
            })
        };
        let replication = Replication {
            cluster,
            name,
            topology,
            peers: peers.iter().map(status).collect(),
            accepted,
            members: Mutex::new(BTreeMap::new()),
            names: Mutex::new(HashMap::new()),
            stability: Mutex::new(Stability::new(Vec::new())),
            stable: RwLock::new(VersionVector::new()),
            gc_timeout: Mutex::new(gc_timeout),
            log_grew: Notify::new(),
            acked: Notify::new(),
            restarted: peers.iter().map(|_| Notify::new()).collect(),
        };
        replication.refresh_members();
        replication
    }

    /// Changes how long a silent peer pins garbage (CONFIG SET peer-gc-timeout).
    pub fn set_gc_timeout(&self, timeout: Duration) {
        *self.gc_timeout.lock() = timeout;
        self.refresh_members();
    }

    /// True if `name` is the certified name of a configured peer, or one named by
    /// `accept-peer`: only those may open a session to this node (membership is what the
    /// operator configured, not whoever holds a certificate from the cluster CA).
    pub fn is_member(&self, name: &str) -> bool {
        self.accepted.iter().any(|accepted| accepted == name) || self.peers.iter().any(|peer| peer.lock().certified.as_deref() == Some(name))
    }

    /// Learns (or re-learns) a member from a hello: its name and current incarnation.
    pub fn heard(&self, name: &str, origin: NodeId) {
        self.names.lock().insert(origin, name.to_string());
        let (changed, restarted) = {
            let mut members = self.members.lock();
            let previous = members.insert(name.to_string(), Member { origin, heard: Instant::now() });
            (previous.is_none_or(|m| m.origin != origin), previous.is_some_and(|m| m.origin != origin))
        };
        if changed {
            self.refresh_members();
        }
        if restarted {
            for (link, peer) in self.peers.iter().enumerate() {
                if peer.lock().node.as_ref().is_some_and(|(n, o)| n == name && *o != origin) {
                    self.restarted[link].notify_one();
                }
            }
        }
    }

    /// The incarnation `name` said hello with most recently, if it ever did.
    pub fn current_origin(&self, name: &str) -> Option<NodeId> {
        self.members.lock().get(name).map(|m| m.origin)
    }

    /// The name of the node whose incarnation is `origin`, if this node heard of it.
    pub fn name_of(&self, origin: NodeId) -> Option<String> {
        self.names.lock().get(&origin).cloned()
    }

    /// Keeps a member fresh (acks and ops from it).
    fn touch(&self, name: &str) {
        if let Some(member) = self.members.lock().get_mut(name) {
            member.heard = Instant::now();
        }
    }

    /// The current incarnations of the members heard from recently enough to count.
    fn counted_members(&self) -> Vec<NodeId> {
        let timeout = *self.gc_timeout.lock();
        let members = self.members.lock();
        let mut ids: Vec<NodeId> = members.values().filter(|m| m.heard.elapsed() < timeout).map(|m| m.origin).collect();
        // A configured peer never heard from yet still counts: nothing is stable without it.
        // NodeId(0) is never an origin, so it never acknowledges anything.
        if members.len() < self.peers.len() {
            ids.push(NodeId(0));
        }
        ids
    }

    fn refresh_members(&self) {
        let members = self.counted_members();
        self.stability.lock().set_members(members);
    }

    /// Origins of live members (for relay rules): this node's and its peers'.
    pub fn live(&self, me: NodeId) -> Vec<NodeId> {
        let mut live: Vec<NodeId> = self.members.lock().values().map(|m| m.origin).collect();
        live.push(me);
        live
    }

    /// Records an ack from the peer at `link` (what it applied and read of this session), and
    /// what it knows of others; recomputes the stability frontier.
    pub fn on_ack(&self, link: usize, applied: &VersionVector, received: u64, known: &[(NodeId, VersionVector)], own: &VersionVector, bytes: u64) {
        let name = {
            let mut peer = self.peers[link].lock();
            peer.acked.join(applied);
            peer.session_read = received;
            peer.last_ack = Some(Instant::now());
            peer.bytes_received += bytes;
            peer.node.as_ref().map(|(name, _)| name.clone())
        };
        if let Some(name) = name {
            self.touch(&name);
        }
        let mut stability = self.stability.lock();
        if let Some((_, origin)) = &self.peers[link].lock().node {
            stability.observe(*origin, applied);
        }
        for (node, view) in known {
            stability.observe(*node, view);
        }
        if let Some(stable) = stability.stable_vector(own) {
            self.stable.write().join(&stable);
        }
        drop(stability);
        self.acked.notify_waiters();
    }

    /// Bytes all links may still hold in QUIC's send buffers (INFO's
    /// `mem_not_counted_for_evict` counts them; `maxmemory` does not).
    pub fn buffered(&self) -> u64 {
        self.peers.iter().map(|p| p.lock().buffered()).sum()
    }

    /// Everything this node knows of others' vectors, for its own acks.
    pub fn known(&self) -> Vec<(NodeId, VersionVector)> {
        self.stability.lock().known()
    }

    /// The stability frontier (what every member has applied and this node with it).
    pub fn stable(&self) -> VersionVector {
        self.stable.read().clone()
    }

    /// One INFO line per configured peer: `name=..,addr=..,state=..,ops_behind=..,lag_ms=..,
    /// sent_bytes=..,wire_bytes=..,lost_packets=..,received_bytes=..,last_ack_ms=..,transfers=..,sessions=..,skew_ms=..,
    /// skew_refused=..` (see docs/replication.md).
    pub fn peer_lines(&self, node: &crate::node::Node) -> Vec<String> {
        let own = node.applied();
        let me = node.id();
        let skew = node.skew();
        self.peers
            .iter()
            .map(|peer| {
                let p = peer.lock();
                let (name, origin) = p.node.clone().unwrap_or_default();
                let behind: u64 = own.iter().filter(|(o, _, _)| *o != origin).map(|(o, seq, _)| seq.saturating_sub(p.acked.seq(o))).sum();
                let lag_ms = if p.acked.seq(me) < own.seq(me) {
                    let latest = own.iter().find(|(o, _, _)| *o == me).map_or(0, |(_, _, t)| t);
                    let acked = p.acked.iter().find(|(o, _, _)| *o == me).map_or(0, |(_, _, t)| t);
                    ms_of_hlc_time(latest).saturating_sub(ms_of_hlc_time(acked))
                } else {
                    0
                };
                let state = match p.state {
                    LinkState::Connecting => "connecting",
                    LinkState::Transferring => "transferring",
                    LinkState::Connected => "connected",
                };
                let last_ack = p.last_ack.map_or(-1, |at| at.elapsed().as_millis() as i64);
                let skew = skew.iter().find(|(o, _)| *o == origin).map(|(_, s)| *s).unwrap_or_default();
                format!(
                    "name={name},addr={},state={state},ops_behind={behind},lag_ms={lag_ms},sent_bytes={},wire_bytes={},lost_packets={},received_bytes={},last_ack_ms={last_ack},transfers={},sessions={},skew_ms={},skew_refused={}",
                    p.addr, p.bytes_sent, p.wire_sent, p.wire_lost, p.bytes_received, p.transfers, p.sessions, skew.last_ms, skew.rejected
                )
            })
            .collect()
    }

    /// How many peers have acknowledged op `seq` of `origin` (WAIT).
    pub fn acked_count(&self, origin: NodeId, seq: u64) -> usize {
        self.peers.iter().filter(|p| p.lock().acked.seq(origin) >= seq).count()
    }
}

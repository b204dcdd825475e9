//! The state of one key and the single function that changes it.

use crate::causal::{Context, Frontier};
use crate::expiry::Expiry;
use crate::node::Stamp;
use crate::op::{Body, Seen};
use crate::string::StrState;
use serde::{Deserialize, Serialize};

/// What a key looks like to a reader after an op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// The key has a value.
    Live,
    /// The key has no value but remembers removals that wait for late ops; keep it, hidden.
    Hidden,
    /// The key has no value and nothing to remember: drop it.
    Gone,
}

/// The full replicated state of one key: its value and, when it has any, its time to live and
/// the removals that are waiting for the ops they named.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyState {
    value: StrState,
    meta: Option<Box<Meta>>,
}

/// Rarely present parts of a key, boxed so that a plain string key stays small.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Meta {
    expiry: Expiry,
    /// Stamps removed by a writer before this node applied them: when they arrive they are
    /// born removed. Entries go once the node has applied everything they name.
    pending_value: Context,
    pending_expiry: Context,
}

impl Meta {
    fn is_empty(&self) -> bool {
        self.expiry.is_empty() && self.pending_value.is_empty() && self.pending_expiry.is_empty()
    }
}

impl KeyState {
    /// The string value.
    pub fn string(&self) -> &StrState {
        &self.value
    }

    /// Unix millisecond at which the key expires, if it has a TTL.
    pub fn expires_at(&self) -> Option<u64> {
        self.meta.as_ref().and_then(|m| m.expiry.expires_at())
    }

    /// True if the key has a value (ignoring expiry, which the caller checks against its clock).
    pub fn is_live(&self) -> bool {
        self.value.is_live()
    }

    /// Everything a writer replacing the whole key has seen; with `keep_ttl`, the TTL is not
    /// seen and so survives the write. A key without a value keeps no TTL: whatever TTL
    /// versions are left on it (from an EXPIRE concurrent with a DEL) are seen and removed.
    pub fn seen(&self, keep_ttl: bool) -> Seen {
        let (value, counts) = self.value.seen();
        let expiry = match &self.meta {
            Some(meta) if !keep_ttl || !self.is_live() => meta.expiry.context(),
            _ => Context::new(),
        };
        Seen { value, counts, expiry }
    }

    /// The TTL versions a writer changing only the TTL has seen.
    pub fn seen_ttl(&self) -> Context {
        self.meta.as_ref().map(|m| m.expiry.context()).unwrap_or_default()
    }

    /// Applies one op's effect. This is the only place key state changes, for local and remote
    /// ops alike. `frontier` is what this node had applied before the op.
    pub fn apply<B: AsRef<[u8]>>(&mut self, stamp: Stamp, body: &Body<B>, frontier: &impl Frontier) -> Liveness {
        match body {
            Body::Set { seen, value, expire_at } => {
                self.clear(seen, frontier);
                if !self.is_born_removed(stamp, false) {
                    self.value.write(stamp, value.as_ref());
                }
                if let Some(at) = expire_at {
                    self.add_ttl(stamp, *at);
                }
            }
            Body::Incr { seen, inc } => {
                self.clear(seen, frontier);
                self.value.increment(stamp, inc);
            }
            Body::Del { seen } => self.clear(seen, frontier),
            Body::Expire { seen, at } => {
                let pending = self.meta().expiry.remove(seen, frontier);
                self.meta().pending_expiry.join(&pending);
                self.add_ttl(stamp, *at);
            }
        }
        self.settle(frontier)
    }

    fn clear(&mut self, seen: &Seen, frontier: &impl Frontier) {
        let pending = self.value.clear(&seen.value, &seen.counts, frontier);
        if !pending.is_empty() {
            self.meta().pending_value.join(&pending);
        }
        if !seen.expiry.is_empty() {
            let pending = self.meta().expiry.remove(&seen.expiry, frontier);
            self.meta().pending_expiry.join(&pending);
        }
    }

    fn add_ttl(&mut self, stamp: Stamp, at: u64) {
        if !self.is_born_removed(stamp, true) {
            self.meta().expiry.insert(stamp, at);
        }
    }

    fn is_born_removed(&self, stamp: Stamp, ttl: bool) -> bool {
        self.meta.as_ref().is_some_and(|m| {
            if ttl { m.pending_expiry.covers(stamp) } else { m.pending_value.covers(stamp) }
        })
    }

    fn meta(&mut self) -> &mut Meta {
        self.meta.get_or_insert_with(Default::default)
    }

    /// Forgets pending removals this node has caught up with and reports what is left.
    fn settle(&mut self, frontier: &impl Frontier) -> Liveness {
        if let Some(meta) = &mut self.meta {
            meta.pending_value.retain(|s| !frontier.covers(s));
            meta.pending_expiry.retain(|s| !frontier.covers(s));
            if meta.is_empty() {
                self.meta = None;
            }
        }
        if self.value.is_live() {
            Liveness::Live
        } else if self.meta.is_none() && self.value.is_empty() {
            Liveness::Gone
        } else {
            Liveness::Hidden
        }
    }
}

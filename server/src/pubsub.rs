//! Pub/sub on one node: who listens to which channel or pattern, and the delivery of a
//! published message to each listener's mailbox. Messages are not replicated to other regions
//! (Redis's pub/sub is per server too); the connection loop encodes what its mailbox receives
//! in the client's protocol (RESP2 arrays, RESP3 push frames).
//!
//! A subscriber that does not read its messages would make the server hold them without
//! bound; as Redis's `client-output-buffer-limit pubsub` hard limit does, a mailbox past
//! [`MAILBOX_LIMIT`] bytes gets its client disconnected instead.

use crate::clients::ClientInfo;
use crate::glob::glob_match;
use bytes::Bytes;
use hashbrown::{HashMap, HashSet};
use parking_lot::RwLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Bytes of undelivered messages at which a subscriber is disconnected (Redis's default
/// pubsub hard limit).
pub const MAILBOX_LIMIT: usize = 32 * 1024 * 1024;

/// One published message on its way to a subscriber.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The pattern that matched, for a pattern subscription.
    pub pattern: Option<Bytes>,
    /// The channel published to.
    pub channel: Bytes,
    /// The message.
    pub message: Bytes,
}

impl Delivery {
    fn size(&self) -> usize {
        self.pattern.as_ref().map_or(0, Bytes::len) + self.channel.len() + self.message.len()
    }
}

/// The sending side of a subscriber's mailbox.
#[derive(Clone)]
pub struct Mailbox {
    sender: mpsc::UnboundedSender<Delivery>,
    queued: Arc<AtomicUsize>,
    client: Arc<ClientInfo>,
}

impl Mailbox {
    /// Queues `delivery`; a subscriber past the limit is disconnected instead.
    fn deliver(&self, delivery: Delivery) {
        let queued = self.queued.fetch_add(delivery.size(), Ordering::Relaxed) + delivery.size();
        if queued > MAILBOX_LIMIT {
            if !self.client.is_killed() {
                tracing::warn!(client = self.client.id, addr = %self.client.addr, "closing subscriber that reached the pubsub output limit");
                self.client.kill();
            }
            return;
        }
        let _ = self.sender.send(delivery);
    }
}

/// The receiving side of a subscriber's mailbox, held by its connection.
pub struct Inbox {
    receiver: mpsc::UnboundedReceiver<Delivery>,
    queued: Arc<AtomicUsize>,
}

impl Inbox {
    /// The next message (waits for one).
    pub async fn next(&mut self) -> Option<Delivery> {
        let delivery = self.receiver.recv().await?;
        self.queued.fetch_sub(delivery.size(), Ordering::Relaxed);
        Some(delivery)
    }

    /// A message already waiting, if any.
    pub fn try_next(&mut self) -> Option<Delivery> {
        let delivery = self.receiver.try_recv().ok()?;
        self.queued.fetch_sub(delivery.size(), Ordering::Relaxed);
        Some(delivery)
    }
}

/// A new mailbox for `client`.
pub fn mailbox(client: Arc<ClientInfo>) -> (Mailbox, Inbox) {
    let (sender, receiver) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(0));
    (Mailbox { sender, queued: queued.clone(), client }, Inbox { receiver, queued })
}

/// Listeners of one kind (channels or patterns): name → client id → mailbox.
#[derive(Default)]
struct Listeners(RwLock<HashMap<Bytes, HashMap<u64, Mailbox>>>);

impl Listeners {
    fn add(&self, name: &Bytes, mailbox: &Mailbox) {
        self.0.write().entry(name.clone()).or_default().insert(mailbox.client.id, mailbox.clone());
    }

    fn remove(&self, name: &[u8], client: u64) {
        let mut all = self.0.write();
        if let Some(listeners) = all.get_mut(name) {
            listeners.remove(&client);
            if listeners.is_empty() {
                all.remove(name);
            }
        }
    }
}

/// Every subscription on this node.
#[derive(Default)]
pub struct PubSub {
    channels: Listeners,
    patterns: Listeners,
}

impl PubSub {
    /// Delivers `message` to every subscriber of `channel` and of every matching pattern;
    /// returns how many deliveries were made (PUBLISH's reply).
    pub fn publish(&self, channel: &[u8], message: &[u8]) -> usize {
        let (channel, message) = (Bytes::copy_from_slice(channel), Bytes::copy_from_slice(message));
        let mut delivered = 0;
        if let Some(listeners) = self.channels.0.read().get(&channel) {
            for mailbox in listeners.values() {
                mailbox.deliver(Delivery { pattern: None, channel: channel.clone(), message: message.clone() });
                delivered += 1;
            }
        }
        for (pattern, listeners) in self.patterns.0.read().iter() {
            if glob_match(pattern, &channel, false) {
                for mailbox in listeners.values() {
                    mailbox.deliver(Delivery { pattern: Some(pattern.clone()), channel: channel.clone(), message: message.clone() });
                    delivered += 1;
                }
            }
        }
        delivered
    }

    /// Channels with at least one subscriber, matching `pattern` if given (PUBSUB CHANNELS).
    pub fn active_channels(&self, pattern: Option<&[u8]>) -> Vec<Bytes> {
        self.channels.0.read().keys().filter(|c| pattern.is_none_or(|p| glob_match(p, c, false))).cloned().collect()
    }

    /// Subscribers of `channel` (PUBSUB NUMSUB).
    pub fn subscribers(&self, channel: &[u8]) -> usize {
        self.channels.0.read().get(channel).map_or(0, HashMap::len)
    }

    /// Patterns subscribed to by anyone (PUBSUB NUMPAT).
    pub fn pattern_count(&self) -> usize {
        self.patterns.0.read().len()
    }
}

/// One connection's subscriptions.
pub struct Subscriptions {
    mailbox: Mailbox,
    /// Where its messages arrive.
    pub inbox: Inbox,
    channels: HashSet<Bytes>,
    patterns: HashSet<Bytes>,
}

/// Channel or pattern subscriptions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// SUBSCRIBE / UNSUBSCRIBE.
    Channel,
    /// PSUBSCRIBE / PUNSUBSCRIBE.
    Pattern,
}

impl Subscriptions {
    /// No subscriptions yet, with a mailbox for `client`.
    pub fn new(client: Arc<ClientInfo>) -> Subscriptions {
        let (mailbox, inbox) = mailbox(client);
        Subscriptions { mailbox, inbox, channels: HashSet::new(), patterns: HashSet::new() }
    }

    /// How many channels and patterns the connection listens to (the count in every
    /// subscribe and unsubscribe reply).
    pub fn count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    fn names(&mut self, kind: Kind) -> &mut HashSet<Bytes> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
        }
    }

    /// Subscribes to `name`.
    pub fn subscribe(&mut self, pubsub: &PubSub, kind: Kind, name: &[u8]) {
        let name = Bytes::copy_from_slice(name);
        if self.names(kind).insert(name.clone()) {
            listeners(pubsub, kind).add(&name, &self.mailbox);
        }
    }

    /// Unsubscribes from `name`.
    pub fn unsubscribe(&mut self, pubsub: &PubSub, kind: Kind, name: &[u8]) {
        if self.names(kind).remove(name) {
            listeners(pubsub, kind).remove(name, self.mailbox.client.id);
        }
    }

    /// Every name subscribed to of `kind`.
    pub fn all(&self, kind: Kind) -> Vec<Bytes> {
        match kind {
            Kind::Channel => self.channels.iter().cloned().collect(),
            Kind::Pattern => self.patterns.iter().cloned().collect(),
        }
    }

    /// Unsubscribes from everything (RESET, disconnect).
    pub fn leave(&mut self, pubsub: &PubSub) {
        for kind in [Kind::Channel, Kind::Pattern] {
            for name in self.all(kind) {
                self.unsubscribe(pubsub, kind, &name);
            }
        }
    }
}

fn listeners(pubsub: &PubSub, kind: Kind) -> &Listeners {
    match kind {
        Kind::Channel => &pubsub.channels,
        Kind::Pattern => &pubsub.patterns,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(clients: &crate::clients::Clients) -> Arc<ClientInfo> {
        let addr = "127.0.0.1:1".parse().unwrap();
        clients.register(addr, addr, -1)
    }

    #[test]
    fn messages_reach_channel_and_pattern_subscribers_once_each() {
        let (pubsub, clients) = (PubSub::default(), crate::clients::Clients::default());
        let mut a = Subscriptions::new(client(&clients));
        let mut b = Subscriptions::new(client(&clients));
        a.subscribe(&pubsub, Kind::Channel, b"news");
        a.subscribe(&pubsub, Kind::Channel, b"news");
        b.subscribe(&pubsub, Kind::Pattern, b"n*");
        assert_eq!((a.count(), pubsub.subscribers(b"news"), pubsub.pattern_count()), (1, 1, 1));
        assert_eq!(pubsub.publish(b"news", b"hi"), 2);
        assert_eq!(a.inbox.try_next().map(|d| (d.pattern, d.message)), Some((None, Bytes::from_static(b"hi"))));
        assert_eq!(b.inbox.try_next().and_then(|d| d.pattern), Some(Bytes::from_static(b"n*")));
        assert_eq!(pubsub.publish(b"other", b"x"), 0);
        a.leave(&pubsub);
        assert!(pubsub.active_channels(None).is_empty());
        assert_eq!(pubsub.publish(b"news", b"again"), 1);
    }
}

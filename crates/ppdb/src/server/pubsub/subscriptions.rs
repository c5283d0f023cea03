//! What one connection subscribes to, answered as Redis counts it, and removed from the
//! node's registry when the connection ends.

use super::mailbox::Mailbox;
use super::registry::{PubSubRegistry, SubscriptionKind};
use bytes::Bytes;
use std::collections::BTreeSet;
use std::sync::Arc;

/// One line of a (un)subscribe reply: Redis answers each channel with its own confirmation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmation {
    /// What was subscribed to or left.
    pub kind: SubscriptionKind,
    /// Subscribed (true) or left (false).
    pub subscribed: bool,
    /// The channel or pattern; none when UNSUBSCRIBE without arguments left nothing.
    pub name: Option<Bytes>,
    /// The connection's subscriptions after it: channels and patterns together, or shard
    /// channels for the shard kind, as Redis 7.0 counts them.
    pub count: usize,
}

/// A connection's subscriptions and the mailbox its messages arrive in.
#[derive(Debug)]
pub struct Subscriptions {
    registry: Arc<PubSubRegistry>,
    mailbox: Arc<Mailbox>,
    channels: BTreeSet<Bytes>,
    patterns: BTreeSet<Bytes>,
    shard_channels: BTreeSet<Bytes>,
}

impl Subscriptions {
    /// No subscription yet; messages will arrive in `mailbox`.
    pub fn new(registry: Arc<PubSubRegistry>, mailbox: Mailbox) -> Subscriptions {
        Subscriptions {
            registry,
            mailbox: Arc::new(mailbox),
            channels: BTreeSet::new(),
            patterns: BTreeSet::new(),
            shard_channels: BTreeSet::new(),
        }
    }

    /// Where this connection's messages arrive.
    pub fn mailbox(&self) -> &Arc<Mailbox> {
        &self.mailbox
    }

    /// Whether the connection subscribes to anything (Redis's pub/sub client state).
    pub fn is_active(&self) -> bool {
        !(self.channels.is_empty() && self.patterns.is_empty() && self.shard_channels.is_empty())
    }

    /// Channels, patterns and shard channels subscribed to (CLIENT LIST's sub, psub, ssub).
    pub fn counts(&self) -> [usize; 3] {
        [self.channels.len(), self.patterns.len(), self.shard_channels.len()]
    }

    /// Every subscription: channels, then patterns, then shard channels.
    pub fn all(&self) -> impl Iterator<Item = (SubscriptionKind, &Bytes)> {
        let channels = self.channels.iter().map(|name| (SubscriptionKind::Channel, name));
        let patterns = self.patterns.iter().map(|name| (SubscriptionKind::Pattern, name));
        let shard = self.shard_channels.iter().map(|name| (SubscriptionKind::ShardChannel, name));
        channels.chain(patterns).chain(shard)
    }

    fn names(&mut self, kind: SubscriptionKind) -> &mut BTreeSet<Bytes> {
        match kind {
            SubscriptionKind::Channel => &mut self.channels,
            SubscriptionKind::Pattern => &mut self.patterns,
            SubscriptionKind::ShardChannel => &mut self.shard_channels,
        }
    }

    fn count(&self, kind: SubscriptionKind) -> usize {
        match kind {
            SubscriptionKind::ShardChannel => self.shard_channels.len(),
            _ => self.channels.len() + self.patterns.len(),
        }
    }

    /// SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE: one confirmation per name, in order, repeated names
    /// included.
    pub fn subscribe(&mut self, kind: SubscriptionKind, names: Vec<Bytes>) -> Vec<Confirmation> {
        let mut confirmations = Vec::with_capacity(names.len());
        for name in names {
            if self.names(kind).insert(name.clone()) {
                self.registry.subscribe(kind, name.clone(), &self.mailbox);
            }
            let count = self.count(kind);
            confirmations.push(Confirmation { kind, subscribed: true, name: Some(name), count });
        }
        confirmations
    }

    /// UNSUBSCRIBE, PUNSUBSCRIBE, SUNSUBSCRIBE: of `names`, or, when none is given, of every
    /// name of the kind (in byte order; Redis's is its hash table's), or a single confirmation
    /// without a name if there was none.
    pub fn unsubscribe(&mut self, kind: SubscriptionKind, names: Vec<Bytes>) -> Vec<Confirmation> {
        let names = if names.is_empty() { self.names(kind).iter().cloned().collect() } else { names };
        if names.is_empty() {
            let count = self.count(kind);
            return vec![Confirmation { kind, subscribed: false, name: None, count }];
        }
        let mut confirmations = Vec::with_capacity(names.len());
        for name in names {
            if self.names(kind).remove(&name) {
                self.registry.unsubscribe(kind, &name, self.mailbox.id);
            }
            let count = self.count(kind);
            confirmations.push(Confirmation { kind, subscribed: false, name: Some(name), count });
        }
        confirmations
    }

    /// Leaves every subscription without confirmations (RESET, the connection's end).
    pub fn clear(&mut self) {
        for kind in [SubscriptionKind::Channel, SubscriptionKind::Pattern, SubscriptionKind::ShardChannel] {
            for name in std::mem::take(self.names(kind)) {
                self.registry.unsubscribe(kind, &name, self.mailbox.id);
            }
        }
    }
}

impl Drop for Subscriptions {
    fn drop(&mut self) {
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::pubsub::Space;

    fn names(list: &[&str]) -> Vec<Bytes> {
        list.iter().map(|n| Bytes::copy_from_slice(n.as_bytes())).collect()
    }

    fn counts(confirmations: &[Confirmation]) -> Vec<(Option<&[u8]>, usize)> {
        confirmations.iter().map(|c| (c.name.as_deref(), c.count)).collect()
    }

    #[test]
    fn counts_follow_redis_and_leaving_empties_the_registry() {
        let registry = Arc::new(PubSubRegistry::default());
        let mut subscriptions = Subscriptions::new(Arc::clone(&registry), Mailbox::new(7, 0));
        let unsubscribed = subscriptions.unsubscribe(SubscriptionKind::Channel, Vec::new());
        assert_eq!(counts(&unsubscribed), vec![(None, 0)], "nothing to leave");
        let subscribed = subscriptions.subscribe(SubscriptionKind::Channel, names(&["a", "b", "a"]));
        assert_eq!(counts(&subscribed), vec![(Some(&b"a"[..]), 1), (Some(b"b"), 2), (Some(b"a"), 2)]);
        let patterns = subscriptions.subscribe(SubscriptionKind::Pattern, names(&["p*"]));
        assert_eq!(counts(&patterns), vec![(Some(&b"p*"[..]), 3)], "patterns count with channels");
        let shard = subscriptions.subscribe(SubscriptionKind::ShardChannel, names(&["s"]));
        assert_eq!(counts(&shard), vec![(Some(&b"s"[..]), 1)], "shard channels count apart");
        assert_eq!(subscriptions.counts(), [2, 1, 1]);
        let all: Vec<(SubscriptionKind, &[u8])> = subscriptions.all().map(|(k, n)| (k, n.as_ref())).collect();
        assert_eq!(
            all,
            [
                (SubscriptionKind::Channel, &b"a"[..]),
                (SubscriptionKind::Channel, b"b"),
                (SubscriptionKind::Pattern, b"p*"),
                (SubscriptionKind::ShardChannel, b"s")
            ]
        );
        let left = subscriptions.unsubscribe(SubscriptionKind::Channel, Vec::new());
        assert_eq!(counts(&left), vec![(Some(&b"a"[..]), 2), (Some(b"b"), 1)]);
        assert!(subscriptions.is_active());
        drop(subscriptions);
        assert_eq!(registry.pattern_count(), 0, "a closed connection leaves the registry");
        assert!(registry.channels(Space::Shard, None).is_empty());
    }
}

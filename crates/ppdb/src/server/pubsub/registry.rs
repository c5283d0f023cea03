//! The node's subscribers, and the delivery of one message to them.

use super::mailbox::{Delivery, Mailbox};
use crate::kv::glob::glob_match;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Where a message is published: Redis's channels (PUBLISH) or shard channels (SPUBLISH).
/// The two never meet: a pattern matches only channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Space {
    /// Channels and patterns.
    Global,
    /// Shard channels.
    Shard,
}

/// What a connection subscribes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionKind {
    /// A channel (SUBSCRIBE).
    Channel,
    /// A glob pattern over channels (PSUBSCRIBE).
    Pattern,
    /// A shard channel (SSUBSCRIBE).
    ShardChannel,
}

/// Subscribers of one channel or pattern, by connection id.
type Subscribers = BTreeMap<u64, Arc<Mailbox>>;

#[derive(Debug, Default)]
struct Table {
    channels: BTreeMap<Bytes, Subscribers>,
    patterns: BTreeMap<Bytes, Subscribers>,
    shard_channels: BTreeMap<Bytes, Subscribers>,
}

impl Table {
    fn of(&mut self, kind: SubscriptionKind) -> &mut BTreeMap<Bytes, Subscribers> {
        match kind {
            SubscriptionKind::Channel => &mut self.channels,
            SubscriptionKind::Pattern => &mut self.patterns,
            SubscriptionKind::ShardChannel => &mut self.shard_channels,
        }
    }

    fn channels_of(&self, space: Space) -> &BTreeMap<Bytes, Subscribers> {
        match space {
            Space::Global => &self.channels,
            Space::Shard => &self.shard_channels,
        }
    }
}

/// The subscribers of this node's connections.
#[derive(Debug, Default)]
pub struct PubSubRegistry {
    table: Mutex<Table>,
}

impl PubSubRegistry {
    fn table(&self) -> MutexGuard<'_, Table> {
        // A panic while holding this lock leaves only plain data behind; keep serving.
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds `mailbox` to the subscribers of `name`.
    pub fn subscribe(&self, kind: SubscriptionKind, name: Bytes, mailbox: &Arc<Mailbox>) {
        self.table().of(kind).entry(name).or_default().insert(mailbox.id, Arc::clone(mailbox));
    }

    /// Removes connection `id` from the subscribers of `name`; a name left without
    /// subscribers is forgotten.
    pub fn unsubscribe(&self, kind: SubscriptionKind, name: &[u8], id: u64) {
        let mut table = self.table();
        let names = table.of(kind);
        if let Some(subscribers) = names.get_mut(name) {
            subscribers.remove(&id);
            if subscribers.is_empty() {
                names.remove(name);
            }
        }
    }

    /// Delivers `message` on `channel` to this node's subscribers (and, for a channel, to the
    /// subscribers of every pattern it matches, once per pattern, as Redis); how many
    /// deliveries were made.
    pub fn publish(&self, space: Space, channel: &Bytes, message: &Bytes) -> usize {
        let table = self.table();
        let mut delivered = 0;
        for mailbox in table.channels_of(space).get(channel).into_iter().flat_map(BTreeMap::values) {
            mailbox.post(match space {
                Space::Global => Delivery::Message { channel: channel.clone(), message: message.clone() },
                Space::Shard => Delivery::ShardMessage { channel: channel.clone(), message: message.clone() },
            });
            delivered += 1;
        }
        if space == Space::Global {
            for (pattern, subscribers) in &table.patterns {
                if !glob_match(pattern, channel) {
                    continue;
                }
                for mailbox in subscribers.values() {
                    mailbox.post(Delivery::PatternMessage {
                        pattern: pattern.clone(),
                        channel: channel.clone(),
                        message: message.clone(),
                    });
                    delivered += 1;
                }
            }
        }
        delivered
    }

    /// The channels of `space` with a subscriber here, matching `pattern` if given
    /// (PUBSUB CHANNELS, SHARDCHANNELS).
    pub fn channels(&self, space: Space, pattern: Option<&[u8]>) -> Vec<Bytes> {
        let table = self.table();
        let names = table.channels_of(space).keys();
        names.filter(|name| pattern.is_none_or(|p| glob_match(p, name))).cloned().collect()
    }

    /// How many connections here subscribe to `channel` of `space` (PUBSUB NUMSUB,
    /// SHARDNUMSUB; patterns are not counted).
    pub fn subscriber_count(&self, space: Space, channel: &[u8]) -> usize {
        self.table().channels_of(space).get(channel).map_or(0, BTreeMap::len)
    }

    /// How many distinct patterns connections here subscribe to (PUBSUB NUMPAT).
    pub fn pattern_count(&self) -> usize {
        self.table().patterns.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(text: &str) -> Bytes {
        Bytes::copy_from_slice(text.as_bytes())
    }

    #[test]
    fn a_message_reaches_channel_and_matching_pattern_subscribers_once_each() {
        let registry = PubSubRegistry::default();
        let (one, two) = (Arc::new(Mailbox::new(1, 0)), Arc::new(Mailbox::new(2, 0)));
        registry.subscribe(SubscriptionKind::Channel, b("news"), &one);
        registry.subscribe(SubscriptionKind::Pattern, b("n*"), &one);
        registry.subscribe(SubscriptionKind::Pattern, b("x*"), &one);
        registry.subscribe(SubscriptionKind::Pattern, b("n?ws"), &two);
        registry.subscribe(SubscriptionKind::ShardChannel, b("news"), &two);
        assert_eq!(registry.publish(Space::Global, &b("news"), &b("hi")), 3);
        let message = |pattern: Option<&str>| match pattern {
            None => Delivery::Message { channel: b("news"), message: b("hi") },
            Some(p) => Delivery::PatternMessage { pattern: b(p), channel: b("news"), message: b("hi") },
        };
        assert_eq!(one.take().unwrap(), vec![message(None), message(Some("n*"))]);
        assert_eq!(two.take().unwrap(), vec![message(Some("n?ws"))], "shard channels are apart");
        assert_eq!(registry.publish(Space::Shard, &b("news"), &b("s")), 1);
        assert_eq!(two.take().unwrap(), vec![Delivery::ShardMessage { channel: b("news"), message: b("s") }]);
        assert_eq!(registry.publish(Space::Global, &b("other"), &b("hi")), 0);
    }

    #[test]
    fn introspection_counts_this_nodes_subscribers() {
        let registry = PubSubRegistry::default();
        let mailboxes: Vec<Arc<Mailbox>> = (1..=3).map(|id| Arc::new(Mailbox::new(id, 0))).collect();
        for mailbox in &mailboxes {
            registry.subscribe(SubscriptionKind::Channel, b("a"), mailbox);
            registry.subscribe(SubscriptionKind::Pattern, b("p*"), mailbox);
        }
        registry.subscribe(SubscriptionKind::Channel, b("b"), &mailboxes[0]);
        registry.subscribe(SubscriptionKind::ShardChannel, b("s"), &mailboxes[0]);
        assert_eq!(registry.channels(Space::Global, None), vec![b("a"), b("b")]);
        assert_eq!(registry.channels(Space::Global, Some(b"b*")), vec![b("b")]);
        assert_eq!(registry.channels(Space::Shard, None), vec![b("s")]);
        assert_eq!(registry.subscriber_count(Space::Global, b"a"), 3);
        assert_eq!(registry.subscriber_count(Space::Global, b"s"), 0);
        assert_eq!(registry.pattern_count(), 1, "distinct patterns");
        registry.unsubscribe(SubscriptionKind::Channel, b"b", 1);
        registry.unsubscribe(SubscriptionKind::Channel, b"a", 2);
        assert_eq!(registry.channels(Space::Global, None), vec![b("a")], "an empty channel is forgotten");
        assert_eq!(registry.subscriber_count(Space::Global, b"a"), 2);
        for id in 1..=3 {
            registry.unsubscribe(SubscriptionKind::Pattern, b"p*", id);
        }
        assert_eq!(registry.pattern_count(), 0);
    }
}

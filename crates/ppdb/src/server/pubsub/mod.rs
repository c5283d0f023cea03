//! Pub/sub: messages published on any node reach the subscribers of every node, at most once,
//! without the Raft log, as Redis delivers them (and Redis Cluster between its nodes).
//!
//! What each part owns:
//! - [`mailbox`]: one subscribed connection's queue of messages waiting to be written, bounded
//!   in bytes by the pub/sub class of `client-output-buffer-limit`
//!   ([`super::settings::PUBSUB_OUTPUT_BUFFER_LIMIT`]): a subscriber that does not read is
//!   disconnected rather than holding unbounded memory.
//! - [`registry`]: the node's subscribers by channel, pattern and shard channel, and the
//!   delivery of one message to this node's subscribers (patterns matched with
//!   [`crate::kv::glob`]).
//! - [`subscriptions`]: what one connection subscribed to, its counts as Redis replies them,
//!   and leaving the registry when the connection ends.
//! - [`peer`]: the message between nodes and its codec; [`ClusterPubSub`] sends every
//!   publication to every other member, fire-and-forget, and delivers what members send.
//!
//! It knows nothing of RESP: the connection turns deliveries and confirmations into frames.
//!
//! Why not the log: Redis's pub/sub keeps nothing and promises at most once; putting messages
//! through Raft would cost a quorum round and disk writes for a delivery Redis itself does
//! not guarantee. A member that is down or unreachable when a message is published misses it,
//! as a Redis subscriber that reconnects does. Order holds per publishing connection and
//! channel on every node: a node delivers its own subscribers' copy as the PUBLISH runs, and
//! sends each peer its copies in order on the one connection the transport keeps to it, where
//! they are delivered in arrival order.

pub mod mailbox;
pub mod peer;
pub mod registry;
pub mod subscriptions;

pub use mailbox::{Delivery, Mailbox, MailboxClosed};
pub use peer::{ClusterPubSub, Publication, PUBSUB_MESSAGE_TAG};
pub use registry::{PubSubRegistry, Space, SubscriptionKind};
pub use subscriptions::{Confirmation, Subscriptions};

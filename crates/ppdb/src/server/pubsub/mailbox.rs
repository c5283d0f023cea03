//! One subscribed connection's messages on their way to its socket.
//!
//! Publishers (this node's connections, and the peer service delivering other members'
//! messages) post into the mailbox without waiting; the connection takes everything queued
//! when it wakes and writes it. The mailbox counts the bytes it holds plus the bytes the
//! connection has not yet sent, and past the hard limit it drops the message and closes:
//! the connection then ends, as Redis closes a pub/sub client over its output buffer limit.

use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use tokio::sync::Notify;

/// Bytes a queued delivery costs beyond its strings (its place in the queue, the frame's
/// headers once written).
const DELIVERY_OVERHEAD_BYTES: usize = 64;

/// One published message as one subscriber receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// On a channel the subscriber subscribed to (`message`).
    Message {
        /// The channel.
        channel: Bytes,
        /// The message.
        message: Bytes,
    },
    /// On a channel matching a pattern the subscriber subscribed to (`pmessage`).
    PatternMessage {
        /// The pattern that matched.
        pattern: Bytes,
        /// The channel.
        channel: Bytes,
        /// The message.
        message: Bytes,
    },
    /// On a shard channel the subscriber subscribed to (`smessage`).
    ShardMessage {
        /// The shard channel.
        channel: Bytes,
        /// The message.
        message: Bytes,
    },
}

impl Delivery {
    /// Bytes it holds while queued, as counted against the output buffer limit.
    pub fn bytes(&self) -> usize {
        DELIVERY_OVERHEAD_BYTES
            + match self {
                Delivery::Message { channel, message } | Delivery::ShardMessage { channel, message } => {
                    channel.len() + message.len()
                }
                Delivery::PatternMessage { pattern, channel, message } => {
                    pattern.len() + channel.len() + message.len()
                }
            }
    }
}

/// The mailbox passed its hard limit: the connection must close.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{queued_bytes} bytes of messages and replies waiting, over the pub/sub hard limit of {hard_bytes}")]
pub struct MailboxClosed {
    /// Bytes waiting (queued and unsent) when the message that overflowed it came.
    pub queued_bytes: u64,
    /// The hard limit.
    pub hard_bytes: u64,
}

/// A subscribed connection's queue of deliveries, bounded in bytes.
#[derive(Debug)]
pub struct Mailbox {
    /// The connection's id (CLIENT ID).
    pub id: u64,
    /// Queued plus unsent bytes past which the mailbox closes (0: no limit).
    hard_bytes: u64,
    state: Mutex<MailboxState>,
    ready: Notify,
    closing: Notify,
}

#[derive(Debug, Default)]
struct MailboxState {
    queued: VecDeque<Delivery>,
    queued_bytes: usize,
    /// Reply and message bytes the connection has written to its buffer but not yet sent.
    unsent_bytes: usize,
    closed: Option<MailboxClosed>,
}

impl Mailbox {
    /// An empty mailbox for connection `id` that closes past `hard_bytes` (0: never).
    pub fn new(id: u64, hard_bytes: u64) -> Mailbox {
        Mailbox { id, hard_bytes, state: Mutex::default(), ready: Notify::new(), closing: Notify::new() }
    }

    fn state(&self) -> MutexGuard<'_, MailboxState> {
        // A panic while holding this lock leaves only plain data behind; keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `delivery` for the connection, or, if that would pass the hard limit, drops it
    /// and closes the mailbox. Never waits.
    pub fn post(&self, delivery: Delivery) {
        let mut state = self.state();
        if state.closed.is_some() {
            return;
        }
        let bytes = delivery.bytes();
        let waiting = (state.queued_bytes + state.unsent_bytes).saturating_add(bytes) as u64;
        if self.hard_bytes > 0 && waiting > self.hard_bytes {
            state.closed = Some(MailboxClosed { queued_bytes: waiting, hard_bytes: self.hard_bytes });
            state.queued.clear();
            state.queued_bytes = 0;
            self.closing.notify_one();
        } else {
            state.queued_bytes += bytes;
            state.queued.push_back(delivery);
        }
        drop(state);
        self.ready.notify_one();
    }

    /// Everything queued, oldest first; an error once the mailbox closed.
    pub fn take(&self) -> Result<Vec<Delivery>, MailboxClosed> {
        let mut state = self.state();
        if let Some(closed) = state.closed {
            return Err(closed);
        }
        state.queued_bytes = 0;
        Ok(state.queued.drain(..).collect())
    }

    /// Records how many bytes the connection holds unsent, counted against the hard limit.
    pub fn note_unsent(&self, bytes: usize) {
        self.state().unsent_bytes = bytes;
    }

    /// Bytes queued, not yet taken.
    pub fn queued_bytes(&self) -> usize {
        self.state().queued_bytes
    }

    /// Completes once something was posted (or the mailbox closed) since the last wait.
    pub async fn ready(&self) {
        self.ready.notified().await;
    }

    /// Completes once the mailbox has closed.
    pub async fn closed(&self) {
        if self.state().closed.is_none() {
            // A close between the check and this wait leaves a permit, so it is not missed.
            self.closing.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(text: &'static str) -> Delivery {
        Delivery::Message { channel: Bytes::from_static(b"c"), message: Bytes::from_static(text.as_bytes()) }
    }

    #[tokio::test]
    async fn deliveries_are_taken_in_order_and_wake_the_connection() {
        let mailbox = Mailbox::new(1, 0);
        mailbox.post(message("a"));
        mailbox.post(message("b"));
        // The permit left by the posts completes the wait at once.
        tokio::time::timeout(std::time::Duration::from_secs(1), mailbox.ready()).await.unwrap();
        assert_eq!(mailbox.take().unwrap(), vec![message("a"), message("b")]);
        assert_eq!(mailbox.queued_bytes(), 0);
        assert_eq!(mailbox.take().unwrap(), vec![]);
    }

    #[test]
    fn a_mailbox_past_its_hard_limit_closes_and_keeps_nothing() {
        let one = message("x").bytes() as u64;
        let mailbox = Mailbox::new(1, 3 * one);
        for _ in 0..3 {
            mailbox.post(message("x"));
        }
        assert_eq!(mailbox.queued_bytes() as u64, 3 * one, "up to the limit is kept");
        mailbox.post(message("x"));
        let closed = futures::FutureExt::now_or_never(mailbox.closed());
        assert!(closed.is_some(), "the connection is woken to close");
        assert_eq!(mailbox.take(), Err(MailboxClosed { queued_bytes: 4 * one, hard_bytes: 3 * one }));
        assert_eq!(mailbox.queued_bytes(), 0, "a closed mailbox holds nothing");
        mailbox.post(message("x"));
        assert!(mailbox.take().is_err(), "and stays closed");
    }

    #[test]
    fn unsent_bytes_count_against_the_limit() {
        let one = message("x").bytes() as u64;
        let mailbox = Mailbox::new(1, 2 * one);
        mailbox.note_unsent(2 * one as usize);
        mailbox.post(message("x"));
        assert!(mailbox.take().is_err());
    }
}

//! Pub/sub's frames: the messages a subscriber receives and the confirmations of its
//! (un)subscriptions, as Redis 7 sends them (RESP3 pushes, RESP2 arrays).

use super::Frame;
use crate::server::pubsub::{Confirmation, Delivery, SubscriptionKind};

/// A delivered message: `message`, `pmessage` (with its pattern) or `smessage`.
pub fn delivery_frame(delivery: Delivery) -> Frame {
    let kind = |name: &str| Frame::bulk(name.as_bytes());
    Frame::Push(match delivery {
        Delivery::Message { channel, message } => {
            vec![kind("message"), Frame::Bulk(channel), Frame::Bulk(message)]
        }
        Delivery::PatternMessage { pattern, channel, message } => {
            vec![kind("pmessage"), Frame::Bulk(pattern), Frame::Bulk(channel), Frame::Bulk(message)]
        }
        Delivery::ShardMessage { channel, message } => {
            vec![kind("smessage"), Frame::Bulk(channel), Frame::Bulk(message)]
        }
    })
}

/// A confirmation: `[subscribe, channel, count]` and its kin; the channel is null when
/// UNSUBSCRIBE without arguments had nothing to leave.
pub fn confirmation_frame(confirmation: Confirmation) -> Frame {
    let word = match (confirmation.kind, confirmation.subscribed) {
        (SubscriptionKind::Channel, true) => "subscribe",
        (SubscriptionKind::Channel, false) => "unsubscribe",
        (SubscriptionKind::Pattern, true) => "psubscribe",
        (SubscriptionKind::Pattern, false) => "punsubscribe",
        (SubscriptionKind::ShardChannel, true) => "ssubscribe",
        (SubscriptionKind::ShardChannel, false) => "sunsubscribe",
    };
    Frame::Push(vec![
        Frame::bulk(word.as_bytes()),
        confirmation.name.map_or(Frame::Null, Frame::Bulk),
        Frame::Integer(i64::try_from(confirmation.count).unwrap_or(i64::MAX)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::resp::ProtocolVersion;
    use bytes::Bytes;

    #[test]
    fn frames_read_as_redis_sends_them() {
        let message = Delivery::PatternMessage {
            pattern: Bytes::from_static(b"c*"),
            channel: Bytes::from_static(b"c1"),
            message: Bytes::from_static(b"m1"),
        };
        assert_eq!(
            &delivery_frame(message).to_bytes(ProtocolVersion::Resp2)[..],
            b"*4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$2\r\nc1\r\n$2\r\nm1\r\n"
        );
        let none = Confirmation { kind: SubscriptionKind::Channel, subscribed: false, name: None, count: 0 };
        assert_eq!(
            &confirmation_frame(none.clone()).to_bytes(ProtocolVersion::Resp2)[..],
            b"*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n"
        );
        assert_eq!(
            &confirmation_frame(none).to_bytes(ProtocolVersion::Resp3)[..],
            b">3\r\n$11\r\nunsubscribe\r\n_\r\n:0\r\n"
        );
    }
}

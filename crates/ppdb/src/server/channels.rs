//! A connection's pub/sub commands, answered in RESP: (un)subscribing, publishing across the
//! cluster, and PUBSUB's introspection of this node's subscribers (as Redis Cluster answers
//! PUBSUB per node).

use super::context::ServerContext;
use super::pubsub::Publication;
use super::resp::command::PubSubCommand;
use super::resp::push::confirmation_frame;
use super::resp::Frame;
use super::session::Session;

/// Runs `command` for the connection of `session`; its reply frames, in order (one per
/// channel for the (un)subscriptions, as Redis sends them).
pub fn pubsub_command(ctx: &ServerContext, session: &mut Session, command: PubSubCommand) -> Vec<Frame> {
    let frame = match command {
        PubSubCommand::Subscribe(kind, names) => {
            let confirmations = session.subscriptions.subscribe(kind, names);
            session.record.set_subscriptions(session.subscriptions.counts());
            return confirmations.into_iter().map(confirmation_frame).collect();
        }
        PubSubCommand::Unsubscribe(kind, names) => {
            let confirmations = session.subscriptions.unsubscribe(kind, names);
            session.record.set_subscriptions(session.subscriptions.counts());
            return confirmations.into_iter().map(confirmation_frame).collect();
        }
        PubSubCommand::Publish { space, channel, message } => {
            let delivered = ctx.pubsub.publish(&Publication { space, channel, message });
            Frame::Integer(count(delivered))
        }
        PubSubCommand::Channels { space, pattern } => {
            let channels = ctx.pubsub.registry.channels(space, pattern.as_deref());
            Frame::Array(channels.into_iter().map(Frame::Bulk).collect())
        }
        PubSubCommand::NumSub { space, channels } => {
            let registry = &ctx.pubsub.registry;
            let mut counts = Vec::with_capacity(channels.len() * 2);
            for channel in channels {
                let subscribers = registry.subscriber_count(space, &channel);
                counts.push(Frame::Bulk(channel));
                counts.push(Frame::Integer(count(subscribers)));
            }
            Frame::Array(counts)
        }
        PubSubCommand::NumPat => Frame::Integer(count(ctx.pubsub.registry.pattern_count())),
    };
    vec![frame]
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

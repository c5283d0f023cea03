//! The pub/sub commands: SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE and their UNSUBSCRIBEs, PUBLISH,
//! SPUBLISH and PUBSUB's introspection, parsed as Redis 7.0 parses them.

use bytes::Bytes;

use super::args::is;
use super::error::CommandError;
use super::table::{full_name, lookup};
use super::Command;
use crate::server::pubsub::{Space, SubscriptionKind};

/// PUBSUB HELP's lines, as Redis 7.0 prints them.
const PUBSUB_HELP: &[&str] = &[
    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Prints this help.",
];

/// A pub/sub command, answered by the node the client is connected to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PubSubCommand {
    /// SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE.
    Subscribe(SubscriptionKind, Vec<Bytes>),
    /// UNSUBSCRIBE, PUNSUBSCRIBE, SUNSUBSCRIBE (no name: all of the kind).
    Unsubscribe(SubscriptionKind, Vec<Bytes>),
    /// PUBLISH, SPUBLISH.
    Publish {
        /// Channels or shard channels.
        space: Space,
        /// The channel.
        channel: Bytes,
        /// The message.
        message: Bytes,
    },
    /// PUBSUB CHANNELS, SHARDCHANNELS \[pattern\].
    Channels {
        /// Channels or shard channels.
        space: Space,
        /// Only those matching this glob pattern.
        pattern: Option<Bytes>,
    },
    /// PUBSUB NUMSUB, SHARDNUMSUB \[channel ...\].
    NumSub {
        /// Channels or shard channels.
        space: Space,
        /// The channels asked about.
        channels: Vec<Bytes>,
    },
    /// PUBSUB NUMPAT.
    NumPat,
}

/// Why the request `args` may not run on a RESP2 connection that is subscribed: Redis allows
/// only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET there. An unknown command or
/// a wrong number of arguments is answered as such first, as Redis checks those before.
pub fn refused_while_subscribed(args: &[Bytes]) -> Option<CommandError> {
    let spec = lookup(args.first()?).filter(|spec| spec.arity_ok(args.len()))?;
    let allowed = ["subscribe", "psubscribe", "ssubscribe", "unsubscribe", "punsubscribe", "sunsubscribe"];
    if allowed.contains(&spec.name) || ["ping", "quit", "reset"].contains(&spec.name) {
        return None;
    }
    Some(CommandError::SubscribedContext { command: full_name(args)? })
}

type Parsed = Result<Command, CommandError>;

/// Parses the pub/sub command `name` (lower case); `None` if not one.
pub(super) fn parse(name: &str, args: &[Bytes]) -> Option<Parsed> {
    let names = || args.to_vec();
    let publish = |space| {
        let [channel, message] = args else { return Err(CommandError::WrongArity { command: "publish" }) };
        Ok(PubSubCommand::Publish { space, channel: channel.clone(), message: message.clone() })
    };
    let command = match name {
        "subscribe" => Ok(PubSubCommand::Subscribe(SubscriptionKind::Channel, names())),
        "psubscribe" => Ok(PubSubCommand::Subscribe(SubscriptionKind::Pattern, names())),
        "ssubscribe" => Ok(PubSubCommand::Subscribe(SubscriptionKind::ShardChannel, names())),
        "unsubscribe" => Ok(PubSubCommand::Unsubscribe(SubscriptionKind::Channel, names())),
        "punsubscribe" => Ok(PubSubCommand::Unsubscribe(SubscriptionKind::Pattern, names())),
        "sunsubscribe" => Ok(PubSubCommand::Unsubscribe(SubscriptionKind::ShardChannel, names())),
        "publish" => publish(Space::Global),
        "spublish" => publish(Space::Shard),
        "pubsub" => return Some(introspection(args)),
        _ => return None,
    };
    Some(command.map(Command::PubSub))
}

/// PUBSUB's subcommands.
fn introspection(args: &[Bytes]) -> Parsed {
    let Some((sub, rest)) = args.split_first() else {
        return Err(CommandError::WrongArity { command: "pubsub" });
    };
    let space = if is(sub, "channels") || is(sub, "numsub") { Space::Global } else { Space::Shard };
    let command = if is(sub, "channels") || is(sub, "shardchannels") {
        if rest.len() > 1 {
            return Err(CommandError::SubcommandSyntax { subcommand: sub.to_vec(), command: "PUBSUB" });
        }
        PubSubCommand::Channels { space, pattern: rest.first().cloned() }
    } else if is(sub, "numsub") || is(sub, "shardnumsub") {
        PubSubCommand::NumSub { space, channels: rest.to_vec() }
    } else if is(sub, "numpat") {
        if !rest.is_empty() {
            return Err(CommandError::WrongArity { command: "pubsub|numpat" });
        }
        PubSubCommand::NumPat
    } else if is(sub, "help") {
        if !rest.is_empty() {
            return Err(CommandError::WrongArity { command: "pubsub|help" });
        }
        return Ok(Command::Help(PUBSUB_HELP));
    } else {
        return Err(CommandError::UnknownSubcommand { command: "PUBSUB", subcommand: sub.to_vec() });
    };
    Ok(Command::PubSub(command))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_line(line: &str) -> Parsed {
        let args: Vec<Bytes> =
            line.split_whitespace().map(|w| Bytes::copy_from_slice(w.as_bytes())).collect();
        Command::parse(&args)
    }

    fn error(line: &str) -> String {
        parse_line(line).err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn commands_and_errors_read_as_redis_7() {
        let b = |t: &str| Bytes::copy_from_slice(t.as_bytes());
        assert_eq!(
            parse_line("psubscribe a* b"),
            Ok(Command::PubSub(PubSubCommand::Subscribe(SubscriptionKind::Pattern, vec![b("a*"), b("b")])))
        );
        assert_eq!(
            parse_line("UNSUBSCRIBE"),
            Ok(Command::PubSub(PubSubCommand::Unsubscribe(SubscriptionKind::Channel, vec![])))
        );
        assert_eq!(
            parse_line("spublish s m"),
            Ok(Command::PubSub(PubSubCommand::Publish {
                space: Space::Shard,
                channel: b("s"),
                message: b("m")
            }))
        );
        assert_eq!(
            parse_line("pubsub SHARDNUMSUB a"),
            Ok(Command::PubSub(PubSubCommand::NumSub { space: Space::Shard, channels: vec![b("a")] }))
        );
        assert_eq!(error("subscribe"), "ERR wrong number of arguments for 'subscribe' command");
        assert_eq!(error("publish a b c"), "ERR wrong number of arguments for 'publish' command");
        assert_eq!(error("pubsub"), "ERR wrong number of arguments for 'pubsub' command");
        assert_eq!(error("pubsub foo"), "ERR unknown subcommand 'foo'. Try PUBSUB HELP.");
        assert_eq!(error("pubsub numpat x"), "ERR wrong number of arguments for 'pubsub|numpat' command");
        assert_eq!(
            error("pubsub channels a b"),
            "ERR unknown subcommand or wrong number of arguments for 'channels'. Try PUBSUB HELP."
        );
        assert!(matches!(parse_line("pubsub help"), Ok(Command::Help(lines)) if lines.len() == 14));
    }

    #[test]
    fn a_subscribed_resp2_connection_runs_only_what_redis_allows() {
        let refused = |line: &str| {
            let args: Vec<Bytes> =
                line.split_whitespace().map(|w| Bytes::copy_from_slice(w.as_bytes())).collect();
            refused_while_subscribed(&args).map(|e| e.to_string())
        };
        let context = |name: &str| {
            Some(format!(
                "ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET \
                 are allowed in this context"
            ))
        };
        assert_eq!(refused("GET k"), context("get"));
        assert_eq!(refused("CLIENT List"), context("client|list"));
        assert_eq!(refused("publish a b"), context("publish"));
        for allowed in ["ping", "PING x", "quit", "reset", "subscribe a", "punsubscribe", "SSUBSCRIBE s"] {
            assert_eq!(refused(allowed), None, "{allowed}");
        }
        assert_eq!(refused("GET"), None, "the arity error comes first");
        assert_eq!(refused("NOSUCH"), None, "the unknown command error comes first");
    }
}

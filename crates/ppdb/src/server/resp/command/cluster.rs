//! CLUSTER: the Redis Cluster subcommands that describe a cluster, answered for a cluster that
//! forwards instead of redirecting (docs/compatibility.md, "CLUSTER"). Those that change slot
//! assignment or cluster membership are refused: PPDB assigns slots to shards itself.

use bytes::Bytes;

use super::args::{integer, is};
use super::error::CommandError;
use super::Command;
use crate::node::slots::{SlotId, SLOT_COUNT};

/// CLUSTER HELP, in Redis 7's words for the subcommands PPDB answers.
const CLUSTER_HELP: &[&str] = &[
    "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "COUNTKEYSINSLOT <slot>",
    "    Return the number of keys in <slot>.",
    "GETKEYSINSLOT <slot> <count>",
    "    Return key names stored by current node in a slot.",
    "INFO",
    "    Return information about the cluster.",
    "KEYSLOT <key>",
    "    Return the hash slot for <key>.",
    "MYID",
    "    Return the node id.",
    "NODES",
    "    Return cluster configuration seen by node. Output format:",
    "    <id> <ip:port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
    "SHARDS",
    "    Return information about slot range mappings and the nodes serving them.",
    "SLOTS",
    "    Return information about slots range mappings. Each range is made of:",
    "    start, end, master and replicas IP addresses, ports and ids",
    "HELP",
    "    Prints this help.",
];

/// Redis Cluster subcommands that assign slots or change membership: PPDB refuses them.
const MANAGING: &[&str] = &[
    "addslots",
    "addslotsrange",
    "bumpepoch",
    "count-failure-reports",
    "delslots",
    "delslotsrange",
    "failover",
    "flushslots",
    "forget",
    "meet",
    "replicate",
    "replicas",
    "reset",
    "saveconfig",
    "set-config-epoch",
    "setslot",
    "slaves",
];

/// A CLUSTER subcommand PPDB answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterCommand {
    /// CLUSTER INFO: the state of the slots and nodes.
    Info,
    /// CLUSTER MYID: this node's id.
    MyId,
    /// CLUSTER SLOTS: the slot ranges and the node serving them.
    Slots,
    /// CLUSTER SHARDS: the same, as shards.
    Shards,
    /// CLUSTER NODES: the nodes, in the cluster configuration's text format.
    Nodes,
    /// CLUSTER KEYSLOT key: the key's hash slot.
    KeySlot(Bytes),
    /// CLUSTER COUNTKEYSINSLOT slot.
    CountKeysInSlot(SlotId),
    /// CLUSTER GETKEYSINSLOT slot count.
    GetKeysInSlot(SlotId, u64),
}

/// Parses CLUSTER's arguments (after the name).
pub(super) fn parse(args: &[Bytes]) -> Result<Command, CommandError> {
    let Some((sub, rest)) = args.split_first() else {
        return Err(CommandError::WrongArity { command: "cluster" });
    };
    let no_args = |answer: ClusterCommand, command: &'static str| {
        if rest.is_empty() {
            Ok(Command::Cluster(answer))
        } else {
            Err(CommandError::WrongArity { command })
        }
    };
    if is(sub, "info") {
        no_args(ClusterCommand::Info, "cluster|info")
    } else if is(sub, "myid") {
        no_args(ClusterCommand::MyId, "cluster|myid")
    } else if is(sub, "slots") {
        no_args(ClusterCommand::Slots, "cluster|slots")
    } else if is(sub, "shards") {
        no_args(ClusterCommand::Shards, "cluster|shards")
    } else if is(sub, "nodes") {
        no_args(ClusterCommand::Nodes, "cluster|nodes")
    } else if is(sub, "help") {
        if !rest.is_empty() {
            return Err(CommandError::WrongArity { command: "cluster|help" });
        }
        Ok(Command::Help(CLUSTER_HELP))
    } else if is(sub, "keyslot") {
        let [key] = rest else { return Err(CommandError::WrongArity { command: "cluster|keyslot" }) };
        Ok(Command::Cluster(ClusterCommand::KeySlot(key.clone())))
    } else if is(sub, "countkeysinslot") {
        let [slot] = rest else {
            return Err(CommandError::WrongArity { command: "cluster|countkeysinslot" });
        };
        let slot = slot_of(integer(slot)?).ok_or(CommandError::InvalidSlot)?;
        Ok(Command::Cluster(ClusterCommand::CountKeysInSlot(slot)))
    } else if is(sub, "getkeysinslot") {
        let [slot, count] = rest else {
            return Err(CommandError::WrongArity { command: "cluster|getkeysinslot" });
        };
        let (slot, count) = (integer(slot)?, integer(count)?);
        match (slot_of(slot), u64::try_from(count)) {
            (Some(slot), Ok(count)) => Ok(Command::Cluster(ClusterCommand::GetKeysInSlot(slot, count))),
            _ => Err(CommandError::InvalidSlotOrCount),
        }
    } else if MANAGING.iter().any(|name| is(sub, name)) {
        Err(CommandError::ClusterManagedBySelf { subcommand: sub.to_vec() })
    } else {
        Err(CommandError::UnknownSubcommand { command: "CLUSTER", subcommand: sub.to_vec() })
    }
}

/// Slot number `n`, if there is one.
fn slot_of(n: i64) -> Option<SlotId> {
    u16::try_from(n).ok().filter(|&n| n < SLOT_COUNT).and_then(SlotId::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_line(line: &str) -> Result<Command, CommandError> {
        let args: Vec<Bytes> = line.split(' ').map(|w| Bytes::from(w.to_owned())).collect();
        Command::parse(&args)
    }

    fn error(line: &str) -> String {
        parse_line(line).unwrap_err().to_string()
    }

    #[test]
    fn cluster_subcommands_parse_and_refuse_as_redis_does() {
        assert_eq!(parse_line("CLUSTER info"), Ok(Command::Cluster(ClusterCommand::Info)));
        assert_eq!(
            parse_line("cluster KEYSLOT {a}b"),
            Ok(Command::Cluster(ClusterCommand::KeySlot("{a}b".into())))
        );
        let slot = SlotId::new(16383).unwrap();
        assert_eq!(
            parse_line("cluster countkeysinslot 16383"),
            Ok(Command::Cluster(ClusterCommand::CountKeysInSlot(slot)))
        );
        assert_eq!(
            parse_line("cluster getkeysinslot 16383 10"),
            Ok(Command::Cluster(ClusterCommand::GetKeysInSlot(slot, 10)))
        );
        assert!(matches!(parse_line("cluster help"), Ok(Command::Help(lines)) if lines.len() == 21));
        // redis-server 7.0.15's words.
        assert_eq!(error("cluster keyslot"), "ERR wrong number of arguments for 'cluster|keyslot' command");
        assert_eq!(error("cluster foo"), "ERR unknown subcommand 'foo'. Try CLUSTER HELP.");
        assert_eq!(error("cluster countkeysinslot 16384"), "ERR Invalid slot");
        assert_eq!(error("cluster countkeysinslot -1"), "ERR Invalid slot");
        assert_eq!(error("cluster countkeysinslot x"), "ERR value is not an integer or out of range");
        assert_eq!(error("cluster getkeysinslot 1 x"), "ERR value is not an integer or out of range");
        assert_eq!(error("cluster getkeysinslot 16384 1"), "ERR Invalid slot or number of keys");
        assert_eq!(error("cluster getkeysinslot 0 -1"), "ERR Invalid slot or number of keys");
        assert_eq!(error("cluster info extra"), "ERR wrong number of arguments for 'cluster|info' command");
        assert!(
            error("cluster addslots 1").starts_with("ERR CLUSTER ADDSLOTS is not supported"),
            "{}",
            error("cluster addslots 1")
        );
    }
}

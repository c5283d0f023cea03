//! CLUSTER's answers: Redis Cluster's view of PPDB, for a cluster that forwards instead of
//! redirecting.
//!
//! Any node serves every key (it forwards to the key's shard leader), so the node a client
//! asks is the one node it ever needs: SLOTS, SHARDS and NODES name that node, at the address
//! the client reached, for every slot. SLOTS and SHARDS still list one range per data shard,
//! so the ranges show which slots share a shard (and so a single-shard transaction). A node's
//! Redis Cluster id is its PPDB node id in hexadecimal, padded to Redis's 40 characters.
//! INFO's `cluster_enabled` stays 0 (`server::info`): a cluster-aware client then keeps to one
//! connection instead of routing by slot, which is what PPDB wants.

use bytes::Bytes;
use std::net::SocketAddr;

use super::context::ServerContext;
use super::resp::command::ClusterCommand;
use super::resp::Frame;
use crate::node::router::ShardSlots;
use crate::node::slots::{SlotId, SLOT_COUNT};
use crate::node::{MemberStatus, ShardId};
use crate::storage::wal::GroupId;
use ppdb_raft::NodeId;

/// The answer to a CLUSTER subcommand from a client that reached this node at `client_addr`.
pub async fn cluster_reply(ctx: &ServerContext, client_addr: SocketAddr, command: ClusterCommand) -> Frame {
    let me = Node { id: ctx.report.node, client_addr, peer_port: ctx.report.peer_addr.port() };
    let text = |text: String| Frame::Verbatim { format: *b"txt", text: Bytes::from(text) };
    match command {
        ClusterCommand::KeySlot(key) => Frame::Integer(i64::from(SlotId::of(&key).get())),
        ClusterCommand::MyId => Frame::bulk(node_name(me.id).as_bytes()),
        ClusterCommand::Info => text(info(ctx)),
        ClusterCommand::Nodes => text(me.nodes_line()),
        ClusterCommand::Slots => {
            Frame::Array(ranges(ctx).into_iter().map(|range| me.slots_entry(&range)).collect())
        }
        ClusterCommand::Shards => {
            let statuses = ctx.report.handle.status().await.unwrap_or_default();
            let applied = |shard: ShardId| {
                statuses.iter().find(|s| s.group == GroupId(shard.0)).map_or(0, |s| s.raft.applied.0)
            };
            Frame::Array(ranges(ctx).into_iter().map(|r| me.shards_entry(&r, applied(r.shard))).collect())
        }
        ClusterCommand::CountKeysInSlot(_) | ClusterCommand::GetKeysInSlot(..) => Frame::error(
            "ERR this subcommand is not supported: shards keep no index of keys by slot, so it would \
             read a whole shard",
        ),
    }
}

/// The slot ranges to list, one per shard; a single range owned by shard 1 when slots do not
/// decide the shard (a cluster routing by crc32c), since this node serves every slot anyway.
fn ranges(ctx: &ServerContext) -> Vec<ShardSlots> {
    ctx.executor
        .router()
        .slot_ranges()
        .unwrap_or_else(|| vec![ShardSlots { shard: ShardId(1), first: SlotId::FIRST, last: SlotId::LAST }])
}

/// CLUSTER INFO's text: every slot served, by as many Redis "masters" as there are shards.
fn info(ctx: &ServerContext) -> String {
    let directory = ctx.report.membership.directory();
    let known = directory.members().values().filter(|m| m.status != MemberStatus::Removed).count();
    let slots = SLOT_COUNT;
    let size = ranges(ctx).len();
    format!(
        "cluster_state:ok\r\ncluster_slots_assigned:{slots}\r\ncluster_slots_ok:{slots}\r\n\
         cluster_slots_pfail:0\r\ncluster_slots_fail:0\r\ncluster_known_nodes:{known}\r\n\
         cluster_size:{size}\r\ncluster_current_epoch:0\r\ncluster_my_epoch:0\r\n\
         cluster_stats_messages_sent:0\r\ncluster_stats_messages_received:0\r\n\
         total_cluster_links_buffer_limit_exceeded:0\r\n"
    )
}

/// A node's Redis Cluster id: its number in hexadecimal, 40 characters.
fn node_name(node: NodeId) -> String {
    format!("{:040x}", node.0)
}

/// The node answering, as the client sees it.
struct Node {
    id: NodeId,
    client_addr: SocketAddr,
    peer_port: u16,
}

impl Node {
    fn ip(&self) -> Frame {
        Frame::bulk(self.client_addr.ip().to_string().as_bytes())
    }

    /// CLUSTER SLOTS's entry for `range`: first slot, last slot, then this node.
    fn slots_entry(&self, range: &ShardSlots) -> Frame {
        let node = Frame::Array(vec![
            self.ip(),
            Frame::Integer(i64::from(self.client_addr.port())),
            Frame::bulk(node_name(self.id).as_bytes()),
            Frame::Array(Vec::new()),
        ]);
        Frame::Array(vec![
            Frame::Integer(i64::from(range.first.get())),
            Frame::Integer(i64::from(range.last.get())),
            node,
        ])
    }

    /// CLUSTER SHARDS's entry for `range`: its slots, then this node as the one serving them.
    fn shards_entry(&self, range: &ShardSlots, applied: u64) -> Frame {
        let field = |name: &'static str| Frame::bulk(name.as_bytes());
        let node = Frame::Map(vec![
            (field("id"), Frame::bulk(node_name(self.id).as_bytes())),
            (field("port"), Frame::Integer(i64::from(self.client_addr.port()))),
            (field("ip"), self.ip()),
            (field("endpoint"), self.ip()),
            (field("role"), field("master")),
            (field("replication-offset"), Frame::Integer(i64::try_from(applied).unwrap_or(i64::MAX))),
            (field("health"), field("online")),
        ]);
        let slots =
            vec![Frame::Integer(i64::from(range.first.get())), Frame::Integer(i64::from(range.last.get()))];
        Frame::Map(vec![(field("slots"), Frame::Array(slots)), (field("nodes"), Frame::Array(vec![node]))])
    }

    /// CLUSTER NODES's one line: this node, serving every slot.
    fn nodes_line(&self) -> String {
        let (ip, port) = (self.client_addr.ip(), self.client_addr.port());
        format!(
            "{} {ip}:{port}@{} myself,master - 0 0 0 connected 0-{}\n",
            node_name(self.id),
            self.peer_port,
            SLOT_COUNT - 1
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_are_forty_hex_characters_and_nodes_lists_every_slot() {
        assert_eq!(node_name(NodeId(1)), format!("{}1", "0".repeat(39)));
        assert_eq!(node_name(NodeId(u64::MAX)).len(), 40);
        let me = Node { id: NodeId(2), client_addr: "127.0.0.1:7002".parse().unwrap(), peer_port: 7102 };
        assert_eq!(
            me.nodes_line(),
            format!("{} 127.0.0.1:7002@7102 myself,master - 0 0 0 connected 0-16383\n", node_name(NodeId(2)))
        );
    }
}

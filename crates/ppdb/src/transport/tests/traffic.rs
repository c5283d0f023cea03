//! Raft traffic between healthy transports: several groups, batching, broadcast, snapshots.

use super::*;
use ppdb_raft::{Membership, Snapshot, SnapshotMeta};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_transports_exchange_raft_messages_for_several_groups() {
    let mut nodes = mesh(2, fast_limits()).await;
    let (b, mut b_in) = nodes.pop().unwrap_or_else(|| unreachable!());
    let (a, mut a_in) = nodes.pop().unwrap_or_else(|| unreachable!());
    for group in 0..8 {
        a.send(NodeId(2), group, heartbeat(1, 2, group)).unwrap_or_else(|e| panic!("{e}"));
    }
    let mut got = recv_raft(&mut b_in, 8).await;
    got.sort_by_key(|(_, group, _)| *group);
    for (group, (from, g, msg)) in got.into_iter().enumerate() {
        assert_eq!((from, g, msg), (NodeId(1), group as u64, heartbeat(1, 2, group as u64)));
    }
    for group in 0..8 {
        b.send(NodeId(1), group, heartbeat(2, 1, 100 + group)).unwrap_or_else(|e| panic!("{e}"));
    }
    let got = recv_raft(&mut a_in, 8).await;
    assert!(got.iter().all(|(from, g, msg)| *from == NodeId(2) && *msg == heartbeat(2, 1, 100 + g)));
    // Counters are updated just after each write returns, which may be after the peer reads.
    within("the counters", async {
        while a.stats()[&NodeId(2)].messages_sent < 8 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let stats = a.stats()[&NodeId(2)];
    assert_eq!(stats.messages_sent, 8);
    assert_eq!(stats.messages_received, 8);
    assert!(stats.connected && stats.bytes_sent > 0 && stats.bytes_received > 0);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_transports_broadcast_to_every_peer() {
    let mut nodes = mesh(3, fast_limits()).await;
    for group in [3, 9] {
        let msgs = vec![heartbeat(1, 2, group), heartbeat(1, 3, group)];
        assert_eq!(nodes[0].0.broadcast(group, msgs), 2);
    }
    for to in [2u64, 3] {
        let inbound = &mut nodes[to as usize - 1].1;
        let mut got = recv_raft(inbound, 2).await;
        got.sort_by_key(|(_, group, _)| *group);
        assert_eq!(got, vec![(NodeId(1), 3, heartbeat(1, to, 3)), (NodeId(1), 9, heartbeat(1, to, 9))]);
    }
    // Round-trip times are measured from the first ping, sent on connect.
    within("an RTT measurement", async {
        while nodes[0].0.stats().values().any(|s| s.rtt_us_last.is_none()) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    for (t, _) in &nodes {
        t.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5_mib_snapshot_arrives_intact_in_chunks_between_other_traffic() {
    // Frames of at most 2 MiB: a 5 MiB snapshot can only arrive in chunks.
    let limits = TransportLimits { frame_bytes_max: 2 << 20, ..fast_limits() };
    let mut nodes = mesh(2, limits).await;
    let data: Vec<u8> = (0..5u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let meta = SnapshotMeta {
        index: LogIndex(1000),
        term: Term(4),
        membership: Membership::with_voters([NodeId(1), NodeId(2)]),
    };
    let snapshot = Snapshot { meta, data: Arc::new(data) };
    let install = Message {
        from: NodeId(1),
        to: NodeId(2),
        term: Term(4),
        body: MessageBody::InstallSnapshot { snapshot },
    };
    let a = &nodes[0].0;
    a.send(NodeId(2), 5, heartbeat(1, 2, 1)).unwrap_or_else(|e| panic!("{e}"));
    a.send(NodeId(2), 5, install.clone()).unwrap_or_else(|e| panic!("{e}"));
    a.send(NodeId(2), 6, heartbeat(1, 2, 2)).unwrap_or_else(|e| panic!("{e}"));
    let got = recv_raft(&mut nodes[1].1, 3).await;
    assert!(got.contains(&(NodeId(1), 5, install)), "the snapshot did not arrive intact");
    assert!(got.contains(&(NodeId(1), 6, heartbeat(1, 2, 2))));
    assert_eq!(nodes[0].0.stats()[&NodeId(2)].dropped, 0);
    for (t, _) in &nodes {
        t.shutdown().await;
    }
}

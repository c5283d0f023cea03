//! Faults: refused handshakes, dead and slow peers, restarts, garbage on the wire.

use super::*;
use crate::transport::frame::{read_frame, Frame};
use crate::transport::handshake::{self, Hello, Identity, Incarnation, PROTOCOL_VERSION};
use crate::transport::{LinkState, RefusalReason, TransportError};
use ppdb_raft::{Entry, EntryPayload};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_of_another_cluster_is_refused_with_a_typed_error() {
    let (a, _a_in) = start(1, "alpha", any_port(), fast_limits()).await;
    let (b, _b_in) = start(2, "beta", any_port(), fast_limits()).await;
    b.add_peer(NodeId(1), a.local_addr()).unwrap_or_else(|e| panic!("{e}"));
    a.add_peer(NodeId(2), b.local_addr()).unwrap_or_else(|e| panic!("{e}"));
    let expected = TransportError::Refused {
        peer: NodeId(2),
        reason: RefusalReason::ClusterMismatch { ours: "alpha".into(), theirs: "beta".into() },
    };
    assert_eq!(a.connect(NodeId(2), DEADLINE).await, Err(expected.clone()));
    assert_eq!(a.call(NodeId(2), b"x".to_vec(), DEADLINE).await, Err(expected));
    assert!(!a.stats()[&NodeId(2)].connected);
    let mapped: crate::Error = a.connect(NodeId(2), DEADLINE).await.map_err(crate::Error::from).unwrap_err();
    assert_eq!(mapped.code(), crate::ErrorCode::Network);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_or_removed_node_is_refused() {
    let mut nodes = mesh(2, fast_limits()).await;
    let (b, _b_in) = nodes.pop().unwrap_or_else(|| unreachable!());
    let (a, _a_in) = nodes.pop().unwrap_or_else(|| unreachable!());
    within("the connection", a.connect(NodeId(2), DEADLINE)).await.unwrap_or_else(|e| panic!("{e}"));
    b.remove_peer(NodeId(1));
    // Node 2 closes node 1's connection and refuses it from now on.
    let refused = within("a refusal", async {
        loop {
            if let Some(LinkState::Down(e @ TransportError::Refused { .. })) = a.link_state(NodeId(2)) {
                return e;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert_eq!(
        refused,
        TransportError::Refused { peer: NodeId(2), reason: RefusalReason::UnknownNode { node: NodeId(1) } }
    );
    a.shutdown().await;
    b.shutdown().await;
}

fn big_append(from: u64, to: u64, index: u64) -> Message {
    let entry = Entry {
        index: LogIndex(index + 1),
        term: Term(1),
        payload: EntryPayload::Command(vec![7; 64 * 1024]),
    };
    Message {
        from: NodeId(from),
        to: NodeId(to),
        term: Term(1),
        body: MessageBody::Append {
            prev_index: LogIndex(index),
            prev_term: Term(1),
            entries: vec![entry],
            commit: LogIndex(0),
        },
    }
}

/// A fake node 3 that completes the handshake, then never reads again.
async fn stalled_peer() -> SocketAddr {
    let listener = TcpListener::bind(any_port()).await.unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(async move {
        let us = Identity { node_id: NodeId(3), cluster_id: "test".into(), incarnation: Incarnation(3) };
        let mut held = Vec::new();
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = handshake::accept(
                &mut stream,
                &us,
                |_| handshake::Acquaintance::Peer(None),
                DEADLINE,
                1 << 20,
            )
            .await;
            held.push(stream);
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_stops_reading_or_is_dead_does_not_block_the_others() {
    let limits = TransportLimits { peer_queue_messages_max: 16, ..fast_limits() };
    let mut nodes = mesh(2, limits).await;
    let a = nodes[0].0.clone();
    a.add_peer(NodeId(3), stalled_peer().await).unwrap_or_else(|e| panic!("{e}"));
    // Nothing listens at node 4's address.
    let dead =
        TcpListener::bind(any_port()).await.and_then(|l| l.local_addr()).unwrap_or_else(|e| panic!("{e}"));
    a.add_peer(NodeId(4), dead).unwrap_or_else(|e| panic!("{e}"));
    within("the connection to node 3", a.connect(NodeId(3), DEADLINE))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // 64 MiB towards node 3 cannot fit in socket buffers: its writer blocks and its queue fills.
    for i in 0..1024 {
        let _ = a.send(NodeId(3), 1, big_append(1, 3, i));
        let _ = a.send(NodeId(4), 1, heartbeat(1, 4, i));
        a.send(NodeId(2), 1, heartbeat(1, 2, i)).unwrap_or_else(|e| panic!("to node 2: {e}"));
        if i % 16 == 15 {
            // Let node 2's writer drain its (small) queue, as a Raft tick would.
            let got = recv_raft(&mut nodes[1].1, 16).await;
            assert!(got.iter().all(|(from, _, _)| *from == NodeId(1)));
        }
    }
    within("the counters", async {
        while a.stats()[&NodeId(2)].messages_sent < 1024 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let stats = a.stats();
    assert!(stats[&NodeId(3)].dropped > 0, "{:?}", stats[&NodeId(3)]);
    assert!(stats[&NodeId(4)].dropped > 0, "{:?}", stats[&NodeId(4)]);
    assert_eq!(stats[&NodeId(2)].dropped, 0);
    assert_eq!(stats[&NodeId(2)].messages_sent, 1024);
    a.shutdown().await;
    nodes[1].0.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_peer_is_reconnected() {
    let mut nodes = mesh(2, fast_limits()).await;
    let (b, _b_in) = nodes.pop().unwrap_or_else(|| unreachable!());
    let (a, _a_in) = nodes.pop().unwrap_or_else(|| unreachable!());
    within("the connection", a.connect(NodeId(2), DEADLINE)).await.unwrap_or_else(|e| panic!("{e}"));
    let b_addr = b.local_addr();
    b.shutdown().await;
    within("the disconnection", async {
        while a.stats()[&NodeId(2)].connected {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let (b2, mut b2_in) = start(2, "test", b_addr, fast_limits()).await;
    b2.add_peer(NodeId(1), a.local_addr()).unwrap_or_else(|e| panic!("{e}"));
    // Like Raft, keep sending until the restarted peer hears us.
    let heard = within("a message after the restart", async {
        let mut commit = 0;
        loop {
            commit += 1;
            let _ = a.send(NodeId(2), 0, heartbeat(1, 2, commit));
            tokio::select! {
                event = b2_in.recv() => return event,
                () = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
        }
    })
    .await;
    assert!(matches!(heard, Some(InboundEvent::Raft { from: NodeId(1), group: 0, .. })));
    assert!(a.stats()[&NodeId(2)].connected);
    a.shutdown().await;
    b2.shutdown().await;
}

/// Opens a connection to `addr` as node `from` of cluster "test" and completes the handshake.
async fn handshaken(addr: SocketAddr, from: u64, to: u64) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap_or_else(|e| panic!("{e}"));
    let hello = Hello {
        version: PROTOCOL_VERSION,
        cluster_id: "test".into(),
        from: NodeId(from),
        to: NodeId(to),
        incarnation: Incarnation(from),
    };
    handshake::dial(&mut stream, hello, None, DEADLINE, 1 << 20).await.unwrap_or_else(|e| panic!("{e}"));
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_frame_closes_only_that_connection() {
    let mut nodes = mesh(2, fast_limits()).await;
    let b_addr = nodes[1].0.local_addr();
    // Node 3 is known to node 2 but speaks garbage after its handshake.
    nodes[1].0.add_peer(NodeId(3), any_port()).unwrap_or_else(|e| panic!("{e}"));
    let mut liar = handshaken(b_addr, 3, 2).await;
    let mut bad = Frame::Ping { nonce: 9 }.encode();
    let last = bad.len() - 1;
    bad[last] ^= 0xff; // checksum mismatch
    liar.write_all(&bad).await.unwrap_or_else(|e| panic!("{e}"));
    let mut rest = Vec::new();
    // The read ends (EOF or reset) only when node 2 closes the connection.
    let _ = within("node 2 to close the connection", liar.read_to_end(&mut rest)).await;
    // Raw garbage without a handshake is also just closed.
    let mut stranger = TcpStream::connect(b_addr).await.unwrap_or_else(|e| panic!("{e}"));
    stranger.write_all(&[0xff; 64]).await.unwrap_or_else(|e| panic!("{e}"));
    let mut rest = Vec::new();
    let _ = within("node 2 to close the stranger", stranger.read_to_end(&mut rest)).await;
    // A message claiming to come from someone else breaks the protocol, too.
    let mut impostor = handshaken(b_addr, 3, 2).await;
    impostor
        .write_all(&Frame::Raft(vec![(0, heartbeat(1, 2, 5))]).encode())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let _ = within("node 2 to close the impostor", impostor.read_to_end(&mut rest)).await;
    // Node 1's traffic to node 2 is unaffected.
    nodes[0].0.send(NodeId(2), 4, heartbeat(1, 2, 3)).unwrap_or_else(|e| panic!("{e}"));
    let got = recv_raft(&mut nodes[1].1, 1).await;
    assert_eq!(got, vec![(NodeId(1), 4, heartbeat(1, 2, 3))]);
    // A well-formed ping on a fresh connection is still answered.
    let mut honest = handshaken(b_addr, 3, 2).await;
    honest.write_all(&Frame::Ping { nonce: 77 }.encode()).await.unwrap_or_else(|e| panic!("{e}"));
    let pong = within("a pong", read_frame(&mut honest, 1 << 20)).await.map(|(f, _)| f);
    assert_eq!(pong, Ok(Frame::Pong { nonce: 77 }));
    for (t, _) in &nodes {
        t.shutdown().await;
    }
}

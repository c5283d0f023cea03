//! Request/response: round trip, timeout, dropped requests, connection loss.

use super::*;
use crate::transport::handshake::Incarnation;
use crate::transport::TransportError;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_round_trips() {
    let mut nodes = mesh(2, fast_limits()).await;
    let (b, mut b_in) = nodes.pop().unwrap_or_else(|| unreachable!());
    let (a, _a_in) = nodes.pop().unwrap_or_else(|| unreachable!());
    let server = tokio::spawn(async move {
        while let Some(event) = b_in.recv().await {
            if let InboundEvent::Request { from, mut payload, responder, .. } = event {
                assert_eq!(from, NodeId(1));
                payload.reverse();
                responder.respond(payload).unwrap_or_else(|e| panic!("{e}"));
            }
        }
    });
    for i in 0..20u8 {
        let answer = a.call(NodeId(2), vec![i, 1, 2], DEADLINE).await;
        assert_eq!(answer, Ok(vec![2, 1, i]));
    }
    a.shutdown().await;
    b.shutdown().await;
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_to_a_peer_that_never_answers_times_out() {
    let mut nodes = mesh(2, fast_limits()).await;
    let (b, mut b_in) = nodes.pop().unwrap_or_else(|| unreachable!());
    let (a, _a_in) = nodes.pop().unwrap_or_else(|| unreachable!());
    // Node 2 keeps every responder and never answers.
    let hoard = tokio::spawn(async move {
        let mut kept = Vec::new();
        while let Some(event) = b_in.recv().await {
            kept.push(event);
        }
    });
    let timeout = Duration::from_millis(300);
    let answer = a.call(NodeId(2), b"GET k".to_vec(), timeout).await;
    assert_eq!(answer, Err(TransportError::Timeout { peer: NodeId(2), after: timeout }));
    let mapped: crate::Error = TransportError::Timeout { peer: NodeId(2), after: timeout }.into();
    assert_eq!(mapped.code(), crate::ErrorCode::Timeout);
    a.shutdown().await;
    b.shutdown().await;
    hoard.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_request_or_a_lost_connection_fails_the_call_with_network() {
    let mut nodes = mesh(2, fast_limits()).await;
    let (b, mut b_in) = nodes.pop().unwrap_or_else(|| unreachable!());
    let (a, _a_in) = nodes.pop().unwrap_or_else(|| unreachable!());
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::channel(4);
    let server = tokio::spawn(async move {
        let mut kept = Vec::new();
        while let Some(event) = b_in.recv().await {
            if let InboundEvent::Request { payload, responder, .. } = event {
                // "drop": answer nothing, at once; anything else: hold it.
                if payload == b"drop" {
                    drop(responder);
                } else {
                    kept.push(responder);
                }
                let _ = seen_tx.send(()).await;
            }
        }
    });
    let dropped = a.call(NodeId(2), b"drop".to_vec(), Duration::from_secs(60)).await;
    assert!(matches!(dropped, Err(TransportError::Network { peer: NodeId(2), .. })), "{dropped:?}");
    within("the request", seen_rx.recv()).await;
    let a2 = a.clone();
    let call =
        tokio::spawn(async move { a2.call(NodeId(2), b"hold".to_vec(), Duration::from_secs(60)).await });
    within("the request", seen_rx.recv()).await;
    b.shutdown().await;
    let lost = within("the call to fail", call).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(lost, Err(TransportError::Network { peer: NodeId(2), .. })), "{lost:?}");
    a.shutdown().await;
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_of_the_cluster_may_call_but_not_a_guest_of_another() {
    let mut nodes = mesh(1, fast_limits()).await;
    let (a, mut a_in) = nodes.pop().unwrap_or_else(|| unreachable!());
    let server = tokio::spawn(async move {
        while let Some(event) = a_in.recv().await {
            if let InboundEvent::Request { from, guest, payload, responder } = event {
                assert_eq!((from, guest), (NodeId(9), true));
                responder.respond(payload).unwrap_or_else(|e| panic!("{e}"));
            }
        }
    });
    let addr = a.local_addr();
    let answer = crate::transport::guest_call(
        addr,
        "test",
        NodeId(9),
        Incarnation(9),
        b"join".to_vec(),
        DEADLINE,
        None,
    )
    .await;
    assert_eq!(answer, Ok(b"join".to_vec()));
    let foreign = crate::transport::guest_call(
        addr,
        "other",
        NodeId(9),
        Incarnation(9),
        b"join".to_vec(),
        DEADLINE,
        None,
    )
    .await;
    assert!(
        matches!(
            foreign,
            Err(TransportError::Refused {
                reason: crate::transport::RefusalReason::ClusterMismatch { .. },
                ..
            })
        ),
        "{foreign:?}"
    );
    a.shutdown().await;
    server.abort();
}

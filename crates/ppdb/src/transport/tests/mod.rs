//! Transports talking over real sockets on 127.0.0.1. Assertions never depend on timing except
//! through generous deadlines ([`DEADLINE`]).

mod calls;
mod faults;
mod traffic;

use super::{InboundEvent, LinkState, Transport, TransportConfig, TransportLimits};
use ppdb_raft::{LogIndex, Message, MessageBody, NodeId, Term};
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

/// How long a test waits for something that should happen in milliseconds.
const DEADLINE: Duration = Duration::from_secs(5);

fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn fast_limits() -> TransportLimits {
    TransportLimits {
        reconnect_backoff_min: Duration::from_millis(10),
        reconnect_backoff_max: Duration::from_millis(200),
        ..TransportLimits::default()
    }
}

async fn start(
    id: u64,
    cluster: &str,
    addr: SocketAddr,
    limits: TransportLimits,
) -> (Transport, super::Inbound) {
    let mut config = TransportConfig::new(NodeId(id), cluster, addr, BTreeMap::new());
    config.limits = limits;
    config.snapshot_files = Some(std::sync::Arc::new(super::snapshot::MemorySnapshotFiles));
    Transport::start(config).await.unwrap_or_else(|e| panic!("start node {id}: {e}"))
}

/// `n` transports of one cluster (ids 1..=n), each knowing all the others.
async fn mesh(n: u64, limits: TransportLimits) -> Vec<(Transport, super::Inbound)> {
    let mut nodes = Vec::new();
    for id in 1..=n {
        nodes.push(start(id, "test", any_port(), limits.clone()).await);
    }
    let addrs: Vec<SocketAddr> = nodes.iter().map(|(t, _)| t.local_addr()).collect();
    for (i, (t, _)) in nodes.iter().enumerate() {
        for (j, addr) in addrs.iter().enumerate() {
            if i != j {
                t.add_peer(NodeId(j as u64 + 1), *addr).unwrap_or_else(|e| panic!("{e}"));
            }
        }
    }
    // A dial can race the peer's add_peer and be refused as unknown; it is retried. Wait until
    // every link is up so tests start from a connected mesh.
    for (t, _) in &nodes {
        for peer in t.peers().into_keys() {
            within("a connected mesh", async {
                while t.link_state(peer) != Some(LinkState::Connected) {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
            .await;
        }
    }
    nodes
}

fn heartbeat(from: u64, to: u64, commit: u64) -> Message {
    Message {
        from: NodeId(from),
        to: NodeId(to),
        term: Term(1),
        body: MessageBody::Heartbeat { commit: LogIndex(commit), read_round: 0 },
    }
}

async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, f).await.unwrap_or_else(|_| panic!("no {what} within {DEADLINE:?}"))
}

/// The next `n` Raft messages, as `(from, group, message)`.
async fn recv_raft(inbound: &mut super::Inbound, n: usize) -> Vec<(NodeId, u64, Message)> {
    within("Raft messages", async {
        let mut out = Vec::new();
        while out.len() < n {
            match inbound.recv().await {
                Some(InboundEvent::Raft { from, group, msg }) => out.push((from, group, msg)),
                Some(InboundEvent::Request { .. }) => panic!("unexpected request"),
                None => panic!("inbound closed"),
            }
        }
        out
    })
    .await
}

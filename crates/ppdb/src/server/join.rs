//! `ppdb start --join ADDR`: asking a running cluster to admit this node.
//!
//! The new node calls the member at ADDR as a guest of the cluster (see
//! [`crate::transport::guest_call`]) with a [`DirectoryCommand::Join`] naming its id and peer
//! address. The member has the meta leader record it as JOINING and answers with the shard
//! count and the members' addresses; the node writes its cluster file and starts with empty
//! groups, which the group leaders fill (as a learner, by snapshot and log) and then promote.

use super::membership::{decode_response, encode_request};
use super::node::ClusterFile;
use crate::config::NodeConfig;
use crate::error::{Error, ErrorCode};
use crate::node::DirectoryCommand;
use crate::transport::{guest_call, TransportError};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long a node keeps asking to be admitted before giving up.
const JOIN_DEADLINE: Duration = Duration::from_secs(60);
/// Deadline of one attempt.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between attempts.
const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// Asks the member at `via` to admit this node; on success records the cluster in the data
/// directory and returns its cluster file.
pub async fn join_cluster(config: &NodeConfig, via: SocketAddr) -> Result<ClusterFile, Error> {
    let node = config.node_id();
    let peer_addr = config.peer_addr().map_err(|e| Error::State(e.to_string()))?;
    let command = DirectoryCommand::Join { node, peer_addr };
    let started = Instant::now();
    tracing::info!(%node, %via, %peer_addr, cluster = %config.peer.cluster_id, "asking to join the cluster");
    let admission = loop {
        let answer =
            guest_call(via, &config.peer.cluster_id, node, encode_request(&command), ATTEMPT_TIMEOUT).await;
        let attempt = match answer {
            // Another cluster, or a protocol we do not speak: asking again will not help.
            Err(e @ TransportError::Refused { .. }) => {
                return Err(Error::State(format!("cannot join the cluster through {via}: {e}")))
            }
            Err(e) => Err(Error::from(e)),
            Ok(answer) => decode_response(0, &answer)
                .unwrap_or_else(|e| Err(Error::Network { peer: via.to_string(), reason: e.to_string() })),
        };
        match attempt {
            Ok(admission) => break admission,
            Err(e) if transient(&e) && started.elapsed() + RETRY_PAUSE < JOIN_DEADLINE => {
                tracing::warn!(%via, error = %e, "not admitted yet; retrying");
                tokio::time::sleep(RETRY_PAUSE).await;
            }
            Err(e) => return Err(Error::State(format!("cannot join the cluster through {via}: {e}"))),
        }
    };
    let mut members: std::collections::BTreeMap<u64, SocketAddr> =
        admission.members.iter().map(|(id, addr)| (id.0, *addr)).collect();
    members.insert(node.0, peer_addr);
    let file = ClusterFile {
        cluster_id: config.peer.cluster_id.clone(),
        node_id: node.0,
        shards: admission.shards,
        members,
        joined: true,
    };
    file.save(&config.data_dir)?;
    tracing::info!(%node, shards = file.shards, members = file.members.len(), "admitted as JOINING");
    Ok(file)
}

/// Whether asking again may succeed: the member was unreachable, busy, or between leaders.
/// A refusal (another cluster, a removed id, an address in use) is final.
fn transient(error: &Error) -> bool {
    match error {
        Error::Network { .. } | Error::Timeout { .. } => true,
        Error::Remote { code, .. } => !matches!(code, ErrorCode::State),
        _ => !matches!(error.code(), ErrorCode::State),
    }
}

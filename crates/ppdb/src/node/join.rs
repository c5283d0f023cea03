//! `ppdb start --join ADDR`: asking a running cluster to admit this node.
//!
//! The new node calls the member at ADDR as a guest of the cluster (see
//! [`crate::transport::guest_call`]) with a [`DirectoryCommand::Join`] naming its id and peer
//! address. The member has the meta leader record it as JOINING and answers with the shard
//! count and the members' addresses; the node writes its cluster file and starts with empty
//! groups, which the group leaders fill (as a learner, by snapshot and log) and then promote.
//! The join names the node's incarnation, which the directory records with it.
//!
//! A node given `--bootstrap` on a data directory without a cluster first asks the other
//! listed nodes what they record of its id ([`refuse_if_already_member`]): if the cluster
//! already has this id in another incarnation, its data was lost, and founding afresh would
//! give it a vote with none of the log it once acknowledged. It stops and says what to do.

use super::cluster_file::ClusterFile;
use super::join_credential::{encode_authorized_join, JoinCredential};
use super::membership::{decode_record, decode_response, encode_lookup, encode_request, MemberRecord};
use super::{DirectoryCommand, MemberStatus};
use crate::config::NodeConfig;
use crate::error::{Error, ErrorCode};
use crate::transport::handshake::Incarnation;
use crate::transport::tls::TlsContext;
use crate::transport::{guest_call, TransportError};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long a node keeps asking to be admitted before giving up.
const JOIN_DEADLINE: Duration = Duration::from_secs(60);
/// Deadline of one attempt.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between attempts.
const RETRY_PAUSE: Duration = Duration::from_millis(500);
/// Deadline of a member lookup before bootstrapping (a member that does not answer by then
/// is down, or not started yet, as at a cluster's first start).
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

/// Asks the member at `via` to admit this node in `incarnation`; on success records the
/// cluster in the data directory and returns its cluster file.
pub async fn join_cluster(
    config: &NodeConfig,
    via: SocketAddr,
    incarnation: Incarnation,
    tls: Option<&TlsContext>,
    credential: &JoinCredential,
) -> Result<ClusterFile, Error> {
    let node = config.node_id();
    let peer_addr = config.peer_addr().map_err(|e| Error::State(e.to_string()))?;
    let command = DirectoryCommand::Join { node, peer_addr, incarnation: Some(incarnation) };
    // With TLS the node's certificate is its credential; without, the join token goes along.
    let request = match credential.token() {
        Some(token) => encode_authorized_join(token, &encode_request(&command)),
        None => encode_request(&command),
    };
    let started = Instant::now();
    tracing::info!(%node, %via, %peer_addr, cluster = %config.peer.cluster_id, "asking to join the cluster");
    let admission = loop {
        let cluster = &config.peer.cluster_id;
        let answer = guest_call(via, cluster, node, incarnation, request.clone(), ATTEMPT_TIMEOUT, tls).await;
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
        routing: admission.routing,
        replicas: 0,
        members,
        joined: true,
    };
    file.save(&config.data_dir)?;
    tracing::info!(%node, shards = file.shards, members = file.members.len(), "admitted as JOINING");
    Ok(file)
}

/// Before a node founds its groups from `--bootstrap` on a directory without a cluster: asks
/// every other listed node what it records of this node's id, and refuses to start when one
/// knows it in another incarnation (or removed). Nodes that do not answer (not started yet,
/// down) are taken as knowing nothing; a node started anyway is still refused by its peers
/// at the handshake.
pub async fn refuse_if_already_member(
    config: &NodeConfig,
    incarnation: Incarnation,
    tls: Option<&TlsContext>,
) -> Result<(), Error> {
    let node = config.node_id();
    let lookups = config.bootstrap.iter().filter(|(&id, _)| id != node.0).map(|(&id, &addr)| async move {
        let answer = guest_call(
            addr,
            &config.peer.cluster_id,
            node,
            incarnation,
            encode_lookup(node),
            LOOKUP_TIMEOUT,
            tls,
        )
        .await;
        match answer.map(|bytes| decode_record(&bytes)) {
            Ok(Ok(Some(record))) => Some((id, addr, record)),
            Ok(Ok(None)) => None,
            Ok(Err(e)) => {
                tracing::debug!(peer = id, %addr, error = %e, "unreadable member lookup answer");
                None
            }
            Err(e) => {
                tracing::debug!(peer = id, %addr, error = %e, "member lookup unanswered");
                None
            }
        }
    });
    let records = futures::future::join_all(lookups).await;
    for (peer, addr, record) in records.into_iter().flatten() {
        if let Some(reason) = already_member(config, node.0, peer, addr, record) {
            return Err(Error::State(reason));
        }
    }
    Ok(())
}

/// Why node `node`, starting on an empty data directory, must not found its groups, given
/// what node `peer` (at `addr`) records of it.
fn already_member(
    config: &NodeConfig,
    node: u64,
    peer: u64,
    addr: SocketAddr,
    record: MemberRecord,
) -> Option<String> {
    let dir = config.data_dir.display();
    let cluster = &config.peer.cluster_id;
    match (record.status, record.incarnation) {
        (MemberStatus::Removed, _) => Some(format!(
            "node {node} was removed from cluster {cluster} (node {peer} says so); start this \
             node on an empty data directory with a new --id and --join {addr}"
        )),
        (_, Some(recorded)) => Some(format!(
            "node {node}'s data directory {dir} is empty but cluster {cluster} already has a node \
             {node} (incarnation {recorded}, as node {peer} records it): its data was lost. Remove \
             it with `ppdb cluster remove {node}` (through any member's admin address), then start \
             this node on an empty data directory with a new --id and --join {addr}"
        )),
        // Listed but not registered yet: the cluster is being founded right now.
        (_, None) => None,
    }
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

//! Keeping a running node in step with the meta group's directory: the transport's peers and
//! incarnations, the cluster file's member list, this node's own incarnation record, and the
//! moment the node must stop because the cluster dismissed it.

use super::cluster_file::ClusterFile;
use super::membership::MembershipService;
use super::{Directory, DirectoryCommand, MemberStatus, StateMachine};
use crate::error::Error;
use crate::transport::handshake::Incarnation;
use crate::transport::{LinkState, RefusalReason, Transport, TransportError};
use ppdb_raft::NodeId;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::watch;

/// Pause between attempts to record this node's incarnation in the directory.
const REGISTER_RETRY_PAUSE: Duration = Duration::from_secs(1);
/// How often the peers' handshake refusals are checked for one that dismisses this node.
const REFUSAL_CHECK_INTERVAL: Duration = Duration::from_millis(500);

/// Why a running node must stop although nobody asked it to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Dismissal {
    /// It was removed from the cluster.
    Removed,
    /// The cluster knows its id in another incarnation: its data was lost (the message says
    /// what to do).
    DataLost(String),
}

/// Keeps the transport's peers, their incarnations and the cluster file in step with the
/// directory as it is applied, and raises `dismissed` once this node is removed from the
/// cluster (recorded so in its own directory, or told so by a member refusing its
/// handshake: a removed node stops receiving the meta group's log, so it may never apply its
/// own removal), or once the cluster turns out to know its id in another incarnation.
pub(super) async fn follow_directory(
    mut directory: watch::Receiver<Directory>,
    transport: Transport,
    mut cluster: ClusterFile,
    incarnation: Incarnation,
    data_dir: PathBuf,
    dismissed: watch::Sender<Option<Dismissal>>,
) {
    let node = NodeId(cluster.node_id);
    let mut refusals = tokio::time::interval(REFUSAL_CHECK_INTERVAL);
    loop {
        let current = directory.borrow_and_update().clone();
        // A joining node knows nothing until the meta leader's snapshot arrives.
        if !current.members().is_empty() {
            for (&peer, member) in current.members().iter().filter(|(&peer, _)| peer != node) {
                if let Some(recorded) = member.incarnation {
                    transport.record_incarnation(peer, recorded);
                }
            }
            if let Some(recorded) =
                current.get(node).and_then(|m| m.incarnation).filter(|&r| r != incarnation)
            {
                let reason = RefusalReason::IncarnationMismatch { node, recorded, presented: incarnation };
                let _ = dismissed.send(Some(Dismissal::DataLost(reason.to_string())));
            }
            let live = current.live_addrs();
            for (&peer, &addr) in live.iter().filter(|(&peer, _)| peer != node) {
                if let Err(e) = transport.add_peer(peer, addr) {
                    tracing::warn!(%peer, %addr, error = %e, "cannot add peer");
                }
            }
            for peer in current.with_status(MemberStatus::Removed).filter(|&p| p != node) {
                transport.retire_peer(peer);
            }
            for peer in transport.peers().into_keys().filter(|p| !live.contains_key(p)) {
                transport.remove_peer(peer);
            }
            let members: BTreeMap<u64, SocketAddr> = live.iter().map(|(id, addr)| (id.0, *addr)).collect();
            if members != cluster.members && members.contains_key(&node.0) {
                cluster.members = members;
                if let Err(e) = cluster.save(&data_dir) {
                    tracing::warn!(error = %e, "cannot record the new member list");
                }
            }
            if current.get(node).is_some_and(|m| m.status == MemberStatus::Removed) {
                let _ = dismissed.send(Some(Dismissal::Removed));
            }
        }
        tokio::select! {
            changed = directory.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = refusals.tick() => {
                if let Some(dismissal) = told_to_stop(&transport, node) {
                    let _ = dismissed.send(Some(dismissal));
                }
            }
        }
    }
}

/// Whether a member refused our handshake because we were removed from the cluster, or
/// because it knows our id in another incarnation.
fn told_to_stop(transport: &Transport, node: NodeId) -> Option<Dismissal> {
    transport.peers().into_keys().find_map(|peer| match transport.link_state(peer) {
        Some(LinkState::Down(TransportError::Refused { reason, .. })) => match reason {
            RefusalReason::Removed { node: n } if n == node => Some(Dismissal::Removed),
            RefusalReason::IncarnationMismatch { node: n, .. } if n == node => {
                Some(Dismissal::DataLost(reason.to_string()))
            }
            _ => None,
        },
        _ => None,
    })
}

/// Records this node's incarnation in the directory if it is not there yet (a founding
/// member: the bootstrap directory lists none), retrying until it is. A refusal means the
/// directory records another one; [`follow_directory`] then stops the node.
pub(super) async fn register_incarnation<S: StateMachine>(
    membership: MembershipService<S>,
    mut directory: watch::Receiver<Directory>,
    node: NodeId,
    incarnation: Incarnation,
) {
    loop {
        let recorded = directory.borrow_and_update().get(node).map(|m| m.incarnation);
        match recorded {
            Some(Some(_)) => return,
            Some(None) => match membership.submit(DirectoryCommand::Register { node, incarnation }).await {
                Ok(_) => tracing::info!(%node, %incarnation, "incarnation recorded in the directory"),
                Err(e) => tracing::debug!(%node, error = %e, "incarnation not recorded yet; retrying"),
            },
            // Not in the directory yet: a joining node before the meta leader's snapshot.
            None => {}
        }
        let _ = tokio::time::timeout(REGISTER_RETRY_PAUSE, directory.changed()).await;
    }
}

/// Forwards the directory changes this node's groups report (a data group it leads whose
/// placement is settled, [`super::Runtime::directory_reports`]) to the meta group's leader.
/// A report lost on the way is sent again on a later housekeeping round, while the directory
/// still lacks it; one already recorded changes nothing, so reports queued meanwhile are
/// dropped rather than sent twice.
pub(super) async fn forward_reports<S: StateMachine>(
    membership: MembershipService<S>,
    mut reports: tokio::sync::mpsc::UnboundedReceiver<DirectoryCommand>,
) {
    while let Some(report) = reports.recv().await {
        if let Err(e) = membership.submit(report.clone()).await {
            tracing::debug!(?report, error = %e, "report not recorded; sent again on a later round");
        }
        while reports.try_recv().is_ok() {}
    }
}

/// How a node stops once dismissed: a clean exit if it was asked to leave, else an error
/// saying what to do.
pub(super) fn dismissed(
    node: NodeId,
    data_dir: &Path,
    directory: &watch::Receiver<Directory>,
    dismissal: Option<Dismissal>,
) -> Result<(), Error> {
    if let Some(Dismissal::DataLost(reason)) = dismissal {
        tracing::error!(%node, %reason, "the cluster knows this node's id with other data; stopping");
        return Err(Error::State(reason));
    }
    // Asked to leave: a clean exit. Removed while it was failed (or by an operator
    // while it could not hear of it): say what to do.
    let left = directory
        .borrow()
        .get(node)
        .is_some_and(|m| matches!(m.status, MemberStatus::Leaving | MemberStatus::Removed));
    if left {
        tracing::info!(%node, "this node left the cluster; stopping");
        Ok(())
    } else {
        Err(Error::State(format!(
            "node {node} was removed from the cluster while it was unreachable; remove {} \
             and join again with a new --id",
            data_dir.display()
        )))
    }
}

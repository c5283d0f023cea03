//! Assembling a node: what every node has, whatever client protocols it serves.
//!
//! [`AssembledNode::start`] claims the data directory, finds the node's cluster (recorded,
//! joined through a member, or founded from `--bootstrap`), opens the storage, starts the
//! transport and the Raft runtime, records the node's incarnation and follows the directory.
//! The layer above then builds its services on the parts it exposes, hands the node the peer
//! requests it answers ([`AssembledNode::serve_peers`], one service per first byte), and
//! waits in [`AssembledNode::run`] until the node stops: on Ctrl-C or SIGTERM, on a fatal
//! runtime error, or once the cluster dismissed it.

use super::cluster_file::ClusterFile;
use super::directory_sync::{dismissed, follow_directory, forward_reports, register_incarnation, Dismissal};
use super::identity::NodeIdentity;
use super::join::{join_cluster, refuse_if_already_member};
use super::join_credential::JoinCredential;
use super::membership::MembershipService;
use super::placement::Placement;
use super::raft_storage::RaftStorage;
use super::{
    ClientTraffic, Directory, LeaderTable, MemberStatus, NodeHandle, Outbox, Runtime, RuntimeConfig,
    StateMachine, SystemClock, META_GROUP,
};
use crate::config::NodeConfig;
use crate::error::Error;
use crate::storage::disk::{Disk, FsDisk};
use crate::storage::lock::DataDirLock;
use crate::storage::wal::{GroupId, WalConfig};
use crate::transport::tls::TlsContext;
use crate::transport::{Inbound, InboundEvent, Transport, TransportConfig, TransportLimits};
use futures::future::BoxFuture;
use ppdb_raft::{Message, NodeId, RecoveredState};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Raft messages queued from the transport to the runtime.
const RAFT_INBOX_MESSAGES_MAX: usize = 65_536;
/// Longest wait for the runtime to finish its turn once asked to stop.
const RUNTIME_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Answers one peer request from member `from`; the answer's bytes once ready.
pub type PeerRequestHandler = Box<dyn Fn(NodeId, &[u8]) -> BoxFuture<'static, Vec<u8>> + Send + Sync>;

/// The peer requests of one kind that a layer above the node answers: those from members
/// whose first byte is `tag` (a guest may only ask for membership).
pub struct PeerService {
    /// The first byte of the requests it answers.
    pub tag: u8,
    /// Answers one request from member `from`.
    pub serve: PeerRequestHandler,
}

/// A started node: storage, transport and runtime running, the directory followed.
pub struct AssembledNode<S: StateMachine> {
    /// This node.
    pub node: NodeId,
    /// The cluster as the data directory recorded it when the node started.
    pub cluster: ClusterFile,
    /// The address peers reach this node at.
    pub peer_addr: SocketAddr,
    /// Requests to the node's groups.
    pub handle: NodeHandle<S>,
    /// The connections to the other members.
    pub transport: Transport,
    /// The node's write-ahead log and snapshot files.
    pub storage: Arc<RaftStorage>,
    /// Membership changes, submitted to the meta group's leader.
    pub membership: MembershipService<S>,
    /// Each group's leader as this node last heard.
    pub leaders: LeaderTable,
    /// Client operations served, by the node they entered through.
    pub traffic: ClientTraffic,
    /// TLS on every port, when configured; its files reload while the node runs.
    pub tls: Option<TlsContext>,
    data_dir: PathBuf,
    directory: watch::Receiver<Directory>,
    inbound: Option<Inbound>,
    raft_inbox: mpsc::Sender<(GroupId, Message)>,
    stop: watch::Sender<bool>,
    runtime_task: JoinHandle<Result<(), Error>>,
    dismissal: watch::Receiver<Option<Dismissal>>,
    _lock: DataDirLock,
}

impl<S: StateMachine> AssembledNode<S> {
    /// Starts the node `config` describes; its peer requests wait until [`Self::serve_peers`].
    pub async fn start(config: &NodeConfig) -> Result<AssembledNode<S>, Error> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| Error::State(format!("cannot create {}: {e}", config.data_dir.display())))?;
        let lock = DataDirLock::acquire(&config.data_dir)?;
        let recorded = ClusterFile::load(config)?;
        let identity =
            NodeIdentity::load_or_create(&config.data_dir, config.peer.node_id, recorded.is_some())?;
        let incarnation = identity.incarnation;
        let tls = load_tls(config)?;
        let join_credential = JoinCredential::resolve(config, tls.is_some())?;
        let cluster = match (recorded, config.join) {
            (Some(file), _) => file,
            (None, Some(via)) => {
                join_cluster(config, via, incarnation, tls.as_ref(), &join_credential).await?
            }
            (None, None) => {
                refuse_if_already_member(config, incarnation, tls.as_ref()).await?;
                ClusterFile::bootstrap(config)?
            }
        };
        let node = NodeId(cluster.node_id);
        let disk: Arc<dyn Disk> = Arc::new(FsDisk::new());
        let (storage, recovered) = RaftStorage::open(disk, &config.data_dir, WalConfig::default())?;
        let storage = Arc::new(storage);
        let bootstrap = initial_groups(&cluster, &recovered);
        let peer_addr = *cluster
            .members
            .get(&node.0)
            .ok_or_else(|| Error::State(format!("node {node} is not in the recorded member list")))?;
        let peers =
            cluster.members.iter().filter(|(&id, _)| id != node.0).map(|(&id, &a)| (NodeId(id), a)).collect();
        let transport_config = TransportConfig {
            node_id: node,
            cluster_id: cluster.cluster_id.clone(),
            incarnation,
            listen_addr: peer_addr,
            peers,
            limits: TransportLimits::default(),
            snapshot_files: Some(storage.snapshot_files()),
            tls: tls.clone(),
        };
        let (transport, inbound) = Transport::start(transport_config).await?;
        let outbox = Arc::new(TransportOutbox(transport.clone()));
        let mut runtime: Runtime<S> =
            Runtime::new(runtime_config(config, node)?, Arc::clone(&storage), recovered, bootstrap, outbox)?;
        let reports = runtime.directory_reports();
        let directory = runtime.directory();
        let leaders = runtime.leaders();
        let traffic = runtime.client_traffic();
        if directory.borrow().get(node).is_some_and(|m| m.status == MemberStatus::Removed) {
            transport.shutdown().await;
            return Err(Error::State(format!(
                "node {node} was removed from cluster {}; remove {} and join again with a new --id",
                cluster.cluster_id,
                config.data_dir.display()
            )));
        }
        let (raft_inbox, raft_rx) = mpsc::channel(RAFT_INBOX_MESSAGES_MAX);
        let (request_tx, request_rx) = mpsc::unbounded_channel();
        let (stop, stop_rx) = watch::channel(false);
        let runtime_task = tokio::spawn(runtime.run(raft_rx, request_rx, stop_rx));
        let handle = NodeHandle::new(request_tx, Duration::from_millis(config.request_timeout_ms));
        let membership = MembershipService::new(
            node,
            cluster.router(),
            handle.clone(),
            transport.clone(),
            directory.clone(),
            join_credential,
        );
        if let Some(tls) = &tls {
            tls.watch(stop.subscribe());
        }
        let (dismissal_tx, dismissal) = watch::channel(None);
        tokio::spawn(register_incarnation(membership.clone(), directory.clone(), node, incarnation));
        if let Some(reports) = reports {
            tokio::spawn(forward_reports(membership.clone(), reports));
        }
        tokio::spawn(follow_directory(
            directory.clone(),
            transport.clone(),
            cluster.clone(),
            incarnation,
            config.data_dir.clone(),
            dismissal_tx,
        ));
        Ok(AssembledNode {
            node,
            cluster,
            peer_addr,
            handle,
            transport,
            storage,
            membership,
            leaders,
            traffic,
            data_dir: config.data_dir.clone(),
            tls,
            directory,
            inbound: Some(inbound),
            raft_inbox,
            stop,
            runtime_task,
            dismissal,
            _lock: lock,
        })
    }

    /// Starts delivering what the peers send: Raft messages to the runtime, membership
    /// requests to the membership service, and the requests each of `services` owns to it.
    /// A service is handed its requests one at a time, in the order each member sent them.
    /// Called once, before [`Self::run`].
    pub fn serve_peers(&mut self, services: Vec<PeerService>) {
        let Some(mut inbound) = self.inbound.take() else {
            debug_assert!(false, "the peers are served once");
            return;
        };
        let raft_inbox = self.raft_inbox.clone();
        let membership = self.membership.clone();
        tokio::spawn(async move {
            while let Some(event) = inbound.recv().await {
                match event {
                    InboundEvent::Raft { group, msg, .. } => {
                        if raft_inbox.try_send((GroupId(group), msg)).is_err() {
                            tracing::debug!("raft inbox full; message dropped (Raft retransmits)");
                        }
                    }
                    InboundEvent::Request { from, guest, payload, responder } => {
                        let tag = payload.first().copied();
                        let service = services.iter().find(|s| Some(s.tag) == tag && !guest);
                        let answer = match service {
                            Some(service) => (service.serve)(from, &payload),
                            None => {
                                let membership = membership.clone();
                                Box::pin(async move { membership.serve(from, guest, &payload).await })
                            }
                        };
                        tokio::spawn(async move {
                            let _ = responder.respond(answer.await);
                        });
                    }
                }
            }
        });
    }

    /// Tells the services built on the node when it stops (turns true).
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    /// Runs until Ctrl-C or SIGTERM, until the runtime fails, or until the node has been
    /// removed from the cluster; then stops the services, the transport and the runtime.
    pub async fn run(mut self) -> Result<(), Error> {
        debug_assert!(self.inbound.is_none(), "the peers are served before the node runs");
        let outcome = tokio::select! {
            _ = crate::shutdown::signal() => {
                tracing::info!("shutting down");
                Ok(())
            }
            dismissal = self.dismissal.wait_for(Option::is_some) => {
                let dismissal = dismissal.map(|d| d.clone()).unwrap_or(None);
                dismissed(self.node, &self.data_dir, &self.directory, dismissal)
            }
            result = &mut self.runtime_task => match result {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "node runtime failed; the node stops");
                    Err(e)
                }
                Err(e) => Err(Error::State(format!("node runtime crashed: {e}"))),
            },
        };
        let _ = self.stop.send(true);
        self.transport.shutdown().await;
        if !self.runtime_task.is_finished() {
            let _ = tokio::time::timeout(RUNTIME_STOP_TIMEOUT, self.runtime_task).await;
        }
        outcome
    }
}

/// The runtime's settings from the node's configuration.
fn runtime_config(config: &NodeConfig, node: NodeId) -> Result<RuntimeConfig, Error> {
    Ok(RuntimeConfig {
        node,
        tick: Duration::from_millis(config.tick_ms),
        raft: config.raft_config().map_err(|e| Error::State(e.to_string()))?,
        entries_between_snapshots: config.snapshot_entries,
        entries_kept_after_snapshot: config.snapshot_entries / 10,
        membership: config.membership_policy(),
        rng_seed: None,
        snapshots_on_loop: false,
        clock: Arc::new(SystemClock),
    })
}

/// Sends the runtime's Raft messages through the transport.
struct TransportOutbox(Transport);

impl Outbox for TransportOutbox {
    fn send(&self, group: GroupId, message: Message) {
        let to = message.to;
        if let Err(e) = self.0.send(to, group.0, message) {
            tracing::trace!(%to, error = %e, "raft message not queued (Raft retransmits)");
        }
    }
}

/// The groups a node starts with: what it recovered, plus, for each group it has no state
/// for, the founding membership (a founding node) or an empty replica the leaders will fill
/// (a joining node). Group 0 is the meta group; its founding state is the directory.
fn initial_groups(
    cluster: &ClusterFile,
    recovered: &BTreeMap<GroupId, RecoveredState>,
) -> BTreeMap<GroupId, RecoveredState> {
    let voters: Vec<NodeId> = cluster.members.keys().copied().map(NodeId).collect();
    let placement = Placement::initial(u64::from(cluster.shards), &voters, cluster.replicas);
    (0..=u64::from(cluster.shards))
        .map(GroupId)
        .filter(|group| !recovered.contains_key(group))
        .map(|group| {
            if cluster.joined {
                return (group, RecoveredState::default());
            }
            if group == META_GROUP {
                let mut state = RecoveredState::bootstrap(voters.clone());
                if let Some(snapshot) = state.snapshot.as_mut() {
                    let directory = Directory::bootstrap(&cluster.members, placement.clone());
                    snapshot.data = Arc::new(directory.snapshot());
                }
                return (group, state);
            }
            let state = match placement.group(group) {
                Some(placed) if !placed.replicas.contains(&NodeId(cluster.node_id)) => {
                    RecoveredState::default()
                }
                Some(placed) => RecoveredState::bootstrap(placed.replicas.iter().copied()),
                None => RecoveredState::bootstrap(voters.clone()),
            };
            (group, state)
        })
        .collect()
}

/// The node's TLS, when `config` sets its files; an unusable file stops the start, saying why.
fn load_tls(config: &NodeConfig) -> Result<Option<TlsContext>, Error> {
    let Some(files) = config.tls.files().map_err(|e| Error::State(e.to_string()))? else { return Ok(None) };
    let tls = TlsContext::load(files, config.tls.auth_clients).map_err(|e| Error::State(e.to_string()))?;
    let identity = tls.identity();
    tracing::info!(subject = %identity.subject, serial = %identity.serial_hex, "TLS on every port");
    Ok(Some(tls))
}

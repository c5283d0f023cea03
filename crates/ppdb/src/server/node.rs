//! Starting a whole node: storage, transport, the Raft runtime, the RESP and admin
//! listeners; and stopping it cleanly on Ctrl-C or SIGTERM.

use super::admin;
use super::context::{ServerContext, ServerStats};
use super::executor::Executor;
use super::forward::SHARD_REQUEST_TAG;
use super::identity::NodeIdentity;
use super::listener;
use super::membership::MembershipService;
use super::memory::MemoryLimit;
use super::report::NodeReport;
use super::resp::RespLimits;
use super::settings::{ClientLimits, ServerSettings};
use super::shard::KvShard;
use crate::config::NodeConfig;
use crate::error::Error;
use crate::node::raft_storage::RaftStorage;
use crate::node::state_machine::StateMachine as _;
use crate::node::{
    Directory, DirectoryCommand, MemberStatus, NodeHandle, Outbox, Runtime, RuntimeConfig, SystemClock,
    META_GROUP,
};
use crate::storage::disk::{Disk, FsDisk};
use crate::storage::lock::DataDirLock;
use crate::storage::wal::{GroupId, WalConfig};
use crate::transport::handshake::Incarnation;
use crate::transport::{
    InboundEvent, LinkState, RefusalReason, Transport, TransportConfig, TransportError, TransportLimits,
};
use ppdb_raft::{Message, NodeId, RecoveredState};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// Raft messages queued from the transport to the runtime.
const RAFT_INBOX_MESSAGES_MAX: usize = 65_536;
/// Pause between attempts to record this node's incarnation in the directory.
const REGISTER_RETRY_PAUSE: Duration = Duration::from_secs(1);

/// What a node remembers about its cluster, in `<data dir>/cluster.json`, written at bootstrap.
/// A restart reads it, so the bootstrap flags matter only the first time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterFile {
    /// Cluster name.
    pub cluster_id: String,
    /// This node.
    pub node_id: u64,
    /// Number of data shards.
    pub shards: u32,
    /// Members' peer addresses, as last known (the meta group's directory is authoritative;
    /// this copy lets a restarting node find its peers).
    pub members: BTreeMap<u64, SocketAddr>,
    /// Whether this node joined a running cluster (its groups start empty and are filled by
    /// the leaders) rather than founding it (its groups start from the bootstrap membership).
    #[serde(default)]
    pub joined: bool,
}

impl ClusterFile {
    fn path(dir: &Path) -> std::path::PathBuf {
        dir.join("cluster.json")
    }

    /// Reads the cluster file of the data directory, if there is one.
    pub fn load(config: &NodeConfig) -> Result<Option<ClusterFile>, Error> {
        let path = Self::path(&config.data_dir);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::State(format!("cannot read {}: {e}", path.display()))),
        };
        let file: ClusterFile = serde_json::from_slice(&bytes).map_err(|e| {
            Error::State(format!(
                "{} is damaged ({e}); restore it or remove the data directory",
                path.display()
            ))
        })?;
        if file.node_id != config.peer.node_id {
            return Err(Error::State(format!(
                "{} belongs to node {}, not node {}: wrong --dir or --id?",
                config.data_dir.display(),
                file.node_id,
                config.peer.node_id
            )));
        }
        if !config.bootstrap.is_empty() && config.bootstrap != file.members {
            tracing::warn!("--bootstrap differs from the cluster already recorded in the data directory; using the recorded one");
        }
        Ok(Some(file))
    }

    /// The cluster file of a node founding a cluster from its bootstrap list.
    pub fn bootstrap(config: &NodeConfig) -> Result<ClusterFile, Error> {
        if config.bootstrap.is_empty() {
            return Err(Error::State(format!(
                "{} holds no cluster: give --bootstrap ID=HOST:PORT,... to form a new one, or \
                 --join HOST:PORT to join a running one",
                config.data_dir.display()
            )));
        }
        let file = ClusterFile {
            cluster_id: config.peer.cluster_id.clone(),
            node_id: config.peer.node_id,
            shards: config.shards,
            members: config.bootstrap.clone(),
            joined: false,
        };
        file.save(&config.data_dir)?;
        Ok(file)
    }

    /// Writes the file atomically (temporary file, fsync, rename, directory fsync).
    pub fn save(&self, dir: &Path) -> Result<(), Error> {
        let io = |e: std::io::Error| {
            Error::State(format!("cannot write the cluster file in {}: {e}", dir.display()))
        };
        let tmp = dir.join("cluster.json.tmp");
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| Error::State(e.to_string()))?;
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp).map_err(io)?;
            f.write_all(&bytes).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, Self::path(dir)).map_err(io)?;
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)
    }
}

/// Why a running node must stop although nobody asked it to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Dismissal {
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
async fn follow_directory(
    mut directory: watch::Receiver<Directory>,
    transport: Transport,
    mut cluster: ClusterFile,
    incarnation: Incarnation,
    data_dir: std::path::PathBuf,
    dismissed: watch::Sender<Option<Dismissal>>,
) {
    let node = NodeId(cluster.node_id);
    let mut refusals = tokio::time::interval(Duration::from_millis(500));
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
async fn register_incarnation(
    membership: MembershipService,
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
    (0..=u64::from(cluster.shards))
        .map(GroupId)
        .filter(|group| !recovered.contains_key(group))
        .map(|group| {
            if cluster.joined {
                return (group, RecoveredState::default());
            }
            let mut state = RecoveredState::bootstrap(voters.clone());
            if group == META_GROUP {
                if let Some(snapshot) = state.snapshot.as_mut() {
                    snapshot.data = Arc::new(Directory::bootstrap(&cluster.members).snapshot());
                }
            }
            (group, state)
        })
        .collect()
}

/// Runs a node until Ctrl-C or SIGTERM, until it fails, or until it has been removed from
/// the cluster.
pub async fn run_node(config: NodeConfig) -> Result<(), Error> {
    let started = Instant::now();
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| Error::State(format!("cannot create {}: {e}", config.data_dir.display())))?;
    let _lock = DataDirLock::acquire(&config.data_dir)?;
    let recorded = ClusterFile::load(&config)?;
    let identity = NodeIdentity::load_or_create(&config.data_dir, config.peer.node_id, recorded.is_some())?;
    let incarnation = identity.incarnation;
    let cluster = match (recorded, config.join) {
        (Some(file), _) => file,
        (None, Some(via)) => super::join::join_cluster(&config, via, incarnation).await?,
        (None, None) => {
            super::join::refuse_if_already_member(&config, incarnation).await?;
            ClusterFile::bootstrap(&config)?
        }
    };
    let node = NodeId(cluster.node_id);
    let disk: Arc<dyn Disk> = Arc::new(FsDisk::new());
    let (storage, recovered) = RaftStorage::open(disk, &config.data_dir, WalConfig::default())?;
    let storage = Arc::new(storage);
    let bootstrap = initial_groups(&cluster, &recovered);
    let listen_addr = *cluster
        .members
        .get(&node.0)
        .ok_or_else(|| Error::State(format!("node {node} is not in the recorded member list")))?;
    let peers =
        cluster.members.iter().filter(|(&id, _)| id != node.0).map(|(&id, &a)| (NodeId(id), a)).collect();
    let transport_config = TransportConfig {
        node_id: node,
        cluster_id: cluster.cluster_id.clone(),
        incarnation,
        listen_addr,
        peers,
        limits: TransportLimits::default(),
        snapshot_files: Some(storage.snapshot_files()),
    };
    let (transport, mut inbound) = Transport::start(transport_config).await?;
    let runtime_config = RuntimeConfig {
        node,
        tick: Duration::from_millis(config.tick_ms),
        raft: config.raft_config().map_err(|e| Error::State(e.to_string()))?,
        entries_between_snapshots: config.snapshot_entries,
        entries_kept_after_snapshot: config.snapshot_entries / 10,
        membership: config.membership_policy(),
        rng_seed: None,
        snapshots_on_loop: false,
        clock: Arc::new(SystemClock),
    };
    let outbox = Arc::new(TransportOutbox(transport.clone()));
    let runtime: Runtime<KvShard> =
        Runtime::new(runtime_config, Arc::clone(&storage), recovered, bootstrap, outbox)?;
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
    let (raft_tx, raft_rx) = mpsc::channel(RAFT_INBOX_MESSAGES_MAX);
    let (request_tx, request_rx) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut runtime_task = tokio::spawn(runtime.run(raft_rx, request_rx, stop_rx.clone()));
    let handle = NodeHandle::new(request_tx, Duration::from_millis(config.request_timeout_ms));
    let executor =
        Executor::new(node, handle.clone(), transport.clone(), u64::from(cluster.shards), leaders, traffic);
    let membership =
        MembershipService::new(node, cluster.shards, handle.clone(), transport.clone(), directory.clone());
    let (dismissed_tx, mut dismissed_rx) = watch::channel(None);
    let last_directory = directory.clone();
    tokio::spawn(register_incarnation(membership.clone(), directory.clone(), node, incarnation));
    tokio::spawn(follow_directory(
        directory,
        transport.clone(),
        cluster.clone(),
        incarnation,
        config.data_dir.clone(),
        dismissed_tx,
    ));

    let pump_executor = executor.clone();
    let pump_membership = membership.clone();
    tokio::spawn(async move {
        while let Some(event) = inbound.recv().await {
            match event {
                InboundEvent::Raft { group, msg, .. } => {
                    if raft_tx.try_send((GroupId(group), msg)).is_err() {
                        tracing::debug!("raft inbox full; message dropped (Raft retransmits)");
                    }
                }
                InboundEvent::Request { from, guest, payload, responder } => {
                    let answer = match payload.first() {
                        Some(&SHARD_REQUEST_TAG) if !guest => pump_executor.serve_forwarded(from, &payload),
                        _ => {
                            let membership = pump_membership.clone();
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

    let memory = Arc::new(MemoryLimit::new(config.maxmemory, config.maxmemory_policy));
    let report = NodeReport {
        node,
        cluster_id: cluster.cluster_id.clone(),
        peer_addr: listen_addr,
        client_addr: config.client_addr,
        handle,
        transport: transport.clone(),
        storage: Arc::clone(&storage),
        membership,
        memory: Arc::clone(&memory),
    };
    let limits = RespLimits::default();
    let settings = ServerSettings {
        clients: ClientLimits::new(&config.clients),
        bulk_bytes_max: limits.bulk_bytes_max as u64,
        memory,
        client_addr: config.client_addr,
        data_dir: config.data_dir.clone(),
    };
    settings.clients.fit_open_files_limit();
    let ctx = Arc::new(ServerContext {
        executor,
        limits,
        settings,
        stats: ServerStats::default(),
        report: report.clone(),
        started,
        started_unix_s: crate::node::runtime::wall_clock_ms() / 1000,
        clients: Arc::default(),
    });
    let client_listener = tokio::net::TcpListener::bind(config.client_addr)
        .await
        .map_err(|e| Error::Listen { role: "clients", addr: config.client_addr, reason: e.to_string() })?;
    if let Some(addr) = config.memcached_addr {
        let memcached_listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| Error::Listen {
            role: "memcached clients",
            addr,
            reason: e.to_string(),
        })?;
        let settings = super::memcached::MemcachedSettings {
            addr,
            item_bytes_max: config.memcached_item_bytes_max as usize,
        };
        tokio::spawn(super::memcached::serve(
            memcached_listener,
            Arc::clone(&ctx),
            settings,
            stop_rx.clone(),
        ));
    }
    tokio::spawn(listener::serve(client_listener, ctx, stop_rx.clone()));
    let admin_addr = config.admin_addr;
    let admin_stop = stop_rx.clone();
    tokio::spawn(async move {
        if let Err(e) = admin::serve(admin_addr, report, admin_stop).await {
            tracing::error!(addr = %admin_addr, error = %e, "admin listener failed");
        }
    });
    tracing::info!(
        node = %node, cluster = %cluster.cluster_id, peer = %listen_addr, client = %config.client_addr,
        admin = %config.admin_addr, shards = cluster.shards, "node started"
    );

    let outcome = tokio::select! {
        _ = crate::shutdown::signal() => {
            tracing::info!("shutting down");
            Ok(())
        }
        dismissal = dismissed_rx.wait_for(Option::is_some) => {
            let dismissal = dismissal.map(|d| d.clone()).unwrap_or(None);
            dismissed(node, &config, &last_directory, dismissal)
        }
        result = &mut runtime_task => match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "node runtime failed; the node stops");
                Err(e)
            }
            Err(e) => Err(Error::State(format!("node runtime crashed: {e}"))),
        },
    };
    let _ = stop_tx.send(true);
    transport.shutdown().await;
    if !runtime_task.is_finished() {
        let _ = tokio::time::timeout(Duration::from_secs(5), runtime_task).await;
    }
    outcome
}

/// How a node stops once dismissed: a clean exit if it was asked to leave, else an error
/// saying what to do.
fn dismissed(
    node: NodeId,
    config: &NodeConfig,
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
            config.data_dir.display()
        )))
    }
}

//! Starting a whole node: the node layer assembles storage, transport and the Raft runtime
//! ([`AssembledNode`]); on top of it this starts the client-facing services (the RESP listener
//! and the HTTP admin endpoints) and the answers to other members' forwarded shard operations and publications.

use super::acl::{AccessControl, AclStats};
use super::admin;
use super::client::executor::Executor;
use super::client::forward::SHARD_REQUEST_TAG;
use super::client::stats::ServerStats;
use super::context::ServerContext;
use super::listener;
use super::memory::MemoryLimit;
use super::pubsub::{ClusterPubSub, PUBSUB_MESSAGE_TAG};
use super::report::NodeReport;
use super::resp::RespLimits;
use super::settings::{ClientLimits, ServerSettings};
use super::shard::KvShard;
use crate::acl::AclChange;
use crate::config::NodeConfig;
use crate::error::Error;
use crate::node::LeaderTable;
use crate::node::{AssembledNode, DirectoryCommand, MembershipService, PeerService};
use crate::storage::wal::GroupId;
use crate::txn::resolver;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How often a node looks for old locks in the shards it leads.
const SWEEP_INTERVAL: Duration = Duration::from_millis(500);

/// Pause between attempts to record this node's ACL settings in the cluster.
const ACL_PROPOSE_RETRY_PAUSE: Duration = Duration::from_secs(1);

/// Runs a node until Ctrl-C or SIGTERM, until it fails, or until it has been removed from
/// the cluster.
pub async fn run_node(config: NodeConfig) -> Result<(), Error> {
    let started = Instant::now();
    let mut node: AssembledNode<KvShard> = AssembledNode::start(&config).await?;
    let executor = Executor::new(
        node.node,
        node.handle.clone(),
        node.transport.clone(),
        node.cluster.router(),
        node.leaders.clone(),
        node.traffic.clone(),
        node.membership.directory_updates(),
    );
    let forwarded = executor.clone();
    tokio::spawn(sweep_transactions(executor.clone(), node.leaders.clone(), node.stopping()));
    let pubsub = ClusterPubSub::new(Arc::default(), node.transport.clone());
    let published = pubsub.clone();
    node.serve_peers(vec![
        PeerService {
            tag: SHARD_REQUEST_TAG,
            serve: Box::new(move |from, request| forwarded.serve_forwarded(from, request)),
        },
        PeerService {
            tag: PUBSUB_MESSAGE_TAG,
            serve: Box::new(move |from, request| published.serve_peer(from, request)),
        },
    ]);
    let memory = Arc::new(MemoryLimit::new(config.maxmemory, config.maxmemory_policy));
    let report = NodeReport {
        node: node.node,
        cluster_id: node.cluster.cluster_id.clone(),
        peer_addr: node.peer_addr,
        client_addr: config.client_addr,
        handle: node.handle.clone(),
        transport: node.transport.clone(),
        storage: Arc::clone(&node.storage),
        membership: node.membership.clone(),
        memory: Arc::clone(&memory),
        router: node.cluster.router(),
        txns: executor.txn_stats_shared(),
        acl: Arc::new(AclStats::default()),
    };
    let access = access_control(&config, &node.membership, Arc::clone(&report.acl))?;
    tokio::spawn(propose_acl(node.membership.clone(), access.proposals().to_vec(), node.stopping()));
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
        started_unix_s: crate::node::clock::wall_clock_ms() / 1000,
        clients: Arc::default(),
        pubsub,
        scripts: Default::default(),
        tls: node.tls.clone(),
        access,
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
            node.stopping(),
        ));
    }
    tokio::spawn(listener::serve(client_listener, ctx, node.stopping()));
    let admin_addr = config.admin_addr;
    let admin_stop = node.stopping();
    let admin_token = config.admin_token.clone();
    let admin_tls = node.tls.clone();
    tokio::spawn(async move {
        if let Err(e) = admin::serve(admin_addr, report, admin_token, admin_tls, admin_stop).await {
            tracing::error!(addr = %admin_addr, error = %e, "admin listener failed");
        }
    });
    tracing::info!(
        node = %node.node, cluster = %node.cluster.cluster_id, peer = %node.peer_addr,
        client = %config.client_addr, admin = %config.admin_addr, shards = node.cluster.shards,
        routing = ?node.cluster.routing,
        "node started"
    );
    node.run().await
}

/// Resolves, now and then, the cross-shard transactions whose locks grew old in the shards
/// this node leads (their coordinator may be gone), so that no lock outlives it even when no
/// client touches its keys.
async fn sweep_transactions(executor: Executor, leaders: LeaderTable, mut stop: watch::Receiver<bool>) {
    let me = executor.node();
    loop {
        tokio::select! {
            _ = stop.wait_for(|stop| *stop) => return,
            _ = tokio::time::sleep(SWEEP_INTERVAL) => {}
        }
        for shard in executor.router().shards().map(|shard| shard.0) {
            if leaders.get(GroupId(shard)) != Some(me) {
                continue;
            }
            if let Err(e) = resolver::sweep(&executor, shard, executor.txn_stats()).await {
                tracing::debug!(shard, error = %e, "sweeping old transaction locks failed");
            }
        }
    }
}

/// The users this node enforces: the cluster's, or until it has some, those of its own
/// `aclfile` and `requirepass`.
fn access_control(
    config: &NodeConfig,
    membership: &MembershipService<KvShard>,
    stats: Arc<AclStats>,
) -> Result<AccessControl, Error> {
    let invalid = Error::State;
    let aclfile = match &config.aclfile {
        Some(path) => {
            let text = std::fs::read(path)
                .map_err(|e| invalid(format!("cannot read the ACL file {}: {e}", path.display())))?;
            Some((path.display().to_string(), text))
        }
        None => None,
    };
    let aclfile = aclfile.as_ref().map(|(path, text)| (path.as_str(), text.as_slice()));
    let requirepass = config.requirepass.as_deref().map(str::as_bytes);
    AccessControl::new(membership.directory_updates(), aclfile, requirepass, stats)
        .map_err(|e| invalid(e.to_string()))
}

/// Proposes this node's ACL settings to the meta group, each change that the directory does
/// not reflect yet, retrying until it is recorded or the node stops.
async fn propose_acl(
    membership: MembershipService<KvShard>,
    changes: Vec<AclChange>,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) {
    for change in changes {
        while AccessControl::pending(&membership.directory(), &change) {
            match membership.submit(DirectoryCommand::Acl(change.clone())).await {
                Ok(_) => break,
                Err(e) => tracing::debug!(error = %e, "ACL settings not recorded yet; retrying"),
            }
            let pause = tokio::time::sleep(ACL_PROPOSE_RETRY_PAUSE);
            tokio::select! {
                () = pause => {}
                _ = stopping.wait_for(|stop| *stop) => return,
            }
        }
    }
}

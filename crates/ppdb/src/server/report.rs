//! The node's status as one document: served as JSON at /status, as Prometheus text at
//! /metrics, and summarized in INFO and `ppdb cluster status`.

use super::memory::{rss_bytes, used_memory_bytes, MemoryLimit};
use super::shard::KvShard;
use crate::error::Error;
use crate::node::raft_storage::RaftStorage;
use crate::node::MembershipService;
use crate::node::{NodeHandle, PeerState, Router};
use crate::transport::{LinkState, Transport};
use crate::txn::stats::LATENCY_BUCKETS_US;
use crate::txn::{locks_held, TxnStats};
use ppdb_raft::{NodeId, PeerRole};
use serde::Serialize;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

/// Where a node's status comes from.
#[derive(Clone)]
pub struct NodeReport {
    /// This node.
    pub node: NodeId,
    /// Its cluster.
    pub cluster_id: String,
    /// Its peer address.
    pub peer_addr: SocketAddr,
    /// Its client address.
    pub client_addr: SocketAddr,
    /// The runtime.
    pub handle: NodeHandle<KvShard>,
    /// The transport.
    pub transport: Transport,
    /// The storage.
    pub storage: Arc<RaftStorage>,
    /// Membership changes and the directory.
    pub membership: MembershipService<KvShard>,
    /// The memory limit (`maxmemory`).
    pub memory: Arc<MemoryLimit>,
    /// How keys map to shards (for each shard's slots).
    pub router: Router,
    /// The cross-shard transactions this node coordinates and resolves.
    pub txns: Arc<TxnStats>,
    /// The client refusals of ACL checks (failed logins among them).
    pub acl: Arc<super::acl::AclStats>,
}

/// The /status document.
#[derive(Debug, Serialize)]
pub struct StatusDoc {
    /// The node itself.
    pub node: NodeDoc,
    /// Every member of the cluster, as the directory records it.
    pub members: Vec<MemberDoc>,
    /// One entry per Raft group this node holds a replica of: group 0 is the meta group,
    /// 1..=N the data shards.
    pub shards: Vec<ShardDoc>,
    /// Replicas per data shard; 0 when every node holds every shard.
    pub replication_factor: u32,
    /// Every data shard: its slots, the nodes placed to hold it, and whether it is moving.
    pub placement: Vec<PlacementDoc>,
    /// One entry per peer.
    pub peers: Vec<PeerDoc>,
    /// Write-ahead log counters.
    pub wal: WalDoc,
    /// Memory used and its limit.
    pub memory: MemoryDoc,
    /// Cross-shard transactions.
    pub transactions: TransactionsDoc,
}

/// Cross-shard transactions: what this node coordinated and resolved, and the locks its
/// replicas hold.
#[derive(Debug, Serialize)]
pub struct TransactionsDoc {
    /// Committed by this node's coordinator.
    pub committed: u64,
    /// Aborted (a changed watched key, a refusal, or conflicts through every retry).
    pub aborted: u64,
    /// Attempts refused by another transaction's lock and retried.
    pub conflicts: u64,
    /// Transactions of lost or slow coordinators this node's resolver committed.
    pub resolved_committed: u64,
    /// ... or aborted.
    pub resolved_aborted: u64,
    /// Committed out of decided (the seed's transaction success rate; 1 with none).
    pub success_rate: f64,
    /// Commit latency histogram: `[upper bound in µs (0: unbounded), count]`.
    pub latency_buckets_us: Vec<(u64, u64)>,
    /// Sum of commit latencies, µs.
    pub latency_sum_us: u64,
    /// Keys locked on this node's replicas now (prepared, not yet committed or aborted).
    pub locks_held: u64,
    /// Transactions this node is coordinating now.
    pub in_flight: Vec<InFlightDoc>,
}

/// A transaction in flight.
#[derive(Debug, Serialize)]
pub struct InFlightDoc {
    /// Its id (hex).
    pub id: String,
    /// Its state (the seed's names).
    pub state: &'static str,
    /// Milliseconds since it began.
    pub age_ms: u64,
    /// Its shards, primary first.
    pub participants: Vec<u64>,
}

impl TransactionsDoc {
    /// The document of `stats` now.
    pub fn now(stats: &TxnStats) -> TransactionsDoc {
        let counts = stats.counts();
        let bounds = LATENCY_BUCKETS_US.iter().copied().chain([0]);
        TransactionsDoc {
            committed: counts.committed,
            aborted: counts.aborted,
            conflicts: counts.conflicts,
            resolved_committed: counts.resolved_committed,
            resolved_aborted: counts.resolved_aborted,
            success_rate: counts.success_rate(),
            latency_buckets_us: bounds.zip(counts.latency_buckets.iter().copied()).collect(),
            latency_sum_us: counts.latency_sum_us,
            locks_held: locks_held(),
            in_flight: stats
                .in_flight()
                .into_iter()
                .map(|txn| InFlightDoc {
                    id: txn.id.to_string(),
                    state: txn.state.as_str(),
                    age_ms: u64::try_from(txn.age.as_millis()).unwrap_or(u64::MAX),
                    participants: txn.participants,
                })
                .collect(),
        }
    }
}

/// Memory used and its limit, as INFO's memory section has them.
#[derive(Debug, Serialize)]
pub struct MemoryDoc {
    /// Bytes of keys and values of the shards hosted here, as `maxmemory` counts them.
    pub used_memory_bytes: u64,
    /// Bytes the process holds in RAM (resident set).
    pub used_memory_rss_bytes: u64,
    /// The limit in bytes (0: none).
    pub maxmemory_bytes: u64,
    /// What happens over the limit.
    pub maxmemory_policy: &'static str,
}

impl MemoryDoc {
    /// The node's memory now.
    pub fn now(limit: &MemoryLimit) -> MemoryDoc {
        MemoryDoc {
            used_memory_bytes: used_memory_bytes(),
            used_memory_rss_bytes: rss_bytes(),
            maxmemory_bytes: limit.maxmemory_bytes(),
            maxmemory_policy: limit.policy().as_str(),
        }
    }
}

/// The node part of [`StatusDoc`].
#[derive(Debug, Serialize)]
pub struct NodeDoc {
    /// Node id.
    pub id: u64,
    /// Cluster name.
    pub cluster_id: String,
    /// Peer address.
    pub peer_addr: String,
    /// Client (RESP) address.
    pub client_addr: String,
    /// Lifecycle state (the seed's INIT, JOINING, ACTIVE, LEAVING, INACTIVE).
    pub state: PeerState,
}

/// A member of the cluster.
#[derive(Debug, Serialize)]
pub struct MemberDoc {
    /// Node id.
    pub id: u64,
    /// Peer address.
    pub peer_addr: String,
    /// Lifecycle state: the directory's, except that an ACTIVE member this node failed to
    /// reach is INACTIVE (failed, until it answers again or is removed).
    pub state: PeerState,
    /// Whether this node's connection to it is up or being opened, as opposed to failing
    /// (always true for this node itself).
    pub reachable: bool,
    /// The incarnation the directory records for it (hex), once recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incarnation: Option<String>,
}

/// Where one data shard lives.
#[derive(Debug, Serialize)]
pub struct PlacementDoc {
    /// Shard (Raft group) id.
    pub shard: u64,
    /// Its hash slots (`first-last`), when slots route keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slots: Option<String>,
    /// The nodes that hold (or are taking) a replica.
    pub replicas: Vec<u64>,
    /// Whether a move of one of its replicas is in progress.
    pub moving: bool,
}

/// One shard's Raft state on this node.
#[derive(Debug, Serialize)]
pub struct ShardDoc {
    /// Shard (Raft group) id.
    pub shard: u64,
    /// follower, candidate or leader.
    pub role: String,
    /// Current term.
    pub term: u64,
    /// Known leader (0 when none).
    pub leader: u64,
    /// Commit index.
    pub commit: u64,
    /// Applied index.
    pub applied: u64,
    /// Last log index.
    pub last_index: u64,
    /// Campaigns this node started for the shard (the seed's election frequency).
    pub elections_started: u64,
    /// Campaigns it won.
    pub elections_won: u64,
    /// Voters.
    pub voters: Vec<u64>,
    /// Learners.
    pub learners: Vec<u64>,
    /// Leader only: replication progress of each follower.
    pub followers: Vec<FollowerDoc>,
    /// Set when this node stopped applying the shard's log: the entry it could not apply and
    /// why. The shard then takes no further part on this node until it restarts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apply_stopped: Option<ApplyStoppedDoc>,
}

/// The committed entry a node could not apply.
#[derive(Debug, Serialize)]
pub struct ApplyStoppedDoc {
    /// Its log index.
    pub index: u64,
    /// Why: the state machine's error, or a panic's message.
    pub reason: String,
}

/// A follower's replication progress.
#[derive(Debug, Serialize)]
pub struct FollowerDoc {
    /// Follower id.
    pub id: u64,
    /// Highest index known replicated on it.
    #[serde(rename = "match")]
    pub matched: u64,
    /// Entries it lags behind the leader's log.
    pub lag: u64,
    /// Flow-control state.
    pub state: String,
    /// Ticks since it last answered this leader: the failure detector's input (a node silent
    /// for `failed_node_timeout_ms` is a candidate for removal).
    pub silent_ticks: u64,
}

/// A peer link.
#[derive(Debug, Serialize)]
pub struct PeerDoc {
    /// Peer id.
    pub id: u64,
    /// Whether the outbound connection is up.
    pub connected: bool,
    /// Last measured round-trip time in microseconds.
    pub rtt_us: Option<u64>,
    /// Bytes sent.
    pub bytes_sent: u64,
    /// Bytes received.
    pub bytes_received: u64,
    /// Messages sent.
    pub messages_sent: u64,
    /// Messages received.
    pub messages_received: u64,
    /// Messages dropped (queue full or peer down).
    pub dropped: u64,
}

/// WAL counters.
#[derive(Debug, Serialize)]
pub struct WalDoc {
    /// Records made durable.
    pub records_durable: u64,
    /// fdatasync calls.
    pub syncs: u64,
    /// Bytes written.
    pub bytes_written: u64,
}

impl NodeReport {
    /// Gathers the status document.
    pub async fn status(&self) -> Result<StatusDoc, Error> {
        let groups = self.handle.status().await?;
        let directory = self.membership.directory();
        let members: Vec<MemberDoc> = directory
            .members()
            .iter()
            .map(|(&id, m)| {
                let reachable = id == self.node
                    || !matches!(self.transport.link_state(id), Some(LinkState::Down(_)) | None);
                let state = match m.status.peer_state() {
                    PeerState::Active if !reachable => PeerState::Inactive,
                    other => other,
                };
                let incarnation = m.incarnation.map(|i| i.to_string());
                MemberDoc { id: id.0, peer_addr: m.peer_addr.to_string(), state, reachable, incarnation }
            })
            .collect();
        let state = match directory.get(self.node) {
            Some(member) => member.status.peer_state(),
            None => PeerState::from_memberships(self.node, groups.iter().map(|g| &g.raft.membership), false),
        };
        let placement = directory.placement();
        let slots = self.router.slot_ranges().unwrap_or_default();
        let placement_docs = self
            .router
            .shards()
            .map(|shard| {
                let placed = placement.group(shard.group());
                let replicas = match placed {
                    Some(p) => p.replicas.iter().map(|n| n.0).collect(),
                    None => directory.live_addrs().keys().map(|n| n.0).collect(),
                };
                PlacementDoc {
                    shard: shard.0,
                    slots: slots
                        .iter()
                        .find(|s| s.shard == shard)
                        .map(|s| format!("{}-{}", s.first.get(), s.last.get())),
                    replicas,
                    moving: placed.is_some_and(|p| !p.settled),
                }
            })
            .collect();
        // A shard placed on other nodes only leaves an empty replica here: not listed.
        let shards = groups
            .into_iter()
            .filter(|g| {
                g.raft.membership.contains(self.node) || placement.hosts(g.group, self.node) != Some(false)
            })
            .map(|g| (g.group, g.raft, g.elections_started, g.elections_won, g.apply_stopped))
            .map(|(group, s, elections_started, elections_won, stopped)| ShardDoc {
                shard: group.0,
                apply_stopped: stopped
                    .map(|entry| ApplyStoppedDoc { index: entry.index.0, reason: entry.reason }),
                elections_started,
                elections_won,
                role: s.role.to_string(),
                term: s.term.0,
                leader: s.leader.map_or(0, |l| l.0),
                commit: s.commit.0,
                applied: s.applied.0,
                last_index: s.last_index.0,
                voters: s.membership.voters.iter().map(|v| v.0).collect(),
                learners: s.membership.learners.iter().map(|v| v.0).collect(),
                followers: s
                    .followers
                    .iter()
                    .map(|f| FollowerDoc {
                        id: f.id.0,
                        matched: f.matched.0,
                        lag: s.last_index.0.saturating_sub(f.matched.0),
                        state: format!("{:?}", f.state).to_lowercase(),
                        silent_ticks: f.silent_ticks,
                    })
                    .collect(),
            })
            .collect();
        let peers = self
            .transport
            .stats()
            .into_iter()
            .map(|(id, p)| PeerDoc {
                id: id.0,
                connected: p.connected,
                rtt_us: p.rtt_us_last,
                bytes_sent: p.bytes_sent,
                bytes_received: p.bytes_received,
                messages_sent: p.messages_sent,
                messages_received: p.messages_received,
                dropped: p.dropped,
            })
            .collect();
        let wal = self.storage.wal().stats();
        Ok(StatusDoc {
            node: NodeDoc {
                id: self.node.0,
                cluster_id: self.cluster_id.clone(),
                peer_addr: self.peer_addr.to_string(),
                client_addr: self.client_addr.to_string(),
                state,
            },
            members,
            shards,
            replication_factor: placement.factor(),
            placement: placement_docs,
            peers,
            wal: WalDoc {
                records_durable: wal.records_durable,
                syncs: wal.syncs,
                bytes_written: wal.bytes_written,
            },
            memory: MemoryDoc::now(&self.memory),
            transactions: TransactionsDoc::now(&self.txns),
        })
    }
}

/// Where the shards live, as this node's directory says: the replication factor, the shards
/// moving, and the replicas placed on each member (the rebalancer keeps these within one of
/// each other); with the shards this node holds and leads.
fn placement_metrics(out: &mut String, doc: &StatusDoc) {
    let node = doc.node.id;
    let moving = doc.placement.iter().filter(|p| p.moving).count();
    let held = doc.shards.iter().filter(|s| s.shard != 0).count();
    let led = doc.shards.iter().filter(|s| s.shard != 0 && s.role == PeerRole::Leader.to_string()).count();
    let single: [(&str, &str, usize); 4] = [
        (
            "ppdb_replication_factor",
            "Replicas per shard (0: every node holds every shard).",
            doc.replication_factor as usize,
        ),
        ("ppdb_shards_moving", "Shards whose replicas are being moved.", moving),
        ("ppdb_shards_held", "Data shards this node holds a replica of.", held),
        ("ppdb_shards_led", "Data shards this node leads.", led),
    ];
    for (name, help, value) in single {
        let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name}{{node=\"{node}\"}} {value}\n");
    }
    let name = "ppdb_replicas_placed";
    let _ =
        write!(out, "# HELP {name} Shard replicas the placement puts on each member.\n# TYPE {name} gauge\n");
    let mut per_member: std::collections::BTreeMap<u64, usize> =
        doc.members.iter().map(|m| (m.id, 0)).collect();
    for replica in doc.placement.iter().flat_map(|p| &p.replicas) {
        *per_member.entry(*replica).or_insert(0) += 1;
    }
    for (member, count) in per_member {
        let _ = writeln!(out, "{name}{{node=\"{node}\",member=\"{member}\"}} {count}");
    }
}

/// A per-shard gauge: name, help, value.
type ShardGauge = (&'static str, &'static str, fn(&ShardDoc) -> u64);
/// A per-peer metric: name, type, help, value.
type PeerMetric = (&'static str, &'static str, &'static str, fn(&PeerDoc) -> u64);

/// Renders the status document as Prometheus text (the seed's metrics: node state, role and
/// term per shard, replication lag, peer latency and throughput).
pub fn prometheus(doc: &StatusDoc) -> String {
    let mut out = String::new();
    let node = doc.node.id;
    out.push_str(
        "# HELP ppdb_node_state 1 for the node's current lifecycle state.\n# TYPE ppdb_node_state gauge\n",
    );
    for state in ["INIT", "JOINING", "ACTIVE", "LEAVING", "INACTIVE"] {
        let v = u8::from(doc.node.state.as_str() == state);
        let _ = writeln!(out, "ppdb_node_state{{node=\"{node}\",state=\"{state}\"}} {v}");
    }
    out.push_str(
        "# HELP ppdb_member_state 1 for each member's lifecycle state as this node sees it.\n# TYPE ppdb_member_state gauge\n",
    );
    for member in &doc.members {
        for state in ["JOINING", "ACTIVE", "LEAVING", "INACTIVE"] {
            let v = u8::from(member.state.as_str() == state);
            let _ = writeln!(
                out,
                "ppdb_member_state{{node=\"{node}\",member=\"{}\",state=\"{state}\"}} {v}",
                member.id
            );
        }
    }
    let counters: [ShardGauge; 2] = [
        ("ppdb_elections_started_total", "Campaigns this node started for the shard.", |s| {
            s.elections_started
        }),
        ("ppdb_elections_won_total", "Campaigns this node won for the shard.", |s| s.elections_won),
    ];
    for (name, help, value) in counters {
        let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} counter\n");
        for shard in &doc.shards {
            let _ = writeln!(out, "{name}{{node=\"{node}\",shard=\"{}\"}} {}", shard.shard, value(shard));
        }
    }
    let gauges: [ShardGauge; 5] = [
        ("ppdb_raft_is_leader", "1 if this node leads the shard.", |s| {
            u64::from(s.role == PeerRole::Leader.to_string())
        }),
        ("ppdb_raft_term", "Current Raft term of the shard.", |s| s.term),
        ("ppdb_raft_commit_index", "Commit index of the shard.", |s| s.commit),
        ("ppdb_raft_applied_index", "Applied index of the shard.", |s| s.applied),
        ("ppdb_raft_last_index", "Last log index of the shard.", |s| s.last_index),
    ];
    for (name, help, value) in gauges {
        let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n");
        for shard in &doc.shards {
            let _ = writeln!(out, "{name}{{node=\"{node}\",shard=\"{}\"}} {}", shard.shard, value(shard));
        }
    }
    placement_metrics(&mut out, doc);
    let _ = write!(out, "# HELP ppdb_replication_lag_entries Entries a follower lags behind the leader.\n# TYPE ppdb_replication_lag_entries gauge\n");
    for shard in &doc.shards {
        for f in &shard.followers {
            let _ = writeln!(
                out,
                "ppdb_replication_lag_entries{{node=\"{node}\",shard=\"{}\",follower=\"{}\"}} {}",
                shard.shard, f.id, f.lag
            );
        }
    }
    let peer_metrics: [PeerMetric; 6] = [
        ("ppdb_peer_rtt_microseconds", "gauge", "Last measured round-trip time to the peer.", |p| {
            p.rtt_us.unwrap_or(0)
        }),
        ("ppdb_peer_bytes_sent_total", "counter", "Bytes sent to the peer.", |p| p.bytes_sent),
        ("ppdb_peer_bytes_received_total", "counter", "Bytes received from the peer.", |p| p.bytes_received),
        ("ppdb_peer_messages_sent_total", "counter", "Messages sent to the peer.", |p| p.messages_sent),
        ("ppdb_peer_messages_received_total", "counter", "Messages received from the peer.", |p| {
            p.messages_received
        }),
        ("ppdb_peer_dropped_total", "counter", "Messages to the peer dropped (queue full or down).", |p| {
            p.dropped
        }),
    ];
    for (name, kind, help, value) in peer_metrics {
        let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
        for peer in &doc.peers {
            let _ = writeln!(out, "{name}{{node=\"{node}\",peer=\"{}\"}} {}", peer.id, value(peer));
        }
    }
    let _ = write!(
        out,
        "# HELP ppdb_wal_syncs_total fdatasync calls of the write-ahead log.\n# TYPE ppdb_wal_syncs_total counter\nppdb_wal_syncs_total{{node=\"{node}\"}} {}\n\
         # HELP ppdb_wal_records_durable_total Records made durable.\n# TYPE ppdb_wal_records_durable_total counter\nppdb_wal_records_durable_total{{node=\"{node}\"}} {}\n",
        doc.wal.syncs, doc.wal.records_durable
    );
    let memory: [(&str, &str, u64); 3] = [
        (
            "ppdb_used_memory_bytes",
            "Bytes of keys and values held, as maxmemory counts them.",
            doc.memory.used_memory_bytes,
        ),
        ("ppdb_used_memory_rss_bytes", "Bytes the process holds in RAM.", doc.memory.used_memory_rss_bytes),
        ("ppdb_maxmemory_bytes", "The memory limit (0: none).", doc.memory.maxmemory_bytes),
    ];
    for (name, help, value) in memory {
        let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name}{{node=\"{node}\"}} {value}\n");
    }
    transactions_metrics(&mut out, node, &doc.transactions);
    out
}

/// The cross-shard transaction metrics: outcomes, success rate, commit latency, locks.
fn transactions_metrics(out: &mut String, node: u64, txns: &TransactionsDoc) {
    let name = "ppdb_transactions_total";
    let _ = write!(out, "# HELP {name} Cross-shard transactions by outcome.\n# TYPE {name} counter\n");
    for (outcome, count) in [
        ("committed", txns.committed),
        ("aborted", txns.aborted),
        ("conflict", txns.conflicts),
        ("resolved_committed", txns.resolved_committed),
        ("resolved_aborted", txns.resolved_aborted),
    ] {
        let _ = writeln!(out, "{name}{{node=\"{node}\",outcome=\"{outcome}\"}} {count}");
    }
    let _ = write!(
        out,
        "# HELP ppdb_transaction_success_rate Committed out of decided cross-shard transactions.\n\
         # TYPE ppdb_transaction_success_rate gauge\nppdb_transaction_success_rate{{node=\"{node}\"}} {}\n\
         # HELP ppdb_transaction_locks_held Keys locked by prepared transactions on this node's replicas.\n\
         # TYPE ppdb_transaction_locks_held gauge\nppdb_transaction_locks_held{{node=\"{node}\"}} {}\n",
        txns.success_rate, txns.locks_held
    );
    let name = "ppdb_transaction_commit_seconds";
    let _ =
        write!(out, "# HELP {name} Commit latency of cross-shard transactions.\n# TYPE {name} histogram\n");
    let mut cumulative = 0;
    for &(bound_us, count) in &txns.latency_buckets_us {
        cumulative += count;
        let le = if bound_us == 0 { "+Inf".to_string() } else { format!("{}", bound_us as f64 / 1e6) };
        let _ = writeln!(out, "{name}_bucket{{node=\"{node}\",le=\"{le}\"}} {cumulative}");
    }
    let _ = writeln!(out, "{name}_sum{{node=\"{node}\"}} {}", txns.latency_sum_us as f64 / 1e6);
    let _ = writeln!(out, "{name}_count{{node=\"{node}\"}} {cumulative}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_carries_the_seed_metrics() {
        let doc = StatusDoc {
            node: NodeDoc {
                id: 1,
                cluster_id: "c".into(),
                peer_addr: "127.0.0.1:7101".into(),
                client_addr: "127.0.0.1:7001".into(),
                state: PeerState::Active,
            },
            members: vec![MemberDoc {
                id: 2,
                peer_addr: "127.0.0.1:7102".into(),
                state: PeerState::Leaving,
                reachable: true,
                incarnation: None,
            }],
            shards: vec![ShardDoc {
                shard: 3,
                role: "leader".into(),
                term: 4,
                leader: 1,
                commit: 10,
                applied: 10,
                last_index: 12,
                elections_started: 2,
                elections_won: 1,
                voters: vec![1, 2, 3],
                learners: vec![],
                followers: vec![FollowerDoc {
                    id: 2,
                    matched: 9,
                    lag: 3,
                    state: "replicate".into(),
                    silent_ticks: 0,
                }],
                apply_stopped: None,
            }],
            replication_factor: 3,
            placement: vec![
                PlacementDoc { shard: 3, slots: None, replicas: vec![1, 2, 3], moving: true },
                PlacementDoc { shard: 4, slots: None, replicas: vec![1, 3, 4], moving: false },
            ],
            peers: vec![PeerDoc {
                id: 2,
                connected: true,
                rtt_us: Some(150),
                bytes_sent: 100,
                bytes_received: 90,
                messages_sent: 5,
                messages_received: 4,
                dropped: 0,
            }],
            wal: WalDoc { records_durable: 7, syncs: 3, bytes_written: 700 },
            memory: MemoryDoc {
                used_memory_bytes: 2048,
                used_memory_rss_bytes: 8192,
                maxmemory_bytes: 4096,
                maxmemory_policy: "noeviction",
            },
            transactions: TransactionsDoc::now(&TxnStats::default()),
        };
        let text = prometheus(&doc);
        for line in [
            "ppdb_node_state{node=\"1\",state=\"ACTIVE\"} 1",
            "ppdb_member_state{node=\"1\",member=\"2\",state=\"LEAVING\"} 1",
            "ppdb_raft_is_leader{node=\"1\",shard=\"3\"} 1",
            "ppdb_raft_term{node=\"1\",shard=\"3\"} 4",
            "ppdb_transactions_total{node=\"1\",outcome=\"committed\"} 0",
            "ppdb_transaction_success_rate{node=\"1\"} 1",
            "ppdb_transaction_commit_seconds_bucket{node=\"1\",le=\"+Inf\"} 0",
            "ppdb_elections_started_total{node=\"1\",shard=\"3\"} 2",
            "ppdb_elections_won_total{node=\"1\",shard=\"3\"} 1",
            "ppdb_replication_lag_entries{node=\"1\",shard=\"3\",follower=\"2\"} 3",
            "ppdb_peer_rtt_microseconds{node=\"1\",peer=\"2\"} 150",
            "ppdb_peer_bytes_sent_total{node=\"1\",peer=\"2\"} 100",
            "ppdb_wal_syncs_total{node=\"1\"} 3",
            "ppdb_used_memory_bytes{node=\"1\"} 2048",
            "ppdb_used_memory_rss_bytes{node=\"1\"} 8192",
            "ppdb_maxmemory_bytes{node=\"1\"} 4096",
            "ppdb_replication_factor{node=\"1\"} 3",
            "ppdb_shards_moving{node=\"1\"} 1",
            "ppdb_shards_led{node=\"1\"} 1",
            "ppdb_replicas_placed{node=\"1\",member=\"1\"} 2",
            "ppdb_replicas_placed{node=\"1\",member=\"4\"} 1",
        ] {
            assert!(text.contains(line), "missing `{line}` in:\n{text}");
        }
    }
}

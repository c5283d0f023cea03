//! Node configuration: the seed's `ppdb_peer_config_t` (host, port, cluster_id, node_id,
//! heartbeat_interval, election_timeout) plus where the node keeps its data and listens.
//!
//! Values come from, in increasing precedence: defaults, a TOML file (`--config`), environment
//! variables (`PPDB_*`) and command-line flags. [`NodeConfig::validate`] checks the result and
//! says which setting is wrong and why.

use crate::node::MembershipPolicy;
use ppdb_raft::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

mod tls;
pub use tls::{check_join_token, TlsConfig, JOIN_TOKEN_BYTES_MAX};

/// Default number of data shards chosen at bootstrap: one. Until transactions span shards, one
/// shard is what makes every multi-key command and every `MULTI` atomic, as Redis clients
/// assume; and more shards add no throughput today (every node hosts every shard and runs all
/// of them on one loop), while each group costs its own Ready, WAL records and messages every
/// round (64 clients spread over `ppdb local`: 1-4 shards 41.8-43.4k writes/s, 8 shards 38.1k;
/// see docs/benchmarks.md).
pub const SHARDS_DEFAULT: u32 = 1;
/// Most data shards a cluster may have.
pub const SHARDS_MAX: u32 = 1024;
/// Default replication factor chosen at bootstrap: every shard on 3 nodes, which survives the
/// loss of any one of them, and lets a cluster of more nodes hold more data than one node.
pub const REPLICAS_DEFAULT: u32 = 3;

/// The seed's node configuration: how peers reach this node and how Raft is timed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// Host (address) peers use to reach this node.
    pub host: String,
    /// Port peers use to reach this node.
    pub port: u16,
    /// Name of the cluster; peers of another cluster are refused.
    pub cluster_id: String,
    /// This node's id, unique in the cluster, not 0.
    pub node_id: u64,
    /// How often a leader sends heartbeats, in milliseconds.
    pub heartbeat_interval_ms: u64,
    /// How long a follower waits for a leader before campaigning, in milliseconds.
    pub election_timeout_ms: u64,
}

impl Default for PeerConfig {
    fn default() -> Self {
        PeerConfig {
            host: "127.0.0.1".into(),
            port: 7101,
            cluster_id: "ppdb".into(),
            node_id: 1,
            heartbeat_interval_ms: 100,
            election_timeout_ms: 1000,
        }
    }
}

/// Everything a node needs to start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// The seed's peer configuration.
    pub peer: PeerConfig,
    /// Directory holding the node's write-ahead log, snapshots and cluster file.
    pub data_dir: PathBuf,
    /// Address of the Redis-protocol listener.
    pub client_addr: SocketAddr,
    /// Address of the HTTP admin listener (/metrics, /health, /status).
    pub admin_addr: SocketAddr,
    /// Address of the memcached-protocol listener; none (the default) serves no memcached.
    pub memcached_addr: Option<SocketAddr>,
    /// The largest value a memcached storage command may carry (memcached's `-I`), default
    /// 1 MiB, at most the largest value PPDB stores.
    pub memcached_item_bytes_max: u64,
    /// Number of data shards, fixed when the cluster is bootstrapped.
    pub shards: u32,
    /// Replicas per data shard, fixed when the cluster is bootstrapped (1 to
    /// [`crate::node::placement::REPLICAS_MAX`]); a cluster of fewer nodes puts a replica of
    /// every shard on each.
    pub replicas: u32,
    /// Length of one Raft tick in milliseconds (timeouts are whole ticks).
    pub tick_ms: u64,
    /// How long a client request may wait for commit or a read confirmation.
    pub request_timeout_ms: u64,
    /// Entries applied between two snapshots of a shard, at least; a shard whose state is
    /// larger than the log written since its last snapshot waits until that log is as large
    /// (up to 20 times this many entries), so snapshots of a large state stay rare.
    pub snapshot_entries: u64,
    /// Founding members' peer addresses, when bootstrapping a new cluster.
    #[serde(with = "member_map")]
    pub bootstrap: BTreeMap<u64, SocketAddr>,
    /// Peer address of any member of a running cluster to join through (first start only).
    pub join: Option<SocketAddr>,
    /// How long a member may be unreachable before the cluster removes it (when that keeps a
    /// safe quorum: at least 3 active members remain, a majority of them reachable); 0 never
    /// removes a node automatically. Default 5 minutes.
    pub failed_node_timeout_ms: u64,
    /// Window over which the meta group's leader counts where client requests enter the
    /// cluster: when at least two thirds of them came through one other node, leadership moves
    /// there, saving each request a forwarding round trip (docs/configuration.md). 0 leaves
    /// leadership where elections put it. Default 2 seconds.
    pub follow_clients_ms: u64,
    /// Limits on client connections (`[clients]`), as Redis has them.
    pub clients: ClientConfig,
    /// Most bytes of keys and values the shards on this node may hold before writes that
    /// need memory are refused (Redis's `maxmemory`: a number of bytes, or with a unit such as
    /// `100mb` or `1gb`); 0, the default, sets no limit.
    #[serde(with = "memory_bytes")]
    pub maxmemory: u64,
    /// What happens over `maxmemory` (Redis's `maxmemory-policy`): only `noeviction`, which
    /// refuses the writes and evicts nothing.
    pub maxmemory_policy: MaxMemoryPolicy,
    /// TLS on every port (`[tls]`).
    pub tls: TlsConfig,
    /// The secret a node without TLS presents to join the cluster, and that this node asks of
    /// nodes joining through it (`--join-token`); none: the one in the data directory, or a
    /// new one written there (docs/security-tls.md).
    pub join_token: Option<String>,
    /// The `default` user's password (Redis's `requirepass`); none leaves it as the ACL
    /// users say (open, if nothing configured them).
    pub requirepass: Option<String>,
    /// An ACL file in Redis's syntax (`user <name> on >pass ~* +@all`), loaded at start and
    /// proposed to the cluster (Redis's `aclfile`).
    pub aclfile: Option<PathBuf>,
    /// Listen for clients on a non-loopback address without a password or ACL file, and serve
    /// memcached (which has no authentication) on one.
    pub insecure: bool,
    /// The token the admin endpoints that change the cluster require (`Authorization: Bearer
    /// <token>`); none refuses every such request.
    pub admin_token: Option<String>,
}

/// Redis's `maxmemory-policy`, of which PPDB has the one that evicts nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum MaxMemoryPolicy {
    /// Over the limit, writes that need memory are refused with `-OOM`; reads and deletes work.
    #[default]
    NoEviction,
}

impl MaxMemoryPolicy {
    /// The policy's name, as Redis spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            MaxMemoryPolicy::NoEviction => "noeviction",
        }
    }
}

/// Limits on the Redis-protocol clients; each has Redis's name in CONFIG GET/SET
/// (docs/configuration.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientConfig {
    /// Most clients connected at once (`maxclients`, default 10000); more are refused.
    pub maxclients: u64,
    /// Seconds a client may stay idle before it is closed (`timeout`; 0, the default, never).
    pub idle_timeout_s: u64,
    /// Seconds a client may leave its replies unread before it is closed
    /// (`client-write-timeout`; default 60; 0 never).
    pub write_timeout_s: u64,
    /// Most bytes of one request, received but not yet run (`client-query-buffer-limit`).
    pub query_buffer_bytes_max: u64,
    /// Unsent reply bytes that close a client at once (`client-output-buffer-limit normal`
    /// hard limit; 0: none).
    pub output_buffer_hard_bytes: u64,
    /// Unsent reply bytes that close a client when they last `output_buffer_soft_s` (soft
    /// limit; 0: none).
    pub output_buffer_soft_bytes: u64,
    /// Seconds a client may stay over the soft limit.
    pub output_buffer_soft_s: u64,
}

impl Default for ClientConfig {
    fn default() -> Self {
        let value_bytes_max = crate::kv::command::VALUE_BYTES_MAX;
        ClientConfig {
            maxclients: 10_000,
            idle_timeout_s: 0,
            write_timeout_s: 60,
            // Redis's ratio: 1 GiB against a 512 MiB bulk; room for a key and a value.
            query_buffer_bytes_max: 2 * value_bytes_max,
            // Any reply PPDB can build (a large MGET or KEYS) can always be read; the pipeline
            // stops while 1 MiB is unsent, so only one such reply is ever held per client.
            output_buffer_hard_bytes: crate::limits::REPLY_BYTES_MAX as u64
                + OUTPUT_BUFFER_REPLY_OVERHEAD_BYTES,
            output_buffer_soft_bytes: value_bytes_max / 4,
            output_buffer_soft_s: 60,
        }
    }
}

/// Room above the largest reply in the default hard output limit (the reply's framing, a few
/// small replies around it).
const OUTPUT_BUFFER_REPLY_OVERHEAD_BYTES: u64 = 1024 * 1024;

impl ClientConfig {
    /// Checks the client limits, naming the first one that is wrong.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.maxclients == 0 {
            return Err(invalid("clients.maxclients", "must be at least 1"));
        }
        if self.query_buffer_bytes_max < crate::kv::command::VALUE_BYTES_MAX {
            return Err(invalid(
                "clients.query_buffer_bytes_max",
                "must be at least the largest value (proto-max-bulk-len)",
            ));
        }
        if self.output_buffer_hard_bytes != 0 && self.output_buffer_soft_bytes > self.output_buffer_hard_bytes
        {
            return Err(invalid("clients.output_buffer_soft_bytes", "must not exceed the hard limit"));
        }
        Ok(())
    }
}

impl std::str::FromStr for MaxMemoryPolicy {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        if name.eq_ignore_ascii_case("noeviction") {
            Ok(MaxMemoryPolicy::NoEviction)
        } else {
            Err(format!(
                "`{name}` is not supported: PPDB evicts no keys yet, so the only policy is \
                 `noeviction` (over maxmemory, writes that need memory are refused)"
            ))
        }
    }
}

impl TryFrom<String> for MaxMemoryPolicy {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        name.parse()
    }
}

impl From<MaxMemoryPolicy> for String {
    fn from(policy: MaxMemoryPolicy) -> String {
        policy.as_str().to_string()
    }
}

/// Reads a memory size as Redis does: digits, then an optional unit, any case: `b`, `k`
/// (1000), `kb` (1024), `m`, `mb`, `g`, `gb`.
pub fn parse_memory_bytes(text: &str) -> Result<u64, String> {
    let lower = text.trim().to_ascii_lowercase();
    let digits_end = lower.find(|c: char| !c.is_ascii_digit()).unwrap_or(lower.len());
    let (digits, unit) = lower.split_at(digits_end);
    let multiplier: u64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return Err(format!("`{text}` is not a memory size (a number of bytes, or e.g. 100mb, 1gb)")),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .ok_or_else(|| format!("`{text}` is not a memory size (a number of bytes, or e.g. 100mb, 1gb)"))
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            peer: PeerConfig::default(),
            data_dir: PathBuf::from("ppdb-data/node-1"),
            client_addr: SocketAddr::from(([127, 0, 0, 1], 7001)),
            admin_addr: SocketAddr::from(([127, 0, 0, 1], 7201)),
            memcached_addr: None,
            memcached_item_bytes_max: crate::server::memcached::parse::ITEM_BYTES_MAX_DEFAULT as u64,
            shards: SHARDS_DEFAULT,
            replicas: REPLICAS_DEFAULT,
            tick_ms: 10,
            request_timeout_ms: 5000,
            snapshot_entries: 50_000,
            bootstrap: BTreeMap::new(),
            join: None,
            failed_node_timeout_ms: 300_000,
            follow_clients_ms: 2_000,
            clients: ClientConfig::default(),
            maxmemory: 0,
            maxmemory_policy: MaxMemoryPolicy::NoEviction,
            tls: TlsConfig::default(),
            join_token: None,
            requirepass: None,
            aclfile: None,
            insecure: false,
            admin_token: None,
        }
    }
}

/// A configuration that cannot work, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {setting}: {reason}")]
pub struct ConfigError {
    /// The offending setting, as named in the TOML file.
    pub setting: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

fn invalid(setting: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError { setting, reason: reason.into() }
}

impl NodeConfig {
    /// The secure default: no client listener on a non-loopback address without a password
    /// or an ACL file, no admin listener there without an admin token or TLS (whose client
    /// certificates are admin credentials), and no memcached listener there at all (memcached's text protocol has
    /// no authentication), unless `insecure` says so.
    fn validate_exposure(&self) -> Result<(), ConfigError> {
        if self.insecure {
            return Ok(());
        }
        let has_auth = self.requirepass.as_deref().is_some_and(|p| !p.is_empty()) || self.aclfile.is_some();
        if !has_auth && !self.client_addr.ip().is_loopback() {
            return Err(invalid(
                "client_addr",
                format!(
                    "refusing to serve clients on {} without authentication: set --requirepass or \
                     --aclfile, or pass --insecure to accept any client that can reach it",
                    self.client_addr
                ),
            ));
        }
        // With TLS, a client certificate of the cluster CA is an admin credential.
        let has_admin_credential = self.admin_token.is_some() || self.tls.cert_file.is_some();
        if !has_admin_credential && !self.admin_addr.ip().is_loopback() {
            return Err(invalid(
                "admin_addr",
                format!(
                    "refusing to serve the admin endpoints on {} without an admin credential: set \
                     --admin-token or TLS certificates (--tls-cert-file, --tls-key-file, \
                     --tls-ca-cert-file), or pass --insecure",
                    self.admin_addr
                ),
            ));
        }
        if let Some(addr) = self.memcached_addr.filter(|a| !a.ip().is_loopback()) {
            return Err(invalid(
                "memcached_addr",
                format!(
                    "refusing to serve memcached on {addr}: its protocol has no authentication; \
                     listen on a loopback address, or pass --insecure"
                ),
            ));
        }
        Ok(())
    }

    /// Reads a TOML configuration file.
    pub fn from_toml(text: &str) -> Result<NodeConfig, ConfigError> {
        toml::from_str(text).map_err(|e| invalid("file", e.to_string()))
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        NodeId(self.peer.node_id)
    }

    /// The peer address this node listens on and announces (`[peer] host:port`, resolved).
    pub fn peer_addr(&self) -> Result<SocketAddr, ConfigError> {
        use std::net::ToSocketAddrs;
        let text = format!("{}:{}", self.peer.host, self.peer.port);
        text.to_socket_addrs()
            .map_err(|e| invalid("peer.host", format!("cannot resolve `{text}`: {e}")))?
            .next()
            .ok_or_else(|| invalid("peer.host", format!("`{text}` resolves to no address")))
    }

    /// How group memberships follow the directory: the failure timeout in ticks, a floor of 3
    /// voters for automatic removal, and the client traffic window in ticks.
    pub fn membership_policy(&self) -> MembershipPolicy {
        let tick_ms = self.tick_ms.max(1);
        MembershipPolicy {
            failed_after_ticks: (self.failed_node_timeout_ms > 0)
                .then(|| self.failed_node_timeout_ms / tick_ms),
            follow_clients_ticks: (self.follow_clients_ms > 0)
                .then(|| (self.follow_clients_ms / tick_ms).max(1)),
            ..MembershipPolicy::default()
        }
    }

    /// The Raft settings derived from the seed's millisecond timeouts.
    pub fn raft_config(&self) -> Result<ppdb_raft::Config, ConfigError> {
        let config = ppdb_raft::Config::from_millis(
            self.node_id(),
            self.tick_ms,
            self.peer.heartbeat_interval_ms,
            self.peer.election_timeout_ms,
        )
        .map_err(|e| invalid("peer.election_timeout_ms", e.to_string()))?;
        // Append messages are cut by bytes so that each fits a peer frame (crate::limits).
        Ok(ppdb_raft::Config { append_bytes_max: crate::limits::APPEND_BYTES_MAX, ..config })
    }

    /// Checks every setting, naming the first one that is wrong.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.tls.files()?;
        if let Some(token) = &self.join_token {
            check_join_token(token)?;
        }
        self.validate_exposure()?;
        let p = &self.peer;
        if p.node_id == 0 {
            return Err(invalid("peer.node_id", "must be at least 1"));
        }
        if p.cluster_id.is_empty() || p.cluster_id.len() > 64 {
            return Err(invalid("peer.cluster_id", "must be 1 to 64 characters"));
        }
        if self.tick_ms == 0 || self.tick_ms > p.heartbeat_interval_ms {
            return Err(invalid("tick_ms", "must be at least 1 and at most heartbeat_interval_ms"));
        }
        if p.election_timeout_ms < 3 * p.heartbeat_interval_ms {
            return Err(invalid(
                "peer.election_timeout_ms",
                format!(
                    "{} ms must be at least 3 heartbeat intervals ({} ms), or followers campaign \
                     between the heartbeats of a healthy leader",
                    p.election_timeout_ms,
                    3 * p.heartbeat_interval_ms
                ),
            ));
        }
        self.raft_config()?;
        if self.shards == 0 || self.shards > SHARDS_MAX {
            return Err(invalid("shards", format!("must be between 1 and {SHARDS_MAX}")));
        }
        let replicas_max = crate::node::placement::REPLICAS_MAX;
        if self.replicas == 0 || self.replicas > replicas_max {
            return Err(invalid("replicas", format!("must be between 1 and {replicas_max}")));
        }
        if self.request_timeout_ms < p.election_timeout_ms {
            return Err(invalid("request_timeout_ms", "must be at least the election timeout"));
        }
        if self.snapshot_entries < 100 {
            return Err(invalid("snapshot_entries", "must be at least 100"));
        }
        if !self.bootstrap.is_empty() && !self.bootstrap.contains_key(&p.node_id) {
            return Err(invalid(
                "bootstrap",
                format!("the member list must include this node ({})", p.node_id),
            ));
        }
        if self.bootstrap.contains_key(&0) {
            return Err(invalid("bootstrap", "node id 0 is reserved"));
        }
        if self.join.is_some() && !self.bootstrap.is_empty() {
            return Err(invalid("join", "a node either bootstraps a new cluster or joins one, not both"));
        }
        self.clients.validate()?;
        if self.memcached_item_bytes_max == 0
            || self.memcached_item_bytes_max > crate::limits::VALUE_BYTES_MAX as u64
        {
            return Err(invalid(
                "memcached_item_bytes_max",
                format!("must be between 1 and the largest value, {} bytes", crate::limits::VALUE_BYTES_MAX),
            ));
        }
        if self.failed_node_timeout_ms != 0 && self.failed_node_timeout_ms < 3 * p.election_timeout_ms {
            return Err(invalid(
                "failed_node_timeout_ms",
                "must be 0 (never remove automatically) or at least 3 election timeouts",
            ));
        }
        Ok(())
    }
}

/// `maxmemory` in TOML: a number of bytes, or a string with Redis's units (`"100mb"`).
mod memory_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the number of bytes.
    pub fn serialize<S: Serializer>(bytes: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(*bytes)
    }

    /// Reads a number, or a string such as `"1gb"`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Size {
            Bytes(u64),
            Text(String),
        }
        match Size::deserialize(d)? {
            Size::Bytes(bytes) => Ok(bytes),
            Size::Text(text) => super::parse_memory_bytes(&text).map_err(serde::de::Error::custom),
        }
    }
}

/// TOML keys are strings: the member map is written `1 = "host:port"` and read back as ids.
mod member_map {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;
    use std::net::SocketAddr;

    /// Writes ids as string keys.
    pub fn serialize<S: Serializer>(map: &BTreeMap<u64, SocketAddr>, s: S) -> Result<S::Ok, S::Error> {
        let text: BTreeMap<String, SocketAddr> = map.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        text.serialize(s)
    }

    /// Reads string keys back as ids, refusing non-numbers.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<u64, SocketAddr>, D::Error> {
        let text = BTreeMap::<String, SocketAddr>::deserialize(d)?;
        text.into_iter()
            .map(|(k, v)| {
                k.parse::<u64>()
                    .map(|id| (id, v))
                    .map_err(|_| D::Error::custom(format!("`{k}` is not a node id")))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        NodeConfig::default().validate().unwrap();
    }

    #[test]
    fn election_timeout_must_exceed_heartbeats() {
        let mut c = NodeConfig::default();
        c.peer.election_timeout_ms = 200;
        let err = c.validate().unwrap_err();
        assert_eq!(err.setting, "peer.election_timeout_ms");
        assert!(err.to_string().contains("at least 3 heartbeat intervals"), "{err}");
    }

    #[test]
    fn memcached_is_off_by_default_and_its_item_limit_is_bounded() {
        let default = NodeConfig::default();
        assert_eq!((default.memcached_addr, default.memcached_item_bytes_max), (None, 1024 * 1024));
        let c = NodeConfig::from_toml(
            "memcached_addr = \"127.0.0.1:11211\"\nmemcached_item_bytes_max = 4194304\n",
        )
        .unwrap();
        assert_eq!(c.memcached_addr, Some(SocketAddr::from(([127, 0, 0, 1], 11211))));
        assert!(c.validate().is_ok());
        for bytes in [0, crate::limits::VALUE_BYTES_MAX as u64 + 1] {
            let c = NodeConfig { memcached_item_bytes_max: bytes, ..NodeConfig::default() };
            assert_eq!(c.validate().map_err(|e| e.setting), Err("memcached_item_bytes_max"));
        }
    }

    #[test]
    fn toml_file_overrides_defaults_and_rejects_typos() {
        let c = NodeConfig::from_toml("shards = 4\n[peer]\nhost = \"10.0.0.1\"\nport = 9000\ncluster_id = \"prod\"\nnode_id = 2\nheartbeat_interval_ms = 50\nelection_timeout_ms = 500\n").unwrap();
        assert_eq!((c.shards, c.peer.node_id, c.peer.port), (4, 2, 9000));
        assert!(NodeConfig::from_toml("shardz = 4").is_err());
    }

    #[test]
    fn the_documented_example_file_parses() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/configuration.md"))
                .expect("docs/configuration.md");
        let start = text.find("```toml\n").expect("a toml block") + "```toml\n".len();
        let end = start + text[start..].find("```").expect("end of block");
        let c = NodeConfig::from_toml(&text[start..end]).unwrap();
        c.validate().unwrap();
        assert_eq!(c.bootstrap.len(), 3);
        assert_eq!(c.peer.cluster_id, "prod");
    }

    #[test]
    fn a_public_address_needs_credentials_or_insecure() {
        let public = NodeConfig { client_addr: "0.0.0.0:6379".parse().unwrap(), ..NodeConfig::default() };
        let refused = public.validate().unwrap_err();
        assert!(
            refused.reason.contains("--requirepass") && refused.reason.contains("--insecure"),
            "{refused}"
        );
        let with_password = NodeConfig { requirepass: Some("pw".into()), ..public.clone() };
        with_password.validate().unwrap();
        NodeConfig { requirepass: Some(String::new()), ..public.clone() }.validate().unwrap_err();
        NodeConfig { insecure: true, ..public.clone() }.validate().unwrap();
        let memcached =
            NodeConfig { memcached_addr: Some("10.0.0.1:11211".parse().unwrap()), ..with_password };
        assert_eq!(memcached.validate().unwrap_err().setting, "memcached_addr");
        let admin = NodeConfig { admin_addr: "0.0.0.0:7201".parse().unwrap(), ..NodeConfig::default() };
        assert_eq!(admin.validate().unwrap_err().setting, "admin_addr");
        NodeConfig { admin_token: Some("t".into()), ..admin.clone() }.validate().unwrap();
        let tls = TlsConfig {
            cert_file: Some("n.crt".into()),
            key_file: Some("n.key".into()),
            ca_cert_file: Some("ca.crt".into()),
            ..TlsConfig::default()
        };
        NodeConfig { tls, ..admin }.validate().expect("a certificate of the CA is an admin credential");
    }

    #[test]
    fn join_excludes_bootstrap_and_the_failure_timeout_outlasts_elections() {
        let mut c = NodeConfig { join: Some("127.0.0.1:7101".parse().unwrap()), ..NodeConfig::default() };
        c.validate().unwrap();
        c.bootstrap.insert(1, "127.0.0.1:7101".parse().unwrap());
        assert_eq!(c.validate().unwrap_err().setting, "join");
        let short = NodeConfig { failed_node_timeout_ms: 1000, ..NodeConfig::default() };
        assert_eq!(short.validate().unwrap_err().setting, "failed_node_timeout_ms");
        let never = NodeConfig { failed_node_timeout_ms: 0, ..NodeConfig::default() };
        never.validate().unwrap();
        assert_eq!(never.membership_policy().failed_after_ticks, None);
        assert_eq!(NodeConfig::default().membership_policy().failed_after_ticks, Some(30_000));
    }

    #[test]
    fn maxmemory_reads_redis_units_and_only_the_noeviction_policy() {
        assert_eq!(parse_memory_bytes("0"), Ok(0));
        assert_eq!(parse_memory_bytes("100mb"), Ok(100 * 1024 * 1024));
        assert_eq!(parse_memory_bytes("1GB"), Ok(1024 * 1024 * 1024));
        assert_eq!(parse_memory_bytes("2k"), Ok(2000));
        for bad in ["", "-1", "1.5gb", "12xb", "99999999999999999999gb"] {
            assert!(parse_memory_bytes(bad).is_err(), "{bad}");
        }
        let c = NodeConfig::from_toml("maxmemory = \"1gb\"\nmaxmemory_policy = \"noeviction\"").unwrap();
        assert_eq!((c.maxmemory, c.maxmemory_policy), (1 << 30, MaxMemoryPolicy::NoEviction));
        assert_eq!(NodeConfig::from_toml("maxmemory = 1000").unwrap().maxmemory, 1000);
        let err = NodeConfig::from_toml("maxmemory_policy = \"allkeys-lru\"").unwrap_err();
        assert!(err.to_string().contains("`allkeys-lru` is not supported"), "{err}");
        assert!(NodeConfig::from_toml("maxmemory = \"lots\"").is_err());
    }

    #[test]
    fn bootstrap_list_must_include_self() {
        let mut c = NodeConfig::default();
        c.bootstrap.insert(2, "127.0.0.1:7102".parse().unwrap());
        assert_eq!(c.validate().unwrap_err().setting, "bootstrap");
    }
}

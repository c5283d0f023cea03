//! `<data dir>/cluster.json`: the cluster a node belongs to, written when it founds or joins
//! one, read at every restart.

use super::router::{KeyRouting, Router};
use crate::config::{NodeConfig, SHARDS_MAX};
use crate::error::Error;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

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
    /// How keys map to the shards. Files written before hash slots existed lack it: their
    /// clusters route by crc32c, and keep doing so, since their keys are where that put them.
    #[serde(default = "routing_before_hash_slots")]
    pub routing: KeyRouting,
    /// Members' peer addresses, as last known (the meta group's directory is authoritative;
    /// this copy lets a restarting node find its peers).
    pub members: BTreeMap<u64, SocketAddr>,
    /// Replicas per data shard, read when founding the cluster (the directory records the
    /// placement from then on). 0 on joined nodes, and in files written before placements,
    /// whose clusters keep every shard on every member.
    #[serde(default)]
    pub replicas: u32,
    /// Whether this node joined a running cluster (its groups start empty and are filled by
    /// the leaders) rather than founding it (its groups start from the bootstrap membership).
    #[serde(default)]
    pub joined: bool,
}

/// The routing of a cluster whose file does not record one: it was founded before hash slots.
fn routing_before_hash_slots() -> KeyRouting {
    KeyRouting::Crc32cModulo
}

impl ClusterFile {
    /// How this cluster routes keys to its shards.
    pub fn router(&self) -> Router {
        Router::new(self.routing, u64::from(self.shards))
    }

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
        if file.shards == 0 || file.shards > SHARDS_MAX {
            return Err(Error::State(format!(
                "{} records {} shards (1 to {SHARDS_MAX} possible); restore it or remove the data directory",
                path.display(),
                file.shards
            )));
        }
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
            routing: KeyRouting::HashSlots,
            replicas: config.replicas,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn node_config(dir: &Path) -> NodeConfig {
        let mut config = NodeConfig { data_dir: dir.to_path_buf(), shards: 4, ..NodeConfig::default() };
        config.peer.node_id = 1;
        config.bootstrap = BTreeMap::from([(1, "127.0.0.1:7001".parse().unwrap())]);
        config
    }

    #[test]
    fn a_file_from_before_hash_slots_keeps_crc32c_routing_and_new_clusters_use_slots() {
        let dir = tempfile::tempdir().unwrap();
        let config = node_config(dir.path());
        // The file as nodes wrote it before the routing was recorded.
        let before = r#"{"cluster_id":"ppdb","node_id":1,"shards":4,"members":{"1":"127.0.0.1:7001"}}"#;
        std::fs::write(dir.path().join("cluster.json"), before).unwrap();
        let file = ClusterFile::load(&config).unwrap().unwrap();
        assert_eq!((file.routing, file.shards), (KeyRouting::Crc32cModulo, 4));
        assert_eq!(file.router().shard_of(b"k").0, u64::from(crc32c::crc32c(b"k")) % 4 + 1);
        file.save(dir.path()).unwrap();
        let saved = std::fs::read_to_string(dir.path().join("cluster.json")).unwrap();
        assert!(saved.contains(r#""routing": "crc32c-modulo""#), "{saved}");

        let fresh = tempfile::tempdir().unwrap();
        let founded = ClusterFile::bootstrap(&node_config(fresh.path())).unwrap();
        assert_eq!(founded.routing, KeyRouting::HashSlots);
        assert_eq!(ClusterFile::load(&node_config(fresh.path())).unwrap(), Some(founded));
    }

    #[test]
    fn a_file_recording_an_impossible_shard_count_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = r#"{"cluster_id":"ppdb","node_id":1,"shards":0,"members":{"1":"127.0.0.1:7001"}}"#;
        std::fs::write(dir.path().join("cluster.json"), file).unwrap();
        assert!(ClusterFile::load(&node_config(dir.path())).is_err());
    }
}

//! `<data dir>/cluster.json`: the cluster a node belongs to, written when it founds or joins
//! one, read at every restart.

use crate::config::NodeConfig;
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

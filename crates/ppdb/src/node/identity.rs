//! `<data dir>/identity`: which node this data directory belongs to and in which incarnation.
//!
//! The incarnation is drawn when the directory is first used and lives exactly as long as
//! its data: a node whose directory was lost comes back with a new one, and the peers that
//! recorded the old one refuse it (see [`crate::transport::handshake`]). The file is written
//! once, atomically (temporary file, fsync, rename, directory fsync), and checksummed.
//!
//! Layout (29 bytes, integers little-endian):
//!
//! | offset | size | field                                   |
//! |--------|------|-----------------------------------------|
//! | 0      | 8    | magic `PPDBNODE`                        |
//! | 8      | 1    | version (1)                             |
//! | 9      | 8    | node id                                 |
//! | 17     | 8    | incarnation (never 0)                   |
//! | 25     | 4    | CRC-32C of bytes 0..25                  |

use crate::error::Error;
use crate::transport::handshake::Incarnation;
use std::io::Write;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"PPDBNODE";
const VERSION: u8 = 1;
const FILE_BYTES: usize = 29;
const CHECKSUMMED_BYTES: usize = 25;

/// This node's id and incarnation, as its data directory records them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeIdentity {
    /// The node id.
    pub node_id: u64,
    /// The incarnation of its data directory.
    pub incarnation: Incarnation,
}

impl NodeIdentity {
    fn path(dir: &Path) -> PathBuf {
        dir.join("identity")
    }

    /// The identity of the data directory `dir` for node `node_id`, created when the
    /// directory has none. `holds_cluster`: whether the directory records a cluster already
    /// (then an identity of another node is an error; otherwise the directory holds no data
    /// and its stale identity is replaced).
    pub fn load_or_create(dir: &Path, node_id: u64, holds_cluster: bool) -> Result<NodeIdentity, Error> {
        let path = Self::path(dir);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let found = decode(&bytes).ok_or_else(|| {
                    Error::State(format!(
                        "{} is damaged (bad length, magic or checksum); restore it or remove the \
                         data directory",
                        path.display()
                    ))
                })?;
                if found.node_id == node_id {
                    return Ok(found);
                }
                if holds_cluster {
                    return Err(Error::State(format!(
                        "{} belongs to node {}, not node {node_id}: wrong --dir or --id?",
                        dir.display(),
                        found.node_id
                    )));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::State(format!("cannot read {}: {e}", path.display()))),
        }
        let created = NodeIdentity { node_id, incarnation: Incarnation::random() };
        created.save(dir)?;
        tracing::info!(node = node_id, incarnation = %created.incarnation, "new node incarnation");
        Ok(created)
    }

    fn save(&self, dir: &Path) -> Result<(), Error> {
        let io = |e: std::io::Error| {
            Error::State(format!("cannot write the identity file in {}: {e}", dir.display()))
        };
        let tmp = dir.join("identity.tmp");
        {
            let mut f = std::fs::File::create(&tmp).map_err(io)?;
            f.write_all(&encode(self)).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, Self::path(dir)).map_err(io)?;
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)
    }
}

fn encode(identity: &NodeIdentity) -> [u8; FILE_BYTES] {
    let mut bytes = [0u8; FILE_BYTES];
    bytes[..8].copy_from_slice(MAGIC);
    bytes[8] = VERSION;
    bytes[9..17].copy_from_slice(&identity.node_id.to_le_bytes());
    bytes[17..25].copy_from_slice(&identity.incarnation.0.to_le_bytes());
    let crc = crc32c::crc32c(&bytes[..CHECKSUMMED_BYTES]);
    bytes[25..].copy_from_slice(&crc.to_le_bytes());
    bytes
}

fn decode(bytes: &[u8]) -> Option<NodeIdentity> {
    let bytes: &[u8; FILE_BYTES] = bytes.try_into().ok()?;
    let field = |at: usize| -> Option<u64> { Some(u64::from_le_bytes(bytes[at..at + 8].try_into().ok()?)) };
    let crc = u32::from_le_bytes(bytes[25..].try_into().ok()?);
    if &bytes[..8] != MAGIC || bytes[8] != VERSION || crc != crc32c::crc32c(&bytes[..CHECKSUMMED_BYTES]) {
        return None;
    }
    Some(NodeIdentity { node_id: field(9)?, incarnation: Incarnation::from_raw(field(17)?)? })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identity_lives_with_its_directory() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let created = NodeIdentity::load_or_create(dir.path(), 3, false).unwrap_or_else(|e| panic!("{e}"));
        let again = NodeIdentity::load_or_create(dir.path(), 3, true).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(created, again, "kept across restarts");
        assert!(NodeIdentity::load_or_create(dir.path(), 4, true).is_err(), "another node's data");
        let fresh = NodeIdentity::load_or_create(dir.path(), 4, false).unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(fresh.incarnation, created.incarnation, "a directory without data starts afresh");

        let path = dir.path().join("identity");
        let mut bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{e}"));
        bytes[20] ^= 1;
        std::fs::write(&path, &bytes).unwrap_or_else(|e| panic!("{e}"));
        let damaged = NodeIdentity::load_or_create(dir.path(), 4, true);
        assert!(damaged.is_err_and(|e| e.to_string().contains("damaged")));
        assert_eq!(decode(&bytes[..10]), None);

        let other = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let elsewhere =
            NodeIdentity::load_or_create(other.path(), 3, false).unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(elsewhere.incarnation, created.incarnation, "a lost directory is a new incarnation");
    }
}

//! Durable storage of a node: the shared write-ahead log, snapshot files, the data-directory
//! lock, and the disk they all run on.
//!
//! This layer owns bytes on disk: it makes appended records durable with group commit, reads
//! them back after a crash (cutting a torn tail, refusing corruption with the file and offset),
//! and stores snapshots atomically. It must not interpret what it stores: Raft entries and hard
//! states are encoded and decoded by the layer above, which sees this one through [`wal::Wal`]
//! and [`snapshot_file::SnapshotStore`]. Everything runs over the [`disk::Disk`] trait, so the
//! simulator can swap the real file system for [`disk::SimDisk`] and its injected faults.
//!
//! A node's data directory looks like:
//!
//! ```text
//! <data dir>/LOCK            data-directory lock (lock.rs)
//! <data dir>/wal/*.wal       WAL segments (wal/)
//! <data dir>/snapshots/*.snap snapshot files (snapshot_file.rs)
//! ```

pub mod disk;
pub mod error;
pub mod lock;
pub mod snapshot_file;
pub mod wal;

pub use error::{CorruptionKind, PoisonCause, StorageError};

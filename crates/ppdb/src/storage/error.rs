//! Errors of the storage layer.
//!
//! Every variant says which operation failed, on which file, and (for bad data) at which byte
//! offset. Corruption is its own variant: it is never retried and never "repaired" silently,
//! because a node that serves a damaged log could break the replication protocol's guarantees.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// What exactly is wrong with bytes read from disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorruptionKind {
    /// The stored CRC32C does not match the bytes it covers.
    ChecksumMismatch {
        /// The checksum stored in the file.
        stored: u32,
        /// The checksum computed over the bytes read.
        computed: u32,
    },
    /// A length field is larger than the format allows.
    LengthOutOfRange {
        /// The length read.
        len: u64,
        /// The largest length the format allows.
        max: u64,
    },
    /// A record kind byte that this version does not know.
    UnknownRecordKind(u8),
    /// A file does not start with the expected magic bytes.
    BadMagic,
    /// A file was written by an unsupported format version.
    UnsupportedVersion(u32),
    /// A record or segment does not carry the sequence number its position requires.
    SequenceMismatch {
        /// The sequence number the position requires.
        expected: u64,
        /// The sequence number found.
        found: u64,
    },
    /// A sequence number outside the range the WAL ever writes.
    SequenceOutOfRange {
        /// The sequence number found.
        found: u64,
        /// The largest one allowed (the smallest is 1).
        max: u64,
    },
    /// A file's header disagrees with its name (a misplaced or renamed file).
    NameMismatch {
        /// Which number disagrees, e.g. `first sequence number`.
        field: &'static str,
        /// The value in the file name.
        in_name: u64,
        /// The value in the header.
        in_header: u64,
    },
    /// A file that must be complete ends in the middle of a record or header.
    UnexpectedEnd {
        /// How many more bytes were needed.
        missing_bytes: u64,
    },
    /// A layer above the WAL could not decode a record's payload.
    BadPayload {
        /// What the decoder reported.
        reason: String,
    },
}

impl fmt::Display for CorruptionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CorruptionKind::ChecksumMismatch { stored, computed } => {
                write!(f, "checksum mismatch (stored crc32c {stored:#010x}, computed {computed:#010x})")
            }
            CorruptionKind::LengthOutOfRange { len, max } => {
                write!(f, "length {len} is larger than the limit {max}")
            }
            CorruptionKind::UnknownRecordKind(kind) => write!(f, "unknown record kind {kind}"),
            CorruptionKind::BadMagic => f.write_str("bad magic bytes in the file header"),
            CorruptionKind::UnsupportedVersion(v) => write!(f, "unsupported format version {v}"),
            CorruptionKind::SequenceMismatch { expected, found } => {
                write!(f, "expected sequence number {expected}, found {found}")
            }
            CorruptionKind::SequenceOutOfRange { found, max } => {
                write!(f, "sequence number {found} is outside 1..={max}")
            }
            CorruptionKind::NameMismatch { field, in_name, in_header } => {
                write!(f, "file name says {field} {in_name}, header says {in_header}")
            }
            CorruptionKind::UnexpectedEnd { missing_bytes } => {
                write!(f, "file ends {missing_bytes} bytes before the end of the record")
            }
            CorruptionKind::BadPayload { reason } => write!(f, "undecodable payload: {reason}"),
        }
    }
}

impl std::error::Error for CorruptionKind {}

/// Why the WAL stopped accepting appends. Cloned into every failed ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoisonCause {
    /// The operation that failed, e.g. `fdatasync`.
    pub operation: &'static str,
    /// The file it failed on.
    pub path: PathBuf,
    /// The kind of the I/O error.
    pub kind: io::ErrorKind,
    /// The I/O error's message.
    pub message: String,
}

impl PoisonCause {
    pub(crate) fn new(operation: &'static str, path: PathBuf, error: &io::Error) -> Self {
        PoisonCause { operation, path, kind: error.kind(), message: error.to_string() }
    }
}

impl fmt::Display for PoisonCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} of {} failed: {}", self.operation, self.path.display(), self.message)
    }
}

/// An error of the storage layer (WAL, snapshot files, data directory).
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// An I/O operation failed.
    #[error("{operation} of {} failed: {source}", path.display())]
    Io {
        /// The operation, e.g. `fdatasync`, `rename`, `read`.
        operation: &'static str,
        /// The file or directory it was applied to.
        path: PathBuf,
        /// The error from the operating system (or the simulated disk).
        #[source]
        source: io::Error,
    },
    /// Bytes on disk are damaged or inconsistent; the node must not start on this data.
    #[error(
        "corrupt data in {} at byte offset {offset}: {reason}. The node cannot start safely on \
         this data: remove this node's data directory and rejoin the cluster to re-replicate",
        file.display()
    )]
    Corruption {
        /// The damaged file.
        file: PathBuf,
        /// Byte offset of the damaged record or header inside the file.
        offset: u64,
        /// What is wrong.
        reason: CorruptionKind,
    },
    /// An earlier write or fsync failed; the WAL refuses all further appends because the kernel
    /// may have dropped written data. The node must restart and recover from disk.
    #[error("the write-ahead log is poisoned ({cause}); restart the node to recover from disk")]
    Poisoned {
        /// The failure that poisoned the WAL.
        cause: PoisonCause,
    },
    /// The WAL was closed; no more appends are accepted.
    #[error("the write-ahead log is closed")]
    Closed,
    /// A record larger than the format's limit was appended.
    #[error("a WAL record of {len} bytes exceeds the limit of {max} bytes")]
    RecordTooLarge {
        /// The encoded record's size.
        len: u64,
        /// The limit (`RECORD_BYTES_MAX`).
        max: u64,
    },
    /// Another process holds the data directory.
    #[error(
        "data directory {} is in use by another process{} (lock file {} is held); stop that \
         process or use another data directory",
        dir.display(),
        holder_pid.map(|pid| format!(" (pid {pid})")).unwrap_or_default(),
        lock_file.display()
    )]
    DataDirLocked {
        /// The data directory.
        dir: PathBuf,
        /// The lock file.
        lock_file: PathBuf,
        /// The pid written in the lock file by its holder, if readable.
        holder_pid: Option<u32>,
    },
    /// A file was written in a format version this build does not read (by a newer release).
    #[error(
        "{} was written in format version {version}, which this build cannot read (it reads \
         versions {supported}): start the node with the release that wrote it, or a newer one",
        file.display()
    )]
    UnsupportedFormat {
        /// The file.
        file: PathBuf,
        /// The version in its header.
        version: u32,
        /// The versions this build reads.
        supported: &'static str,
    },
    /// A configuration value is out of its allowed range.
    #[error("invalid storage configuration: {field} = {value}: {reason}")]
    InvalidConfig {
        /// The field's name.
        field: &'static str,
        /// The value given.
        value: u64,
        /// The allowed range.
        reason: &'static str,
    },
}

impl StorageError {
    /// Builds an [`StorageError::Io`] for `operation` on `path`.
    pub(crate) fn io(operation: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        StorageError::Io { operation, path: path.into(), source }
    }

    /// Builds a [`StorageError::Corruption`].
    pub(crate) fn corruption(file: impl Into<PathBuf>, offset: u64, reason: CorruptionKind) -> Self {
        StorageError::Corruption { file: file.into(), offset, reason }
    }

    /// True if this error means data on disk is damaged (as opposed to an operation failing).
    pub fn is_corruption(&self) -> bool {
        matches!(self, StorageError::Corruption { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corruption_names_file_offset_and_remedy() {
        let err = StorageError::corruption(
            "/data/wal/00000000000000000001.wal",
            4096,
            CorruptionKind::ChecksumMismatch { stored: 1, computed: 2 },
        );
        let text = err.to_string();
        assert!(text.contains("/data/wal/00000000000000000001.wal"), "{text}");
        assert!(text.contains("byte offset 4096"), "{text}");
        assert!(text.contains("checksum mismatch"), "{text}");
        assert!(text.contains("remove this node's data directory and rejoin the cluster"), "{text}");
        assert!(err.is_corruption());
    }

    #[test]
    fn locked_directory_names_the_holder() {
        let err = StorageError::DataDirLocked {
            dir: "/data".into(),
            lock_file: "/data/LOCK".into(),
            holder_pid: Some(42),
        };
        let text = err.to_string();
        assert!(text.contains("/data is in use by another process (pid 42)"), "{text}");
        assert!(!err.is_corruption());
    }

    #[test]
    fn poisoned_says_what_failed() {
        let cause = PoisonCause::new("fdatasync", "/data/wal/1.wal".into(), &io::Error::other("EIO"));
        let text = StorageError::Poisoned { cause }.to_string();
        assert!(text.contains("fdatasync of /data/wal/1.wal failed: EIO"), "{text}");
        assert!(text.contains("restart the node"), "{text}");
    }
}

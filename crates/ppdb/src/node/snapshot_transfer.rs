//! The node's snapshot files as the transport sees them ([`SnapshotFiles`]): the image of a
//! snapshot the Raft core names ([`SnapshotRef`]) is streamed from its file, and a received one
//! is written chunk by chunk into a new file of the store, checked, made durable, and handed to
//! the Raft core as a reference to that file. In-memory networks (tests, the simulator) move a
//! snapshot between two nodes' stores the same way ([`copy_snapshot`]).

use super::raft_storage::{encode_meta, SnapshotRef};
use crate::storage::snapshot_file::{SnapshotImage, SnapshotStore, SnapshotWriter};
use crate::storage::wal::GroupId;
use crate::transport::{SnapshotFiles, SnapshotSink, SnapshotSource};
use ppdb_raft::{Message, MessageBody, Snapshot, SnapshotMeta};
use std::io::{self, Read};
use std::sync::Arc;

/// A node's snapshot store, for the transport.
#[derive(Debug, Clone)]
pub struct NodeSnapshotFiles(pub SnapshotStore);

impl SnapshotFiles for NodeSnapshotFiles {
    fn open(&self, group: u64, snapshot: &Snapshot) -> io::Result<Box<dyn SnapshotSource>> {
        let reference =
            SnapshotRef::decode(&snapshot.data).filter(|r| r.group.0 == group).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "the snapshot names no file of its group")
            })?;
        let image = self.0.open_image(reference.group, reference.last_index).map_err(io::Error::other)?;
        Ok(Box::new(ImageSource(image)))
    }

    fn receive(&self, group: u64, meta: &SnapshotMeta) -> io::Result<Box<dyn SnapshotSink>> {
        let writer =
            self.0.create(GroupId(group), meta.index.0, &encode_meta(meta)).map_err(io::Error::other)?;
        Ok(Box::new(FileSink(writer)))
    }
}

/// A snapshot file's image being sent.
#[derive(Debug)]
struct ImageSource(SnapshotImage);

impl SnapshotSource for ImageSource {
    fn total_bytes(&self) -> u64 {
        self.0.file().image_bytes
    }

    fn checksum(&self) -> u32 {
        self.0.file().image_crc32c
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        Read::read_exact(&mut self.0, buf).map_err(|e| match self.0.damage() {
            Some(damage) => io::Error::new(io::ErrorKind::InvalidData, damage.to_string()),
            None => e,
        })
    }
}

/// A received snapshot's file being written.
#[derive(Debug)]
struct FileSink(SnapshotWriter);

impl SnapshotSink for FileSink {
    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0.append(bytes).map_err(io::Error::other)
    }

    fn finish(self: Box<Self>, total_bytes: u64, checksum: u32) -> io::Result<Vec<u8>> {
        let file = self.0.finish_expecting(total_bytes, checksum).map_err(io::Error::other)?;
        Ok(SnapshotRef::of(&file).encode())
    }
}

/// Moves the snapshot `message` carries from the sender's files to the receiver's, in chunks of
/// `chunk_bytes`, as the transport would: returns the message the receiver gets (its data
/// naming the receiver's file), or why the transfer failed. Other messages pass unchanged.
pub fn copy_snapshot(
    from: &dyn SnapshotFiles,
    to: &dyn SnapshotFiles,
    group: GroupId,
    message: Message,
    chunk_bytes: usize,
) -> io::Result<Message> {
    let MessageBody::InstallSnapshot { snapshot } = &message.body else { return Ok(message) };
    let mut source = from.open(group.0, snapshot)?;
    let mut sink = to.receive(group.0, &snapshot.meta)?;
    let total = source.total_bytes();
    let mut chunk = vec![0u8; chunk_bytes.max(1)];
    let mut sent = 0u64;
    while sent < total {
        let len = (total - sent).min(chunk.len() as u64) as usize;
        source.read_exact(&mut chunk[..len])?;
        sink.write(&chunk[..len])?;
        sent += len as u64;
    }
    let data = sink.finish(total, source.checksum())?;
    let snapshot = Snapshot { meta: snapshot.meta.clone(), data: Arc::new(data) };
    Ok(Message { body: MessageBody::InstallSnapshot { snapshot }, ..message })
}

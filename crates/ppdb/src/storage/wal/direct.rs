//! Direct appends: the active segment written in whole blocks, past the page cache.
//!
//! A buffered write plus `fdatasync` makes the kernel copy the records into the page cache and
//! then run its writeback machinery for them; a direct write (`O_DIRECT | O_DSYNC`) hands the
//! blocks to the device and returns once they are durable, for about half the CPU on the
//! machines we measured (docs/storage.md, "Direct appends"). The device only takes whole,
//! aligned blocks, so [`DirectTail`] keeps a copy of the block the records end in and writes
//! from that block's start each time: the last, partly filled block is rewritten by the next
//! batch, as page-cache writeback rewrites the last page of a buffered file. What follows the
//! records in that block is zeros, which is how every segment ends anyway (see
//! [`super::segment`]), so the bytes on disk are the same as with buffered writes.

use std::io;

use crate::storage::disk::{Block, DirectFile, BLOCK_BYTES};

/// Above this many blocks the write buffer is freed after a batch, so one burst of large records
/// does not pin memory forever.
const BLOCKS_RETAINED_MAX: usize = 2048;

/// Appends to one segment through a [`DirectFile`].
#[derive(Debug)]
pub(crate) struct DirectTail {
    file: Box<dyn DirectFile>,
    /// The file's content is known up to here; appends go here.
    end: u64,
    /// The block holding `end`: its bytes before `end` are on disk, the rest are zeros.
    last: Block,
    /// Reused for each write.
    blocks: Vec<Block>,
}

impl DirectTail {
    /// Appends to `file` from `end` on. `before_end` holds the file's bytes from the start of
    /// the block that `end` falls in up to `end` (so `end % BLOCK_BYTES` bytes); `None` if
    /// its length is wrong.
    pub fn new(file: Box<dyn DirectFile>, end: u64, before_end: &[u8]) -> Option<DirectTail> {
        let head = usize::try_from(end % BLOCK_BYTES as u64).ok()?;
        if before_end.len() != head {
            return None;
        }
        let mut last = Block::ZERO;
        last.0[..head].copy_from_slice(before_end);
        Some(DirectTail { file, end, last, blocks: Vec::new() })
    }

    /// Writes `data` at the end of the file, durably. On error the file may hold any prefix of
    /// the write (a torn tail, as after a crash), and this tail must not be used again.
    pub fn append(&mut self, data: &[u8]) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let head = (self.end % BLOCK_BYTES as u64) as usize;
        let start = self.end - head as u64;
        let filled = head + data.len();
        let count = filled.div_ceil(BLOCK_BYTES);
        self.blocks.clear();
        self.blocks.resize(count, Block::ZERO);
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut self.blocks);
        bytes[..head].copy_from_slice(&self.last.0[..head]);
        bytes[head..filled].copy_from_slice(data);
        self.file.write_durable_at(&self.blocks, start)?;
        self.end += data.len() as u64;
        if let Some(last) = self.blocks.last() {
            self.last = *last;
        }
        if self.blocks.len() > BLOCKS_RETAINED_MAX {
            self.blocks = Vec::new();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A direct file in memory that checks what direct I/O requires.
    #[derive(Debug, Clone, Default)]
    struct MemDirect {
        content: Arc<Mutex<Vec<u8>>>,
        refuse: bool,
    }

    impl DirectFile for MemDirect {
        fn write_durable_at(&mut self, blocks: &[Block], offset: u64) -> io::Result<()> {
            if self.refuse {
                return Err(io::Error::new(io::ErrorKind::InvalidInput, "refused"));
            }
            assert_eq!(offset % BLOCK_BYTES as u64, 0, "unaligned offset");
            assert_eq!(blocks.as_ptr() as usize % BLOCK_BYTES, 0, "unaligned buffer");
            let bytes: &[u8] = bytemuck::cast_slice(blocks);
            let mut content = self.content.lock().unwrap();
            let end = offset as usize + bytes.len();
            if content.len() < end {
                content.resize(end, 0);
            }
            content[offset as usize..end].copy_from_slice(bytes);
            Ok(())
        }
    }

    #[test]
    fn appends_land_where_buffered_writes_would() {
        let file = MemDirect::default();
        let header = b"header-bytes";
        file.content.lock().unwrap().extend_from_slice(header);
        let mut tail = DirectTail::new(Box::new(file.clone()), header.len() as u64, header).unwrap();
        let mut expected = header.to_vec();
        // Sizes that end mid-block, exactly on a block, span several blocks, and are tiny.
        for (i, len) in [100, 4096 - 112, 4096, 10_000, 1, 3, 8191, 0, 5000].into_iter().enumerate() {
            let data: Vec<u8> = (0..len).map(|j| (i * 31 + j) as u8 | 1).collect();
            tail.append(&data).unwrap();
            expected.extend_from_slice(&data);
            let content = file.content.lock().unwrap();
            assert_eq!(&content[..expected.len()], &expected[..], "after append {i}");
            assert!(content[expected.len()..].iter().all(|&b| b == 0), "zeros after the records");
            assert_eq!(content.len() % BLOCK_BYTES, 0);
        }
    }

    #[test]
    fn resumes_in_the_middle_of_a_block() {
        let file = MemDirect::default();
        let existing: Vec<u8> = (0..5000).map(|i| (i % 250) as u8 + 1).collect();
        file.content.lock().unwrap().extend_from_slice(&existing);
        let before_end = &existing[BLOCK_BYTES..];
        let mut tail = DirectTail::new(Box::new(file.clone()), existing.len() as u64, before_end).unwrap();
        tail.append(b"more").unwrap();
        let content = file.content.lock().unwrap();
        assert_eq!(&content[..5000], &existing[..]);
        assert_eq!(&content[5000..5004], b"more");
    }

    #[test]
    fn a_wrong_tail_length_is_refused_and_a_refusal_is_reported() {
        assert!(DirectTail::new(Box::new(MemDirect::default()), 10, b"short").is_none());
        let refusing = MemDirect { refuse: true, ..MemDirect::default() };
        let mut tail = DirectTail::new(Box::new(refusing), 0, b"").unwrap();
        assert_eq!(tail.append(b"x").unwrap_err().kind(), io::ErrorKind::InvalidInput);
    }
}

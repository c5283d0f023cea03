//! Snapshots of a shard's key space for the Raft core (log compaction and follower catch-up).
//!
//! # Format (version 5)
//!
//! ```text
//! magic "PPKV" | version:u8 | time_ms:varint | write_version:varint | flush_at_ms:varint |
//!   count:varint |
//!   count × (key:len-prefixed bytes | type:u8 value | has_ttl:u8 [expire_at_ms:varint] |
//!            version:varint | flags:varint)
//! | crc32c:u32 little-endian over every preceding byte
//! ```
//!
//! `write_version` is the log index of the last entry applied, `flush_at_ms` the time of a
//! delayed memcached `flush_all` (0 for none), and each key's `version` and `flags` its
//! [`Value::version`](super::Value::version) and memcached flags. Version 4 images, without
//! them, are still read: their keys have version 0 and flags 0.
//!
//! A value is, by its type: `0` a string (len-prefixed bytes); `1` a hash (`n:varint`, then
//! `n` fields and values); `2` a list (`n`, then `n` elements, head first); `3` a set (`n`,
//! then `n` members); `4` a sorted set (`n`, then `n` × member and its score as 8
//! little-endian bytes of its IEEE-754 bits). Byte strings are len-prefixed; a collection is
//! never empty and a score never NaN. Versions 3 and earlier hold strings only, as a
//! len-prefixed value without the type byte.
//!
//! Entries are in strictly ascending scan order (`(scan_hash(key), key)`, the store's SCAN
//! index, which it can walk without sorting), which restore checks, so a key cannot appear
//! twice. `time_ms` is the log's time ([`KvStore::time_ms`]): a replica restored from the
//! snapshot, should it lead, stamps no entry and answers no read at an earlier time. Versions 2
//! and 1, written by earlier releases, have no `time_ms` (it reads as 0), and version 1 orders
//! entries by key alone; both are still read. Expired keys not yet
//! removed are included: the snapshot is the state machine's exact state, so replicas restored
//! from it keep applying the log identically.
//!
//! Both directions stream: [`FrozenKv::serialize_into`] writes through a buffer of
//! [`SNAPSHOT_WRITE_BUFFER_BYTES`] into any writer (a snapshot file), and
//! [`KvStore::restore_from`] reads through one of [`SNAPSHOT_READ_BUFFER_BYTES`], so a snapshot
//! of any size costs the state itself plus a buffer, never a second copy of the image. The
//! checksum is computed as the image is read and checked at its end: a damaged image is
//! refused, and the store built from it dropped, before anything uses it. Every length is
//! bounded before it is read, and bytes are only taken as they arrive, so a hostile length
//! cannot reserve memory the input does not hold.

use super::codec::{put_bytes, put_varint, KvDecodeError};
/// Keys and values are read back up to the bound of every release ([`crate::limits`]).
const STORED_VALUE_BYTES_MAX: u64 = crate::limits::STORED_VALUE_BYTES_MAX as u64;
use super::scan::scan_hash;
use super::state_machine::KvStore;
use super::table::FrozenTable;
use super::types::{Collection, Data, HashValue, ListValue, SetValue, SortedSetValue};
use std::io::{self, Read, Write};

const MAGIC: &[u8; 4] = b"PPKV";
/// The version written.
const SNAPSHOT_VERSION: u8 = 5;
/// The version without versions and flags, still read.
const SNAPSHOT_VERSION_UNVERSIONED: u8 = 4;
/// The version with strings only, still read.
const SNAPSHOT_VERSION_STRINGS: u8 = 3;
/// The version without the log's time, still read.
const SNAPSHOT_VERSION_TIMELESS: u8 = 2;
/// The version with entries in ascending key order, still read.
const SNAPSHOT_VERSION_KEY_ORDER: u8 = 1;
const CHECKSUM_BYTES: usize = 4;
/// Bytes serialized before they are handed to the writer (and checksummed) in one piece.
pub const SNAPSHOT_WRITE_BUFFER_BYTES: usize = 64 * 1024;
/// Bytes read from the image at a time while restoring.
pub const SNAPSHOT_READ_BUFFER_BYTES: usize = 64 * 1024;

/// A shard's key space at one moment ([`KvStore::freeze`]), to serialize on another thread
/// while the store goes on applying writes.
#[derive(Debug, Clone)]
pub struct FrozenKv {
    entries: FrozenTable,
    time_ms: u64,
    write_version: u64,
    flush_at_ms: Option<u64>,
}

/// Why a snapshot image could not be restored.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotReadError {
    /// The image is malformed or damaged.
    #[error("{0}")]
    Decode(#[from] KvDecodeError),
    /// Reading the image failed.
    #[error("reading the snapshot image: {0}")]
    Io(#[from] io::Error),
}

impl KvStore {
    /// Serializes the whole key space (format in the module docs).
    pub fn snapshot(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Writing into a Vec cannot fail.
        let _ = self.freeze().serialize_into(&mut out);
        out
    }

    /// The key space now, in constant time, for [`FrozenKv::serialize_into`] later: the
    /// store's parts are shared copy-on-write (`kv/table.rs`).
    pub fn freeze(&self) -> FrozenKv {
        FrozenKv {
            entries: self.entries.freeze(),
            time_ms: self.time_ms,
            write_version: self.write_version,
            flush_at_ms: self.flush_at_ms,
        }
    }
}

impl FrozenKv {
    /// Serializes the frozen key space (format in the module docs) into `out`, a
    /// `SNAPSHOT_WRITE_BUFFER_BYTES` piece at a time; returns the bytes written.
    pub fn serialize_into(self, out: &mut dyn Write) -> io::Result<u64> {
        let mut sink = ChecksummedSink {
            out,
            buf: Vec::with_capacity(2 * SNAPSHOT_WRITE_BUFFER_BYTES),
            crc: 0,
            written: 0,
            failed: None,
        };
        sink.buf.extend_from_slice(MAGIC);
        sink.buf.push(SNAPSHOT_VERSION);
        put_varint(&mut sink.buf, self.time_ms);
        put_varint(&mut sink.buf, self.write_version);
        put_varint(&mut sink.buf, self.flush_at_ms.unwrap_or(0));
        put_varint(&mut sink.buf, self.entries.len() as u64);
        self.entries.drain_in_scan_order(|key, value| {
            if sink.failed.is_some() {
                return;
            }
            put_bytes(&mut sink.buf, key);
            put_value(&mut sink, &value.data);
            match value.expire_at_ms {
                None => sink.buf.push(0),
                Some(at) => {
                    sink.buf.push(1);
                    put_varint(&mut sink.buf, at);
                }
            }
            put_varint(&mut sink.buf, value.version);
            put_varint(&mut sink.buf, u64::from(value.flags));
            if sink.buf.len() >= SNAPSHOT_WRITE_BUFFER_BYTES {
                sink.flush();
            }
        });
        sink.flush();
        let crc = sink.crc;
        sink.buf.extend_from_slice(&crc.to_le_bytes());
        let (out, buf) = (sink.out, std::mem::take(&mut sink.buf));
        match sink.failed {
            Some(e) => Err(e),
            None => {
                out.write_all(&buf)?;
                Ok(sink.written + buf.len() as u64)
            }
        }
    }
}

/// The serializer's buffer in front of its writer: checksums each piece as it goes out and
/// keeps the first write error (the table's walk cannot be stopped halfway).
struct ChecksummedSink<'a> {
    out: &'a mut dyn Write,
    buf: Vec<u8>,
    crc: u32,
    written: u64,
    failed: Option<io::Error>,
}

// Value types in a version 4 image. Never renumber.
const TYPE_STRING: u8 = 0;
const TYPE_HASH: u8 = 1;
const TYPE_LIST: u8 = 2;
const TYPE_SET: u8 = 3;
const TYPE_SORTED_SET: u8 = 4;

/// Appends a value (format in the module docs), handing full buffers to the writer between
/// elements, so a large collection never sits whole in the buffer.
fn put_value(sink: &mut ChecksummedSink<'_>, data: &Data) {
    let element = |sink: &mut ChecksummedSink<'_>, parts: &[&[u8]]| {
        for part in parts {
            put_bytes(&mut sink.buf, part);
        }
        if sink.buf.len() >= SNAPSHOT_WRITE_BUFFER_BYTES {
            sink.flush();
        }
    };
    match data {
        Data::String(bytes) => {
            sink.buf.push(TYPE_STRING);
            put_bytes(&mut sink.buf, bytes);
        }
        Data::Hash(hash) => {
            sink.buf.push(TYPE_HASH);
            put_varint(&mut sink.buf, hash.len() as u64);
            hash.iter().for_each(|(field, value)| element(sink, &[field, value]));
        }
        Data::List(list) => {
            sink.buf.push(TYPE_LIST);
            put_varint(&mut sink.buf, list.len() as u64);
            list.iter().for_each(|item| element(sink, &[item]));
        }
        Data::Set(set) => {
            sink.buf.push(TYPE_SET);
            put_varint(&mut sink.buf, set.len() as u64);
            set.iter().for_each(|member| element(sink, &[member]));
        }
        Data::SortedSet(zset) => {
            sink.buf.push(TYPE_SORTED_SET);
            put_varint(&mut sink.buf, zset.len() as u64);
            for (member, score) in zset.iter() {
                put_bytes(&mut sink.buf, member);
                sink.buf.extend_from_slice(&score.to_bits().to_le_bytes());
                element(sink, &[]);
            }
        }
    }
}

impl ChecksummedSink<'_> {
    fn flush(&mut self) {
        if self.failed.is_none() {
            self.crc = crc32c::crc32c_append(self.crc, &self.buf);
            match self.out.write_all(&self.buf) {
                Ok(()) => self.written += self.buf.len() as u64,
                Err(e) => self.failed = Some(e),
            }
        }
        self.buf.clear();
    }
}

impl KvStore {
    /// Rebuilds a key space from [`KvStore::snapshot`] output; never panics on bad input.
    pub fn restore(snapshot: &[u8]) -> Result<KvStore, KvDecodeError> {
        KvStore::restore_from(&mut &snapshot[..]).map_err(|e| match e {
            SnapshotReadError::Decode(e) => e,
            // A slice only fails by ending, which the image reader reports as truncation.
            SnapshotReadError::Io(_) => {
                KvDecodeError::Truncated { field: "snapshot", offset: snapshot.len() }
            }
        })
    }

    /// Rebuilds a key space from an image read from `input` to its end, holding no more of the
    /// image than `SNAPSHOT_READ_BUFFER_BYTES` (and the value being read); never panics on
    /// bad input.
    pub fn restore_from(input: &mut dyn Read) -> Result<KvStore, SnapshotReadError> {
        let mut reader = ImageReader::new(input);
        if reader.take(MAGIC.len(), "snapshot header")? != MAGIC {
            return Err(KvDecodeError::BadMagic.into());
        }
        let version = reader.u8("snapshot version")?;
        let time_ms = match version {
            SNAPSHOT_VERSION | SNAPSHOT_VERSION_UNVERSIONED | SNAPSHOT_VERSION_STRINGS => {
                reader.varint("snapshot time")?
            }
            SNAPSHOT_VERSION_TIMELESS | SNAPSHOT_VERSION_KEY_ORDER => 0,
            _ => return Err(KvDecodeError::UnsupportedVersion { version }.into()),
        };
        // Versions 3 and 2 order by scan hash first; version 1 by key alone (hash 0 for all).
        let position = |key: &[u8]| if version == SNAPSHOT_VERSION_KEY_ORDER { 0 } else { scan_hash(key) };
        let mut store = KvStore::new();
        store.time_ms = time_ms;
        if version == SNAPSHOT_VERSION {
            store.write_version = reader.varint("snapshot write version")?;
            store.flush_at_ms = Some(reader.varint("snapshot flush time")?).filter(|&at| at != 0);
        }
        let count = reader.varint("snapshot entry count")?;
        let mut previous: Option<(u64, Vec<u8>)> = None;
        for index in 0..count {
            let key = reader.bytes("snapshot key", STORED_VALUE_BYTES_MAX)?;
            let data = if version >= SNAPSHOT_VERSION_UNVERSIONED {
                read_value(&mut reader)?
            } else {
                Data::String(reader.bytes("snapshot value", STORED_VALUE_BYTES_MAX)?.into())
            };
            let offset = reader.offset();
            let expire_at_ms = match reader.u8("snapshot ttl flag")? {
                0 => None,
                1 => Some(reader.varint("snapshot expire time")?),
                tag => {
                    return Err(KvDecodeError::InvalidTag { field: "snapshot ttl flag", tag, offset }.into())
                }
            };
            let (key_version, flags) = match version {
                SNAPSHOT_VERSION => {
                    let key_version = reader.varint("snapshot key version")?;
                    let offset = reader.offset();
                    let flags = u32::try_from(reader.varint("snapshot flags")?)
                        .map_err(|_| KvDecodeError::Invalid { field: "snapshot flags", offset })?;
                    (key_version, flags)
                }
                _ => (0, 0),
            };
            let here = (position(&key), key);
            if previous.as_ref().is_some_and(|prev| prev >= &here) {
                return Err(KvDecodeError::KeysOutOfOrder { index }.into());
            }
            store.insert_value(&here.1, data, expire_at_ms);
            if let Some(value) = store.entries.get_mut(&here.1) {
                value.version = key_version;
                value.flags = flags;
            }
            previous = Some(here);
        }
        reader.finish()?;
        Ok(store)
    }
}

/// Reads a value of a version 4 image (format in the module docs). Elements are added as they
/// are read, so a count is never trusted to reserve memory.
fn read_value(reader: &mut ImageReader<'_>) -> Result<Data, SnapshotReadError> {
    let offset = reader.offset();
    let element = |reader: &mut ImageReader<'_>| reader.bytes("snapshot element", STORED_VALUE_BYTES_MAX);
    let data = match reader.u8("snapshot value type")? {
        TYPE_STRING => {
            return Ok(Data::String(reader.bytes("snapshot value", STORED_VALUE_BYTES_MAX)?.into()))
        }
        TYPE_HASH => {
            let mut hash = HashValue::default();
            for _ in 0..reader.varint("snapshot hash length")? {
                let field = element(reader)?;
                hash.insert(&field, &element(reader)?);
            }
            hash.into_data()
        }
        TYPE_LIST => {
            let mut list = ListValue::default();
            for _ in 0..reader.varint("snapshot list length")? {
                list.push_back(&element(reader)?);
            }
            list.into_data()
        }
        TYPE_SET => {
            let mut set = SetValue::default();
            for _ in 0..reader.varint("snapshot set length")? {
                set.insert(&element(reader)?);
            }
            set.into_data()
        }
        TYPE_SORTED_SET => {
            let mut zset = SortedSetValue::default();
            for _ in 0..reader.varint("snapshot sorted set length")? {
                let member = element(reader)?;
                let score_offset = reader.offset();
                let mut bits = [0u8; 8];
                bits.copy_from_slice(reader.take(8, "snapshot score")?);
                let score = f64::from_bits(u64::from_le_bytes(bits));
                if score.is_nan() {
                    return Err(
                        KvDecodeError::Invalid { field: "snapshot score", offset: score_offset }.into()
                    );
                }
                zset.insert(&member, score);
            }
            zset.into_data()
        }
        tag => return Err(KvDecodeError::InvalidTag { field: "snapshot value type", tag, offset }.into()),
    };
    // Every element counts some memory, so a collection of 0 bytes has no elements.
    if data.bytes() == 0 {
        return Err(KvDecodeError::Invalid { field: "snapshot collection (empty)", offset }.into());
    }
    Ok(data)
}

/// Reads a snapshot image through a bounded buffer, checksumming what it consumes.
struct ImageReader<'a> {
    input: &'a mut dyn Read,
    buf: Vec<u8>,
    /// Consumed bytes of `buf` end here; valid ones at `filled`.
    pos: usize,
    filled: usize,
    /// Checksum of every byte consumed before `buf`'s current contents...
    crc: u32,
    /// ...and of `buf[..crc_pos]`.
    crc_pos: usize,
    /// Image offset of `buf[0]`.
    base: usize,
}

impl<'a> ImageReader<'a> {
    fn new(input: &'a mut dyn Read) -> ImageReader<'a> {
        let buf = vec![0; SNAPSHOT_READ_BUFFER_BYTES];
        ImageReader { input, buf, pos: 0, filled: 0, crc: 0, crc_pos: 0, base: 0 }
    }

    fn offset(&self) -> usize {
        self.base + self.pos
    }

    /// Folds the consumed bytes into the checksum.
    fn checksum_consumed(&mut self) {
        self.crc = crc32c::crc32c_append(self.crc, &self.buf[self.crc_pos..self.pos]);
        self.crc_pos = self.pos;
    }

    /// Makes at least `len` (at most the buffer's size) unconsumed bytes available; fewer
    /// only at the end of the input.
    fn fill(&mut self, len: usize) -> io::Result<()> {
        if self.filled - self.pos >= len {
            return Ok(());
        }
        self.checksum_consumed();
        self.buf.copy_within(self.pos..self.filled, 0);
        self.base += self.pos;
        self.filled -= self.pos;
        (self.pos, self.crc_pos) = (0, 0);
        while self.filled < len.min(self.buf.len()) {
            match self.input.read(&mut self.buf[self.filled..]) {
                Ok(0) => break,
                Ok(n) => self.filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The next `len` bytes (at most the buffer's size).
    fn take(&mut self, len: usize, field: &'static str) -> Result<&[u8], SnapshotReadError> {
        self.fill(len)?;
        if self.filled - self.pos < len {
            return Err(KvDecodeError::Truncated { field, offset: self.offset() }.into());
        }
        self.pos += len;
        Ok(&self.buf[self.pos - len..self.pos])
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, SnapshotReadError> {
        Ok(self.take(1, field)?[0])
    }

    /// A LEB128 varint.
    fn varint(&mut self, field: &'static str) -> Result<u64, SnapshotReadError> {
        let start = self.offset();
        let mut value: u64 = 0;
        for shift in (0..70).step_by(7) {
            let byte = self.u8(field)?;
            let low = u64::from(byte & 0x7f);
            if shift == 63 && low > 1 {
                return Err(KvDecodeError::InvalidVarint { offset: start }.into());
            }
            value |= low << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(KvDecodeError::InvalidVarint { offset: start }.into())
    }

    /// A length-prefixed byte string of at most `max` bytes, taken as the bytes arrive (a
    /// length is not trusted to reserve memory).
    fn bytes(&mut self, field: &'static str, max: u64) -> Result<Vec<u8>, SnapshotReadError> {
        let len = self.varint(field)?;
        if len > max {
            return Err(KvDecodeError::TooLarge { field, len, max }.into());
        }
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if len <= self.buf.len() {
            return Ok(self.take(len, field)?.to_vec());
        }
        let offset = self.offset();
        let mut out = self.buf[self.pos..self.filled].to_vec();
        self.pos = self.filled;
        self.checksum_consumed();
        let wanted = (len - out.len()) as u64;
        let got = (&mut self.input).take(wanted).read_to_end(&mut out)?;
        self.crc = crc32c::crc32c_append(self.crc, &out[out.len() - got..]);
        self.base += got;
        if out.len() < len {
            return Err(KvDecodeError::Truncated { field, offset }.into());
        }
        Ok(out)
    }

    /// Checks the stored checksum against the bytes read, and that nothing follows it.
    fn finish(mut self) -> Result<(), SnapshotReadError> {
        self.checksum_consumed();
        let computed = self.crc;
        let mut raw = [0u8; CHECKSUM_BYTES];
        raw.copy_from_slice(self.take(CHECKSUM_BYTES, "snapshot checksum")?);
        let stored = u32::from_le_bytes(raw);
        if stored != computed {
            return Err(KvDecodeError::ChecksumMismatch { stored, computed }.into());
        }
        self.fill(1)?;
        match self.filled - self.pos {
            0 => Ok(()),
            count => Err(KvDecodeError::TrailingBytes { count }.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::{KvWrite, SetCondition, SetTtl, WriteOp};
    use proptest::prelude::*;

    fn sample() -> KvStore {
        let mut store = KvStore::new();
        for (i, key) in [&b"a"[..], b"b\x00\xff", b"", b"zz"].iter().enumerate() {
            let ttl = if i % 2 == 0 { SetTtl::At(1_000 + i as u64) } else { SetTtl::Clear };
            let op = WriteOp::Set {
                key: key.to_vec(),
                value: vec![i as u8; i * 3],
                condition: SetCondition::Always,
                ttl,
                get: false,
            };
            store.apply(&KvWrite { now_ms: 500 + i as u64, op });
        }
        store
    }

    #[test]
    fn snapshot_round_trips() {
        let store = sample();
        let restored = KvStore::restore(&store.snapshot()).expect("valid snapshot");
        assert_eq!(restored, store);
        restored.check_indexes();
        assert_eq!(restored.time_ms(), 503, "the log's time survives a snapshot");
        assert_eq!(KvStore::restore(&KvStore::new().snapshot()), Ok(KvStore::new()));
    }

    #[test]
    fn corruption_is_detected() {
        let snapshot = sample().snapshot();
        for i in 0..snapshot.len() {
            let mut bad = snapshot.clone();
            bad[i] ^= 0x40;
            assert!(KvStore::restore(&bad).is_err(), "flip at byte {i} went unnoticed");
        }
        assert!(matches!(KvStore::restore(b"PPKV"), Err(KvDecodeError::Truncated { .. })));
        let mut wrong_magic = snapshot.clone();
        wrong_magic[0] = b'X';
        assert_eq!(KvStore::restore(&wrong_magic), Err(KvDecodeError::BadMagic));
    }

    #[test]
    fn a_value_larger_than_new_writes_may_be_is_still_restored() {
        // An earlier release accepted values up to 512 MiB (grown by APPEND); its snapshot must
        // not become unreadable because new writes are bounded lower.
        let mut store = KvStore::new();
        let large = vec![7u8; crate::limits::VALUE_BYTES_MAX + 1];
        store.insert(b"grown", large.clone(), None);
        let restored = KvStore::restore(&store.snapshot()).expect("a legacy-sized value restores");
        assert_eq!(
            restored.entries.get(b"grown".as_slice()).map(|v| v.data.bytes()),
            Some(large.len() as u64)
        );
    }

    /// A snapshot of `version` holding `keys` (value "v", no expiry) in the order given, at
    /// time 7 from version 3 on.
    fn snapshot_of(version: u8, keys: &[&[u8]]) -> Vec<u8> {
        let mut body = MAGIC.to_vec();
        body.push(version);
        if version >= SNAPSHOT_VERSION_STRINGS {
            put_varint(&mut body, 7);
        }
        if version >= SNAPSHOT_VERSION {
            put_varint(&mut body, 9); // write version
            put_varint(&mut body, 0); // no flush pending
        }
        put_varint(&mut body, keys.len() as u64);
        for key in keys {
            put_bytes(&mut body, key);
            if version >= SNAPSHOT_VERSION_UNVERSIONED {
                body.push(TYPE_STRING);
            }
            put_bytes(&mut body, b"v");
            body.push(0);
            if version >= SNAPSHOT_VERSION {
                put_varint(&mut body, 3); // version
                put_varint(&mut body, 5); // flags
            }
        }
        let crc = crc32c::crc32c(&body);
        body.extend_from_slice(&crc.to_le_bytes());
        body
    }

    /// `keys` in scan order, the order of a version 2 or 3 snapshot.
    fn in_scan_order<'a>(keys: &[&'a [u8]]) -> Vec<&'a [u8]> {
        let mut keys = keys.to_vec();
        keys.sort_by_key(|k| (scan_hash(k), k.to_vec()));
        keys
    }

    #[test]
    fn out_of_order_or_repeated_keys_are_refused_even_with_a_valid_checksum() {
        let scan = in_scan_order(&[b"a", b"b"]);
        let reversed = [scan[1], scan[0]];
        assert_eq!(
            KvStore::restore(&snapshot_of(2, &reversed)),
            Err(KvDecodeError::KeysOutOfOrder { index: 1 })
        );
        let twice = [scan[0], scan[0]];
        assert_eq!(
            KvStore::restore(&snapshot_of(2, &twice)),
            Err(KvDecodeError::KeysOutOfOrder { index: 1 })
        );
        let by_key: [&[u8]; 2] = [b"b", b"a"];
        assert_eq!(
            KvStore::restore(&snapshot_of(1, &by_key)),
            Err(KvDecodeError::KeysOutOfOrder { index: 1 })
        );
        assert_eq!(
            KvStore::restore(&snapshot_of(6, &[])),
            Err(KvDecodeError::UnsupportedVersion { version: 6 })
        );
    }

    #[test]
    fn version_1_snapshots_in_key_order_are_still_read() {
        let keys: [&[u8]; 3] = [b"a", b"b", b"c"];
        let restored = KvStore::restore(&snapshot_of(1, &keys)).expect("version 1 snapshot");
        restored.check_indexes();
        let mut expected = KvStore::new();
        for key in keys {
            expected.insert(key, b"v".to_vec(), None);
        }
        assert_eq!(restored, expected);
        assert_eq!(KvStore::restore(&snapshot_of(2, &in_scan_order(&keys))), Ok(expected.clone()));
        let with_time = KvStore::restore(&snapshot_of(3, &in_scan_order(&keys)));
        assert_eq!(with_time, Ok(KvStore { time_ms: 7, ..expected.clone() }));
        let typed = KvStore::restore(&snapshot_of(4, &in_scan_order(&keys)));
        assert_eq!(typed, Ok(KvStore { time_ms: 7, ..expected.clone() }));
        let versioned = KvStore::restore(&snapshot_of(5, &in_scan_order(&keys))).expect("version 5");
        assert_eq!(versioned.write_version, 9);
        for key in keys {
            let value = versioned.entries.get(key);
            assert_eq!(value.map(|v| (v.version, v.flags)), Some((3, 5)), "version and flags kept");
        }
    }

    #[test]
    fn versions_flags_and_a_pending_flush_survive_a_snapshot() {
        let mut store = sample();
        store.set_flags(b"zz", 0xdead_beef);
        store.flush_at_ms = Some(123_456);
        let restored = KvStore::restore(&store.snapshot()).expect("valid snapshot");
        assert_eq!(restored, store);
        assert_eq!(restored.write_version, 4);
        assert_eq!(restored.entries.get(b"zz").map(|v| (v.version, v.flags)), Some((4, 0xdead_beef)));
        assert_eq!(restored.entries.get(b"a").map(|v| v.version), Some(1));
    }

    /// Any mix of hashes, lists, sets and sorted sets (each element a small byte string, scores
    /// any non-NaN float).
    fn collections() -> impl Strategy<Value = Vec<(Vec<u8>, Data)>> {
        let element = || proptest::collection::vec(any::<u8>(), 0..4);
        let elements = || proptest::collection::vec(element(), 1..6);
        let score = any::<f64>().prop_filter("scores are never NaN", |s| !s.is_nan());
        let data = prop_oneof![
            proptest::collection::vec((element(), element()), 1..6).prop_map(|pairs| {
                let mut hash = HashValue::default();
                pairs.iter().for_each(|(f, v)| {
                    hash.insert(f, v);
                });
                hash.into_data()
            }),
            elements().prop_map(|items| {
                let mut list = ListValue::default();
                items.iter().for_each(|item| list.push_back(item));
                list.into_data()
            }),
            elements().prop_map(|members| {
                let mut set = SetValue::default();
                members.iter().for_each(|member| {
                    set.insert(member);
                });
                set.into_data()
            }),
            proptest::collection::vec((element(), score), 1..6).prop_map(|members| {
                let mut zset = SortedSetValue::default();
                members.iter().for_each(|(member, score)| {
                    zset.insert(member, *score);
                });
                zset.into_data()
            }),
        ];
        proptest::collection::vec((element(), data), 0..8)
    }

    proptest! {
        /// A store of every type comes back from its snapshot as it was, element orders
        /// included (they decide SPOP and HRANDFIELD on every replica).
        #[test]
        fn collections_round_trip(values in collections()) {
            let mut store = KvStore::new();
            for (key, data) in values {
                store.insert_value(&key, data, Some(99));
            }
            let restored = KvStore::restore(&store.snapshot());
            prop_assert_eq!(restored.as_ref(), Ok(&store));
            if let Ok(restored) = restored {
                restored.check_indexes();
            }
        }

        #[test]
        fn restore_never_panics(input in proptest::collection::vec(any::<u8>(), 0..96)) {
            let _ = KvStore::restore(&input);
        }

        #[test]
        fn restore_never_panics_with_a_valid_checksum(body in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut input = MAGIC.to_vec();
            input.push(SNAPSHOT_VERSION);
            input.extend_from_slice(&body);
            let crc = crc32c::crc32c(&input);
            input.extend_from_slice(&crc.to_le_bytes());
            let _ = KvStore::restore(&input);
        }
    }
}

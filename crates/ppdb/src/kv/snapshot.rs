//! Snapshots of a shard's key space for the Raft core (log compaction and follower catch-up).
//!
//! # Format (version 3)
//!
//! ```text
//! magic "PPKV" | version:u8 | time_ms:varint | count:varint |
//!   count × (key:len-prefixed bytes | value:len-prefixed bytes | has_ttl:u8 [expire_at_ms:varint])
//! | crc32c:u32 little-endian over every preceding byte
//! ```
//!
//! Entries are in strictly ascending scan order (`(scan_hash(key), key)`, the store's SCAN
//! index, which it can walk without sorting), which restore checks, so a key cannot appear
//! twice. `time_ms` is the log's time ([`KvStore::time_ms`]): a replica restored from the
//! snapshot, should it lead, stamps no entry and answers no read at an earlier time. Versions 2
//! and 1, written by earlier releases, have no `time_ms` (it reads as 0), and version 1 orders
//! entries by key alone; both are still read. Expired keys not yet
//! removed are included: the snapshot is the state machine's exact state, so replicas restored
//! from it keep applying the log identically. The checksum is verified before anything is parsed.

use super::codec::{put_bytes, put_varint, KvDecodeError, Reader};
use super::command::{KEY_BYTES_MAX, VALUE_BYTES_MAX};
use super::scan::scan_hash;
use super::state_machine::KvStore;
use super::table::FrozenTable;

const MAGIC: &[u8; 4] = b"PPKV";
/// The version written.
const SNAPSHOT_VERSION: u8 = 3;
/// The version without the log's time, still read.
const SNAPSHOT_VERSION_TIMELESS: u8 = 2;
/// The version with entries in ascending key order, still read.
const SNAPSHOT_VERSION_KEY_ORDER: u8 = 1;
const CHECKSUM_BYTES: usize = 4;

/// A shard's key space at one moment ([`KvStore::freeze`]), to serialize on another thread
/// while the store goes on applying writes.
#[derive(Debug, Clone)]
pub struct FrozenKv {
    entries: FrozenTable,
    time_ms: u64,
}

impl KvStore {
    /// Serializes the whole key space (format in the module docs).
    pub fn snapshot(&self) -> Vec<u8> {
        self.freeze().serialize(0)
    }

    /// The key space now, in constant time, for [`FrozenKv::serialize`] later: the store's
    /// parts are shared copy-on-write (`kv/table.rs`).
    pub fn freeze(&self) -> FrozenKv {
        FrozenKv { entries: self.entries.freeze(), time_ms: self.time_ms }
    }
}

impl FrozenKv {
    /// Serializes the frozen key space (format in the module docs) into a buffer first sized
    /// for `expected_bytes`: growing it step by step copies it over and over into freshly
    /// mapped pages, which the kernel must zero first.
    pub fn serialize(self, expected_bytes: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(expected_bytes);
        out.extend_from_slice(MAGIC);
        out.push(SNAPSHOT_VERSION);
        put_varint(&mut out, self.time_ms);
        put_varint(&mut out, self.entries.len() as u64);
        self.entries.drain_in_scan_order(|key, value| {
            put_bytes(&mut out, key);
            put_bytes(&mut out, &value.data);
            match value.expire_at_ms {
                None => out.push(0),
                Some(at) => {
                    out.push(1);
                    put_varint(&mut out, at);
                }
            }
        });
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }
}

impl KvStore {
    /// Rebuilds a key space from [`KvStore::snapshot`] output; never panics on bad input.
    pub fn restore(snapshot: &[u8]) -> Result<KvStore, KvDecodeError> {
        if snapshot.len() < MAGIC.len() + 1 + CHECKSUM_BYTES {
            return Err(KvDecodeError::Truncated { field: "snapshot header", offset: 0 });
        }
        let (body, stored) = snapshot.split_at(snapshot.len() - CHECKSUM_BYTES);
        if &body[..MAGIC.len()] != MAGIC {
            return Err(KvDecodeError::BadMagic);
        }
        let mut raw = [0u8; CHECKSUM_BYTES];
        raw.copy_from_slice(stored);
        let stored = u32::from_le_bytes(raw);
        let computed = crc32c::crc32c(body);
        if stored != computed {
            return Err(KvDecodeError::ChecksumMismatch { stored, computed });
        }
        let mut reader = Reader::new(&body[MAGIC.len()..]);
        let version = reader.u8("snapshot version")?;
        let time_ms = match version {
            SNAPSHOT_VERSION => reader.varint("snapshot time")?,
            SNAPSHOT_VERSION_TIMELESS | SNAPSHOT_VERSION_KEY_ORDER => 0,
            _ => return Err(KvDecodeError::UnsupportedVersion { version }),
        };
        // Versions 3 and 2 order by scan hash first; version 1 by key alone (hash 0 for all).
        let position = |key: &[u8]| if version == SNAPSHOT_VERSION_KEY_ORDER { 0 } else { scan_hash(key) };
        let count = reader.count("snapshot entry count", u64::MAX)?;
        let mut store = KvStore { time_ms, ..KvStore::new() };
        let mut previous: Option<(u64, Vec<u8>)> = None;
        for index in 0..count {
            let key = reader.bytes("snapshot key", KEY_BYTES_MAX)?;
            let data = reader.bytes("snapshot value", VALUE_BYTES_MAX)?;
            let offset = reader.offset();
            let expire_at_ms = match reader.u8("snapshot ttl flag")? {
                0 => None,
                1 => Some(reader.varint("snapshot expire time")?),
                tag => return Err(KvDecodeError::InvalidTag { field: "snapshot ttl flag", tag, offset }),
            };
            let here = (position(&key), key);
            if previous.as_ref().is_some_and(|prev| prev >= &here) {
                return Err(KvDecodeError::KeysOutOfOrder { index });
            }
            store.insert(&here.1, data, expire_at_ms);
            previous = Some(here);
        }
        reader.finish()?;
        Ok(store)
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

    /// A snapshot of `version` holding `keys` (value "v", no expiry) in the order given, at
    /// time 7 from version 3 on.
    fn snapshot_of(version: u8, keys: &[&[u8]]) -> Vec<u8> {
        let mut body = MAGIC.to_vec();
        body.push(version);
        if version >= SNAPSHOT_VERSION {
            put_varint(&mut body, 7);
        }
        put_varint(&mut body, keys.len() as u64);
        for key in keys {
            put_bytes(&mut body, key);
            put_bytes(&mut body, b"v");
            body.push(0);
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
            KvStore::restore(&snapshot_of(4, &[])),
            Err(KvDecodeError::UnsupportedVersion { version: 4 })
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
        assert_eq!(with_time, Ok(KvStore { time_ms: 7, ..expected }));
    }

    proptest! {
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

//! Snapshots of a shard's key space for the Raft core (log compaction and follower catch-up).
//!
//! # Format (version 1)
//!
//! ```text
//! magic "PPKV" | version:u8 | count:varint |
//!   count × (key:len-prefixed bytes | value:len-prefixed bytes | has_ttl:u8 [expire_at_ms:varint])
//! | crc32c:u32 little-endian over every preceding byte
//! ```
//!
//! Entries are in strictly ascending key order, which restore checks. Expired keys not yet
//! removed are included: the snapshot is the state machine's exact state, so replicas restored
//! from it keep applying the log identically. The checksum is verified before anything is parsed.

use super::codec::{put_bytes, put_varint, KvDecodeError, Reader};
use super::command::{KEY_BYTES_MAX, VALUE_BYTES_MAX};
use super::state_machine::KvStore;

const MAGIC: &[u8; 4] = b"PPKV";
const SNAPSHOT_VERSION: u8 = 1;
const CHECKSUM_BYTES: usize = 4;

impl KvStore {
    /// Serializes the whole key space (format in the module docs).
    pub fn snapshot(&self) -> Vec<u8> {
        let payload: usize = self.entries.iter().map(|(k, v)| k.len() + v.data.len() + 12).sum();
        let mut out = Vec::with_capacity(payload + 16);
        out.extend_from_slice(MAGIC);
        out.push(SNAPSHOT_VERSION);
        put_varint(&mut out, self.entries.len() as u64);
        for (key, value) in &self.entries {
            put_bytes(&mut out, key);
            put_bytes(&mut out, &value.data);
            match value.expire_at_ms {
                None => out.push(0),
                Some(at) => {
                    out.push(1);
                    put_varint(&mut out, at);
                }
            }
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

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
        if version != SNAPSHOT_VERSION {
            return Err(KvDecodeError::UnsupportedVersion { version });
        }
        let count = reader.count("snapshot entry count", u64::MAX)?;
        let mut store = KvStore::new();
        let mut previous: Option<Vec<u8>> = None;
        for index in 0..count {
            let key = reader.bytes("snapshot key", KEY_BYTES_MAX)?;
            let data = reader.bytes("snapshot value", VALUE_BYTES_MAX)?;
            let offset = reader.offset();
            let expire_at_ms = match reader.u8("snapshot ttl flag")? {
                0 => None,
                1 => Some(reader.varint("snapshot expire time")?),
                tag => return Err(KvDecodeError::InvalidTag { field: "snapshot ttl flag", tag, offset }),
            };
            if previous.as_ref().is_some_and(|prev| prev >= &key) {
                return Err(KvDecodeError::KeysOutOfOrder { index });
            }
            store.insert(&key, data, expire_at_ms);
            previous = Some(key);
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
            store.apply(&KvWrite { now_ms: 0, op });
        }
        store
    }

    #[test]
    fn snapshot_round_trips() {
        let store = sample();
        let restored = KvStore::restore(&store.snapshot()).expect("valid snapshot");
        assert_eq!(restored, store);
        restored.check_indexes();
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
    fn out_of_order_keys_are_refused_even_with_a_valid_checksum() {
        let mut body = MAGIC.to_vec();
        body.push(SNAPSHOT_VERSION);
        put_varint(&mut body, 2);
        for key in [b"b", b"a"] {
            put_bytes(&mut body, key);
            put_bytes(&mut body, b"v");
            body.push(0);
        }
        let crc = crc32c::crc32c(&body);
        body.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(KvStore::restore(&body), Err(KvDecodeError::KeysOutOfOrder { index: 1 }));
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

//! Which shard owns a key: the one place key → shard routing is decided, for the request path,
//! transactions, scripts and the simulator alike.
//!
//! A cluster routes keys by one of two schemes, recorded when it is founded
//! ([`super::cluster_file`]) and never changed, because a key's shard is where its data is:
//!
//! - [`KeyRouting::HashSlots`] (clusters founded since hash slots exist): the key's
//!   [`SlotId`] (CRC16 of the key or of its `{tag}`, as Redis Cluster computes it), and the
//!   slot's shard. Each shard owns one contiguous range of slots, the 16,384 slots split
//!   evenly in shard order: with 3 shards, shard 1 owns 0-5460, shard 2 5461-10921, shard 3
//!   10922-16383. Keys sharing a tag share a shard, so commands and transactions over them
//!   stay on one shard.
//! - [`KeyRouting::Crc32cModulo`] (clusters founded before): crc32c of the whole key modulo
//!   the shard count. Tags mean nothing there, and slots do not name shards.
//!
//! With one shard both schemes send every key to shard 1.

use super::slots::{SlotId, SLOT_COUNT};
use crate::storage::wal::GroupId;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A data shard: the Raft group of the same number (1-based; group 0 is the meta group).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShardId(pub u64);

impl ShardId {
    /// The Raft group replicating this shard.
    pub fn group(self) -> GroupId {
        GroupId(self.0)
    }
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// How a cluster maps keys to shards; fixed when the cluster is founded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyRouting {
    /// crc32c of the key modulo the shard count (clusters founded before hash slots).
    Crc32cModulo,
    /// Redis Cluster's hash slots, each shard owning a contiguous range of them.
    HashSlots,
}

/// The slots one shard owns, first to last inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardSlots {
    /// The shard.
    pub shard: ShardId,
    /// Its first slot.
    pub first: SlotId,
    /// Its last slot.
    pub last: SlotId,
}

/// Routes keys to the shards of one cluster; cheap to copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Router {
    routing: KeyRouting,
    /// Number of data shards, 1 to [`SLOT_COUNT`].
    shards: u16,
}

impl Router {
    /// A router over `shards` data shards, taken as 1 to [`SLOT_COUNT`] (the configuration
    /// allows far fewer; a count read from a damaged log entry must not make routing panic).
    pub fn new(routing: KeyRouting, shards: u64) -> Router {
        let shards = u16::try_from(shards.clamp(1, u64::from(SLOT_COUNT))).unwrap_or(SLOT_COUNT);
        Router { routing, shards }
    }

    /// How this cluster maps keys to shards.
    pub fn routing(&self) -> KeyRouting {
        self.routing
    }

    /// The number of data shards.
    pub fn shard_count(&self) -> u64 {
        u64::from(self.shards)
    }

    /// Every data shard, in order.
    pub fn shards(&self) -> impl Iterator<Item = ShardId> {
        (1..=self.shard_count()).map(ShardId)
    }

    /// Whether `shard` is one of this cluster's data shards.
    pub fn has_shard(&self, shard: u64) -> bool {
        (1..=self.shard_count()).contains(&shard)
    }

    /// The shard that owns `key`.
    pub fn shard_of(&self, key: &[u8]) -> ShardId {
        match self.routing {
            KeyRouting::HashSlots => self.shard_of_slot(SlotId::of(key)),
            KeyRouting::Crc32cModulo => ShardId(u64::from(crc32c::crc32c(key)) % self.shard_count() + 1),
        }
    }

    /// The shard owning `slot` in the even split: the last shard whose first slot is at most
    /// `slot` (shard i, 0-based, starts at ⌊i·16384/n⌋).
    fn shard_of_slot(&self, slot: SlotId) -> ShardId {
        let n = u64::from(self.shards);
        ShardId(((u64::from(slot.get()) + 1) * n - 1) / u64::from(SLOT_COUNT) + 1)
    }

    /// Each shard's slots, when slots decide where keys live (hash-slot routing, or a single
    /// shard owning everything); `None` under crc32c routing with several shards.
    pub fn slot_ranges(&self) -> Option<Vec<ShardSlots>> {
        if self.routing == KeyRouting::Crc32cModulo && self.shards > 1 {
            return None;
        }
        let n = u64::from(self.shards);
        let start = |i: u64| i * u64::from(SLOT_COUNT) / n;
        let slot = |s: u64| SlotId::new(u16::try_from(s).unwrap_or(SLOT_COUNT)).unwrap_or(SlotId::LAST);
        Some(
            (0..n)
                .map(|i| ShardSlots {
                    shard: ShardId(i + 1),
                    first: slot(start(i)),
                    last: slot(start(i + 1) - 1),
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_slots_split_evenly_into_contiguous_ranges() {
        for n in [1u64, 2, 3, 7, 8, 1000, 1024, u64::from(SLOT_COUNT)] {
            let router = Router::new(KeyRouting::HashSlots, n);
            let ranges = router.slot_ranges().expect("slots decide");
            assert_eq!(ranges.len() as u64, n);
            assert_eq!(ranges[0].first, SlotId::FIRST);
            assert_eq!(ranges[ranges.len() - 1].last, SlotId::LAST);
            let sizes: Vec<u64> =
                ranges.iter().map(|r| u64::from(r.last.get()) - u64::from(r.first.get()) + 1).collect();
            let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
            assert!(max - min <= 1, "{n} shards: sizes from {min} to {max}");
            for pair in ranges.windows(2) {
                assert_eq!(pair[0].last.get() + 1, pair[1].first.get(), "{n} shards: a gap or an overlap");
            }
            for range in &ranges {
                for s in range.first.get()..=range.last.get() {
                    assert_eq!(
                        router.shard_of_slot(SlotId::new(s).unwrap()),
                        range.shard,
                        "{n} shards, slot {s}"
                    );
                }
            }
        }
        let three = Router::new(KeyRouting::HashSlots, 3).slot_ranges().unwrap();
        let bounds: Vec<(u16, u16)> = three.iter().map(|r| (r.first.get(), r.last.get())).collect();
        assert_eq!(bounds, [(0, 5460), (5461, 10921), (10922, 16383)]);
    }

    #[test]
    fn keys_sharing_a_tag_share_a_shard_under_hash_slots_only() {
        let slots = Router::new(KeyRouting::HashSlots, 8);
        let tagged: Vec<ShardId> =
            (0..100).map(|i| slots.shard_of(format!("{{user1}}:{i}").as_bytes())).collect();
        assert!(tagged.iter().all(|&shard| shard == tagged[0]));
        let legacy = Router::new(KeyRouting::Crc32cModulo, 8);
        let spread: std::collections::BTreeSet<ShardId> =
            (0..100).map(|i| legacy.shard_of(format!("{{user1}}:{i}").as_bytes())).collect();
        assert!(spread.len() > 1, "crc32c routing hashes the whole key");
        assert_eq!(legacy.slot_ranges(), None);
    }

    #[test]
    fn crc32c_routing_is_the_one_clusters_were_founded_with_before_slots() {
        let legacy = Router::new(KeyRouting::Crc32cModulo, 8);
        for key in ["a", "foo", "{user1}:a", ""] {
            let expected = u64::from(crc32c::crc32c(key.as_bytes())) % 8 + 1;
            assert_eq!(legacy.shard_of(key.as_bytes()), ShardId(expected));
        }
    }

    #[test]
    fn one_shard_owns_every_key_under_either_scheme() {
        for routing in [KeyRouting::HashSlots, KeyRouting::Crc32cModulo] {
            let router = Router::new(routing, 1);
            assert!((0..1000u32).all(|i| router.shard_of(&i.to_le_bytes()) == ShardId(1)));
            let all = router.slot_ranges().expect("one shard owns every slot");
            assert_eq!(all, [ShardSlots { shard: ShardId(1), first: SlotId::FIRST, last: SlotId::LAST }]);
        }
    }
}

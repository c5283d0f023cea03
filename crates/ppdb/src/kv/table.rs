//! The key → value index of a shard: hash lookups, split into parts so growth never pauses long.
//!
//! Point lookups are most of a shard's work (every GET, and three or four per SET: expiry
//! check, condition, insert, expiry index). In an ordered map each one is a descent of about
//! log2(n) key comparisons through cold memory, which profiles showed as a tenth of a node's
//! apply and read time; a hash table takes one hash and one comparison. A hash table grows by
//! rehashing everything at once, a pause proportional to its size, which at millions of keys
//! would stall the node's loop for longer than a heartbeat. So the index is [`PARTS`] tables,
//! chosen by the key's [`scan_hash`]: each grows on its own, at 1/4096 of the size.
//!
//! The parts are shared copy-on-write: [`KeyTable::freeze`] takes the table's contents at that
//! moment in constant time, and a part is copied only when the table changes it while a frozen
//! view still holds it (the frozen view lets go of each part once it has serialized it). So a
//! snapshot of millions of keys is serialized off the node's loop while the loop goes on
//! applying writes, at the cost of one copy of each part written meanwhile. Copying a part
//! touches each of its keys and values once (their shared counts), about 2 ms for 10,000 keys
//! on the reference machine, hence many small parts: a round of writes right after a freeze
//! copies at most one small part per write.
//!
//! The order of [`KeyTable::iter`] is arbitrary and differs between processes (each part hashes
//! with its own random keys, which also keeps crafted keys from colliding): nothing replicated or
//! answered may depend on it. Ordered walks use the store's scan index or
//! [`KeyTable::sorted`].

use super::scan::scan_hash;
use super::state_machine::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// Number of parts: a power of two, indexed by the top bits of the scan hash.
const PARTS: usize = 4096;

/// One part of the table. Keys and values are shared bytes, so copying a part (when a frozen
/// view holds it) copies no key or value.
type Part = HashMap<Arc<[u8]>, Value>;

/// Keys → values (see the module docs).
///
/// Parts are made when a key first lands in them, and the list of parts when the first key
/// does: an empty table costs nothing to make or drop. A table for a handful of keys (a
/// cross-shard transaction's scratch key space, made and dropped at every PREPARE and COMMIT)
/// has a single part ([`KeyTable::single_part`]).
#[derive(Clone)]
pub struct KeyTable {
    parts: Vec<Option<Arc<Part>>>,
    /// log2 of the number of parts: the top bits of a key's scan hash choose its part.
    part_bits: u32,
    len: usize,
}

impl Default for KeyTable {
    fn default() -> Self {
        KeyTable { parts: Vec::new(), part_bits: PARTS.trailing_zeros(), len: 0 }
    }
}

impl PartialEq for KeyTable {
    /// Same keys with the same values, however the parts came to be made.
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().all(|(key, value)| other.get(key) == Some(value))
    }
}

impl Eq for KeyTable {}

impl std::fmt::Debug for KeyTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.sorted()).finish()
    }
}

impl KeyTable {
    /// A table of one part, for a few keys: nothing to make or drop beyond them.
    pub fn single_part() -> Self {
        KeyTable { part_bits: 0, ..KeyTable::default() }
    }

    /// The part that holds `key`: the same in every process, so two tables with the same keys
    /// and part count hold them in the same parts.
    fn part(&self, key: &[u8]) -> usize {
        match self.part_bits {
            0 => 0,
            bits => (scan_hash(key) >> (u64::BITS - bits)) as usize,
        }
    }

    /// The part that holds `key`, to change: copied first if a frozen view shares it.
    fn part_mut(&mut self, key: &[u8]) -> Option<&mut Part> {
        if self.parts.is_empty() {
            self.parts.resize(1 << self.part_bits, None);
        }
        let index = self.part(key);
        let part = self.parts.get_mut(index)?.get_or_insert_with(Default::default);
        Some(Arc::make_mut(part))
    }

    /// The value of `key`.
    pub fn get(&self, key: &[u8]) -> Option<&Value> {
        self.parts.get(self.part(key))?.as_ref()?.get(key)
    }

    /// The value of `key`, to change in place.
    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut Value> {
        if self.parts.get(self.part(key))?.is_none() {
            return None;
        }
        self.part_mut(key)?.get_mut(key)
    }

    /// Whether `key` is stored.
    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// Stores `value` under `key`; returns the value it replaces.
    pub fn insert(&mut self, key: Arc<[u8]>, value: Value) -> Option<Value> {
        let old = self.part_mut(&key)?.insert(key, value);
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    /// Removes `key`; returns its value.
    pub fn remove(&mut self, key: &[u8]) -> Option<Value> {
        if self.parts.get(self.part(key))?.is_none() {
            return None;
        }
        let old = self.part_mut(key)?.remove(key);
        if old.is_some() {
            self.len -= 1;
        }
        old
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Every key and value, in an arbitrary order (see the module docs).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &Value)> {
        self.parts.iter().flatten().flat_map(|part| part.iter()).map(|(key, value)| (&key[..], value))
    }

    /// Every key and value in ascending key order.
    pub fn sorted(&self) -> Vec<(&[u8], &Value)> {
        let mut entries: Vec<_> = self.iter().collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        entries
    }

    /// The table's contents now, in constant time: later changes to the table do not show in
    /// it (see the module docs).
    pub fn freeze(&self) -> FrozenTable {
        FrozenTable { parts: self.parts.clone(), len: self.len }
    }
}

/// A [`KeyTable`]'s contents at one moment ([`KeyTable::freeze`]), readable from any thread.
#[derive(Debug, Clone)]
pub struct FrozenTable {
    parts: Vec<Option<Arc<Part>>>,
    len: usize,
}

impl FrozenTable {
    /// Number of keys.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Visits every key and value in scan order, `(scan_hash(key), key)` ascending
    /// (snapshots), letting go of each part once visited so the table need not copy it. A part
    /// holds one range of scan hashes, so sorting each part on its own and taking the parts in
    /// order gives the whole order, a small sort at a time.
    pub fn drain_in_scan_order(self, mut visit: impl FnMut(&[u8], &Value)) {
        for part in self.parts.into_iter().flatten() {
            let mut entries: Vec<_> =
                part.iter().map(|(key, value)| (scan_hash(key), &key[..], value)).collect();
            entries.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
            for (_, key, value) in entries {
                visit(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::types::Data;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn value(n: u8) -> Value {
        Value { data: Data::String(vec![n].into()), expire_at_ms: None, version: 0, flags: 0 }
    }

    #[test]
    fn keys_are_stored_replaced_and_removed_with_the_count_kept() {
        let mut table = KeyTable::default();
        assert_eq!(table.len(), 0);
        assert_eq!(table.insert(b"a"[..].into(), value(1)), None);
        assert_eq!(table.insert(b""[..].into(), value(2)), None);
        assert_eq!(table.insert(b"a"[..].into(), value(3)), Some(value(1)));
        assert_eq!(table.len(), 2);
        assert_eq!(table.get(b"a"), Some(&value(3)));
        assert!(table.contains_key(b""));
        if let Some(v) = table.get_mut(b"") {
            v.data = Data::String(vec![9].into());
        }
        assert_eq!(table.get(b""), Some(&value(9)));
        assert_eq!(table.remove(b"a"), Some(value(3)));
        assert_eq!(table.remove(b"a"), None);
        assert_eq!(table.len(), 1);
        assert_eq!(
            format!("{table:?}"),
            "{[]: Value { data: String([9]), expire_at_ms: None, version: 0, flags: 0 }}"
        );
    }

    #[test]
    fn an_empty_table_makes_no_parts_and_equality_ignores_how_parts_came_to_be() {
        let mut table = KeyTable::default();
        assert!(table.parts.is_empty());
        assert_eq!(table.remove(b"a"), None);
        assert_eq!(table.get_mut(b"a"), None);
        assert!(table.parts.is_empty(), "a miss makes nothing");
        table.insert(b"a"[..].into(), value(1));
        assert_eq!(table.parts.iter().flatten().count(), 1, "one part for one key");
        assert_ne!(table, KeyTable::default());
        table.remove(b"a");
        assert_eq!(table, KeyTable::default(), "an emptied table equals a new one");
    }

    #[test]
    fn a_single_part_table_holds_and_drains_keys_as_a_partitioned_one_does() {
        let (mut small, mut large) = (KeyTable::single_part(), KeyTable::default());
        for n in 0..200u8 {
            small.insert(vec![n].into(), value(n));
            large.insert(vec![n].into(), value(n));
        }
        small.remove(&[7]);
        large.remove(&[7]);
        assert_eq!(small.parts.len(), 1);
        assert_eq!(small, large);
        let drained = |table: &KeyTable| {
            let mut keys = Vec::new();
            table.freeze().drain_in_scan_order(|key, _| keys.push(key.to_vec()));
            keys
        };
        assert_eq!(drained(&small), drained(&large));
    }

    #[test]
    fn a_frozen_view_keeps_its_contents_while_the_table_changes() {
        let mut table = KeyTable::default();
        for n in 0..100u8 {
            table.insert(vec![n].into(), value(n));
        }
        let frozen = table.freeze();
        let mut before = Vec::new();
        frozen.clone().drain_in_scan_order(|k, v| before.push((k.to_vec(), v.clone())));
        for n in 0..50u8 {
            table.insert(vec![n].into(), value(n.wrapping_add(1)));
            table.remove(&[n + 50]);
            if let Some(v) = table.get_mut(&[n]) {
                v.expire_at_ms = Some(1);
            }
        }
        table.insert(b"new"[..].into(), value(0));
        assert_eq!(frozen.len(), 100);
        let mut after = Vec::new();
        frozen.drain_in_scan_order(|k, v| after.push((k.to_vec(), v.clone())));
        assert_eq!(before, after, "the frozen view did not change");
        assert_eq!(table.len(), 51);
        assert_eq!(
            table.get(&[3]),
            Some(&Value { data: Data::String(vec![4].into()), expire_at_ms: Some(1), version: 0, flags: 0 })
        );
        assert_eq!(table.freeze().len(), 51);
    }

    proptest! {
        /// Any sequence of inserts and removes leaves the table equal to an ordered map given
        /// the same sequence, and tables with the same keys compare equal however they got them.
        #[test]
        fn behaves_as_a_map(ops in proptest::collection::vec((any::<bool>(), 0u8..40, any::<u8>()), 0..300)) {
            let mut table = KeyTable::default();
            let mut model = BTreeMap::new();
            for &(insert, key, n) in &ops {
                let key = vec![key; usize::from(key % 5)];
                if insert {
                    prop_assert_eq!(table.insert(key.clone().into(), value(n)), model.insert(key, value(n)));
                } else {
                    prop_assert_eq!(table.remove(&key), model.remove(&key));
                }
            }
            prop_assert_eq!(table.len(), model.len());
            let sorted: Vec<_> = table.sorted().into_iter().map(|(k, v)| (k.to_vec(), v.clone())).collect();
            let expected: Vec<_> = model.clone().into_iter().collect();
            prop_assert_eq!(sorted, expected);
            let mut scan = Vec::new();
            table.freeze().drain_in_scan_order(|k, _| scan.push((scan_hash(k), k.to_vec())));
            let mut expected_scan: Vec<_> = model.keys().map(|k| (scan_hash(k), k.clone())).collect();
            expected_scan.sort();
            prop_assert_eq!(scan, expected_scan);
            let mut rebuilt = KeyTable::default();
            for (key, v) in model.into_iter().rev() {
                rebuilt.insert(key.into(), v);
            }
            prop_assert!(rebuilt == table);
        }
    }
}

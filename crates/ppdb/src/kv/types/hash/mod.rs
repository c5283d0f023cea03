//! Hashes: a key holding fields and their values.
//!
//! Fields keep the order of an insertion-ordered table: a new field goes last. Removing a field
//! from a hash of at most [`SMALL_HASH_FIELDS_MAX`] fields keeps the others in order, as Redis's
//! small-hash encoding (a listpack) does, so replies list a small hash's fields in Redis's
//! order; removing one from a larger hash moves the last field into its place, in O(1) (Redis's
//! own order is then a hash table's). Either way the order is the same on every replica that
//! applied the same log, whatever each process's hashing, and a removal only ever moves fields
//! to lower positions, which HSCAN's cursor relies on (`read`).

mod apply;
mod command;
mod read;

use indexmap::IndexMap;

pub use command::{HashRead, HashWrite};

/// Memory counted per field beyond its bytes: the table's entry (hash, two boxed byte strings)
/// and index slot, and the allocator's headers of the two strings. An estimate.
pub const FIELD_OVERHEAD_BYTES: u64 = 64;

/// The most fields of a hash Redis keeps in its small encoding (`hash-max-listpack-entries`):
/// up to it, removals keep the order and HSCAN answers in one page, as Redis does.
pub const SMALL_HASH_FIELDS_MAX: usize = 128;

/// A hash's fields and values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HashValue {
    fields: IndexMap<Box<[u8]>, Box<[u8]>>,
    bytes: u64,
}

super::collection!(HashValue, Hash);

/// The memory one field is counted for.
fn field_bytes(field: &[u8], value: &[u8]) -> u64 {
    field.len() as u64 + value.len() as u64 + FIELD_OVERHEAD_BYTES
}

impl HashValue {
    /// Number of fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// The value of `field`.
    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        self.fields.get(field).map(|value| &value[..])
    }

    /// Sets `field` to `value`; true when the field is new.
    pub fn insert(&mut self, field: &[u8], value: &[u8]) -> bool {
        self.bytes += field_bytes(field, value);
        match self.fields.get_mut(field) {
            Some(old) => {
                self.bytes -= field_bytes(field, old);
                *old = value.into();
                false
            }
            None => {
                self.fields.insert(field.into(), value.into());
                true
            }
        }
    }

    /// Removes `field`; returns its value. Keeps the order of a small hash (O(n), n at most
    /// [`SMALL_HASH_FIELDS_MAX`]); moves the last field into the gap of a larger one (O(1)).
    pub fn remove(&mut self, field: &[u8]) -> Option<Box<[u8]>> {
        let value = if self.fields.len() <= SMALL_HASH_FIELDS_MAX {
            self.fields.shift_remove(field)?
        } else {
            self.fields.swap_remove(field)?
        };
        self.bytes -= field_bytes(field, &value);
        Some(value)
    }

    /// Every field and value, in the hash's order (see the module docs).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.fields.iter().map(|(field, value)| (&field[..], &value[..]))
    }

    /// The field and value at `index` in the hash's order (HRANDFIELD).
    pub fn get_index(&self, index: usize) -> Option<(&[u8], &[u8])> {
        self.fields.get_index(index).map(|(field, value)| (&field[..], &value[..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::types::Collection;

    #[test]
    fn fields_are_set_replaced_and_removed_with_memory_counted() {
        let mut hash = HashValue::default();
        assert!(hash.insert(b"a", b"1"));
        assert!(hash.insert(b"b", b"22"));
        assert!(!hash.insert(b"a", b"333"));
        assert_eq!(hash.get(b"a"), Some(&b"333"[..]));
        assert_eq!(hash.bytes(), field_bytes(b"a", b"333") + field_bytes(b"b", b"22"));
        assert_eq!(hash.remove(b"a").as_deref(), Some(&b"333"[..]));
        assert_eq!(hash.remove(b"a"), None);
        assert_eq!(hash.bytes(), field_bytes(b"b", b"22"));
        assert_eq!(hash.iter().collect::<Vec<_>>(), vec![(&b"b"[..], &b"22"[..])]);
        hash.remove(b"b");
        assert!(hash.is_empty());
        assert_eq!(hash.bytes(), 0);
    }

    fn numbered(count: usize) -> HashValue {
        let mut hash = HashValue::default();
        for n in 0..count {
            hash.insert(format!("f{n}").as_bytes(), b"v");
        }
        hash
    }

    fn order(hash: &HashValue) -> Vec<String> {
        hash.iter().map(|(field, _)| String::from_utf8_lossy(field).into_owned()).collect()
    }

    #[test]
    fn a_small_hash_keeps_its_order_on_removal_and_a_large_one_fills_the_gap_with_its_last_field() {
        let mut small = numbered(4);
        small.remove(b"f1");
        assert_eq!(order(&small), ["f0", "f2", "f3"]);
        let mut large = numbered(SMALL_HASH_FIELDS_MAX + 1);
        large.remove(b"f1");
        let last = format!("f{SMALL_HASH_FIELDS_MAX}");
        assert_eq!(order(&large)[..3], ["f0".to_owned(), last, "f2".to_owned()]);
        assert_eq!(large.len(), SMALL_HASH_FIELDS_MAX);
        // Now small: order kept again.
        large.remove(b"f0");
        assert_eq!(order(&large)[1], "f2");
    }
}

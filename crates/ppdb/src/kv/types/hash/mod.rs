//! Hashes: a key holding fields and their values.
//!
//! Fields keep the order of an insertion-ordered table: a new field goes last, and removing a
//! field moves the last one into its place. That order is the same on every replica that applied
//! the same log, whatever each process's hashing; Redis promises no order either.

mod command;

use indexmap::IndexMap;

pub use command::{HashRead, HashWrite};

/// Memory counted per field beyond its bytes: the table's entry (hash, two boxed byte strings)
/// and index slot, and the allocator's headers of the two strings. An estimate.
pub const FIELD_OVERHEAD_BYTES: u64 = 64;

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

    /// Removes `field`; returns its value.
    pub fn remove(&mut self, field: &[u8]) -> Option<Box<[u8]>> {
        let value = self.fields.swap_remove(field)?;
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
}

//! Lists: a key holding a sequence of elements, pushed and popped at both ends.

mod command;
mod pop;

use std::collections::VecDeque;

pub use command::{ListRead, ListWrite};
pub use pop::{End, ListPop};

/// Memory counted per element beyond its bytes: the deque's slot (a boxed byte string) and the
/// allocator's header of the element. An estimate.
pub const ELEMENT_OVERHEAD_BYTES: u64 = 24;

/// A list's elements, head first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListValue {
    items: VecDeque<Box<[u8]>>,
    bytes: u64,
}

super::collection!(ListValue, List);

/// The memory one element is counted for.
fn element_bytes(element: &[u8]) -> u64 {
    element.len() as u64 + ELEMENT_OVERHEAD_BYTES
}

impl ListValue {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// The element at `index` (0 is the head).
    pub fn get(&self, index: usize) -> Option<&[u8]> {
        self.items.get(index).map(|item| &item[..])
    }

    /// Every element, head first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &[u8]> + ExactSizeIterator {
        self.items.iter().map(|item| &item[..])
    }

    /// Adds `element` before the head (LPUSH).
    pub fn push_front(&mut self, element: &[u8]) {
        self.bytes += element_bytes(element);
        self.items.push_front(element.into());
    }

    /// Adds `element` after the tail (RPUSH).
    pub fn push_back(&mut self, element: &[u8]) {
        self.bytes += element_bytes(element);
        self.items.push_back(element.into());
    }

    /// Removes and returns the head.
    pub fn pop_front(&mut self) -> Option<Box<[u8]>> {
        let item = self.items.pop_front()?;
        self.bytes -= element_bytes(&item);
        Some(item)
    }

    /// Removes and returns the tail.
    pub fn pop_back(&mut self) -> Option<Box<[u8]>> {
        let item = self.items.pop_back()?;
        self.bytes -= element_bytes(&item);
        Some(item)
    }

    /// Replaces the element at `index` (LSET); false when there is none.
    pub fn replace(&mut self, index: usize, element: &[u8]) -> bool {
        let Some(slot) = self.items.get_mut(index) else {
            return false;
        };
        self.bytes = self.bytes - element_bytes(slot) + element_bytes(element);
        *slot = element.into();
        true
    }

    /// Inserts `element` so that it ends up at `index` (LINSERT); `index` at most the length.
    pub fn insert(&mut self, index: usize, element: &[u8]) {
        self.bytes += element_bytes(element);
        self.items.insert(index, element.into());
    }

    /// Removes and returns the element at `index` (LREM).
    pub fn remove(&mut self, index: usize) -> Option<Box<[u8]>> {
        let item = self.items.remove(index)?;
        self.bytes -= element_bytes(&item);
        Some(item)
    }

    /// Keeps only the elements at `start..end` (LTRIM); indexes past the length are clamped.
    pub fn keep_range(&mut self, start: usize, end: usize) {
        let end = end.min(self.items.len());
        let start = start.min(end);
        let dropped_bytes: u64 = self
            .items
            .iter()
            .take(start)
            .chain(self.items.iter().skip(end))
            .map(|item| element_bytes(item))
            .sum();
        self.items.truncate(end);
        self.items.drain(..start);
        self.bytes -= dropped_bytes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::types::Collection;

    #[test]
    fn both_ends_push_and_pop_with_memory_counted() {
        let mut list = ListValue::default();
        list.push_back(b"b");
        list.push_front(b"a");
        list.push_back(b"c");
        assert_eq!(list.iter().collect::<Vec<_>>(), vec![&b"a"[..], b"b", b"c"]);
        assert!(list.replace(1, b"bb"));
        assert!(!list.replace(3, b"x"));
        list.insert(3, b"d");
        assert_eq!(list.remove(0).as_deref(), Some(&b"a"[..]));
        assert_eq!(list.bytes(), [&b"bb"[..], b"c", b"d"].iter().map(|e| element_bytes(e)).sum::<u64>());
        list.keep_range(1, 9);
        assert_eq!(list.iter().collect::<Vec<_>>(), vec![&b"c"[..], b"d"]);
        assert_eq!(list.pop_back().as_deref(), Some(&b"d"[..]));
        assert_eq!(list.pop_front().as_deref(), Some(&b"c"[..]));
        assert!(list.is_empty());
        assert_eq!(list.bytes(), 0);
    }
}

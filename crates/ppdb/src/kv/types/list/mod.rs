//! Lists: a key holding a sequence of elements, pushed and popped at both ends.
//!
//! The elements sit in a ring buffer, so both ends and any index are reached in O(1) (Redis's
//! quicklist walks its nodes to an index). Short elements are stored inside their slot
//! (`element`): 24 bytes per short element, 1.5x what Redis's packed quicklist takes.

mod command;
#[cfg(test)]
mod command_tests;
mod element;
mod pop;

use std::collections::VecDeque;

use element::Element;
pub use pop::{End, ListPop};

pub use command::{ListRead, ListWrite, Side};

/// Memory counted per element beyond what a long element allocates: its slot in the ring
/// buffer. An estimate.
pub const ELEMENT_SLOT_BYTES: u64 = std::mem::size_of::<Element>() as u64;

/// A list's elements, head first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListValue {
    items: VecDeque<Element>,
    bytes: u64,
}

super::collection!(ListValue, List);

/// The memory one element is counted for.
fn element_bytes(element: &Element) -> u64 {
    ELEMENT_SLOT_BYTES + element.heap_bytes()
}

impl ListValue {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// The element at `index` (0 is the head).
    pub fn get(&self, index: usize) -> Option<&[u8]> {
        self.items.get(index).map(Element::as_bytes)
    }

    /// Every element, head first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &[u8]> + ExactSizeIterator {
        self.items.iter().map(Element::as_bytes)
    }

    /// Adds `element` before the head (LPUSH).
    pub fn push_front(&mut self, element: &[u8]) {
        let element = Element::new(element);
        self.bytes += element_bytes(&element);
        self.items.push_front(element);
    }

    /// Adds `element` after the tail (RPUSH).
    pub fn push_back(&mut self, element: &[u8]) {
        let element = Element::new(element);
        self.bytes += element_bytes(&element);
        self.items.push_back(element);
    }

    /// Removes and returns the head.
    pub fn pop_front(&mut self) -> Option<Box<[u8]>> {
        let item = self.items.pop_front()?;
        self.bytes -= element_bytes(&item);
        Some(item.into_boxed())
    }

    /// Removes and returns the tail.
    pub fn pop_back(&mut self) -> Option<Box<[u8]>> {
        let item = self.items.pop_back()?;
        self.bytes -= element_bytes(&item);
        Some(item.into_boxed())
    }

    /// Replaces the element at `index` (LSET); false when there is none.
    pub fn replace(&mut self, index: usize, element: &[u8]) -> bool {
        let Some(slot) = self.items.get_mut(index) else {
            return false;
        };
        let element = Element::new(element);
        self.bytes = self.bytes - element_bytes(slot) + element_bytes(&element);
        *slot = element;
        true
    }

    /// Inserts `element` so that it ends up at `index` (LINSERT); `index` at most the length.
    /// O(n): the elements on the shorter side of `index` move.
    pub fn insert(&mut self, index: usize, element: &[u8]) {
        let element = Element::new(element);
        self.bytes += element_bytes(&element);
        self.items.insert(index, element);
    }

    /// Removes and returns the element at `index` (LREM).
    pub fn remove(&mut self, index: usize) -> Option<Box<[u8]>> {
        let item = self.items.remove(index)?;
        self.bytes -= element_bytes(&item);
        Some(item.into_boxed())
    }

    /// Removes the elements equal to `element` (LREM): the first `limit` of them from the
    /// head, or from the tail, or every one when `limit` is 0. Returns how many went. O(n).
    pub fn remove_matching(&mut self, element: &[u8], from_head: bool, limit: usize) -> usize {
        let is_match = |item: &Element| item.as_bytes() == element;
        let mut positions = self.items.iter().enumerate().filter(|(_, item)| is_match(item)).map(|(i, _)| i);
        // The `limit`-th match from the chosen end: the matches beyond it stay.
        let last = match limit.checked_sub(1) {
            None => None,
            Some(nth) if from_head => positions.nth(nth),
            Some(nth) => positions.rev().nth(nth),
        };
        let in_reach = |index: usize| match last {
            None => true,
            Some(last) if from_head => index <= last,
            Some(last) => index >= last,
        };
        let (len_before, mut index, mut freed) = (self.items.len(), 0, 0);
        self.items.retain(|item| {
            let remove = in_reach(index) && is_match(item);
            index += 1;
            if remove {
                freed += element_bytes(item);
            }
            !remove
        });
        self.bytes -= freed;
        len_before - self.items.len()
    }

    /// Keeps only the elements at `start..end` (LTRIM); indexes past the length are clamped.
    pub fn keep_range(&mut self, start: usize, end: usize) {
        let end = end.min(self.items.len());
        let start = start.min(end);
        let dropped_bytes: u64 =
            self.items.iter().take(start).chain(self.items.iter().skip(end)).map(element_bytes).sum();
        self.items.truncate(end);
        self.items.drain(..start);
        self.bytes -= dropped_bytes;
    }
}

#[cfg(test)]
impl ListValue {
    /// The memory count of exactly these elements, counted afresh.
    pub(super) fn recounted_bytes(&self) -> u64 {
        self.items.iter().map(element_bytes).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::types::Collection;

    fn list_of(elements: &[&[u8]]) -> ListValue {
        let mut list = ListValue::default();
        elements.iter().for_each(|element| list.push_back(element));
        list
    }

    #[test]
    fn both_ends_push_and_pop_with_memory_counted() {
        let mut list = ListValue::default();
        list.push_back(b"b");
        list.push_front(b"a");
        list.push_back(b"c");
        assert_eq!(list.iter().collect::<Vec<_>>(), vec![&b"a"[..], b"b", b"c"]);
        assert!(list.replace(1, &[b'b'; 100]));
        assert_eq!(list.bytes(), list.recounted_bytes());
        assert!(list.replace(1, b"bb"));
        assert!(!list.replace(3, b"x"));
        list.insert(3, b"d");
        assert_eq!(list.remove(0).as_deref(), Some(&b"a"[..]));
        assert_eq!(list.bytes(), list.recounted_bytes());
        list.keep_range(1, 9);
        assert_eq!(list.iter().collect::<Vec<_>>(), vec![&b"c"[..], b"d"]);
        assert_eq!(list.pop_back().as_deref(), Some(&b"d"[..]));
        assert_eq!(list.pop_front().as_deref(), Some(&b"c"[..]));
        assert!(list.is_empty());
        assert_eq!(list.bytes(), 0);
    }

    #[test]
    fn long_elements_count_their_allocation_and_short_ones_only_their_slot() {
        let long = [b'x'; 100];
        let list = list_of(&[b"short", &long]);
        assert_eq!(list.bytes(), 2 * ELEMENT_SLOT_BYTES + 100 + 16);
        assert_eq!(list.get(1), Some(&long[..]));
    }

    #[test]
    fn remove_matching_takes_the_first_or_last_matches_or_all() {
        let cases: [(bool, usize, &[&[u8]]); 5] = [
            (true, 2, &[b"b", b"a", b"c", b"a"]),
            (false, 2, &[b"a", b"b", b"a", b"c"]),
            (true, 0, &[b"b", b"c"]),
            (false, 9, &[b"b", b"c"]),
            (true, 1, &[b"b", b"a", b"a", b"c", b"a"]),
        ];
        for (from_head, limit, left) in cases {
            let mut list = list_of(&[b"a", b"b", b"a", b"a", b"c", b"a"]);
            let removed = list.remove_matching(b"a", from_head, limit);
            assert_eq!(list.iter().collect::<Vec<_>>(), left, "from_head {from_head}, limit {limit}");
            assert_eq!(removed, 6 - left.len());
            assert_eq!(list.bytes(), list.recounted_bytes());
        }
        let mut list = list_of(&[b"a"]);
        assert_eq!(list.remove_matching(b"zz", true, 0), 0);
        assert_eq!(list.len(), 1);
    }
}

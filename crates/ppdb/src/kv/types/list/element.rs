//! One list element, stored compactly: a short element lives inside its slot of the list, with
//! no allocation of its own; a longer one is boxed.
//!
//! Why: queues and logs are lists of many short elements (ids, small JSON, `job:1234`). A
//! boxed slice costs a 16-byte slot plus an allocation of its own: a list of 1M elements
//! `element:N` took 43 bytes of RSS per element that way, 2.7x Redis's 16 (one packed
//! quicklist). Inline, the same element costs its 24-byte slot and nothing else: 30 bytes of
//! RSS per element, the ring buffer's growth included.

use std::fmt;

/// The longest element kept inline: what fits beside the length byte and the variant's tag in
/// the 24 bytes a boxed slice's variant takes anyway.
pub(super) const INLINE_BYTES_MAX: usize = 22;

/// A list element's bytes.
#[derive(Clone)]
pub(super) enum Element {
    /// Up to [`INLINE_BYTES_MAX`] bytes, kept in the slot: the first `len` of `bytes`.
    Inline {
        /// How many of `bytes` are the element.
        len: u8,
        /// The element, then zeros.
        bytes: [u8; INLINE_BYTES_MAX],
    },
    /// A longer element, in its own allocation.
    Boxed(Box<[u8]>),
}

// A slot is no larger than the boxed slice it replaces would be with its tag.
const _: () = assert!(std::mem::size_of::<Element>() == 24);

impl Element {
    /// The element holding `bytes`.
    pub(super) fn new(bytes: &[u8]) -> Element {
        if bytes.len() > INLINE_BYTES_MAX {
            return Element::Boxed(bytes.into());
        }
        let mut inline = [0u8; INLINE_BYTES_MAX];
        inline[..bytes.len()].copy_from_slice(bytes);
        Element::Inline { len: bytes.len() as u8, bytes: inline }
    }

    /// The element's bytes.
    pub(super) fn as_bytes(&self) -> &[u8] {
        match self {
            // `len <= INLINE_BYTES_MAX`: only `new` makes an inline element.
            Element::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Element::Boxed(bytes) => bytes,
        }
    }

    /// The element as a boxed slice (what a pop hands back).
    pub(super) fn into_boxed(self) -> Box<[u8]> {
        match self {
            Element::Inline { .. } => self.as_bytes().into(),
            Element::Boxed(bytes) => bytes,
        }
    }

    /// Memory the element holds outside its slot: none inline; a boxed element's bytes and the
    /// allocator's header of them. An estimate.
    pub(super) fn heap_bytes(&self) -> u64 {
        match self {
            Element::Inline { .. } => 0,
            Element::Boxed(bytes) => bytes.len() as u64 + ALLOCATION_OVERHEAD_BYTES,
        }
    }
}

/// What the allocator adds to one allocation (header and rounding), as the memory estimate
/// counts it.
const ALLOCATION_OVERHEAD_BYTES: u64 = 16;

impl PartialEq for Element {
    fn eq(&self, other: &Element) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Element {}

impl fmt::Debug for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_bytes(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_elements_are_inline_and_long_ones_boxed_with_the_same_bytes() {
        for len in [0, 1, INLINE_BYTES_MAX, INLINE_BYTES_MAX + 1, 1000] {
            let bytes: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let element = Element::new(&bytes);
            assert_eq!(element.as_bytes(), &bytes[..]);
            assert_eq!(matches!(element, Element::Inline { .. }), len <= INLINE_BYTES_MAX, "{len}");
            assert_eq!(element.heap_bytes() == 0, len <= INLINE_BYTES_MAX);
            assert_eq!(&element.clone().into_boxed()[..], &bytes[..]);
        }
        assert_eq!(Element::new(b"ab"), Element::new(b"ab"));
        assert_ne!(Element::new(b"ab"), Element::new(b"ab\0"));
    }
}

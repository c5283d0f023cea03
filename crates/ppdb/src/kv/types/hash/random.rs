//! HRANDFIELD's choices: positions in a hash drawn from a seed the parser chose, so that every
//! node answering the same query chooses the same fields (the kv layer has no randomness of
//! its own).

use std::collections::BTreeMap;

/// A splitmix64 stream from a seed.
pub(super) struct SeededPositions {
    state: u64,
}

impl SeededPositions {
    /// The stream that `seed` starts.
    pub(super) fn new(seed: u64) -> Self {
        SeededPositions { state: seed }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A position below `len` (which is not 0).
    pub(super) fn below(&mut self, len: usize) -> usize {
        debug_assert!(len > 0, "a position is drawn only from a non-empty hash");
        (self.next_u64() % len as u64) as usize
    }

    /// `count` distinct positions below `len` (`count <= len`), in random order: a partial
    /// Fisher-Yates shuffle that records only the swapped slots, O(count log count).
    pub(super) fn distinct(&mut self, count: usize, len: usize) -> Vec<usize> {
        debug_assert!(count <= len, "at most every position once");
        let mut swapped: BTreeMap<usize, usize> = BTreeMap::new();
        let mut chosen = Vec::with_capacity(count);
        for slot in 0..count {
            let other = slot + self.below(len - slot);
            let at_other = swapped.get(&other).copied().unwrap_or(other);
            let at_slot = swapped.get(&slot).copied().unwrap_or(slot);
            swapped.insert(other, at_slot);
            chosen.push(at_other);
        }
        chosen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_chooses_the_same_positions_and_another_seed_others() {
        let draw = |seed| SeededPositions::new(seed).distinct(5, 1000);
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
    }

    #[test]
    fn distinct_positions_are_distinct_below_len_and_cover_all_when_asked() {
        let mut positions = SeededPositions::new(42);
        for (count, len) in [(0, 3), (1, 1), (3, 10), (10, 10), (50, 64)] {
            let mut chosen = positions.distinct(count, len);
            assert_eq!(chosen.len(), count);
            assert!(chosen.iter().all(|&p| p < len));
            chosen.sort_unstable();
            chosen.dedup();
            assert_eq!(chosen.len(), count, "distinct for {count} of {len}");
        }
    }

    #[test]
    fn every_position_is_drawn_about_equally_often() {
        let mut positions = SeededPositions::new(1);
        let mut hits = [0u32; 10];
        for _ in 0..100_000 {
            hits[positions.below(10)] += 1;
        }
        assert!(hits.iter().all(|&n| (9_000..11_000).contains(&n)), "{hits:?}");
    }
}

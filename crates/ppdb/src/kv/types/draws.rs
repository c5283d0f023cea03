//! Seeded random choices for the commands that choose at random (SPOP, SRANDMEMBER,
//! HRANDFIELD, ZRANDMEMBER).
//!
//! The kv layer has no randomness of its own: the parser draws a seed and puts it in the
//! operation, and every choice follows from that seed and the collection's order, so every
//! replica applying the same SPOP removes the same members, and every node answering the same
//! query chooses the same elements.

use std::collections::BTreeMap;

/// A deterministic stream of 64-bit draws from a seed (splitmix64).
pub(crate) struct Draws {
    state: u64,
}

impl Draws {
    /// The stream of `seed`.
    pub(crate) fn new(seed: u64) -> Draws {
        Draws { state: seed }
    }

    /// The next draw.
    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A position in `0..len` (`len` > 0), by multiplying a draw (Lemire's method; the bias
    /// is below `len / 2^64`). SPOP's log entries replay through it: changing it changes what
    /// a replica replaying an old log removes.
    pub(crate) fn below(&mut self, len: usize) -> usize {
        debug_assert!(len > 0, "a draw needs at least one position");
        ((u128::from(self.next()) * len as u128) >> 64) as usize
    }

    /// `count` distinct positions below `len` (`count <= len`), in random order: a partial
    /// Fisher-Yates shuffle that records only the swapped slots, O(count log count).
    pub(crate) fn distinct(&mut self, count: usize, len: usize) -> Vec<usize> {
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
    fn the_same_seed_draws_the_same_positions_and_another_seed_others() {
        let draw = |seed| Draws::new(seed).distinct(5, 1000);
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
    }

    #[test]
    fn the_stream_is_splitmix64() {
        // The first outputs of splitmix64 seeded with 0, as published with the algorithm: SPOP's
        // logged entries depend on them.
        let mut draws = Draws::new(0);
        assert_eq!(draws.next(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(draws.next(), 0x6e78_9e6a_a1b9_65f4);
    }

    #[test]
    fn distinct_positions_are_distinct_below_len_and_cover_all_when_asked() {
        let mut draws = Draws::new(42);
        for (count, len) in [(0, 3), (1, 1), (3, 10), (10, 10), (50, 64)] {
            let mut chosen = draws.distinct(count, len);
            assert_eq!(chosen.len(), count);
            assert!(chosen.iter().all(|&p| p < len));
            chosen.sort_unstable();
            chosen.dedup();
            assert_eq!(chosen.len(), count, "distinct for {count} of {len}");
        }
    }

    #[test]
    fn every_position_is_drawn_about_equally_often() {
        let mut draws = Draws::new(1);
        let mut hits = [0u32; 10];
        for _ in 0..100_000 {
            hits[draws.below(10)] += 1;
        }
        assert!(hits.iter().all(|&n| (9_000..11_000).contains(&n)), "{hits:?}");
    }
}

//! SPOP and SRANDMEMBER: random members chosen from a seed.
//!
//! The kv layer has no randomness of its own: the parser draws a seed and puts it in the
//! operation, and every choice here follows from that seed and the set's order (`Draws`), so
//! every replica applying the same SPOP removes the same members, and two SRANDMEMBER calls,
//! with two seeds, differ.

use super::SetValue;
use crate::kv::types::draws::Draws;

impl SetValue {
    /// SPOP: removes up to `count` members chosen by `draws`, each one in O(1); all of them,
    /// in the set's order, when `count` reaches the set's size.
    pub(super) fn pop_random(&mut self, count: u64, draws: &mut Draws) -> Vec<Box<[u8]>> {
        if count >= self.len() as u64 {
            return self.take_all();
        }
        (0..count).filter_map(|_| self.remove_index(draws.below(self.len()))).collect()
    }

    /// SRANDMEMBER with a positive count: `count` distinct members chosen by `draws`, in the
    /// order drawn; the whole set, in its order, when `count` reaches its size.
    pub(super) fn sample_distinct(&self, count: u64, draws: &mut Draws) -> Vec<&[u8]> {
        let len = self.len();
        if count >= len as u64 {
            return self.iter().collect();
        }
        // count < len, so it is a usize.
        let positions = draws.distinct(count as usize, len);
        positions.into_iter().filter_map(|index| self.get_index(index)).collect()
    }

    /// SRANDMEMBER with a negative count: members chosen by `draws`, each independently (so
    /// they may repeat), one per call of the iterator. Empty for an empty set.
    pub(super) fn sample_with_repeats<'a>(
        &'a self,
        draws: &'a mut Draws,
    ) -> impl Iterator<Item = &'a [u8]> + 'a {
        std::iter::from_fn(move || {
            (!self.is_empty()).then(|| self.get_index(draws.below(self.len()))).flatten()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn set_of(count: usize) -> SetValue {
        let members: Vec<String> = (0..count).map(|n| format!("m{n}")).collect();
        members.iter().map(|m| m.as_bytes()).collect()
    }

    #[test]
    fn the_same_seed_draws_the_same_members() {
        let set = set_of(100);
        let sample = |seed| set.sample_distinct(10, &mut Draws::new(seed));
        assert_eq!(sample(7), sample(7));
        assert_ne!(sample(7), sample(8));
        let (mut a, mut b) = (set.clone(), set.clone());
        assert_eq!(a.pop_random(5, &mut Draws::new(3)), b.pop_random(5, &mut Draws::new(3)));
        assert_eq!(a.iter().collect::<Vec<_>>(), b.iter().collect::<Vec<_>>());
    }

    #[test]
    fn distinct_samples_are_distinct_and_cover_every_member() {
        let set = set_of(20);
        let mut seen = BTreeSet::new();
        for seed in 0..200 {
            let sample = set.sample_distinct(5, &mut Draws::new(seed));
            let distinct: BTreeSet<&[u8]> = sample.iter().copied().collect();
            assert_eq!(distinct.len(), 5, "seed {seed}: {sample:?}");
            seen.extend(distinct);
        }
        assert_eq!(seen.len(), 20, "every member is drawn some time");
        assert_eq!(set.sample_distinct(25, &mut Draws::new(1)).len(), 20, "at most the whole set");
    }

    #[test]
    fn popping_removes_what_it_returns() {
        let mut set = set_of(10);
        let popped = set.pop_random(4, &mut Draws::new(9));
        assert_eq!(popped.len(), 4);
        assert_eq!(set.len(), 6);
        assert!(popped.iter().all(|member| !set.contains(member)));
        assert_eq!(set.pop_random(100, &mut Draws::new(9)).len(), 6);
        assert!(set.is_empty());
    }

    #[test]
    fn draws_with_repeats_are_roughly_uniform() {
        let set = set_of(4);
        let mut draws = Draws::new(42);
        let mut counts = [0u32; 4];
        for member in set.sample_with_repeats(&mut draws).take(4000) {
            let index = (0..4).find(|&i| set.get_index(i) == Some(member)).expect("a member");
            counts[index] += 1;
        }
        assert!(counts.iter().all(|&n| (800..1200).contains(&n)), "{counts:?}");
        let empty = SetValue::default();
        assert_eq!(empty.sample_with_repeats(&mut Draws::new(1)).next(), None);
    }
}

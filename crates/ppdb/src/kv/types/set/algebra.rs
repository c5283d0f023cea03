//! Sets combined: SINTER, SUNION, SDIFF, their STORE forms, SINTERCARD (and SMEMBERS, which
//! Redis 7.0 answers as the intersection of one set).
//!
//! A missing key is an empty set. Every key is looked up, and its type checked, before any
//! answer, as Redis 7.0 does: `SINTER missing string` is WRONGTYPE, not an empty set.

use indexmap::IndexSet;

use crate::kv::reply::KvError;
use crate::kv::state_machine::KvStore;

use super::SetValue;

/// How several sets are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetAlgebra {
    /// Members in every set (SINTER).
    Intersection,
    /// Members in any set (SUNION).
    Union,
    /// Members of the first set in none of the others (SDIFF).
    Difference,
}

/// The sets at `keys` at time `now`, in order, `None` where a key is missing; WRONGTYPE when
/// any key holds another type.
pub(super) fn operands<'a>(
    store: &'a KvStore,
    keys: &[Vec<u8>],
    now: u64,
) -> Result<Vec<Option<&'a SetValue>>, KvError> {
    keys.iter().map(|key| store.collection::<SetValue>(key, now)).collect()
}

impl SetAlgebra {
    /// The members of the combination of `sets` (see [`intersection`], [`union`],
    /// [`difference`] for the order and the cost).
    pub(super) fn combine<'a>(self, sets: &[Option<&'a SetValue>]) -> Vec<&'a [u8]> {
        match self {
            Self::Intersection => intersection(sets).collect(),
            Self::Union => union(sets).into_iter().collect(),
            Self::Difference => difference(sets).collect(),
        }
    }
}

/// The members in every one of `sets` (none if a set is missing), in the smallest set's order:
/// each member of the smallest is looked up in the others, O(smallest × sets) as in Redis.
pub(super) fn intersection<'a>(sets: &[Option<&'a SetValue>]) -> impl Iterator<Item = &'a [u8]> {
    let mut present: Vec<&'a SetValue> = sets.iter().copied().collect::<Option<_>>().unwrap_or_default();
    present.sort_by_key(|set| set.len());
    let smallest = present.first().copied();
    smallest
        .into_iter()
        .flat_map(SetValue::iter)
        .filter(move |member| present.iter().skip(1).all(|set| set.contains(member)))
}

/// The members of any of `sets`, each once, in the order first met: O(total members).
fn union<'a>(sets: &[Option<&'a SetValue>]) -> IndexSet<&'a [u8]> {
    sets.iter().flatten().flat_map(|set| set.iter()).collect()
}

/// The members of the first set found in none of the others, in the first set's order:
/// O(first × sets). Empty when the first set is missing.
fn difference<'a, 's>(sets: &'s [Option<&'a SetValue>]) -> impl Iterator<Item = &'a [u8]> + 's {
    let (first, others) = match sets.split_first() {
        Some((Some(first), others)) => (Some(*first), others),
        _ => (None, &[][..]),
    };
    first
        .into_iter()
        .flat_map(SetValue::iter)
        .filter(move |member| others.iter().flatten().all(|set| !set.contains(member)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(members: &[&str]) -> SetValue {
        members.iter().map(|m| m.as_bytes()).collect()
    }

    fn sorted(members: Vec<&[u8]>) -> Vec<String> {
        let mut members: Vec<String> =
            members.iter().map(|m| String::from_utf8_lossy(m).into_owned()).collect();
        members.sort();
        members
    }

    #[test]
    fn the_three_combinations() {
        let (a, b, c) = (set(&["1", "2", "3", "x"]), set(&["2", "3", "4"]), set(&["3", "x", "2"]));
        let sets = [Some(&a), Some(&b), Some(&c)];
        assert_eq!(sorted(SetAlgebra::Intersection.combine(&sets)), ["2", "3"]);
        assert_eq!(sorted(SetAlgebra::Union.combine(&sets)), ["1", "2", "3", "4", "x"]);
        assert_eq!(sorted(SetAlgebra::Difference.combine(&sets)), ["1"]);
        assert_eq!(sorted(SetAlgebra::Difference.combine(&[Some(&a), None])), ["1", "2", "3", "x"]);
    }

    #[test]
    fn a_missing_set_is_empty() {
        let a = set(&["1", "2"]);
        assert!(SetAlgebra::Intersection.combine(&[Some(&a), None]).is_empty());
        assert_eq!(SetAlgebra::Union.combine(&[None, Some(&a)]).len(), 2);
        assert!(SetAlgebra::Difference.combine(&[None, Some(&a)]).is_empty());
        for algebra in [SetAlgebra::Intersection, SetAlgebra::Union, SetAlgebra::Difference] {
            assert!(algebra.combine(&[]).is_empty(), "no sets at all (a corrupt entry) is empty");
        }
    }

    #[test]
    fn the_intersection_walks_the_smallest_set() {
        let (large, small) = (set(&["a", "b", "c", "d"]), set(&["d", "b"]));
        assert_eq!(intersection(&[Some(&large), Some(&small)]).collect::<Vec<_>>(), vec![&b"d"[..], b"b"]);
    }
}

//! SSCAN: a cursor over a set's members.
//!
//! A set Redis 7.0 would keep as an intset is answered whole in one call, cursor 0, whatever the
//! cursor and COUNT, as Redis does; so is a first call that asks for more members than the set
//! has (Redis's hash table scan then returns everything before the cursor wraps). Other sets are
//! walked by position from the last member down: the cursor is how many positions remain to be
//! visited. Removing a member moves the last member into its place, and adding one puts it
//! last, so a member is only ever moved down: from the visited part to the unvisited one (it may
//! then be returned twice) or within one part, never from the unvisited part to the visited
//! one. Every member present for the whole iteration is returned, as Redis promises; members
//! added meanwhile may or may not be. A page costs O(COUNT).

use crate::kv::glob::glob_match;

use super::{SetEncoding, SetValue};

/// One SSCAN reply: the cursor to send next (0 when done) and the members found.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct ScanPage<'a> {
    pub(super) cursor: u64,
    pub(super) members: Vec<&'a [u8]>,
}

impl SetValue {
    /// The page of SSCAN at `cursor`: about `count` members (at least one position is
    /// visited), those matching `pattern` kept.
    pub(super) fn scan(&self, cursor: u64, pattern: Option<&[u8]>, count: u64) -> ScanPage<'_> {
        let len = self.len() as u64;
        if self.encoding() == SetEncoding::Intset || (cursor == 0 && len < count) {
            return ScanPage { cursor: 0, members: self.iter().filter(|m| matches(pattern, m)).collect() };
        }
        let end = if cursor == 0 { len } else { cursor.min(len) };
        let start = end.saturating_sub(count.max(1));
        // Positions fit in usize: they are below the set's length.
        let members = (start..end)
            .rev()
            .filter_map(|index| self.get_index(index as usize))
            .filter(|member| matches(pattern, member))
            .collect();
        ScanPage { cursor: start, members }
    }
}

/// Whether `member` passes MATCH (`*` matches everything, the empty member too).
fn matches(pattern: Option<&[u8]>, member: &[u8]) -> bool {
    pattern.is_none_or(|pattern| pattern == b"*" || glob_match(pattern, member))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn words(count: usize) -> SetValue {
        let members: Vec<String> = (0..count).map(|n| format!("w{n}")).collect();
        members.iter().map(|m| m.as_bytes()).collect()
    }

    #[test]
    fn intsets_and_small_first_calls_come_whole() {
        let numbers: SetValue = [&b"3"[..], b"1", b"2"].into_iter().collect();
        let page = numbers.scan(77, None, 1);
        assert_eq!(page, ScanPage { cursor: 0, members: vec![&b"3"[..], b"1", b"2"] });
        let small = words(5);
        assert_eq!(small.scan(0, None, 10).cursor, 0);
        assert_eq!(small.scan(0, None, 10).members.len(), 5);
        assert_eq!(small.scan(0, Some(b"w[12]"), 10).members, vec![&b"w1"[..], b"w2"]);
    }

    #[test]
    fn a_large_set_is_paged_to_the_end() {
        let set = words(25);
        let (mut cursor, mut seen) = (0, Vec::new());
        loop {
            let page = set.scan(cursor, None, 10);
            assert!(page.members.len() <= 10);
            seen.extend(page.members);
            cursor = page.cursor;
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(seen.len(), 25);
        assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), 25);
    }

    #[test]
    fn members_present_throughout_are_returned_despite_changes() {
        let mut set = words(40);
        let stable: BTreeSet<Vec<u8>> = (20..40).map(|n| format!("w{n}").into_bytes()).collect();
        let (mut cursor, mut seen) = (0, BTreeSet::new());
        let mut round = 0;
        loop {
            let page = set.scan(cursor, None, 7);
            seen.extend(page.members.iter().map(|m| m.to_vec()));
            cursor = page.cursor;
            // Between pages: remove some unstable members, add new ones.
            set.remove(format!("w{round}").as_bytes());
            set.insert(format!("new{round}").as_bytes());
            round += 1;
            if cursor == 0 {
                break;
            }
        }
        assert!(stable.is_subset(&seen), "missing {:?}", stable.difference(&seen).collect::<Vec<_>>());
    }

    #[test]
    fn a_stale_cursor_past_the_end_is_clamped() {
        let set = words(15);
        let page = set.scan(1000, None, 10);
        assert_eq!(page.members.len(), 10);
        assert_eq!(page.cursor, 5);
    }
}

//! The replicated log of one node: a compacted prefix (the snapshot) and the entries after it.
//!
//! The whole uncompacted suffix lives in memory; the application bounds it by taking snapshots.
//! Four cursors move forward through it: `handed_out` (given to the caller to persist),
//! `persisted` (durable on this node), `committed` (known replicated on a majority) and
//! `applied` (handed to the state machine). The caller may have several writes in flight at
//! once; each reports back with the [`PersistMark`] it was handed out with.

use crate::message::Entry;
use crate::types::{LogIndex, Term};
use std::collections::VecDeque;

/// The log of one Raft node.
#[derive(Debug, Clone, Default)]
pub struct RaftLog {
    snapshot_index: LogIndex,
    snapshot_term: Term,
    /// Entries `snapshot_index + 1 ..= last_index()`, in order.
    entries: VecDeque<Entry>,
    committed: LogIndex,
    applied: LogIndex,
    persisted: LogIndex,
    handed_out: LogIndex,
    /// Bumped whenever entries already handed out are replaced (a conflict truncation, a
    /// snapshot restore), so that a write finishing late cannot vouch for the replacements.
    epoch: u64,
}

/// Which entries one handed-out write covers: the last one, and the log's epoch then.
///
/// Reported back through [`RaftLog::persisted_to`] once the write is durable. The epoch makes
/// the report safe against the log having been rewritten while the write was in flight: an
/// entry can be replaced and then the same (index, term) appended again by a later write, and
/// only that later write may vouch for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PersistMark {
    /// The last entry the write covers.
    pub index: LogIndex,
    /// Its term.
    pub term: Term,
    /// The log's epoch when the write was handed out.
    pub epoch: u64,
}

impl RaftLog {
    /// A log recovered from durable state: compacted up to `snapshot_index`, then `entries`.
    pub fn recovered(
        snapshot_index: LogIndex,
        snapshot_term: Term,
        entries: Vec<Entry>,
        committed: LogIndex,
    ) -> RaftLog {
        let mut log = RaftLog {
            snapshot_index,
            snapshot_term,
            entries: VecDeque::from(entries),
            committed: snapshot_index,
            applied: snapshot_index,
            persisted: snapshot_index,
            handed_out: snapshot_index,
            epoch: 0,
        };
        log.persisted = log.last_index();
        log.handed_out = log.last_index();
        log.committed = committed.clamp(snapshot_index, log.last_index());
        log
    }

    /// Index of the entry covered by the latest snapshot (0 when none).
    pub fn snapshot_index(&self) -> LogIndex {
        self.snapshot_index
    }

    /// Term of the entry at [`RaftLog::snapshot_index`].
    pub fn snapshot_term(&self) -> Term {
        self.snapshot_term
    }

    /// The first index still held as an entry.
    pub fn first_index(&self) -> LogIndex {
        self.snapshot_index.next()
    }

    /// The index of the last entry (the snapshot index when there are no entries).
    pub fn last_index(&self) -> LogIndex {
        LogIndex(self.snapshot_index.0 + self.entries.len() as u64)
    }

    /// The term of the last entry.
    pub fn last_term(&self) -> Term {
        self.entries.back().map_or(self.snapshot_term, |e| e.term)
    }

    /// Highest index known committed.
    pub fn committed(&self) -> LogIndex {
        self.committed
    }

    /// Highest index handed to the state machine.
    pub fn applied(&self) -> LogIndex {
        self.applied
    }

    /// Highest index known durable on this node.
    pub fn persisted(&self) -> LogIndex {
        self.persisted
    }

    /// The entry at `index`, if it is held (not compacted, not beyond the end).
    pub fn entry(&self, index: LogIndex) -> Option<&Entry> {
        if index <= self.snapshot_index {
            return None;
        }
        let offset = usize::try_from(index.0 - self.snapshot_index.0 - 1).ok()?;
        self.entries.get(offset)
    }

    /// The term of the entry at `index`: known for the snapshot index and held entries only.
    pub fn term(&self, index: LogIndex) -> Option<Term> {
        if index == self.snapshot_index {
            Some(self.snapshot_term)
        } else {
            self.entry(index).map(|e| e.term)
        }
    }

    /// Whether this log holds an entry of `term` at `index` (so, by log matching, the same
    /// prefix as the log that sent it).
    pub fn matches(&self, index: LogIndex, term: Term) -> bool {
        self.term(index) == Some(term)
    }

    /// Whether a log ending at (`last_index`, `last_term`) is at least as up to date as this
    /// one: the election restriction that gives leader completeness.
    pub fn is_up_to_date(&self, last_index: LogIndex, last_term: Term) -> bool {
        last_term > self.last_term() || (last_term == self.last_term() && last_index >= self.last_index())
    }

    /// Appends entries that directly follow the last one (the leader's own proposals).
    pub fn append(&mut self, entries: impl IntoIterator<Item = Entry>) {
        for entry in entries {
            debug_assert_eq!(entry.index, self.last_index().next(), "append must be contiguous");
            self.entries.push_back(entry);
        }
    }

    /// The index of the first of `entries` that this log does not already hold (a different
    /// term at that index, or beyond the end); `None` if it holds them all.
    pub fn find_conflict(&self, entries: &[Entry]) -> Option<LogIndex> {
        entries.iter().find(|e| !self.matches(e.index, e.term)).map(|e| e.index)
    }

    /// Replaces everything from `entries[0].index` on with `entries` (a follower resolving a
    /// conflict with its leader). Committed entries are never replaced.
    pub fn truncate_and_append(&mut self, entries: Vec<Entry>) {
        let Some(first) = entries.first() else { return };
        assert!(
            first.index > self.committed,
            "refusing to overwrite committed entry {} (committed {})",
            first.index,
            self.committed
        );
        assert!(first.index > self.snapshot_index && first.index <= self.last_index().next());
        let keep = (first.index.0 - self.snapshot_index.0 - 1) as usize;
        self.entries.truncate(keep);
        self.persisted = self.persisted.min(first.index.prev());
        if first.index <= self.handed_out {
            self.handed_out = first.index.prev();
            self.epoch += 1;
        }
        self.entries.extend(entries);
    }

    /// Entries `lo ..= hi`, stopping early at `count_max` entries or once `bytes_max` would be
    /// exceeded (always at least one entry when the range is non-empty). Empty if `lo` was
    /// compacted.
    pub fn slice(&self, lo: LogIndex, hi: LogIndex, count_max: usize, bytes_max: usize) -> Vec<Entry> {
        let mut out = Vec::new();
        let mut bytes = 0;
        let mut index = lo;
        while index <= hi && out.len() < count_max {
            let Some(entry) = self.entry(index) else { break };
            bytes += entry.size_bytes();
            if bytes > bytes_max && !out.is_empty() {
                break;
            }
            out.push(entry.clone());
            index = index.next();
        }
        out
    }

    /// Fast back-off: the largest index `<= index` whose term is `<= term`, with its term.
    /// A leader that learns a follower's log has `term` at `index` can skip every entry of a
    /// later term in one step.
    pub fn find_conflict_by_term(&self, index: LogIndex, term: Term) -> (LogIndex, Term) {
        let mut index = index.min(self.last_index());
        while index > self.snapshot_index {
            match self.term(index) {
                Some(t) if t <= term => return (index, t),
                _ => index = index.prev(),
            }
        }
        (self.snapshot_index, self.snapshot_term)
    }

    /// Advances the commit index (never backwards).
    pub fn commit_to(&mut self, index: LogIndex) {
        if index > self.committed {
            assert!(index <= self.last_index(), "commit {} beyond last index {}", index, self.last_index());
            self.committed = index;
        }
    }

    /// Highest index handed to the caller for persisting.
    pub fn handed_out(&self) -> LogIndex {
        self.handed_out
    }

    /// Hands out the entries not handed out yet, for the caller to persist, with the mark to
    /// report back once they are durable (`None` when there are none).
    pub fn hand_out(&mut self) -> (Vec<Entry>, Option<PersistMark>) {
        let entries = self.slice(self.handed_out.next(), self.last_index(), usize::MAX, usize::MAX);
        let mark = entries.last().map(|e| PersistMark { index: e.index, term: e.term, epoch: self.epoch });
        self.handed_out = self.handed_out.max(self.last_index());
        (entries, mark)
    }

    /// Records that the write handed out with `mark` is durable (and with it every write
    /// handed out before it), unless the log was rewritten since.
    pub fn persisted_to(&mut self, mark: PersistMark) {
        if mark.epoch == self.epoch && mark.index > self.persisted && self.matches(mark.index, mark.term) {
            self.persisted = mark.index;
        }
    }

    /// Committed entries not yet handed to the state machine.
    pub fn unapplied(&self) -> Vec<Entry> {
        self.slice(self.applied.next(), self.committed, usize::MAX, usize::MAX)
    }

    /// Records that entries up to `index` were handed to the state machine.
    pub fn applied_to(&mut self, index: LogIndex) {
        debug_assert!(index <= self.committed);
        self.applied = self.applied.max(index);
    }

    /// Drops entries up to `index`, which a durable snapshot now covers. `index` must be
    /// applied.
    pub fn compact(&mut self, index: LogIndex) {
        if index <= self.snapshot_index {
            return;
        }
        assert!(index <= self.applied, "cannot compact unapplied entry {index}");
        let Some(term) = self.term(index) else { return };
        let drop = (index.0 - self.snapshot_index.0) as usize;
        self.entries.drain(..drop);
        self.snapshot_index = index;
        self.snapshot_term = term;
        // The snapshot is durable, so everything it covers is too.
        self.handed_out = self.handed_out.max(index);
        self.persisted = self.persisted.max(index);
    }

    /// Replaces the whole log by a snapshot at (`index`, `term`): everything is committed,
    /// durable (the caller persists the snapshot first) and applied up to there.
    pub fn restore(&mut self, index: LogIndex, term: Term) {
        self.entries.clear();
        self.snapshot_index = index;
        self.snapshot_term = term;
        self.committed = index;
        self.applied = index;
        self.persisted = index;
        self.handed_out = index;
        self.epoch += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::EntryPayload;

    fn entries(from: u64, terms: &[u64]) -> Vec<Entry> {
        terms
            .iter()
            .enumerate()
            .map(|(i, &t)| Entry {
                index: LogIndex(from + i as u64),
                term: Term(t),
                payload: EntryPayload::Empty,
            })
            .collect()
    }

    fn log_with_terms(terms: &[u64]) -> RaftLog {
        RaftLog::recovered(LogIndex(0), Term(0), entries(1, terms), LogIndex(0))
    }

    #[test]
    fn conflict_truncates_the_suffix_and_unpersists_it() {
        let mut log = log_with_terms(&[1, 1, 2, 2]);
        assert_eq!(log.persisted(), LogIndex(4));
        let new = entries(3, &[3]);
        assert_eq!(log.find_conflict(&new), Some(LogIndex(3)));
        log.truncate_and_append(new.clone());
        assert_eq!((log.last_index(), log.last_term()), (LogIndex(3), Term(3)));
        assert_eq!(log.persisted(), LogIndex(2));
        assert_eq!(log.handed_out(), LogIndex(2));
        let (handed, mark) = log.hand_out();
        assert_eq!(handed, new);
        log.persisted_to(mark.unwrap());
        assert_eq!(log.persisted(), LogIndex(3));
    }

    #[test]
    fn writes_in_flight_report_back_in_order() {
        let mut log = log_with_terms(&[1]);
        log.append(entries(2, &[1, 1]));
        let (first, first_mark) = log.hand_out();
        assert_eq!(first.len(), 2);
        log.append(entries(4, &[1]));
        let (second, second_mark) = log.hand_out();
        assert_eq!(second, entries(4, &[1]));
        assert_eq!(log.hand_out(), (Vec::new(), None), "nothing new to hand out");
        assert_eq!(log.persisted(), LogIndex(1));
        log.persisted_to(first_mark.unwrap());
        assert_eq!(log.persisted(), LogIndex(3));
        log.persisted_to(second_mark.unwrap());
        assert_eq!(log.persisted(), LogIndex(4));
    }

    #[test]
    fn a_late_write_cannot_vouch_for_entries_rewritten_after_it() {
        // Entries 2..3 of term 1 go out to disk; before that write is durable, a leader of
        // term 2 replaces them, and a leader of term 3 (holding the term-1 entries) puts the
        // same (index, term) back. Only the last write may report them durable: on disk, the
        // term-2 write lands after the first one and removes them again.
        let mut log = log_with_terms(&[1]);
        log.append(entries(2, &[1, 1]));
        let (_, stale) = log.hand_out();
        log.truncate_and_append(entries(2, &[2]));
        let (_, replaced) = log.hand_out();
        log.truncate_and_append(entries(2, &[1, 1]));
        let (_, latest) = log.hand_out();
        log.persisted_to(stale.unwrap());
        assert_eq!(log.persisted(), LogIndex(1), "the first write must not count");
        log.persisted_to(replaced.unwrap());
        assert_eq!(log.persisted(), LogIndex(1));
        log.persisted_to(latest.unwrap());
        assert_eq!(log.persisted(), LogIndex(3));
    }

    #[test]
    fn truncating_entries_not_handed_out_keeps_writes_in_flight_valid() {
        let mut log = log_with_terms(&[1]);
        log.append(entries(2, &[1]));
        let (_, in_flight) = log.hand_out();
        log.append(entries(3, &[1]));
        log.truncate_and_append(entries(3, &[2]));
        log.persisted_to(in_flight.unwrap());
        assert_eq!(log.persisted(), LogIndex(2));
    }

    #[test]
    #[should_panic(expected = "refusing to overwrite committed")]
    fn committed_entries_are_never_overwritten() {
        let mut log = log_with_terms(&[1, 1, 2]);
        log.commit_to(LogIndex(2));
        log.truncate_and_append(entries(2, &[3]));
    }

    #[test]
    fn fast_backoff_skips_a_whole_term() {
        let log = log_with_terms(&[1, 1, 4, 4, 4, 4]);
        assert_eq!(log.find_conflict_by_term(LogIndex(6), Term(3)), (LogIndex(2), Term(1)));
        assert_eq!(log.find_conflict_by_term(LogIndex(9), Term(5)), (LogIndex(6), Term(4)));
        assert_eq!(log.find_conflict_by_term(LogIndex(6), Term(0)), (LogIndex(0), Term(0)));
    }

    #[test]
    fn compaction_keeps_terms_at_the_boundary() {
        let mut log = log_with_terms(&[1, 2, 3]);
        log.commit_to(LogIndex(3));
        log.applied_to(LogIndex(2));
        log.compact(LogIndex(2));
        assert_eq!(log.first_index(), LogIndex(3));
        assert_eq!(log.term(LogIndex(2)), Some(Term(2)));
        assert_eq!(log.term(LogIndex(1)), None);
        assert!(log.slice(LogIndex(1), LogIndex(3), 10, 1000).is_empty());
        assert_eq!(log.slice(LogIndex(3), LogIndex(3), 10, 1000).len(), 1);
    }

    #[test]
    fn up_to_date_compares_term_then_index() {
        let log = log_with_terms(&[1, 2]);
        assert!(log.is_up_to_date(LogIndex(1), Term(3)));
        assert!(log.is_up_to_date(LogIndex(2), Term(2)));
        assert!(!log.is_up_to_date(LogIndex(5), Term(1)));
        assert!(!log.is_up_to_date(LogIndex(1), Term(2)));
    }

    #[test]
    fn a_slice_stays_within_its_byte_budget_unless_one_entry_alone_exceeds_it() {
        let sizes = [300, 500, 200, 2000, 100, 100, 900, 50, 5000, 10];
        let log_entries: Vec<Entry> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| Entry {
                index: LogIndex(1 + i as u64),
                term: Term(1),
                payload: EntryPayload::Command(vec![0; n]),
            })
            .collect();
        let log = RaftLog::recovered(LogIndex(0), Term(0), log_entries, LogIndex(0));
        let last = LogIndex(sizes.len() as u64);
        for budget in [1, 100, 700, 1000, 3000, usize::MAX] {
            // Every slice a leader would send in turn, from the first entry to the last.
            let mut next = LogIndex(1);
            while next <= last {
                let slice = log.slice(next, last, usize::MAX, budget);
                let bytes: usize = slice.iter().map(Entry::size_bytes).sum();
                assert!(!slice.is_empty(), "budget {budget}: nothing sent from {next}");
                assert!(
                    bytes <= budget || slice.len() == 1,
                    "budget {budget}: {} entries of {bytes} bytes from {next}",
                    slice.len()
                );
                next = LogIndex(next.0 + slice.len() as u64);
            }
        }
    }

    #[test]
    fn slice_respects_byte_budget_but_sends_one() {
        let log = log_with_terms(&[1, 1, 1]);
        assert_eq!(log.slice(LogIndex(1), LogIndex(3), 10, 1).len(), 1);
        assert_eq!(log.slice(LogIndex(1), LogIndex(3), 2, usize::MAX).len(), 2);
    }
}

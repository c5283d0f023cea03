//! Proof that the simulator catches real protocol bugs: each canary plants one known bug in
//! the core, and the default sweep must then fail with the matching invariant.
//!
//! Run with `cargo test -p ppdb-raft --features canaries --test canaries`.
#![cfg(feature = "canaries")]

use ppdb_raft::sim::{self, SimFailure};
use ppdb_raft::Canary;

const SEEDS: u64 = 1_000; // the default sweep of tests/sim.rs
const TICKS: u64 = 3_000;

/// Runs the default sweep with `canary` planted until a seed fails; returns that failure.
fn first_failure(canary: Canary) -> Option<SimFailure> {
    (0..SEEDS).find_map(|seed| sim::run_with(seed, TICKS, |opts| opts.raft.canary = Some(canary)).err())
}

fn assert_caught(canary: Canary, invariants: &[&str]) {
    let failure = first_failure(canary)
        .unwrap_or_else(|| panic!("{canary:?} survived {SEEDS} seeds: the simulator missed it"));
    println!("{canary:?}: {failure}");
    assert!(
        invariants.contains(&failure.violation.invariant),
        "{canary:?} was caught, but by an unexpected checker: {failure}"
    );
}

#[test]
fn double_vote_breaks_election_safety() {
    assert_caught(Canary::DoubleVote, &["election safety", "log matching", "state machine safety"]);
}

#[test]
fn committing_previous_term_entries_by_counting_loses_commits() {
    assert_caught(
        Canary::CommitPreviousTerm,
        &["leader completeness", "state machine safety", "acknowledged write lost"],
    );
}

#[test]
fn keeping_a_conflicting_suffix_breaks_log_matching() {
    assert_caught(Canary::NoTruncate, &["log matching", "state machine safety", "leader completeness"]);
}

#[test]
fn reading_without_confirming_leadership_is_not_linearizable() {
    assert_caught(Canary::ReadWithoutConfirm, &["linearizable read"]);
}

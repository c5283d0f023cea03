//! Commands that need keys of several shards at once (RENAME, RENAMENX, COPY, SMOVE, LMOVE,
//! RPOPLPUSH, the *STORE commands, MSETNX inside a transaction, LMPOP and ZMPOP), split for a
//! cross-shard transaction.
//!
//! The command runs on the shard of the key it writes, its destination, as itself
//! ([`WriteOp::Imported`]), with the whole values of its keys that other shards hold imported
//! from those shards' exports ([`WriteOp::Export`], one per source key), which the
//! transaction prepares first (`crate::txn::coordinator::prepare_linked`). An export also
//! applies what the command does to its source: RENAME deletes it, SMOVE removes the member,
//! LMOVE pops the element. Where that depends on the destination (RENAMENX, SMOVE, LMOVE move
//! nothing when the destination refuses), it is built on a guess, "moved" first, which the
//! destination checks ([`Expect`]); a wrong guess aborts the attempt and the transaction is
//! tried again on the other guess (`super::transaction`). MSETNX is such a move: its first
//! key is the destination, and each other shard's keys are set if it "moved" (answered 1).
//!
//! A pop from the first non-empty of several keys (LMPOP, ZMPOP, and BLMPOP, BZMPOP, BLPOP,
//! BZPOPMIN ... inside a transaction, where they do not block) guesses which run of
//! consecutive keys of one shard holds that key, the first run first, and runs on that run's
//! shard over the keys up to the run's end, the earlier keys of other shards imported,
//! unchanged at their sources. The step checks the guess: it may change only its shard's keys
//! ([`Expect::ImportsKept`]), and unless its run is the last it must find something there
//! ([`Expect::FoundHere`]); a wrong guess moves on to the next run. So exactly one key, the
//! one Redis would pop, changes, the keys before it are only read under their locks, and a
//! pop that finds its first key non-empty imports nothing.

use crate::kv::types::{
    CollectionRead, CollectionWrite, ListPop, ListWrite, SetRead, SetWrite, SortedSetRead, SortedSetWrite,
};
use crate::kv::{Expect, KvRead, WriteOp};
use crate::node::Router;

/// A command whose keys live in several shards, split into the step its destination's shard
/// runs and the exports of its sources.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// The destination's shard, where the command runs.
    pub home: u64,
    /// The step it runs there ([`WriteOp::Imported`]); its imports, in the order of
    /// `exports`, are filled by the transaction from the exports' replies.
    pub step: WriteOp,
    /// Each source key held by another shard: that shard and its export.
    pub exports: Vec<(u64, WriteOp)>,
}

/// The key a movable command writes, and what it does to a source when it moved something
/// (`None`: nothing, whatever happens); `None` for other commands.
fn destination_and_effect(op: &WriteOp) -> Option<(&[u8], Effect<'_>)> {
    Some(match op {
        WriteOp::Rename { to, if_new: false, .. } => (to, Effect::Always(Removal::Delete)),
        WriteOp::Rename { to, if_new: true, .. } => (to, Effect::IfMoved(Removal::Delete)),
        WriteOp::Copy { to, .. } => (to, Effect::None),
        WriteOp::Collection(CollectionWrite::Set(SetWrite::Move { destination, member, .. })) => {
            (destination, Effect::IfMoved(Removal::Member(member)))
        }
        WriteOp::Collection(CollectionWrite::Set(SetWrite::Store { destination, .. }))
        | WriteOp::Collection(CollectionWrite::SortedSet(SortedSetWrite::Store { destination, .. })) => {
            (destination, Effect::None)
        }
        WriteOp::Collection(CollectionWrite::List(ListWrite::Pop(ListPop::Move {
            destination,
            from,
            ..
        }))) => (destination, Effect::IfMoved(Removal::Pop(*from))),
        WriteOp::MSetNx { pairs } => (&pairs.first()?.0, Effect::IfMoved(Removal::Set(pairs))),
        _ => return None,
    })
}

/// What a move does to its source.
#[derive(Debug, Clone, Copy)]
enum Effect<'a> {
    /// Nothing (COPY, *STORE).
    None,
    /// This, whatever the destination holds (RENAME).
    Always(Removal<'a>),
    /// This, if the command moved something (RENAMENX, SMOVE, LMOVE).
    IfMoved(Removal<'a>),
}

/// A change to a move's source.
#[derive(Debug, Clone, Copy)]
enum Removal<'a> {
    /// The key goes.
    Delete,
    /// A set member goes.
    Member(&'a [u8]),
    /// A list element goes, from this end.
    Pop(crate::kv::types::End),
    /// The key is set to its (last) value in these pairs (MSETNX).
    Set(&'a [(Vec<u8>, Vec<u8>)]),
}

impl Removal<'_> {
    fn op(self, key: &[u8]) -> WriteOp {
        let key = key.to_vec();
        match self {
            Removal::Delete => WriteOp::Del { keys: vec![key] },
            Removal::Member(member) => WriteOp::Collection(CollectionWrite::Set(SetWrite::Remove {
                key,
                members: vec![member.to_vec()],
            })),
            Removal::Pop(end) => WriteOp::Collection(CollectionWrite::List(ListWrite::Pop(ListPop::Pop {
                key,
                end,
                count: None,
            }))),
            Removal::Set(pairs) => {
                let value =
                    pairs.iter().rev().find(|(k, _)| *k == key).map(|(_, v)| v.clone()).unwrap_or_default();
                WriteOp::MSet { pairs: vec![(key, value)] }
            }
        }
    }
}

/// Whether `read` combines the whole values of its keys (SUNION, SINTER, SDIFF, SINTERCARD,
/// ZUNION, ZINTER, ZDIFF, ZINTERCARD): across shards, a transaction exports each key's value
/// from its shard and the reply is computed from them (`crate::kv::transfer::read_exported`).
pub fn combines(read: &KvRead) -> bool {
    matches!(
        read,
        KvRead::Collection(
            CollectionRead::Set(SetRead::Combine { .. } | SetRead::IntersectionCard { .. })
                | CollectionRead::SortedSet(SortedSetRead::Combine { .. } | SortedSetRead::InterCard { .. })
        )
    )
}

/// Whether `op` is a command this module splits, whose source effect rests on a guess.
pub fn guessed(op: &WriteOp) -> bool {
    matches!(destination_and_effect(op), Some((_, Effect::IfMoved(_))))
}

/// The keys of a pop from the first non-empty of several keys (LMPOP, ZMPOP and their
/// non-blocking kin), in the order they are tried; `None` for other commands.
fn first_of(op: &WriteOp) -> Option<&[Vec<u8>]> {
    match op {
        WriteOp::Collection(CollectionWrite::List(ListWrite::Pop(ListPop::First { keys, .. })))
        | WriteOp::Collection(CollectionWrite::SortedSet(SortedSetWrite::Pop { keys, .. })) => Some(keys),
        _ => None,
    }
}

/// Splits `op` if it is a command this module splits and its keys live in several shards, on
/// its `guess`-th guess (counted from 0): a move guesses, where its sources' effects depend
/// on it, that it moved something on even guesses and nothing on odd ones; a pop from the
/// first non-empty key guesses the `guess`-th of its keys' shards (round the list). `None`
/// otherwise.
pub fn split(router: Router, op: &WriteOp, guess: usize) -> Option<Split> {
    if let Some(keys) = first_of(op) {
        return split_pop(router, op, keys, guess);
    }
    split_move(router, op, guess % 2 == 0)
}

/// How many guesses a pop from the first non-empty of several keys has (the runs of its keys
/// that live in one shard, see [`split`]); 0 for other commands.
pub fn pop_guesses(router: Router, op: &WriteOp) -> usize {
    first_of(op).map_or(0, |keys| runs(router, keys).len())
}

/// Where each run of consecutive keys of one shard ends (exclusive), in order.
fn runs(router: Router, keys: &[Vec<u8>]) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut shard = None;
    for (i, key) in keys.iter().enumerate() {
        let here = router.shard_of(key);
        if shard.is_some_and(|shard| shard != here) {
            ends.push(i);
        }
        shard = Some(here);
    }
    if !keys.is_empty() {
        ends.push(keys.len());
    }
    ends
}

/// [`split`] of a pop from the first non-empty of `keys`, guessing that it lies in the
/// `guess`-th run of keys of one shard: the pop runs on that shard over the keys up to the
/// run's end, the earlier keys of other shards imported unchanged. Unless the run is the
/// last, it must find something there ([`Expect::FoundHere`]); either way it may change only
/// that shard's keys.
fn split_pop(router: Router, op: &WriteOp, keys: &[Vec<u8>], guess: usize) -> Option<Split> {
    let ends = runs(router, keys);
    if ends.len() < 2 {
        return None;
    }
    let run = guess % ends.len();
    let end = *ends.get(run)?;
    let home = router.shard_of(keys.get(end.checked_sub(1)?)?).0;
    let tried = keys.get(..end)?;
    let mut remote: Vec<&[u8]> = Vec::new();
    for key in tried {
        if router.shard_of(key).0 != home && !remote.contains(&key.as_slice()) {
            remote.push(key);
        }
    }
    let exports =
        remote.iter().map(|&key| (router.shard_of(key).0, WriteOp::Export { key: key.to_vec(), then: None }));
    let imports = remote.iter().map(|key| (key.to_vec(), None)).collect();
    let expect = if run + 1 == ends.len() { Expect::ImportsKept } else { Expect::FoundHere };
    let step = WriteOp::Imported { imports, op: Box::new(with_keys(op, tried.to_vec())), expect };
    Some(Split { home, step, exports: exports.collect() })
}

/// The pop `op` ([`first_of`]) over `keys` instead of its own.
fn with_keys(op: &WriteOp, keys: Vec<Vec<u8>>) -> WriteOp {
    let mut op = op.clone();
    match &mut op {
        WriteOp::Collection(CollectionWrite::List(ListWrite::Pop(ListPop::First { keys: own, .. })))
        | WriteOp::Collection(CollectionWrite::SortedSet(SortedSetWrite::Pop { keys: own, .. })) => {
            *own = keys
        }
        _ => {}
    }
    op
}

/// [`split`] of a move, guessing that it `moved` something where its sources' effects
/// depend on that.
fn split_move(router: Router, op: &WriteOp, moved: bool) -> Option<Split> {
    let (destination, effect) = destination_and_effect(op)?;
    let home = router.shard_of(destination).0;
    let mut remote: Vec<&[u8]> = Vec::new();
    for key in op.keys() {
        if router.shard_of(key).0 != home && !remote.contains(&key) {
            remote.push(key);
        }
    }
    if remote.is_empty() {
        return None;
    }
    let (removal, expect) = match effect {
        Effect::None => (None, Expect::Any),
        Effect::Always(removal) => (Some(removal), Expect::Any),
        Effect::IfMoved(removal) if moved => (Some(removal), Expect::Moved),
        Effect::IfMoved(_) => (None, Expect::Kept),
    };
    let exports = remote
        .iter()
        .map(|&key| {
            let then = removal.map(|removal| Box::new(removal.op(key)));
            (router.shard_of(key).0, WriteOp::Export { key: key.to_vec(), then })
        })
        .collect();
    let imports = remote.iter().map(|key| (key.to_vec(), None)).collect();
    Some(Split { home, step: WriteOp::Imported { imports, op: Box::new(op.clone()), expect }, exports })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::KeyRouting;

    #[test]
    fn a_rename_across_shards_runs_at_its_destination_and_deletes_its_source() {
        let router = Router::new(KeyRouting::HashSlots, 8);
        let on = |prefix: &str, shard| {
            (0..).map(|i| format!("{prefix}{i}")).find(|k| router.shard_of(k.as_bytes()).0 == shard).unwrap()
        };
        let (a, b) = (on("a", 2).into_bytes(), on("b", 5).into_bytes());
        let rename = |if_new| WriteOp::Rename { from: a.clone(), to: b.clone(), if_new };
        let split_rename = split(router, &rename(false), 0).expect("spans shards");
        assert_eq!(split_rename.home, 5);
        assert_eq!(
            split_rename.exports,
            vec![(
                2,
                WriteOp::Export {
                    key: a.clone(),
                    then: Some(Box::new(WriteOp::Del { keys: vec![a.clone()] }))
                }
            )]
        );
        assert!(!guessed(&rename(false)) && guessed(&rename(true)));
        let kept = split(router, &rename(true), 1).expect("spans shards");
        assert_eq!(kept.exports, vec![(2, WriteOp::Export { key: a.clone(), then: None })]);
        assert!(matches!(kept.step, WriteOp::Imported { expect: Expect::Kept, .. }));
        let same = WriteOp::Rename { from: a.clone(), to: a.clone(), if_new: false };
        assert_eq!(split(router, &same, 0), None, "one shard: not split");
        assert_eq!(split(router, &WriteOp::Del { keys: vec![a, b] }, 0), None, "not a move");
    }

    #[test]
    fn a_pop_guesses_each_run_of_its_keys_in_turn_and_imports_only_the_keys_before() {
        let router = Router::new(KeyRouting::HashSlots, 8);
        let on = |prefix: &str, shard| {
            (0..).map(|i| format!("{prefix}{i}")).find(|k| router.shard_of(k.as_bytes()).0 == shard).unwrap()
        };
        let keys: Vec<Vec<u8>> =
            [on("a", 1), on("b", 1), on("c", 4), on("d", 1)].map(String::into_bytes).into();
        let pop = |keys: &[Vec<u8>]| {
            WriteOp::Collection(CollectionWrite::List(ListWrite::Pop(ListPop::First {
                keys: keys.to_vec(),
                end: crate::kv::types::End::Head,
                count: None,
            })))
        };
        assert_eq!(pop_guesses(router, &pop(&keys)), 3, "runs: a b | c | d");
        let first = split(router, &pop(&keys), 0).expect("spans shards");
        assert_eq!(first.home, 1);
        assert!(first.exports.is_empty(), "nothing before the first run");
        let step = |split: &Split| match &split.step {
            WriteOp::Imported { imports, op, expect } => {
                (imports.iter().map(|(key, _)| key.clone()).collect::<Vec<_>>(), (**op).clone(), *expect)
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(step(&first), (Vec::new(), pop(&keys[..2]), Expect::FoundHere));
        let second = split(router, &pop(&keys), 1).expect("spans shards");
        assert_eq!(second.home, 4);
        assert_eq!(step(&second), (keys[..2].to_vec(), pop(&keys[..3]), Expect::FoundHere));
        let last = split(router, &pop(&keys), 2).expect("spans shards");
        assert_eq!((last.home, step(&last)), (1, (vec![keys[2].clone()], pop(&keys), Expect::ImportsKept)));
        assert_eq!(last.exports, vec![(4, WriteOp::Export { key: keys[2].clone(), then: None })]);
        assert_eq!(split(router, &pop(&keys), 3), Some(first), "round the runs");
        assert_eq!(split(router, &pop(&keys[..2]), 0), None, "one shard: not split");
        assert_eq!(pop_guesses(router, &WriteOp::Del { keys }), 0);
    }

    #[test]
    fn msetnx_sets_each_other_shards_keys_on_the_guess_that_it_did() {
        let router = Router::new(KeyRouting::HashSlots, 8);
        let on = |prefix: &str, shard| {
            (0..).map(|i| format!("{prefix}{i}")).find(|k| router.shard_of(k.as_bytes()).0 == shard).unwrap()
        };
        let (a, b) = (on("a", 3).into_bytes(), on("b", 6).into_bytes());
        let pairs = vec![(a.clone(), b"1".to_vec()), (b.clone(), b"2".to_vec()), (b.clone(), b"3".to_vec())];
        let msetnx = WriteOp::MSetNx { pairs };
        let set = split(router, &msetnx, 0).expect("spans shards");
        assert_eq!(set.home, 3);
        let then = Some(Box::new(WriteOp::MSet { pairs: vec![(b.clone(), b"3".to_vec())] }));
        assert_eq!(set.exports, vec![(6, WriteOp::Export { key: b.clone(), then })], "the last value wins");
        let kept = split(router, &msetnx, 1).expect("spans shards");
        assert_eq!(kept.exports, vec![(6, WriteOp::Export { key: b, then: None })]);
    }
}

//! Commands that need keys of several shards at once (RENAME, RENAMENX, COPY, SMOVE, LMOVE,
//! RPOPLPUSH and the *STORE commands), split for a cross-shard transaction.
//!
//! The command runs on the shard of the key it writes, its destination, as itself
//! ([`WriteOp::Imported`]), with the whole values of its keys that other shards hold imported
//! from those shards' exports ([`WriteOp::Export`], one per source key), which the
//! transaction prepares first (`crate::txn::coordinator::prepare_linked`). An export also
//! applies what the command does to its source: RENAME deletes it, SMOVE removes the member,
//! LMOVE pops the element. Where that depends on the destination (RENAMENX, SMOVE, LMOVE move
//! nothing when the destination refuses), it is built on a guess, "moved" first, which the
//! destination checks ([`Expect`]); a wrong guess aborts the attempt and the transaction is
//! tried again on the other guess (`super::transaction`).

use crate::kv::types::{CollectionWrite, ListPop, ListWrite, SetWrite, SortedSetWrite};
use crate::kv::{Expect, WriteOp};
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
        }
    }
}

/// Whether `op` is a command this module splits, whose source effect rests on a guess.
pub fn guessed(op: &WriteOp) -> bool {
    matches!(destination_and_effect(op), Some((_, Effect::IfMoved(_))))
}

/// Splits `op` if it is a movable command whose keys live in several shards, guessing that
/// it `moved` something where its sources' effects depend on that; `None` otherwise.
pub fn split(router: Router, op: &WriteOp, moved: bool) -> Option<Split> {
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
        let split_rename = split(router, &rename(false), true).expect("spans shards");
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
        let kept = split(router, &rename(true), false).expect("spans shards");
        assert_eq!(kept.exports, vec![(2, WriteOp::Export { key: a.clone(), then: None })]);
        assert!(matches!(kept.step, WriteOp::Imported { expect: Expect::Kept, .. }));
        let same = WriteOp::Rename { from: a.clone(), to: a.clone(), if_new: false };
        assert_eq!(split(router, &same, true), None, "one shard: not split");
        assert_eq!(split(router, &WriteOp::Del { keys: vec![a, b] }, true), None, "not a move");
    }
}

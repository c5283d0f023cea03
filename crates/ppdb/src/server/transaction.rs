//! EXEC of a transaction on one shard: one log entry, one Raft round (docs/architecture.md,
//! "MULTI/EXEC with WATCH").
//!
//! The queued key-space commands become one log entry ([`WriteOp::Transaction`]): writes
//! resolved as every other write is (a relative expiry stays a span from the entry's time,
//! which the shard's leader stamps), reads as queries evaluated when the entry is applied, so
//! they are linearizable and see the transaction's earlier writes. The entry goes to the
//! shard's leader through the executor like any write (forwarded if needed, retried only when
//! it certainly did not take effect), and the state machine applies it in one step.
//! Connection commands queued in the transaction (PING, ECHO, ...) touch no key and are
//! answered by the connection in place.
//!
//! WATCH reads the watched keys' versions (the log index of each key's last write, 0 for an
//! absent key) linearizably; EXEC puts them in the entry, and the state machine runs none of
//! the steps, and answers a null array, if a key's version changed in between.
//!
//! Keys in several shards, watched keys included, make a cross-shard transaction
//! (`crate::txn`): each step goes to its key's shard (MSET, DEL, UNLINK, MGET and EXISTS are
//! split by key and their replies joined), every shard's steps become its part, and the
//! transaction commits on all of them or none. Commands that move values between keys of
//! several shards (RENAME, RENAMENX, COPY, SMOVE, LMOVE, RPOPLPUSH, the *STORE commands) run
//! on their destination's shard with their sources' values imported ([`super::moves`]); a
//! guess their sources' effects rest on that proves wrong makes the transaction run again on
//! the other guess. MSETNX is such a move (its first key's shard decides, the others set
//! their keys on the guess that it did), and so are LMPOP and ZMPOP, run on a guessed shard of
//! their keys ([`super::moves`]). Reads that combine several keys' values (SUNION, SINTER,
//! SDIFF, SINTERCARD, ZUNION, ZINTER, ZDIFF, ZINTERCARD) export every key's value from its
//! shard, under the part's lock and after the part's earlier steps, and their reply is
//! computed here from those values ([`crate::kv::transfer::read_exported`]). Whole-keyspace
//! commands (KEYS, SCAN, DBSIZE, RANDOMKEY, FLUSHALL) run on every shard, each part holding
//! one locking its whole shard, and their replies are joined as outside a transaction. Other
//! multi-key commands (scripts) and moves whose shards need each other's values in a cycle
//! are refused with `CROSSSLOT` in a transaction that spans shards.

use std::collections::{BTreeMap, BTreeSet};

use super::client::executor::{join_scan_pages, step_replies, txn_failure, Executor};
use super::client::forward::ShardOp;
use super::moves;
use super::resp::command::{Command, Queued, TransactionError};
use super::resp::reply::error_frame;
use super::resp::Frame;
use crate::error::Error;
use crate::kv::transfer::read_exported;
use crate::kv::{KvRead, KvWrite, Reply, TxnStep, WatchedKey, WriteOp};
use crate::node::clock::wall_clock_ms;
use crate::node::Router;
use crate::txn::{Link, Part, TxnError, Vote};

/// One element of EXEC's reply, in queue order.
#[derive(Debug)]
pub enum ExecElement {
    /// Answered: a key-space command's reply, or the error of a command that could not run.
    Answered(Frame),
    /// A connection command, for the connection to answer in place.
    Local(Command),
}

/// WATCH: adds `keys` to `watched` with their versions now; a key already watched keeps the
/// version it was first watched with, as in Redis.
pub async fn watch(
    executor: &Executor,
    keys: Vec<Vec<u8>>,
    watched: &mut Vec<WatchedKey>,
) -> Result<(), Error> {
    let keys: Vec<Vec<u8>> = keys.into_iter().filter(|key| watched.iter().all(|w| &w.key != key)).collect();
    if keys.is_empty() {
        return Ok(());
    }
    let Reply::Array(versions) = executor.read(&KvRead::Versions { keys: keys.clone() }).await? else {
        return Err(Error::State("WATCH: the shard did not answer the keys' versions".into()));
    };
    for (key, version) in keys.into_iter().zip(versions) {
        let Reply::Integer(version) = version else {
            return Err(Error::State("WATCH: a key's version is not an integer".into()));
        };
        // Versions are log indexes: never negative.
        let version = u64::try_from(version).unwrap_or(0);
        if watched.iter().all(|w| w.key != key) {
            watched.push(WatchedKey { key, version });
        }
    }
    Ok(())
}

/// Runs a transaction's queue under `watched` (WATCH's keys and versions). `Err` is the frame
/// EXEC answers instead of an array: a null array when a watched key changed (nothing ran),
/// an error when the keys span several shards (nothing ran) or the entry failed (e.g.
/// `TIMEOUT`: outcome unknown).
pub async fn exec(
    executor: &Executor,
    queued: Vec<Queued>,
    watched: Vec<WatchedKey>,
) -> Result<Vec<ExecElement>, Frame> {
    // This node's clock only checks relative expiries; the shard's leader stamps the entry.
    let clock_ms = wall_clock_ms();
    // `None` marks an element answered by the entry's reply array, in order.
    let mut plan = Vec::with_capacity(queued.len());
    let mut steps = Vec::new();
    for item in queued {
        plan.push(match item {
            Queued::Refused(error) => Some(ExecElement::Answered(Frame::from(&error))),
            Queued::Command(Command::Read(read)) => {
                steps.push(TxnStep::Read(read));
                None
            }
            Queued::Command(Command::Write(write)) => match write.resolve(clock_ms) {
                Ok(write) => {
                    steps.push(TxnStep::Write(write.op));
                    None
                }
                Err(error) => Some(ExecElement::Answered(Frame::from(&error))),
            },
            Queued::Command(other) => Some(ExecElement::Local(other)),
        });
    }
    let mut replies = run_steps(executor, steps, watched).await?.into_iter();
    let missing = || Frame::error("ERR internal: the transaction answered too few replies");
    let elements = plan.into_iter().map(|element| {
        element.unwrap_or_else(|| ExecElement::Answered(replies.next().map_or_else(missing, Frame::from)))
    });
    Ok(elements.collect())
}

/// Proposes the steps as one entry on their shard, under `watched`; the replies, one per step.
async fn run_steps(
    executor: &Executor,
    steps: Vec<TxnStep>,
    watched: Vec<WatchedKey>,
) -> Result<Vec<Reply>, Frame> {
    if steps.is_empty() && watched.is_empty() {
        return Ok(Vec::new());
    }
    let shard = match single_shard(executor.router(), &steps, &watched) {
        Ok(shard) => shard,
        Err(crossslot) => {
            return across(executor, steps, watched).await.map_err(|error| match error {
                None => crossslot,
                Some(TxnError::WatchChanged) => Frame::NullArray,
                Some(error) => error_frame(&txn_failure(error)),
            })
        }
    };
    let op = WriteOp::Transaction { steps, watched };
    match executor.on_shard(shard, ShardOp::Write(KvWrite::unstamped(op))).await {
        Ok(Reply::Array(replies)) => Ok(replies),
        Ok(Reply::NilArray) => Err(Frame::NullArray),
        Ok(other) => Err(Frame::error(format!("ERR internal: a transaction answered {other:?}"))),
        Err(error) => Err(error_frame(&error)),
    }
}

/// How one step's reply is rebuilt from the replies of its pieces, one per shard.
enum Join {
    /// One shard ran it whole.
    Whole(u64),
    /// Split by key (MSET): OK.
    Ok(Vec<u64>),
    /// Split by key (DEL, UNLINK, EXISTS): the sum.
    Sum(Vec<u64>),
    /// Split by key (MGET): each shard's elements back at their keys' positions.
    Gather(Vec<(u64, Vec<usize>)>, usize),
    /// A move ([`moves`]): its sources' exports (replies dropped), then its destination's
    /// reply.
    Moved { home: u64, sources: Vec<u64> },
    /// A whole-keyspace command, run on every shard, its replies joined as this says.
    Everywhere(Vec<u64>, Whole),
    /// A read combining several keys' values ([`moves::combines`]): each key's export, by
    /// shard, in the keys' order, then the read computed from the values.
    Computed { read: KvRead, sources: Vec<(u64, Vec<u8>)> },
}

/// How the replies of a whole-keyspace command run on every shard make one.
#[derive(Debug, Clone, Copy)]
enum Whole {
    /// KEYS: every shard's keys.
    Concat,
    /// DBSIZE: the sum.
    Sum,
    /// FLUSHALL: OK.
    Ok,
    /// RANDOMKEY: the first shard's key that is not nil.
    First,
    /// SCAN: the pages merged as `Executor::scan` merges them.
    Scan,
}

impl Whole {
    /// How `step`'s replies are joined, if it is a whole-keyspace command a transaction runs.
    fn of(step: &TxnStep) -> Option<Whole> {
        Some(match step {
            TxnStep::Read(KvRead::Keys { .. }) => Whole::Concat,
            TxnStep::Read(KvRead::DbSize) => Whole::Sum,
            TxnStep::Read(KvRead::RandomKey) => Whole::First,
            TxnStep::Read(KvRead::Scan { .. }) => Whole::Scan,
            TxnStep::Write(WriteOp::FlushAll) => Whole::Ok,
            _ => return None,
        })
    }

    /// The replies of every shard joined into one.
    fn join(self, replies: Vec<Reply>) -> Reply {
        if let Some(error) = replies.iter().find(|reply| reply.is_error()) {
            return error.clone();
        }
        match self {
            Whole::Ok => Reply::Ok,
            Whole::Sum => {
                Reply::Integer(replies.iter().map(|r| if let Reply::Integer(n) = r { *n } else { 0 }).sum())
            }
            Whole::Concat => Reply::Array(
                replies
                    .into_iter()
                    .flat_map(|r| if let Reply::Array(items) = r { items } else { Vec::new() })
                    .collect(),
            ),
            Whole::First => replies.into_iter().find(|r| *r != Reply::Nil).unwrap_or(Reply::Nil),
            Whole::Scan => {
                let pages: Vec<(u64, Vec<Vec<u8>>)> = replies
                    .into_iter()
                    .filter_map(|r| {
                        if let Reply::Scan { cursor, keys } = r {
                            Some((cursor, keys))
                        } else {
                            None
                        }
                    })
                    .collect();
                join_scan_pages(pages)
            }
        }
    }
}

/// How many times a transaction with moves is tried again on other guesses, besides one
/// more try for each guess its pops can make.
const GUESSES_MAX: usize = 8;

/// Runs the steps as a cross-shard transaction, trying again on the next guess when a
/// move's or a pop's guess was wrong ([`moves`]). `Err(None)`: some step cannot run across
/// shards (the caller answers `CROSSSLOT`).
pub(crate) async fn across(
    executor: &Executor,
    steps: Vec<TxnStep>,
    watched: Vec<WatchedKey>,
) -> Result<Vec<Reply>, Option<TxnError>> {
    let mut guesses = Guesses::new(executor.router(), &steps);
    let tries_max = GUESSES_MAX + guesses.choices.iter().sum::<usize>();
    let mut tries = 0;
    loop {
        let plan = plan_acyclic(executor.router(), &steps, &watched, &mut guesses).ok_or(None)?;
        match executor.across_linked(plan.parts, &plan.links, Vote::Always).await {
            Err(TxnError::Misguessed { shard, steps: wrong }) if tries + 1 < tries_max => {
                for step in wrong {
                    if let Some(&i) = plan.origins.get(&(shard, step)) {
                        guesses.wrong(i);
                    }
                }
                tries += 1;
            }
            Err(error) => return Err(Some(error)),
            Ok(replies) => return Ok(join(plan.order, plan.joins, replies)),
        }
    }
}

/// Each step's guess ([`moves::split`]), and for the pops what their guesses can be and
/// which proved wrong.
struct Guesses {
    /// Each step's guess, counted from 0.
    at: Vec<usize>,
    /// How many guesses each step's pop can make (0: not a pop across shards).
    choices: Vec<usize>,
    /// The guesses of each pop that proved wrong (forgotten once all have: the keys changed
    /// between tries).
    wrong: Vec<BTreeSet<usize>>,
}

impl Guesses {
    /// Every step on its first guess.
    fn new(router: Router, steps: &[TxnStep]) -> Guesses {
        let choices: Vec<usize> = steps
            .iter()
            .map(|step| match step {
                TxnStep::Write(op) => moves::pop_guesses(router, op),
                TxnStep::Read(_) => 0,
            })
            .collect();
        Guesses { at: vec![0; steps.len()], wrong: vec![BTreeSet::new(); steps.len()], choices }
    }

    /// Step `i`'s guess was wrong: it takes the next.
    fn wrong(&mut self, i: usize) {
        let (Some(at), Some(&choices), Some(wrong)) =
            (self.at.get_mut(i), self.choices.get(i), self.wrong.get_mut(i))
        else {
            return;
        };
        if choices > 1 {
            wrong.insert(*at % choices);
            if wrong.len() >= choices {
                wrong.clear();
            }
        }
        *at += 1;
    }

    /// Whether no pop is on a guess that proved wrong.
    fn plausible(&self) -> bool {
        self.at
            .iter()
            .zip(&self.choices)
            .zip(&self.wrong)
            .all(|((&at, &choices), wrong)| choices < 2 || !wrong.contains(&(at % choices)))
    }

    /// The pops' next combination of guesses, the first pop's counting fastest.
    fn advance(&mut self) {
        for (at, &choices) in self.at.iter_mut().zip(&self.choices).filter(|(_, &choices)| choices > 1) {
            *at = (*at % choices + 1) % choices;
            if *at != 0 {
                break;
            }
        }
    }
}

/// How many plans a transaction whose moves and pops need each other's shards' values in a
/// cycle tries, guessing other shards for its pops, before it is refused.
const PLANS_MAX: usize = 64;

/// [`plan`] whose parts can be prepared in rounds: when the guessed shards of the pops
/// ([`moves::pop_guesses`]) make moves and pops need each other's shards' values in a cycle,
/// the next combinations of guesses in turn, skipping those that proved wrong, at most
/// [`PLANS_MAX`] plans. `None` if some step cannot run across shards, or no plausible guess
/// tried avoids a cycle.
fn plan_acyclic(
    router: Router,
    steps: &[TxnStep],
    watched: &[WatchedKey],
    guesses: &mut Guesses,
) -> Option<Plan> {
    let combinations =
        guesses.choices.iter().filter(|&&n| n > 1).try_fold(1usize, |all, &n| all.checked_mul(n));
    let mut planned = 0;
    for _ in 0..combinations.unwrap_or(usize::MAX) {
        if guesses.plausible() {
            let plan = plan(router, steps, watched, &guesses.at)?;
            if crate::txn::coordinator::rounds(&plan.parts, &plan.links).is_ok() {
                return Some(plan);
            }
            planned += 1;
            if planned >= PLANS_MAX {
                return None;
            }
        }
        guesses.advance();
    }
    None
}

/// A cross-shard transaction's parts, and how to rebuild the steps' replies from theirs.
struct Plan {
    parts: Vec<Part>,
    links: Vec<Link>,
    joins: Vec<Join>,
    /// The parts' shards, in order.
    order: Vec<u64>,
    /// Which client step each move's destination step comes from, by shard and index.
    origins: BTreeMap<(u64, usize), usize>,
}

/// Splits the steps into parts, each move or pop on its guess in `guesses`; `None` if some
/// step cannot run across shards. The parts may need each other's values in a cycle
/// ([`plan_acyclic`] checks).
fn plan(router: Router, steps: &[TxnStep], watched: &[WatchedKey], guesses: &[usize]) -> Option<Plan> {
    let mut parts: BTreeMap<u64, Part> = BTreeMap::new();
    let mut links = Vec::new();
    let mut origins = BTreeMap::new();
    let mut joins = Vec::with_capacity(steps.len());
    for (n, step) in steps.iter().enumerate() {
        let mut by_shard: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
        let keys = step.keys();
        if keys.is_empty() {
            let whole = Whole::of(step)?;
            let shards: Vec<u64> = router.shards().map(|shard| shard.0).collect();
            for &shard in &shards {
                part(&mut parts, shard).steps.push(step.clone());
            }
            joins.push(Join::Everywhere(shards, whole));
            continue;
        }
        for (i, key) in keys.iter().enumerate() {
            by_shard.entry(router.shard_of(key).0).or_default().push(i);
        }
        if by_shard.len() == 1 {
            let shard = *by_shard.keys().next()?;
            part(&mut parts, shard).steps.push(step.clone());
            joins.push(Join::Whole(shard));
            continue;
        }
        let pick = |list: &[Vec<u8>], positions: &[usize]| {
            positions.iter().filter_map(|&i| list.get(i).cloned()).collect::<Vec<_>>()
        };
        let owned: Vec<Vec<u8>> = keys.iter().map(|key| key.to_vec()).collect();
        let touched: Vec<u64> = by_shard.keys().copied().collect();
        let join = match step {
            TxnStep::Write(WriteOp::MSet { pairs }) => {
                for (&shard, positions) in &by_shard {
                    let pairs = positions.iter().filter_map(|&i| pairs.get(i).cloned()).collect();
                    part(&mut parts, shard).steps.push(TxnStep::Write(WriteOp::MSet { pairs }));
                }
                Join::Ok(touched)
            }
            TxnStep::Write(WriteOp::Del { .. }) => {
                for (&shard, positions) in &by_shard {
                    part(&mut parts, shard)
                        .steps
                        .push(TxnStep::Write(WriteOp::Del { keys: pick(&owned, positions) }));
                }
                Join::Sum(touched)
            }
            TxnStep::Read(KvRead::Exists { .. }) => {
                for (&shard, positions) in &by_shard {
                    part(&mut parts, shard)
                        .steps
                        .push(TxnStep::Read(KvRead::Exists { keys: pick(&owned, positions) }));
                }
                Join::Sum(touched)
            }
            TxnStep::Read(KvRead::MGet { .. }) => {
                for (&shard, positions) in &by_shard {
                    part(&mut parts, shard)
                        .steps
                        .push(TxnStep::Read(KvRead::MGet { keys: pick(&owned, positions) }));
                }
                Join::Gather(by_shard.into_iter().collect(), owned.len())
            }
            TxnStep::Read(read) if moves::combines(read) => {
                let mut sources: Vec<(u64, Vec<u8>)> = Vec::new();
                for key in &owned {
                    if sources.iter().all(|(_, seen)| seen != key) {
                        let shard = router.shard_of(key).0;
                        part(&mut parts, shard)
                            .steps
                            .push(TxnStep::Write(WriteOp::Export { key: key.clone(), then: None }));
                        sources.push((shard, key.clone()));
                    }
                }
                Join::Computed { read: read.clone(), sources }
            }
            TxnStep::Write(op) => {
                let split = moves::split(router, op, guesses.get(n).copied().unwrap_or(0))?;
                let home = split.home;
                let step_at = part(&mut parts, home).steps.len();
                let mut sources = Vec::with_capacity(split.exports.len());
                for (import, (shard, export)) in split.exports.into_iter().enumerate() {
                    let source = part(&mut parts, shard);
                    links.push(Link {
                        to: home,
                        step: step_at,
                        import,
                        from: shard,
                        from_step: source.steps.len(),
                    });
                    source.steps.push(TxnStep::Write(export));
                    sources.push(shard);
                }
                part(&mut parts, home).steps.push(TxnStep::Write(split.step));
                origins.insert((home, step_at), n);
                Join::Moved { home, sources }
            }
            _ => return None,
        };
        joins.push(join);
    }
    for watched in watched {
        part(&mut parts, router.shard_of(&watched.key).0).watched.push(watched.clone());
    }
    let order: Vec<u64> = parts.keys().copied().collect();
    let parts: Vec<Part> = parts.into_values().collect();
    Some(Plan { parts, links, joins, order, origins })
}

/// The steps' replies, rebuilt from the parts' (one array per part, in `order`).
fn join(order: Vec<u64>, joins: Vec<Join>, replies: Vec<Reply>) -> Vec<Reply> {
    let mut per_shard: BTreeMap<u64, std::vec::IntoIter<Reply>> = order
        .into_iter()
        .zip(replies)
        .map(|(shard, reply)| (shard, step_replies(reply).into_iter()))
        .collect();
    let mut next = |shard: u64| per_shard.get_mut(&shard).and_then(Iterator::next).unwrap_or(Reply::Nil);
    let joined = joins.into_iter().map(|join| match join {
        Join::Whole(shard) => next(shard),
        Join::Moved { home, sources } => {
            for shard in sources {
                next(shard);
            }
            next(home)
        }
        Join::Everywhere(shards, whole) => whole.join(shards.into_iter().map(&mut next).collect()),
        Join::Computed { read, sources } => {
            let mut values = Vec::with_capacity(sources.len());
            let mut failed = None;
            for (shard, key) in sources {
                match next(shard) {
                    Reply::Bulk(value) => values.push((key, Some(value))),
                    Reply::Nil => values.push((key, None)),
                    error => failed = failed.or(Some(error)),
                }
            }
            failed.unwrap_or_else(|| read_exported(&read, &values))
        }
        Join::Ok(shards) => shards.into_iter().map(&mut next).find(Reply::is_error).unwrap_or(Reply::Ok),
        Join::Sum(shards) => {
            let replies: Vec<Reply> = shards.into_iter().map(&mut next).collect();
            match replies.iter().find(|reply| reply.is_error()) {
                Some(error) => error.clone(),
                None => Reply::Integer(
                    replies.iter().map(|r| if let Reply::Integer(n) = r { *n } else { 0 }).sum(),
                ),
            }
        }
        Join::Gather(pieces, len) => {
            let mut values = vec![Reply::Nil; len];
            for (shard, positions) in pieces {
                if let Reply::Array(items) = next(shard) {
                    for (position, item) in positions.into_iter().zip(items) {
                        if let Some(slot) = values.get_mut(position) {
                            *slot = item;
                        }
                    }
                }
            }
            Reply::Array(values)
        }
    });
    joined.collect()
}

/// `shard`'s part, created empty if need be.
fn part(parts: &mut BTreeMap<u64, Part>, shard: u64) -> &mut Part {
    parts.entry(shard).or_insert_with(|| Part { shard, steps: Vec::new(), watched: Vec::new() })
}

/// The one shard all steps' keys and the watched keys live on. A step without keys
/// (FLUSHALL, KEYS, SCAN, DBSIZE, RANDOMKEY) concerns every shard.
fn single_shard(router: Router, steps: &[TxnStep], watched: &[WatchedKey]) -> Result<u64, Frame> {
    let mut touched: BTreeSet<u64> = watched.iter().map(|watched| router.shard_of(&watched.key).0).collect();
    for step in steps {
        let keys = step.keys();
        if keys.is_empty() {
            touched.extend(router.shards().map(|shard| shard.0));
        }
        touched.extend(keys.into_iter().map(|key| router.shard_of(key).0));
    }
    match touched.first() {
        Some(&shard) if touched.len() == 1 => Ok(shard),
        _ => {
            let error = TransactionError::CrossShard { shards: touched.into_iter().collect() };
            Err(Frame::error(error.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(key: &str) -> TxnStep {
        TxnStep::Read(crate::kv::KvRead::Get { key: key.as_bytes().to_vec() })
    }

    #[test]
    fn a_transaction_runs_on_the_one_shard_of_its_keys_or_is_refused() {
        let shards = Router::new(crate::node::KeyRouting::HashSlots, 8);
        let on = |prefix: &str, shard| {
            (0..).map(|i| format!("{prefix}{i}")).find(|k| shards.shard_of(k.as_bytes()).0 == shard).unwrap()
        };
        let (a, b, c) = (on("a", 3), on("b", 3), on("c", 5));
        assert_eq!(single_shard(shards, &[get(&a), get(&b)], &[]), Ok(3));
        let refused = single_shard(shards, &[get(&a), get(&c)], &[]).unwrap_err();
        assert_eq!(refused, Frame::error(TransactionError::CrossShard { shards: vec![3, 5] }.to_string()));
        assert!(single_shard(shards, &[TxnStep::Write(WriteOp::FlushAll)], &[]).is_err());
        assert!(single_shard(shards, &[TxnStep::Write(WriteOp::FlushAll), get(&a)], &[]).is_err());
        let watched = |key: &str| WatchedKey { key: key.as_bytes().to_vec(), version: 1 };
        assert_eq!(single_shard(shards, &[get(&a)], &[watched(&b)]), Ok(3));
        assert!(single_shard(shards, &[get(&a)], &[watched(&c)]).is_err(), "a watched key on another shard");
        assert_eq!(single_shard(shards, &[], &[watched(&c)]), Ok(5));
        let one = Router::new(crate::node::KeyRouting::HashSlots, 1);
        assert_eq!(single_shard(one, &[TxnStep::Write(WriteOp::FlushAll), get(&c)], &[]), Ok(1));
        let tagged: Vec<TxnStep> = (0..50).map(|i| get(&format!("{{user1}}:{i}"))).collect();
        assert!(single_shard(shards, &tagged, &[watched("{user1}:w")]).is_ok(), "a hash tag keeps one shard");
    }

    #[test]
    fn pops_in_opposite_directions_are_planned_on_guesses_without_a_cycle() {
        use crate::kv::types::{CollectionWrite, End, ListPop, ListWrite};
        let router = Router::new(crate::node::KeyRouting::HashSlots, 8);
        let on = |prefix: &str, shard| {
            (0..).map(|i| format!("{prefix}{i}")).find(|k| router.shard_of(k.as_bytes()).0 == shard).unwrap()
        };
        let (a, b) = (on("a", 2).into_bytes(), on("b", 7).into_bytes());
        let pop = |keys: Vec<Vec<u8>>| {
            TxnStep::Write(WriteOp::Collection(CollectionWrite::List(ListWrite::Pop(ListPop::First {
                keys,
                end: End::Head,
                count: Some(1),
            }))))
        };
        // Guessing each pop's second key needs shard 2 before 7 and 7 before 2.
        let steps = vec![pop(vec![a.clone(), b.clone()]), pop(vec![b.clone(), a.clone()])];
        let mut guesses = Guesses::new(router, &steps);
        guesses.at = vec![1, 1];
        let plan = plan_acyclic(router, &steps, &[], &mut guesses).expect("a guess without a cycle");
        assert_eq!(guesses.at, vec![0, 0], "the guesses counted on, the first pop fastest");
        assert!(crate::txn::coordinator::rounds(&plan.parts, &plan.links).is_ok());
        // Once both first guesses proved wrong, the only plausible ones make a cycle.
        let mut guesses = Guesses::new(router, &steps);
        guesses.wrong(0);
        guesses.wrong(1);
        assert_eq!(guesses.at, vec![1, 1]);
        assert!(plan_acyclic(router, &steps, &[], &mut guesses).is_none(), "refused, not tried");
        let rename = |from: &[u8], to: &[u8]| {
            TxnStep::Write(WriteOp::Rename { from: from.to_vec(), to: to.to_vec(), if_new: false })
        };
        let (c, d) = (on("c", 2).into_bytes(), on("d", 7).into_bytes());
        let cycle = vec![rename(&a, &b), rename(&d, &c)];
        let mut guesses = Guesses::new(router, &cycle);
        assert!(plan_acyclic(router, &cycle, &[], &mut guesses).is_none(), "moves have no other guess");
    }
}

//! The coordinator: the node that received the client's transaction drives it through the
//! participants, by transaction id: begin, prepare, then commit or abort.
//!
//! The protocol is two-phase commit in the manner of parallel commits (CockroachDB) and
//! async commit (TiKV): the transaction is committed at the moment its last participant
//! replicates its PREPARE, so the client is answered after one round of PREPAREs (in
//! parallel, one Raft round plus one round trip), and the COMMITs that apply the writes and
//! release the locks follow without the client waiting. Until they land, the locks keep
//! every reader and writer of those keys waiting, so nobody sees the transaction half done.
//! The primary (the first participant) holds the transaction's record: its COMMITTED or
//! ABORTED outcome is the first a resolver asks for ([`super::resolver`]).

use std::time::Instant;

use futures::future::join_all;

use crate::error::Error;
use crate::kv::{LockHolder, Reply, TxnStep, WatchedKey, WriteOp};

use super::client::ShardClient;
use super::entry::{Prepare, TxnEntry, Vote};
use super::id::{TxnId, TxnIds};
use super::resolver;
use super::state::{Outcome, TxnState};
use super::stats::TxnStats;

/// How many times a transaction refused by another's lock is tried before its client gets
/// an error.
pub const ATTEMPTS_MAX: u32 = 16;

/// One shard's part of a transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    /// The shard.
    pub shard: u64,
    /// Its commands, in client order.
    pub steps: Vec<TxnStep>,
    /// Its watched keys.
    pub watched: Vec<WatchedKey>,
}

/// A value one part's step imports from another part's step: the import `import` of step
/// `step` of `to`'s part ([`WriteOp::Imported`]) is what step `from_step` of `from`'s part
/// ([`WriteOp::Export`]) answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    /// The importing part's shard.
    pub to: u64,
    /// The importing step, in its part.
    pub step: usize,
    /// Which of its imports.
    pub import: usize,
    /// The exporting part's shard.
    pub from: u64,
    /// The exporting step, in its part.
    pub from_step: usize,
}

/// Why a transaction did not commit.
#[derive(Debug, thiserror::Error)]
pub enum TxnError {
    /// A watched key changed: nothing ran (EXEC answers a null array).
    #[error("a watched key changed")]
    WatchChanged,
    /// A participant voted against it ([`Vote::IfEveryReplyIsOne`]): nothing ran.
    #[error("a participant voted to abort")]
    VotedNo,
    /// Other transactions held its keys through every attempt: nothing ran.
    #[error("{}", .0.message())]
    Conflict(LockHolder),
    /// A destination found that a source's effect was built on a wrong guess of the
    /// command's outcome ([`crate::kv::transfer`]): nothing ran; the steps (of `shard`'s part)
    /// are to be built on the other guess.
    #[error("shard {shard} found a cross-shard command built on a wrong guess")]
    Misguessed {
        /// The destination's shard.
        shard: u64,
        /// Its steps whose guess was wrong.
        steps: Vec<usize>,
    },
    /// A participant refused it (the text says why): nothing ran.
    #[error("{0}")]
    Refused(String),
    /// It committed, but a participant's replies were lost with its answer.
    #[error("the transaction committed, but the replies of shard {shard} were lost: {source}")]
    RepliesLost {
        /// The shard.
        shard: u64,
        /// Why its answer was lost.
        source: Error,
    },
    /// The outcome is unknown (a participant did not answer): a resolver will decide it.
    #[error(transparent)]
    Unknown(Error),
}

/// One attempt at a transaction, in the seed's states.
pub struct Coordinator<'c, C: ShardClient + ?Sized> {
    client: &'c C,
    id: TxnId,
    state: TxnState,
    participants: Vec<u64>,
    started_ms: u64,
}

impl<'c, C: ShardClient + ?Sized> Coordinator<'c, C> {
    /// Begins transaction `id` over `participants` (primary first) at `started_ms` (this node's
    /// clock).
    pub fn begin(client: &'c C, id: TxnId, participants: Vec<u64>, started_ms: u64) -> Self {
        Coordinator { client, id, state: TxnState::Init, participants, started_ms }
    }

    /// The transaction's id.
    pub fn id(&self) -> TxnId {
        self.id
    }

    /// Where it stands.
    pub fn state(&self) -> TxnState {
        self.state
    }

    fn become_(&mut self, next: TxnState) {
        debug_assert!(self.state.may_become(next), "{} -> {next}", self.state);
        self.state = next;
    }

    /// Sends every part's PREPARE at once; the parts' replies (one array per part) once all
    /// prepared: the transaction is then committed, and [`Coordinator::commit`] must follow.
    /// On a refusal the transaction is aborted here and the error says why.
    pub async fn prepare(&mut self, parts: Vec<Part>, vote: Vote) -> Result<Vec<Reply>, TxnError> {
        self.prepare_linked(parts, &[], vote).await
    }

    /// [`Coordinator::prepare`] of parts some of whose steps import values other parts export
    /// (`links`): the parts are prepared in rounds, each once every part it imports from has
    /// prepared, its imports filled from their replies. Only the last round's PREPAREs make
    /// the transaction committed; a coordinator lost before it leaves a part unprepared, and
    /// the resolver's FENCE then aborts the transaction there for good.
    pub async fn prepare_linked(
        &mut self,
        mut parts: Vec<Part>,
        links: &[Link],
        vote: Vote,
    ) -> Result<Vec<Reply>, TxnError> {
        self.become_(TxnState::Preparing);
        let rounds = match rounds(&parts, links) {
            Ok(rounds) => rounds,
            Err(refusal) => {
                self.abort().await;
                return Err(refusal);
            }
        };
        let mut replies: Vec<Option<Reply>> = vec![None; parts.len()];
        let parts_shards: Vec<u64> = parts.iter().map(|part| part.shard).collect();
        let last = rounds.len().saturating_sub(1);
        for (round, members) in rounds.into_iter().enumerate() {
            let mut sending = Vec::with_capacity(members.len());
            for &i in &members {
                let Some(part) = parts.get_mut(i) else { continue };
                let filled = fill_imports(part, links, &parts_shards, &replies);
                if let Err(refusal) = filled {
                    self.abort().await;
                    return Err(refusal);
                }
                sending.push((i, part.clone()));
            }
            let sends = sending.iter().map(|(_, part)| {
                let prepare = Prepare {
                    id: self.id,
                    participants: self.participants.clone(),
                    started_ms: self.started_ms,
                    steps: part.steps.clone(),
                    watched: part.watched.clone(),
                    vote,
                };
                self.client.submit(part.shard, TxnEntry::Prepare(prepare))
            });
            let mut refusal = None;
            let mut unanswered = Vec::new();
            for ((i, part), result) in sending.iter().zip(join_all(sends).await) {
                let shard = part.shard;
                match result {
                    Ok(Reply::Array(steps)) => {
                        if let Some(slot) = replies.get_mut(*i) {
                            *slot = Some(Reply::Array(steps));
                        }
                    }
                    Ok(Reply::NilArray) => refusal = Some(TxnError::WatchChanged),
                    Ok(Reply::Locked(holder)) => refusal = Some(TxnError::Conflict(holder)),
                    Ok(Reply::Status("ABORTED")) => refusal = Some(TxnError::VotedNo),
                    Ok(Reply::ErrorText(text)) => refusal = Some(refused(shard, text)),
                    Ok(other) => {
                        unanswered.push((shard, Error::State(format!("a prepare answered {other:?}"))))
                    }
                    Err(error) => unanswered.push((shard, error)),
                }
            }
            #[cfg(test)]
            if crate::canary::planted(crate::canary::Canary::CommitUnprepared) {
                unanswered.clear();
            }
            if refusal.is_none() && !unanswered.is_empty() {
                if round < last {
                    // Nothing is committed before the last round: abort, whatever they did.
                    let (shard, error) = unanswered.swap_remove(0);
                    refusal = Some(TxnError::Refused(format!(
                        "ERR shard {shard} did not answer a prepare its other parts needed: {error}"
                    )));
                } else {
                    refusal = self.fence(unanswered).await?;
                }
            }
            if let Some(refusal) = refusal {
                self.abort().await;
                return Err(refusal);
            }
        }
        self.become_(TxnState::Prepared);
        Ok(replies.into_iter().map(|reply| reply.unwrap_or(Reply::Array(Vec::new()))).collect())
    }

    /// Fences the participants whose PREPARE went unanswered: a refusal if one of them will
    /// now never prepare; `Ok(None)` if all did; an error if the outcome stays unknown.
    async fn fence(&mut self, unanswered: Vec<(u64, Error)>) -> Result<Option<TxnError>, TxnError> {
        let mut lost = None;
        for (shard, error) in unanswered {
            match self.client.submit(shard, TxnEntry::Fence(self.id)).await {
                Ok(Reply::Status("ABORTED")) => return Ok(Some(TxnError::Unknown(error))),
                Ok(Reply::Status("PREPARED" | "COMMITTED")) => lost = Some((shard, error)),
                _ => return Err(TxnError::Unknown(error)),
            }
        }
        match lost {
            // Every participant prepared: committed, but this part's replies are gone.
            Some((shard, source)) => {
                self.become_(TxnState::Prepared);
                self.commit().await;
                Err(TxnError::RepliesLost { shard, source })
            }
            None => Ok(None),
        }
    }

    /// Applies the committed transaction everywhere, in the background if the client can
    /// ([`ShardClient::finish_later`]): the transaction is already committed, and the locks
    /// keep everyone else from seeing it half applied meanwhile.
    pub async fn commit_in_background(&mut self) {
        if self.client.finish_later(self.id, self.participants.clone(), Outcome::Committed) {
            self.become_(TxnState::Committing);
            return;
        }
        self.commit().await;
    }

    /// Applies the committed transaction everywhere. A participant that misses its COMMIT is
    /// finished by a resolver, so this waits for the sends but not for their success.
    pub async fn commit(&mut self) {
        self.become_(TxnState::Committing);
        if let Err(e) = resolver::finish(self.client, self.id, &self.participants, Outcome::Committed).await {
            tracing::debug!(txn = %self.id, error = %e, "a participant missed its commit; the resolver will finish it");
        }
        self.become_(TxnState::Committed);
    }

    /// Drops the transaction everywhere (a participant refused it, so it can never commit).
    pub async fn abort(&mut self) {
        self.become_(TxnState::Aborting);
        if let Err(e) = resolver::finish(self.client, self.id, &self.participants, Outcome::Aborted).await {
            tracing::debug!(txn = %self.id, error = %e, "a participant missed its abort; the resolver will finish it");
        }
        self.become_(TxnState::Aborted);
    }
}

/// The order parts are prepared in: rounds of part indexes, each part after every part it
/// imports from; a refusal if the parts import from each other in a cycle.
pub fn rounds(parts: &[Part], links: &[Link]) -> Result<Vec<Vec<usize>>, TxnError> {
    let index = |shard: u64| parts.iter().position(|part| part.shard == shard);
    let mut round_of: Vec<Option<usize>> = vec![None; parts.len()];
    let mut rounds: Vec<Vec<usize>> = Vec::new();
    while round_of.iter().any(Option::is_none) {
        let round = rounds.len();
        let ready: Vec<usize> = (0..parts.len())
            .filter(|&i| round_of.get(i) == Some(&None))
            .filter(|&i| {
                links.iter().filter(|link| index(link.to) == Some(i)).all(|link| {
                    index(link.from).and_then(|from| round_of.get(from).copied().flatten()).is_some()
                })
            })
            .collect();
        if ready.is_empty() {
            return Err(TxnError::Refused(
                "CROSSSLOT the transaction's cross-shard commands need each other's shards' values in a \
                 cycle"
                    .into(),
            ));
        }
        for &i in &ready {
            if let Some(slot) = round_of.get_mut(i) {
                *slot = Some(round);
            }
        }
        rounds.push(ready);
    }
    Ok(rounds)
}

/// Fills `part`'s imports from the replies of the parts prepared so far (`shards[i]` is
/// part `i`'s shard); a refusal if an exporting step did not answer a value.
fn fill_imports(
    part: &mut Part,
    links: &[Link],
    shards: &[u64],
    replies: &[Option<Reply>],
) -> Result<(), TxnError> {
    for link in links.iter().filter(|link| link.to == part.shard) {
        let exported = shards
            .iter()
            .position(|&shard| shard == link.from)
            .and_then(|from| replies.get(from))
            .and_then(Option::as_ref)
            .and_then(|reply| match reply {
                Reply::Array(steps) => steps.get(link.from_step),
                _ => None,
            });
        let value = match exported {
            Some(Reply::Bulk(bytes)) => Some(bytes.clone()),
            Some(Reply::Nil) => None,
            other => {
                return Err(TxnError::Refused(format!(
                    "ERR shard {} could not export a value for a cross-shard command: {other:?}",
                    link.from
                )))
            }
        };
        let slot = match part.steps.get_mut(link.step) {
            Some(TxnStep::Write(WriteOp::Imported { imports, .. })) => imports.get_mut(link.import),
            _ => None,
        };
        match slot {
            Some((_, slot)) => *slot = value,
            None => return Err(TxnError::Refused("ERR internal: a link to no import".into())),
        }
    }
    Ok(())
}

/// What a participant's refusal `text` means.
fn refused(shard: u64, text: String) -> TxnError {
    match text.strip_prefix(crate::kv::transfer::MISGUESS_CODE) {
        Some(steps) => TxnError::Misguessed {
            shard,
            steps: steps.split_whitespace().filter_map(|step| step.parse().ok()).collect(),
        },
        None => TxnError::Refused(text),
    }
}

/// Runs a transaction made of `parts` (primary first) to its end: tries again, with a new id,
/// when another transaction's lock refused it (resolving that one if its lock is old), up to
/// [`ATTEMPTS_MAX`] times. The parts' replies once committed.
pub async fn run<C: ShardClient + ?Sized>(
    client: &C,
    ids: &TxnIds,
    stats: &TxnStats,
    started_ms: u64,
    parts: Vec<Part>,
    vote: Vote,
) -> Result<Vec<Reply>, TxnError> {
    run_linked(client, ids, stats, started_ms, parts, &[], vote).await
}

/// [`run`] of parts whose steps import values other parts export ([`Coordinator::prepare_linked`]).
/// A wrong guess ([`TxnError::Misguessed`]) is returned, not retried: the caller rebuilds the
/// parts on the other guess.
pub async fn run_linked<C: ShardClient + ?Sized>(
    client: &C,
    ids: &TxnIds,
    stats: &TxnStats,
    started_ms: u64,
    parts: Vec<Part>,
    links: &[Link],
    vote: Vote,
) -> Result<Vec<Reply>, TxnError> {
    let participants: Vec<u64> = parts.iter().map(|part| part.shard).collect();
    let began = Instant::now();
    let mut attempt = 0;
    loop {
        let mut coordinator = Coordinator::begin(client, ids.next(), participants.clone(), started_ms);
        let id = coordinator.id();
        stats.track(id, TxnState::Preparing, &participants);
        let result = coordinator.prepare_linked(parts.clone(), links, vote).await;
        stats.untrack(id);
        match result {
            Ok(replies) => {
                coordinator.commit_in_background().await;
                stats.committed(began.elapsed());
                return Ok(replies);
            }
            Err(TxnError::Conflict(holder)) if attempt + 1 < ATTEMPTS_MAX => {
                stats.conflict();
                resolver::wait_out(client, &holder, attempt, stats).await;
                attempt += 1;
            }
            Err(error @ TxnError::Misguessed { .. }) => {
                stats.conflict();
                return Err(error);
            }
            Err(error) => {
                if !matches!(error, TxnError::Unknown(_) | TxnError::RepliesLost { .. }) {
                    stats.aborted();
                }
                return Err(error);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::{KvRead, KvStore, KvWrite, SetCondition, SetTtl};
    use crate::txn::participant::Participant;
    use futures::future::BoxFuture;
    use futures::FutureExt;
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    /// Shards in memory, applied in place; PREPAREs to `held` shards are kept, unanswered,
    /// as if the coordinator died before sending them.
    #[derive(Default)]
    struct Shards {
        state: Mutex<BTreeMap<u64, (KvStore, Participant, u64)>>,
        held: Mutex<Vec<(u64, TxnEntry)>>,
        hold: Vec<u64>,
    }

    impl Shards {
        fn apply(&self, shard: u64, entry: &TxnEntry) -> Reply {
            let mut state = self.state.lock().unwrap();
            let (store, participant, index) = state.entry(shard).or_default();
            *index += 1;
            participant.apply(store, *index, 1_000, entry)
        }

        fn get(&self, shard: u64, key: &str) -> Reply {
            let state = self.state.lock().unwrap();
            state.get(&shard).map_or(Reply::Nil, |(store, _, _)| {
                store.read(&KvRead::Get { key: key.as_bytes().to_vec() }, 1_000)
            })
        }
    }

    impl ShardClient for Shards {
        fn submit(&self, shard: u64, entry: TxnEntry) -> BoxFuture<'_, Result<Reply, Error>> {
            if matches!(entry, TxnEntry::Prepare(_)) && self.hold.contains(&shard) {
                self.held.lock().unwrap().push((shard, entry));
                return futures::future::pending().boxed();
            }
            let reply = self.apply(shard, &entry);
            futures::future::ready(Ok(reply)).boxed()
        }

        fn read(&self, shard: u64, read: KvRead) -> BoxFuture<'_, Result<Reply, Error>> {
            let mut state = self.state.lock().unwrap();
            let (store, participant, _) = state.entry(shard).or_default();
            let reply = match read {
                KvRead::TxnLocks { min_age_ms } => participant.stale(min_age_ms, 1_000 + min_age_ms),
                read => store.read(&read, 1_000),
            };
            futures::future::ready(Ok(reply)).boxed()
        }

        fn pause(&self, _ms: u64) -> BoxFuture<'_, ()> {
            futures::future::ready(()).boxed()
        }
    }

    fn rename_parts() -> (Vec<Part>, Vec<Link>) {
        let export = WriteOp::Export {
            key: b"a".to_vec(),
            then: Some(Box::new(WriteOp::Del { keys: vec![b"a".to_vec()] })),
        };
        let rename = WriteOp::Rename { from: b"a".to_vec(), to: b"b".to_vec(), if_new: false };
        let import = WriteOp::Imported {
            imports: vec![(b"a".to_vec(), None)],
            op: Box::new(rename),
            expect: crate::kv::Expect::Any,
        };
        let parts = vec![
            Part { shard: 1, steps: vec![TxnStep::Write(export)], watched: Vec::new() },
            Part { shard: 2, steps: vec![TxnStep::Write(import)], watched: Vec::new() },
        ];
        (parts, vec![Link { to: 2, step: 0, import: 0, from: 1, from_step: 0 }])
    }

    fn seeded(hold: Vec<u64>) -> Shards {
        let shards = Shards { hold, ..Shards::default() };
        let set = WriteOp::Set {
            key: b"a".to_vec(),
            value: b"1".to_vec(),
            condition: SetCondition::Always,
            ttl: SetTtl::Clear,
            get: false,
        };
        let mut state = shards.state.lock().unwrap();
        let (store, _, index) = state.entry(1).or_default();
        *index += 1;
        store.apply_at(*index, &KvWrite { now_ms: 1_000, op: set });
        drop(state);
        shards
    }

    #[test]
    fn a_linked_transaction_prepares_its_source_first_and_moves_the_value() {
        let shards = seeded(Vec::new());
        let (parts, links) = rename_parts();
        let mut coordinator = Coordinator::begin(&shards, TxnId(7), vec![1, 2], 1_000);
        let replies = coordinator.prepare_linked(parts, &links, Vote::Always).now_or_never().expect("ready");
        let replies = replies.expect("prepared");
        assert_eq!(replies[1], Reply::Array(vec![Reply::Ok]));
        coordinator.commit().now_or_never().expect("ready");
        assert_eq!(shards.get(1, "a"), Reply::Nil);
        assert_eq!(shards.get(2, "b"), Reply::Bulk(b"1".to_vec()));
    }

    #[test]
    fn a_coordinator_lost_between_rounds_is_aborted_by_the_resolver_and_its_late_prepare_refused() {
        let shards = seeded(vec![2]);
        let (parts, links) = rename_parts();
        let mut coordinator = Coordinator::begin(&shards, TxnId(9), vec![1, 2], 1_000);
        // The source prepares; the destination's PREPARE is held; the coordinator then dies.
        assert!(coordinator.prepare_linked(parts, &links, Vote::Always).now_or_never().is_none());
        drop(coordinator);
        let held = shards.held.lock().unwrap().pop().expect("the destination's prepare was built");
        let Reply::Array(stale) =
            shards.read(1, KvRead::TxnLocks { min_age_ms: 0 }).now_or_never().unwrap().unwrap()
        else {
            panic!("locks listed")
        };
        let Some(Reply::Locked(holder)) = stale.first() else { panic!("the source is locked: {stale:?}") };
        let outcome = resolver::resolve(&shards, holder).now_or_never().expect("ready").expect("resolved");
        assert_eq!(outcome, Outcome::Aborted);
        // The PREPARE arriving after the abort is refused, and nothing moved.
        let late = shards.apply(held.0, &held.1);
        assert!(matches!(late, Reply::ErrorText(ref text) if text.starts_with("TXNABORTED")), "{late:?}");
        assert_eq!(shards.get(1, "a"), Reply::Bulk(b"1".to_vec()));
        assert_eq!(shards.get(2, "b"), Reply::Nil);
        assert_eq!(shards.state.lock().unwrap().values().map(|(_, p, _)| p.locked_keys()).sum::<usize>(), 0);
    }

    #[test]
    fn parts_that_import_from_each_other_in_a_cycle_are_refused() {
        let (mut parts, mut links) = rename_parts();
        links.push(Link { to: 1, step: 0, import: 0, from: 2, from_step: 0 });
        assert!(matches!(rounds(&parts, &links), Err(TxnError::Refused(_))));
        parts.swap(0, 1);
        assert_eq!(rounds(&parts, &links[..1]).unwrap(), vec![vec![1], vec![0]]);
    }
}

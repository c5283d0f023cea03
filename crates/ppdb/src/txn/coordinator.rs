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
use crate::kv::{LockHolder, Reply, TxnStep, WatchedKey};

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
        self.become_(TxnState::Preparing);
        let shards: Vec<u64> = parts.iter().map(|part| part.shard).collect();
        let sends = parts.into_iter().map(|part| {
            let prepare = Prepare {
                id: self.id,
                participants: self.participants.clone(),
                started_ms: self.started_ms,
                steps: part.steps,
                watched: part.watched,
                vote,
            };
            self.client.submit(part.shard, TxnEntry::Prepare(prepare))
        });
        let mut replies = Vec::with_capacity(shards.len());
        let mut refusal = None;
        let mut unanswered = Vec::new();
        for (&shard, result) in shards.iter().zip(join_all(sends).await) {
            match result {
                Ok(Reply::Array(part)) => replies.push(Reply::Array(part)),
                Ok(Reply::NilArray) => refusal = Some(TxnError::WatchChanged),
                Ok(Reply::Locked(holder)) => refusal = Some(TxnError::Conflict(holder)),
                Ok(Reply::Status("ABORTED")) => refusal = Some(TxnError::VotedNo),
                Ok(Reply::ErrorText(text)) => refusal = Some(TxnError::Refused(text)),
                Ok(other) => unanswered.push((shard, Error::State(format!("a prepare answered {other:?}")))),
                Err(error) => unanswered.push((shard, error)),
            }
        }
        #[cfg(test)]
        if super::canary::planted(super::canary::Canary::CommitUnprepared) {
            unanswered.clear();
        }
        if refusal.is_none() && !unanswered.is_empty() {
            refusal = self.fence(unanswered).await?;
        }
        if let Some(refusal) = refusal {
            self.abort().await;
            return Err(refusal);
        }
        self.become_(TxnState::Prepared);
        Ok(replies)
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
    let participants: Vec<u64> = parts.iter().map(|part| part.shard).collect();
    let began = Instant::now();
    let mut attempt = 0;
    loop {
        let mut coordinator = Coordinator::begin(client, ids.next(), participants.clone(), started_ms);
        let id = coordinator.id();
        stats.track(id, TxnState::Preparing, &participants);
        let result = coordinator.prepare(parts.clone(), vote).await;
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
            Err(error) => {
                if !matches!(error, TxnError::Unknown(_) | TxnError::RepliesLost { .. }) {
                    stats.aborted();
                }
                return Err(error);
            }
        }
    }
}

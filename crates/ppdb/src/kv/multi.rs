//! Single-shard transactions (MULTI/EXEC) as one log entry: [`super::WriteOp::Transaction`].
//!
//! A transaction is the ordered list of its key-space commands, writes with their expiries
//! (absolute, or relative to the entry's time), reads as queries. The state machine applies the whole entry in one step
//! ([`super::KvStore::apply`]): each step sees the effect of the steps before it, reads are
//! evaluated at apply time against the entry's `now_ms` (so they are linearizable), and the
//! reply is an array with one element per step. A step that fails (WRONGTYPE-like errors such
//! as `ERR value is not an integer`) is just that element's error; the others still apply, as
//! in Redis.
//!
//! Applying a transaction allocates its replies on every replica, so they are bounded: a step
//! whose reply would take the transaction's replies past [`TXN_REPLY_BYTES_MAX`] answers
//! `ERR transaction reply exceeds maximum allowed size` instead (a write step still takes
//! effect; a read builds nothing large). Redis has no such limit, only the client output
//! buffer's, which it enforces by disconnecting the client.

use super::command::{TxnStep, WatchedKey, VALUE_BYTES_MAX};
use super::reply::{KvError, Reply};
use super::state_machine::KvStore;

/// The most commands one transaction entry may hold.
pub const TXN_STEPS_MAX: u64 = 16 * 1024;

/// Room in a transaction's replies beyond one value of the largest size.
const TXN_REPLY_HEADROOM_BYTES: u64 = 64 * 1024 * 1024;

/// The most memory the replies of one transaction may hold, as [`super::Reply::bytes`]
/// counts it: one value of the largest size and some more (see the module docs).
pub const TXN_REPLY_BYTES_MAX: u64 = VALUE_BYTES_MAX + TXN_REPLY_HEADROOM_BYTES;

impl KvStore {
    /// Whether every watched key still has the version the client saw: a key written since,
    /// deleted, created or expired (Redis 7 counts expiry as a change) breaks the watch.
    pub(super) fn watch_holds(&self, watched: &[WatchedKey], now: u64) -> bool {
        watched.iter().all(|watched| self.live_version(&watched.key, now) == watched.version)
    }

    /// MULTI/EXEC: every step in order, each seeing the ones before; one reply per step. An
    /// error reply of one step leaves the state as it was and the other steps still apply.
    /// The replies together stay within [`TXN_REPLY_BYTES_MAX`].
    pub(super) fn apply_transaction(&mut self, steps: &[TxnStep], now: u64) -> Reply {
        self.apply_steps(steps, now, TXN_REPLY_BYTES_MAX)
    }

    /// The steps of a transaction, their replies holding at most `reply_bytes_max` bytes.
    pub(super) fn apply_steps(&mut self, steps: &[TxnStep], now: u64, reply_bytes_max: u64) -> Reply {
        let mut replies = Vec::with_capacity(steps.len());
        let mut reply_bytes = 0u64;
        for step in steps {
            let room = reply_bytes_max.saturating_sub(reply_bytes);
            let reply = match step {
                TxnStep::Write(op) => Some(self.apply_op(op, now)),
                TxnStep::Read(read) => self.read_within(read, now, room),
            }
            .filter(|reply| reply.bytes() <= room)
            .unwrap_or(Reply::Error(KvError::TxnReplyTooLarge));
            reply_bytes = reply_bytes.saturating_add(reply.bytes());
            replies.push(reply);
        }
        Reply::Array(replies)
    }
}

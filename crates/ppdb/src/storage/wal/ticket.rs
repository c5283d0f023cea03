//! Durability tickets: how an appender learns that its record is on disk.
//!
//! [`DurableTicket`] is returned by every append. It can be waited on from a thread
//! ([`DurableTicket::wait`]) or awaited from any async runtime (it implements [`Future`]; no
//! runtime is required). The writer thread holds the matching [`Completer`]; if the completer is
//! dropped without completing (a bug or a panic), the ticket fails instead of hanging forever.
//! A WAL without a writer thread ([`super::WalWriter::Caller`]) gives its tickets a [`Drive`], so
//! that a blocking wait writes and syncs the record itself rather than waiting for nobody.

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};

use super::record::WalSeq;
use crate::storage::error::{PoisonCause, StorageError};

#[derive(Debug)]
enum Outcome {
    /// Not decided yet: the task to wake, if one awaits, and whether a thread blocks in
    /// `wait` (only then is the condition variable signalled: a signal is a syscall, and the
    /// writer completes every record of every batch).
    Pending {
        waker: Option<Waker>,
        blocked: bool,
    },
    Durable,
    Failed(PoisonCause),
}

#[derive(Debug)]
struct Completion {
    outcome: Mutex<Outcome>,
    done: Condvar,
}

impl Completion {
    fn lock(&self) -> MutexGuard<'_, Outcome> {
        // The outcome is replaced in one assignment, so it is consistent even after a panic.
        self.outcome.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn result(outcome: &Outcome, seq: WalSeq) -> Option<Result<WalSeq, StorageError>> {
        match outcome {
            Outcome::Pending { .. } => None,
            Outcome::Durable => Some(Ok(seq)),
            Outcome::Failed(cause) => Some(Err(StorageError::Poisoned { cause: cause.clone() })),
        }
    }
}

/// Makes queued records durable on the calling thread, for a WAL that has no writer thread.
pub(crate) trait Drive: Send + Sync + fmt::Debug {
    /// Writes and syncs every record queued so far; failures reach the tickets.
    fn drive(&self);
}

/// Creates a connected ticket and completer for the record `seq`.
pub(crate) fn ticket(seq: WalSeq) -> (DurableTicket, Completer) {
    let completion = Arc::new(Completion {
        outcome: Mutex::new(Outcome::Pending { waker: None, blocked: false }),
        done: Condvar::new(),
    });
    (DurableTicket { seq, completion: Arc::clone(&completion), driver: None }, Completer { completion })
}

/// A claim on the durability of one appended record.
///
/// Tickets complete in sequence order: when the ticket of record `n` reports durable, every
/// record before `n` is durable too, so waiting on the last of several appends is enough.
#[derive(Debug)]
#[must_use = "a record is durable only once its ticket says so"]
pub struct DurableTicket {
    seq: WalSeq,
    completion: Arc<Completion>,
    /// Set by a WAL without a writer thread: what a blocking wait runs to make progress.
    driver: Option<Weak<dyn Drive>>,
}

impl DurableTicket {
    /// The sequence number the record was given.
    pub fn seq(&self) -> WalSeq {
        self.seq
    }

    /// This ticket's blocking [`wait`](DurableTicket::wait) makes the record durable through
    /// `driver` instead of waiting for a writer thread.
    pub(crate) fn driven_by(mut self, driver: Weak<dyn Drive>) -> DurableTicket {
        self.driver = Some(driver);
        self
    }

    /// Blocks until the record is durable (returning its sequence number) or the WAL failed.
    /// On a WAL without a writer thread, writes and syncs everything queued first.
    pub fn wait(self) -> Result<WalSeq, StorageError> {
        if self.try_result().is_none() {
            if let Some(driver) = self.driver.as_ref().and_then(Weak::upgrade) {
                driver.drive();
            }
        }
        let mut outcome = self.completion.lock();
        loop {
            if let Some(result) = Completion::result(&outcome, self.seq) {
                return result;
            }
            if let Outcome::Pending { blocked, .. } = &mut *outcome {
                *blocked = true;
            }
            outcome = self.completion.done.wait(outcome).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// The result if the record's fate is already known, without blocking.
    pub fn try_result(&self) -> Option<Result<WalSeq, StorageError>> {
        Completion::result(&self.completion.lock(), self.seq)
    }
}

/// Awaiting never writes by itself: on a WAL without a writer thread, the owner's
/// [`Wal::sync_written`](super::Wal::sync_written) completes the ticket.
impl Future for DurableTicket {
    type Output = Result<WalSeq, StorageError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut outcome = self.completion.lock();
        if let Some(result) = Completion::result(&outcome, self.seq) {
            return Poll::Ready(result);
        }
        if let Outcome::Pending { waker, .. } = &mut *outcome {
            match waker {
                Some(existing) if existing.will_wake(cx.waker()) => {}
                _ => *waker = Some(cx.waker().clone()),
            }
        }
        Poll::Pending
    }
}

/// The writer's side of a ticket.
#[derive(Debug)]
pub(crate) struct Completer {
    completion: Arc<Completion>,
}

impl Completer {
    /// Reports the record durable.
    pub fn durable(self) {
        self.finish(|| Outcome::Durable);
    }

    /// Reports that the record will never be durable.
    pub fn fail(self, cause: PoisonCause) {
        self.finish(|| Outcome::Failed(cause));
    }

    /// Sets the outcome unless one is already set (the first outcome wins), then wakes the
    /// waiter.
    fn finish(&self, outcome: impl FnOnce() -> Outcome) {
        let (waker, blocked) = {
            let mut current = self.completion.lock();
            let Outcome::Pending { waker, blocked } = &mut *current else { return };
            let woken = (waker.take(), *blocked);
            *current = outcome();
            woken
        };
        if blocked {
            self.completion.done.notify_all();
        }
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl Drop for Completer {
    fn drop(&mut self) {
        // No-op if already finished; otherwise the writer lost the record without saying so.
        self.finish(|| {
            Outcome::Failed(PoisonCause {
                operation: "WAL writer",
                path: PathBuf::new(),
                kind: std::io::ErrorKind::Other,
                message: "the writer stopped before the record was made durable".into(),
            })
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct CountingWaker(AtomicUsize);

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn wait_returns_after_durable_from_another_thread() {
        let (ticket, completer) = ticket(WalSeq(5));
        let writer = std::thread::spawn(move || completer.durable());
        assert_eq!(ticket.wait().unwrap(), WalSeq(5));
        writer.join().unwrap();
    }

    #[test]
    fn future_registers_waker_and_is_woken() {
        let (mut ticket, completer) = ticket(WalSeq(1));
        let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&counter));
        let mut cx = Context::from_waker(&waker);
        assert!(Pin::new(&mut ticket).poll(&mut cx).is_pending());
        completer.durable();
        assert_eq!(counter.0.load(Ordering::SeqCst), 1);
        assert!(matches!(Pin::new(&mut ticket).poll(&mut cx), Poll::Ready(Ok(WalSeq(1)))));
    }

    #[test]
    fn dropped_completer_fails_the_ticket_and_first_outcome_wins() {
        let (dropped, completer) = ticket(WalSeq(2));
        drop(completer);
        assert!(matches!(dropped.try_result(), Some(Err(StorageError::Poisoned { .. }))));

        let (kept, completer) = ticket(WalSeq(3));
        assert!(kept.try_result().is_none());
        completer.durable(); // the Drop that follows must not overwrite the outcome
        assert_eq!(kept.wait().unwrap(), WalSeq(3));
    }
}

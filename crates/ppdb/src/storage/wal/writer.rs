//! Group commit: many appenders, one writer thread, one fdatasync per batch.
//!
//! Appenders put records in a bounded queue, get a sequence number and a [`DurableTicket`] at
//! once, and wait on the ticket. The writer thread takes *everything* that queued up while its
//! previous fdatasync ran, writes it with one write, issues one fdatasync, and then completes all
//! of those tickets. Under load a batch holds as many records as there are waiting appenders, so
//! the cost of one fsync is shared by all of them.
//!
//! Without a writer thread ([`WalWriter::Caller`], for deterministic simulation), the same steps
//! run when the owner calls them: [`GroupCommitter::write_queued`] takes and writes a batch,
//! [`GroupCommitter::sync_written`] fdatasyncs it and completes its tickets. A blocking
//! [`DurableTicket::wait`] does both, since nobody else would.
//!
//! A failed write or fdatasync *poisons* the WAL: the kernel may have dropped the written pages
//! (and cleared the error), so nothing in this process can know what is on disk any more. Every
//! queued and every later append fails with [`StorageError::Poisoned`]; the node must restart and
//! recover from what is really on disk.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;

use super::appender::SegmentAppender;
use super::record::{self, GroupId, Record, RecordKind, WalSeq};
use super::retention::Retention;
use super::ticket::{self, Completer, Drive, DurableTicket};
use super::{WalCounters, WalWriter};
use crate::storage::error::{PoisonCause, StorageError};

/// One queued record.
#[derive(Debug)]
struct Pending {
    seq: WalSeq,
    group: GroupId,
    kind: RecordKind,
    payload: Vec<u8>,
    completer: Completer,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Open,
    /// `close` was called: the writer drains the queue, then exits.
    Closing,
    Poisoned(PoisonCause),
}

#[derive(Debug)]
struct Queue {
    pending: Vec<Pending>,
    /// Encoded bytes of `pending`, bounded by `queue_bytes_max`.
    pending_bytes: usize,
    next_seq: WalSeq,
    state: State,
    /// The writer is blocked waiting for records and must be notified.
    writer_idle: bool,
    /// Open [`WriteHold`]s: while any is open the writer does not take a batch (unless the
    /// queue is half full), so records queued together are synced together.
    holds: usize,
    /// Which records each group still needs. Kept under the queue lock so that a group's first
    /// record is observed in the same step that gives it its sequence number.
    retention: Retention,
}

#[derive(Debug)]
struct Shared {
    queue: Mutex<Queue>,
    /// Signalled when records arrive or the WAL closes.
    work: Condvar,
    /// Signalled when the writer takes a batch, freeing queue space.
    space: Condvar,
    queue_bytes_max: usize,
    counters: Arc<WalCounters>,
    dir: PathBuf,
    /// The appender, when there is no writer thread ([`WalWriter::Caller`]).
    caller: Option<Mutex<CallerWriter>>,
}

/// The writer's state when the owner drives it: the appender, and the batch it wrote but has not
/// synced yet.
#[derive(Debug)]
struct CallerWriter {
    appender: SegmentAppender,
    written: Vec<Pending>,
}

impl Shared {
    /// Whether a [`WriteHold`] keeps the writer waiting: one is open and any record could
    /// still be queued without blocking (a holder must never wait for space the held writer
    /// would free).
    fn held(&self, queue: &Queue) -> bool {
        queue.holds > 0
            && queue.pending_bytes.saturating_add(record::RECORD_BYTES_MAX) <= self.queue_bytes_max
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Every queue mutation keeps it consistent between statements that could panic (none of
        // them do), so a poisoned mutex still guards a valid queue.
        self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Poisons the WAL: records `cause`, and fails `batch` and everything still queued.
    fn poison(&self, cause: PoisonCause, batch: Vec<Pending>) {
        tracing::error!(%cause, "WAL poisoned: no further appends will be accepted");
        let queued = {
            let mut queue = self.lock();
            if !matches!(queue.state, State::Poisoned(_)) {
                queue.state = State::Poisoned(cause.clone());
            }
            queue.pending_bytes = 0;
            std::mem::take(&mut queue.pending)
        };
        self.space.notify_all();
        for pending in batch.into_iter().chain(queued) {
            pending.completer.fail(cause.clone());
        }
    }

    /// Reports a synced batch durable, in sequence order, leaving `batch` empty.
    fn complete(&self, batch: &mut Vec<Pending>) {
        self.counters.records_durable.fetch_add(batch.len() as u64, Ordering::Relaxed);
        self.counters.batches.fetch_add(1, Ordering::Relaxed);
        if let Some(last) = batch.last() {
            self.counters.durable_seq.store(last.seq.0, Ordering::Release);
        }
        for pending in batch.drain(..) {
            pending.completer.durable();
        }
    }

    /// Takes everything queued, without waiting.
    fn take_queued(&self) -> Vec<Pending> {
        let mut queue = self.lock();
        queue.pending_bytes = 0;
        let batch = std::mem::take(&mut queue.pending);
        drop(queue);
        self.space.notify_all();
        batch
    }

    /// The error for a call on a poisoned WAL, if it is poisoned.
    fn poisoned_error(&self) -> Result<(), StorageError> {
        match &self.lock().state {
            State::Poisoned(cause) => Err(StorageError::Poisoned { cause: cause.clone() }),
            _ => Ok(()),
        }
    }

    /// Caller-driven: takes the queued records and writes them, unsynced.
    fn write_queued(&self) -> Result<usize, StorageError> {
        let Some(caller) = &self.caller else { return Ok(0) };
        let mut caller = caller.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.poisoned_error()?;
        let batch = self.take_queued();
        let count = batch.len();
        let result = encode_batch(&mut caller.appender, &batch).and_then(|()| caller.appender.write());
        caller.written.extend(batch);
        if let Err(cause) = result {
            self.poison(cause.clone(), std::mem::take(&mut caller.written));
            return Err(StorageError::Poisoned { cause });
        }
        Ok(count)
    }

    /// Caller-driven: syncs what was written and completes its tickets.
    fn sync_written(&self) -> Result<usize, StorageError> {
        let Some(caller) = &self.caller else { return Ok(0) };
        let mut caller = caller.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.poisoned_error()?;
        let mut batch = std::mem::take(&mut caller.written);
        let count = batch.len();
        if count == 0 {
            return Ok(0);
        }
        if let Err(cause) = caller.appender.sync() {
            self.poison(cause.clone(), batch);
            return Err(StorageError::Poisoned { cause });
        }
        self.complete(&mut batch);
        Ok(count)
    }
}

impl Drive for Shared {
    fn drive(&self) {
        // A failure poisons the WAL and so fails every ticket: the waiter learns it there.
        let _ = self.write_queued().and_then(|_| self.sync_written());
    }
}

/// The group-commit queue and its writer thread.
#[derive(Debug)]
pub(crate) struct GroupCommitter {
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl GroupCommitter {
    /// Starts the writer thread, appending through `appender` from `next_seq` on; with
    /// [`WalWriter::Caller`], keeps the appender for the owner to drive instead.
    pub fn start(
        appender: SegmentAppender,
        next_seq: WalSeq,
        queue_bytes_max: usize,
        mode: WalWriter,
        retention: Retention,
        counters: Arc<WalCounters>,
        dir: PathBuf,
    ) -> Result<Self, StorageError> {
        let (caller, thread_appender) = match mode {
            WalWriter::Thread => (None, Some(appender)),
            WalWriter::Caller => (Some(Mutex::new(CallerWriter { appender, written: Vec::new() })), None),
        };
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                pending: Vec::new(),
                pending_bytes: 0,
                next_seq,
                state: State::Open,
                writer_idle: false,
                holds: 0,
                retention,
            }),
            work: Condvar::new(),
            space: Condvar::new(),
            queue_bytes_max,
            counters,
            dir: dir.clone(),
            caller,
        });
        let Some(appender) = thread_appender else {
            return Ok(GroupCommitter { shared, writer: Mutex::new(None) });
        };
        let thread_shared = Arc::clone(&shared);
        let writer = std::thread::Builder::new()
            .name("ppdb-wal-writer".into())
            .spawn(move || run_writer(&thread_shared, appender))
            .map_err(|e| StorageError::io("start WAL writer thread", dir, e))?;
        Ok(GroupCommitter { shared, writer: Mutex::new(Some(writer)) })
    }

    /// Queues a record and returns its ticket. Blocks while the queue is full (at most about one
    /// fdatasync; never without a writer thread, which could not drain it). Fails at once if the
    /// WAL is poisoned or closed, or the payload is too large.
    pub fn append(
        &self,
        group: GroupId,
        kind: RecordKind,
        payload: Vec<u8>,
    ) -> Result<DurableTicket, StorageError> {
        record::check_payload_len(payload.len())?;
        let cost = record::encoded_len(payload.len());
        let mut queue = self.shared.lock();
        loop {
            match &queue.state {
                State::Poisoned(cause) => return Err(StorageError::Poisoned { cause: cause.clone() }),
                State::Closing => return Err(StorageError::Closed),
                State::Open => {}
            }
            // An empty queue always takes the record, so a record of any legal size fits.
            let fits = queue.pending.is_empty() || queue.pending_bytes + cost <= self.shared.queue_bytes_max;
            if fits || self.shared.caller.is_some() {
                break;
            }
            if std::mem::replace(&mut queue.writer_idle, false) {
                self.shared.work.notify_one();
            }
            queue = self.shared.space.wait(queue).unwrap_or_else(|p| p.into_inner());
        }
        let seq = queue.next_seq;
        queue.next_seq = seq.next();
        queue.retention.observe(group, seq);
        let (mut ticket, completer) = ticket::ticket(seq);
        if self.shared.caller.is_some() {
            let driver: Weak<dyn Drive> = Arc::<Shared>::downgrade(&self.shared);
            ticket = ticket.driven_by(driver);
        }
        queue.pending.push(Pending { seq, group, kind, payload, completer });
        queue.pending_bytes += cost;
        let wake_writer = !self.shared.held(&queue) && std::mem::replace(&mut queue.writer_idle, false);
        drop(queue);
        if wake_writer {
            self.shared.work.notify_one();
        }
        Ok(ticket)
    }

    /// Keeps the writer from taking a batch until the hold is dropped, so that everything
    /// appended meanwhile (one round of every group's records) goes into one write and one
    /// fdatasync instead of the first record waking the writer alone. Holds nest.
    pub fn hold(&self) -> WriteHold<'_> {
        self.shared.lock().holds += 1;
        WriteHold { shared: &self.shared }
    }

    /// Caller-driven: takes the queued records and writes them, unsynced (0 with a writer thread).
    pub fn write_queued(&self) -> Result<usize, StorageError> {
        self.shared.write_queued()
    }

    /// Caller-driven: syncs what was written and completes its tickets (0 with a writer thread).
    pub fn sync_written(&self) -> Result<usize, StorageError> {
        self.shared.sync_written()
    }

    /// Runs `f` on the retention marks, under the queue lock.
    pub fn with_retention<T>(&self, f: impl FnOnce(&mut Retention) -> T) -> T {
        f(&mut self.shared.lock().retention)
    }

    /// Why the WAL is poisoned, if it is.
    pub fn poisoned(&self) -> Option<PoisonCause> {
        match &self.shared.lock().state {
            State::Poisoned(cause) => Some(cause.clone()),
            _ => None,
        }
    }

    /// Stops accepting appends, waits until every queued record is durable (or failed), and
    /// stops the writer thread (or, without one, writes and syncs the queue itself). Idempotent.
    pub fn close(&self) -> Result<(), StorageError> {
        {
            let mut queue = self.shared.lock();
            if queue.state == State::Open {
                queue.state = State::Closing;
            }
        }
        self.shared.work.notify_one();
        self.shared.space.notify_all();
        if self.shared.caller.is_some() {
            self.shared.drive();
        }
        let writer = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(writer) = writer {
            if writer.join().is_err() {
                tracing::error!(dir = %self.shared.dir.display(), "the WAL writer thread panicked");
            }
        }
        match self.poisoned() {
            Some(cause) => Err(StorageError::Poisoned { cause }),
            None => Ok(()),
        }
    }
}

impl Drop for GroupCommitter {
    fn drop(&mut self) {
        if let Err(error) = self.close() {
            tracing::warn!(%error, "WAL closed with an error");
        }
    }
}

/// Delays the WAL writer while open; see [`super::Wal::hold_writes`].
#[derive(Debug)]
#[must_use = "the hold ends when dropped"]
pub struct WriteHold<'a> {
    shared: &'a Shared,
}

impl Drop for WriteHold<'_> {
    fn drop(&mut self) {
        let mut queue = self.shared.lock();
        queue.holds = queue.holds.saturating_sub(1);
        let wake =
            queue.holds == 0 && !queue.pending.is_empty() && std::mem::replace(&mut queue.writer_idle, false);
        drop(queue);
        if wake {
            self.shared.work.notify_one();
        }
    }
}

/// The writer thread: take a batch, write it, sync once, acknowledge, repeat.
fn run_writer(shared: &Shared, mut appender: SegmentAppender) {
    // If this thread panics, fail everything instead of leaving appenders waiting forever.
    let _guard = PanicGuard(shared);
    let mut batch = Vec::new();
    while take_batch(shared, &mut batch) {
        if let Err(cause) = encode_batch(&mut appender, &batch).and_then(|()| appender.sync()) {
            shared.poison(cause, std::mem::take(&mut batch));
            return;
        }
        shared.complete(&mut batch);
    }
}

/// Encodes a batch into the appender, in sequence order.
fn encode_batch(appender: &mut SegmentAppender, batch: &[Pending]) -> Result<(), PoisonCause> {
    batch.iter().try_for_each(|p| {
        appender.append(&Record { seq: p.seq, group: p.group, kind: p.kind, payload: &p.payload })
    })
}

/// Waits for records and moves all of them into `batch`. Returns false when the WAL is closing
/// (or poisoned) and nothing is left to write.
fn take_batch(shared: &Shared, batch: &mut Vec<Pending>) -> bool {
    let mut queue = shared.lock();
    loop {
        if matches!(queue.state, State::Poisoned(_)) {
            return false;
        }
        if !queue.pending.is_empty() && (!shared.held(&queue) || queue.state == State::Closing) {
            break;
        }
        if queue.pending.is_empty() && queue.state == State::Closing {
            return false;
        }
        if !queue.pending.is_empty() {
            shared.counters.writes_held.fetch_add(1, Ordering::Relaxed);
        }
        queue.writer_idle = true;
        queue = shared.work.wait(queue).unwrap_or_else(|p| p.into_inner());
    }
    std::mem::swap(&mut queue.pending, batch);
    queue.pending_bytes = 0;
    queue.writer_idle = false;
    drop(queue);
    shared.space.notify_all();
    true
}

struct PanicGuard<'a>(&'a Shared);

impl Drop for PanicGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let cause = PoisonCause {
                operation: "WAL writer thread",
                path: self.0.dir.clone(),
                kind: std::io::ErrorKind::Other,
                message: "the writer thread panicked".into(),
            };
            self.0.poison(cause, Vec::new());
        }
    }
}

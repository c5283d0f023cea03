//! What a connection does with requests between MULTI and EXEC, as Redis 7 does.
//!
//! Inside MULTI a request is checked as Redis's `processCommand` checks it before queueing: an
//! unknown command or subcommand, or a wrong number of arguments, is answered with its error
//! and marks the transaction so that EXEC answers `EXECABORT`. Anything else is answered
//! `QUEUED`, including a command whose options are wrong (`SET k v NX XX`): as in Redis, that
//! error is the command's element of EXEC's reply. EXEC, DISCARD, QUIT and RESET run at once
//! (EXEC with arguments drops the transaction with `EXECABORT`); a nested MULTI and WATCH are
//! refused without aborting the transaction. Texts checked against redis-server 7.0.15.
//!
//! The queue is bounded ([`QUEUED_COMMANDS_MAX`], [`QUEUED_BYTES_MAX`]); a request beyond the
//! bounds is refused and aborts the transaction, since EXEC could no longer run what the
//! client asked for. Running the queue is the server's job (`server::transaction`).

use std::fmt;

use bytes::Bytes;

use super::table::lookup;
use super::{Command, CommandError};
use crate::kv::TXN_STEPS_MAX;

/// Most commands one transaction may queue: a transaction is one log entry of at most
/// [`TXN_STEPS_MAX`] steps.
pub const QUEUED_COMMANDS_MAX: usize = TXN_STEPS_MAX as usize;
/// Most argument bytes one transaction may queue: as many as the largest write
/// ([`crate::limits::REQUEST_BYTES_MAX`]), since EXEC proposes the queue as one log entry.
pub const QUEUED_BYTES_MAX: usize = crate::limits::REQUEST_BYTES_MAX;

/// A queued request: a command to run at EXEC, or the error EXEC answers in its place.
#[derive(Debug, Clone, PartialEq)]
pub enum Queued {
    /// A valid command.
    Command(Command),
    /// A command whose options are invalid: EXEC's element for it is this error.
    Refused(CommandError),
}

/// What to do with a request received inside MULTI.
#[derive(Debug, Clone, PartialEq)]
pub enum Admission {
    /// Queued: answer `+QUEUED`.
    Queued,
    /// Not queued: answer this error.
    Refused(TransactionError),
    /// Not queued: run it now (EXEC, DISCARD, QUIT, RESET).
    Immediate(Command),
    /// EXEC with arguments: answer this error and drop the transaction, as Redis does.
    Discarded(TransactionError),
}

/// The commands a connection has queued since MULTI.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Transaction {
    queued: Vec<Queued>,
    queued_bytes: usize,
    aborted: bool,
    /// Whether a queued command may grow memory (is flagged `denyoom`).
    grows_memory: bool,
}

/// The reply to a request refused when parsed outside MULTI: its error, but for EXEC with
/// arguments, which Redis 7 answers `EXECABORT` there too (its `rejectCommand`).
pub fn refused_outside_multi(error: CommandError) -> String {
    match error {
        CommandError::WrongArity { command: "exec" } => TransactionError::ExecRejected(error).to_string(),
        error => error.to_string(),
    }
}

/// Whether `error` is a wrong number of arguments that the command finds itself once the
/// table's arity check has passed (HSET with a field without a value, MSET, LPOP k 1 2, PING a
/// b): Redis finds it when the command runs, so inside MULTI it is queued and is the command's
/// element of EXEC's reply. A subcommand's arity (`config|get`) is the table's, checked first.
fn arity_found_when_run(args: &[Bytes], error: &CommandError) -> bool {
    let CommandError::WrongArity { command } = error else { return false };
    let table_passed =
        args.first().and_then(|name| lookup(name)).is_some_and(|spec| spec.arity_ok(args.len()));
    table_passed && !command.contains('|')
}

impl Transaction {
    /// Decides what to do with the request `args` (name first) received inside MULTI.
    pub fn admit(&mut self, args: &[Bytes]) -> Admission {
        match Command::parse(args) {
            Err(error @ CommandError::WrongArity { command: "exec" }) => {
                Admission::Discarded(TransactionError::ExecRejected(error))
            }
            Err(error) if error.refused_before_queueing() && !arity_found_when_run(args, &error) => {
                self.aborted = true;
                Admission::Refused(TransactionError::Command(error))
            }
            Ok(Command::Multi) => Admission::Refused(TransactionError::NestedMulti),
            Ok(Command::Watch { .. }) => Admission::Refused(TransactionError::WatchInsideMulti),
            Ok(command @ (Command::Exec | Command::Discard | Command::Quit | Command::Reset)) => {
                Admission::Immediate(command)
            }
            // A blocking pop cannot block inside a transaction: it runs once, as in Redis.
            Ok(Command::Block(pop)) => self.push(args, Ok(pop.into_non_blocking())),
            parsed => self.push(args, parsed),
        }
    }

    /// Marks the transaction so that EXEC answers `EXECABORT`: a request inside it was
    /// refused before queueing by the server (over `maxmemory`).
    pub fn abort(&mut self) {
        self.aborted = true;
    }

    /// How many commands are queued (CLIENT LIST's `multi`).
    pub fn len(&self) -> usize {
        self.queued.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queued.is_empty()
    }

    /// Whether a queued command may grow memory, so that EXEC is refused over `maxmemory`.
    pub fn grows_memory(&self) -> bool {
        self.grows_memory
    }

    /// The queue for EXEC, or `EXECABORT` if a request was refused before queueing.
    pub fn into_queued(self) -> Result<Vec<Queued>, TransactionError> {
        if self.aborted {
            return Err(TransactionError::ExecAbort);
        }
        Ok(self.queued)
    }

    fn push(&mut self, args: &[Bytes], parsed: Result<Command, CommandError>) -> Admission {
        let bytes = args.iter().map(Bytes::len).fold(0usize, usize::saturating_add);
        let total = self.queued_bytes.saturating_add(bytes);
        if self.queued.len() >= QUEUED_COMMANDS_MAX || total > QUEUED_BYTES_MAX {
            self.aborted = true;
            return Admission::Refused(TransactionError::TooLarge);
        }
        self.queued_bytes = total;
        self.grows_memory |= args.first().and_then(|name| lookup(name)).is_some_and(|spec| spec.denies_oom());
        self.queued.push(match parsed {
            Ok(command) => Queued::Command(command),
            Err(error) => Queued::Refused(error),
        });
        Admission::Queued
    }
}

/// A transaction command that cannot be run as sent; the reply is the Display text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransactionError {
    /// MULTI inside MULTI.
    NestedMulti,
    /// EXEC outside MULTI.
    ExecWithoutMulti,
    /// DISCARD outside MULTI.
    DiscardWithoutMulti,
    /// EXEC of a transaction in which a request was refused before queueing.
    ExecAbort,
    /// EXEC itself refused (wrong number of arguments): the transaction is dropped.
    ExecRejected(CommandError),
    /// WATCH inside MULTI.
    WatchInsideMulti,
    /// More than [`QUEUED_COMMANDS_MAX`] commands or [`QUEUED_BYTES_MAX`] bytes queued.
    TooLarge,
    /// A request refused before queueing (unknown command, wrong number of arguments).
    Command(CommandError),
    /// The queued commands touch keys of several shards.
    CrossShard {
        /// The shards touched, ascending.
        shards: Vec<u64>,
    },
}

impl fmt::Display for TransactionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NestedMulti => f.write_str("ERR MULTI calls can not be nested"),
            Self::ExecWithoutMulti => f.write_str("ERR EXEC without MULTI"),
            Self::DiscardWithoutMulti => f.write_str("ERR DISCARD without MULTI"),
            Self::ExecAbort => f.write_str("EXECABORT Transaction discarded because of previous errors."),
            Self::WatchInsideMulti => f.write_str("ERR WATCH inside MULTI is not allowed"),
            Self::TooLarge => write!(
                f,
                "ERR transaction too large: at most {QUEUED_COMMANDS_MAX} commands and \
                 {QUEUED_BYTES_MAX} bytes of arguments may be queued"
            ),
            Self::ExecRejected(error) => {
                let text = error.to_string();
                let reason = text.strip_prefix("ERR ").unwrap_or(&text);
                write!(f, "EXECABORT Transaction discarded because of: {reason}")
            }
            Self::Command(error) => error.fmt(f),
            Self::CrossShard { shards } => {
                let list: Vec<String> = shards.iter().map(u64::to_string).collect();
                write!(
                    f,
                    "CROSSSLOT Keys in request don't hash to the same slot (the transaction touches \
                     shards {}; PPDB runs MULTI/EXEC within one shard until cross-shard transactions land)",
                    list.join(", ")
                )
            }
        }
    }
}

impl std::error::Error for TransactionError {}

//! Why an argument vector is not a valid command, worded exactly as Redis 7 replies.

use std::fmt;

pub use super::zset_error::SortedSetError;

/// How many bytes of a client-supplied name or argument an error message quotes (Redis: 128).
const QUOTED_BYTES_MAX: usize = 128;

/// A command that cannot be executed as sent; the reply is the Display text (`ERR ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    /// No such command.
    UnknownCommand {
        /// The command name as sent.
        name: Vec<u8>,
        /// The arguments as sent.
        args: Vec<Vec<u8>>,
    },
    /// No such subcommand (CLIENT, COMMAND).
    UnknownSubcommand {
        /// The container command, upper-cased as Redis prints it.
        command: &'static str,
        /// The subcommand as sent.
        subcommand: Vec<u8>,
    },
    /// Wrong number of arguments for the command (its lower-case full name, e.g. `client|id`).
    WrongArity {
        /// The command's full name.
        command: &'static str,
    },
    /// An option is unknown, repeated in a conflicting way, or misplaced.
    Syntax,
    /// An argument is not a 64-bit integer.
    NotInteger,
    /// An argument is not a valid float.
    NotFloat,
    /// An expire time is zero, negative or overflows (the command's name is quoted).
    InvalidExpireTime {
        /// The command's full name.
        command: &'static str,
    },
    /// EXPIRE family: an option other than NX, XX, GT, LT.
    UnsupportedExpireOption {
        /// The option as sent.
        option: Vec<u8>,
    },
    /// EXPIRE family: NX together with XX, GT or LT.
    ExpireNxConflict,
    /// EXPIRE family: GT together with LT.
    ExpireGtLtConflict,
    /// DECRBY with the smallest 64-bit integer, which cannot be negated.
    DecrementOverflow,
    /// SETRANGE with a negative offset.
    OffsetOutOfRange,
    /// SETRANGE that would make the string larger than the value limit.
    StringTooLong,
    /// SCAN with a cursor that is not an unsigned 64-bit integer.
    InvalidCursor,
    /// SELECT (or COPY ... DB) of a database other than 0.
    DbIndexOutOfRange,
    /// COPY of a key onto itself.
    SameObject,
    /// HELLO with a protocol version that is not an integer.
    HelloVersionNotInteger,
    /// HELLO with a protocol version other than 2 or 3.
    NoProto,
    /// HELLO with an unknown option.
    HelloSyntax {
        /// The option as sent.
        option: Vec<u8>,
    },
    /// AUTH while no password is configured (the server decides when to send it).
    AuthNotConfigured,
    /// CLIENT SETNAME / HELLO SETNAME with spaces or special characters.
    InvalidClientName,
    /// CLIENT SETINFO with an attribute other than LIB-NAME or LIB-VER.
    UnrecognizedClientInfo {
        /// The attribute as sent.
        option: Vec<u8>,
    },
    /// A command that may grow memory while used memory is over `maxmemory`.
    OutOfMemory,
    /// CONFIG SET of a setting PPDB cannot change.
    ConfigSetUnknown {
        /// The setting's name as sent.
        name: Vec<u8>,
    },
    /// CONFIG SET of a setting to a value it cannot take.
    ConfigSetFailed {
        /// The setting's name.
        name: &'static str,
        /// What the value must be.
        reason: String,
    },
    /// A sorted-set command's own argument errors.
    SortedSet(SortedSetError),
}

/// A client-supplied byte string as Redis's `%.128s` prints it: cut at a NUL byte and 128 bytes.
fn quoted(bytes: &[u8], max: usize) -> String {
    let bytes = bytes.iter().position(|&b| b == 0).map_or(bytes, |nul| &bytes[..nul]);
    String::from_utf8_lossy(&bytes[..bytes.len().min(max)]).into_owned()
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownCommand { name, args } => {
                // Redis appends `'arg' ` while the list is shorter than 128 bytes, each quoted
                // argument cut so the list does not pass 128 bytes.
                let mut list = String::new();
                for arg in args {
                    if list.len() >= QUOTED_BYTES_MAX {
                        break;
                    }
                    let room = QUOTED_BYTES_MAX - list.len();
                    list.push('\'');
                    list.push_str(&quoted(arg, room));
                    list.push_str("' ");
                }
                write!(
                    f,
                    "ERR unknown command '{}', with args beginning with: {}",
                    quoted(name, QUOTED_BYTES_MAX),
                    list
                )
            }
            Self::UnknownSubcommand { command, subcommand } => write!(
                f,
                "ERR unknown subcommand '{}'. Try {command} HELP.",
                quoted(subcommand, QUOTED_BYTES_MAX)
            ),
            Self::WrongArity { command } => {
                write!(f, "ERR wrong number of arguments for '{command}' command")
            }
            Self::Syntax => f.write_str("ERR syntax error"),
            Self::NotInteger => f.write_str("ERR value is not an integer or out of range"),
            Self::NotFloat => f.write_str("ERR value is not a valid float"),
            Self::InvalidExpireTime { command } => {
                write!(f, "ERR invalid expire time in '{command}' command")
            }
            Self::UnsupportedExpireOption { option } => {
                write!(f, "ERR Unsupported option {}", quoted(option, usize::MAX))
            }
            Self::ExpireNxConflict => {
                f.write_str("ERR NX and XX, GT or LT options at the same time are not compatible")
            }
            Self::ExpireGtLtConflict => {
                f.write_str("ERR GT and LT options at the same time are not compatible")
            }
            Self::DecrementOverflow => f.write_str("ERR decrement would overflow"),
            Self::OffsetOutOfRange => f.write_str("ERR offset is out of range"),
            Self::StringTooLong => {
                f.write_str("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
            }
            Self::InvalidCursor => f.write_str("ERR invalid cursor"),
            Self::DbIndexOutOfRange => f.write_str("ERR DB index is out of range"),
            Self::SameObject => f.write_str("ERR source and destination objects are the same"),
            Self::HelloVersionNotInteger => {
                f.write_str("ERR Protocol version is not an integer or out of range")
            }
            Self::NoProto => f.write_str("NOPROTO unsupported protocol version"),
            Self::HelloSyntax { option } => {
                write!(f, "ERR Syntax error in HELLO option '{}'", quoted(option, usize::MAX))
            }
            Self::AuthNotConfigured => f.write_str(
                "ERR AUTH <password> called without any password configured for the default user. \
                 Are you sure your configuration is correct?",
            ),
            Self::InvalidClientName => {
                f.write_str("ERR Client names cannot contain spaces, newlines or special characters.")
            }
            Self::UnrecognizedClientInfo { option } => {
                write!(f, "ERR Unrecognized option '{}'", quoted(option, usize::MAX))
            }
            Self::OutOfMemory => f.write_str("OOM command not allowed when used memory > 'maxmemory'."),
            Self::ConfigSetUnknown { name } => write!(
                f,
                "ERR Unknown option or number of arguments for CONFIG SET - '{}'",
                quoted(name, QUOTED_BYTES_MAX)
            ),
            Self::ConfigSetFailed { name, reason } => {
                write!(f, "ERR CONFIG SET failed (possibly related to argument '{name}') - {reason}")
            }
            Self::SortedSet(error) => error.fmt(f),
        }
    }
}

impl CommandError {
    /// Whether Redis refuses the command before it runs or is queued (`processCommand`): an
    /// unknown command or subcommand, or a wrong number of arguments. Inside MULTI such an
    /// error aborts the transaction; any other error is the command's reply at EXEC.
    pub fn refused_before_queueing(&self) -> bool {
        matches!(self, Self::UnknownCommand { .. } | Self::UnknownSubcommand { .. } | Self::WrongArity { .. })
    }
}

impl std::error::Error for CommandError {}

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
    /// A command other than (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PING, QUIT and RESET on a RESP2
    /// connection that is subscribed.
    SubscribedContext {
        /// The command's lower-case full name (`get`, `client|list`).
        command: String,
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
    /// ACL GENPASS with a number of bits out of range.
    GenPassBits,
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
    /// LPOS with RANK 0.
    RankZero,
    /// LPOS with a COUNT or MAXLEN that is negative or not an integer.
    Negative {
        /// The option, as Redis names it in the message.
        option: &'static str,
    },
    /// CLIENT KILL ID with an id that is not a positive integer.
    ClientIdNotPositive,
    /// CLIENT LIST ID with an id that is not an integer.
    InvalidClientId,
    /// CLIENT KILL TYPE / CLIENT LIST TYPE with an unknown class.
    UnknownClientType {
        /// The type as sent.
        name: Vec<u8>,
    },
    /// CLIENT KILL USER naming a user that does not exist (PPDB has only `default`).
    NoSuchUser {
        /// The user as sent.
        name: Vec<u8>,
    },
    /// CLIENT KILL ip:port matched no connection.
    NoSuchClient,
    /// FUNCTION FLUSH with an option other than SYNC or ASYNC.
    FunctionFlushOption,
    /// SCRIPT FLUSH with an option other than SYNC or ASYNC (Redis's wording differs by one letter).
    ScriptFlushOption,
    /// A subcommand given too many arguments, as its own handler reports it (FUNCTION FLUSH).
    SubcommandSyntax {
        /// The subcommand as sent.
        subcommand: Vec<u8>,
        /// The container command, upper-cased.
        command: &'static str,
    },
    /// FUNCTION LIST with an unknown or repeated option.
    UnknownArgument {
        /// The argument as sent.
        argument: Vec<u8>,
    },
    /// FUNCTION LIST LIBRARYNAME without a pattern.
    LibraryNameMissing,
    /// FUNCTION LOAD with an option other than REPLACE before the code.
    UnknownOption {
        /// The option as sent.
        option: Vec<u8>,
    },
    /// FUNCTION RESTORE with a policy other than FLUSH, APPEND or REPLACE.
    RestorePolicy,
    /// FCALL's numkeys is not an integer.
    BadNumKeys,
    /// FUNCTION KILL / SCRIPT KILL while no script runs (none ever does).
    NotBusy,
    /// EVAL's numkeys is negative.
    NumKeysNegative,
    /// EVAL's numkeys is larger than the arguments that follow.
    NumKeysTooMany,
    /// A script body larger than [`crate::kv::SCRIPT_BODY_BYTES_MAX`].
    ScriptTooLarge,
    /// A scripting command PPDB does not run (SCRIPT DEBUG).
    ScriptingNotSupported {
        /// The command, upper-cased (`FUNCTION LOAD`).
        command: &'static str,
    },
    /// A CLUSTER slot argument outside 0 to 16,383.
    InvalidSlot,
    /// CLUSTER GETKEYSINSLOT with a slot outside 0 to 16,383 or a negative count.
    InvalidSlotOrCount,
    /// A CLUSTER subcommand that assigns slots or changes membership, which PPDB does itself.
    ClusterManagedBySelf {
        /// The subcommand as sent.
        subcommand: Vec<u8>,
    },
    /// WAIT's timeout is not an integer.
    TimeoutNotInteger,
    /// WAIT's timeout is negative.
    TimeoutNegative,
    /// DEBUG: refused, as a Redis with `enable-debug-command no` refuses it.
    DebugNotAllowed,
    /// CLIENT SETINFO with spaces or special characters in the value (Redis 7.2's check).
    InvalidClientInfo {
        /// `lib-name` or `lib-ver`.
        attribute: &'static str,
    },
    /// SINTERCARD (and the other numkeys commands) with a numkeys below 1 or not an integer.
    NumKeysNotPositive,
    /// A numkeys larger than the arguments that follow it.
    NumKeysExceedArgs,
    /// SINTERCARD's LIMIT negative or not an integer.
    LimitNegative,
    /// SPOP's count negative or not an integer.
    CountNotPositive,
    /// An integer outside the range the command accepts (SRANDMEMBER's count).
    ValueOutOfRange {
        /// The smallest accepted.
        min: i64,
        /// The largest accepted.
        max: i64,
    },
    /// A COUNT option that must be 1 or more is not (LMPOP, ZMPOP, ...).
    CountBelowOne,
    /// A blocking command's timeout is not a float.
    TimeoutNotFloat,
    /// HINCRBYFLOAT with an infinite increment.
    NanOrInfinity,
    /// A count outside the range a command allows (HRANDFIELD ... WITHVALUES).
    OutOfRange,
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
            Self::GenPassBits => f.write_str(
                "ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096",
            ),
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
            Self::RankZero => f.write_str(
                "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... \
                 or use negative to start from the end of the list",
            ),
            Self::Negative { option } => write!(f, "ERR {option} can't be negative"),
            Self::ClientIdNotPositive => f.write_str("ERR client-id should be greater than 0"),
            Self::InvalidClientId => f.write_str("ERR Invalid client ID"),
            Self::UnknownClientType { name } => {
                write!(f, "ERR Unknown client type '{}'", quoted(name, usize::MAX))
            }
            Self::NoSuchUser { name } => write!(f, "ERR No such user '{}'", quoted(name, usize::MAX)),
            Self::NoSuchClient => f.write_str("ERR No such client"),
            Self::FunctionFlushOption => f.write_str("ERR FUNCTION FLUSH only supports SYNC|ASYNC option"),
            Self::ScriptFlushOption => f.write_str("ERR SCRIPT FLUSH only support SYNC|ASYNC option"),
            Self::SubscribedContext { command } => write!(
                f,
                "ERR Can't execute '{command}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / \
                 RESET are allowed in this context"
            ),
            Self::SubcommandSyntax { subcommand, command } => write!(
                f,
                "ERR unknown subcommand or wrong number of arguments for '{}'. Try {command} HELP.",
                quoted(subcommand, QUOTED_BYTES_MAX)
            ),
            Self::UnknownArgument { argument } => {
                write!(f, "ERR Unknown argument {}", quoted(argument, usize::MAX))
            }
            Self::LibraryNameMissing => f.write_str("ERR library name argument was not given"),
            Self::UnknownOption { option } => {
                write!(f, "ERR Unknown option given: {}", String::from_utf8_lossy(option))
            }
            Self::RestorePolicy => f.write_str(
                "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.",
            ),
            Self::BadNumKeys => f.write_str("ERR Bad number of keys provided"),
            Self::NotBusy => f.write_str("NOTBUSY No scripts in execution right now."),
            Self::NumKeysNegative => f.write_str("ERR Number of keys can't be negative"),
            Self::NumKeysTooMany => f.write_str("ERR Number of keys can't be greater than number of args"),
            Self::ScriptTooLarge => write!(
                f,
                "ERR script exceeds the maximum script size of {} bytes",
                crate::kv::SCRIPT_BODY_BYTES_MAX
            ),
            Self::ScriptingNotSupported { command } => {
                write!(f, "ERR {command} is not supported: PPDB has no script debugger")
            }
            Self::InvalidSlot => f.write_str("ERR Invalid slot"),
            Self::InvalidSlotOrCount => f.write_str("ERR Invalid slot or number of keys"),
            Self::ClusterManagedBySelf { subcommand } => write!(
                f,
                "ERR CLUSTER {} is not supported: PPDB assigns slots to shards and nodes to the cluster itself",
                String::from_utf8_lossy(&subcommand[..subcommand.len().min(QUOTED_BYTES_MAX)]).to_uppercase()
            ),
            Self::TimeoutNotInteger => f.write_str("ERR timeout is not an integer or out of range"),
            Self::TimeoutNegative => f.write_str("ERR timeout is negative"),
            Self::DebugNotAllowed => f.write_str(
                "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", \
                 you can run it from a local connection, otherwise you need to set this option in the \
                 configuration file, and then restart the server.",
            ),
            Self::InvalidClientInfo { attribute } => {
                write!(f, "ERR {attribute} cannot contain spaces, newlines or special characters.")
            }
            Self::NumKeysNotPositive => f.write_str("ERR numkeys should be greater than 0"),
            Self::NumKeysExceedArgs => f.write_str("ERR Number of keys can't be greater than number of args"),
            Self::LimitNegative => f.write_str("ERR LIMIT can't be negative"),
            Self::CountNotPositive => f.write_str("ERR value is out of range, must be positive"),
            Self::ValueOutOfRange { min, max } => {
                write!(f, "ERR value is out of range, value must between {min} and {max}")
            }
            Self::CountBelowOne => f.write_str("ERR count should be greater than 0"),
            Self::TimeoutNotFloat => f.write_str("ERR timeout is not a float or out of range"),
            Self::NanOrInfinity => f.write_str("ERR value is NaN or Infinity"),
            Self::OutOfRange => f.write_str("ERR value is out of range"),
            Self::SortedSet(error) => error.fmt(f),
        }
    }
}

impl CommandError {
    /// Whether Redis refuses the command before it runs or is queued (`processCommand`): an
    /// unknown command or subcommand, a wrong number of arguments, or a refused DEBUG. Inside
    /// MULTI such an error aborts the transaction; any other error is the command's reply at EXEC.
    pub fn refused_before_queueing(&self) -> bool {
        matches!(
            self,
            Self::UnknownCommand { .. }
                | Self::UnknownSubcommand { .. }
                | Self::WrongArity { .. }
                | Self::DebugNotAllowed
        )
    }
}

impl std::error::Error for CommandError {}

//! Connection and server commands: PING, ECHO, HELLO, QUIT, COMMAND, INFO, SELECT, AUTH, CLIENT
//! (parsed in `client`), CONFIG GET, SET and RESETSTAT, TIME, RESET, and the transaction
//! commands MULTI, EXEC, DISCARD, WATCH, UNWATCH.

use bytes::Bytes;

use super::args::{arg, integer, is};
use super::client::valid_client_name;
use super::error::CommandError;
use super::Command;
use crate::server::resp::frame::ProtocolVersion;

type Parsed = Result<Command, CommandError>;

/// HELLO's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// The protocol to switch to; `None` keeps the current one.
    pub version: Option<ProtocolVersion>,
    /// AUTH username password.
    pub auth: Option<(Bytes, Bytes)>,
    /// SETNAME name (validated).
    pub client_name: Option<Bytes>,
}

/// COMMAND and its subcommands, enough for redis-cli and client libraries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandQuery {
    /// COMMAND: details of every command.
    All,
    /// COMMAND COUNT.
    Count,
    /// COMMAND INFO [name ...] (all commands when empty).
    Info(Vec<Bytes>),
    /// COMMAND DOCS [name ...] (all commands when empty).
    Docs(Vec<Bytes>),
    /// COMMAND LIST (filters are not supported and rejected as a syntax error).
    List,
}

/// Parses the connection command `name` (lower case); `None` if not one.
pub(super) fn parse(name: &str, args: &[Bytes]) -> Option<Parsed> {
    Some(match name {
        "ping" => match args {
            [] => Ok(Command::Ping(None)),
            [message] => Ok(Command::Ping(Some(message.clone()))),
            _ => Err(CommandError::WrongArity { command: "ping" }),
        },
        "echo" => Ok(Command::Echo(args.first().cloned().unwrap_or_default())),
        "quit" => Ok(Command::Quit),
        "time" => Ok(Command::Time),
        "hello" => hello(args),
        "command" => command(args),
        "info" => Ok(Command::Info(args.to_vec())),
        "select" => match integer(arg(args, 0)) {
            Ok(0) => Ok(Command::Select),
            Ok(_) => Err(CommandError::DbIndexOutOfRange),
            Err(error) => Err(error),
        },
        "auth" => match args {
            [password] => Ok(Command::Auth { username: None, password: password.clone() }),
            [user, password] => {
                Ok(Command::Auth { username: Some(user.clone()), password: password.clone() })
            }
            _ => Err(CommandError::Syntax),
        },
        "client" => super::client::parse(args),
        "acl" => super::acl::parse(args),
        "config" => config(args),
        "multi" => Ok(Command::Multi),
        "exec" => Ok(Command::Exec),
        "discard" => Ok(Command::Discard),
        "watch" => Ok(Command::Watch { keys: args.iter().map(|key| key.to_vec()).collect() }),
        "unwatch" => Ok(Command::Unwatch),
        "reset" => Ok(Command::Reset),
        _ => return None,
    })
}

fn hello(args: &[Bytes]) -> Parsed {
    let mut hello = Hello { version: None, auth: None, client_name: None };
    let Some((version, options)) = args.split_first() else {
        return Ok(Command::Hello(hello));
    };
    hello.version = Some(match integer(version).map_err(|_| CommandError::HelloVersionNotInteger)? {
        2 => ProtocolVersion::Resp2,
        3 => ProtocolVersion::Resp3,
        _ => return Err(CommandError::NoProto),
    });
    let mut j = 0;
    while j < options.len() {
        let more = options.len() - 1 - j;
        let option = &options[j];
        if is(option, "auth") && more >= 2 {
            hello.auth = Some((options[j + 1].clone(), options[j + 2].clone()));
            j += 2;
        } else if is(option, "setname") && more >= 1 {
            hello.client_name = Some(valid_client_name(&options[j + 1])?);
            j += 1;
        } else {
            return Err(CommandError::HelloSyntax { option: option.to_vec() });
        }
        j += 1;
    }
    Ok(Command::Hello(hello))
}

fn command(args: &[Bytes]) -> Parsed {
    let Some((sub, rest)) = args.split_first() else {
        return Ok(Command::Command(CommandQuery::All));
    };
    let arity = |ok: bool, command: &'static str| {
        if ok {
            Ok(())
        } else {
            Err(CommandError::WrongArity { command })
        }
    };
    let query = if is(sub, "count") {
        arity(rest.is_empty(), "command|count")?;
        CommandQuery::Count
    } else if is(sub, "info") {
        CommandQuery::Info(rest.to_vec())
    } else if is(sub, "docs") {
        CommandQuery::Docs(rest.to_vec())
    } else if is(sub, "list") {
        if !rest.is_empty() {
            return Err(CommandError::Syntax);
        }
        CommandQuery::List
    } else {
        return Err(CommandError::UnknownSubcommand { command: "COMMAND", subcommand: sub.to_vec() });
    };
    Ok(Command::Command(query))
}

/// CONFIG GET pattern [pattern ...], CONFIG SET name value [name value ...] of the settings a
/// running node can change, and CONFIG RESETSTAT; the other subcommands persist or reset a
/// Redis server's settings, which PPDB takes from its own configuration instead.
fn config(args: &[Bytes]) -> Parsed {
    let sub = arg(args, 0);
    let rest = args.get(1..).unwrap_or_default();
    if is(sub, "get") {
        if rest.is_empty() {
            return Err(CommandError::WrongArity { command: "config|get" });
        }
        return Ok(Command::ConfigGet(rest.to_vec()));
    }
    if is(sub, "set") {
        if rest.is_empty() || rest.len() % 2 != 0 {
            return Err(CommandError::WrongArity { command: "config|set" });
        }
        let pairs = rest.chunks_exact(2).map(|pair| (pair[0].clone(), pair[1].clone())).collect();
        return Ok(Command::ConfigSet(pairs));
    }
    if is(sub, "resetstat") {
        if !rest.is_empty() {
            return Err(CommandError::WrongArity { command: "config|resetstat" });
        }
        return Ok(Command::ConfigResetStat);
    }
    Err(CommandError::UnknownSubcommand { command: "CONFIG", subcommand: sub.to_vec() })
}

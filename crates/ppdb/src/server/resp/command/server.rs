//! Server commands that clients and Redis's own test harness send whatever the data: FUNCTION
//! (the cluster's function libraries, see `crate::functions`), SCRIPT (the node's script
//! cache, see `server::script::cache`), DEBUG (refused, as a Redis with
//! `enable-debug-command no` refuses it), LASTSAVE and WAIT.

use bytes::Bytes;

use super::args::{integer, is};
use super::error::CommandError;
use super::Command;

/// FUNCTION subcommands PPDB answers; the others are refused while parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FunctionCommand {
    /// FUNCTION LOAD \[REPLACE\] code.
    Load {
        /// Whether a library of the same name is replaced.
        replace: bool,
        /// The library's source.
        source: Bytes,
    },
    /// FUNCTION DELETE library.
    Delete(Bytes),
    /// FUNCTION FLUSH [ASYNC|SYNC]: deletes every library.
    Flush,
    /// FUNCTION LIST \[WITHCODE\] \[LIBRARYNAME pattern\].
    List {
        /// Whether each library's source is shown.
        with_code: bool,
        /// Only libraries whose names match this glob (case-insensitive), if given.
        pattern: Option<Bytes>,
    },
    /// FUNCTION DUMP: the libraries as a payload.
    Dump,
    /// FUNCTION RESTORE payload \[FLUSH|APPEND|REPLACE\].
    Restore {
        /// FUNCTION DUMP's payload.
        payload: Bytes,
        /// What happens to the libraries loaded.
        policy: crate::functions::RestorePolicy,
    },
    /// FUNCTION STATS: no running script, the engine's counts.
    Stats,
}

/// SCRIPT subcommands PPDB answers; the others are refused while parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptCommand {
    /// SCRIPT FLUSH [ASYNC|SYNC]: empties the node's script cache.
    Flush,
    /// SCRIPT EXISTS sha1 [sha1 ...]: which digests the node's cache holds.
    Exists(Vec<Bytes>),
    /// SCRIPT LOAD script: compiles the body and caches it.
    Load(Bytes),
}

type Parsed = Result<Command, CommandError>;

/// Parses the server command `name` (lower case); `None` if not one.
pub(super) fn parse(name: &str, args: &[Bytes]) -> Option<Parsed> {
    Some(match name {
        "function" => function(args),
        "script" => script(args),
        "debug" => Err(CommandError::DebugNotAllowed),
        "lastsave" => Ok(Command::LastSave),
        "wait" => wait(args),
        _ => return None,
    })
}

/// Checks a subcommand's arity: `n` arguments after it, or at least `-n`, as Redis's table.
fn arity(rest: &[Bytes], n: i32, command: &'static str) -> Result<(), CommandError> {
    let given = rest.len() as i64;
    let ok = if n >= 0 { given == i64::from(n) } else { given >= -i64::from(n) };
    if ok {
        Ok(())
    } else {
        Err(CommandError::WrongArity { command })
    }
}

fn function(args: &[Bytes]) -> Parsed {
    let Some((sub, rest)) = args.split_first() else {
        return Err(CommandError::WrongArity { command: "function" });
    };
    let answered = if is(sub, "flush") {
        if rest.len() > 1 {
            return Err(CommandError::SubcommandSyntax { subcommand: sub.to_vec(), command: "FUNCTION" });
        }
        flush_option(rest, CommandError::FunctionFlushOption)?;
        FunctionCommand::Flush
    } else if is(sub, "list") {
        let (with_code, pattern) = function_list_options(rest)?;
        FunctionCommand::List { with_code, pattern }
    } else if is(sub, "dump") {
        arity(rest, 0, "function|dump")?;
        FunctionCommand::Dump
    } else if is(sub, "stats") {
        arity(rest, 0, "function|stats")?;
        FunctionCommand::Stats
    } else if is(sub, "delete") {
        arity(rest, 1, "function|delete")?;
        FunctionCommand::Delete(rest[0].clone())
    } else if is(sub, "kill") {
        arity(rest, 0, "function|kill")?;
        return Err(CommandError::NotBusy);
    } else if is(sub, "load") {
        arity(rest, -1, "function|load")?;
        let (source, options) =
            rest.split_last().ok_or(CommandError::WrongArity { command: "function|load" })?;
        for option in options {
            if !is(option, "replace") {
                return Err(CommandError::UnknownOption { option: option.to_vec() });
            }
        }
        if source.len() as u64 > crate::kv::SCRIPT_BODY_BYTES_MAX {
            return Err(CommandError::ScriptTooLarge);
        }
        FunctionCommand::Load { replace: !options.is_empty(), source: source.clone() }
    } else if is(sub, "restore") {
        arity(rest, -1, "function|restore")?;
        use crate::functions::RestorePolicy;
        let policy = match &rest[1..] {
            [] => RestorePolicy::Append,
            [policy] if is(policy, "append") => RestorePolicy::Append,
            [policy] if is(policy, "replace") => RestorePolicy::Replace,
            [policy] if is(policy, "flush") => RestorePolicy::Flush,
            [_] => return Err(CommandError::RestorePolicy),
            _ => {
                return Err(CommandError::SubcommandSyntax { subcommand: sub.to_vec(), command: "FUNCTION" })
            }
        };
        FunctionCommand::Restore { payload: rest[0].clone(), policy }
    } else {
        return Err(CommandError::UnknownSubcommand { command: "FUNCTION", subcommand: sub.to_vec() });
    };
    Ok(Command::Function(answered))
}

/// FLUSH's optional ASYNC or SYNC (both mean the same when there is nothing to free).
fn flush_option(rest: &[Bytes], wrong: CommandError) -> Result<(), CommandError> {
    match rest {
        [] => Ok(()),
        [mode] if is(mode, "async") || is(mode, "sync") => Ok(()),
        _ => Err(wrong),
    }
}

/// FUNCTION LIST's options, each at most once: WITHCODE, LIBRARYNAME pattern.
fn function_list_options(rest: &[Bytes]) -> Result<(bool, Option<Bytes>), CommandError> {
    let (mut with_code, mut pattern) = (false, None);
    let mut options = rest.iter();
    while let Some(option) = options.next() {
        if is(option, "withcode") && !with_code {
            with_code = true;
        } else if is(option, "libraryname") && pattern.is_none() {
            pattern = Some(options.next().ok_or(CommandError::LibraryNameMissing)?.clone());
        } else {
            return Err(CommandError::UnknownArgument { argument: option.to_vec() });
        }
    }
    Ok((with_code, pattern))
}

fn script(args: &[Bytes]) -> Parsed {
    let Some((sub, rest)) = args.split_first() else {
        return Err(CommandError::WrongArity { command: "script" });
    };
    let answered = if is(sub, "flush") {
        flush_option(rest, CommandError::ScriptFlushOption)?;
        ScriptCommand::Flush
    } else if is(sub, "exists") {
        arity(rest, -1, "script|exists")?;
        ScriptCommand::Exists(rest.to_vec())
    } else if is(sub, "load") {
        arity(rest, 1, "script|load")?;
        if rest[0].len() as u64 > crate::kv::SCRIPT_BODY_BYTES_MAX {
            return Err(CommandError::ScriptTooLarge);
        }
        ScriptCommand::Load(rest[0].clone())
    } else if is(sub, "kill") {
        arity(rest, 0, "script|kill")?;
        return Err(CommandError::NotBusy);
    } else if is(sub, "debug") {
        arity(rest, 1, "script|debug")?;
        return Err(CommandError::ScriptingNotSupported { command: "SCRIPT DEBUG" });
    } else {
        return Err(CommandError::UnknownSubcommand { command: "SCRIPT", subcommand: sub.to_vec() });
    };
    Ok(Command::Script(answered))
}

/// WAIT numreplicas timeout (milliseconds, 0: no limit).
fn wait(args: &[Bytes]) -> Parsed {
    let [replicas, timeout] = args else { return Err(CommandError::WrongArity { command: "wait" }) };
    let replicas = integer(replicas)?;
    let timeout_ms = integer(timeout).map_err(|_| CommandError::TimeoutNotInteger)?;
    let timeout_ms = u64::try_from(timeout_ms).map_err(|_| CommandError::TimeoutNegative)?;
    Ok(Command::Wait { replicas, timeout_ms })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Parsed {
        let args: Vec<Bytes> = line.split(' ').map(|w| Bytes::from(w.to_owned())).collect();
        Command::parse(&args)
    }

    fn error(line: &str) -> String {
        parse(line).expect_err(line).to_string()
    }

    #[test]
    fn function_and_script_parse_as_redis() {
        for line in ["FUNCTION FLUSH", "function flush async", "FUNCTION FLUSH SYNC"] {
            assert_eq!(parse(line), Ok(Command::Function(FunctionCommand::Flush)), "{line}");
        }
        let list = |with_code, pattern: Option<&'static str>| {
            Ok(Command::Function(FunctionCommand::List {
                with_code,
                pattern: pattern.map(|p: &'static str| Bytes::from_static(p.as_bytes())),
            }))
        };
        assert_eq!(parse("FUNCTION LIST"), list(false, None));
        assert_eq!(parse("FUNCTION LIST WITHCODE LIBRARYNAME x*"), list(true, Some("x*")));
        assert_eq!(parse("FUNCTION LIST libraryname a"), list(false, Some("a")));
        let load = |replace, source| Ok(Command::Function(FunctionCommand::Load { replace, source }));
        assert_eq!(parse("FUNCTION LOAD REPLACE x"), load(true, Bytes::from_static(b"x")));
        assert_eq!(parse("FUNCTION LOAD replace"), load(false, Bytes::from_static(b"replace")));
        let restore = |policy| {
            Ok(Command::Function(FunctionCommand::Restore { payload: Bytes::from_static(b"p"), policy }))
        };
        assert_eq!(parse("FUNCTION RESTORE p"), restore(crate::functions::RestorePolicy::Append));
        assert_eq!(parse("FUNCTION RESTORE p flush"), restore(crate::functions::RestorePolicy::Flush));
        let digests = vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")];
        assert_eq!(parse("SCRIPT EXISTS a b"), Ok(Command::Script(ScriptCommand::Exists(digests))));
        assert_eq!(
            parse("SCRIPT LOAD x"),
            Ok(Command::Script(ScriptCommand::Load(Bytes::from_static(b"x"))))
        );
        assert_eq!(parse("SCRIPT FLUSH ASYNC"), Ok(Command::Script(ScriptCommand::Flush)));
        // Texts from redis-server 7.0.15.
        for (line, text) in [
            ("FUNCTION FLUSH foo", "ERR FUNCTION FLUSH only supports SYNC|ASYNC option"),
            (
                "FUNCTION FLUSH a b",
                "ERR unknown subcommand or wrong number of arguments for 'FLUSH'. Try FUNCTION HELP.",
            ),
            ("FUNCTION LIST foo", "ERR Unknown argument foo"),
            ("FUNCTION LIST withcode withcode", "ERR Unknown argument withcode"),
            ("FUNCTION LIST libraryname", "ERR library name argument was not given"),
            ("FUNCTION LIST libraryname a libraryname b", "ERR Unknown argument libraryname"),
            ("FUNCTION DUMP x", "ERR wrong number of arguments for 'function|dump' command"),
            ("FUNCTION LOAD a b", "ERR Unknown option given: a"),
            (
                "FUNCTION RESTORE p x",
                "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.",
            ),
            ("FUNCTION KILL", "NOTBUSY No scripts in execution right now."),
            ("FUNCTION foo", "ERR unknown subcommand 'foo'. Try FUNCTION HELP."),
            ("SCRIPT FLUSH foo", "ERR SCRIPT FLUSH only support SYNC|ASYNC option"),
            ("SCRIPT FLUSH a b", "ERR SCRIPT FLUSH only support SYNC|ASYNC option"),
            ("SCRIPT EXISTS", "ERR wrong number of arguments for 'script|exists' command"),
            ("SCRIPT KILL", "NOTBUSY No scripts in execution right now."),
            ("SCRIPT LOAD x y", "ERR wrong number of arguments for 'script|load' command"),
        ] {
            assert_eq!(error(line), text, "{line}");
        }
    }

    #[test]
    fn debug_is_refused_and_aborts_a_transaction() {
        let refused = parse("DEBUG SLEEP 0").expect_err("DEBUG");
        assert!(refused
            .to_string()
            .starts_with("ERR DEBUG command not allowed. If the enable-debug-command"));
        assert!(refused.refused_before_queueing());
    }

    #[test]
    fn wait_reads_its_numbers_as_redis() {
        assert_eq!(parse("WAIT 2 100"), Ok(Command::Wait { replicas: 2, timeout_ms: 100 }));
        assert_eq!(parse("WAIT -1 0"), Ok(Command::Wait { replicas: -1, timeout_ms: 0 }));
        assert_eq!(error("WAIT a 0"), "ERR value is not an integer or out of range");
        assert_eq!(error("WAIT 0 a"), "ERR timeout is not an integer or out of range");
        assert_eq!(error("WAIT 0 -1"), "ERR timeout is negative");
        assert_eq!(parse("LASTSAVE"), Ok(Command::LastSave));
    }
}

//! OBJECT and MEMORY: what clients ask about a key's representation and memory.

use bytes::Bytes;

use super::args::{integer, is, owned};
use super::error::CommandError;
use super::Command;
use crate::kv::introspect::ObjectField;
use crate::kv::KvRead;

type Parsed = Result<Command, CommandError>;

/// OBJECT HELP's lines, as Redis 7.0 prints them.
const OBJECT_HELP: &[&str] = &[
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Prints this help.",
];

/// MEMORY HELP's lines for the subcommands PPDB answers.
const MEMORY_HELP: &[&str] = &[
    "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "USAGE <key> [SAMPLES <count>]",
    "    Return memory in bytes used by <key> and its value. Nested values are",
    "    sampled up to <count> times (default: 5, 0 means sample all).",
    "HELP",
    "    Prints this help.",
];

/// Parses OBJECT and MEMORY (`name` lower case); `None` if neither.
pub(super) fn parse(name: &str, args: &[Bytes]) -> Option<Parsed> {
    Some(match name {
        "object" => object(args),
        "memory" => memory(args),
        _ => return None,
    })
}

/// The help text of a container command, one status line each.
fn help(lines: &'static [&'static str]) -> Parsed {
    Ok(Command::Help(lines))
}

fn object(args: &[Bytes]) -> Parsed {
    let subcommand = args.first().map_or(&[][..], |a| a.as_ref());
    let (field, full_name) = match () {
        _ if is(subcommand, "help") && args.len() == 1 => return help(OBJECT_HELP),
        _ if is(subcommand, "encoding") => (ObjectField::Encoding, "object|encoding"),
        _ if is(subcommand, "refcount") => (ObjectField::RefCount, "object|refcount"),
        _ if is(subcommand, "idletime") => (ObjectField::IdleTime, "object|idletime"),
        _ if is(subcommand, "freq") => (ObjectField::Freq, "object|freq"),
        _ => {
            return Err(CommandError::UnknownSubcommand {
                command: "OBJECT",
                subcommand: subcommand.to_vec(),
            })
        }
    };
    if args.len() != 2 {
        return Err(CommandError::WrongArity { command: full_name });
    }
    Ok(Command::Read(KvRead::Object { key: owned(args, 1), field }))
}

fn memory(args: &[Bytes]) -> Parsed {
    let subcommand = args.first().map_or(&[][..], |a| a.as_ref());
    if is(subcommand, "help") && args.len() == 1 {
        return help(MEMORY_HELP);
    }
    if !is(subcommand, "usage") {
        return Err(CommandError::UnknownSubcommand { command: "MEMORY", subcommand: subcommand.to_vec() });
    }
    match args {
        [_, _] => {}
        [_, _, option, count] if is(option, "samples") => {
            // Every value is counted whole, so the sample count only has to be valid.
            integer(count)?;
        }
        [_] => return Err(CommandError::WrongArity { command: "memory|usage" }),
        _ => return Err(CommandError::Syntax),
    }
    Ok(Command::Read(KvRead::MemoryUsage { key: owned(args, 1) }))
}

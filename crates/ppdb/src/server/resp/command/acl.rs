//! ACL and its subcommands (answered in `server::acl::reply`).

use bytes::Bytes;

use super::args::{integer, is};
use super::error::CommandError;
use super::Command;

/// Most bits ACL GENPASS generates at once.
const GENPASS_BITS_MAX: i64 = 4096;

/// ACL subcommands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AclCommand {
    /// ACL SETUSER name \[rule ...\].
    SetUser {
        /// The user.
        name: Bytes,
        /// Its rules, as sent.
        rules: Vec<Bytes>,
    },
    /// ACL GETUSER name.
    GetUser(Bytes),
    /// ACL DELUSER name \[name ...\].
    DelUser(Vec<Bytes>),
    /// ACL LIST.
    List,
    /// ACL USERS.
    Users,
    /// ACL WHOAMI.
    WhoAmI,
    /// ACL CAT \[category\].
    Cat(Option<Bytes>),
    /// ACL GENPASS \[bits\].
    GenPass(u32),
    /// ACL LOG \[count | RESET\]: PPDB keeps no log of refusals; it answers empty.
    Log {
        /// RESET was asked.
        reset: bool,
    },
    /// ACL HELP.
    Help,
}

/// Parses ACL's arguments (after the name).
pub(super) fn parse(args: &[Bytes]) -> Result<Command, CommandError> {
    let Some((sub, rest)) = args.split_first() else {
        return Err(CommandError::WrongArity { command: "acl" });
    };
    let arity =
        |ok: bool, command: &'static str| if ok { Ok(()) } else { Err(CommandError::WrongArity { command }) };
    let command = if is(sub, "setuser") {
        let (name, rules) = rest.split_first().ok_or(CommandError::WrongArity { command: "acl|setuser" })?;
        AclCommand::SetUser { name: name.clone(), rules: rules.to_vec() }
    } else if is(sub, "getuser") {
        arity(rest.len() == 1, "acl|getuser")?;
        AclCommand::GetUser(rest[0].clone())
    } else if is(sub, "deluser") {
        arity(!rest.is_empty(), "acl|deluser")?;
        AclCommand::DelUser(rest.to_vec())
    } else if is(sub, "list") {
        arity(rest.is_empty(), "acl|list")?;
        AclCommand::List
    } else if is(sub, "users") {
        arity(rest.is_empty(), "acl|users")?;
        AclCommand::Users
    } else if is(sub, "whoami") {
        arity(rest.is_empty(), "acl|whoami")?;
        AclCommand::WhoAmI
    } else if is(sub, "cat") {
        arity(rest.len() <= 1, "acl|cat")?;
        AclCommand::Cat(rest.first().cloned())
    } else if is(sub, "genpass") {
        arity(rest.len() <= 1, "acl|genpass")?;
        let bits = match rest.first() {
            None => 256,
            Some(bits) => match integer(bits) {
                Ok(bits @ 1..=GENPASS_BITS_MAX) => bits,
                _ => return Err(CommandError::GenPassBits),
            },
        };
        AclCommand::GenPass(u32::try_from(bits).unwrap_or(256))
    } else if is(sub, "log") {
        arity(rest.len() <= 1, "acl|log")?;
        AclCommand::Log { reset: rest.first().is_some_and(|arg| is(arg, "reset")) }
    } else if is(sub, "help") {
        AclCommand::Help
    } else {
        return Err(CommandError::UnknownSubcommand { command: "ACL", subcommand: sub.to_vec() });
    };
    Ok(Command::Acl(command))
}

//! CLIENT and its subcommands: naming a connection, listing, inspecting and killing
//! connections, and switching a connection's replies off.

use bytes::Bytes;

use super::args::{integer, is};
use super::error::CommandError;
use super::Command;

pub use crate::acl::DEFAULT_USER;

/// Redis accepts client names made of printable ASCII without spaces (`!` to `~`).
pub(super) fn valid_client_name(name: &Bytes) -> Result<Bytes, CommandError> {
    if name.iter().all(|b| (b'!'..=b'~').contains(b)) {
        Ok(name.clone())
    } else {
        Err(CommandError::InvalidClientName)
    }
}

/// CLIENT subcommands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientCommand {
    /// CLIENT SETNAME name (validated; empty clears it).
    SetName(Bytes),
    /// CLIENT GETNAME.
    GetName,
    /// CLIENT ID.
    Id,
    /// CLIENT INFO.
    Info,
    /// CLIENT SETINFO LIB-NAME|LIB-VER value.
    SetInfo {
        /// `lib-name` or `lib-ver` (lower case).
        attribute: &'static str,
        /// The value.
        value: Bytes,
    },
    /// CLIENT LIST [TYPE type | ID id ...].
    List(ClientListFilter),
    /// CLIENT KILL ip:port, or CLIENT KILL with filters.
    Kill(KillFilter),
    /// CLIENT NO-EVICT ON|OFF.
    NoEvict(bool),
    /// CLIENT REPLY ON|OFF|SKIP.
    Reply(ReplyMode),
}

/// A class of clients, as CLIENT LIST TYPE and CLIENT KILL TYPE name them. PPDB's clients are
/// all normal: it has no replication clients (replicas are Raft peers) and no pub/sub yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientType {
    /// An ordinary client.
    Normal,
    /// The connection of a replica to its master.
    Master,
    /// A replica's connection (`replica` or `slave`).
    Replica,
    /// A client in pub/sub mode.
    PubSub,
}

impl ClientType {
    fn parse(name: &[u8]) -> Result<ClientType, CommandError> {
        Ok(if is(name, "normal") {
            ClientType::Normal
        } else if is(name, "master") {
            ClientType::Master
        } else if is(name, "replica") || is(name, "slave") {
            ClientType::Replica
        } else if is(name, "pubsub") {
            ClientType::PubSub
        } else {
            return Err(CommandError::UnknownClientType { name: name.to_vec() });
        })
    }
}

/// Which connections CLIENT LIST shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientListFilter {
    /// Every connection.
    All,
    /// Connections of one class.
    Type(ClientType),
    /// Connections with these ids (ids that match none are left out).
    Ids(Vec<i64>),
}

/// Which connections CLIENT KILL closes: those matching every filter given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KillFilter {
    /// The old form `CLIENT KILL ip:port`: answered `OK` or `ERR No such client`, and it may
    /// close the caller itself.
    pub legacy: bool,
    /// ID id.
    pub id: Option<u64>,
    /// TYPE type.
    pub client_type: Option<ClientType>,
    /// ADDR ip:port (the client's address).
    pub addr: Option<Bytes>,
    /// LADDR ip:port (the address the client connected to).
    pub laddr: Option<Bytes>,
    /// Whether the caller is spared (SKIPME, default yes; no with the old form).
    pub skip_me: bool,
}

/// CLIENT REPLY's modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyMode {
    /// Send replies (answered `OK`).
    On,
    /// Send no reply, this one included, until ON.
    Off,
    /// Send no reply to this command and the next one.
    Skip,
}

type Parsed = Result<Command, CommandError>;

/// Parses CLIENT's arguments (the subcommand first).
pub(super) fn parse(args: &[Bytes]) -> Parsed {
    let Some((sub, rest)) = args.split_first() else {
        return Err(CommandError::WrongArity { command: "client" });
    };
    let arity = |ok: bool, command: &'static str| {
        if ok {
            Ok(())
        } else {
            Err(CommandError::WrongArity { command })
        }
    };
    let client = if is(sub, "setname") {
        arity(rest.len() == 1, "client|setname")?;
        ClientCommand::SetName(valid_client_name(&rest[0])?)
    } else if is(sub, "getname") {
        arity(rest.is_empty(), "client|getname")?;
        ClientCommand::GetName
    } else if is(sub, "id") {
        arity(rest.is_empty(), "client|id")?;
        ClientCommand::Id
    } else if is(sub, "info") {
        arity(rest.is_empty(), "client|info")?;
        ClientCommand::Info
    } else if is(sub, "setinfo") {
        arity(rest.len() == 2, "client|setinfo")?;
        set_info(&rest[0], &rest[1])?
    } else if is(sub, "list") {
        ClientCommand::List(list_filter(rest)?)
    } else if is(sub, "kill") {
        arity(!rest.is_empty(), "client|kill")?;
        ClientCommand::Kill(kill_filter(rest)?)
    } else if is(sub, "no-evict") {
        arity(rest.len() == 1, "client|no-evict")?;
        ClientCommand::NoEvict(on_off(&rest[0])?)
    } else if is(sub, "reply") {
        arity(rest.len() == 1, "client|reply")?;
        ClientCommand::Reply(reply_mode(&rest[0])?)
    } else {
        return Err(CommandError::UnknownSubcommand { command: "CLIENT", subcommand: sub.to_vec() });
    };
    Ok(Command::Client(client))
}

fn set_info(attribute: &Bytes, value: &Bytes) -> Result<ClientCommand, CommandError> {
    let attribute = if is(attribute, "lib-name") {
        "lib-name"
    } else if is(attribute, "lib-ver") {
        "lib-ver"
    } else {
        return Err(CommandError::UnrecognizedClientInfo { option: attribute.to_vec() });
    };
    if valid_client_name(value).is_err() {
        return Err(CommandError::InvalidClientInfo { attribute });
    }
    Ok(ClientCommand::SetInfo { attribute, value: value.clone() })
}

/// CLIENT LIST takes no filter, `TYPE type`, or `ID id [id ...]`.
fn list_filter(rest: &[Bytes]) -> Result<ClientListFilter, CommandError> {
    match rest {
        [] => Ok(ClientListFilter::All),
        [option, name] if is(option, "type") => Ok(ClientListFilter::Type(ClientType::parse(name)?)),
        [option, ids @ ..] if is(option, "id") && !ids.is_empty() => {
            let ids = ids.iter().map(|id| integer(id).map_err(|_| CommandError::InvalidClientId));
            Ok(ClientListFilter::Ids(ids.collect::<Result<_, _>>()?))
        }
        _ => Err(CommandError::Syntax),
    }
}

/// CLIENT KILL's two forms: one argument is the old `ip:port`; more are `option value` pairs,
/// checked in order so the first bad one is the error, as Redis reports it.
fn kill_filter(rest: &[Bytes]) -> Result<KillFilter, CommandError> {
    if let [addr] = rest {
        return Ok(KillFilter { legacy: true, addr: Some(addr.clone()), ..KillFilter::default() });
    }
    let mut filter = KillFilter { skip_me: true, ..KillFilter::default() };
    for pair in rest.chunks(2) {
        let [option, value] = pair else { return Err(CommandError::Syntax) };
        if is(option, "id") {
            let id = integer(value).ok().filter(|&id| id > 0);
            filter.id = Some(id.ok_or(CommandError::ClientIdNotPositive)? as u64);
        } else if is(option, "type") {
            filter.client_type = Some(ClientType::parse(value)?);
        } else if is(option, "addr") {
            filter.addr = Some(value.clone());
        } else if is(option, "laddr") {
            filter.laddr = Some(value.clone());
        } else if is(option, "user") {
            if value.as_ref() != DEFAULT_USER.as_bytes() {
                return Err(CommandError::NoSuchUser { name: value.to_vec() });
            }
        } else if is(option, "skipme") {
            filter.skip_me = yes_no(value)?;
        } else {
            return Err(CommandError::Syntax);
        }
    }
    Ok(filter)
}

fn yes_no(value: &[u8]) -> Result<bool, CommandError> {
    if is(value, "yes") {
        Ok(true)
    } else if is(value, "no") {
        Ok(false)
    } else {
        Err(CommandError::Syntax)
    }
}

fn on_off(value: &[u8]) -> Result<bool, CommandError> {
    if is(value, "on") {
        Ok(true)
    } else if is(value, "off") {
        Ok(false)
    } else {
        Err(CommandError::Syntax)
    }
}

fn reply_mode(value: &[u8]) -> Result<ReplyMode, CommandError> {
    if is(value, "on") {
        Ok(ReplyMode::On)
    } else if is(value, "off") {
        Ok(ReplyMode::Off)
    } else if is(value, "skip") {
        Ok(ReplyMode::Skip)
    } else {
        Err(CommandError::Syntax)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<ClientCommand, String> {
        let args: Vec<Bytes> = line.split(' ').map(|w| Bytes::from(w.to_owned())).collect();
        match Command::parse(&args) {
            Ok(Command::Client(client)) => Ok(client),
            Ok(other) => panic!("{line}: {other:?}"),
            Err(error) => Err(error.to_string()),
        }
    }

    #[test]
    fn list_filters_and_their_errors_read_as_redis() {
        assert_eq!(parse("CLIENT LIST"), Ok(ClientCommand::List(ClientListFilter::All)));
        assert_eq!(
            parse("client list type PUBSUB"),
            Ok(ClientCommand::List(ClientListFilter::Type(ClientType::PubSub)))
        );
        assert_eq!(
            parse("CLIENT LIST ID 3 -5 0"),
            Ok(ClientCommand::List(ClientListFilter::Ids(vec![3, -5, 0])))
        );
        // Texts from redis-server 7.0.15.
        for (line, text) in [
            ("CLIENT LIST TYPE foo", "ERR Unknown client type 'foo'"),
            ("CLIENT LIST ID 1 2 abc", "ERR Invalid client ID"),
            ("CLIENT LIST ID", "ERR syntax error"),
            ("CLIENT LIST foo", "ERR syntax error"),
            ("CLIENT LIST TYPE normal ID 1", "ERR syntax error"),
            ("CLIENT INFO x", "ERR wrong number of arguments for 'client|info' command"),
        ] {
            assert_eq!(parse(line).unwrap_err(), text, "{line}");
        }
    }

    #[test]
    fn kill_has_the_old_and_the_filter_form() {
        let old = parse("CLIENT KILL 127.0.0.1:5000").unwrap();
        assert_eq!(
            old,
            ClientCommand::Kill(KillFilter {
                legacy: true,
                addr: Some("127.0.0.1:5000".into()),
                ..KillFilter::default()
            })
        );
        let filters =
            parse("CLIENT KILL ID 7 LADDR 127.0.0.1:6379 USER default TYPE normal SKIPME no").unwrap();
        let expected = KillFilter {
            id: Some(7),
            laddr: Some("127.0.0.1:6379".into()),
            client_type: Some(ClientType::Normal),
            skip_me: false,
            ..KillFilter::default()
        };
        assert_eq!(filters, ClientCommand::Kill(expected));
        for (line, text) in [
            ("CLIENT KILL", "ERR wrong number of arguments for 'client|kill' command"),
            ("CLIENT KILL id abc", "ERR client-id should be greater than 0"),
            ("CLIENT KILL id -1", "ERR client-id should be greater than 0"),
            ("CLIENT KILL foo bar", "ERR syntax error"),
            ("CLIENT KILL maxage 1", "ERR syntax error"),
            ("CLIENT KILL id 1 skipme", "ERR syntax error"),
            ("CLIENT KILL type foo", "ERR Unknown client type 'foo'"),
            ("CLIENT KILL skipme maybe", "ERR syntax error"),
            ("CLIENT KILL user nosuch", "ERR No such user 'nosuch'"),
        ] {
            assert_eq!(parse(line).unwrap_err(), text, "{line}");
        }
    }

    #[test]
    fn no_evict_reply_and_setinfo() {
        assert_eq!(parse("CLIENT NO-EVICT on"), Ok(ClientCommand::NoEvict(true)));
        assert_eq!(parse("CLIENT REPLY skip"), Ok(ClientCommand::Reply(ReplyMode::Skip)));
        for (line, text) in [
            ("CLIENT NO-EVICT maybe", "ERR syntax error"),
            ("CLIENT NO-EVICT", "ERR wrong number of arguments for 'client|no-evict' command"),
            ("CLIENT REPLY foo", "ERR syntax error"),
            ("CLIENT REPLY", "ERR wrong number of arguments for 'client|reply' command"),
            ("CLIENT NO-TOUCH on", "ERR unknown subcommand 'NO-TOUCH'. Try CLIENT HELP."),
        ] {
            assert_eq!(parse(line).unwrap_err(), text, "{line}");
        }
        let spaced =
            vec![Bytes::from("CLIENT"), Bytes::from("SETINFO"), Bytes::from("lib-ver"), Bytes::from("1 2")];
        assert_eq!(
            Command::parse(&spaced).unwrap_err().to_string(),
            "ERR lib-ver cannot contain spaces, newlines or special characters."
        );
    }
}

//! A connection's state, and the answers to the commands about the connection or the server
//! (PING, HELLO, CLIENT, CONFIG, INFO, FUNCTION, SCRIPT, LASTSAVE, WAIT, ...) and EVAL inside
//! MULTI, which the node a
//! client is connected to answers itself.

use super::acl::reply::{acl_reply, set_requirepass};
use super::acl::SessionAuth;
use super::client::forward::ShardOp;
use super::clients::{ClientRecord, Killed};
use super::cluster::cluster_reply;
use super::context::ServerContext;
use super::pubsub::Subscriptions;
use super::resp::command::{ClientCommand, Command, Hello, ReplyMode, ScriptCommand, Transaction};
use super::resp::reply::{command_query_reply, error_frame};
use super::resp::{Frame, ProtocolVersion};
use super::script::check_compiles;
use super::script::function::function_reply;
use super::wait::{wait_for_replicas, WrittenShards};
use crate::kv::WatchedKey;
use crate::server::resp::command::CommandError;
use bytes::Bytes;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The state of one connection.
pub struct Session {
    /// CLIENT ID.
    pub id: u64,
    /// The protocol replies are encoded in.
    pub version: ProtocolVersion,
    /// Close once the replies so far are sent (QUIT, CLIENT KILL of itself).
    pub closing: bool,
    /// The queue since MULTI, until EXEC or DISCARD.
    pub transaction: Option<Transaction>,
    /// The keys WATCH watches and the versions they had then, until EXEC, DISCARD, UNWATCH
    /// or RESET.
    pub watched: Vec<WatchedKey>,
    /// What CLIENT LIST shows of the connection.
    pub record: Arc<ClientRecord>,
    /// CLIENT REPLY's state.
    pub replies: ReplySwitch,
    /// The shards the connection wrote to, for WAIT.
    pub written: WrittenShards,
    /// The channels and patterns it subscribes to, and its messages on their way.
    pub subscriptions: Subscriptions,
    /// Who it is logged in as.
    pub auth: SessionAuth,
}

impl Session {
    /// A fresh connection's state; its messages will arrive in `subscriptions`' mailbox.
    pub fn new(record: Arc<ClientRecord>, subscriptions: Subscriptions, auth: SessionAuth) -> Session {
        record.set_user(auth.user_name());
        Session {
            id: record.id,
            version: ProtocolVersion::Resp2,
            closing: false,
            transaction: None,
            watched: Vec::new(),
            record,
            replies: ReplySwitch::default(),
            written: WrittenShards::default(),
            subscriptions,
            auth,
        }
    }

    /// Whether the connection is in Redis's RESP2 subscribed context, where only the pub/sub
    /// commands, PING, QUIT and RESET run.
    pub fn subscribed_resp2(&self) -> bool {
        self.version == ProtocolVersion::Resp2 && self.subscriptions.is_active()
    }

    /// RESET: back to a fresh connection's state, same id.
    pub fn reset(&mut self) {
        self.transaction = None;
        self.watched.clear();
        self.set_version(ProtocolVersion::Resp2);
        self.record.set_name(None);
        self.record.set_no_evict(false);
        self.replies = ReplySwitch::default();
        self.subscriptions.clear();
        self.record.set_subscriptions(self.subscriptions.counts());
        self.auth.reset();
        self.record.set_user(self.auth.user_name());
    }

    fn set_version(&mut self, version: ProtocolVersion) {
        self.version = version;
        self.record.set_protocol(version);
    }
}

/// Whether replies are sent (CLIENT REPLY ON|OFF|SKIP), command by command, as Redis decides:
/// OFF silences every reply including its own, until ON (whose `OK` is sent); SKIP silences
/// its own reply and the next command's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplySwitch {
    off: bool,
    skip_this: bool,
    skip_next: bool,
}

impl ReplySwitch {
    /// Applies CLIENT REPLY `mode`.
    fn set(&mut self, mode: ReplyMode) {
        match mode {
            ReplyMode::On => *self = ReplySwitch::default(),
            ReplyMode::Off => self.off = true,
            ReplyMode::Skip => self.skip_next |= !self.off,
        }
    }

    /// Whether the reply of the command just run is withheld.
    pub fn silenced(&self) -> bool {
        self.off || self.skip_this || self.skip_next
    }

    /// Moves on to the next command.
    pub fn advance(&mut self) {
        self.skip_this = std::mem::take(&mut self.skip_next);
    }
}

/// Commands about the connection or the server, answered by this node.
pub async fn session_command(ctx: &ServerContext, session: &mut Session, command: Command) -> Frame {
    match command {
        // Subscribed over RESP2, PING answers as a message would come: an array.
        Command::Ping(message) if session.subscribed_resp2() => {
            Frame::Array(vec![Frame::bulk(b"pong"), Frame::Bulk(message.unwrap_or_default())])
        }
        Command::Ping(None) => Frame::simple("PONG"),
        Command::Ping(Some(message)) | Command::Echo(message) => Frame::Bulk(message),
        Command::Hello(hello) => hello_reply(session, hello),
        Command::Acl(acl) => acl_reply(ctx, session, acl).await,
        Command::Quit => {
            session.closing = true;
            session.transaction = None;
            Frame::simple("OK")
        }
        Command::Command(query) => command_query_reply(&query),
        Command::Info(sections) => {
            Frame::Verbatim { format: *b"txt", text: Bytes::from(ctx.info(&sections).await) }
        }
        Command::Select => Frame::simple("OK"),
        Command::Help(lines) => Frame::Array(lines.iter().map(|line| Frame::simple(line)).collect()),
        Command::Time => time_reply(SystemTime::now()),
        Command::ConfigGet(patterns) => ctx.settings.config_get(&patterns),
        Command::ConfigSet(changes) => match &changes[..] {
            [(name, password)] if name.eq_ignore_ascii_case(b"requirepass") => {
                set_requirepass(ctx, session, password).await
            }
            _ => ctx.settings.config_set(&changes),
        },
        Command::ConfigResetStat => {
            ctx.stats.reset();
            Frame::simple("OK")
        }
        Command::Auth { username: None, .. } if session.auth.default_needs_no_password() => {
            Frame::from(&CommandError::AuthNotConfigured)
        }
        Command::Auth { username, password } => match session.auth.log_in(username.as_deref(), &password) {
            Ok(()) => {
                session.record.set_user(session.auth.user_name());
                Frame::simple("OK")
            }
            Err(frame) => frame,
        },
        Command::Client(client) => client_reply(ctx, session, client),
        Command::Function(function) => function_reply(ctx, function).await,
        Command::Cluster(cluster) => cluster_reply(ctx, session.record.laddr, cluster).await,
        Command::Script(script) => script_reply(ctx, script),
        Command::Eval(eval) => match ctx.script_entry(&mut session.auth, eval) {
            Ok((shard, entry)) => {
                session.written.note(shard);
                match ctx.executor.on_shard(shard, ShardOp::Write(entry)).await {
                    Ok(reply) => Frame::from(reply),
                    Err(error) => error_frame(&error),
                }
            }
            Err(frame) => frame,
        },
        Command::LastSave => Frame::Integer(ctx.started_unix_s() as i64),
        Command::Wait { replicas, timeout_ms } => {
            let shards = ctx.executor.router().shard_count();
            let handle = &ctx.report.handle;
            let count =
                wait_for_replicas(handle, &session.written, shards, replicas, timeout_ms, &session.record);
            Frame::Integer(count.await)
        }
        Command::Unwatch => {
            session.watched.clear();
            Frame::simple("OK")
        }
        Command::Read(_) | Command::Write(_) | Command::Block(_) | Command::PubSub(_) => {
            Frame::error("ERR internal: key-space or pub/sub command in the wrong path")
        }
        Command::Multi | Command::Exec | Command::Discard | Command::Watch { .. } | Command::Reset => {
            Frame::error("ERR internal: transaction command in the wrong path")
        }
    }
}

/// CLIENT's subcommands.
fn client_reply(ctx: &ServerContext, session: &mut Session, client: ClientCommand) -> Frame {
    let text = |text: String| Frame::Verbatim { format: *b"txt", text: Bytes::from(text) };
    match client {
        ClientCommand::SetName(name) => {
            session.record.set_name((!name.is_empty()).then_some(name));
            Frame::simple("OK")
        }
        ClientCommand::GetName => session.record.name().map_or(Frame::Null, Frame::Bulk),
        ClientCommand::Id => Frame::Integer(session.id as i64),
        ClientCommand::Info => text(session.record.line() + "\n"),
        ClientCommand::SetInfo { attribute, value } => {
            session.record.set_library(attribute, value);
            Frame::simple("OK")
        }
        ClientCommand::List(filter) => text(ctx.clients.list(&filter)),
        ClientCommand::Kill(filter) => {
            let Killed { count, caller } = ctx.clients.kill(&filter, session.id);
            session.closing |= caller;
            match (filter.legacy, count) {
                (true, 0) => Frame::from(&CommandError::NoSuchClient),
                (true, _) => Frame::simple("OK"),
                (false, count) => Frame::Integer(count as i64),
            }
        }
        ClientCommand::NoEvict(on) => {
            session.record.set_no_evict(on);
            Frame::simple("OK")
        }
        ClientCommand::Reply(mode) => {
            session.replies.set(mode);
            Frame::simple("OK")
        }
    }
}

/// SCRIPT's answers, from the node's script cache.
fn script_reply(ctx: &ServerContext, script: ScriptCommand) -> Frame {
    match script {
        ScriptCommand::Flush => {
            ctx.scripts.clear();
            Frame::simple("OK")
        }
        ScriptCommand::Exists(digests) => Frame::Array(
            digests.iter().map(|sha| Frame::Integer(i64::from(ctx.scripts.get(sha).is_some()))).collect(),
        ),
        ScriptCommand::Load(body) => match check_compiles(&body) {
            Ok(()) => Frame::Bulk(bytes::Bytes::from(ctx.scripts.insert(body))),
            Err(text) => Frame::error(text),
        },
    }
}

/// TIME's array: seconds and microseconds since the Unix epoch, as bulk strings (as Redis;
/// a clock set before the epoch reads 0 0).
fn time_reply(now: SystemTime) -> Frame {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    Frame::Array(vec![
        Frame::Bulk(Bytes::from(since.as_secs().to_string())),
        Frame::Bulk(Bytes::from(since.subsec_micros().to_string())),
    ])
}

fn hello_reply(session: &mut Session, hello: Hello) -> Frame {
    if let Some((user, password)) = &hello.auth {
        if let Err(frame) = session.auth.log_in(Some(user), password) {
            return frame;
        }
        session.record.set_user(session.auth.user_name());
    } else if !session.auth.is_authenticated() {
        return Frame::error(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO \
             <proto> AUTH <user> <pass> option can be used to authenticate the client and select the \
             RESP protocol version at the same time",
        );
    }
    if let Some(version) = hello.version {
        session.set_version(version);
    }
    if let Some(name) = hello.client_name {
        session.record.set_name(Some(name));
    }
    let text = |s: &str| Frame::bulk(s.as_bytes());
    Frame::Map(vec![
        (text("server"), text("ppdb")),
        (text("version"), text(env!("CARGO_PKG_VERSION"))),
        (text("proto"), Frame::Integer(session.version.number())),
        (text("id"), Frame::Integer(session.id as i64)),
        (text("mode"), text("cluster")),
        (text("role"), text("master")),
        (text("modules"), Frame::Array(Vec::new())),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_switch_follows_redis() {
        let mut replies = ReplySwitch::default();
        let mut run = |mode: Option<ReplyMode>| {
            if let Some(mode) = mode {
                replies.set(mode);
            }
            let silenced = replies.silenced();
            replies.advance();
            silenced
        };
        assert!(!run(None));
        assert!(run(Some(ReplyMode::Skip)), "SKIP's own reply");
        assert!(run(None), "the command after SKIP");
        assert!(!run(None));
        assert!(run(Some(ReplyMode::Off)));
        assert!(run(None));
        assert!(run(Some(ReplyMode::Skip)), "SKIP while OFF changes nothing");
        assert!(run(None));
        assert!(!run(Some(ReplyMode::On)), "ON's OK is sent");
        assert!(run(Some(ReplyMode::Skip)));
        assert!(!run(Some(ReplyMode::On)), "ON right after SKIP is answered");
        assert!(!run(None));
    }
}

//! One client connection: read RESP requests, run them, write replies in order.
//!
//! Pipelined requests keep their order where it can be observed: consecutive single-shard
//! commands are grouped per shard and each group reaches the shard's leader as one batch, in
//! client order (so pipelined writes to one key apply in order, even when forwarded); groups
//! of different shards run at the same time, as Redis Cluster does for different nodes. A
//! switch between reads and writes, a multi-shard command, or a connection command waits for
//! everything before it, so a client always reads its own writes.
//!
//! Between MULTI and EXEC requests are queued, not run ([`Transaction`]); EXEC waits for
//! everything before it and runs the queue as one log entry ([`super::transaction`]). The
//! queue belongs to the connection: DISCARD, RESET, QUIT and closing the connection drop it.

use super::context::ServerContext;
use super::forward::ShardOp;
use super::memory::MemorySetting;
use super::resp::command::{
    Admission, ClientCommand, Command, CommandClass, CommandError, Hello, Transaction, TransactionError,
};
use super::resp::reply::{command_query_reply, config_get_reply};
use super::resp::{Frame, ProtocolVersion, RequestDecoder};
use super::transaction::{self, ExecElement};
use crate::error::Error;
use bytes::{Bytes, BytesMut};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bytes read from the socket at a time.
const READ_CHUNK_BYTES: usize = 16 * 1024;

/// The state of one connection.
struct Session {
    id: u64,
    version: ProtocolVersion,
    name: Option<Bytes>,
    closing: bool,
    /// The queue since MULTI, until EXEC or DISCARD.
    transaction: Option<Transaction>,
}

/// Serves one client until it disconnects, sends QUIT, or breaks the protocol.
pub async fn serve(mut stream: TcpStream, ctx: Arc<ServerContext>, id: u64) {
    let _ = stream.set_nodelay(true);
    let mut session =
        Session { id, version: ProtocolVersion::Resp2, name: None, closing: false, transaction: None };
    let mut decoder = RequestDecoder::new(ctx.limits);
    let mut input = BytesMut::with_capacity(READ_CHUNK_BYTES);
    let mut output = BytesMut::with_capacity(READ_CHUNK_BYTES);
    loop {
        input.reserve(READ_CHUNK_BYTES);
        match stream.read_buf(&mut input).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut batch = Vec::new();
        let mut protocol_error = None;
        loop {
            match decoder.decode(&mut input) {
                Ok(Some(args)) if args.is_empty() => {}
                Ok(Some(args)) => batch.push(args),
                Ok(None) => break,
                Err(e) => {
                    protocol_error = Some(Frame::from(&e));
                    break;
                }
            }
        }
        run_batch(&ctx, &mut session, batch, &mut output).await;
        if let Some(frame) = &protocol_error {
            frame.encode(session.version, &mut output);
            session.closing = true;
        }
        if !output.is_empty() && stream.write_all(&output).await.is_err() {
            return;
        }
        output.clear();
        if session.closing {
            let _ = stream.shutdown().await;
            return;
        }
    }
}

/// Replies of the pipelined commands since the last write to the output, by position.
struct Pipeline<'a> {
    ctx: &'a ServerContext,
    slots: Vec<Option<Frame>>,
    /// Single-shard operations waiting to run: per shard, (slot, operation) in client order.
    lanes: BTreeMap<u64, Vec<(usize, ShardOp)>>,
    /// Reads or writes: the two never share a round, so a read sees the writes before it.
    lanes_class: CommandClass,
}

impl Pipeline<'_> {
    fn slot(&mut self) -> usize {
        self.slots.push(None);
        self.slots.len() - 1
    }

    /// Runs the waiting operations: every shard's batch at once, each batch in order.
    async fn run_lanes(&mut self) {
        let lanes = std::mem::take(&mut self.lanes);
        let executor = &self.ctx.executor;
        let runs = lanes.into_iter().map(|(shard, ops)| async move {
            let (slots, ops): (Vec<usize>, Vec<ShardOp>) = ops.into_iter().unzip();
            (slots, executor.on_shard_batch(shard, ops).await)
        });
        for (slots, results) in futures::future::join_all(runs).await {
            for (slot, result) in slots.into_iter().zip(results) {
                self.slots[slot] = Some(to_frame(result));
            }
        }
    }

    /// Runs everything waiting and appends all replies so far, in order.
    async fn drain(&mut self, version: ProtocolVersion, out: &mut BytesMut) {
        self.run_lanes().await;
        for frame in self.slots.drain(..) {
            frame.unwrap_or_else(|| Frame::error("ERR internal: missing reply")).encode(version, out);
        }
    }
}

/// Runs a batch of pipelined requests, appending their replies in order. Consecutive
/// single-shard reads (or writes) are grouped per shard: each shard's group goes to its leader
/// as one batch, in order, and different shards run at the same time. Commands spanning
/// shards, connection commands, and a switch between reads and writes wait for what came
/// before.
async fn run_batch(ctx: &ServerContext, session: &mut Session, batch: Vec<Vec<Bytes>>, out: &mut BytesMut) {
    let mut pipeline =
        Pipeline { ctx, slots: Vec::new(), lanes: BTreeMap::new(), lanes_class: CommandClass::Connection };
    for args in batch {
        if session.closing {
            break;
        }
        ctx.stats.commands.fetch_add(1, Ordering::Relaxed);
        let command = match refuse_over_maxmemory(ctx, session, &args).and_then(|()| admit(session, &args)) {
            Ok(command) => command,
            Err(frame) => {
                let slot = pipeline.slot();
                pipeline.slots[slot] = Some(frame);
                continue;
            }
        };
        let class = command.class();
        if class != pipeline.lanes_class {
            pipeline.run_lanes().await;
            pipeline.lanes_class = class;
        }
        let planned = match &command {
            Command::Read(read) => ctx.executor.plan_read(read).map(Ok),
            Command::Write(write) => ctx.executor.plan_write(write),
            _ => None,
        };
        match (planned, command) {
            (Some(Ok((shard, op))), _) => {
                let slot = pipeline.slot();
                pipeline.lanes.entry(shard).or_default().push((slot, op));
            }
            (Some(Err(e)), _) => {
                let slot = pipeline.slot();
                pipeline.slots[slot] = Some(error_frame(&e));
            }
            (None, Command::Read(read)) => {
                pipeline.run_lanes().await;
                let slot = pipeline.slot();
                pipeline.slots[slot] = Some(to_frame(ctx.executor.read(&read).await));
            }
            (None, Command::Write(write)) => {
                pipeline.run_lanes().await;
                let slot = pipeline.slot();
                pipeline.slots[slot] = Some(to_frame(ctx.executor.write(&write).await));
            }
            (None, other) => {
                pipeline.drain(session.version, out).await;
                let frame = connection_command(ctx, session, other).await;
                frame.encode(session.version, out);
            }
        }
    }
    pipeline.drain(session.version, out).await;
}

/// Redis's `-OOM` refusal when the node's memory is over `maxmemory` (see `server::memory`);
/// inside MULTI the refusal also aborts the transaction, as Redis flags it.
fn refuse_over_maxmemory(ctx: &ServerContext, session: &mut Session, args: &[Bytes]) -> Result<(), Frame> {
    let Some(error) = ctx.report.memory.refusal(args, session.transaction.as_ref()) else {
        return Ok(());
    };
    if let Some(transaction) = session.transaction.as_mut() {
        transaction.abort();
    }
    Err(Frame::from(&error))
}

/// CONFIG SET: every `name value` checked first, then all applied, so a bad one changes
/// nothing (as Redis 7).
fn config_set(ctx: &ServerContext, pairs: &[(Bytes, Bytes)]) -> Frame {
    let mut settings = Vec::with_capacity(pairs.len());
    for (name, value) in pairs {
        match MemorySetting::parse(name, value) {
            Some(Ok(setting)) => settings.push(setting),
            Some(Err(error)) => return Frame::from(&error),
            None => return Frame::from(&CommandError::ConfigSetUnknown { name: name.to_vec() }),
        }
    }
    for setting in settings {
        ctx.report.memory.apply(setting);
    }
    Frame::simple("OK")
}

/// The command to run now, or the reply already decided: a parse error, or, inside MULTI, the
/// answer to queueing the request.
fn admit(session: &mut Session, args: &[Bytes]) -> Result<Command, Frame> {
    let Some(transaction) = session.transaction.as_mut() else {
        return Command::parse(args).map_err(|e| Frame::from(&e));
    };
    match transaction.admit(args) {
        Admission::Queued => Err(Frame::simple("QUEUED")),
        Admission::Refused(error) => Err(Frame::error(error.to_string())),
        Admission::Immediate(command) => Ok(command),
        Admission::Discarded(error) => {
            session.transaction = None;
            Err(Frame::error(error.to_string()))
        }
    }
}

/// A database error as a Redis error reply: the seed's code first, for machines.
pub fn error_frame(error: &Error) -> Frame {
    let text = error.to_string().replace(['\r', '\n'], " ");
    Frame::error(format!("{} {text}", error.code().as_str()))
}

fn to_frame(result: Result<crate::kv::Reply, Error>) -> Frame {
    match result {
        Ok(reply) => Frame::from(reply),
        Err(e) => error_frame(&e),
    }
}

async fn connection_command(ctx: &ServerContext, session: &mut Session, command: Command) -> Frame {
    match command {
        Command::Multi | Command::Exec | Command::Discard | Command::Watch | Command::Reset => {
            transaction_command(ctx, session, command).await
        }
        other => session_command(ctx, session, other).await,
    }
}

/// MULTI, EXEC, DISCARD, WATCH and RESET (which also drops the transaction).
async fn transaction_command(ctx: &ServerContext, session: &mut Session, command: Command) -> Frame {
    let error = |error: TransactionError| Frame::error(error.to_string());
    match command {
        Command::Multi if session.transaction.is_some() => error(TransactionError::NestedMulti),
        Command::Multi => {
            session.transaction = Some(Transaction::default());
            Frame::simple("OK")
        }
        Command::Exec => match session.transaction.take().map(Transaction::into_queued) {
            None => error(TransactionError::ExecWithoutMulti),
            Some(Err(abort)) => error(abort),
            Some(Ok(queued)) => match transaction::exec(&ctx.executor, queued).await {
                Ok(elements) => exec_reply(ctx, session, elements).await,
                Err(frame) => frame,
            },
        },
        Command::Discard => match session.transaction.take() {
            None => error(TransactionError::DiscardWithoutMulti),
            Some(_) => Frame::simple("OK"),
        },
        Command::Watch if session.transaction.is_some() => error(TransactionError::WatchInsideMulti),
        Command::Watch => error(TransactionError::WatchNotSupported),
        Command::Reset => {
            session.transaction = None;
            session.version = ProtocolVersion::Resp2;
            session.name = None;
            Frame::simple("RESET")
        }
        other => session_command(ctx, session, other).await,
    }
}

/// EXEC's array: the transaction's replies, with queued connection commands answered in place.
async fn exec_reply(ctx: &ServerContext, session: &mut Session, elements: Vec<ExecElement>) -> Frame {
    let mut frames = Vec::with_capacity(elements.len());
    for element in elements {
        frames.push(match element {
            ExecElement::Answered(frame) => frame,
            ExecElement::Local(command) => session_command(ctx, session, command).await,
        });
    }
    Frame::Array(frames)
}

/// Commands about the connection or the server, answered by this node.
async fn session_command(ctx: &ServerContext, session: &mut Session, command: Command) -> Frame {
    match command {
        Command::Ping(None) => Frame::simple("PONG"),
        Command::Ping(Some(message)) | Command::Echo(message) => Frame::Bulk(message),
        Command::Hello(hello) => hello_reply(session, hello),
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
        Command::Time => time_reply(std::time::SystemTime::now()),
        Command::ConfigGet(patterns) => {
            let memory = &ctx.report.memory;
            config_get_reply(&ctx.limits, memory.maxmemory_bytes(), memory.policy(), &patterns)
        }
        Command::ConfigSet(pairs) => config_set(ctx, &pairs),
        Command::Auth { .. } => Frame::error(
            "ERR AUTH <password> called without any password configured for the default user. \
             Are you sure your configuration is correct?",
        ),
        Command::Client(client) => match client {
            ClientCommand::SetName(name) => {
                session.name = (!name.is_empty()).then_some(name);
                Frame::simple("OK")
            }
            ClientCommand::GetName => session.name.clone().map_or(Frame::Null, Frame::Bulk),
            ClientCommand::Id => Frame::Integer(session.id as i64),
            ClientCommand::Info => Frame::Verbatim {
                format: *b"txt",
                text: Bytes::from(format!(
                    "id={} name={} db=0 resp={}\n",
                    session.id,
                    session.name.as_deref().map(String::from_utf8_lossy).unwrap_or_default(),
                    session.version.number()
                )),
            },
            ClientCommand::SetInfo { .. } => Frame::simple("OK"),
        },
        Command::Unwatch => Frame::simple("OK"),
        Command::Read(_) | Command::Write(_) => {
            Frame::error("ERR internal: key-space command in the wrong path")
        }
        Command::Multi | Command::Exec | Command::Discard | Command::Watch | Command::Reset => {
            Frame::error("ERR internal: transaction command in the wrong path")
        }
    }
}

/// TIME's array: seconds and microseconds since the Unix epoch, as bulk strings (as Redis;
/// a clock set before the epoch reads 0 0).
fn time_reply(now: std::time::SystemTime) -> Frame {
    let since = now.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Frame::Array(vec![
        Frame::Bulk(Bytes::from(since.as_secs().to_string())),
        Frame::Bulk(Bytes::from(since.subsec_micros().to_string())),
    ])
}

fn hello_reply(session: &mut Session, hello: Hello) -> Frame {
    if let Some(version) = hello.version {
        session.version = version;
    }
    if let Some(name) = hello.client_name {
        session.name = Some(name);
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

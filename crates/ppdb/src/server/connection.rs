//! One client connection: read RESP requests, run them, write replies in order.
//!
//! Pipelined requests are run concurrently where that cannot change their meaning: a run of
//! consecutive writes is submitted together (the log keeps their order), a run of consecutive
//! reads likewise, and a read never starts before the writes sent ahead of it on the same
//! connection have been applied, so a client always reads its own writes.

use super::context::ServerContext;
use super::resp::command::{ClientCommand, Command, CommandClass, Hello};
use super::resp::reply::command_query_reply;
use super::resp::{Frame, ProtocolVersion, RequestDecoder};
use crate::error::Error;
use bytes::{Bytes, BytesMut};
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
}

/// Serves one client until it disconnects, sends QUIT, or breaks the protocol.
pub async fn serve(mut stream: TcpStream, ctx: Arc<ServerContext>, id: u64) {
    let _ = stream.set_nodelay(true);
    let mut session = Session { id, version: ProtocolVersion::Resp2, name: None, closing: false };
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

/// Runs a batch of pipelined requests, appending their replies in order.
async fn run_batch(ctx: &ServerContext, session: &mut Session, batch: Vec<Vec<Bytes>>, out: &mut BytesMut) {
    let mut pending: Vec<futures::future::BoxFuture<'_, Frame>> = Vec::new();
    let mut pending_class = CommandClass::Connection;
    for args in batch {
        if session.closing {
            break;
        }
        ctx.stats.commands.fetch_add(1, Ordering::Relaxed);
        let command = match Command::parse(&args) {
            Ok(command) => command,
            Err(e) => {
                flush(&mut pending, session.version, out).await;
                Frame::from(&e).encode(session.version, out);
                continue;
            }
        };
        let class = command.class();
        if class != pending_class || class == CommandClass::Connection {
            flush(&mut pending, session.version, out).await;
            pending_class = class;
        }
        match command {
            Command::Read(read) => {
                let exec = ctx.executor.clone();
                pending.push(Box::pin(async move { to_frame(exec.read(&read).await) }));
            }
            Command::Write(write) => {
                let exec = ctx.executor.clone();
                pending.push(Box::pin(async move { to_frame(exec.write(&write).await) }));
            }
            other => {
                let frame = connection_command(ctx, session, other).await;
                frame.encode(session.version, out);
            }
        }
    }
    flush(&mut pending, session.version, out).await;
}

async fn flush(
    pending: &mut Vec<futures::future::BoxFuture<'_, Frame>>,
    version: ProtocolVersion,
    out: &mut BytesMut,
) {
    if pending.is_empty() {
        return;
    }
    for frame in futures::future::join_all(pending.drain(..)).await {
        frame.encode(version, out);
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
        Command::Ping(None) => Frame::simple("PONG"),
        Command::Ping(Some(message)) | Command::Echo(message) => Frame::Bulk(message),
        Command::Hello(hello) => hello_reply(session, hello),
        Command::Quit => {
            session.closing = true;
            Frame::simple("OK")
        }
        Command::Command(query) => command_query_reply(&query),
        Command::Info(sections) => {
            Frame::Verbatim { format: *b"txt", text: Bytes::from(ctx.info(&sections).await) }
        }
        Command::Select => Frame::simple("OK"),
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
        Command::Read(_) | Command::Write(_) => {
            Frame::error("ERR internal: key-space command in the wrong path")
        }
    }
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

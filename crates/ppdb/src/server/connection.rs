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
//!
//! The connection publishes what CLIENT LIST shows of it in the node's registry
//! ([`super::clients`]) and closes when CLIENT KILL asks, or, subscribed, when its user's
//! channel rules no longer allow one of its subscriptions (as Redis closes it); under CLIENT REPLY OFF or SKIP the
//! replies it withholds are computed and dropped ([`super::session::ReplySwitch`]).

use super::acl::Refusal;
use super::blocking;
use super::channels::pubsub_command;
use super::client::forward::ShardOp;
use super::clients::ClientRecord;
use super::context::ServerContext;
use super::pubsub::{Mailbox, SubscriptionKind, Subscriptions};
use super::resp::command::{
    refused_outside_multi, refused_while_subscribed, Admission, BlockingPop, Command, CommandClass, Queued,
    Transaction, TransactionError, WriteCommand,
};
use super::resp::push::delivery_frame;
use super::resp::reply::error_frame;
use super::resp::{Frame, ProtocolVersion, RequestDecoder};
use super::session::{session_command, Session};
use super::settings::{OutputBufferLimit, PUBSUB_OUTPUT_BUFFER_LIMIT};
use super::transaction::{self, ExecElement};
use super::wait::WrittenShards;
use crate::acl::AclUsers;
use crate::error::Error;
use crate::kv::{KvWrite, Reply};
use crate::node::clock::wall_clock_ms;
use crate::node::Router;
use crate::transport::tls::MaybeTls;
use bytes::{Buf, Bytes, BytesMut};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Bytes read from the socket at a time.
const READ_CHUNK_BYTES: usize = 16 * 1024;
/// Unsent reply bytes at which the connection stops running the client's pipeline and waits
/// for the client to take them: a client that sends without reading holds at most this much
/// (plus one window of replies) of the server's memory, and is closed by the write timeout.
const PIPELINE_UNSENT_BYTES_MAX: usize = 1024 * 1024;
/// Replies of a pipeline computed at once before the connection has seen how large they are:
/// one, so a pipeline of reads of large values never holds two of them before the first is sent.
const REPLY_WINDOW_INITIAL: usize = 1;
/// Most replies of a pipeline computed at once (each shard's group of them is one batch).
const REPLY_WINDOW_MAX: usize = 256;
/// Buffer capacity a connection keeps between requests; a larger buffer, left by a large
/// request or reply, is given back once empty.
const BUFFER_KEPT_BYTES_MAX: usize = 256 * 1024;
/// Longest wait for the socket's orderly shutdown after QUIT or a protocol error.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(1);

/// Why the server ends a connection.
#[derive(Debug)]
enum Close {
    /// The client closed it, or the socket failed.
    Gone,
    /// QUIT, or a protocol error, answered.
    Done,
    /// CLIENT KILL from another connection.
    Killed,
    /// Nothing received for `timeout` seconds.
    Idle { idle: Duration },
    /// A request larger than `client-query-buffer-limit`.
    QueryBuffer { bytes: usize, limit_bytes: u64 },
    /// Subscribed to a channel or pattern its user may no longer use, or its user deleted.
    ChannelsRevoked,
    /// Unsent replies over `client-output-buffer-limit`.
    OutputBuffer { unsent_bytes: usize, limit: OutputBufferLimit },
    /// The client took none of its replies for `client-write-timeout` seconds.
    WriteStalled { unsent_bytes: usize, stalled: Duration },
}

impl Close {
    /// Says why the connection closes, where an operator should hear of it.
    fn log(&self, client: SocketAddr) {
        match self {
            Close::Gone | Close::Done => {}
            Close::Killed => tracing::debug!(%client, "closing client killed by CLIENT KILL"),
            Close::Idle { idle } => tracing::debug!(%client, idle_s = idle.as_secs(), "closing idle client"),
            Close::ChannelsRevoked => tracing::info!(
                %client, "closing a subscriber whose user may no longer use one of its channels"
            ),
            Close::QueryBuffer { bytes, limit_bytes } => tracing::warn!(
                %client, query_buffer_bytes = bytes, client_query_buffer_limit = limit_bytes,
                "closing client that reached max query buffer length"
            ),
            Close::OutputBuffer { unsent_bytes, limit } => tracing::warn!(
                %client, unsent_bytes, hard_bytes = limit.hard_bytes, soft_bytes = limit.soft_bytes,
                soft_s = limit.soft_s, "client closed for overcoming of output buffer limits"
            ),
            Close::WriteStalled { unsent_bytes, stalled } => tracing::warn!(
                %client, unsent_bytes, stalled_s = stalled.as_secs(),
                "client closed: it took none of its replies within client-write-timeout"
            ),
        }
    }
}

/// How many replies of a pipeline are computed before they are encoded and, past
/// [`PIPELINE_UNSENT_BYTES_MAX`], sent: it starts small, doubles while replies are small, and
/// shrinks to what fits in [`PIPELINE_UNSENT_BYTES_MAX`] as soon as one is large, so pipelined
/// reads of large values hold a few of them at a time, not the whole pipeline.
#[derive(Debug)]
struct ReplyWindow {
    replies: usize,
}

impl ReplyWindow {
    /// Adjusts the window to the largest reply of the last round.
    fn observe(&mut self, largest_reply_bytes: usize) {
        let fit = PIPELINE_UNSENT_BYTES_MAX / largest_reply_bytes.max(1);
        self.replies = fit.min(self.replies * 2).clamp(1, REPLY_WINDOW_MAX);
    }
}

/// Serves one client until it disconnects, sends QUIT, breaks the protocol, or passes one of
/// the client limits (the log says which).
pub async fn serve(stream: MaybeTls, peer: SocketAddr, ctx: Arc<ServerContext>, id: u64) {
    let _ = stream.tcp().set_nodelay(true);
    let laddr = stream.tcp().local_addr().unwrap_or(ctx.report.client_addr);
    let record = Arc::new(ClientRecord::new(id, peer, laddr, stream.tcp().as_raw_fd()));
    let _registration = ctx.clients.register(Arc::clone(&record));
    let mailbox = Mailbox::new(id, PUBSUB_OUTPUT_BUFFER_LIMIT.hard_bytes);
    let subscriptions = Subscriptions::new(Arc::clone(&ctx.pubsub.registry), mailbox);
    let auth = ctx.access.session();
    let mut client = Client {
        stream,
        ctx,
        session: Session::new(record, subscriptions, auth),
        decoder: RequestDecoder::default(),
        input: BytesMut::with_capacity(READ_CHUNK_BYTES),
        output: BytesMut::with_capacity(READ_CHUNK_BYTES),
        over_soft_limit_since: None,
        window: ReplyWindow { replies: REPLY_WINDOW_INITIAL },
        channels_checked_against: None,
    };
    client.decoder = RequestDecoder::new(client.ctx.limits);
    client.run().await.log(peer);
}

/// One connection: its socket, buffers and session.
struct Client {
    stream: MaybeTls,
    ctx: Arc<ServerContext>,
    session: Session,
    decoder: RequestDecoder,
    /// Received bytes not yet parsed.
    input: BytesMut,
    /// Encoded replies not yet sent.
    output: BytesMut,
    /// When the unsent replies went over the soft output limit (none: they are under it).
    over_soft_limit_since: Option<Instant>,
    window: ReplyWindow,
    /// The users the subscriptions were last checked against (see [`Client::check_channels`]).
    channels_checked_against: Option<Arc<AclUsers>>,
}

impl Client {
    /// Reads, runs and answers requests, and writes the messages of its subscriptions, until
    /// the connection ends; why it ended.
    async fn run(&mut self) -> Close {
        loop {
            if let Err(close) = self.check_channels() {
                return close;
            }
            if let Err(close) = self.read().await {
                return close;
            }
            let (batch, protocol_error) = self.decode();
            if let Err(close) = self.run_batch(batch).await {
                return close;
            }
            if let Some(frame) = &protocol_error {
                frame.encode(self.session.version, &mut self.output);
                self.session.closing = true;
            }
            if let Err(close) = self.deliver() {
                return close;
            }
            if let Err(close) = self.flush().await {
                return close;
            }
            if self.session.record.is_killed() {
                return Close::Killed;
            }
            if self.session.closing {
                let _ = tokio::time::timeout(SHUTDOWN_TIMEOUT, self.stream.shutdown()).await;
                return Close::Done;
            }
            self.shrink_buffers();
        }
    }

    /// Waits for what the client sends, within the idle timeout (none while subscribed, as in
    /// Redis) and the query buffer limit, or for messages of its subscriptions.
    async fn read(&mut self) -> Result<(), Close> {
        self.input.reserve(READ_CHUNK_BYTES);
        let record = Arc::clone(&self.session.record);
        let mailbox = Arc::clone(self.session.subscriptions.mailbox());
        let subscribed = self.session.subscriptions.is_active();
        let read = async {
            tokio::select! {
                received = self.stream.read_buf(&mut self.input) => Ok(Some(received)),
                () = record.killed() => Err(Close::Killed),
                () = mailbox.ready() => Ok(None),
                // A subscriber checks its channels again when the users change.
                () = self.session.auth.users_changed(), if subscribed => Ok(None),
            }
        };
        let idle_timeout =
            self.ctx.settings.clients.idle_timeout().filter(|_| !self.session.subscriptions.is_active());
        let received = match idle_timeout {
            Some(idle) => tokio::time::timeout(idle, read).await.map_err(|_| Close::Idle { idle })??,
            None => read.await?,
        };
        let Some(received) = received else { return Ok(()) };
        let Ok(n @ 1..) = received else { return Err(Close::Gone) };
        self.ctx.stats.net_input_bytes.fetch_add(n as u64, Ordering::Relaxed);
        self.publish_buffers();
        let bytes = self.input.len() + self.decoder.held_bytes();
        let limit_bytes = self.ctx.settings.clients.query_buffer_bytes_max();
        if bytes as u64 > limit_bytes {
            return Err(Close::QueryBuffer { bytes, limit_bytes });
        }
        Ok(())
    }

    /// Closes a subscribed connection whose user may no longer hold one of its subscriptions,
    /// or was deleted, as Redis closes it when the user's channel rules change. Checked once
    /// per state of the users: new subscriptions passed the ACL check as they were made.
    fn check_channels(&mut self) -> Result<(), Close> {
        if !self.session.subscriptions.is_active() {
            return Ok(());
        }
        let users = self.session.auth.users();
        if self.channels_checked_against.as_ref().is_some_and(|checked| Arc::ptr_eq(checked, &users)) {
            return Ok(());
        }
        self.channels_checked_against = Some(users);
        let subscriptions = self.session.subscriptions.all();
        let held = subscriptions.map(|(kind, name)| (name.as_ref(), kind == SubscriptionKind::Pattern));
        if self.session.auth.may_keep(held) {
            Ok(())
        } else {
            Err(Close::ChannelsRevoked)
        }
    }

    /// Appends the messages waiting in the connection's mailbox to its unsent replies; closes
    /// it if the mailbox passed the pub/sub output buffer limit.
    fn deliver(&mut self) -> Result<(), Close> {
        let deliveries =
            self.session.subscriptions.mailbox().take().map_err(|closed| Close::OutputBuffer {
                unsent_bytes: usize::try_from(closed.queued_bytes).unwrap_or(usize::MAX),
                limit: PUBSUB_OUTPUT_BUFFER_LIMIT,
            })?;
        for delivery in deliveries {
            delivery_frame(delivery).encode(self.session.version, &mut self.output);
        }
        Ok(())
    }

    /// The complete requests received, and the protocol error that ends them, if any.
    fn decode(&mut self) -> (Vec<Vec<Bytes>>, Option<Frame>) {
        let mut batch = Vec::new();
        loop {
            match self.decoder.decode(&mut self.input) {
                Ok(Some(args)) if args.is_empty() => {}
                Ok(Some(args)) => batch.push(args),
                Ok(None) => return (batch, None),
                Err(e) => return (batch, Some(Frame::from(&e))),
            }
        }
    }

    /// Sends every unsent reply, within the write timeout and the output buffer limits.
    async fn flush(&mut self) -> Result<(), Close> {
        while !self.output.is_empty() {
            self.check_output_limits()?;
            let write_timeout = self.ctx.settings.clients.write_timeout();
            let wait = min_duration(write_timeout, self.soft_limit_left());
            let started = Instant::now();
            let mailbox = Arc::clone(self.session.subscriptions.mailbox());
            let write = async {
                tokio::select! {
                    written = self.stream.write(&self.output) => written,
                    // A subscriber that does not read: its mailbox filled up meanwhile.
                    () = mailbox.closed() => Ok(0),
                }
            };
            let written = match wait {
                Some(wait) => match tokio::time::timeout(wait, write).await {
                    Ok(written) => written,
                    Err(_) => {
                        self.check_output_limits()?;
                        let stalled = started.elapsed();
                        if write_timeout.is_some_and(|limit| stalled >= limit) {
                            return Err(Close::WriteStalled { unsent_bytes: self.output.len(), stalled });
                        }
                        continue;
                    }
                },
                None => write.await,
            };
            match written {
                Ok(n) if n > 0 => {
                    self.output.advance(n);
                    self.ctx.stats.net_output_bytes.fetch_add(n as u64, Ordering::Relaxed);
                }
                _ => return self.deliver().and(Err(Close::Gone)),
            }
        }
        self.over_soft_limit_since = None;
        self.flush_tls().await?;
        self.publish_buffers();
        Ok(())
    }

    /// Sends what TLS kept of the replies when the socket would not take them all (plain TCP
    /// keeps nothing), within the write timeout.
    async fn flush_tls(&mut self) -> Result<(), Close> {
        if !matches!(self.stream, MaybeTls::Tls(_)) {
            return Ok(());
        }
        let started = Instant::now();
        let flushed = match self.ctx.settings.clients.write_timeout() {
            Some(limit) => match tokio::time::timeout(limit, self.stream.flush()).await {
                Ok(flushed) => flushed,
                Err(_) => return Err(Close::WriteStalled { unsent_bytes: 0, stalled: started.elapsed() }),
            },
            None => self.stream.flush().await,
        };
        flushed.map_err(|_| Close::Gone)
    }

    /// Shows the connection's buffers in CLIENT LIST.
    fn publish_buffers(&self) {
        let (input, output) = (&self.input, &self.output);
        self.session.record.set_buffers(input.len(), input.capacity(), output.len(), output.capacity());
        self.session.subscriptions.mailbox().note_unsent(output.len());
    }

    /// Closes the client if its unsent replies (and messages, while subscribed) pass the hard
    /// limit of its class, or have stayed over the soft limit for its seconds.
    fn check_output_limits(&mut self) -> Result<(), Close> {
        let limit = self.output_limit();
        let unsent_bytes = self.output.len() + self.session.subscriptions.mailbox().queued_bytes();
        let over = |bytes: u64| bytes > 0 && unsent_bytes as u64 > bytes;
        if over(limit.hard_bytes) {
            return Err(Close::OutputBuffer { unsent_bytes, limit });
        }
        if !over(limit.soft_bytes) {
            self.over_soft_limit_since = None;
            return Ok(());
        }
        let since = *self.over_soft_limit_since.get_or_insert_with(Instant::now);
        if since.elapsed() >= Duration::from_secs(limit.soft_s) {
            return Err(Close::OutputBuffer { unsent_bytes, limit });
        }
        Ok(())
    }

    /// The output buffer limit of the connection's class: pub/sub while it subscribes to
    /// anything, normal otherwise.
    fn output_limit(&self) -> OutputBufferLimit {
        if self.session.subscriptions.is_active() {
            PUBSUB_OUTPUT_BUFFER_LIMIT
        } else {
            self.ctx.settings.clients.output_buffer()
        }
    }

    /// Time left before the soft output limit closes the client (none: it is under it).
    fn soft_limit_left(&self) -> Option<Duration> {
        let since = self.over_soft_limit_since?;
        let soft = Duration::from_secs(self.output_limit().soft_s);
        Some(soft.saturating_sub(since.elapsed()))
    }

    /// Gives back buffer memory left by a large request or reply.
    fn shrink_buffers(&mut self) {
        if self.input.is_empty() && self.input.capacity() > BUFFER_KEPT_BYTES_MAX {
            self.input = BytesMut::with_capacity(READ_CHUNK_BYTES);
        }
        if self.output.is_empty() && self.output.capacity() > BUFFER_KEPT_BYTES_MAX {
            self.output = BytesMut::with_capacity(READ_CHUNK_BYTES);
        }
    }

    /// Encodes the replies computed so far, then, if the unsent replies have reached
    /// [`PIPELINE_UNSENT_BYTES_MAX`], waits until the client has taken them.
    async fn drain(&mut self, pipeline: &mut Pipeline<'_>) -> Result<(), Close> {
        if let Some(largest) = pipeline.drain(self.session.version, &mut self.output).await {
            self.window.observe(largest);
        }
        self.check_output_limits()?;
        if self.output.len() >= PIPELINE_UNSENT_BYTES_MAX {
            self.flush().await?;
        }
        Ok(())
    }

    /// Runs a batch of pipelined requests, appending their replies in order. Consecutive
    /// single-shard reads (or writes) are grouped per shard: each shard's group goes to its
    /// leader as one batch, in order, and different shards run at the same time. Commands
    /// spanning shards, connection commands, and a switch between reads and writes wait for
    /// what came before. At most a window of replies is computed before they are encoded, and
    /// the pipeline waits while the client leaves too many unread.
    async fn run_batch(&mut self, batch: Vec<Vec<Bytes>>) -> Result<(), Close> {
        let ctx = Arc::clone(&self.ctx);
        let mut pipeline = Pipeline {
            ctx: &ctx,
            slots: Vec::new(),
            request: 0,
            lanes: BTreeMap::new(),
            lanes_class: CommandClass::Connection,
        };
        // CLIENT LIST's `cmd` is the last request of the batch (and each connection command,
        // noted as it runs): one update per batch, not per pipelined request.
        let requests = batch.len();
        for (position, args) in batch.into_iter().enumerate() {
            if self.session.closing {
                break;
            }
            if position + 1 == requests {
                self.session.record.note_request(&args);
            }
            if pipeline.slots.len() >= self.window.replies {
                self.drain(&mut pipeline).await?;
            }
            ctx.stats.commands.fetch_add(1, Ordering::Relaxed);
            pipeline.request = position;
            self.run_request(&mut pipeline, args).await?;
            if self.session.replies.silenced() {
                pipeline.silence_request();
            }
            self.session.replies.advance();
        }
        self.session.record.set_multi(self.session.transaction.as_ref().map(Transaction::len));
        self.drain(&mut pipeline).await
    }

    /// Runs one request of a pipeline: its reply takes the pipeline's next position.
    async fn run_request(&mut self, pipeline: &mut Pipeline<'_>, args: Vec<Bytes>) -> Result<(), Close> {
        let ctx = pipeline.ctx;
        if let Err(refusal) = self.session.auth.check(&args) {
            // Inside MULTI a refused command aborts the transaction, as Redis flags it.
            if let Some(transaction) = self.session.transaction.as_mut() {
                transaction.abort();
            }
            self.session.closing |= refusal == Refusal::UserGone;
            pipeline.answer(self.session.auth.refusal_frame(&refusal));
            return Ok(());
        }
        let admitted = refuse_over_maxmemory(ctx, &mut self.session, &args)
            .and_then(|()| admit(&mut self.session, &args));
        let command = match admitted {
            Ok(command) => command,
            Err(frame) => {
                pipeline.answer(frame);
                return Ok(());
            }
        };
        if let Command::Write(write) = &command {
            note_written(&mut self.session.written, write, ctx.executor.router());
        }
        let class = command.class();
        if class != pipeline.lanes_class {
            pipeline.run_lanes().await;
            pipeline.lanes_class = class;
        }
        match command {
            Command::Read(read) => match ctx.executor.plan_read(&read) {
                Some((shard, op)) => pipeline.queue(shard, op),
                None => {
                    pipeline.run_lanes().await;
                    pipeline.answer(to_frame(ctx.executor.read(&read).await));
                }
            },
            Command::Write(write) => match unstamped(&write) {
                Err(e) => pipeline.answer(error_frame(&e)),
                Ok(entry) => match ctx.executor.write_shard(&entry) {
                    Some(shard) => pipeline.queue(shard, ShardOp::Write(entry)),
                    None => {
                        pipeline.run_lanes().await;
                        pipeline.answer(to_frame(ctx.executor.write(entry).await));
                    }
                },
            },
            Command::PubSub(command) => {
                self.session.record.note_request(&args);
                self.drain(pipeline).await?;
                let frames = pubsub_command(ctx, &mut self.session, command);
                // Messages that came meanwhile are written before its replies, as Redis writes
                // them as they come: a PUBLISH to the connection's own channel answers after
                // its message.
                self.deliver()?;
                for frame in frames {
                    pipeline.answer(frame);
                }
            }
            Command::Eval(eval) => match ctx.script_entry(&mut self.session.auth, eval) {
                Ok((shard, entry)) => {
                    self.session.written.note(shard);
                    pipeline.queue(shard, ShardOp::Write(entry));
                }
                Err(frame) => pipeline.answer(frame),
            },
            Command::Block(pop) => {
                // The replies before it are sent first: it may wait a long time.
                self.drain(pipeline).await?;
                self.flush().await?;
                let reply = self.block(&pop).await?;
                pipeline.answer(to_frame(reply));
            }
            other => {
                self.session.record.note_request(&args);
                self.session.record.set_multi(self.session.transaction.as_ref().map(Transaction::len));
                self.drain(pipeline).await?;
                let frame = connection_command(ctx, &mut self.session, other).await;
                pipeline.answer(frame);
            }
        }
        Ok(())
    }
}

/// Notes the shards `write` goes to, for WAIT (every shard for a write without keys).
fn note_written(written: &mut WrittenShards, write: &WriteCommand, router: Router) {
    let keys = write.keys();
    if keys.is_empty() {
        written.note_all();
    }
    for key in keys {
        written.note(router.shard_of(key).0);
    }
}

impl Client {
    /// Runs a blocking pop while watching the socket: a client that disconnects stops
    /// waiting (and so never pops an element it could not receive). What the client sends
    /// meanwhile waits in the input buffer, within the query buffer limit.
    async fn block(&mut self, pop: &BlockingPop) -> Result<Result<Reply, Error>, Close> {
        let served = blocking::serve(&self.ctx.executor, pop);
        tokio::pin!(served);
        loop {
            self.input.reserve(READ_CHUNK_BYTES);
            tokio::select! {
                reply = &mut served => return Ok(reply),
                received = self.stream.read_buf(&mut self.input) => {
                    if !matches!(received, Ok(n) if n > 0) {
                        return Err(Close::Gone);
                    }
                    let bytes = self.input.len() + self.decoder.held_bytes();
                    let limit_bytes = self.ctx.settings.clients.query_buffer_bytes_max();
                    if bytes as u64 > limit_bytes {
                        return Err(Close::QueryBuffer { bytes, limit_bytes });
                    }
                }
            }
        }
    }
}

/// The shorter of two optional durations (none: no limit).
fn min_duration(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// One position of a pipeline: its reply once known, whether CLIENT REPLY withholds it, and
/// the request of the batch it answers (a pub/sub command answers several).
#[derive(Default)]
struct Slot {
    reply: Option<Frame>,
    silent: bool,
    request: usize,
}

/// Replies of the pipelined commands since the last drain, by position.
struct Pipeline<'a> {
    ctx: &'a ServerContext,
    slots: Vec<Slot>,
    /// The position in the batch of the request running.
    request: usize,
    /// Single-shard operations waiting to run: per shard, (slot, operation) in client order.
    lanes: BTreeMap<u64, Vec<(usize, ShardOp)>>,
    /// Reads or writes: the two never share a round, so a read sees the writes before it.
    lanes_class: CommandClass,
}

impl Pipeline<'_> {
    /// Queues a single-shard operation on its shard's lane, its reply in the next position.
    fn queue(&mut self, shard: u64, op: ShardOp) {
        self.slots.push(Slot { request: self.request, ..Slot::default() });
        let slot = self.slots.len() - 1;
        self.lanes.entry(shard).or_default().push((slot, op));
    }

    /// Takes a reply already decided, in the next position.
    fn answer(&mut self, frame: Frame) {
        self.slots.push(Slot { reply: Some(frame), silent: false, request: self.request });
    }

    /// Withholds the replies of the request running (CLIENT REPLY OFF or SKIP).
    fn silence_request(&mut self) {
        let request = self.request;
        self.slots
            .iter_mut()
            .rev()
            .take_while(|slot| slot.request == request)
            .for_each(|slot| slot.silent = true);
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
                self.slots[slot].reply = Some(to_frame(result));
            }
        }
    }

    /// Runs everything waiting and appends all replies so far, in order; the size of the
    /// largest (none if there was no reply).
    async fn drain(&mut self, version: ProtocolVersion, out: &mut BytesMut) -> Option<usize> {
        self.run_lanes().await;
        let mut largest = None;
        for slot in self.slots.drain(..).filter(|slot| !slot.silent) {
            let before = out.len();
            let frame = slot.reply.unwrap_or_else(|| Frame::error("ERR internal: missing reply"));
            frame.encode(version, out);
            largest = largest.max(Some(out.len() - before));
        }
        largest
    }
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

/// The command to run now, or the reply already decided: a parse error, a command a subscribed
/// RESP2 connection may not run, or, inside MULTI, the answer to queueing the request.
fn admit(session: &mut Session, args: &[Bytes]) -> Result<Command, Frame> {
    if let Some(error) = refused_while_subscribed(args).filter(|_| session.subscribed_resp2()) {
        return Err(Frame::from(&error));
    }
    let Some(transaction) = session.transaction.as_mut() else {
        let command = Command::parse(args).map_err(|e| Frame::error(refused_outside_multi(e)))?;
        // An expiry that overflows the clock is the client's error, answered as Redis does.
        if let Command::Write(write) = &command {
            write.check_times(wall_clock_ms()).map_err(|e| Frame::from(&e))?;
        }
        return Ok(command);
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

/// The log entry of `command`, for the shard's leader to stamp with its time. This node's clock
/// only checks relative expiries for overflow, as Redis does.
fn unstamped(command: &WriteCommand) -> Result<KvWrite, Error> {
    command.resolve(wall_clock_ms()).map_err(|e| Error::State(format!("cannot resolve write: {e}")))
}

fn to_frame(result: Result<Reply, Error>) -> Frame {
    match result {
        Ok(reply) => Frame::from(reply),
        Err(e) => error_frame(&e),
    }
}

async fn connection_command(ctx: &ServerContext, session: &mut Session, command: Command) -> Frame {
    match command {
        Command::Multi | Command::Exec | Command::Discard | Command::Watch { .. } | Command::Reset => {
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
        Command::Exec => {
            let Some(transaction) = session.transaction.take() else {
                return error(TransactionError::ExecWithoutMulti);
            };
            // EXEC unwatches whatever it answers, as Redis does.
            let watched = std::mem::take(&mut session.watched);
            let queued = match transaction.into_queued() {
                Ok(queued) => queued,
                Err(abort) => return error(abort),
            };
            for queued in &queued {
                if let Queued::Command(Command::Write(write)) = queued {
                    note_written(&mut session.written, write, ctx.executor.router());
                }
            }
            match transaction::exec(&ctx.executor, queued, watched).await {
                Ok(elements) => exec_reply(ctx, session, elements).await,
                Err(frame) => frame,
            }
        }
        Command::Discard => match session.transaction.take() {
            None => error(TransactionError::DiscardWithoutMulti),
            Some(_) => {
                session.watched.clear();
                Frame::simple("OK")
            }
        },
        Command::Watch { .. } if session.transaction.is_some() => error(TransactionError::WatchInsideMulti),
        Command::Watch { keys } => {
            match transaction::watch(&ctx.executor, keys, &mut session.watched).await {
                Ok(()) => Frame::simple("OK"),
                Err(error) => error_frame(&error),
            }
        }
        Command::Reset => {
            session.reset();
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
            // (Un)subscribing several channels answers several frames; each is an element.
            ExecElement::Local(Command::PubSub(command)) => {
                frames.extend(pubsub_command(ctx, session, command));
                continue;
            }
            // Inside a transaction WAIT does not block (Redis denies blocking there): it
            // answers at once, as if every count were enough.
            ExecElement::Local(Command::Wait { timeout_ms, .. }) => {
                let at_once = Command::Wait { replicas: i64::MIN, timeout_ms };
                session_command(ctx, session, at_once).await
            }
            ExecElement::Local(command) => session_command(ctx, session, command).await,
        });
    }
    Frame::Array(frames)
}

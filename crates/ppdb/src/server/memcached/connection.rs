//! The memcached listener and its connections: read, parse every complete request, run each
//! in order, write the replies, read again.
//!
//! Connections count against `maxclients` together with RESP's; one over it is told
//! `SERVER_ERROR Too many open connections` and closed, as memcached does. A data block being
//! skipped (too large, or a bad command's) is dropped as it arrives, never buffered whole.

use super::parse::{parse, Parsed};
use super::reply;
use super::session::{Flow, McSession};
use super::{McStats, MemcachedSettings};
use crate::server::context::ServerContext;
use crate::transport::tls::{self, MaybeTls};
use bytes::{Buf, BytesMut};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Pause after a failed accept before the next one.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(10);
/// Longest time spent telling a refused client why.
const REFUSAL_WRITE_TIMEOUT: Duration = Duration::from_secs(1);
/// Replies gathered before they are written, while pipelined requests remain.
const REPLY_FLUSH_BYTES: usize = 64 * 1024;
/// Bytes asked of the socket at a time.
const READ_CHUNK_BYTES: usize = 16 * 1024;

/// Accepts memcached clients until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    ctx: Arc<ServerContext>,
    settings: MemcachedSettings,
    mut shutdown: watch::Receiver<bool>,
) {
    let settings = Arc::new(settings);
    let stats = Arc::new(McStats::default());
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "memcached accept failed");
                tokio::time::sleep(ACCEPT_RETRY_DELAY).await;
                continue;
            }
        };
        stats.connections_total.fetch_add(1, Ordering::Relaxed);
        let open = &ctx.stats.connections_open;
        if open.load(Ordering::Relaxed) >= ctx.settings.clients.maxclients() {
            stats.connections_refused.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(refuse(stream));
            continue;
        }
        open.fetch_add(1, Ordering::Relaxed);
        let (ctx, settings, stats) = (Arc::clone(&ctx), Arc::clone(&settings), Arc::clone(&stats));
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            if let Some(stream) = tls::accept_client(ctx.tls.as_ref(), stream).await {
                serve_connection(stream, &ctx, &settings, &stats).await;
            }
            ctx.stats.connections_open.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

async fn refuse(mut stream: TcpStream) {
    let refusal = b"SERVER_ERROR Too many open connections\r\n";
    let _ = tokio::time::timeout(REFUSAL_WRITE_TIMEOUT, stream.write_all(refusal)).await;
}

/// Serves one connection until the client leaves, quits, or sends a line too long.
async fn serve_connection(
    mut stream: MaybeTls,
    ctx: &ServerContext,
    settings: &MemcachedSettings,
    stats: &McStats,
) {
    let session = McSession { ctx, settings, stats };
    let mut input = BytesMut::with_capacity(READ_CHUNK_BYTES);
    let mut out = Vec::new();
    // Bytes still to drop from the input: the rest of a refused data block.
    let mut skip = 0usize;
    loop {
        let mut flow = Flow::Continue;
        loop {
            if skip > 0 {
                let dropped = skip.min(input.len());
                input.advance(dropped);
                skip -= dropped;
                if skip > 0 {
                    break;
                }
            }
            match parse(&input, settings.item_bytes_max) {
                Parsed::Incomplete => break,
                Parsed::Request(request, consumed) => {
                    input.advance(consumed);
                    ctx.stats.commands.fetch_add(1, Ordering::Relaxed);
                    flow = session.run(request, &mut out).await;
                }
                Parsed::Refused { reply, consumed, close } => {
                    if let Some(text) = reply {
                        reply::line(&mut out, &text);
                    }
                    skip = consumed;
                    if close {
                        flow = Flow::Close;
                    }
                }
            }
            if flow == Flow::Close {
                break;
            }
            if out.len() >= REPLY_FLUSH_BYTES && write(&mut stream, &mut out, ctx).await.is_err() {
                return;
            }
        }
        if write(&mut stream, &mut out, ctx).await.is_err() || flow == Flow::Close {
            return;
        }
        input.reserve(READ_CHUNK_BYTES);
        match stream.read_buf(&mut input).await {
            Ok(0) | Err(_) => return,
            Ok(read) => {
                ctx.stats.net_input_bytes.fetch_add(read as u64, Ordering::Relaxed);
            }
        }
    }
}

async fn write(stream: &mut MaybeTls, out: &mut Vec<u8>, ctx: &ServerContext) -> std::io::Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    stream.write_all(out).await?;
    // Nothing to do on plain TCP; TLS holds what the socket did not take.
    stream.flush().await?;
    ctx.stats.net_output_bytes.fetch_add(out.len() as u64, Ordering::Relaxed);
    out.clear();
    Ok(())
}

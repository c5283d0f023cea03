//! The RESP listener: accepts client connections, within `maxclients`, each served by its own
//! task.

use super::connection;
use super::context::ServerContext;
use super::resp::{Frame, ProtocolVersion};
use crate::transport::tls;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Pause after a failed accept (out of file descriptors, most often) before the next one, so
/// the loop does not spin while the condition lasts.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(10);
/// Longest time spent telling a refused client why, before closing it.
const REFUSAL_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// Accepts clients until `shutdown` turns true; at most `maxclients` at once (the setting in
/// force when a client arrives). Clients beyond it are answered with Redis's error and closed.
pub async fn serve(listener: TcpListener, ctx: Arc<ServerContext>, mut shutdown: watch::Receiver<bool>) {
    let mut next_id: u64 = 1;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        let (stream, peer) = match accepted {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_RETRY_DELAY).await;
                continue;
            }
        };
        let stats = &ctx.stats;
        stats.connections_total.fetch_add(1, Ordering::Relaxed);
        // Counted here, in the one accepting task, so the check and the count cannot race.
        if stats.connections_open.load(Ordering::Relaxed) >= ctx.settings.clients.maxclients() {
            stats.connections_refused.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(refuse(stream));
            continue;
        }
        let open = OpenConnection::count(Arc::clone(&ctx));
        let id = next_id;
        next_id += 1;
        let ctx = Arc::clone(&ctx);
        tokio::spawn(async move {
            if let Some(stream) = tls::accept_client(ctx.tls.as_ref(), stream).await {
                connection::serve(stream, peer, ctx, id).await;
            }
            drop(open);
        });
    }
}

/// One open connection in `connections_open`, until dropped (even if its task panics).
struct OpenConnection(Arc<ServerContext>);

impl OpenConnection {
    fn count(ctx: Arc<ServerContext>) -> OpenConnection {
        ctx.stats.connections_open.fetch_add(1, Ordering::Relaxed);
        OpenConnection(ctx)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.stats.connections_open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Tells a client over `maxclients` why it is refused, then closes it, as Redis does.
async fn refuse(mut stream: TcpStream) {
    let refusal = Frame::error("ERR max number of clients reached").to_bytes(ProtocolVersion::Resp2);
    let _ = tokio::time::timeout(REFUSAL_WRITE_TIMEOUT, stream.write_all(&refusal)).await;
}

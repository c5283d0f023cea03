//! The RESP listener: accepts client connections, within a limit, each served by its own task.

use super::connection;
use super::context::ServerContext;
use super::resp::{Frame, ProtocolVersion};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

/// Accepts clients until `shutdown` turns true; at most `connections_max` at once (more are
/// answered with an error and closed, as Redis does with maxclients).
pub async fn serve(
    listener: TcpListener,
    ctx: Arc<ServerContext>,
    connections_max: usize,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(connections_max));
    let mut next_id: u64 = 1;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        let (mut stream, _) = match accepted {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        ctx.stats.connections_total.fetch_add(1, Ordering::Relaxed);
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            ctx.stats.connections_refused.fetch_add(1, Ordering::Relaxed);
            let refusal = Frame::error("ERR max number of clients reached").to_bytes(ProtocolVersion::Resp2);
            tokio::spawn(async move {
                let _ = stream.write_all(&refusal).await;
            });
            continue;
        };
        let id = next_id;
        next_id += 1;
        let ctx = Arc::clone(&ctx);
        tokio::spawn(async move {
            ctx.stats.connections_open.fetch_add(1, Ordering::Relaxed);
            connection::serve(stream, Arc::clone(&ctx), id).await;
            ctx.stats.connections_open.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
        });
    }
}

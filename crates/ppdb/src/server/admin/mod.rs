//! The admin listener: `/metrics` (Prometheus text), `/health`, `/status` (JSON), and
//! membership changes: `POST /cluster/leave` (this node leaves gracefully) and
//! `POST /cluster/remove/{id}` (an operator removes a node).
//!
//! It speaks plain HTTP, or HTTPS with the node's certificate when the node has TLS settings
//! (reloaded with the other ports' TLS files). Who may change the cluster is [`guard`]'s to
//! decide: the admin token, or over HTTPS a client certificate of the cluster CA.
//!
//! The listener is bounded like the client port: at most [`ADMIN_CONNECTIONS_MAX`] connections,
//! the TLS handshake and then the headers (at most [`ADMIN_HEADER_BYTES_MAX`]) each read within
//! [`ADMIN_HEADER_READ_TIMEOUT`], one request per connection with a body of at most
//! [`ADMIN_BODY_BYTES_MAX`], and the whole exchange within [`ADMIN_REQUEST_TIMEOUT`].

pub mod guard;

use super::report::{prometheus, NodeReport};
use crate::error::{Error, ErrorCode};
use crate::transport::tls::{MaybeTls, TlsContext};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
pub use guard::{AdminClient, AdminPolicy, ADMIN_BODY_BYTES_MAX, ADMIN_REQUEST_HEADER};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use ppdb_raft::NodeId;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{watch, Semaphore};

/// Admin connections served at once; more are closed at once.
pub const ADMIN_CONNECTIONS_MAX: usize = 64;
/// Largest request line and headers (hyper's smallest read buffer is 8 KiB).
pub const ADMIN_HEADER_BYTES_MAX: usize = 16 * 1024;
/// Most header fields in one request.
pub const ADMIN_HEADERS_MAX: usize = 64;
/// Longest time a client may take to complete the TLS handshake, and then to send its request
/// line and headers.
pub const ADMIN_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest time one connection (one request and its answer) may last; above the longest a
/// membership change waits for its log entry.
pub const ADMIN_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves the admin endpoints on `addr` until `shutdown` turns true: over HTTPS with `tls`,
/// where a client certificate of the cluster CA is an admin credential beside `token`.
pub async fn serve(
    addr: SocketAddr,
    report: NodeReport,
    token: Option<String>,
    tls: Option<TlsContext>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let policy = Arc::new(AdminPolicy { token, certificates: tls.is_some() });
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/status", get(status))
        .route("/cluster/leave", post(leave))
        .route("/cluster/remove/:id", post(remove))
        .layer(axum::middleware::from_fn(move |request, next| {
            guard::refuse_unsafe(Arc::clone(&policy), request, next)
        }))
        .layer(DefaultBodyLimit::max(ADMIN_BODY_BYTES_MAX))
        .with_state(report);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let slots = Arc::new(Semaphore::new(ADMIN_CONNECTIONS_MAX));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.wait_for(|stop| *stop) => return Ok(()),
        };
        let Ok((stream, peer)) = accepted else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::debug!(%peer, "admin connection refused: {ADMIN_CONNECTIONS_MAX} already open");
            continue;
        };
        let (app, tls) = (app.clone(), tls.clone());
        tokio::spawn(async move {
            if let Some(stream) = secure(stream, peer, tls.as_ref()).await {
                serve_connection(stream, app).await;
            }
            drop(slot);
        });
    }
}

/// The connection as the admin port serves it: plain without `tls`, otherwise once the TLS
/// handshake completed within [`ADMIN_HEADER_READ_TIMEOUT`] (`None` when it did not: a plain
/// HTTP request to an HTTPS port, a certificate not of the CA, a client too slow).
async fn secure(stream: TcpStream, peer: SocketAddr, tls: Option<&TlsContext>) -> Option<MaybeTls> {
    let Some(tls) = tls else { return Some(MaybeTls::Plain(stream)) };
    match tokio::time::timeout(ADMIN_HEADER_READ_TIMEOUT, tls.accept_admin(stream)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(error)) => {
            tracing::info!(%peer, %error, "admin TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::info!(%peer, "admin TLS handshake timed out");
            None
        }
    }
}

/// Serves one request on `stream` within the header and time limits; the request carries
/// what the connection tells of its client ([`AdminClient`]).
async fn serve_connection(stream: MaybeTls, app: Router) {
    let client = AdminClient { certificate: stream.peer_identity() };
    let app = app.layer(Extension(client));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(ADMIN_HEADER_READ_TIMEOUT)
        .max_buf_size(ADMIN_HEADER_BYTES_MAX)
        .max_headers(ADMIN_HEADERS_MAX)
        .keep_alive(false);
    let connection = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
    let _ = tokio::time::timeout(ADMIN_REQUEST_TIMEOUT, connection).await;
}

async fn metrics(State(report): State<NodeReport>) -> Response {
    match report.status().await {
        Ok(doc) => {
            let text = prometheus(&doc) + &report.acl.prometheus(report.node.0);
            ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
        }
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

/// 200 when the node runs and every shard it hosts knows a leader; 503 otherwise.
async fn health(State(report): State<NodeReport>) -> Response {
    match report.status().await {
        Ok(doc) if doc.shards.iter().all(|s| s.leader != 0) => (StatusCode::OK, "ok\n").into_response(),
        Ok(doc) => {
            let leaderless: Vec<String> =
                doc.shards.iter().filter(|s| s.leader == 0).map(|s| s.shard.to_string()).collect();
            (StatusCode::SERVICE_UNAVAILABLE, format!("no leader for shards {}\n", leaderless.join(",")))
                .into_response()
        }
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
    }
}

async fn status(State(report): State<NodeReport>) -> Response {
    match report.status().await {
        Ok(doc) => axum::Json(doc).into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

/// This node leaves the cluster: it hands its leaderships over, is removed from every group,
/// and stops once the directory records it as removed.
async fn leave(State(report): State<NodeReport>) -> Response {
    let node = report.node;
    membership_answer(report.membership.remove(node).await, node, "is leaving")
}

/// Removes node `id` from the cluster (graceful if it is running, or clean-up if it failed).
async fn remove(State(report): State<NodeReport>, Path(id): Path<u64>) -> Response {
    let node = NodeId(id);
    membership_answer(report.membership.remove(node).await, node, "is being removed")
}

fn membership_answer(result: Result<(), Error>, node: NodeId, doing: &str) -> Response {
    match result {
        Ok(()) => (StatusCode::OK, format!("node {node} {doing}\n")).into_response(),
        Err(e) => {
            let status = match e.code() {
                ErrorCode::State => StatusCode::CONFLICT,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            (status, format!("{}: {e}\n", e.code())).into_response()
        }
    }
}

//! The HTTP admin listener: `/metrics` (Prometheus text), `/health`, `/status` (JSON), and
//! membership changes: `POST /cluster/leave` (this node leaves gracefully) and
//! `POST /cluster/remove/{id}` (an operator removes a node).
//!
//! The listener is bounded like the client port: at most [`ADMIN_CONNECTIONS_MAX`] connections,
//! one request each, headers of at most [`ADMIN_HEADER_BYTES_MAX`] read within
//! [`ADMIN_HEADER_READ_TIMEOUT`], bodies of at most [`ADMIN_BODY_BYTES_MAX`], and the whole
//! exchange within [`ADMIN_REQUEST_TIMEOUT`]. A request that changes the cluster must carry the
//! [`ADMIN_REQUEST_HEADER`] header and no `Origin`: a web page cannot send a custom header to
//! another origin without a CORS preflight, which this listener never grants, and a browser
//! marks every cross-site (or DNS-rebound) POST with its `Origin`, so no page a browser visits
//! can remove a node.
//!
//! When the node has an admin token (`--admin-token`), a request that changes the cluster
//! must also carry it (`Authorization: Bearer <token>`), compared in constant time. Without
//! one, such requests are served only on a loopback admin address (`ppdb start` refuses
//! another without `--insecure`).

use super::report::{prometheus, NodeReport};
use crate::error::{Error, ErrorCode};
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use ppdb_raft::NodeId;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use subtle::ConstantTimeEq;
use tokio::net::TcpStream;
use tokio::sync::{watch, Semaphore};

/// The header a request that changes the cluster must carry (`ppdb cluster` sends it).
pub const ADMIN_REQUEST_HEADER: &str = "x-ppdb-admin";
/// Admin connections served at once; more are closed at once.
pub const ADMIN_CONNECTIONS_MAX: usize = 64;
/// Largest request line and headers (hyper's smallest read buffer is 8 KiB).
pub const ADMIN_HEADER_BYTES_MAX: usize = 16 * 1024;
/// Most header fields in one request.
pub const ADMIN_HEADERS_MAX: usize = 64;
/// Largest request body (no endpoint reads one).
pub const ADMIN_BODY_BYTES_MAX: usize = 64 * 1024;
/// Longest time a client may take to send its request line and headers.
pub const ADMIN_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest time one connection (one request and its answer) may last; above the longest a
/// membership change waits for its log entry.
pub const ADMIN_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves the admin endpoints on `addr` until `shutdown` turns true.
pub async fn serve(
    addr: SocketAddr,
    report: NodeReport,
    token: Option<String>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let token: Arc<Option<String>> = Arc::new(token);
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/status", get(status))
        .route("/cluster/leave", post(leave))
        .route("/cluster/remove/:id", post(remove))
        .layer(axum::middleware::from_fn(move |request, next| {
            refuse_unsafe(Arc::clone(&token), request, next)
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
        let app = app.clone();
        tokio::spawn(async move {
            serve_connection(stream, app).await;
            drop(slot);
        });
    }
}

/// Serves one request on `stream` within the header and time limits.
async fn serve_connection(stream: TcpStream, app: Router) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(ADMIN_HEADER_READ_TIMEOUT)
        .max_buf_size(ADMIN_HEADER_BYTES_MAX)
        .max_headers(ADMIN_HEADERS_MAX)
        .keep_alive(false);
    let connection = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
    let _ = tokio::time::timeout(ADMIN_REQUEST_TIMEOUT, connection).await;
}

/// Refuses oversized bodies, and requests that change the cluster but could have come from a
/// web page (see the module's documentation).
async fn refuse_unsafe(token: Arc<Option<String>>, request: Request, next: Next) -> Response {
    let refused = refusal(request.method(), request.headers())
        .or_else(|| unauthorized(request.method(), request.headers(), token.as_deref()));
    match refused {
        Some(refused) => refused,
        None => next.run(request).await,
    }
}

fn refusal(method: &Method, headers: &HeaderMap) -> Option<Response> {
    let body_bytes = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if body_bytes.is_some_and(|n| n > ADMIN_BODY_BYTES_MAX as u64) {
        return Some((StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n").into_response());
    }
    if *method == Method::GET || *method == Method::HEAD {
        return None;
    }
    let forbidden = |why: &str| Some((StatusCode::FORBIDDEN, format!("{why}\n")).into_response());
    if headers.contains_key(header::ORIGIN) {
        return forbidden("refused: a request from a web page (with an Origin) cannot change the cluster");
    }
    if headers.get("sec-fetch-site").is_some_and(|site| site != "none") {
        return forbidden("refused: a request from a web page cannot change the cluster");
    }
    if !headers.contains_key(ADMIN_REQUEST_HEADER) {
        return forbidden("refused: a request that changes the cluster must carry the X-PPDB-Admin header (ppdb cluster sends it)");
    }
    None
}

/// Refuses a request that changes the cluster without the node's admin token, if it has one.
fn unauthorized(method: &Method, headers: &HeaderMap, token: Option<&str>) -> Option<Response> {
    let token = token.filter(|_| *method != Method::GET && *method != Method::HEAD)?;
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok()?.strip_prefix("Bearer "))
        .unwrap_or_default();
    if bool::from(presented.as_bytes().ct_eq(token.as_bytes())) {
        return None;
    }
    let why = "refused: a request that changes the cluster needs the admin token (Authorization: Bearer \
               <token>; ppdb cluster reads it from --admin-token or PPDB_ADMIN_TOKEN)\n";
    Some((StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], why).into_response())
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn refused_status(method: Method, headers: &[(&'static str, &'static str)]) -> Option<StatusCode> {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, HeaderValue::from_static(value));
        }
        refusal(&method, &map).map(|response| response.status())
    }

    #[test]
    fn only_a_tool_can_change_the_cluster() {
        assert_eq!(refused_status(Method::GET, &[("origin", "http://evil.example")]), None, "reads are open");
        assert_eq!(refused_status(Method::POST, &[]), Some(StatusCode::FORBIDDEN), "no header");
        let foreign = [(ADMIN_REQUEST_HEADER, "1"), ("origin", "http://evil.example")];
        assert_eq!(refused_status(Method::POST, &foreign), Some(StatusCode::FORBIDDEN));
        let fetched = [(ADMIN_REQUEST_HEADER, "1"), ("sec-fetch-site", "same-origin")];
        assert_eq!(refused_status(Method::POST, &fetched), Some(StatusCode::FORBIDDEN));
        assert_eq!(refused_status(Method::POST, &[(ADMIN_REQUEST_HEADER, "1")]), None);
        let large = [("content-length", "1000000")];
        assert_eq!(refused_status(Method::GET, &large), Some(StatusCode::PAYLOAD_TOO_LARGE));
    }
}

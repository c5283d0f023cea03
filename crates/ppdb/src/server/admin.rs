//! The HTTP admin listener: `/metrics` (Prometheus text), `/health`, `/status` (JSON), and
//! membership changes: `POST /cluster/leave` (this node leaves gracefully) and
//! `POST /cluster/remove/{id}` (an operator removes a node).

use super::report::{prometheus, NodeReport};
use crate::error::{Error, ErrorCode};
use axum::extract::Path;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use ppdb_raft::NodeId;
use std::net::SocketAddr;
use tokio::sync::watch;

/// Serves the admin endpoints on `addr` until `shutdown` turns true.
pub async fn serve(
    addr: SocketAddr,
    report: NodeReport,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/status", get(status))
        .route("/cluster/leave", post(leave))
        .route("/cluster/remove/:id", post(remove))
        .with_state(report);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        })
        .await
}

async fn metrics(State(report): State<NodeReport>) -> Response {
    match report.status().await {
        Ok(doc) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], prometheus(&doc)).into_response(),
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

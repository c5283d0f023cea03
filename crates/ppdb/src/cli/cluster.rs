//! `ppdb cluster`: look at or change a running cluster through a node's admin address, over
//! HTTP, or HTTPS when the node has TLS settings.

use super::https::RustlsConnector;
use crate::server::admin::ADMIN_REQUEST_HEADER;
use crate::transport::tls::{client_config, throwaway::CA_CERT_FILE};
use clap::{Args, Subcommand};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Longest wait for a membership change's answer.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for the status document.
const STATUS_TIMEOUT: Duration = Duration::from_secs(5);

/// Flags of `ppdb cluster`.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// Admin address of any node: HOST:PORT, or http://HOST:PORT or https://HOST:PORT. Without a
    /// scheme, HTTPS when a CA certificate is given (or found), HTTP otherwise.
    #[arg(long, env = "PPDB_ADMIN", default_value = "127.0.0.1:7201", global = true)]
    pub admin: String,
    /// The admin token changes need (default: the one `ppdb local` wrote in
    /// ppdb-data/admin-token, if any).
    #[arg(long, env = "PPDB_ADMIN_TOKEN", global = true, hide_env_values = true)]
    pub admin_token: Option<String>,
    /// The cluster CA's certificate (PEM): the node's certificate must chain to it, and name
    /// the host of --admin (default: ppdb-data/tls/ca.crt, which `ppdb local --tls` writes, if
    /// there is one).
    #[arg(long, env = "PPDB_TLS_CA_CERT_FILE", global = true)]
    pub tls_ca_cert_file: Option<PathBuf>,
    /// A client certificate of the cluster CA (PEM), presented over HTTPS: an admin credential,
    /// in place of the admin token.
    #[arg(long, env = "PPDB_TLS_CERT_FILE", global = true)]
    pub tls_cert_file: Option<PathBuf>,
    /// The private key of --tls-cert-file (PEM).
    #[arg(long, env = "PPDB_TLS_KEY_FILE", global = true)]
    pub tls_key_file: Option<PathBuf>,
    /// The operation.
    #[command(subcommand)]
    pub action: ClusterAction,
}

/// `ppdb cluster` operations.
#[derive(Debug, Subcommand)]
pub enum ClusterAction {
    /// Print each node's state and each shard's leader, term, commit index and lag.
    Status,
    /// Take the node behind --admin out of the cluster gracefully: it hands its leaderships
    /// over (LEAVING), is removed from every group (INACTIVE), and stops.
    Leave,
    /// Remove node NODE from the cluster, through the node behind --admin. Refused if, in any
    /// group, the voters left (learners do not count) would not have a reachable majority.
    Remove {
        /// The node id to remove.
        node: u64,
    },
}

/// Runs a `ppdb cluster` operation.
pub fn run(args: ClusterArgs) -> Result<(), String> {
    let admin = AdminEndpoint::new(&args)?;
    let token = args.admin_token.clone().or_else(|| {
        let path = Path::new(super::local::DEFAULT_DIR).join(super::local::ADMIN_TOKEN_FILE);
        std::fs::read_to_string(path).ok().map(|t| t.trim().to_string())
    });
    let token = token.as_deref();
    match args.action {
        ClusterAction::Status => admin.status(),
        ClusterAction::Leave => admin.post("/cluster/leave", token),
        ClusterAction::Remove { node } => admin.post(&format!("/cluster/remove/{node}"), token),
    }
}

/// A node's admin address, and the HTTP client that reaches it.
struct AdminEndpoint {
    /// `http://HOST:PORT` or `https://HOST:PORT`.
    base: String,
    agent: ureq::Agent,
}

impl AdminEndpoint {
    /// The endpoint `args` name: over HTTPS when they give (or `ppdb local --tls` left) a CA
    /// certificate, unless the address says `http://`.
    fn new(args: &ClusterArgs) -> Result<AdminEndpoint, String> {
        let (scheme, host_port) = match args.admin.split_once("://") {
            Some((scheme, rest)) => (Some(scheme.to_ascii_lowercase()), rest),
            None => (None, args.admin.as_str()),
        };
        let host_port = host_port.trim_end_matches('/');
        let local_ca = Path::new(super::local::DEFAULT_DIR).join(super::local::TLS_DIR).join(CA_CERT_FILE);
        let ca = args.tls_ca_cert_file.clone().or_else(|| local_ca.is_file().then_some(local_ca));
        let https = match scheme.as_deref() {
            Some("https") => true,
            Some("http") => false,
            Some(other) => {
                return Err(format!("--admin {}: the scheme must be http or https, not {other}", args.admin))
            }
            None => ca.is_some(),
        };
        if !https {
            return Ok(AdminEndpoint { base: format!("http://{host_port}"), agent: ureq::Agent::new() });
        }
        let ca = ca.ok_or_else(|| {
            format!("--admin {}: HTTPS needs the cluster CA's certificate (--tls-ca-cert-file)", args.admin)
        })?;
        let identity = match (&args.tls_cert_file, &args.tls_key_file) {
            (Some(cert), Some(key)) => Some((cert.as_path(), key.as_path())),
            (None, None) => None,
            _ => return Err("a client certificate needs both --tls-cert-file and --tls-key-file".into()),
        };
        let config = client_config(&ca, identity).map_err(|e| e.to_string())?;
        let agent = ureq::AgentBuilder::new().tls_connector(Arc::new(RustlsConnector(config))).build();
        Ok(AdminEndpoint { base: format!("https://{host_port}"), agent })
    }

    /// Sends a membership change to the admin endpoint and prints its answer.
    fn post(&self, path: &str, token: Option<&str>) -> Result<(), String> {
        let url = format!("{}{path}", self.base);
        // The header tells the node the request comes from a tool, not a web page (see
        // server/admin/guard.rs).
        let mut request = self.agent.post(&url).set(ADMIN_REQUEST_HEADER, "1").timeout(CHANGE_TIMEOUT);
        if let Some(token) = token {
            request = request.set("Authorization", &format!("Bearer {token}"));
        }
        match request.call() {
            Ok(response) => {
                print!("{}", response.into_string().unwrap_or_default());
                Ok(())
            }
            Err(ureq::Error::Status(code, response)) => {
                Err(format!("{url} answered {code}: {}", response.into_string().unwrap_or_default().trim()))
            }
            Err(e) => Err(format!("cannot reach {url}: {e}")),
        }
    }

    fn status(&self) -> Result<(), String> {
        let url = format!("{}/status", self.base);
        let body: Value = self
            .agent
            .get(&url)
            .timeout(STATUS_TIMEOUT)
            .call()
            .map_err(|e| format!("cannot reach {url}: {e}"))?
            .into_json()
            .map_err(|e| format!("{url} did not answer JSON: {e}"))?;
        print!("{}", render_status(&body));
        Ok(())
    }
}

/// Renders the status document as a table.
pub fn render_status(status: &Value) -> String {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_string(),
        other => other.to_string(),
    };
    let list = |v: &Value| v.as_array().cloned().unwrap_or_default();
    let mut out = String::new();
    let node = &status["node"];
    out.push_str(&format!(
        "node {} ({}) cluster {}: {}\n",
        text(&node["id"]),
        text(&node["peer_addr"]),
        text(&node["cluster_id"]),
        text(&node["state"])
    ));
    out.push_str(&format!("{:>6} {:>10} {:>22}\n", "member", "state", "peer_addr"));
    for member in list(&status["members"]) {
        out.push_str(&format!(
            "{:>6} {:>10} {:>22}\n",
            text(&member["id"]),
            text(&member["state"]),
            text(&member["peer_addr"])
        ));
    }
    out.push_str(&format!(
        "{:>6} {:>10} {:>8} {:>8} {:>10} {:>10}  followers (id:match:lag); shard 0 is the meta group\n",
        "shard", "role", "term", "leader", "commit", "applied"
    ));
    for shard in list(&status["shards"]) {
        let followers: Vec<String> = list(&shard["followers"])
            .iter()
            .map(|f| format!("{}:{}:{}", text(&f["id"]), text(&f["match"]), text(&f["lag"])))
            .collect();
        out.push_str(&format!(
            "{:>6} {:>10} {:>8} {:>8} {:>10} {:>10}  {}\n",
            text(&shard["shard"]),
            text(&shard["role"]),
            text(&shard["term"]),
            text(&shard["leader"]),
            text(&shard["commit"]),
            text(&shard["applied"]),
            followers.join(" ")
        ));
    }
    let placement = list(&status["placement"]);
    if !placement.is_empty() {
        let factor = status["replication_factor"].as_u64().unwrap_or(0);
        let factor = if factor == 0 { "every node".to_string() } else { factor.to_string() };
        out.push_str(&format!(
            "{:>6} {:>13} {:>8}  replicas (replication factor {factor})\n",
            "shard", "slots", "moving"
        ));
        for shard in placement {
            let replicas: Vec<String> = list(&shard["replicas"]).iter().map(text).collect();
            out.push_str(&format!(
                "{:>6} {:>13} {:>8}  {}\n",
                text(&shard["shard"]),
                shard["slots"].as_str().unwrap_or("-"),
                if shard["moving"].as_bool().unwrap_or(false) { "yes" } else { "no" },
                replicas.join(",")
            ));
        }
    }
    out.push_str(&format!("{:>6} {:>10} {:>10} {:>14}\n", "peer", "connected", "rtt_us", "messages_sent"));
    for peer in list(&status["peers"]) {
        out.push_str(&format!(
            "{:>6} {:>10} {:>10} {:>14}\n",
            text(&peer["id"]),
            text(&peer["connected"]),
            text(&peer["rtt_us"]),
            text(&peer["messages_sent"])
        ));
    }
    let txns = &status["transactions"];
    if txns.is_object() {
        out.push_str(&format!(
            "transactions: {} committed, {} aborted, {} conflicts, {} resolved, success rate {}, {} keys locked\n",
            text(&txns["committed"]),
            text(&txns["aborted"]),
            text(&txns["conflicts"]),
            txns["resolved_committed"].as_u64().unwrap_or(0) + txns["resolved_aborted"].as_u64().unwrap_or(0),
            text(&txns["success_rate"]),
            text(&txns["locks_held"])
        ));
        for txn in list(&txns["in_flight"]) {
            out.push_str(&format!(
                "  in flight {} {} {} ms, shards {}\n",
                text(&txn["id"]),
                text(&txn["state"]),
                text(&txn["age_ms"]),
                text(&txn["participants"])
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_table_aligns_columns() {
        let doc = serde_json::json!({
            "node": {"id": 1, "peer_addr": "127.0.0.1:7101", "cluster_id": "local", "state": "ACTIVE"},
            "members": [{"id": 4, "state": "JOINING", "peer_addr": "127.0.0.1:7104"}],
            "shards": [{"shard": 1, "role": "leader", "term": 3, "leader": 1, "commit": 10, "applied": 10,
                        "followers": [{"id": 2, "match": 10, "lag": 0}]}],
            "peers": [{"id": 2, "connected": true, "rtt_us": 120, "messages_sent": 5}]
        });
        let table = render_status(&doc);
        assert!(table.contains("node 1 (127.0.0.1:7101) cluster local: ACTIVE"), "{table}");
        assert!(
            table.contains("     1     leader        3        1         10         10  2:10:0"),
            "{table}"
        );
        assert!(table.contains("     2       true        120"), "{table}");
        assert!(table.contains("     4    JOINING         127.0.0.1:7104"), "{table}");
    }
}

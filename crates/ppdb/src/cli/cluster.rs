//! `ppdb cluster`: look at or change a running cluster through a node's HTTP admin address.

use crate::server::admin::ADMIN_REQUEST_HEADER;
use clap::{Args, Subcommand};
use serde_json::Value;

/// Flags of `ppdb cluster`.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// Admin address of any node.
    #[arg(long, env = "PPDB_ADMIN", default_value = "127.0.0.1:7201", global = true)]
    pub admin: String,
    /// The admin token changes need (default: the one `ppdb local` wrote in
    /// ppdb-data/admin-token, if any).
    #[arg(long, env = "PPDB_ADMIN_TOKEN", global = true, hide_env_values = true)]
    pub admin_token: Option<String>,
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
    let token = args.admin_token.or_else(|| {
        let path = std::path::Path::new("ppdb-data").join(super::local::ADMIN_TOKEN_FILE);
        std::fs::read_to_string(path).ok().map(|t| t.trim().to_string())
    });
    let token = token.as_deref();
    match args.action {
        ClusterAction::Status => status(&args.admin),
        ClusterAction::Leave => post(&args.admin, "/cluster/leave", token),
        ClusterAction::Remove { node } => post(&args.admin, &format!("/cluster/remove/{node}"), token),
    }
}

/// Sends a membership change to the admin endpoint and prints its answer.
fn post(admin: &str, path: &str, token: Option<&str>) -> Result<(), String> {
    let url = format!("http://{admin}{path}");
    // The header tells the node the request comes from a tool, not a web page (see admin.rs).
    let mut request =
        ureq::post(&url).set(ADMIN_REQUEST_HEADER, "1").timeout(std::time::Duration::from_secs(30));
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

fn status(admin: &str) -> Result<(), String> {
    let url = format!("http://{admin}/status");
    let body: Value = ureq::get(&url)
        .timeout(std::time::Duration::from_secs(5))
        .call()
        .map_err(|e| format!("cannot reach {url}: {e}"))?
        .into_json()
        .map_err(|e| format!("{url} did not answer JSON: {e}"))?;
    print!("{}", render_status(&body));
    Ok(())
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

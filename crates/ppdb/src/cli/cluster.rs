//! `ppdb cluster`: look at a running cluster through a node's HTTP admin address.

use clap::{Args, Subcommand};
use serde_json::Value;

/// Flags of `ppdb cluster`.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// Admin address of any node.
    #[arg(long, env = "PPDB_ADMIN", default_value = "127.0.0.1:7201", global = true)]
    pub admin: String,
    /// The operation.
    #[command(subcommand)]
    pub action: ClusterAction,
}

/// `ppdb cluster` operations.
#[derive(Debug, Subcommand)]
pub enum ClusterAction {
    /// Print each node's state and each shard's leader, term, commit index and lag.
    Status,
}

/// Runs a `ppdb cluster` operation.
pub fn run(args: ClusterArgs) -> Result<(), String> {
    match args.action {
        ClusterAction::Status => status(&args.admin),
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

/// Renders the /status document as a table.
pub fn render_status(status: &Value) -> String {
    let mut out = String::new();
    let node = &status["node"];
    out.push_str(&format!(
        "node {} ({}) cluster {}: {}\n",
        node["id"],
        node["peer_addr"].as_str().unwrap_or("?"),
        node["cluster_id"].as_str().unwrap_or("?"),
        node["state"].as_str().unwrap_or("?")
    ));
    out.push_str(&format!(
        "{:>6} {:>10} {:>8} {:>8} {:>10} {:>10}  followers (id:match:lag)\n",
        "shard", "role", "term", "leader", "commit", "applied"
    ));
    for shard in status["shards"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
        let followers: Vec<String> = shard["followers"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .map(|f| format!("{}:{}:{}", f["id"], f["match"], f["lag"]))
            .collect();
        out.push_str(&format!(
            "{:>6} {:>10} {:>8} {:>8} {:>10} {:>10}  {}\n",
            shard["shard"],
            shard["role"].as_str().unwrap_or("?"),
            shard["term"],
            shard["leader"],
            shard["commit"],
            shard["applied"],
            followers.join(" ")
        ));
    }
    out
}

//! The `ppdb` command line: start a node, run a local cluster, administer a cluster.
//!
//! This layer parses flags and configuration, sets up logging and the async runtime, and
//! calls into the server layer. It holds no database logic of its own.

mod bench;
mod bench_pubsub;
mod cluster;
mod https;
mod local;
mod scheduling;
mod start;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// PPDB: a distributed, strongly consistent key-value database speaking the Redis protocol.
#[derive(Debug, Parser)]
#[command(name = "ppdb", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start one node of a cluster (bootstrap a new cluster, or restart from --dir).
    Start(Box<start::StartArgs>),
    /// Start a 3-node cluster on this machine (loopback), data under ./ppdb-data; Ctrl-C stops it.
    Local(local::LocalArgs),
    /// Inspect or change a running cluster through a node's admin address.
    Cluster(cluster::ClusterArgs),
    /// Measure throughput and latency of PPDB or etcd with a closed-loop load generator.
    Bench(bench::BenchArgs),
    /// Measure pub/sub publish-to-delivery latency, on the publisher's node and across nodes.
    BenchPubsub(bench_pubsub::PubSubArgs),
}

/// Entry point of the `ppdb` binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        Command::Start(args) => start::run(*args),
        Command::Local(args) => local::run(args),
        Command::Cluster(args) => cluster::run(args),
        Command::Bench(args) => bench::run(args),
        Command::BenchPubsub(args) => bench_pubsub::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("ppdb: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr; `RUST_LOG` filters (default `info`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .try_init();
}

//! What every client connection shares: the executor, limits, counters, the registry of open
//! connections, pub/sub, and the node's report (INFO is rendered in `super::info`).

use super::acl::{AccessControl, SessionAuth};
use super::client::executor::Executor;
use super::client::stats::ServerStats;
use super::clients::ClientRegistry;
use super::pubsub::ClusterPubSub;
use super::report::NodeReport;
use super::resp::command::{EvalCommand, ScriptSource};
use super::resp::{Frame, RespLimits};
use super::script::eval::{script_entry, ScriptScope};
use super::script::ScriptCache;
use super::settings::ServerSettings;
use crate::functions::Libraries;
use crate::kv::KvWrite;
use std::sync::Arc;
use std::time::Instant;

/// Shared by all connections of a node.
pub struct ServerContext {
    /// Runs key-space commands.
    pub executor: Executor,
    /// Request parsing limits.
    pub limits: RespLimits,
    /// CONFIG GET/SET's settings, among them the client limits in force.
    pub settings: ServerSettings,
    /// Counters.
    pub stats: ServerStats,
    /// Status reports for INFO.
    pub report: NodeReport,
    /// When the node started.
    pub started: Instant,
    /// The same moment by the wall clock, in seconds since the Unix epoch (LASTSAVE).
    pub started_unix_s: u64,
    /// The open client connections (CLIENT LIST, CLIENT KILL).
    pub clients: Arc<ClientRegistry>,
    /// Pub/sub: this node's subscribers and the publications sent to the other members.
    pub pubsub: ClusterPubSub,
    /// The node's script cache (EVALSHA, SCRIPT LOAD/EXISTS/FLUSH).
    pub scripts: ScriptCache,
    /// TLS on the client ports (RESP and memcached), when configured.
    pub tls: Option<crate::transport::tls::TlsContext>,
    /// The ACL users enforced, and the refusals counted.
    pub access: AccessControl,
}

/// The libraries an EVAL is resolved against: it names no function.
static NO_LIBRARIES: Libraries = Libraries::new();

impl ServerContext {
    /// When the node started, in seconds since the Unix epoch.
    pub fn started_unix_s(&self) -> u64 {
        self.started_unix_s
    }

    /// The shard that runs `eval` for the user of `auth`, and the entry to propose there, or
    /// the frame refusing it.
    pub fn script_entry(&self, auth: &mut SessionAuth, eval: EvalCommand) -> Result<(u64, KvWrite), Frame> {
        let functions =
            matches!(eval.source, ScriptSource::Function(_)).then(|| self.report.membership.functions());
        let scope = ScriptScope {
            cache: &self.scripts,
            functions: functions.as_deref().unwrap_or(&NO_LIBRARIES),
            router: self.executor.router(),
            access: auth.script_access(),
        };
        script_entry(scope, eval)
    }
}

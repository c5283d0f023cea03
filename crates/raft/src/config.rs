//! Tuning of one Raft node, validated before use.

use crate::types::NodeId;
use std::fmt;

/// Configuration of one Raft node. Times are in ticks: the caller decides how long a tick is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// This node's id (the seed's `node_id`); must not be 0.
    pub id: NodeId,
    /// Ticks without hearing from a leader before a follower campaigns. The actual timeout is
    /// drawn uniformly from `[election_timeout_ticks, 2 * election_timeout_ticks)` at every
    /// reset so that candidates rarely collide.
    pub election_timeout_ticks: u32,
    /// Ticks between a leader's heartbeats.
    pub heartbeat_interval_ticks: u32,
    /// Most entries in one append message.
    pub append_entries_max: usize,
    /// Most payload bytes in one append message (at least one entry is always sent).
    pub append_bytes_max: usize,
    /// Most append messages in flight to one follower in the replicate state (pipelining window).
    pub inflight_appends_max: usize,
    /// Most entries a leader holds uncommitted before it refuses proposals (back-pressure).
    pub uncommitted_entries_max: usize,
    /// Campaign with a pre-vote round first, so a node that was cut off cannot disrupt the
    /// group by bumping the term when it comes back.
    pub pre_vote: bool,
    /// A leader steps down when it has not heard from a quorum for an election timeout, and
    /// followers ignore vote requests while they hear from a leader (leader lease).
    pub check_quorum: bool,
    /// A deliberate protocol bug to plant (tests of the simulator only).
    #[cfg(feature = "canaries")]
    pub canary: Option<crate::Canary>,
}

/// Why a [`Config`] is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid raft configuration: {}", self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Sensible defaults for node `id`: heartbeat every tick, elections after 10 ticks.
    pub fn new(id: NodeId) -> Config {
        Config {
            id,
            election_timeout_ticks: 10,
            heartbeat_interval_ticks: 1,
            append_entries_max: 1024,
            append_bytes_max: 1 << 20,
            inflight_appends_max: 256,
            uncommitted_entries_max: 1 << 16,
            pre_vote: true,
            check_quorum: true,
            #[cfg(feature = "canaries")]
            canary: None,
        }
    }

    /// A configuration from the seed's millisecond settings (`heartbeat_interval`,
    /// `election_timeout`) and the length of one tick.
    pub fn from_millis(
        id: NodeId,
        tick_ms: u64,
        heartbeat_interval_ms: u64,
        election_timeout_ms: u64,
    ) -> Result<Config, ConfigError> {
        if tick_ms == 0 {
            return Err(ConfigError("tick interval must be at least 1 ms".into()));
        }
        let ticks = |ms: u64| u32::try_from(ms / tick_ms).unwrap_or(u32::MAX);
        let config = Config {
            heartbeat_interval_ticks: ticks(heartbeat_interval_ms),
            election_timeout_ticks: ticks(election_timeout_ms),
            ..Config::new(id)
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks the configuration, saying which setting is wrong and why.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.id == NodeId(0) {
            return Err(ConfigError("node id 0 is reserved".into()));
        }
        if self.heartbeat_interval_ticks == 0 {
            return Err(ConfigError("heartbeat interval must be at least one tick".into()));
        }
        if self.election_timeout_ticks < 3 * self.heartbeat_interval_ticks {
            return Err(ConfigError(format!(
                "election timeout ({} ticks) must be at least 3 heartbeat intervals ({} ticks), \
                 or a follower would campaign between two heartbeats of a healthy leader",
                self.election_timeout_ticks,
                3 * self.heartbeat_interval_ticks
            )));
        }
        if self.append_entries_max == 0 || self.append_bytes_max == 0 {
            return Err(ConfigError("append limits must be positive".into()));
        }
        if self.inflight_appends_max == 0 {
            return Err(ConfigError("inflight_appends_max must be positive".into()));
        }
        if self.uncommitted_entries_max == 0 {
            return Err(ConfigError("uncommitted_entries_max must be positive".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn election_timeout_must_exceed_heartbeats() {
        let err = Config::from_millis(NodeId(1), 10, 100, 200).unwrap_err();
        assert!(err.to_string().contains("at least 3 heartbeat intervals"), "{err}");
        let ok = Config::from_millis(NodeId(1), 10, 100, 1000).unwrap();
        assert_eq!((ok.heartbeat_interval_ticks, ok.election_timeout_ticks), (10, 100));
    }

    #[test]
    fn node_zero_is_refused() {
        assert!(Config::new(NodeId(0)).validate().is_err());
    }
}

//! PPDB's integration tests, built into one test binary to save link time (see STYLE.md).
//! Each module tests one thing that crosses a process or the disk.

mod auth;
mod client_limits;
mod cluster;
mod cross_shard;
mod cross_shard_moves;
mod differential;
mod functions;
mod hostile_apply;
mod hostile_input;
mod identity;
mod job_queue;
mod large_values;
mod leadership;
mod local;
mod membership;
mod memcached;
mod memory_limit;
mod pause;
mod placement;
mod pubsub;
mod redis_tools;
mod reference;
mod resp_commands;
mod routing;
mod scripting;
mod server_commands;
mod support;
mod tls;
mod types_hash;
mod types_list;
mod types_list_pops;
mod types_set;
mod types_zset;
mod wal_crash;
mod watch;

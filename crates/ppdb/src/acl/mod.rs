//! Access control as Redis 6+ defines it: users, their passwords (kept as SHA-256 hashes) and
//! the rules saying which commands they may run and which keys they may touch.
//!
//! This module is pure, like the key-value layer: no clock, no randomness, no I/O. The users
//! are part of the meta group's state (`node::directory`), so every node enforces the same
//! ones; the server checks each command against the connection's user
//! (`server::acl`), with the command's categories and keys taken from the command table.

pub mod category;
pub mod file;
pub mod rule;
pub mod user;
pub mod users;

pub use category::{Category, CategorySet};
pub use rule::{PasswordHash, Rule, RuleError};
pub use user::{CommandFacts, KeyAccess, User};
pub use users::{AclChange, AclError, AclUsers, DEFAULT_USER};

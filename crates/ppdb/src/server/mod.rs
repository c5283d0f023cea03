//! The client-facing protocols of a node.
//!
//! This layer turns bytes from clients into typed commands and typed answers back into bytes. It
//! sees the key space only through `kv` types (reads, writes and their replies) and a node handle
//! added later; it never touches Raft types, the log or the disk.

pub mod resp;

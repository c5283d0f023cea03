//! The Redis protocol (RESP2 and RESP3), without I/O.
//!
//! This module owns the bytes of the protocol and nothing else: [`frame`] is the RESP value and
//! its encoder, [`parse`] turns a client's byte stream into argument vectors under configurable
//! limits, [`command`] turns an argument vector into a typed [`Command`] (with Redis 7's exact
//! error replies), [`reply`] turns the key space's typed answers into frames, and [`push`]
//! pub/sub's messages and confirmations. It performs no
//! network I/O, holds no connection state beyond the parser's, and never touches Raft types; the
//! connection and listener that drive it live beside it in `server`.

pub mod command;
pub mod frame;
mod inline;
pub mod parse;
pub mod push;
pub mod reply;

pub use command::{Command, CommandClass, CommandError, WriteCommand};
pub use frame::{Frame, ProtocolVersion};
pub use parse::{ProtocolError, RequestDecoder, RespLimits};

//! List commands: as parsed, as logged, and as applied or answered.
//!
//! # Encoding (inside a collection operation, after its type tag)
//!
//! `op_tag:u8 fields...`, byte strings and counts as in the rest of the entry (`kv::codec`),
//! bounded as there.

use crate::kv::codec::{KvDecodeError, Reader};
use crate::kv::reply::Reply;
use crate::kv::state_machine::KvStore;

/// A list command that changes the key space.
#[derive(Debug, Clone, PartialEq)]
pub enum ListWrite {}

/// A list command that only reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListRead {}

impl ListWrite {
    /// The keys the command touches.
    pub fn keys(&self) -> Vec<&[u8]> {
        match *self {}
    }

    pub(crate) fn encode(&self, _out: &mut Vec<u8>) {
        match *self {}
    }

    pub(crate) fn decode(reader: &mut Reader<'_>) -> Result<Self, KvDecodeError> {
        let offset = reader.offset();
        let tag = reader.u8("list write")?;
        Err(KvDecodeError::InvalidTag { field: "list write", tag, offset })
    }

    pub(crate) fn apply(&self, _store: &mut KvStore, _now: u64) -> Reply {
        match *self {}
    }
}

impl ListRead {
    /// The keys the query touches.
    pub fn keys(&self) -> Vec<&[u8]> {
        match *self {}
    }

    pub(crate) fn encode(&self, _out: &mut Vec<u8>) {
        match *self {}
    }

    pub(crate) fn decode(reader: &mut Reader<'_>) -> Result<Self, KvDecodeError> {
        let offset = reader.offset();
        let tag = reader.u8("list read")?;
        Err(KvDecodeError::InvalidTag { field: "list read", tag, offset })
    }

    pub(crate) fn read(&self, _store: &KvStore, _now: u64) -> Reply {
        match *self {}
    }
}

//! Sorted-set commands: as parsed, as logged, and as applied or answered.
//!
//! # Encoding (inside a collection operation, after its type tag)
//!
//! `op_tag:u8 fields...`, byte strings and counts as in the rest of the entry (`kv::codec`),
//! bounded as there.

use crate::kv::codec::{KvDecodeError, Reader};
use crate::kv::reply::Reply;
use crate::kv::state_machine::KvStore;

/// A sorted-set command that changes the key space.
#[derive(Debug, Clone, PartialEq)]
pub enum SortedSetWrite {}

/// A sorted-set command that only reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortedSetRead {}

impl SortedSetWrite {
    /// The keys the command touches.
    pub fn keys(&self) -> Vec<&[u8]> {
        match *self {}
    }

    pub(crate) fn encode(&self, _out: &mut Vec<u8>) {
        match *self {}
    }

    pub(crate) fn decode(reader: &mut Reader<'_>) -> Result<Self, KvDecodeError> {
        let offset = reader.offset();
        let tag = reader.u8("sorted-set write")?;
        Err(KvDecodeError::InvalidTag { field: "sorted-set write", tag, offset })
    }

    pub(crate) fn apply(&self, _store: &mut KvStore, _now: u64) -> Reply {
        match *self {}
    }
}

impl SortedSetRead {
    /// The keys the query touches.
    pub fn keys(&self) -> Vec<&[u8]> {
        match *self {}
    }

    pub(crate) fn encode(&self, _out: &mut Vec<u8>) {
        match *self {}
    }

    pub(crate) fn decode(reader: &mut Reader<'_>) -> Result<Self, KvDecodeError> {
        let offset = reader.offset();
        let tag = reader.u8("sorted-set read")?;
        Err(KvDecodeError::InvalidTag { field: "sorted-set read", tag, offset })
    }

    pub(crate) fn read(&self, _store: &KvStore, _now: u64) -> Reply {
        match *self {}
    }
}

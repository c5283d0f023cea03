//! List commands: as parsed, as logged, and as applied or answered.
//!
//! # Encoding (inside a collection operation, after its type tag)
//!
//! `op_tag:u8 fields...`, byte strings and counts as in the rest of the entry (`kv::codec`),
//! bounded as there.

use crate::kv::codec::{KvDecodeError, Reader};
use crate::kv::reply::Reply;
use crate::kv::state_machine::KvStore;

use super::pop::ListPop;

/// A list command that changes the key space.
#[derive(Debug, Clone, PartialEq)]
pub enum ListWrite {
    /// LPOP, RPOP, LMPOP, LMOVE, RPOPLPUSH and the blocking pops' non-blocking form.
    Pop(ListPop),
}

// List write tags. Never renumber: they are on disk. The pops' own tags follow theirs.
const WRITE_POP: u8 = 64;

/// A list command that only reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListRead {}

impl ListWrite {
    /// The keys the command touches.
    pub fn keys(&self) -> Vec<&[u8]> {
        match self {
            Self::Pop(pop) => pop.keys(),
        }
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Pop(pop) => {
                out.push(WRITE_POP);
                pop.encode(out);
            }
        }
    }

    pub(crate) fn decode(reader: &mut Reader<'_>) -> Result<Self, KvDecodeError> {
        let offset = reader.offset();
        Ok(match reader.u8("list write")? {
            WRITE_POP => Self::Pop(ListPop::decode(reader)?),
            tag => return Err(KvDecodeError::InvalidTag { field: "list write", tag, offset }),
        })
    }

    pub(crate) fn apply(&self, store: &mut KvStore, now: u64) -> Reply {
        match self {
            Self::Pop(pop) => pop.apply(store, now),
        }
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

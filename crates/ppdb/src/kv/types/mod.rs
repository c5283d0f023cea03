//! Redis's value types: what a key holds, and the commands of each type.
//!
//! A stored value ([`Data`]) is a string or one of the collections: a hash ([`HashValue`]), a
//! list ([`ListValue`]), a set ([`SetValue`]) or a sorted set ([`SortedSetValue`]). Each type
//! has its own folder: the value and its element-level operations (`mod.rs`), and its commands
//! as they travel through the log and are applied or read (`command.rs`). The string commands
//! are the store's own ([`super::command::WriteOp`]); the collection commands reach the log as
//! one [`WriteOp::Collection`](super::command::WriteOp::Collection) operation, so the entry
//! format and the state machine's dispatch do not grow with the types.
//!
//! Collections are shared copy-on-write (`Arc`), as the key table's parts are: a frozen
//! snapshot holds the collection while the store goes on changing it, and the first change
//! after a freeze copies it ([`Collection::of_mut`]).
//!
//! Every collection keeps an estimate of its memory ([`Collection::bytes`]) up to date as it
//! changes, so `maxmemory` and `MEMORY USAGE` cost nothing to answer. Iteration orders are
//! those of the collections' own structures, never of a hash function, so replicas that apply
//! the same log iterate alike (SPOP, HRANDFIELD and replies inside transactions depend on it).
//! Commands reach a collection only through `KvStore::collection` and
//! `KvStore::change_collection`, which check the type (`WRONGTYPE`), keep the memory count,
//! and delete a key whose collection became empty, as Redis does.

mod draws;
pub mod hash;
pub mod list;
mod scan_query;
pub mod set;
pub mod zset;

use std::sync::Arc;

use super::codec::{KvDecodeError, Reader};
use super::reply::{KvError, Reply};
use super::state_machine::KvStore;

pub use hash::{HashRead, HashValue, HashWrite};
pub use list::{End, ListPop, ListRead, ListValue, ListWrite};
pub use scan_query::{ScanQuery, ScanRefusal};
pub use set::{SetRead, SetValue, SetWrite};
pub use zset::{Score, SortedSetRead, SortedSetValue, SortedSetWrite};

/// The contents of a key: one of Redis's types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    /// A binary-safe string (also what counters are).
    String(Arc<[u8]>),
    /// A hash: fields to values.
    Hash(Arc<HashValue>),
    /// A list of elements.
    List(Arc<ListValue>),
    /// A set of distinct members.
    Set(Arc<SetValue>),
    /// A sorted set: distinct members ordered by score.
    SortedSet(Arc<SortedSetValue>),
}

impl Data {
    /// The type's name as TYPE answers it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Data::String(_) => "string",
            Data::Hash(_) => "hash",
            Data::List(_) => "list",
            Data::Set(_) => "set",
            Data::SortedSet(_) => "zset",
        }
    }

    /// The string's bytes, or `None` for a collection.
    pub fn as_string(&self) -> Option<&Arc<[u8]>> {
        match self {
            Data::String(bytes) => Some(bytes),
            _ => None,
        }
    }

    /// The memory the value is counted for: a string's length, or a collection's estimate.
    pub fn bytes(&self) -> u64 {
        match self {
            Data::String(bytes) => bytes.len() as u64,
            Data::Hash(hash) => hash.bytes(),
            Data::List(list) => list.bytes(),
            Data::Set(set) => set.bytes(),
            Data::SortedSet(zset) => zset.bytes(),
        }
    }
}

impl From<Arc<[u8]>> for Data {
    fn from(bytes: Arc<[u8]>) -> Data {
        Data::String(bytes)
    }
}

/// A collection type, as the store's type-checked access sees it.
pub trait Collection: Clone + Default {
    /// The collection `data` holds, if it holds this type.
    fn of(data: &Data) -> Option<&Self>;
    /// The collection `data` holds, to change, if it holds this type; copied first if a frozen
    /// snapshot shares it.
    fn of_mut(data: &mut Data) -> Option<&mut Self>;
    /// The collection as a stored value.
    fn into_data(self) -> Data;
    /// Whether it has no elements (Redis deletes such a key).
    fn is_empty(&self) -> bool;
    /// The memory it is counted for, an estimate kept up to date by every change.
    fn bytes(&self) -> u64;
}

/// Implements [`Collection`] for a type held by the `Data` variant `$variant`.
macro_rules! collection {
    ($type:ty, $variant:ident) => {
        impl $crate::kv::types::Collection for $type {
            fn of(data: &$crate::kv::types::Data) -> Option<&Self> {
                match data {
                    $crate::kv::types::Data::$variant(value) => Some(value),
                    _ => None,
                }
            }
            fn of_mut(data: &mut $crate::kv::types::Data) -> Option<&mut Self> {
                match data {
                    $crate::kv::types::Data::$variant(value) => Some(std::sync::Arc::make_mut(value)),
                    _ => None,
                }
            }
            fn into_data(self) -> $crate::kv::types::Data {
                $crate::kv::types::Data::$variant(std::sync::Arc::new(self))
            }
            fn is_empty(&self) -> bool {
                <$type>::is_empty(self)
            }
            fn bytes(&self) -> u64 {
                self.bytes
            }
        }

        impl $type {
            /// Whether it has no elements (Redis deletes such a key).
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }
        }
    };
}
pub(crate) use collection;

/// A collection command that changes the key space: one log operation
/// ([`WriteOp::Collection`](super::command::WriteOp::Collection)).
#[derive(Debug, Clone, PartialEq)]
pub enum CollectionWrite {
    /// A hash command.
    Hash(HashWrite),
    /// A list command.
    List(ListWrite),
    /// A set command.
    Set(SetWrite),
    /// A sorted-set command.
    SortedSet(SortedSetWrite),
}

/// A collection command that only reads.
#[derive(Debug, Clone, PartialEq)]
pub enum CollectionRead {
    /// A hash query.
    Hash(HashRead),
    /// A list query.
    List(ListRead),
    /// A set query.
    Set(SetRead),
    /// A sorted-set query.
    SortedSet(SortedSetRead),
}

// Type tags inside a collection operation. Never renumber: they are on disk.
const TYPE_HASH: u8 = 1;
const TYPE_LIST: u8 = 2;
const TYPE_SET: u8 = 3;
const TYPE_SORTED_SET: u8 = 4;

/// Reads the type tag that starts a collection operation.
fn type_tag(reader: &mut Reader<'_>, field: &'static str) -> Result<u8, KvDecodeError> {
    let offset = reader.offset();
    match reader.u8(field)? {
        tag @ TYPE_HASH..=TYPE_SORTED_SET => Ok(tag),
        tag => Err(KvDecodeError::InvalidTag { field, tag, offset }),
    }
}

impl CollectionWrite {
    /// The keys the command touches, for routing and lazy expiry.
    pub fn keys(&self) -> Vec<&[u8]> {
        match self {
            Self::Hash(op) => op.keys(),
            Self::List(op) => op.keys(),
            Self::Set(op) => op.keys(),
            Self::SortedSet(op) => op.keys(),
        }
    }

    /// Appends the type tag and the command's own encoding.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Hash(op) => {
                out.push(TYPE_HASH);
                op.encode(out);
            }
            Self::List(op) => {
                out.push(TYPE_LIST);
                op.encode(out);
            }
            Self::Set(op) => {
                out.push(TYPE_SET);
                op.encode(out);
            }
            Self::SortedSet(op) => {
                out.push(TYPE_SORTED_SET);
                op.encode(out);
            }
        }
    }

    /// Reads back what [`CollectionWrite::encode`] wrote; never panics, bounded allocation.
    pub(crate) fn decode(reader: &mut Reader<'_>) -> Result<Self, KvDecodeError> {
        Ok(match type_tag(reader, "collection write type")? {
            TYPE_HASH => Self::Hash(HashWrite::decode(reader)?),
            TYPE_LIST => Self::List(ListWrite::decode(reader)?),
            TYPE_SET => Self::Set(SetWrite::decode(reader)?),
            _ => Self::SortedSet(SortedSetWrite::decode(reader)?),
        })
    }

    /// Applies the command at the entry's time `now` and returns Redis's reply.
    pub(crate) fn apply(&self, store: &mut KvStore, now: u64) -> Reply {
        match self {
            Self::Hash(op) => op.apply(store, now),
            Self::List(op) => op.apply(store, now),
            Self::Set(op) => op.apply(store, now),
            Self::SortedSet(op) => op.apply(store, now),
        }
    }
}

impl CollectionRead {
    /// The keys the query touches, for routing.
    pub fn keys(&self) -> Vec<&[u8]> {
        match self {
            Self::Hash(query) => query.keys(),
            Self::List(query) => query.keys(),
            Self::Set(query) => query.keys(),
            Self::SortedSet(query) => query.keys(),
        }
    }

    /// Appends the type tag and the query's own encoding.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Hash(query) => {
                out.push(TYPE_HASH);
                query.encode(out);
            }
            Self::List(query) => {
                out.push(TYPE_LIST);
                query.encode(out);
            }
            Self::Set(query) => {
                out.push(TYPE_SET);
                query.encode(out);
            }
            Self::SortedSet(query) => {
                out.push(TYPE_SORTED_SET);
                query.encode(out);
            }
        }
    }

    /// Reads back what [`CollectionRead::encode`] wrote; never panics, bounded allocation.
    pub(crate) fn decode(reader: &mut Reader<'_>) -> Result<Self, KvDecodeError> {
        Ok(match type_tag(reader, "collection read type")? {
            TYPE_HASH => Self::Hash(HashRead::decode(reader)?),
            TYPE_LIST => Self::List(ListRead::decode(reader)?),
            TYPE_SET => Self::Set(SetRead::decode(reader)?),
            _ => Self::SortedSet(SortedSetRead::decode(reader)?),
        })
    }

    /// Answers the query as Redis would at time `now`.
    pub(crate) fn read(&self, store: &KvStore, now: u64) -> Reply {
        match self {
            Self::Hash(query) => query.read(store, now),
            Self::List(query) => query.read(store, now),
            Self::Set(query) => query.read(store, now),
            Self::SortedSet(query) => query.read(store, now),
        }
    }
}

impl KvStore {
    /// The live collection of type `T` at `key` at time `now`: `Ok(None)` when the key does
    /// not exist, `WRONGTYPE` when it holds another type.
    pub(crate) fn collection<T: Collection>(&self, key: &[u8], now: u64) -> Result<Option<&T>, KvError> {
        match self.get_live(key, now) {
            None => Ok(None),
            Some(value) => T::of(&value.data).map(Some).ok_or(KvError::WrongType),
        }
    }

    /// Runs `change` on the collection of type `T` at `key` (a write: expired keys were
    /// already removed by the state machine). A missing key is created empty first when
    /// `create` is set, otherwise `change` does not run and the answer is `Ok(None)`;
    /// `WRONGTYPE` when the key holds another type. The memory count follows the change, and a
    /// collection left empty deletes its key.
    ///
    /// The key takes the entry's version (a write, as WATCH sees writes), even when the change
    /// left the elements as they were (SADD of a member already there): EXEC may then fail
    /// where Redis's would not, never the other way round. A change that can be refused is
    /// [`KvStore::try_change_collection`].
    pub(crate) fn change_collection<T: Collection, R>(
        &mut self,
        key: &[u8],
        create: bool,
        change: impl FnOnce(&mut T) -> R,
    ) -> Result<Option<R>, KvError> {
        self.change_collection_counted(key, create, change, |_| true)
    }

    /// [`KvStore::change_collection`] for a change that can be refused: a refusal (which must
    /// leave the collection as it was) keeps the key's version, as Redis does not signal a
    /// write that failed; it is the answer, as is WRONGTYPE.
    pub(crate) fn try_change_collection<T: Collection, R>(
        &mut self,
        key: &[u8],
        create: bool,
        change: impl FnOnce(&mut T) -> Result<R, KvError>,
    ) -> Result<Option<R>, KvError> {
        self.change_collection_counted(key, create, change, Result::is_ok)?.transpose()
    }

    /// The body of both: `counts` says whether the change's result is a write.
    fn change_collection_counted<T: Collection, R>(
        &mut self,
        key: &[u8],
        create: bool,
        change: impl FnOnce(&mut T) -> R,
        counts: impl FnOnce(&R) -> bool,
    ) -> Result<Option<R>, KvError> {
        let version = self.write_version;
        // One lookup for an existing key, the usual case.
        let Some(value) = self.entries.get_mut(key) else {
            if !create {
                return Ok(None);
            }
            self.insert_value(key, T::default().into_data(), None);
            return self.change_collection_counted(key, false, change, counts);
        };
        let Some(collection) = T::of_mut(&mut value.data) else {
            return Err(KvError::WrongType);
        };
        let before = collection.bytes();
        let result = change(collection);
        let (after, empty) = (collection.bytes(), collection.is_empty());
        if counts(&result) {
            value.version = version;
        }
        self.data_bytes = self.data_bytes - before + after;
        if empty {
            self.remove(key);
        }
        Ok(Some(result))
    }
}

/// The live string at `key` at time `now`: `Ok(None)` when absent, `WRONGTYPE` when the key
/// holds a collection.
pub(crate) fn live_string<'a>(
    store: &'a KvStore,
    key: &[u8],
    now: u64,
) -> Result<Option<&'a Arc<[u8]>>, KvError> {
    match store.get_live(key, now) {
        None => Ok(None),
        Some(value) => value.data.as_string().map(Some).ok_or(KvError::WrongType),
    }
}

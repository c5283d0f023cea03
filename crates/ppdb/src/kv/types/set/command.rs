//! Set commands: as parsed, as logged, and as applied or answered.
//!
//! # Encoding (inside a collection operation, after type tag 3)
//!
//! `op_tag:u8 fields...`, byte strings and counts as in the rest of the entry (`kv::codec`),
//! bounded as there: member lists and key lists by
//! [`crate::kv::command::BATCH_KEYS_MAX`], each byte string by
//! [`crate::limits::STORED_VALUE_BYTES_MAX`]. An optional field is a 0/1 byte, then the field
//! when 1. A seed is a varint; a combination (inter, union, diff) one byte; an error its
//! [`KvError::wire_tag`].
//!
//! | op | tag | fields |
//! |---|---|---|
//! | SADD | write 1 | key, members |
//! | SREM | write 2 | key, members |
//! | SPOP | write 3 | key, count?, seed |
//! | SMOVE | write 4 | source, destination, member |
//! | S*STORE | write 5 | combination, destination, keys |
//! | SISMEMBER | read 1 | key, member |
//! | SMISMEMBER | read 2 | key, members |
//! | SCARD | read 3 | key |
//! | SRANDMEMBER | read 4 | key, signed count?, seed |
//! | SMEMBERS, SINTER, SUNION, SDIFF | read 5 | combination, keys |
//! | SINTERCARD | read 6 | keys, limit |
//! | SSCAN | read 7 | key, cursor, pattern?, count |
//! | SSCAN refused | read 8 | key, error |

use crate::kv::codec::{put_bytes, put_list, put_option, put_signed, put_varint, KvDecodeError, Reader};
use crate::kv::entry::{key, keys, value};
use crate::kv::reply::{KvError, Reply};
use crate::kv::state_machine::KvStore;
use crate::kv::types::{Collection, ScanQuery, ScanRefusal};

use super::algebra::{intersection, operands};
use super::codec::{algebra, algebra_tag};
use super::SetValue;
use crate::kv::types::draws::Draws;

pub use super::algebra::SetAlgebra;

/// The most bytes, as [`Reply::bytes`] counts them, SRANDMEMBER with a negative count builds:
/// beyond, it answers [`KvError::ReplyTooLarge`] rather than holding a reply no client reads.
pub const RANDOM_REPLY_BYTES_MAX: u64 = crate::limits::REPLY_BYTES_MAX as u64;

/// A set command that changes the key space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetWrite {
    /// SADD: add the members; the reply counts the new ones.
    Add {
        /// The key.
        key: Vec<u8>,
        /// Members to add.
        members: Vec<Vec<u8>>,
    },
    /// SREM: remove the members; the reply counts those that were there.
    Remove {
        /// The key.
        key: Vec<u8>,
        /// Members to remove.
        members: Vec<Vec<u8>>,
    },
    /// SPOP: remove random members and return them.
    Pop {
        /// The key.
        key: Vec<u8>,
        /// `None`: one member, a bulk reply (nil when the key is missing). A count: up to that
        /// many members, a set reply.
        count: Option<u64>,
        /// Where the choice comes from, drawn by the parser (the same on every replica).
        seed: u64,
    },
    /// SMOVE: move a member from one set to another.
    Move {
        /// The set it leaves.
        source: Vec<u8>,
        /// The set it joins (created if missing).
        destination: Vec<u8>,
        /// The member.
        member: Vec<u8>,
    },
    /// SINTERSTORE, SUNIONSTORE, SDIFFSTORE: the combination replaces the destination, whatever
    /// it held; an empty one deletes it.
    Store {
        /// How the sets are combined.
        algebra: SetAlgebra,
        /// Where the result goes.
        destination: Vec<u8>,
        /// The sets combined, in order.
        keys: Vec<Vec<u8>>,
    },
}

/// A set command that only reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetRead {
    /// SISMEMBER.
    IsMember {
        /// The key.
        key: Vec<u8>,
        /// The member.
        member: Vec<u8>,
    },
    /// SMISMEMBER: 1 or 0 for each member.
    AreMembers {
        /// The key.
        key: Vec<u8>,
        /// The members.
        members: Vec<Vec<u8>>,
    },
    /// SCARD.
    Card {
        /// The key.
        key: Vec<u8>,
    },
    /// SRANDMEMBER: random members, the set unchanged.
    RandomMembers {
        /// The key.
        key: Vec<u8>,
        /// `None`: one member, a bulk reply. Positive: that many distinct members at most.
        /// Negative: that many members, which may repeat.
        count: Option<i64>,
        /// Where the choice comes from, drawn by the parser.
        seed: u64,
    },
    /// SMEMBERS (the intersection of one set), SINTER, SUNION, SDIFF.
    Combine {
        /// How the sets are combined.
        algebra: SetAlgebra,
        /// The sets, in order.
        keys: Vec<Vec<u8>>,
    },
    /// SINTERCARD: the size of the intersection, counting stops at `limit` (0: no limit).
    IntersectionCard {
        /// The sets.
        keys: Vec<Vec<u8>>,
        /// Where counting stops; 0 counts everything.
        limit: u64,
    },
    /// SSCAN: one page of members.
    Scan(ScanQuery),
    /// SSCAN with options Redis refuses: a set answers the refusal's error.
    ScanRefused(ScanRefusal),
}

// Operation tags. Never renumber: they are on disk.
const WRITE_ADD: u8 = 1;
const WRITE_REMOVE: u8 = 2;
const WRITE_POP: u8 = 3;
const WRITE_MOVE: u8 = 4;
const WRITE_STORE: u8 = 5;
const READ_IS_MEMBER: u8 = 1;
const READ_ARE_MEMBERS: u8 = 2;
const READ_CARD: u8 = 3;
const READ_RANDOM_MEMBERS: u8 = 4;
const READ_COMBINE: u8 = 5;
const READ_INTERSECTION_CARD: u8 = 6;
const READ_SCAN: u8 = 7;
const READ_SCAN_REFUSED: u8 = 8;

impl SetWrite {
    /// The keys the command touches.
    pub fn keys(&self) -> Vec<&[u8]> {
        match self {
            Self::Add { key, .. } | Self::Remove { key, .. } | Self::Pop { key, .. } => vec![key.as_slice()],
            Self::Move { source, destination, .. } => vec![source.as_slice(), destination.as_slice()],
            Self::Store { destination, keys, .. } => {
                std::iter::once(destination).chain(keys).map(Vec::as_slice).collect()
            }
        }
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Add { key, members } | Self::Remove { key, members } => {
                out.push(if matches!(self, Self::Add { .. }) { WRITE_ADD } else { WRITE_REMOVE });
                put_bytes(out, key);
                put_list(out, members);
            }
            Self::Pop { key, count, seed } => {
                out.push(WRITE_POP);
                put_bytes(out, key);
                put_option(out, *count, put_varint);
                put_varint(out, *seed);
            }
            Self::Move { source, destination, member } => {
                out.push(WRITE_MOVE);
                put_bytes(out, source);
                put_bytes(out, destination);
                put_bytes(out, member);
            }
            Self::Store { algebra, destination, keys } => {
                out.push(WRITE_STORE);
                out.push(algebra_tag(*algebra));
                put_bytes(out, destination);
                put_list(out, keys);
            }
        }
    }

    pub(crate) fn decode(reader: &mut Reader<'_>) -> Result<Self, KvDecodeError> {
        let offset = reader.offset();
        Ok(match reader.u8("set write")? {
            WRITE_ADD => Self::Add { key: key(reader)?, members: keys(reader)? },
            WRITE_REMOVE => Self::Remove { key: key(reader)?, members: keys(reader)? },
            WRITE_POP => Self::Pop {
                key: key(reader)?,
                count: reader.option(|r| r.varint("spop count"))?,
                seed: reader.varint("spop seed")?,
            },
            WRITE_MOVE => {
                Self::Move { source: key(reader)?, destination: key(reader)?, member: value(reader)? }
            }
            WRITE_STORE => {
                Self::Store { algebra: algebra(reader)?, destination: key(reader)?, keys: keys(reader)? }
            }
            tag => return Err(KvDecodeError::InvalidTag { field: "set write", tag, offset }),
        })
    }

    pub(crate) fn apply(&self, store: &mut KvStore, now: u64) -> Reply {
        let reply = match self {
            Self::Add { key, members } => store
                .change_collection(key, true, |set: &mut SetValue| {
                    members.iter().filter(|m| set.insert(m)).count()
                })
                .map(|added| Reply::Integer(added.unwrap_or(0) as i64)),
            Self::Remove { key, members } => store
                .change_collection(key, false, |set: &mut SetValue| {
                    members.iter().filter(|m| set.remove(m)).count()
                })
                .map(|removed| Reply::Integer(removed.unwrap_or(0) as i64)),
            Self::Pop { key, count, seed } => pop(store, key, *count, *seed, now),
            Self::Move { source, destination, member } => {
                move_member(store, source, destination, member, now)
            }
            Self::Store { algebra, destination, keys } => {
                let result =
                    operands(store, keys, now).map(|sets| algebra.combine(&sets).into_iter().collect());
                result.map(|result: SetValue| {
                    let len = result.len();
                    store.replace_with_set(destination, result);
                    Reply::Integer(len as i64)
                })
            }
        };
        reply.unwrap_or_else(Reply::Error)
    }
}

/// SPOP: one member (bulk or nil), or up to `count` (a set reply).
fn pop(store: &mut KvStore, key: &[u8], count: Option<u64>, seed: u64, now: u64) -> Result<Reply, KvError> {
    let draws = &mut Draws::new(seed);
    match count {
        None => {
            let popped =
                store.change_collection(key, false, |set: &mut SetValue| set.pop_random(1, draws).pop());
            Ok(Reply::bulk_or_nil(popped?.flatten().as_deref()))
        }
        Some(0) => store.collection::<SetValue>(key, now).map(|_| Reply::Set(Vec::new())),
        Some(count) => {
            let popped =
                store.change_collection(key, false, |set: &mut SetValue| set.pop_random(count, draws))?;
            Ok(Reply::Set(
                popped.unwrap_or_default().into_iter().map(|m| Reply::Bulk(m.into_vec())).collect(),
            ))
        }
    }
}

/// SMOVE: 0 when the source is missing (whatever the destination holds) or lacks the member;
/// WRONGTYPE when either key holds another type; moving within one set changes nothing.
fn move_member(
    store: &mut KvStore,
    source: &[u8],
    destination: &[u8],
    member: &[u8],
    now: u64,
) -> Result<Reply, KvError> {
    let Some(from) = store.collection::<SetValue>(source, now)? else {
        return Ok(Reply::Integer(0));
    };
    let present = from.contains(member);
    store.collection::<SetValue>(destination, now)?;
    if !present {
        return Ok(Reply::Integer(0));
    }
    if source != destination {
        store.change_collection(source, false, |set: &mut SetValue| set.remove(member))?;
        store.change_collection(destination, true, |set: &mut SetValue| set.insert(member))?;
    }
    Ok(Reply::Integer(1))
}

impl KvStore {
    /// Replaces whatever `key` holds with `set`, without an expiry; deletes `key` when `set`
    /// is empty (the STORE commands).
    fn replace_with_set(&mut self, key: &[u8], set: SetValue) {
        self.remove(key);
        if !set.is_empty() {
            self.insert_value(key, set.into_data(), None);
        }
    }
}

impl SetRead {
    /// The keys the query touches.
    pub fn keys(&self) -> Vec<&[u8]> {
        match self {
            Self::IsMember { key, .. }
            | Self::AreMembers { key, .. }
            | Self::Card { key }
            | Self::RandomMembers { key, .. }
            | Self::Scan(ScanQuery { key, .. })
            | Self::ScanRefused(ScanRefusal { key, .. }) => vec![key.as_slice()],
            Self::Combine { keys, .. } | Self::IntersectionCard { keys, .. } => {
                keys.iter().map(Vec::as_slice).collect()
            }
        }
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::IsMember { key, member } => {
                out.push(READ_IS_MEMBER);
                put_bytes(out, key);
                put_bytes(out, member);
            }
            Self::AreMembers { key, members } => {
                out.push(READ_ARE_MEMBERS);
                put_bytes(out, key);
                put_list(out, members);
            }
            Self::Card { key } => {
                out.push(READ_CARD);
                put_bytes(out, key);
            }
            Self::RandomMembers { key, count, seed } => {
                out.push(READ_RANDOM_MEMBERS);
                put_bytes(out, key);
                put_option(out, *count, put_signed);
                put_varint(out, *seed);
            }
            Self::Combine { algebra, keys } => {
                out.push(READ_COMBINE);
                out.push(algebra_tag(*algebra));
                put_list(out, keys);
            }
            Self::IntersectionCard { keys, limit } => {
                out.push(READ_INTERSECTION_CARD);
                put_list(out, keys);
                put_varint(out, *limit);
            }
            Self::Scan(query) => {
                out.push(READ_SCAN);
                query.encode(out);
            }
            Self::ScanRefused(refusal) => {
                out.push(READ_SCAN_REFUSED);
                refusal.encode(out);
            }
        }
    }

    pub(crate) fn decode(reader: &mut Reader<'_>) -> Result<Self, KvDecodeError> {
        let offset = reader.offset();
        Ok(match reader.u8("set read")? {
            READ_IS_MEMBER => Self::IsMember { key: key(reader)?, member: value(reader)? },
            READ_ARE_MEMBERS => Self::AreMembers { key: key(reader)?, members: keys(reader)? },
            READ_CARD => Self::Card { key: key(reader)? },
            READ_RANDOM_MEMBERS => Self::RandomMembers {
                key: key(reader)?,
                count: reader.option(|r| r.signed("srandmember count"))?,
                seed: reader.varint("srandmember seed")?,
            },
            READ_COMBINE => Self::Combine { algebra: algebra(reader)?, keys: keys(reader)? },
            READ_INTERSECTION_CARD => {
                Self::IntersectionCard { keys: keys(reader)?, limit: reader.varint("sintercard limit")? }
            }
            READ_SCAN => Self::Scan(ScanQuery::decode(reader)?),
            READ_SCAN_REFUSED => Self::ScanRefused(ScanRefusal::decode(reader)?),
            tag => return Err(KvDecodeError::InvalidTag { field: "set read", tag, offset }),
        })
    }

    pub(crate) fn read(&self, store: &KvStore, now: u64) -> Reply {
        let set = |key: &[u8]| store.collection::<SetValue>(key, now);
        let result = match self {
            Self::IsMember { key, member } => {
                set(key).map(|set| flag(set.is_some_and(|s| s.contains(member))))
            }
            Self::AreMembers { key, members } => set(key).map(|set| {
                Reply::Array(members.iter().map(|m| flag(set.is_some_and(|s| s.contains(m)))).collect())
            }),
            Self::Card { key } => set(key).map(|set| Reply::Integer(set.map_or(0, |s| s.len() as i64))),
            Self::RandomMembers { key, count, seed } => {
                set(key).and_then(|set| random_members(set, *count, *seed))
            }
            Self::Combine { algebra, keys } => {
                operands(store, keys, now).map(|sets| bulks(algebra.combine(&sets), Reply::Set))
            }
            Self::IntersectionCard { keys, limit } => operands(store, keys, now).map(|sets| {
                let limit =
                    if *limit == 0 { usize::MAX } else { usize::try_from(*limit).unwrap_or(usize::MAX) };
                Reply::Integer(intersection(&sets).take(limit).count() as i64)
            }),
            Self::Scan(ScanQuery { key, cursor, pattern, count }) => set(key).map(|set| {
                let page = set.map(|s| s.scan(*cursor, pattern.as_deref(), *count));
                let (cursor, members) = page.map_or((0, Vec::new()), |page| (page.cursor, page.members));
                Reply::Array(vec![Reply::Bulk(cursor.to_string().into_bytes()), bulks(members, Reply::Array)])
            }),
            Self::ScanRefused(ScanRefusal { key, error }) => set(key).and_then(|set| match set {
                None => Ok(Reply::Array(vec![Reply::Bulk(b"0".to_vec()), Reply::Array(Vec::new())])),
                Some(_) => Err(*error),
            }),
        };
        result.unwrap_or_else(Reply::Error)
    }
}

/// SRANDMEMBER's reply: a bulk (nil for a missing key) without a count, an array with one.
fn random_members(set: Option<&SetValue>, count: Option<i64>, seed: u64) -> Result<Reply, KvError> {
    let draws = &mut Draws::new(seed);
    let Some(count) = count else {
        return Ok(Reply::bulk_or_nil(set.and_then(|set| set.sample_with_repeats(draws).next())));
    };
    let Some(set) = set else {
        return Ok(Reply::Array(Vec::new()));
    };
    if count >= 0 {
        return Ok(bulks(set.sample_distinct(count.unsigned_abs(), draws), Reply::Array));
    }
    let mut bytes = 0u64;
    let mut members = Vec::new();
    for member in
        set.sample_with_repeats(draws).take(usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX))
    {
        bytes += crate::kv::reply::REPLY_ELEMENT_BYTES + member.len() as u64;
        if bytes > RANDOM_REPLY_BYTES_MAX {
            return Err(KvError::ReplyTooLarge);
        }
        members.push(Reply::Bulk(member.to_vec()));
    }
    Ok(Reply::Array(members))
}

/// Members as bulk replies, in an array or a set reply.
fn bulks(members: Vec<&[u8]>, reply: fn(Vec<Reply>) -> Reply) -> Reply {
    reply(members.into_iter().map(|m| Reply::Bulk(m.to_vec())).collect())
}

/// 1 or 0.
fn flag(yes: bool) -> Reply {
    Reply::Integer(i64::from(yes))
}

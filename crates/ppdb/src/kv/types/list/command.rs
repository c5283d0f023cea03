//! List commands: as parsed, as logged, and as applied or answered.
//!
//! # Encoding (inside a collection operation, after type tag 2)
//!
//! `op_tag:u8 fields...`: byte strings and counts as in the rest of the entry (`kv::codec`),
//! bounded as there; indexes and counts are signed varints; `opt(x)` is a byte 0 (absent) or
//! 1 followed by `x`.
//!
//! | command                        | tag | fields                                           |
//! |--------------------------------|-----|--------------------------------------------------|
//! | LPUSH, RPUSH, LPUSHX, RPUSHX   | w1  | key, side:u8, existing_only:u8, n, n elements    |
//! | LSET                           | w2  | key, opt(index), element                         |
//! | LINSERT                        | w3  | key, after:u8, pivot, element                    |
//! | LREM                           | w4  | key, count, element                              |
//! | LTRIM                          | w5  | key, start, stop                                 |
//! | LRANGE                         | r1  | key, start, stop                                 |
//! | LINDEX                         | r2  | key, opt(index)                                  |
//! | LLEN                           | r3  | key                                              |
//! | LPOS                           | r4  | key, element, rank, opt(count:varint), maxlen:varint |

use std::ops::RangeInclusive;

use crate::kv::codec::{put_bytes, put_signed, put_varint, KvDecodeError, Reader};
use crate::kv::command::BATCH_KEYS_MAX;
use crate::kv::entry::{key, value};
use crate::kv::reply::{KvError, Reply};
use crate::kv::state_machine::KvStore;

use super::ListValue;

/// The end of a list a command works at: the head (left) or the tail (right).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The head: index 0.
    Left,
    /// The tail: index -1.
    Right,
}
use super::pop::ListPop;

/// A list command that changes the key space.
#[derive(Debug, Clone, PartialEq)]
pub enum ListWrite {
    /// LPUSH, RPUSH, LPUSHX, RPUSHX: push every element at one end, in order.
    Push {
        /// The key.
        key: Vec<u8>,
        /// The elements, in the order they are pushed.
        elements: Vec<Vec<u8>>,
        /// Where they go.
        side: Side,
        /// LPUSHX and RPUSHX: push only onto an existing list.
        existing_only: bool,
    },
    /// LSET: replace the element at an index.
    Set {
        /// The key.
        key: Vec<u8>,
        /// The index, negative from the tail; `None` when the argument is not an integer,
        /// which Redis reports only after finding the list.
        index: Option<i64>,
        /// The new element.
        element: Vec<u8>,
    },
    /// LINSERT: add an element before or after the first occurrence of a pivot. O(n).
    Insert {
        /// The key.
        key: Vec<u8>,
        /// AFTER the pivot (otherwise BEFORE).
        after: bool,
        /// The element to look for, from the head.
        pivot: Vec<u8>,
        /// The element to add.
        element: Vec<u8>,
    },
    /// LREM: remove occurrences of an element. O(n).
    Remove {
        /// The key.
        key: Vec<u8>,
        /// How many, from the head (> 0) or from the tail (< 0); 0 for all.
        count: i64,
        /// The element to remove.
        element: Vec<u8>,
    },
    /// LTRIM: keep only a range of indexes.
    Trim {
        /// The key.
        key: Vec<u8>,
        /// First index kept, negative from the tail.
        start: i64,
        /// Last index kept, negative from the tail.
        stop: i64,
    },
    /// LPOP, RPOP, LMPOP, LMOVE, RPOPLPUSH and the blocking pops' non-blocking form.
    Pop(ListPop),
}

// List write tags. Never renumber: they are on disk. The pops' own tags follow theirs.
const WRITE_POP: u8 = 64;

/// A list command that only reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListRead {
    /// LRANGE.
    Range {
        /// The key.
        key: Vec<u8>,
        /// First index, negative from the tail.
        start: i64,
        /// Last index, negative from the tail.
        stop: i64,
    },
    /// LINDEX.
    Index {
        /// The key.
        key: Vec<u8>,
        /// The index, negative from the tail; `None` when the argument is not an integer,
        /// which Redis reports only after finding the list.
        index: Option<i64>,
    },
    /// LLEN.
    Len {
        /// The key.
        key: Vec<u8>,
    },
    /// LPOS: the indexes where an element occurs. O(n).
    Position {
        /// The key.
        key: Vec<u8>,
        /// The element to look for.
        element: Vec<u8>,
        /// RANK: which match comes first, from the head (> 0) or the tail (< 0); never 0.
        rank: i64,
        /// COUNT: how many matches to answer with (0 for all); `None` for one, not as an array.
        count: Option<u64>,
        /// MAXLEN: how many elements to compare at most (0 for all).
        max_len: u64,
    },
}

// Operation tags. Never renumber: they are on disk.
const WRITE_PUSH: u8 = 1;
const WRITE_SET: u8 = 2;
const WRITE_INSERT: u8 = 3;
const WRITE_REMOVE: u8 = 4;
const WRITE_TRIM: u8 = 5;
const READ_RANGE: u8 = 1;
const READ_INDEX: u8 = 2;
const READ_LEN: u8 = 3;
const READ_POSITION: u8 = 4;

impl ListWrite {
    /// The keys the command touches.
    pub fn keys(&self) -> Vec<&[u8]> {
        match self {
            Self::Push { key, .. }
            | Self::Set { key, .. }
            | Self::Insert { key, .. }
            | Self::Remove { key, .. }
            | Self::Trim { key, .. } => vec![key.as_slice()],
            Self::Pop(pop) => pop.keys(),
        }
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Push { key, elements, side, existing_only } => {
                out.push(WRITE_PUSH);
                put_bytes(out, key);
                out.push(u8::from(*side == Side::Right));
                out.push(u8::from(*existing_only));
                put_varint(out, elements.len() as u64);
                elements.iter().for_each(|element| put_bytes(out, element));
            }
            Self::Set { key, index, element } => {
                out.push(WRITE_SET);
                put_bytes(out, key);
                put_optional_index(out, *index);
                put_bytes(out, element);
            }
            Self::Insert { key, after, pivot, element } => {
                out.push(WRITE_INSERT);
                put_bytes(out, key);
                out.push(u8::from(*after));
                put_bytes(out, pivot);
                put_bytes(out, element);
            }
            Self::Remove { key, count, element } => {
                out.push(WRITE_REMOVE);
                put_bytes(out, key);
                put_signed(out, *count);
                put_bytes(out, element);
            }
            Self::Trim { key, start, stop } => {
                out.push(WRITE_TRIM);
                put_bytes(out, key);
                put_signed(out, *start);
                put_signed(out, *stop);
            }
            Self::Pop(pop) => {
                out.push(WRITE_POP);
                pop.encode(out);
            }
        }
    }

    pub(crate) fn decode(reader: &mut Reader<'_>) -> Result<Self, KvDecodeError> {
        let offset = reader.offset();
        Ok(match reader.u8("list write")? {
            WRITE_PUSH => Self::Push {
                key: key(reader)?,
                side: if flag(reader, "push side")? { Side::Right } else { Side::Left },
                existing_only: flag(reader, "push existing only")?,
                elements: elements(reader)?,
            },
            WRITE_SET => {
                Self::Set { key: key(reader)?, index: optional_index(reader)?, element: value(reader)? }
            }
            WRITE_INSERT => Self::Insert {
                key: key(reader)?,
                after: flag(reader, "insert after")?,
                pivot: value(reader)?,
                element: value(reader)?,
            },
            WRITE_REMOVE => Self::Remove {
                key: key(reader)?,
                count: reader.signed("remove count")?,
                element: value(reader)?,
            },
            WRITE_TRIM => Self::Trim {
                key: key(reader)?,
                start: reader.signed("trim start")?,
                stop: reader.signed("trim stop")?,
            },
            WRITE_POP => Self::Pop(ListPop::decode(reader)?),
            tag => return Err(KvDecodeError::InvalidTag { field: "list write", tag, offset }),
        })
    }

    pub(crate) fn apply(&self, store: &mut KvStore, now: u64) -> Reply {
        match self {
            Self::Push { key, elements, side, existing_only } => {
                let pushed = store.change_collection(key, !existing_only, |list: &mut ListValue| {
                    for element in elements {
                        match side {
                            Side::Left => list.push_front(element),
                            Side::Right => list.push_back(element),
                        }
                    }
                    list.len() as i64
                });
                integer_or_zero(pushed)
            }
            Self::Set { key, index, element } => {
                let set = store.change_collection(key, false, |list: &mut ListValue| {
                    let index = index.ok_or(KvError::NotInteger)?;
                    let at = element_index(list.len(), index).ok_or(KvError::IndexOutOfRange)?;
                    list.replace(at, element);
                    Ok(())
                });
                match set.and_then(|set| set.ok_or(KvError::NoSuchKey)?) {
                    Ok(()) => Reply::Ok,
                    Err(error) => Reply::Error(error),
                }
            }
            Self::Insert { key, after, pivot, element } => {
                let inserted = store.change_collection(key, false, |list: &mut ListValue| {
                    let Some(at) = list.iter().position(|item| item == pivot.as_slice()) else {
                        return -1;
                    };
                    list.insert(at + usize::from(*after), element);
                    list.len() as i64
                });
                integer_or_zero(inserted)
            }
            Self::Remove { key, count, element } => {
                let limit = usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX);
                let removed = store.change_collection(key, false, |list: &mut ListValue| {
                    list.remove_matching(element, *count >= 0, limit) as i64
                });
                integer_or_zero(removed)
            }
            Self::Trim { key, start, stop } => {
                let trimmed = store.change_collection(key, false, |list: &mut ListValue| {
                    match clamp_range(list.len(), *start, *stop) {
                        Some(kept) => list.keep_range(*kept.start(), kept.end() + 1),
                        None => list.keep_range(0, 0),
                    }
                });
                trimmed.map_or_else(Reply::Error, |_| Reply::Ok)
            }
            Self::Pop(pop) => pop.apply(store, now),
        }
    }
}

impl ListRead {
    /// The keys the query touches.
    pub fn keys(&self) -> Vec<&[u8]> {
        match self {
            Self::Range { key, .. }
            | Self::Index { key, .. }
            | Self::Len { key }
            | Self::Position { key, .. } => {
                vec![key.as_slice()]
            }
        }
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Range { key, start, stop } => {
                out.push(READ_RANGE);
                put_bytes(out, key);
                put_signed(out, *start);
                put_signed(out, *stop);
            }
            Self::Index { key, index } => {
                out.push(READ_INDEX);
                put_bytes(out, key);
                put_optional_index(out, *index);
            }
            Self::Len { key } => {
                out.push(READ_LEN);
                put_bytes(out, key);
            }
            Self::Position { key, element, rank, count, max_len } => {
                out.push(READ_POSITION);
                put_bytes(out, key);
                put_bytes(out, element);
                put_signed(out, *rank);
                match count {
                    None => out.push(0),
                    Some(count) => {
                        out.push(1);
                        put_varint(out, *count);
                    }
                }
                put_varint(out, *max_len);
            }
        }
    }

    pub(crate) fn decode(reader: &mut Reader<'_>) -> Result<Self, KvDecodeError> {
        let offset = reader.offset();
        Ok(match reader.u8("list read")? {
            READ_RANGE => Self::Range {
                key: key(reader)?,
                start: reader.signed("range start")?,
                stop: reader.signed("range stop")?,
            },
            READ_INDEX => Self::Index { key: key(reader)?, index: optional_index(reader)? },
            READ_LEN => Self::Len { key: key(reader)? },
            READ_POSITION => {
                let (key, element) = (key(reader)?, value(reader)?);
                let rank_offset = reader.offset();
                let rank = reader.signed("position rank")?;
                if rank == 0 {
                    return Err(KvDecodeError::Invalid { field: "position rank", offset: rank_offset });
                }
                let count = if flag(reader, "position count given")? {
                    Some(reader.varint("position count")?)
                } else {
                    None
                };
                Self::Position { key, element, rank, count, max_len: reader.varint("position max length")? }
            }
            tag => return Err(KvDecodeError::InvalidTag { field: "list read", tag, offset }),
        })
    }

    pub(crate) fn read(&self, store: &KvStore, now: u64) -> Reply {
        let list = |key: &[u8]| store.collection::<ListValue>(key, now);
        let reply = match self {
            Self::Range { key, start, stop } => list(key).map(|list| range_reply(list, *start, *stop)),
            Self::Index { key, index } => list(key).and_then(|list| {
                let Some(list) = list else { return Ok(Reply::Nil) };
                let index = index.ok_or(KvError::NotInteger)?;
                Ok(Reply::bulk_or_nil(element_index(list.len(), index).and_then(|at| list.get(at))))
            }),
            Self::Len { key } => {
                list(key).map(|list| Reply::Integer(list.map_or(0, |list| list.len() as i64)))
            }
            Self::Position { key, element, rank, count, max_len } => {
                list(key).map(|list| position_reply(list, element, *rank, *count, *max_len))
            }
        };
        reply.unwrap_or_else(Reply::Error)
    }
}

/// The reply of a command answering a length or count: 0 when the key did not exist.
fn integer_or_zero(result: Result<Option<i64>, KvError>) -> Reply {
    match result {
        Ok(count) => Reply::Integer(count.unwrap_or(0)),
        Err(error) => Reply::Error(error),
    }
}

/// The position of `index` (negative from the tail) in a list of `len` elements, if it is in it.
fn element_index(len: usize, index: i64) -> Option<usize> {
    let len = i64::try_from(len).ok()?;
    let index = if index < 0 { len.checked_add(index)? } else { index };
    (0..len).contains(&index).then_some(index as usize)
}

/// LRANGE's and LTRIM's index arithmetic, as Redis 7's: negative indexes count from the tail,
/// a start before the head is the head, a stop past the tail is the tail; `None` when no index
/// is left.
fn clamp_range(len: usize, start: i64, stop: i64) -> Option<RangeInclusive<usize>> {
    let len = i64::try_from(len).ok()?;
    let from_tail = |index: i64| if index < 0 { len.saturating_add(index) } else { index };
    let (start, stop) = (from_tail(start).max(0), from_tail(stop));
    if start > stop || start >= len {
        return None;
    }
    // 0 <= start <= stop here, and both are below `len` once stop is clamped.
    Some(start as usize..=stop.min(len - 1) as usize)
}

fn range_reply(list: Option<&ListValue>, start: i64, stop: i64) -> Reply {
    let Some(range) = list.and_then(|list| clamp_range(list.len(), start, stop).map(|range| (list, range)))
    else {
        return Reply::Array(Vec::new());
    };
    let (list, range) = range;
    let elements = list.iter().skip(*range.start()).take(range.end() - range.start() + 1);
    Reply::Array(elements.map(|element| Reply::Bulk(element.to_vec())).collect())
}

/// LPOS: the index of the first match counted by `rank` (or, with `count`, an array of up to
/// `count` of them), comparing at most `max_len` elements from the chosen end.
fn position_reply(
    list: Option<&ListValue>,
    element: &[u8],
    rank: i64,
    count: Option<u64>,
    max_len: u64,
) -> Reply {
    let Some(list) = list else {
        return if count.is_some() { Reply::Array(Vec::new()) } else { Reply::Nil };
    };
    // Redis 7.0 negates RANK i64::MIN to itself, so its tests `matches >= rank` and
    // `matches - rank + 1 >= count` always and never pass: it answers the first match from the
    // tail and, with COUNT, every match.
    let (skipped, count) = match rank {
        i64::MIN => (0, count.map(|_| 0)),
        rank => (rank.unsigned_abs().saturating_sub(1), count),
    };
    let compared = usize::try_from(max_len).ok().filter(|&max_len| max_len > 0).unwrap_or(usize::MAX);
    let matching = |(_, item): &(usize, &[u8])| *item == element;
    let indexes: Box<dyn Iterator<Item = usize>> = if rank > 0 {
        Box::new(list.iter().enumerate().take(compared).filter(matching).map(|(index, _)| index))
    } else {
        Box::new(list.iter().enumerate().rev().take(compared).filter(matching).map(|(index, _)| index))
    };
    let mut indexes = indexes.skip(usize::try_from(skipped).unwrap_or(usize::MAX));
    let Some(count) = count else {
        return indexes.next().map_or(Reply::Nil, |index| Reply::Integer(index as i64));
    };
    let limit = match count {
        0 => usize::MAX,
        count => usize::try_from(count).unwrap_or(usize::MAX),
    };
    Reply::Array(indexes.take(limit).map(|index| Reply::Integer(index as i64)).collect())
}

/// A 0/1 flag byte.
fn flag(reader: &mut Reader<'_>, field: &'static str) -> Result<bool, KvDecodeError> {
    let offset = reader.offset();
    match reader.u8(field)? {
        0 => Ok(false),
        1 => Ok(true),
        tag => Err(KvDecodeError::InvalidTag { field, tag, offset }),
    }
}

fn put_optional_index(out: &mut Vec<u8>, index: Option<i64>) {
    match index {
        None => out.push(0),
        Some(index) => {
            out.push(1);
            put_signed(out, index);
        }
    }
}

fn optional_index(reader: &mut Reader<'_>) -> Result<Option<i64>, KvDecodeError> {
    Ok(if flag(reader, "index given")? { Some(reader.signed("index")?) } else { None })
}

/// A counted list of elements, bounded by [`BATCH_KEYS_MAX`].
fn elements(reader: &mut Reader<'_>) -> Result<Vec<Vec<u8>>, KvDecodeError> {
    let count = reader.count("element count", BATCH_KEYS_MAX)?;
    // Each element takes at least a byte, so never reserve more than the input can hold.
    let mut elements = Vec::with_capacity((count as usize).min(reader.remaining()));
    for _ in 0..count {
        elements.push(value(reader)?);
    }
    Ok(elements)
}

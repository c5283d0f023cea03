//! HSCAN, SSCAN and ZSCAN's request, the same for the three types: one page of a collection's
//! elements from a cursor, or the options Redis refuses once it has looked the key up (a
//! missing key still answers an empty page, another type still WRONGTYPE).

use crate::kv::codec::{put_bytes, put_option, put_varint, KvDecodeError, Reader};
use crate::kv::entry::{key, value};
use crate::kv::reply::KvError;

/// One page of a collection's elements, with valid options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanQuery {
    /// The key.
    pub key: Vec<u8>,
    /// Where the page starts; 0 starts from the beginning.
    pub cursor: u64,
    /// MATCH: only elements matching this glob pattern.
    pub pattern: Option<Vec<u8>>,
    /// COUNT: about how many elements the page visits; at least 1.
    pub count: u64,
}

/// A scan whose options Redis refuses, but only after looking the key up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanRefusal {
    /// The key.
    pub key: Vec<u8>,
    /// Why the options are refused.
    pub error: KvError,
}

impl ScanQuery {
    /// Appends the query's fields.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        put_bytes(out, &self.key);
        put_varint(out, self.cursor);
        put_option(out, self.pattern.as_deref(), put_bytes);
        put_varint(out, self.count);
    }

    /// Reads what [`ScanQuery::encode`] wrote; a count of 0 is refused (the parser never
    /// sends one).
    pub(crate) fn decode(reader: &mut Reader<'_>) -> Result<Self, KvDecodeError> {
        let key = key(reader)?;
        let cursor = reader.varint("scan cursor")?;
        let pattern = reader.option(value)?;
        let offset = reader.offset();
        let count = reader.varint("scan count")?;
        if count == 0 {
            return Err(KvDecodeError::Invalid { field: "scan count", offset });
        }
        Ok(ScanQuery { key, cursor, pattern, count })
    }
}

impl ScanRefusal {
    /// Appends the key and the error's wire tag.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        put_bytes(out, &self.key);
        out.push(self.error.wire_tag());
    }

    /// Reads what [`ScanRefusal::encode`] wrote.
    pub(crate) fn decode(reader: &mut Reader<'_>) -> Result<Self, KvDecodeError> {
        let key = key(reader)?;
        let offset = reader.offset();
        let tag = reader.u8("scan error")?;
        let error = KvError::from_wire_tag(tag).ok_or(KvDecodeError::InvalidTag {
            field: "scan error",
            tag,
            offset,
        })?;
        Ok(ScanRefusal { key, error })
    }
}

#[cfg(test)]
pub(crate) mod strategies {
    //! Arbitrary scans, for the types' encoding round-trip tests.

    use super::*;
    use proptest::prelude::*;

    /// Any valid scan query.
    pub(crate) fn scan_query() -> impl Strategy<Value = ScanQuery> {
        let bytes = || proptest::collection::vec(any::<u8>(), 0..8);
        (bytes(), any::<u64>(), proptest::option::of(bytes()), 1..u64::MAX)
            .prop_map(|(key, cursor, pattern, count)| ScanQuery { key, cursor, pattern, count })
    }

    /// Any refusal.
    pub(crate) fn scan_refusal() -> impl Strategy<Value = ScanRefusal> {
        let bytes = proptest::collection::vec(any::<u8>(), 0..8);
        (bytes, any::<u8>().prop_filter_map("a known error", KvError::from_wire_tag))
            .prop_map(|(key, error)| ScanRefusal { key, error })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_and_refusals_round_trip_and_a_zero_count_is_refused() {
        let query = ScanQuery { key: b"k".to_vec(), cursor: 7, pattern: Some(b"a*".to_vec()), count: 3 };
        let mut out = Vec::new();
        query.encode(&mut out);
        assert_eq!(ScanQuery::decode(&mut Reader::new(&out)), Ok(query.clone()));
        let zero = ScanQuery { count: 0, ..query };
        out.clear();
        zero.encode(&mut out);
        assert!(matches!(ScanQuery::decode(&mut Reader::new(&out)), Err(KvDecodeError::Invalid { .. })));
        let refusal = ScanRefusal { key: b"k".to_vec(), error: KvError::Syntax };
        out.clear();
        refusal.encode(&mut out);
        assert_eq!(ScanRefusal::decode(&mut Reader::new(&out)), Ok(refusal));
    }
}

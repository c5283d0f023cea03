//! The field encodings of the set commands (the layout is in `command`'s docs).

use crate::kv::codec::{put_bytes, put_varint, KvDecodeError, Reader};
use crate::kv::reply::KvError;

use super::SetAlgebra;

/// Appends a counted list of byte strings.
pub(super) fn put_list(out: &mut Vec<u8>, items: &[Vec<u8>]) {
    put_varint(out, items.len() as u64);
    for item in items {
        put_bytes(out, item);
    }
}

/// Appends an optional field: 0, or 1 and the field.
pub(super) fn put_option<T>(out: &mut Vec<u8>, field: Option<T>, put: impl FnOnce(&mut Vec<u8>, T)) {
    match field {
        None => out.push(0),
        Some(field) => {
            out.push(1);
            put(out, field);
        }
    }
}

/// Reads what [`put_option`] wrote.
pub(super) fn option<'a, T>(
    reader: &mut Reader<'a>,
    read: impl FnOnce(&mut Reader<'a>) -> Result<T, KvDecodeError>,
) -> Result<Option<T>, KvDecodeError> {
    let offset = reader.offset();
    match reader.u8("option")? {
        0 => Ok(None),
        1 => read(reader).map(Some),
        tag => Err(KvDecodeError::InvalidTag { field: "option", tag, offset }),
    }
}

/// The byte of a combination.
pub(super) fn algebra_tag(algebra: SetAlgebra) -> u8 {
    match algebra {
        SetAlgebra::Intersection => 0,
        SetAlgebra::Union => 1,
        SetAlgebra::Difference => 2,
    }
}

/// Reads what [`algebra_tag`] wrote.
pub(super) fn algebra(reader: &mut Reader<'_>) -> Result<SetAlgebra, KvDecodeError> {
    let offset = reader.offset();
    match reader.u8("set combination")? {
        0 => Ok(SetAlgebra::Intersection),
        1 => Ok(SetAlgebra::Union),
        2 => Ok(SetAlgebra::Difference),
        tag => Err(KvDecodeError::InvalidTag { field: "set combination", tag, offset }),
    }
}

/// Reads an error by its wire tag (SSCAN's refused options).
pub(super) fn error(reader: &mut Reader<'_>) -> Result<KvError, KvDecodeError> {
    let offset = reader.offset();
    let tag = reader.u8("sscan error")?;
    KvError::from_wire_tag(tag).ok_or(KvDecodeError::InvalidTag { field: "sscan error", tag, offset })
}

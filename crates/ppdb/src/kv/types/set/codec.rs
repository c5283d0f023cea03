//! The field encodings of the set commands (the layout is in `command`'s docs).

use crate::kv::codec::{KvDecodeError, Reader};

use super::SetAlgebra;

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

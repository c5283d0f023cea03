//! Argument helpers shared by the command parsers.

use bytes::Bytes;

use super::error::CommandError;
use crate::kv::numeric::{parse_f64, parse_i64};

/// An integer argument (`ERR value is not an integer or out of range` otherwise).
pub(super) fn integer(arg: &[u8]) -> Result<i64, CommandError> {
    parse_i64(arg).ok_or(CommandError::NotInteger)
}

/// A float argument (`ERR value is not a valid float` otherwise).
pub(super) fn float(arg: &[u8]) -> Result<f64, CommandError> {
    parse_f64(arg).ok_or(CommandError::NotFloat)
}

/// Whether `arg` is the option `name` (ASCII case-insensitive).
pub(super) fn is(arg: &[u8], name: &str) -> bool {
    arg.eq_ignore_ascii_case(name.as_bytes())
}

/// The argument at `index` as owned bytes, or empty if missing (the arity check has run, so
/// parsers only ask for indexes that exist).
pub(super) fn owned(args: &[Bytes], index: usize) -> Vec<u8> {
    args.get(index).map(|a| a.to_vec()).unwrap_or_default()
}

/// The argument at `index`, or empty if missing (see [`owned`]).
pub(super) fn arg(args: &[Bytes], index: usize) -> &[u8] {
    args.get(index).map_or(&[][..], |a| a.as_ref())
}

/// All arguments from `start` on, as owned byte vectors.
pub(super) fn owned_from(args: &[Bytes], start: usize) -> Vec<Vec<u8>> {
    args.iter().skip(start).map(|a| a.to_vec()).collect()
}

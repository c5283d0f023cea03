//! Why a sorted-set command's arguments are refused, worded exactly as Redis 7.0 replies.

use std::fmt;

/// A sorted-set command that cannot run as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortedSetError {
    /// ZADD with NX and XX.
    NxWithXx,
    /// ZADD with two of GT, LT and NX.
    GtLtNx,
    /// ZADD INCR with more than one score and member.
    IncrementPairs,
    /// A score range end that is not a float.
    MinMaxNotFloat,
    /// A lex range end that is not `-`, `+`, `[member` or `(member`.
    InvalidLexItem,
    /// ZRANGE LIMIT without BYSCORE or BYLEX.
    LimitWithoutBy,
    /// ZRANGE WITHSCORES with BYLEX.
    WithScoresByLex,
    /// WEIGHTS with a value that is not a float.
    WeightNotFloat,
    /// ZUNION, ZINTER, ZDIFF, ZINTERCARD and their STORE forms with fewer than one key.
    NoInputKey {
        /// The command's name.
        command: &'static str,
    },
    /// ZMPOP with a numkeys below 1.
    NumkeysNotPositive,
    /// ZMPOP with a COUNT below 1.
    CountNotPositive,
    /// ZPOPMIN/ZPOPMAX with a negative count.
    CountNegative,
    /// ZINTERCARD with a negative LIMIT.
    LimitNegative,
    /// ZRANDMEMBER with a count whose reply would be too large.
    CountOutOfRange,
    /// ZRANDMEMBER with the smallest 64-bit count, which cannot be negated.
    CountBeyondLong,
}

impl fmt::Display for SortedSetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NxWithXx => "ERR XX and NX options at the same time are not compatible",
            Self::GtLtNx => "ERR GT, LT, and/or NX options at the same time are not compatible",
            Self::IncrementPairs => "ERR INCR option supports a single increment-element pair",
            Self::MinMaxNotFloat => "ERR min or max is not a float",
            Self::InvalidLexItem => "ERR min or max not valid string range item",
            Self::LimitWithoutBy => {
                "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
            }
            Self::WithScoresByLex => "ERR syntax error, WITHSCORES not supported in combination with BYLEX",
            Self::WeightNotFloat => "ERR weight value is not a float",
            Self::NoInputKey { command } => {
                return write!(f, "ERR at least 1 input key is needed for '{command}' command");
            }
            Self::NumkeysNotPositive => "ERR numkeys should be greater than 0",
            Self::CountNotPositive => "ERR count should be greater than 0",
            Self::CountNegative => "ERR value is out of range, must be positive",
            Self::LimitNegative => "ERR LIMIT can't be negative",
            Self::CountOutOfRange => "ERR value is out of range",
            Self::CountBeyondLong => {
                "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
            }
        })
    }
}

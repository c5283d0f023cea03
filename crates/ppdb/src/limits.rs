//! The size limits that must agree with each other, defined together and checked against each
//! other at compile time (as TigerBeetle's `constants.zig` does).
//!
//! A client's write becomes one log entry; the entry travels to each follower in an append
//! message inside one peer frame, and is written to disk inside one WAL record. So the chain
//! is: value ([`VALUE_BYTES_MAX`]) ≤ request ([`REQUEST_BYTES_MAX`]) ≤ encoded command
//! ([`COMMAND_BYTES_MAX`]) ≤ entry ([`ENTRY_BYTES_MAX`]) ≤ append message ≤ frame
//! ([`FRAME_BYTES_MAX`]), and entry ≤ WAL record ([`WAL_RECORD_BYTES_MAX`]). Every link is a
//! `const` assertion below, so a change that breaks one does not build. Batches of several
//! entries (an append message, a round's WAL records) are cut by bytes where they are built,
//! always keeping at least one entry, so with these assertions no combination of writes or of
//! catch-up can produce an oversized frame or record.
//!
//! Replies go the other way: a reply forwarded from a shard's leader to the node a client is
//! connected to crosses the transport in [`REPLY_CHUNK_BYTES`] chunks, up to
//! [`REPLY_BYTES_MAX`]; a larger one ends at once with an error.
//!
//! Every limit is in bytes, as its name says. Module-local format constants (a frame's or a
//! record's header size) stay in their modules, which check themselves against the room kept
//! for them here ([`FRAME_ENVELOPE_BYTES_MAX`], [`WAL_RECORD_ENVELOPE_BYTES_MAX`]).

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

/// The largest string value, and the largest bulk argument (a key, a value, a pattern) a
/// client may send: PPDB's `proto-max-bulk-len` (Redis's default is 512 MiB).
///
/// Why 32 MiB: a value is replicated whole, in one log entry, and that entry crosses each peer
/// connection in one frame, ahead of the heartbeats of every group queued behind it. The largest
/// write (a largest key and value, [`REQUEST_BYTES_MAX`]) crosses a 1 Gbit/s link in about
/// 0.55 s, within the default 1 s election timeout, so followers do not campaign while it is
/// in flight; and each copy a leader holds while replicating it (client buffer, log, one append
/// per follower, WAL queue) stays under 100 MiB. At Redis's 512 MiB one write would hold the
/// link for 4.5 s, and followers would elect a new leader during every large write.
///
/// A larger bulk argument is refused as Redis refuses it, when its length arrives and before
/// anything is proposed: `-ERR Protocol error: invalid bulk length`, then the connection
/// closes. APPEND and SETRANGE beyond it answer `-ERR string exceeds maximum allowed size
/// (proto-max-bulk-len)`.
pub const VALUE_BYTES_MAX: usize = 32 * MIB;

/// The largest value or key read back from disk (snapshots and log entries): Redis's 512 MiB,
/// which releases before [`VALUE_BYTES_MAX`] was chosen accepted (a value could grow there by
/// APPEND). Reading up to it means an upgrade never refuses data it wrote itself; new writes are
/// refused above [`VALUE_BYTES_MAX`]. Decoding takes bytes as they arrive, so this bound reserves
/// nothing.
pub const STORED_VALUE_BYTES_MAX: usize = 512 * MIB;

/// The argument bytes one write is sized for: a largest key with a largest value. Everything
/// queued by MULTI (which EXEC proposes as one entry) is refused beyond it while queueing; any
/// other write (MSET) is bounded by its encoding, [`COMMAND_BYTES_MAX`].
pub const REQUEST_BYTES_MAX: usize = 2 * VALUE_BYTES_MAX;

/// The most keys (or key-value pairs) one operation may carry.
pub const REQUEST_KEYS_MAX: usize = 1024 * 1024;

/// Room for what the encoding of a write adds to its arguments: tags, clock, and a length of at
/// most 5 bytes for each of up to [`REQUEST_KEYS_MAX`] keys and values.
pub const COMMAND_ENCODING_BYTES_MAX: usize = 12 * MIB;

/// The largest encoded command: the payload of one log entry. A larger command is refused
/// before it is proposed, whatever path it came by, so no entry is ever larger.
pub const COMMAND_BYTES_MAX: usize = REQUEST_BYTES_MAX + COMMAND_ENCODING_BYTES_MAX;

/// The largest log entry as Raft counts it (`Entry::size_bytes`): a command and its header.
pub const ENTRY_BYTES_MAX: usize = COMMAND_BYTES_MAX + ppdb_raft::ENTRY_HEADER_BYTES;

/// Most entry bytes a leader puts in one append message (Raft's `append_bytes_max`), unless a
/// single entry is larger: it then travels alone. 1 MiB keeps a follower's catch-up a stream of
/// small messages that interleave with heartbeats.
pub const APPEND_BYTES_MAX: usize = MIB;

/// The largest entries of one append message: a batch within [`APPEND_BYTES_MAX`], or a single
/// entry of up to [`ENTRY_BYTES_MAX`].
pub const APPEND_ENTRIES_BYTES_MAX: usize = max(APPEND_BYTES_MAX, ENTRY_BYTES_MAX);

/// Room kept in a frame around its largest content (one append message's entries, or one
/// chunk): the frame header, the batch's count and group id, the message header. The frame
/// and codec modules check their real sizes against it.
pub const FRAME_ENVELOPE_BYTES_MAX: usize = 4 * KIB;

/// The largest peer frame, header included. Sized to carry the largest append message: one
/// entry always fits, so Raft never has to send what the transport cannot carry.
pub const FRAME_BYTES_MAX: usize = 80 * MIB;

/// Room kept in a WAL record around one entry: the record header, the entries' count and the
/// entry's header as the codec writes it.
pub const WAL_RECORD_ENVELOPE_BYTES_MAX: usize = 4 * KIB;

/// The largest WAL record, header included. A round whose entries are larger is written as
/// several records, each of whole entries; one entry always fits a record.
pub const WAL_RECORD_BYTES_MAX: usize = 80 * MIB;

/// A snapshot crosses the transport in chunks of this size, between the peer's other traffic,
/// streamed from the sender's snapshot file into a file on the receiver: no limit on a
/// snapshot's size but the disk.
pub const SNAPSHOT_CHUNK_BYTES: usize = MIB;

/// The largest answer to one forwarded batch: the replies a shard's leader sends back to the
/// node its clients are connected to. It is held whole on both nodes while it crosses, so it is
/// bounded; 256 MiB holds an MGET of eight largest values. A reply that does not fit is
/// answered at once with an error saying so (the command ran on the leader), never dropped.
pub const REPLY_BYTES_MAX: usize = 256 * MIB;

/// A forwarded reply larger than this crosses the transport in chunks of this size, so pings
/// and the other replies on the connection keep flowing between them.
pub const REPLY_CHUNK_BYTES: usize = MIB;

/// Most operations in one forwarded batch.
pub const FORWARDED_OPS_MAX: usize = 1 << 16;

const fn max(a: usize, b: usize) -> usize {
    if a > b {
        a
    } else {
        b
    }
}

// A write's arguments: each bulk within the request, and the request within a command.
const _: () = assert!(2 * VALUE_BYTES_MAX <= REQUEST_BYTES_MAX);
const _: () = assert!(VALUE_BYTES_MAX <= STORED_VALUE_BYTES_MAX);
const _: () = assert!(REQUEST_BYTES_MAX + 10 * REQUEST_KEYS_MAX <= COMMAND_BYTES_MAX);
// One entry always fits an append message, and the largest append message a frame.
const _: () = assert!(ENTRY_BYTES_MAX <= APPEND_ENTRIES_BYTES_MAX);
const _: () = assert!(APPEND_ENTRIES_BYTES_MAX + FRAME_ENVELOPE_BYTES_MAX <= FRAME_BYTES_MAX);
// One entry always fits a WAL record.
const _: () = assert!(ENTRY_BYTES_MAX + WAL_RECORD_ENVELOPE_BYTES_MAX <= WAL_RECORD_BYTES_MAX);
// Chunks fit frames (the transport requires a snapshot chunk to take at most half a frame).
const _: () = assert!(SNAPSHOT_CHUNK_BYTES <= FRAME_BYTES_MAX / 2);
const _: () = assert!(REPLY_CHUNK_BYTES + FRAME_ENVELOPE_BYTES_MAX <= FRAME_BYTES_MAX);
// A reply of one largest value (GET, GETDEL) always crosses, with room for the batch around it.
const _: () = assert!(VALUE_BYTES_MAX + FRAME_ENVELOPE_BYTES_MAX <= REPLY_BYTES_MAX);
// Lengths travel as u32 on the wire and on disk.
const _: () = assert!(FRAME_BYTES_MAX <= u32::MAX as usize);
const _: () = assert!(WAL_RECORD_BYTES_MAX <= u32::MAX as usize);
const _: () = assert!(REPLY_BYTES_MAX <= u32::MAX as usize);

/// The most shards one cross-shard transaction may span: every shard of the largest cluster
/// PPDB creates (`--shards` is bounded by it too), and the bound decoders put on a
/// transaction's participant list.
pub const TXN_SHARDS_MAX: usize = 1024;

/// The largest transaction section a shard snapshot may announce (prepared parts and
/// remembered outcomes): prepared parts are log entries, so a generous multiple of one.
pub const SNAPSHOT_TXN_SECTION_BYTES_MAX: u64 = 64 * COMMAND_BYTES_MAX as u64;

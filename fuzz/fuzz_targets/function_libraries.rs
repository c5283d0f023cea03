//! Function libraries (`functions/`): a library's first line (from clients, FUNCTION LOAD),
//! FUNCTION RESTORE's payload (from clients: Redis's RDB format, LZF included), and the
//! libraries' log and snapshot encoding (from peers: the meta group's entries and snapshots).
//!
//! Input: a mode byte, then the rest. Mode 0: the rest is a library's source, whose first line
//! is read. Mode 1: the rest is a FUNCTION DUMP payload. Otherwise: the rest is an encoded
//! function change, then (if it decodes) an encoded registry, read from the same bytes.
//!
//! Asserts: nothing panics; a decoded payload's sources encode to a payload that decodes to
//! the same sources; a decoded change re-encodes to bytes that decode to the same change; a
//! registry decodes from what it encodes to.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ppdb::codec::{Decoder, Encoder};
use ppdb::functions::{dump, metadata, FunctionChange, Libraries};

fn registry_round_trip(libraries: &Libraries) {
    let mut e = Encoder::default();
    libraries.encode(&mut e);
    let bytes = e.finish();
    let decoded = Libraries::decode(&mut Decoder::new(&bytes, "fuzz libraries"));
    assert_eq!(decoded.as_ref(), Ok(libraries), "libraries do not round-trip");
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    match mode {
        0 => {
            if let Ok(parsed) = metadata::parse(rest) {
                assert!(metadata::valid_name(parsed.name.as_bytes()) && parsed.code_offset < rest.len());
            }
        }
        1 => {
            if let Ok(sources) = dump::decode(rest) {
                let again = dump::encode(sources.iter().map(Vec::as_slice));
                assert_eq!(dump::decode(&again), Ok(sources), "a payload does not round-trip");
            }
        }
        _ => {
            if let Ok(change) = FunctionChange::decode(&mut Decoder::new(rest, "fuzz change")) {
                let mut e = Encoder::default();
                change.encode(&mut e);
                let bytes = e.finish();
                assert_eq!(FunctionChange::decode(&mut Decoder::new(&bytes, "again")).as_ref(), Ok(&change));
                let mut libraries = Libraries::default();
                if libraries.apply(&change).is_ok() {
                    registry_round_trip(&libraries);
                }
            }
            if let Ok(libraries) = Libraries::decode(&mut Decoder::new(rest, "fuzz libraries")) {
                registry_round_trip(&libraries);
            }
        }
    }
});

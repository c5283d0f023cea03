//! A publication sent between nodes (`server/pubsub/peer.rs`): the peer request that carries
//! a PUBLISH or SPUBLISH to every other member.
//!
//! Input: the request's bytes, tag first.
//!
//! Asserts: nothing panics; a decoded publication re-encodes to exactly the input (the format
//! has one spelling).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ppdb::server::pubsub::Publication;

fuzz_target!(|data: &[u8]| {
    if let Ok(publication) = Publication::decode(data) {
        assert_eq!(publication.encode(), data, "a publication re-encodes to its bytes");
    }
});

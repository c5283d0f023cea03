//! ACL rules (`acl/rule.rs`), ACL files (`acl/file.rs`) and the users' log and snapshot
//! encoding (`acl/users.rs`): text from clients (ACL SETUSER), from disk (the ACL file) and
//! from peers (the meta group's entries and snapshots).
//!
//! Input: a mode byte, then the rest. Mode even: the rest is an ACL file, whose users are
//! applied to a fresh set of users. Mode odd: the rest is an encoded ACL change, then (if it
//! decodes) an encoded set of users, read from the same bytes as the meta group would.
//!
//! Asserts: nothing panics; a parsed rule's canonical text parses to the same rule; applied
//! users encode to bytes that decode to the same users; a decoded change re-encodes to bytes
//! that decode to the same change.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ppdb::acl::file::parse_acl_file;
use ppdb::acl::{AclChange, AclUsers, Rule};
use ppdb::codec::{Decoder, Encoder};

fn users_round_trip(users: &AclUsers) {
    let mut e = Encoder::default();
    users.encode(&mut e);
    let bytes = e.finish();
    let decoded = AclUsers::decode(&mut Decoder::new(&bytes, "fuzz users"));
    assert_eq!(decoded.as_ref(), Ok(users), "users do not round-trip");
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode % 2 == 0 {
        for token in rest.split(u8::is_ascii_whitespace) {
            if let Ok(rule) = Rule::parse(token) {
                assert_eq!(Rule::parse(&rule.canonical()), Ok(rule), "canonical text differs");
            }
        }
        let Ok(changes) = parse_acl_file(rest) else { return };
        let mut users = AclUsers::default();
        for change in &changes {
            let _ = users.apply(change);
        }
        users_round_trip(&users);
        return;
    }
    let mut d = Decoder::new(rest, "fuzz change");
    if let Ok(change) = AclChange::decode(&mut d) {
        let mut e = Encoder::default();
        change.encode(&mut e);
        let bytes = e.finish();
        assert_eq!(AclChange::decode(&mut Decoder::new(&bytes, "again")).as_ref(), Ok(&change));
        let mut users = AclUsers::default();
        if users.apply(&change).is_ok() {
            users_round_trip(&users);
        }
    }
    if let Ok(users) = AclUsers::decode(&mut Decoder::new(rest, "fuzz users")) {
        users_round_trip(&users);
    }
});

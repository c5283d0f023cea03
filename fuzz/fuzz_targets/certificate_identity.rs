//! The certificate identity decoder (`transport/tls/mod.rs`, `CertificateIdentity::decode`),
//! which reads the DER certificate a peer or a client presents, and the authorized join
//! request (`node/join_credential.rs`), which carries a join token from a node that is not a
//! member yet.
//!
//! Input: a mode byte, then the bytes. Mode bit 0 clear: the bytes are a DER certificate.
//! Mode bit 0 set: the bytes are a peer request from a guest.
//!
//! Asserts: nothing panics; a decoded identity keeps within its bounds (subject and names at
//! most `CERTIFICATE_NAME_BYTES_MAX` bytes, at most `CERTIFICATE_NAMES_MAX` names); a decoded
//! join request's token is at most `JOIN_TOKEN_BYTES_MAX` bytes, and the token and request
//! re-encode to exactly the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ppdb::config::JOIN_TOKEN_BYTES_MAX;
use ppdb::node::join_credential::{decode_authorized_join, encode_authorized_join};
use ppdb::transport::tls::{CertificateIdentity, CERTIFICATE_NAMES_MAX, CERTIFICATE_NAME_BYTES_MAX};

fn check_identity(der: &[u8]) {
    let Ok(identity) = CertificateIdentity::decode(der) else { return };
    assert!(identity.subject.len() <= CERTIFICATE_NAME_BYTES_MAX);
    assert!(identity.serial_hex.len() <= CERTIFICATE_NAME_BYTES_MAX);
    assert!(identity.dns_names.len() + identity.ip_addresses.len() <= CERTIFICATE_NAMES_MAX);
    assert!(identity.dns_names.iter().all(|name| name.len() <= CERTIFICATE_NAME_BYTES_MAX));
}

fn check_join(bytes: &[u8]) {
    let Ok((token, request)) = decode_authorized_join(bytes) else { return };
    assert!(token.len() <= JOIN_TOKEN_BYTES_MAX);
    // Tokens are text when sent; any bytes must still decode without panicking.
    if let Ok(token) = std::str::from_utf8(token) {
        assert_eq!(encode_authorized_join(token, request), bytes, "re-encoded differently");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode & 1 == 0 {
        check_identity(rest);
    } else {
        check_join(rest);
    }
});

//! Who may join: the credential a guest must hold before a member asks the cluster to admit it.
//!
//! With TLS on the peer port, a guest's certificate is its credential: the TLS handshake has
//! already refused any node without a certificate of the cluster CA. Without TLS, a joining
//! node presents the cluster's *join token* with its join request ([`encode_authorized_join`]);
//! a member compares it with its own in constant time and refuses a guest without it.
//!
//! A node's token comes from `--join-token` (or `PPDB_JOIN_TOKEN`, or `join_token` in the
//! configuration file); without one, from the file [`JOIN_TOKEN_FILE`] in its data directory,
//! generated there on the first start. A token given by flag is written there too, so a
//! restart without the flag keeps it.
//!
//! Wire format (a peer request, tag [`AUTHORIZED_JOIN_TAG`]): tag u8, token (u32 length +
//! bytes, at most [`JOIN_TOKEN_BYTES_MAX`]), then the membership request (its own tag first).

use crate::codec::{DecodeError, Decoder, Encoder};
use crate::config::{check_join_token, NodeConfig, JOIN_TOKEN_BYTES_MAX};
use crate::error::Error;
use std::io::Write;
use std::path::Path;
use subtle::ConstantTimeEq;

/// The file holding a node's join token, in its data directory.
pub const JOIN_TOKEN_FILE: &str = "join-token";
/// First byte of a join request that carries a join token (clear of the other peer tags).
pub const AUTHORIZED_JOIN_TAG: u8 = 0x20;

/// What this node asks of a guest before forwarding its join request.
#[derive(Clone)]
pub enum JoinCredential {
    /// A certificate of the cluster CA, checked by the peer port's TLS handshake.
    Certificate,
    /// The cluster's join token.
    Token(String),
}

impl std::fmt::Debug for JoinCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JoinCredential::Certificate => f.write_str("Certificate"),
            JoinCredential::Token(_) => f.write_str("Token(..)"),
        }
    }
}

impl JoinCredential {
    /// The credential of the node `config` describes: its certificate when `tls` is on,
    /// otherwise its join token (given, kept in the data directory, or generated and kept).
    pub fn resolve(config: &NodeConfig, tls: bool) -> Result<JoinCredential, Error> {
        if tls {
            return Ok(JoinCredential::Certificate);
        }
        let path = config.data_dir.join(JOIN_TOKEN_FILE);
        let kept = match std::fs::read_to_string(&path) {
            Ok(text) => Some(text.trim().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::State(format!("cannot read {}: {e}", path.display()))),
        };
        let token = match (&config.join_token, kept) {
            (Some(given), kept) => {
                if kept.as_deref() != Some(given.as_str()) {
                    keep(&path, given)?;
                }
                given.clone()
            }
            (None, Some(kept)) => {
                check_join_token(&kept).map_err(|e| Error::State(format!("{}: {e}", path.display())))?;
                kept
            }
            (None, None) => {
                let generated = generate_token();
                keep(&path, &generated)?;
                tracing::info!(file = %path.display(), "generated this node's join token");
                generated
            }
        };
        Ok(JoinCredential::Token(token))
    }

    /// The token to present when joining through another node (none with TLS).
    pub fn token(&self) -> Option<&str> {
        match self {
            JoinCredential::Certificate => None,
            JoinCredential::Token(token) => Some(token),
        }
    }

    /// Whether a guest that presented `token` (none: it sent a bare join request) may join.
    pub fn admits(&self, token: Option<&[u8]>) -> bool {
        match (self, token) {
            (JoinCredential::Certificate, _) => true,
            (JoinCredential::Token(ours), Some(theirs)) => bool::from(ours.as_bytes().ct_eq(theirs)),
            (JoinCredential::Token(_), None) => false,
        }
    }
}

/// A new random token: 32 hex digits (128 bits).
fn generate_token() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `token` to `path`, readable by the owner only.
fn keep(path: &Path, token: &str) -> Result<(), Error> {
    use std::os::unix::fs::OpenOptionsExt;
    let write = || {
        let mut file =
            std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
        file.write_all(format!("{token}\n").as_bytes())?;
        file.sync_all()
    };
    write().map_err(|e| Error::State(format!("cannot write the join token to {}: {e}", path.display())))
}

/// A membership request carrying `token`.
pub fn encode_authorized_join(token: &str, request: &[u8]) -> Vec<u8> {
    let mut e = Encoder::default();
    e.u8(AUTHORIZED_JOIN_TAG);
    e.bytes(token.as_bytes());
    let mut bytes = e.finish();
    bytes.extend_from_slice(request);
    bytes
}

/// The token and the membership request of an authorized join request.
pub fn decode_authorized_join(bytes: &[u8]) -> Result<(&[u8], &[u8]), DecodeError> {
    let mut d = Decoder::new(bytes, "authorized join request");
    if d.u8()? != AUTHORIZED_JOIN_TAG {
        return Err(d.error("not an authorized join request"));
    }
    let token = d.bytes(JOIN_TOKEN_BYTES_MAX)?;
    let request = bytes.get(bytes.len() - d.remaining()..).unwrap_or_default();
    Ok((token, request))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_token_is_generated_once_kept_and_replaced_by_a_given_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = NodeConfig { data_dir: dir.path().to_path_buf(), ..NodeConfig::default() };
        let first = JoinCredential::resolve(&config, false).unwrap();
        let first = first.token().unwrap().to_string();
        assert_eq!(first.len(), 32);
        assert_eq!(JoinCredential::resolve(&config, false).unwrap().token(), Some(first.as_str()));
        config.join_token = Some("given-token-0123456789".into());
        assert_eq!(JoinCredential::resolve(&config, false).unwrap().token(), Some("given-token-0123456789"));
        config.join_token = None;
        assert_eq!(JoinCredential::resolve(&config, false).unwrap().token(), Some("given-token-0123456789"));
        assert!(JoinCredential::resolve(&config, true).unwrap().token().is_none());
    }

    #[test]
    fn only_the_right_token_or_a_certificate_admits() {
        let token = JoinCredential::Token("0123456789abcdef".into());
        assert!(token.admits(Some(b"0123456789abcdef")));
        assert!(!token.admits(Some(b"0123456789abcdeX")));
        assert!(!token.admits(Some(b"0123456789abcde")));
        assert!(!token.admits(None));
        assert!(JoinCredential::Certificate.admits(None));
    }

    #[test]
    fn authorized_joins_round_trip() {
        let bytes = encode_authorized_join("0123456789abcdef", &[2, 7, 7]);
        assert_eq!(decode_authorized_join(&bytes).unwrap(), (&b"0123456789abcdef"[..], &[2u8, 7, 7][..]));
        assert!(decode_authorized_join(&[2, 0]).is_err());
    }

    proptest! {
        #[test]
        fn the_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_authorized_join(&bytes);
        }
    }
}

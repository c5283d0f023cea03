//! The `[tls]` section and the join token: how a node secures its ports and admits new nodes.

use crate::transport::tls::{ClientAuth, TlsFiles};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Longest join token, in bytes.
pub const JOIN_TOKEN_BYTES_MAX: usize = 256;
/// Shortest join token an operator may set, in bytes (a generated one is 32 hex digits).
pub const JOIN_TOKEN_BYTES_MIN: usize = 16;

/// TLS on every port (`[tls]`; Redis's `tls-cert-file`, `tls-key-file`, `tls-ca-cert-file`,
/// `tls-auth-clients`). With the three files set, the client, memcached and peer ports speak
/// TLS only, and the peer port requires a certificate of the CA from every peer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// The node's certificate chain (PEM), presented on every port.
    pub cert_file: Option<PathBuf>,
    /// The private key of that certificate (PEM).
    pub key_file: Option<PathBuf>,
    /// The cluster CA's certificates (PEM): peers' and clients' certificates must chain to it.
    pub ca_cert_file: Option<PathBuf>,
    /// Whether RESP and memcached clients must present a certificate: `yes` (the default, as
    /// in Redis), `optional` or `no`. Peers always must.
    #[serde(with = "client_auth")]
    pub auth_clients: ClientAuth,
}

impl TlsConfig {
    /// The files, when TLS is on; an error names the missing file when only some are set.
    pub fn files(&self) -> Result<Option<TlsFiles>, super::ConfigError> {
        match (&self.cert_file, &self.key_file, &self.ca_cert_file) {
            (None, None, None) => Ok(None),
            (Some(cert), Some(key), Some(ca)) => {
                Ok(Some(TlsFiles { cert: cert.clone(), key: key.clone(), ca: ca.clone() }))
            }
            (cert, key, _) => Err(super::ConfigError {
                setting: match (cert, key) {
                    (None, _) => "tls.cert_file",
                    (_, None) => "tls.key_file",
                    _ => "tls.ca_cert_file",
                },
                reason: "TLS needs a certificate, its key and the CA's certificate: set all three \
                         (--tls-cert-file, --tls-key-file, --tls-ca-cert-file) or none"
                    .into(),
            }),
        }
    }
}

/// Checks an operator's join token: printable ASCII, of a length that resists guessing.
pub fn check_join_token(token: &str) -> Result<(), super::ConfigError> {
    let bad = |reason: String| Err(super::ConfigError { setting: "join_token", reason });
    if !(JOIN_TOKEN_BYTES_MIN..=JOIN_TOKEN_BYTES_MAX).contains(&token.len()) {
        return bad(format!("must be {JOIN_TOKEN_BYTES_MIN} to {JOIN_TOKEN_BYTES_MAX} bytes"));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return bad("must be printable ASCII without spaces".into());
    }
    Ok(())
}

mod client_auth {
    use super::ClientAuth;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(auth: &ClientAuth, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&auth.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ClientAuth, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NodeConfig;

    #[test]
    fn tls_settings_read_from_toml_and_all_three_files_are_needed() {
        let config = NodeConfig::from_toml(
            "join_token = \"0123456789abcdef\"\n[tls]\ncert_file = \"n.crt\"\nkey_file = \"n.key\"\n\
             ca_cert_file = \"ca.crt\"\nauth_clients = \"optional\"\n",
        )
        .unwrap();
        assert_eq!(config.tls.auth_clients, ClientAuth::Optional);
        assert_eq!(config.tls.files().unwrap().unwrap().ca, PathBuf::from("ca.crt"));
        assert_eq!(config.join_token.as_deref(), Some("0123456789abcdef"));
        let partial = TlsConfig { cert_file: Some("n.crt".into()), ..TlsConfig::default() };
        assert_eq!(partial.files().unwrap_err().setting, "tls.key_file");
        assert_eq!(TlsConfig::default().files().unwrap(), None);
        assert!(NodeConfig::from_toml("[tls]\nauth_clients = \"maybe\"\n").is_err());
    }

    #[test]
    fn join_tokens_must_be_long_printable_ascii() {
        assert!(check_join_token("0123456789abcdef").is_ok());
        assert!(check_join_token("short").is_err());
        assert!(check_join_token("0123456789 abcdef").is_err());
        assert!(check_join_token(&"x".repeat(JOIN_TOKEN_BYTES_MAX + 1)).is_err());
    }
}

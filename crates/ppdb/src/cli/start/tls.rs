//! `ppdb start`'s TLS and join flags, named as Redis names its TLS settings.

use crate::config::NodeConfig;
use crate::transport::tls::ClientAuth;
use clap::Args;
use std::path::PathBuf;

/// TLS on every port, and the join token.
#[derive(Debug, Default, Args)]
pub struct SecurityFlags {
    /// The node's certificate (PEM), presented on the client, memcached and peer ports; with
    /// the key and CA files set, every port speaks TLS only.
    #[arg(long, env = "PPDB_TLS_CERT_FILE")]
    pub tls_cert_file: Option<PathBuf>,
    /// The private key of the node's certificate (PEM).
    #[arg(long, env = "PPDB_TLS_KEY_FILE")]
    pub tls_key_file: Option<PathBuf>,
    /// The cluster CA's certificate (PEM): peers (always) and clients (see
    /// --tls-auth-clients) must present a certificate it signed.
    #[arg(long, env = "PPDB_TLS_CA_CERT_FILE")]
    pub tls_ca_cert_file: Option<PathBuf>,
    /// Whether clients must present a certificate of the CA: yes (default), optional or no.
    #[arg(long, env = "PPDB_TLS_AUTH_CLIENTS")]
    pub tls_auth_clients: Option<ClientAuth>,
    /// The secret a node without TLS presents to join (with --join), and that this node asks
    /// of nodes joining through it; default: the one kept in the data directory (a new one is
    /// generated there on first start).
    #[arg(long, env = "PPDB_JOIN_TOKEN", hide_env_values = true)]
    pub join_token: Option<String>,
}

impl SecurityFlags {
    /// Puts the flags given over `config`.
    pub fn apply(self, config: &mut NodeConfig) {
        if let Some(path) = self.tls_cert_file {
            config.tls.cert_file = Some(path);
        }
        if let Some(path) = self.tls_key_file {
            config.tls.key_file = Some(path);
        }
        if let Some(path) = self.tls_ca_cert_file {
            config.tls.ca_cert_file = Some(path);
        }
        if let Some(auth) = self.tls_auth_clients {
            config.tls.auth_clients = auth;
        }
        if let Some(token) = self.join_token {
            config.join_token = Some(token);
        }
    }
}

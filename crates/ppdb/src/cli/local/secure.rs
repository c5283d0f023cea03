//! What `ppdb local` hands its nodes to keep strangers out: one join token for the cluster,
//! and with `--tls` a throwaway CA with a certificate for every node and one for clients; and
//! the command lines that reach its nodes with them.

use super::TLS_DIR;
use crate::node::join_credential::JOIN_TOKEN_FILE;
use crate::transport::tls::throwaway::{ThrowawayCa, CA_CERT_FILE};
use crate::transport::tls::TlsFiles;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The file stem of the clients' certificate and key.
const CLIENT_FILE_STEM: &str = "client";

/// The join token and certificates of a local cluster.
pub struct LocalSecurity {
    join_token: String,
    /// Each node's TLS files, by node id (empty without `--tls`).
    node_tls: BTreeMap<u64, TlsFiles>,
    /// The certificate and key for clients, when TLS is on.
    client_tls: Option<TlsFiles>,
}

impl LocalSecurity {
    /// The cluster's join token (kept in `dir`, made on first use) and, with `tls`, a new CA
    /// and certificates for `nodes` and for clients, written under `dir/tls`.
    pub fn prepare(dir: &Path, nodes: &[u64], tls: bool) -> Result<LocalSecurity, String> {
        let join_token = join_token(dir)?;
        let mut security = LocalSecurity { join_token, node_tls: BTreeMap::new(), client_tls: None };
        let tls_dir = dir.join(TLS_DIR);
        if !tls {
            // The CA of an earlier `--tls` run would make `ppdb cluster` speak HTTPS to these
            // plain nodes; its certificates are of no use without it.
            return match std::fs::remove_file(tls_dir.join(CA_CERT_FILE)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(format!("cannot remove {}: {e}", tls_dir.join(CA_CERT_FILE).display()))
                }
                _ => Ok(security),
            };
        }
        let fail = |e: std::io::Error| format!("cannot write certificates into {}: {e}", tls_dir.display());
        let ca = ThrowawayCa::new("ppdb local CA").map_err(fail)?;
        for &id in nodes {
            let name = format!("node-{id}");
            let files = ca.write_files(&tls_dir, &name, &name, &["127.0.0.1", "localhost"]).map_err(fail)?;
            security.node_tls.insert(id, files);
        }
        let client =
            ca.write_files(&tls_dir, CLIENT_FILE_STEM, "ppdb local client", &["localhost"]).map_err(fail)?;
        security.client_tls = Some(client);
        Ok(security)
    }

    /// Gives node `id`'s command the join token and, with TLS, its certificate files.
    pub fn configure(&self, command: &mut Command, id: u64) {
        command.env("PPDB_JOIN_TOKEN", &self.join_token);
        if let Some(files) = self.node_tls.get(&id) {
            command
                .arg("--tls-cert-file")
                .arg(&files.cert)
                .arg("--tls-key-file")
                .arg(&files.key)
                .arg("--tls-ca-cert-file")
                .arg(&files.ca);
        }
    }

    /// The redis-cli command line that reaches the client port `port`.
    pub fn redis_cli(&self, port: u16) -> String {
        match &self.client_tls {
            None => format!("redis-cli -p {port}"),
            Some(files) => format!(
                "redis-cli -p {port} --tls --cacert {} --cert {} --key {}",
                files.ca.display(),
                files.cert.display(),
                files.key.display()
            ),
        }
    }
}

impl LocalSecurity {
    /// The URL of `path` on the admin port `port`: HTTPS when TLS is on.
    pub fn admin_url(&self, port: u16, path: &str) -> String {
        let scheme = if self.client_tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{port}{path}")
    }

    /// The curl command line that reads `path` from the admin port `port`.
    pub fn curl(&self, port: u16, path: &str) -> String {
        match &self.client_tls {
            None => format!("curl -s {}", self.admin_url(port, path)),
            Some(files) => format!("curl -s --cacert {} {}", files.ca.display(), self.admin_url(port, path)),
        }
    }
}

/// The local cluster's join token: the one in `dir`, or a new one written there.
fn join_token(dir: &Path) -> Result<String, String> {
    let path: PathBuf = dir.join(JOIN_TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(token) => Ok(token.trim().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let token: String = rand::random::<[u8; 16]>().iter().map(|b| format!("{b:02x}")).collect();
            std::fs::write(&path, format!("{token}\n"))
                .map_err(|e| format!("cannot write the join token to {}: {e}", path.display()))?;
            Ok(token)
        }
        Err(e) => Err(format!("cannot read the join token from {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_reach_the_admin_port_over_https_with_tls_only() {
        let dir = tempfile::tempdir().unwrap();
        let plain = LocalSecurity::prepare(dir.path(), &[1], false).unwrap();
        assert_eq!(plain.curl(7201, "/status"), "curl -s http://127.0.0.1:7201/status");
        let secure = LocalSecurity::prepare(dir.path(), &[1], true).unwrap();
        let ca = dir.path().join(TLS_DIR).join(CA_CERT_FILE);
        assert_eq!(
            secure.curl(7201, "/status"),
            format!("curl -s --cacert {} https://127.0.0.1:7201/status", ca.display())
        );
        assert!(ca.is_file());
        LocalSecurity::prepare(dir.path(), &[1], false).unwrap();
        assert!(!ca.exists(), "a plain run leaves no CA for `ppdb cluster` to speak HTTPS with");
    }
}

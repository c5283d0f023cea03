//! What `ppdb local` hands its nodes to keep strangers out: one join token for the cluster,
//! and with `--tls` a throwaway CA with a certificate for every node and one for clients.

use crate::node::join_credential::JOIN_TOKEN_FILE;
use crate::transport::tls::throwaway::ThrowawayCa;
use crate::transport::tls::TlsFiles;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The folder of the cluster's certificates, inside `ppdb local`'s directory.
const TLS_DIR: &str = "tls";
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
        if !tls {
            return Ok(security);
        }
        let tls_dir = dir.join(TLS_DIR);
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

//! TLS on every port and authorized joining, against real processes: redis-cli with `--tls`
//! against `ppdb local --tls`; a node whose certificate is from another CA refused at the peer
//! port's TLS handshake; a node without the cluster's join token refused; a certificate file
//! replaced on disk served to the next client without a restart; the admin port over HTTPS,
//! where a client certificate of the cluster CA is an admin credential beside the token.

use crate::local::{free_base_port, LocalCluster};
use crate::support::{free_addrs, http_get, wait_for, ClusterOptions, TestCluster, READY_DEADLINE};
use ppdb::transport::tls::throwaway::ThrowawayCa;
use ppdb::transport::tls::{ClientAuth, TlsContext, TlsFiles};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// Runs redis-cli with `args`; None when it is not installed (CI installs it).
fn redis_cli(args: &[String]) -> Option<Output> {
    Command::new("redis-cli").args(args).stdin(Stdio::null()).output().ok()
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
        .trim()
        .to_string()
}

#[test]
fn redis_cli_with_tls_works_against_ppdb_local_tls() {
    if redis_cli(&["--version".into()]).is_none() {
        eprintln!("redis-cli is not installed; skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let base = free_base_port();
    let cluster = LocalCluster::start_with(base, dir.path(), &["--tls"]);
    let tls_dir = dir.path().join("tls");
    let port = (base + 1).to_string();
    let path = |name: &str| tls_dir.join(name).display().to_string();
    let secure = |command: &[&str]| {
        let mut args: Vec<String> =
            ["-p", &port, "--tls", "--cacert", &path("ca.crt")].map(String::from).to_vec();
        args.extend(["--cert", &path("client.crt"), "--key", &path("client.key")].map(String::from));
        args.extend(command.iter().map(|s| s.to_string()));
        args
    };
    let set = wait_for(READY_DEADLINE, || {
        let output = redis_cli(&secure(&["SET", "tls:key", "over tls"]))?;
        (text(&output) == "OK").then_some(())
    });
    assert!(set.is_some(), "SET over TLS never succeeded; ppdb local said:\n{}", cluster.stderr());
    let got = redis_cli(&secure(&["GET", "tls:key"])).unwrap();
    assert_eq!(text(&got), "over tls");

    let plain = redis_cli(&["-p".into(), port.clone(), "PING".into()]).unwrap();
    assert_ne!(text(&plain), "PONG", "a plain client is not served on a TLS port");
    let anonymous: Vec<String> =
        ["-p", &port, "--tls", "--cacert", &path("ca.crt"), "PING"].map(String::from).to_vec();
    let anonymous = redis_cli(&anonymous).unwrap();
    assert_ne!(text(&anonymous), "PONG", "tls-auth-clients yes: a client without a certificate is refused");
}

/// A TLS node (`files`) started with `ppdb start`; its log goes to `log`.
fn start_node(id: u64, addrs: &[SocketAddr], files: &TlsFiles, dir: &Path, how: &[&str]) -> Child {
    let log = std::fs::File::create(dir.join(format!("node-{id}.log"))).unwrap();
    Command::new(env!("CARGO_BIN_EXE_ppdb"))
        .arg("start")
        .args(["--id", &id.to_string(), "--cluster-id", "tls"])
        .arg("--dir")
        .arg(dir.join(format!("node-{id}")))
        .args(["--peer-addr", &addrs[0].to_string()])
        .args(["--client-addr", &addrs[1].to_string()])
        .args(["--admin-addr", &addrs[2].to_string()])
        .arg("--tls-cert-file")
        .arg(&files.cert)
        .arg("--tls-key-file")
        .arg(&files.key)
        .arg("--tls-ca-cert-file")
        .arg(&files.ca)
        .args(how)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn ppdb")
}

/// The identity of the certificate the node at `addr` presents to a client of `client`'s CA,
/// once it answers.
fn served_identity(
    client: &TlsContext,
    addr: SocketAddr,
) -> Option<ppdb::transport::tls::CertificateIdentity> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
        let stream = tokio::time::timeout(Duration::from_secs(5), client.dial_peer(tcp, addr.ip()))
            .await
            .ok()?
            .ok()?;
        stream.peer_identity()
    })
}

fn log_of(dir: &Path, id: u64) -> String {
    std::fs::read_to_string(dir.join(format!("node-{id}.log"))).unwrap_or_default()
}

struct Reaped(Vec<Child>);

impl Drop for Reaped {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn a_node_of_another_ca_is_refused_at_the_peer_handshake_and_rotated_certificates_serve_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ThrowawayCa::new("cluster CA").unwrap();
    let names = ["127.0.0.1", "localhost"];
    let node_files = ca.write_files(&dir.path().join("tls"), "node-1", "node-1", &names).unwrap();
    let client_files = ca.write_files(&dir.path().join("tls"), "client", "client", &names).unwrap();
    let addrs = free_addrs(6);
    let bootstrap = format!("1={}", addrs[0]);
    let mut children =
        Reaped(vec![start_node(1, &addrs[..3], &node_files, dir.path(), &["--bootstrap", &bootstrap])]);
    let client = TlsContext::load(client_files, ClientAuth::Required).unwrap();
    let first = wait_for(READY_DEADLINE, || served_identity(&client, addrs[1]))
        .unwrap_or_else(|| panic!("node 1 never served TLS:\n{}", log_of(dir.path(), 1)));
    assert!(first.subject.contains("CN=node-1"), "{}", first.subject);

    // A node with a certificate of another CA: refused by the TLS handshake, so it never
    // joins, and node 1 never reads a cluster message from it.
    let stranger_ca = ThrowawayCa::new("another CA").unwrap();
    let stranger_files =
        stranger_ca.write_files(&dir.path().join("stranger"), "node-2", "node-2", &names).unwrap();
    let join = addrs[0].to_string();
    children.0.push(start_node(2, &addrs[3..], &stranger_files, dir.path(), &["--join", &join]));
    let refused = wait_for(READY_DEADLINE, || {
        log_of(dir.path(), 1).contains("refused a peer's TLS handshake").then_some(())
    });
    assert!(
        refused.is_some(),
        "node 1 did not refuse the stranger's TLS handshake:\n{}",
        log_of(dir.path(), 1)
    );
    let node_1 = log_of(dir.path(), 1);
    assert!(!node_1.contains("asking to join") && !node_1.contains("admitted"), "{node_1}");
    assert!(!node_1.contains("refused a peer's handshake"), "no cluster hello was read:\n{node_1}");

    // Rotation: new certificate and key written over the files; the next client sees them.
    let rotated = ca.issue("node-1 rotated", &names).unwrap();
    let replace = |path: &Path, text: &str| {
        let temporary = path.with_extension("new");
        std::fs::write(&temporary, text).unwrap();
        std::fs::rename(&temporary, path).unwrap();
    };
    replace(&node_files.key, &rotated.key_pem);
    replace(&node_files.cert, &rotated.cert_pem);
    let second = wait_for(Duration::from_secs(20), || {
        served_identity(&client, addrs[1]).filter(|identity| identity.serial_hex != first.serial_hex)
    })
    .unwrap_or_else(|| panic!("the rotated certificate was never served:\n{}", log_of(dir.path(), 1)));
    assert!(second.subject.contains("CN=node-1 rotated"), "{}", second.subject);
    assert!(children.0[0].try_wait().unwrap().is_none(), "node 1 was not restarted");
}

#[test]
fn a_node_without_the_cluster_join_token_cannot_join() {
    let cluster = TestCluster::start(ClusterOptions { nodes: 1, ..ClusterOptions::default() });
    let dir = tempfile::tempdir().unwrap();
    let addrs = free_addrs(3);
    let output = Command::new(env!("CARGO_BIN_EXE_ppdb"))
        .arg("start")
        .args(["--id", "2", "--cluster-id", &cluster.node(1).cluster_id])
        .arg("--dir")
        .arg(dir.path())
        .args(["--peer-addr", &addrs[0].to_string()])
        .args(["--client-addr", &addrs[1].to_string()])
        .args(["--admin-addr", &addrs[2].to_string()])
        .args(["--join", &cluster.node(1).peer_addr.to_string()])
        .args(["--join-token", "not-the-cluster-token"])
        .stdin(Stdio::null())
        .output()
        .expect("run ppdb start");
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(said.contains("join refused") && said.contains("join token"), "{said}");
}

/// Runs `ppdb cluster` with `args` against `admin`, in `dir` (where no `ppdb-data` holds a
/// token or a CA) and without `PPDB_*` settings from the environment.
fn ppdb_cluster(dir: &Path, admin: &str, args: &[&str]) -> (bool, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ppdb"));
    for variable in ["PPDB_ADMIN_TOKEN", "PPDB_TLS_CA_CERT_FILE", "PPDB_TLS_CERT_FILE", "PPDB_TLS_KEY_FILE"] {
        command.env_remove(variable);
    }
    let output = command
        .current_dir(dir)
        .args(["cluster", "--admin", admin])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run ppdb cluster");
    (output.status.success(), text(&output))
}

#[test]
fn the_admin_port_serves_https_where_a_certificate_of_the_ca_is_an_admin_credential() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ThrowawayCa::new("cluster CA").unwrap();
    let names = ["127.0.0.1", "localhost"];
    let node_files = ca.write_files(&dir.path().join("tls"), "node-1", "node-1", &names).unwrap();
    let operator = ca.write_files(&dir.path().join("tls"), "operator", "operator", &["localhost"]).unwrap();
    let stranger = ThrowawayCa::new("another CA").unwrap();
    let stranger =
        stranger.write_files(&dir.path().join("stranger"), "operator", "operator", &names).unwrap();
    let addrs = free_addrs(3);
    let bootstrap = format!("1={}", addrs[0]);
    let how = ["--bootstrap", &bootstrap, "--admin-token", "tok3n-for-admin"];
    let _node = Reaped(vec![start_node(1, &addrs, &node_files, dir.path(), &how)]);
    let admin = addrs[2].to_string();
    let path = |p: &Path| p.display().to_string();
    let ca_file = path(&node_files.ca);
    let cluster = |args: &[&str]| {
        let mut all = vec!["--tls-ca-cert-file", &ca_file];
        all.extend(args);
        ppdb_cluster(dir.path(), &admin, &all)
    };

    // Reads stay open, now over HTTPS.
    let status = wait_for(READY_DEADLINE, || {
        let (ok, said) = cluster(&["status"]);
        (ok && said.contains("node 1")).then_some(said)
    });
    let status =
        status.unwrap_or_else(|| panic!("ppdb cluster status never answered:\n{}", log_of(dir.path(), 1)));
    assert!(status.contains("cluster tls: ACTIVE"), "{status}");
    let (ok, said) =
        ppdb_cluster(dir.path(), &format!("https://{admin}"), &["--tls-ca-cert-file", &ca_file, "status"]);
    assert!(ok, "an https:// address: {said}");

    // Plain HTTP to the HTTPS port gets no answer.
    assert!(http_get(addrs[2], "/status").is_none(), "plain HTTP is not served on the HTTPS port");
    let (ok, said) = ppdb_cluster(dir.path(), &admin, &["status"]);
    assert!(!ok && said.contains("cannot reach"), "{said}");

    // A change needs a credential: none is refused, the token or a certificate of the CA is taken.
    let (ok, said) = cluster(&["remove", "9"]);
    assert!(!ok && said.contains("401") && said.contains("client certificate of the cluster CA"), "{said}");
    let (ok, said) = cluster(&[
        "--tls-cert-file",
        &path(&operator.cert),
        "--tls-key-file",
        &path(&operator.key),
        "remove",
        "9",
    ]);
    assert!(!ok && !said.contains("401") && said.contains("no node 9"), "a certificate of the CA: {said}");
    let (ok, said) = cluster(&["--admin-token", "tok3n-for-admin", "remove", "9"]);
    assert!(!ok && !said.contains("401") && said.contains("no node 9"), "the token: {said}");
    let (ok, said) = cluster(&[
        "--tls-cert-file",
        &path(&stranger.cert),
        "--tls-key-file",
        &path(&stranger.key),
        "remove",
        "9",
    ]);
    assert!(!ok && said.contains("cannot reach"), "a certificate of another CA fails the handshake: {said}");
    assert!(log_of(dir.path(), 1).contains("admin request accepted on a client certificate"));

    // The hint `ppdb local --tls` prints.
    if Command::new("curl").arg("--version").stdout(Stdio::null()).status().is_ok() {
        let url = format!("https://{admin}/status");
        let curl = Command::new("curl").args(["-s", "--cacert", &ca_file, &url]).output().unwrap();
        assert!(text(&curl).contains("\"cluster_id\":\"tls\""), "{}", text(&curl));
    }
}

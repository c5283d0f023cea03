use super::throwaway::ThrowawayCa;
use super::*;
use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn node_files(dir: &Path, ca: &ThrowawayCa, name: &str) -> TlsFiles {
    ca.write_files(dir, name, name, &["127.0.0.1", "localhost"]).unwrap()
}

#[test]
fn identity_names_subject_serial_and_alternative_names() {
    let ca = ThrowawayCa::new("test CA").unwrap();
    let issued = ca.issue("node-1", &["127.0.0.1", "localhost", "::1"]).unwrap();
    let der = CertificateDer::from_pem_slice(issued.cert_pem.as_bytes()).unwrap();
    let identity = CertificateIdentity::decode(&der).unwrap();
    assert!(identity.subject.contains("CN=node-1"), "{}", identity.subject);
    assert_eq!(identity.serial_hex.len(), 32, "{}", identity.serial_hex);
    assert_eq!(identity.dns_names, ["localhost"]);
    assert_eq!(identity.ip_addresses, ["127.0.0.1".parse::<IpAddr>().unwrap(), "::1".parse().unwrap()]);
    let other = ca.issue("node-1", &["localhost"]).unwrap();
    let other =
        CertificateIdentity::decode(&CertificateDer::from_pem_slice(other.cert_pem.as_bytes()).unwrap());
    assert_ne!(other.unwrap().serial_hex, identity.serial_hex, "each certificate has its own serial");
}

#[test]
fn identity_refuses_garbage_and_oversized_input() {
    assert!(CertificateIdentity::decode(b"").is_err());
    assert!(CertificateIdentity::decode(b"\x30\x82\xff\xff not a certificate").is_err());
    assert!(CertificateIdentity::decode(&vec![0x30; CERTIFICATE_BYTES_MAX + 1]).is_err());
}

proptest! {
    #[test]
    fn identity_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = CertificateIdentity::decode(&bytes);
    }

    #[test]
    fn identity_decoder_survives_corrupted_certificates(at in 0usize..2048, byte in any::<u8>()) {
        let ca = ThrowawayCa::new("ca").unwrap();
        let issued = ca.issue("node", &["localhost"]).unwrap();
        let mut der = CertificateDer::from_pem_slice(issued.cert_pem.as_bytes()).unwrap().to_vec();
        let at = at % der.len();
        der[at] = byte;
        let _ = CertificateIdentity::decode(&der);
    }
}

#[test]
fn pem_decoding_says_which_file_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ThrowawayCa::new("ca").unwrap();
    let files = node_files(dir.path(), &ca, "node");
    assert!(TlsContext::load(files.clone(), ClientAuth::Required).is_ok());

    let missing = TlsFiles { cert: dir.path().join("absent.crt"), ..files.clone() };
    let error = TlsContext::load(missing, ClientAuth::Required).unwrap_err();
    assert!(matches!(error, TlsError::Read { role: "certificate", .. }), "{error}");

    std::fs::write(dir.path().join("empty.pem"), "no pem here\n").unwrap();
    let empty = TlsFiles { ca: dir.path().join("empty.pem"), ..files.clone() };
    let error = TlsContext::load(empty, ClientAuth::Required).unwrap_err();
    assert!(matches!(error, TlsError::Pem { role: "CA", .. }), "{error}");

    let key_as_cert = TlsFiles { cert: files.key.clone(), ..files.clone() };
    let error = TlsContext::load(key_as_cert, ClientAuth::Required).unwrap_err();
    assert!(matches!(error, TlsError::Pem { role: "certificate", .. }), "{error}");

    let other = node_files(&dir.path().join("other"), &ca, "other");
    let mismatched = TlsFiles { key: other.key, ..files };
    let error = TlsContext::load(mismatched, ClientAuth::Required).unwrap_err();
    assert!(matches!(error, TlsError::Identity { .. }), "{error}");
}

#[test]
fn reload_puts_new_files_in_force_and_keeps_the_old_on_error() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ThrowawayCa::new("ca").unwrap();
    let files = node_files(dir.path(), &ca, "node");
    let tls = TlsContext::load(files.clone(), ClientAuth::Required).unwrap();
    let first = tls.identity();
    node_files(dir.path(), &ca, "node");
    tls.reload().unwrap();
    let second = tls.identity();
    assert_ne!(first.serial_hex, second.serial_hex);
    std::fs::write(&files.cert, "broken").unwrap();
    assert!(tls.reload().is_err());
    assert_eq!(tls.identity(), second, "a bad file leaves the configuration in force");
}

/// Runs one peer handshake between `acceptor` and `dialer` over loopback; the dialer's
/// outcome, and what the acceptor read after it.
async fn peer_handshake(acceptor: TlsContext, dialer: TlsContext) -> (io::Result<()>, io::Result<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepting = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut stream = acceptor.accept_peer(tcp).await?;
        let mut read = vec![0; 5];
        stream.read_exact(&mut read).await?;
        Ok(read)
    });
    let dialed = async {
        let tcp = TcpStream::connect(addr).await?;
        let mut stream = dialer.dial_peer(tcp, addr.ip()).await?;
        stream.write_all(b"hello").await?;
        stream.flush().await?;
        // TLS 1.3: the acceptor's verdict on our certificate arrives after our handshake ends.
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).await.map(|_| ())
    };
    let dialed = dialed.await;
    (dialed, accepting.await.unwrap())
}

#[tokio::test]
async fn peers_of_one_ca_complete_a_mutual_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ThrowawayCa::new("ca").unwrap();
    let a = TlsContext::load(node_files(&dir.path().join("a"), &ca, "a"), ClientAuth::Required).unwrap();
    let b = TlsContext::load(node_files(&dir.path().join("b"), &ca, "b"), ClientAuth::Required).unwrap();
    let (_, accepted) = peer_handshake(a, b).await;
    assert_eq!(accepted.unwrap(), b"hello");
}

#[tokio::test]
async fn a_peer_of_another_ca_is_refused_before_any_byte_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let ours = ThrowawayCa::new("ours").unwrap();
    let theirs = ThrowawayCa::new("theirs").unwrap();
    let member =
        TlsContext::load(node_files(&dir.path().join("a"), &ours, "a"), ClientAuth::Required).unwrap();
    let stranger =
        TlsContext::load(node_files(&dir.path().join("b"), &theirs, "b"), ClientAuth::Required).unwrap();
    let (_, accepted) = peer_handshake(member.clone(), stranger.clone()).await;
    assert!(accepted.is_err(), "the acceptor refuses a dialer of another CA");
    let (dialed, accepted) = peer_handshake(stranger, member).await;
    assert!(dialed.is_err(), "the dialer refuses an acceptor of another CA");
    assert!(accepted.is_err());
}

#[test]
fn tls_auth_clients_reads_as_redis_writes_it() {
    assert_eq!("yes".parse::<ClientAuth>().unwrap(), ClientAuth::Required);
    assert_eq!("optional".parse::<ClientAuth>().unwrap(), ClientAuth::Optional);
    assert_eq!("NO".parse::<ClientAuth>().unwrap(), ClientAuth::Off);
    assert!("maybe".parse::<ClientAuth>().is_err());
    assert_eq!(ClientAuth::default().to_string(), "yes");
}

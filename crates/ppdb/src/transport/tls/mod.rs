//! TLS on every port, from rustls (ring provider): the node's certificate, key and cluster CA
//! read from PEM files, the configurations built from them, and the stream that is either
//! plain TCP or TLS over it.
//!
//! One node certificate serves every port. On the peer port TLS is always mutual: the
//! acceptor asks for a client certificate and verifies it against the cluster CA, and the
//! dialer verifies the acceptor's certificate against the same CA and the IP address it
//! dialed. A peer without a certificate of the cluster CA is refused by the TLS handshake,
//! before any cluster message is read: with TLS on, a node's certificate is its credential,
//! to be a member and to join. On the client ports (RESP, memcached) the acceptor asks for
//! client certificates as `tls-auth-clients` says, as Redis does. The admin port (HTTPS) asks
//! for one and accepts clients without: a certificate of the CA is an admin credential there,
//! the admin token another.
//!
//! The files are read again without a restart ([`TlsContext::watch`]): on SIGHUP, and when one
//! of their modification times changes (polled every [`RELOAD_POLL_INTERVAL`]). New handshakes
//! use the new files; established connections keep the session they negotiated. A file that
//! cannot be used is logged and the configuration in force is kept.

pub mod throwaway;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use std::fmt;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// How often the certificate, key and CA files' modification times are checked.
pub const RELOAD_POLL_INTERVAL: Duration = Duration::from_secs(2);
/// Longest a client port's TLS handshake may take before the connection is closed.
pub const CLIENT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest PEM file read (a certificate chain or a CA bundle).
pub const PEM_FILE_BYTES_MAX: u64 = 1024 * 1024;
/// Largest DER certificate whose identity is decoded.
pub const CERTIFICATE_BYTES_MAX: usize = 64 * 1024;
/// Most subject alternative names kept from one certificate.
pub const CERTIFICATE_NAMES_MAX: usize = 64;
/// Longest text kept from a certificate's subject or one of its names, in bytes.
pub const CERTIFICATE_NAME_BYTES_MAX: usize = 256;

/// Whether clients of the RESP and memcached ports must present a certificate of the CA
/// (Redis's `tls-auth-clients`: `yes`, the default, `optional` or `no`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// A client without a certificate of the CA is refused at the handshake.
    #[default]
    Required,
    /// A client may present no certificate; one it presents must be of the CA.
    Optional,
    /// Clients are not asked for a certificate.
    Off,
}

impl FromStr for ClientAuth {
    type Err = String;

    fn from_str(s: &str) -> Result<ClientAuth, String> {
        match s.to_ascii_lowercase().as_str() {
            "yes" => Ok(ClientAuth::Required),
            "optional" => Ok(ClientAuth::Optional),
            "no" => Ok(ClientAuth::Off),
            other => Err(format!("tls-auth-clients must be yes, optional or no, not {other:?}")),
        }
    }
}

impl fmt::Display for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ClientAuth::Required => "yes",
            ClientAuth::Optional => "optional",
            ClientAuth::Off => "no",
        })
    }
}

/// Where the node's TLS material lives (Redis's `tls-cert-file`, `tls-key-file`,
/// `tls-ca-cert-file`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The node's certificate chain, leaf first (PEM).
    pub cert: PathBuf,
    /// The private key of the leaf certificate (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// The cluster CA's certificates (PEM), which every peer's and client's certificate must
    /// chain to.
    pub ca: PathBuf,
}

/// Why TLS material could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read the TLS {role} file {path}: {reason}")]
    Read {
        /// Which file: certificate, key or CA.
        role: &'static str,
        /// Its path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A file holds no usable PEM section of the kind expected.
    #[error("the TLS {role} file {path} holds no {expected}: {reason}")]
    Pem {
        /// Which file.
        role: &'static str,
        /// Its path.
        path: PathBuf,
        /// What it should hold.
        expected: &'static str,
        /// Why it does not.
        reason: String,
    },
    /// The certificate and key do not match, or rustls refuses them.
    #[error("the TLS certificate {cert} and key {key} cannot be used together: {reason}")]
    Identity {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// Why.
        reason: String,
    },
    /// The CA certificates cannot verify anything.
    #[error("the TLS CA file {path} cannot be used: {reason}")]
    Ca {
        /// The CA file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A DER certificate could not be decoded.
    #[error("cannot decode a certificate: {0}")]
    Certificate(String),
}

/// Who a certificate names: what logs and tests show of a peer's or a node's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateIdentity {
    /// The subject's distinguished name (`CN=node-1, O=ppdb`).
    pub subject: String,
    /// The serial number, in lowercase hex.
    pub serial_hex: String,
    /// DNS names among the subject alternative names.
    pub dns_names: Vec<String>,
    /// IP addresses among the subject alternative names.
    pub ip_addresses: Vec<IpAddr>,
}

impl CertificateIdentity {
    /// Decodes the identity of one DER certificate. Untrusted input: bounded, never panics.
    pub fn decode(der: &[u8]) -> Result<CertificateIdentity, TlsError> {
        use x509_parser::extensions::GeneralName;
        if der.len() > CERTIFICATE_BYTES_MAX {
            return Err(TlsError::Certificate(format!(
                "{} bytes, more than {CERTIFICATE_BYTES_MAX}",
                der.len()
            )));
        }
        let (_, cert) =
            x509_parser::parse_x509_certificate(der).map_err(|e| TlsError::Certificate(e.to_string()))?;
        let mut identity = CertificateIdentity {
            subject: bounded(cert.subject().to_string()),
            serial_hex: bounded(cert.raw_serial_as_string().replace(':', "")),
            dns_names: Vec::new(),
            ip_addresses: Vec::new(),
        };
        let names = cert.subject_alternative_name().map_err(|e| TlsError::Certificate(e.to_string()))?;
        let names = names.map(|ext| ext.value.general_names.as_slice()).unwrap_or_default();
        for name in names.iter().take(CERTIFICATE_NAMES_MAX) {
            match name {
                GeneralName::DNSName(dns) => identity.dns_names.push(bounded(dns.to_string())),
                GeneralName::IPAddress(&[a, b, c, d]) => {
                    identity.ip_addresses.push(IpAddr::from([a, b, c, d]))
                }
                GeneralName::IPAddress(octets) => {
                    if let Ok(v6) = <[u8; 16]>::try_from(*octets) {
                        identity.ip_addresses.push(IpAddr::from(v6));
                    }
                }
                _ => {}
            }
        }
        Ok(identity)
    }
}

/// `text`, cut to [`CERTIFICATE_NAME_BYTES_MAX`] on a character boundary.
fn bounded(mut text: String) -> String {
    if text.len() > CERTIFICATE_NAME_BYTES_MAX {
        let mut end = CERTIFICATE_NAME_BYTES_MAX;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// The rustls configurations built from one reading of the files.
struct Configs {
    /// For the RESP and memcached ports (client certificates as `tls-auth-clients` says).
    client_port: Arc<ServerConfig>,
    /// For the peer port's acceptor (a client certificate of the CA required).
    peer_acceptor: Arc<ServerConfig>,
    /// For the admin port (a client certificate of the CA optional).
    admin_port: Arc<ServerConfig>,
    /// For dialing peers (presents the node's certificate, verifies theirs).
    peer_dialer: Arc<ClientConfig>,
    /// The node certificate's identity.
    identity: CertificateIdentity,
    /// The files' modification times when they were read.
    stamps: [Option<SystemTime>; 3],
}

/// The node's TLS: the configurations in force, swapped whole when the files change. Cheap to
/// clone; clones share one configuration.
#[derive(Clone)]
pub struct TlsContext {
    files: Arc<TlsFiles>,
    client_auth: ClientAuth,
    current: Arc<RwLock<Arc<Configs>>>,
}

impl fmt::Debug for TlsContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsContext")
            .field("files", &self.files)
            .field("client_auth", &self.client_auth)
            .finish()
    }
}

impl TlsContext {
    /// Reads the files and builds every configuration; fails with what is wrong with them.
    pub fn load(files: TlsFiles, client_auth: ClientAuth) -> Result<TlsContext, TlsError> {
        let configs = build(&files, client_auth)?;
        Ok(TlsContext {
            files: Arc::new(files),
            client_auth,
            current: Arc::new(RwLock::new(Arc::new(configs))),
        })
    }

    /// The files this context reads.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// The identity of the node certificate in force.
    pub fn identity(&self) -> CertificateIdentity {
        self.configs().identity.clone()
    }

    /// Reads the files again and puts the new configuration in force; on error the one in
    /// force stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let configs = build(&self.files, self.client_auth)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(configs);
        Ok(())
    }

    /// Whether a file's modification time differs from when it was last read.
    fn files_changed(&self) -> bool {
        stamps(&self.files) != self.configs().stamps
    }

    fn configs(&self) -> Arc<Configs> {
        Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Completes the server side of a client port's handshake.
    pub async fn accept_client(&self, tcp: TcpStream) -> io::Result<MaybeTls> {
        let acceptor = TlsAcceptor::from(Arc::clone(&self.configs().client_port));
        Ok(MaybeTls::Tls(Box::new(acceptor.accept(tcp).await?.into())))
    }

    /// Completes the server side of an admin client's handshake (HTTPS).
    pub async fn accept_admin(&self, tcp: TcpStream) -> io::Result<MaybeTls> {
        let acceptor = TlsAcceptor::from(Arc::clone(&self.configs().admin_port));
        Ok(MaybeTls::Tls(Box::new(acceptor.accept(tcp).await?.into())))
    }

    /// Completes the acceptor's side of a peer's mutual handshake.
    pub async fn accept_peer(&self, tcp: TcpStream) -> io::Result<MaybeTls> {
        let acceptor = TlsAcceptor::from(Arc::clone(&self.configs().peer_acceptor));
        Ok(MaybeTls::Tls(Box::new(acceptor.accept(tcp).await?.into())))
    }

    /// Completes the dialer's side of a mutual handshake with the peer listening at `ip`, whose
    /// certificate must name that address.
    pub async fn dial_peer(&self, tcp: TcpStream, ip: IpAddr) -> io::Result<MaybeTls> {
        let connector = TlsConnector::from(Arc::clone(&self.configs().peer_dialer));
        let name = ServerName::IpAddress(ip.into());
        Ok(MaybeTls::Tls(Box::new(connector.connect(name, tcp).await?.into())))
    }

    /// Reloads the files on SIGHUP and when they change, until `shutdown` turns true.
    pub fn watch(&self, mut shutdown: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
        let tls = self.clone();
        tokio::spawn(async move {
            let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
                .map_err(
                    |e| tracing::warn!(error = %e, "cannot watch SIGHUP; TLS files reload on change only"),
                )
                .ok();
            loop {
                let signalled = tokio::select! {
                    () = tokio::time::sleep(RELOAD_POLL_INTERVAL) => false,
                    Some(()) = async { match hangup.as_mut() { Some(h) => h.recv().await, None => None } } => true,
                    _ = shutdown.wait_for(|s| *s) => return,
                };
                if !signalled && !tls.files_changed() {
                    continue;
                }
                let seen = stamps(&tls.files);
                match tls.reload() {
                    Ok(()) => {
                        let identity = tls.identity();
                        tracing::info!(subject = %identity.subject, serial = %identity.serial_hex, "TLS files reloaded");
                    }
                    Err(error) => {
                        tracing::error!(%error, "TLS files not reloaded; the previous ones stay in force");
                        // Not retried until a file changes again (one written after `seen`
                        // was taken, such as a key replaced just after its certificate, is).
                        tls.note_stamps(seen);
                    }
                }
            }
        })
    }

    /// Records `now` as the files' modification times last seen.
    fn note_stamps(&self, now: [Option<SystemTime>; 3]) {
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        if current.stamps != now {
            let configs = Configs {
                client_port: Arc::clone(&current.client_port),
                peer_acceptor: Arc::clone(&current.peer_acceptor),
                admin_port: Arc::clone(&current.admin_port),
                peer_dialer: Arc::clone(&current.peer_dialer),
                identity: current.identity.clone(),
                stamps: now,
            };
            *current = Arc::new(configs);
        }
    }
}

fn stamps(files: &TlsFiles) -> [Option<SystemTime>; 3] {
    let stamp = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    [stamp(&files.cert), stamp(&files.key), stamp(&files.ca)]
}

/// Reads at most [`PEM_FILE_BYTES_MAX`] bytes of `path`.
fn read_pem(role: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    use std::io::Read;
    let read_error = |e: io::Error| TlsError::Read { role, path: path.to_path_buf(), reason: e.to_string() };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(read_error)?
        .take(PEM_FILE_BYTES_MAX + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > PEM_FILE_BYTES_MAX {
        return Err(TlsError::Read {
            role,
            path: path.to_path_buf(),
            reason: format!("larger than {PEM_FILE_BYTES_MAX} bytes"),
        });
    }
    Ok(bytes)
}

/// Every certificate of a PEM file (at least one).
pub fn decode_certificates(
    role: &'static str,
    path: &Path,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem_error =
        |reason: String| TlsError::Pem { role, path: path.to_path_buf(), expected: "certificate", reason };
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(e.to_string()))?;
    if certs.is_empty() {
        return Err(pem_error("no CERTIFICATE section".into()));
    }
    Ok(certs)
}

/// The private key of a PEM file.
pub fn decode_private_key(path: &Path, pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| TlsError::Pem {
        role: "key",
        path: path.to_path_buf(),
        expected: "private key",
        reason: e.to_string(),
    })
}

/// The configuration of a client of a node's TLS port (`ppdb cluster` over HTTPS): it trusts
/// the CA certificates of `ca` and, given a certificate and key (`identity`), presents them.
pub fn client_config(ca: &Path, identity: Option<(&Path, &Path)>) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in decode_certificates("CA", ca, &read_pem("CA", ca)?)? {
        roots.add(cert).map_err(|e| TlsError::Ca { path: ca.to_path_buf(), reason: e.to_string() })?;
    }
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Ca { path: ca.to_path_buf(), reason: e.to_string() })?
        .with_root_certificates(roots);
    let config = match identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = decode_certificates("certificate", cert, &read_pem("certificate", cert)?)?;
            let private_key = decode_private_key(key, &read_pem("key", key)?)?;
            builder.with_client_auth_cert(chain, private_key).map_err(|e| TlsError::Identity {
                cert: cert.to_path_buf(),
                key: key.to_path_buf(),
                reason: e.to_string(),
            })?
        }
    };
    Ok(Arc::new(config))
}

/// Builds every configuration from the files.
fn build(files: &TlsFiles, client_auth: ClientAuth) -> Result<Configs, TlsError> {
    let stamps = stamps(files);
    let chain = decode_certificates("certificate", &files.cert, &read_pem("certificate", &files.cert)?)?;
    let key = decode_private_key(&files.key, &read_pem("key", &files.key)?)?;
    let ca_certs = decode_certificates("CA", &files.ca, &read_pem("CA", &files.ca)?)?;
    let ca_error = |reason: String| TlsError::Ca { path: files.ca.clone(), reason };
    let mut roots = RootCertStore::empty();
    for cert in ca_certs {
        roots.add(cert).map_err(|e| ca_error(e.to_string()))?;
    }
    let roots = Arc::new(roots);
    let identity = CertificateIdentity::decode(&chain[0])?;
    let identity_error = |e: rustls::Error| TlsError::Identity {
        cert: files.cert.clone(),
        key: files.key.clone(),
        reason: e.to_string(),
    };
    // ring builds with a C compiler alone (aws-lc-rs needs cmake); rustls deprecates its
    // provider only because it offers no post-quantum key exchange.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = || {
        ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(identity_error)
    };
    let verifier = |auth: ClientAuth| {
        let builder = WebPkiClientVerifier::builder_with_provider(Arc::clone(&roots), Arc::clone(&provider));
        match auth {
            ClientAuth::Required => builder.build(),
            ClientAuth::Optional | ClientAuth::Off => builder.allow_unauthenticated().build(),
        }
        .map_err(|e| ca_error(e.to_string()))
    };
    let client_port = match client_auth {
        ClientAuth::Off => server()?.with_no_client_auth(),
        auth => server()?.with_client_cert_verifier(verifier(auth)?),
    }
    .with_single_cert(chain.clone(), key.clone_key())
    .map_err(identity_error)?;
    let peer_acceptor = server()?
        .with_client_cert_verifier(verifier(ClientAuth::Required)?)
        .with_single_cert(chain.clone(), key.clone_key())
        .map_err(identity_error)?;
    let mut admin_port = server()?
        .with_client_cert_verifier(verifier(ClientAuth::Optional)?)
        .with_single_cert(chain.clone(), key.clone_key())
        .map_err(identity_error)?;
    // HTTP/1.1 only, as the admin listener serves it.
    admin_port.alpn_protocols = vec![b"http/1.1".to_vec()];
    let peer_dialer = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(identity_error)?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(identity_error)?;
    Ok(Configs {
        client_port: Arc::new(client_port),
        peer_acceptor: Arc::new(peer_acceptor),
        admin_port: Arc::new(admin_port),
        peer_dialer: Arc::new(peer_dialer),
        identity,
        stamps,
    })
}

/// A client connection as the client port serves it: plain without `tls`, otherwise after
/// the server side of the TLS handshake. `None` when the handshake failed (logged) or took
/// longer than [`CLIENT_HANDSHAKE_TIMEOUT`]: the connection is closed.
pub async fn accept_client(tls: Option<&TlsContext>, tcp: TcpStream) -> Option<MaybeTls> {
    let Some(tls) = tls else { return Some(MaybeTls::Plain(tcp)) };
    let addr = tcp.peer_addr().ok();
    match tokio::time::timeout(CLIENT_HANDSHAKE_TIMEOUT, tls.accept_client(tcp)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(error)) => {
            tracing::info!(addr = ?addr, %error, "client TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::info!(addr = ?addr, "client TLS handshake timed out");
            None
        }
    }
}

/// A TCP connection, plain or carrying TLS.
pub enum MaybeTls {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP (either side of the handshake).
    Tls(Box<tokio_rustls::TlsStream<TcpStream>>),
}

impl MaybeTls {
    /// The TCP connection underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            MaybeTls::Plain(tcp) => tcp,
            MaybeTls::Tls(tls) => tls.get_ref().0,
        }
    }

    /// The identity of the certificate the other side presented, if any.
    pub fn peer_identity(&self) -> Option<CertificateIdentity> {
        let MaybeTls::Tls(tls) = self else { return None };
        let certs = tls.get_ref().1.peer_certificates()?;
        CertificateIdentity::decode(certs.first()?).ok()
    }
}

impl AsyncRead for MaybeTls {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_read(cx, buf),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MaybeTls {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_write(cx, buf),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            MaybeTls::Plain(s) => s.is_write_vectored(),
            MaybeTls::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_flush(cx),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_shutdown(cx),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests;

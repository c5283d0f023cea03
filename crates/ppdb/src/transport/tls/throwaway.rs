//! A throwaway certificate authority (rcgen) for `ppdb local --tls` and tests: a CA and the
//! certificates it issues to nodes and clients, written as PEM files. Not for production:
//! its key lives in a file beside the certificates.

use super::TlsFiles;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, SerialNumber,
};
use std::io;
use std::path::Path;

/// The file name of the CA certificate inside a TLS folder.
pub const CA_CERT_FILE: &str = "ca.crt";

/// A CA whose key is held in memory.
pub struct ThrowawayCa {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
}

/// A certificate and its private key, as PEM.
pub struct Issued {
    /// The certificate.
    pub cert_pem: String,
    /// Its private key (PKCS#8).
    pub key_pem: String,
}

/// Why a certificate could not be made.
fn generation(e: rcgen::Error) -> io::Error {
    io::Error::other(format!("cannot generate a certificate: {e}"))
}

impl ThrowawayCa {
    /// A new CA named `name`, with a fresh key.
    pub fn new(name: &str) -> io::Result<ThrowawayCa> {
        let mut params = CertificateParams::new(Vec::new()).map_err(generation)?;
        params.distinguished_name = distinguished_name(name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        params.serial_number = Some(random_serial());
        let key = KeyPair::generate().map_err(generation)?;
        let cert_pem = params.self_signed(&key).map_err(generation)?.pem();
        Ok(ThrowawayCa { issuer: Issuer::new(params, key), cert_pem })
    }

    /// The CA's certificate (PEM).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Issues a certificate named `common_name`, valid for `names` (DNS names or IP
    /// addresses), for both server and client authentication, with a fresh key and serial.
    pub fn issue(&self, common_name: &str, names: &[&str]) -> io::Result<Issued> {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).map_err(generation)?;
        params.distinguished_name = distinguished_name(common_name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages =
            vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        params.serial_number = Some(random_serial());
        let key = KeyPair::generate().map_err(generation)?;
        let cert = params.signed_by(&key, &self.issuer).map_err(generation)?;
        Ok(Issued { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
    }

    /// Writes the CA certificate and a certificate for `common_name` (valid for `names`) with
    /// its key into `dir`, as `ca.crt`, `<file_stem>.crt` and `<file_stem>.key`.
    pub fn write_files(
        &self,
        dir: &Path,
        file_stem: &str,
        common_name: &str,
        names: &[&str],
    ) -> io::Result<TlsFiles> {
        std::fs::create_dir_all(dir)?;
        let issued = self.issue(common_name, names)?;
        let files = TlsFiles {
            cert: dir.join(format!("{file_stem}.crt")),
            key: dir.join(format!("{file_stem}.key")),
            ca: dir.join(CA_CERT_FILE),
        };
        std::fs::write(&files.ca, &self.cert_pem)?;
        std::fs::write(&files.key, &issued.key_pem)?;
        std::fs::write(&files.cert, &issued.cert_pem)?;
        Ok(files)
    }
}

fn distinguished_name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "ppdb");
    name.push(DnType::CommonName, common_name);
    name
}

/// A random positive 16-byte serial number.
fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::from_slice(&bytes)
}

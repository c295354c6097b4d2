//! TLS: the server's own CA, its serving certificate and the admin's client certificate.
//!
//! On first start the server generates a CA into `DIR/tls/` and issues a serving certificate for
//! the names it answers on; later starts reuse them (a serving certificate is re-issued when the
//! names change). `ca.crt` is what clients trust. Client certificates signed by the CA are accepted
//! and map to a user as Kubernetes does: common name = user name, organizations = groups.

use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// What can go wrong while preparing TLS.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Reading or writing a file in the TLS directory failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// Generating or parsing a key or certificate failed.
    #[error("certificate: {0}")]
    Certificate(String),
    /// rustls rejected the configuration.
    #[error("tls configuration: {0}")]
    Config(#[from] rustls::Error),
}

impl From<rcgen::Error> for TlsError {
    fn from(err: rcgen::Error) -> Self {
        TlsError::Certificate(err.to_string())
    }
}

/// The CA and serving material of a server, as PEM.
pub struct TlsMaterial {
    /// The CA certificate clients trust.
    pub ca_cert_pem: String,
    ca_key_pem: String,
    serving_cert_pem: String,
    serving_key_pem: String,
    /// Path of `ca.crt`.
    pub ca_path: PathBuf,
}

const VALIDITY_DAYS_CA: i64 = 3650;
const VALIDITY_DAYS_LEAF: i64 = 365;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Writes a file readable only by its owner when `private`.
pub fn write_file(path: &Path, contents: &[u8], private: bool) -> Result<(), TlsError> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    options.mode(if private { 0o600 } else { 0o644 });
    let mut file = options.open(&tmp).map_err(io(&tmp))?;
    file.write_all(contents).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    fs::rename(&tmp, path).map_err(io(path))?;
    Ok(())
}

fn read(path: &Path) -> Result<Option<String>, TlsError> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(path)(e)),
    }
}

fn validity(params: &mut CertificateParams, days: i64) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(days);
}

fn san(name: &str) -> Result<SanType, TlsError> {
    Ok(match name.parse::<IpAddr>() {
        Ok(ip) => SanType::IpAddress(ip),
        Err(_) => SanType::DnsName(
            name.to_owned()
                .try_into()
                .map_err(|e: rcgen::Error| TlsError::Certificate(e.to_string()))?,
        ),
    })
}

impl TlsMaterial {
    /// Loads the CA and serving certificate from `dir`, creating what is missing. The serving
    /// certificate is (re)issued when it is missing or was issued for other names.
    pub fn load_or_create(dir: &Path, names: &[String]) -> Result<TlsMaterial, TlsError> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        let ca_path = dir.join("ca.crt");
        let ca_key_path = dir.join("ca.key");
        let (ca_cert_pem, ca_key_pem) = match (read(&ca_path)?, read(&ca_key_path)?) {
            (Some(cert), Some(key)) => (cert, key),
            _ => {
                let key = KeyPair::generate()?;
                let mut params = CertificateParams::new(Vec::<String>::new())?;
                let mut dn = DistinguishedName::new();
                dn.push(DnType::CommonName, "kargo-server-ca");
                params.distinguished_name = dn;
                params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
                params.key_usages = vec![
                    KeyUsagePurpose::KeyCertSign,
                    KeyUsagePurpose::CrlSign,
                    KeyUsagePurpose::DigitalSignature,
                ];
                validity(&mut params, VALIDITY_DAYS_CA);
                let cert = params.self_signed(&key)?;
                write_file(&ca_key_path, key.serialize_pem().as_bytes(), true)?;
                write_file(&ca_path, cert.pem().as_bytes(), false)?;
                (cert.pem(), key.serialize_pem())
            }
        };

        let cert_path = dir.join("server.crt");
        let key_path = dir.join("server.key");
        let names_path = dir.join("server.names");
        let wanted = names.join(",");
        let existing = (read(&cert_path)?, read(&key_path)?, read(&names_path)?);
        let (serving_cert_pem, serving_key_pem) = match existing {
            (Some(cert), Some(key), Some(n)) if n.trim() == wanted => (cert, key),
            _ => {
                let issuer = ca_issuer(&ca_cert_pem, &ca_key_pem)?;
                let key = KeyPair::generate()?;
                let mut params = CertificateParams::new(Vec::<String>::new())?;
                params.subject_alt_names =
                    names.iter().map(|n| san(n)).collect::<Result<_, _>>()?;
                let mut dn = DistinguishedName::new();
                dn.push(DnType::CommonName, "kargo-server");
                params.distinguished_name = dn;
                params.key_usages = vec![
                    KeyUsagePurpose::DigitalSignature,
                    KeyUsagePurpose::KeyEncipherment,
                ];
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
                params.use_authority_key_identifier_extension = true;
                validity(&mut params, VALIDITY_DAYS_LEAF);
                let cert = params.signed_by(&key, &issuer)?;
                write_file(&key_path, key.serialize_pem().as_bytes(), true)?;
                write_file(&cert_path, cert.pem().as_bytes(), false)?;
                write_file(&names_path, wanted.as_bytes(), false)?;
                (cert.pem(), key.serialize_pem())
            }
        };
        Ok(TlsMaterial {
            ca_cert_pem,
            ca_key_pem,
            serving_cert_pem,
            serving_key_pem,
            ca_path,
        })
    }

    /// Issues a client certificate for `user` in `groups`: `(cert_pem, key_pem)`.
    pub fn issue_client_cert(
        &self,
        user: &str,
        groups: &[&str],
    ) -> Result<(String, String), TlsError> {
        let issuer = ca_issuer(&self.ca_cert_pem, &self.ca_key_pem)?;
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        for group in groups {
            dn.push(DnType::OrganizationName, *group);
        }
        dn.push(DnType::CommonName, user);
        params.distinguished_name = dn;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        validity(&mut params, VALIDITY_DAYS_LEAF);
        let cert = params.signed_by(&key, &issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    /// A rustls server configuration: HTTP/2 and HTTP/1.1, optional client certificates signed
    /// by the CA.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(self.serving_cert_pem.as_bytes())
                .collect::<Result<_, _>>()
                .map_err(|e| TlsError::Certificate(e.to_string()))?;
        let key = PrivateKeyDer::from_pem_slice(self.serving_key_pem.as_bytes())
            .map_err(|e| TlsError::Certificate(e.to_string()))?;
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_slice_iter(self.ca_cert_pem.as_bytes()) {
            roots
                .add(ca.map_err(|e| TlsError::Certificate(e.to_string()))?)
                .map_err(TlsError::Config)?;
        }
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .allow_unauthenticated()
                .build()
                .map_err(|e| TlsError::Certificate(e.to_string()))?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs, key)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

fn ca_issuer(cert_pem: &str, key_pem: &str) -> Result<Issuer<'static, KeyPair>, TlsError> {
    let key = KeyPair::from_pem(key_pem)?;
    Ok(Issuer::from_ca_cert_pem(cert_pem, key)?)
}

/// The identity a verified client certificate asserts: `(user, groups)`.
pub fn client_identity(cert: &CertificateDer<'_>) -> Option<(String, Vec<String>)> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let subject = parsed.subject();
    let user = subject.iter_common_name().next()?.as_str().ok()?.to_owned();
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(str::to_owned))
        .collect();
    Some((user, groups))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn material_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let first = TlsMaterial::load_or_create(dir.path(), &names).unwrap();
        let again = TlsMaterial::load_or_create(dir.path(), &names).unwrap();
        assert_eq!(first.ca_cert_pem, again.ca_cert_pem);
        assert_eq!(first.serving_cert_pem, again.serving_cert_pem);
        let other = TlsMaterial::load_or_create(dir.path(), &["example.com".to_owned()]).unwrap();
        assert_eq!(first.ca_cert_pem, other.ca_cert_pem);
        assert_ne!(first.serving_cert_pem, other.serving_cert_pem);
        let mode = std::fs::metadata(dir.path().join("ca.key")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(mode.permissions().mode() & 0o777, 0o600);
        other.server_config().unwrap();
    }

    #[test]
    fn client_certificates_carry_user_and_groups() {
        let dir = tempfile::tempdir().unwrap();
        let tls = TlsMaterial::load_or_create(dir.path(), &["localhost".to_owned()]).unwrap();
        let (cert, _) = tls.issue_client_cert("admin", &["system:masters"]).unwrap();
        let der = CertificateDer::from_pem_slice(cert.as_bytes()).unwrap();
        assert_eq!(
            client_identity(&der),
            Some(("admin".to_owned(), vec!["system:masters".to_owned()]))
        );
    }
}

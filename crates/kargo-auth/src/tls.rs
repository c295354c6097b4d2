//! TLS: the server's own CA, its serving certificate and the admin's client certificate.
//!
//! The CA (certificate and key) lives in the store under [`CA_KEY`], so that every replica on a
//! shared store signs with the same CA and clients trust one `ca.crt` whichever replica answers.
//! On the first start of a store it is taken from `DIR/tls/ca.crt` and `DIR/tls/ca.key` when an
//! operator put them there (or an older version wrote them), else generated. Each start writes
//! the CA certificate to `DIR/tls/ca.crt` (what clients read) and issues this replica's own
//! serving certificate for the names it answers on into `DIR/tls/server.{crt,key}`; later starts
//! reuse it unless the names or the CA changed. Client certificates signed by the CA are accepted
//! and map to a user as Kubernetes does: common name = user name, organizations = groups.

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kargo_store::Store;
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
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        error: std::io::Error,
    },
    /// Generating or parsing a key or certificate failed.
    #[error("certificate: {0}")]
    Certificate(String),
    /// rustls rejected the configuration.
    #[error("tls configuration: {0}")]
    Config(rustls::Error),
    /// The store failed while loading or saving the CA.
    #[error("store: {0}")]
    Store(kargo_store::Error),
    /// The CA record in the store does not decode.
    #[error("the CA record in the store is corrupt: {0}")]
    Corrupt(String),
}

// Not `#[from]`: the message already names the cause, and a `source` besides would make the
// CLI, which prints an error's whole chain, say it twice.
impl From<kargo_store::Error> for TlsError {
    fn from(error: kargo_store::Error) -> TlsError {
        TlsError::Store(error)
    }
}

impl From<rustls::Error> for TlsError {
    fn from(error: rustls::Error) -> TlsError {
        TlsError::Config(error)
    }
}

/// The store key of the CA (certificate and key, PEM, as JSON).
pub(crate) const CA_KEY: &str = "/kargo/internal/ca";

/// A CA certificate and its private key, PEM.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaPair {
    /// The certificate.
    pub cert_pem: String,
    /// The private key.
    pub key_pem: String,
}

impl CaPair {
    /// A new self-signed CA.
    pub fn generate() -> Result<CaPair, TlsError> {
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
        Ok(CaPair {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Loads the CA from the store; on a store's first start, saves the one in `dir`
    /// (`ca.crt` + `ca.key`) or a new one. Replicas starting together agree: the first to save
    /// wins and the others load its CA.
    pub async fn shared(store: &Arc<dyn Store>, dir: &Path) -> Result<CaPair, TlsError> {
        loop {
            if let Some(kv) = store.get(CA_KEY).await? {
                let pair: CaPair = serde_json::from_slice(&kv.value)
                    .map_err(|e| TlsError::Corrupt(e.to_string()))?;
                ca_issuer(&pair.cert_pem, &pair.key_pem)?;
                return Ok(pair);
            }
            let pair = match (read(&dir.join("ca.crt"))?, read(&dir.join("ca.key"))?) {
                (Some(cert_pem), Some(key_pem)) => {
                    ca_issuer(&cert_pem, &key_pem)?;
                    CaPair { cert_pem, key_pem }
                }
                _ => CaPair::generate()?,
            };
            let bytes = serde_json::to_vec(&pair).map_err(|e| TlsError::Corrupt(e.to_string()))?;
            match store.create(CA_KEY, bytes).await {
                Ok(_) => return Ok(pair),
                Err(e) if e.is_already_exists() => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
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
    move |error| TlsError::Io {
        path: path.to_owned(),
        error,
    }
}

/// Writes a file readable and writable only by its owner (mode 0600, whatever the umask),
/// replacing it whole.
pub fn write_file(path: &Path, contents: &[u8]) -> Result<(), TlsError> {
    kargo_store::files::write_private(path, contents).map_err(io(path))
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
    /// Writes the CA certificate to `dir/ca.crt` and loads this replica's serving certificate
    /// from `dir`, issuing it from `ca` when it is missing or was issued for other names or by
    /// another CA.
    pub fn load_or_create(
        dir: &Path,
        names: &[String],
        ca: &CaPair,
    ) -> Result<TlsMaterial, TlsError> {
        kargo_store::files::create_private_dir(dir).map_err(io(dir))?;
        let ca_path = dir.join("ca.crt");
        if read(&ca_path)?.as_deref() != Some(ca.cert_pem.as_str()) {
            write_file(&ca_path, ca.cert_pem.as_bytes())?;
        }
        let (ca_cert_pem, ca_key_pem) = (ca.cert_pem.clone(), ca.key_pem.clone());

        let cert_path = dir.join("server.crt");
        let key_path = dir.join("server.key");
        let names_path = dir.join("server.names");
        // The names, and which CA issued the certificate.
        let wanted = format!("{}\nissuer: {}", names.join(","), fingerprint(&ca_cert_pem));
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
                write_file(&key_path, key.serialize_pem().as_bytes())?;
                write_file(&cert_path, cert.pem().as_bytes())?;
                write_file(&names_path, wanted.as_bytes())?;
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

/// A short hex digest of a PEM document.
fn fingerprint(pem: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, pem.as_bytes());
    digest.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
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
    fn serving_material_is_issued_once_and_reissued_for_new_names_or_a_new_ca() {
        let dir = tempfile::tempdir().unwrap();
        let ca = CaPair::generate().unwrap();
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let first = TlsMaterial::load_or_create(dir.path(), &names, &ca).unwrap();
        let again = TlsMaterial::load_or_create(dir.path(), &names, &ca).unwrap();
        assert_eq!(first.ca_cert_pem, again.ca_cert_pem);
        assert_eq!(first.serving_cert_pem, again.serving_cert_pem);
        let other =
            TlsMaterial::load_or_create(dir.path(), &["example.com".to_owned()], &ca).unwrap();
        assert_eq!(first.ca_cert_pem, other.ca_cert_pem);
        assert_ne!(first.serving_cert_pem, other.serving_cert_pem);
        let mode = std::fs::metadata(dir.path().join("server.key")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(mode.permissions().mode() & 0o777, 0o600);
        other.server_config().unwrap();

        let new_ca = CaPair::generate().unwrap();
        let reissued =
            TlsMaterial::load_or_create(dir.path(), &["example.com".to_owned()], &new_ca).unwrap();
        assert_ne!(reissued.serving_cert_pem, other.serving_cert_pem);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("ca.crt")).unwrap(),
            new_ca.cert_pem
        );
    }

    #[tokio::test]
    async fn the_ca_is_saved_in_the_store_once_and_files_of_an_earlier_start_are_adopted() {
        let store_dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(
            kargo_store::sqlite::SqliteStore::open(&store_dir.path().join("s.db")).unwrap(),
        );
        // Files an operator (or an earlier version) left in the TLS directory are adopted.
        let first = tempfile::tempdir().unwrap();
        let given = CaPair::generate().unwrap();
        std::fs::write(first.path().join("ca.crt"), &given.cert_pem).unwrap();
        std::fs::write(first.path().join("ca.key"), &given.key_pem).unwrap();
        let adopted = CaPair::shared(&store, first.path()).await.unwrap();
        assert_eq!(adopted.cert_pem, given.cert_pem);
        // Another replica, with an empty directory, gets the same CA from the store.
        let second = tempfile::tempdir().unwrap();
        let shared = CaPair::shared(&store, second.path()).await.unwrap();
        assert_eq!(
            (shared.cert_pem, shared.key_pem),
            (given.cert_pem, given.key_pem)
        );
    }

    #[test]
    fn client_certificates_carry_user_and_groups() {
        let dir = tempfile::tempdir().unwrap();
        let ca = CaPair::generate().unwrap();
        let tls = TlsMaterial::load_or_create(dir.path(), &["localhost".to_owned()], &ca).unwrap();
        let (cert, _) = tls.issue_client_cert("admin", &["system:masters"]).unwrap();
        let der = CertificateDer::from_pem_slice(cert.as_bytes()).unwrap();
        assert_eq!(
            client_identity(&der),
            Some(("admin".to_owned(), vec!["system:masters".to_owned()]))
        );
    }
}

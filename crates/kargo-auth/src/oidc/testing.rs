//! A local OpenID issuer for tests (feature `testing`): discovery and a JWKS served over
//! HTTPS by hyper on rustls from keys made here, with a certificate of a CA made here (pass
//! [`Issuer::config`] to the server: it trusts that CA), and ID tokens signed by those keys,
//! well-formed or not. A fixture: the real provider is exercised in the e2e tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http_body_util::Full;
use hyper::body::Bytes;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::OidcConfig;
use crate::keys::SigningKey;
use crate::tls::{CaPair, TlsMaterial};

/// The server's client id at the test issuer.
pub const CLIENT_ID: &str = "kargo";
/// The CLI's client id at the test issuer.
pub const CLI_CLIENT_ID: &str = "kargo-cli";

/// A key of the test issuer.
pub enum TestKey {
    /// RS256.
    Rsa(SigningKey),
    /// ES256 (P-256).
    Ec {
        /// The key pair.
        pair: EcdsaKeyPair,
        /// Its kid.
        kid: String,
    },
}

impl TestKey {
    /// A new RSA key.
    pub fn rsa() -> TestKey {
        TestKey::Rsa(SigningKey::generate().unwrap())
    }

    /// A new P-256 key named `kid`.
    pub fn ec(kid: &str) -> TestKey {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        TestKey::Ec {
            pair,
            kid: kid.to_owned(),
        }
    }

    /// Its kid.
    pub fn kid(&self) -> &str {
        match self {
            TestKey::Rsa(k) => &k.kid,
            TestKey::Ec { kid, .. } => kid,
        }
    }

    /// Its algorithm.
    pub fn alg(&self) -> &'static str {
        match self {
            TestKey::Rsa(_) => "RS256",
            TestKey::Ec { .. } => "ES256",
        }
    }

    /// Its public JWK.
    pub fn jwk(&self) -> Value {
        match self {
            TestKey::Rsa(k) => k.jwk(),
            TestKey::Ec { pair, kid } => {
                // An uncompressed point: 0x04 || x || y.
                let point = pair.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
                    "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                    "y": URL_SAFE_NO_PAD.encode(&point[33..65])})
            }
        }
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        match self {
            TestKey::Rsa(k) => k.sign(message).unwrap(),
            TestKey::Ec { pair, .. } => pair
                .sign(&aws_lc_rs::rand::SystemRandom::new(), message)
                .unwrap()
                .as_ref()
                .to_vec(),
        }
    }

    /// A token of `claims` signed by this key under its own kid.
    pub fn token(&self, claims: &Value) -> String {
        self.token_with(
            &json!({"alg": self.alg(), "kid": self.kid(), "typ": "JWT"}),
            claims,
        )
    }

    /// A token with the given header, signed by this key.
    pub fn token_with(&self, header: &Value, claims: &Value) -> String {
        let signed = format!("{}.{}", b64(header), b64(claims));
        let signature = URL_SAFE_NO_PAD.encode(self.sign(signed.as_bytes()));
        format!("{signed}.{signature}")
    }
}

/// base64url (no padding) of a JSON value.
pub fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

/// Seconds since the epoch.
pub fn now_secs() -> i64 {
    super::now() as i64
}

/// A local HTTPS issuer: discovery and the JWKS of the keys it is given.
pub struct Issuer {
    /// Its URL (`https://127.0.0.1:<port>`), the `iss` of its tokens.
    pub url: String,
    /// The CA of its certificate (PEM).
    pub ca_pem: String,
    /// Where it listens (or will).
    pub address: SocketAddr,
    jwks: Arc<Mutex<Value>>,
    jwks_hits: Arc<AtomicU64>,
    tls: Arc<rustls::ServerConfig>,
    stop: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Issuer {
    /// An issuer on a free loopback port, serving `keys`.
    pub async fn start(keys: &[&TestKey]) -> Issuer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = Issuer::unstarted(listener.local_addr().unwrap(), keys);
        issuer.serve(listener);
        issuer
    }

    /// An issuer that is not listening yet (its port is free).
    pub fn unstarted(address: SocketAddr, keys: &[&TestKey]) -> Issuer {
        let dir = tempfile::tempdir().unwrap();
        let ca = CaPair::generate().unwrap();
        let material =
            TlsMaterial::load_or_create(dir.path(), &["127.0.0.1".to_owned()], &ca).unwrap();
        let mut tls = (*material.server_config().unwrap()).clone();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let issuer = Issuer {
            url: format!("https://{address}"),
            ca_pem: material.ca_cert_pem.clone(),
            address,
            jwks: Arc::new(Mutex::new(json!({"keys": []}))),
            jwks_hits: Arc::new(AtomicU64::new(0)),
            tls: Arc::new(tls),
            stop: CancellationToken::new(),
            _dir: dir,
        };
        issuer.publish(keys);
        issuer
    }

    /// Publishes exactly `keys` as the JWKS.
    pub fn publish(&self, keys: &[&TestKey]) {
        *self.jwks.lock().unwrap() =
            json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()});
    }

    /// How many times the JWKS was fetched.
    pub fn hits(&self) -> u64 {
        self.jwks_hits.load(Ordering::SeqCst)
    }

    /// Serves on `listener` until dropped.
    pub fn serve(&self, listener: TcpListener) {
        let acceptor = tokio_rustls::TlsAcceptor::from(self.tls.clone());
        let (url, jwks, hits, stop) = (
            self.url.clone(),
            self.jwks.clone(),
            self.jwks_hits.clone(),
            self.stop.clone(),
        );
        tokio::spawn(async move {
            loop {
                let (tcp, _) = tokio::select! {
                    accepted = listener.accept() => accepted.unwrap(),
                    _ = stop.cancelled() => return,
                };
                let (acceptor, url, jwks, hits) =
                    (acceptor.clone(), url.clone(), jwks.clone(), hits.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |request| {
                        let body = match request.uri().path() {
                            "/.well-known/openid-configuration" => Some(json!({
                                "issuer": url,
                                "jwks_uri": format!("{url}/jwks"),
                                "id_token_signing_alg_values_supported": ["RS256", "ES256"],
                            })),
                            "/jwks" => {
                                hits.fetch_add(1, Ordering::SeqCst);
                                Some(jwks.lock().unwrap().clone())
                            }
                            _ => None,
                        };
                        let response = match body {
                            Some(body) => hyper::Response::new(Full::new(Bytes::from(
                                serde_json::to_vec(&body).unwrap(),
                            ))),
                            None => {
                                let mut r = hyper::Response::new(Full::new(Bytes::new()));
                                *r.status_mut() = hyper::StatusCode::NOT_FOUND;
                                r
                            }
                        };
                        async move { Ok::<_, std::convert::Infallible>(response) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                        .await;
                });
            }
        });
    }

    /// The server's settings for this issuer (both client ids, its CA).
    pub fn config(&self) -> OidcConfig {
        let mut config = OidcConfig::new(&self.url, CLIENT_ID);
        config.cli_client_id = Some(CLI_CLIENT_ID.to_owned());
        config.ca_pem = Some(self.ca_pem.clone().into_bytes());
        config
    }

    /// ID-token claims of this issuer for `email`, valid for an hour.
    pub fn claims(&self, email: &str) -> Value {
        let now = now_secs();
        json!({
            "iss": self.url, "sub": format!("sub-{email}"), "aud": CLIENT_ID,
            "email": email, "groups": ["devs", "ops"], "name": "Alice Example",
            "email_verified": true, "iat": now, "exp": now + 3600, "nbf": now - 5,
        })
    }
}

impl Drop for Issuer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

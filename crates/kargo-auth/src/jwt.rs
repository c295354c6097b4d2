//! Service-account JWTs in Kubernetes' exact format: compact JWS, base64url without padding,
//! header `{"alg":"RS256","kid":"<kid>"}`, claims with keys sorted at every level.
//!
//! Two claim sets: the legacy one of Secret-based tokens (no expiry, no audience) and the bound
//! one of TokenRequest (audiences, expiry, the account's uid).
//!
//! # Verification
//! [`verify`] is the one verification path. The signature, the algorithm and the key type are
//! checked by `jsonwebtoken` (on aws-lc-rs); before that, the token's shape, its issuer and its
//! kid are checked here, in kube-apiserver's order and with its answers ([`TokenError`]); after
//! it, the claim set is read here. Expiry, not-before and audiences are not checked by
//! verification but by [`crate::tokens`] on every request, because verified tokens are cached
//! and a cached token must still expire.
//!
//! # Signing
//! [`sign`] stays hand-written (ten lines over aws-lc-rs): `jsonwebtoken`'s RSA `EncodingKey`
//! takes a PKCS#1 `RSAPrivateKey`, while the store keeps the PKCS#8 that aws-lc-rs generates
//! and exports, and Kubernetes' bytes (a header of exactly `alg` and `kid`, no `typ`; claims
//! sorted at every level) are pinned by the tests, not left to another crate's serializer.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::de::IgnoredAny;
use serde_json::{Value, json};

use super::keys::{KeyError, KeySet, SigningKey};

/// The issuer of legacy tokens.
pub(crate) const LEGACY_ISSUER: &str = "kubernetes/serviceaccount";

/// What a token claims, once its signature is verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claims {
    /// A Secret-based token.
    Legacy {
        /// The account's namespace.
        namespace: String,
        /// The Secret holding the token.
        secret: String,
        /// The account's name.
        account: String,
        /// The account's uid.
        uid: String,
    },
    /// A TokenRequest token.
    Bound {
        /// The issuer.
        issuer: String,
        /// The account's namespace.
        namespace: String,
        /// The account's name.
        account: String,
        /// The account's uid.
        uid: String,
        /// Audiences.
        audiences: Vec<String>,
        /// Expiry (seconds since the epoch).
        expires: i64,
        /// Not before.
        not_before: i64,
        /// The token id.
        jti: String,
        /// The Secret the token is bound to: `(name, uid)`.
        secret: Option<(String, String)>,
        /// The fingerprint of the trust entry a token exchange issued it under
        /// (`kargo.akuity.io/federated-identity`), checked against the account on every request.
        federated: Option<String>,
    },
}

/// Why a token is not accepted (the texts of TokenReview's `status.error`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a JWT of ours at all.
    #[error("token is not a service account token")]
    Malformed,
    /// No key with the token's kid.
    #[error("invalid signature, no keys found")]
    NoKey,
    /// The signature does not verify.
    #[error("crypto/rsa: verification error")]
    BadSignature,
    /// A claim the token type needs is missing or wrong.
    #[error("{0}")]
    Claim(String),
}

fn sorted(value: Value) -> Value {
    // BTreeMap serializes with sorted keys whatever serde_json's map order is.
    match value {
        Value::Object(map) => {
            let sorted: BTreeMap<String, Value> =
                map.into_iter().map(|(k, v)| (k, sorted(v))).collect();
            serde_json::to_value(sorted).unwrap_or(Value::Null)
        }
        other => other,
    }
}

fn encode_sorted(value: Value) -> String {
    let text = match sorted(value) {
        Value::Object(map) => {
            let tree: BTreeMap<String, Value> = map.into_iter().collect();
            serde_json::to_string(&tree).unwrap_or_default()
        }
        other => other.to_string(),
    };
    URL_SAFE_NO_PAD.encode(text)
}

/// Signs claims into a compact JWS.
pub fn sign(key: &SigningKey, claims: Value) -> Result<String, KeyError> {
    let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"RS256","kid":"{}"}}"#, key.kid));
    let payload = encode_sorted(claims);
    let message = format!("{header}.{payload}");
    let signature = key.sign(message.as_bytes())?;
    Ok(format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

/// The legacy claims naming a Secret-based token's namespace, Secret, account and account uid.
const LEGACY_NAMESPACE_CLAIM: &str = "kubernetes.io/serviceaccount/namespace";
const LEGACY_SECRET_CLAIM: &str = "kubernetes.io/serviceaccount/secret.name";
const LEGACY_ACCOUNT_CLAIM: &str = "kubernetes.io/serviceaccount/service-account.name";
const LEGACY_UID_CLAIM: &str = "kubernetes.io/serviceaccount/service-account.uid";

/// The legacy claims of a Secret-based token.
pub fn legacy_claims(namespace: &str, secret: &str, account: &str, uid: &str) -> Value {
    let mut claims = serde_json::Map::new();
    claims.insert("iss".into(), LEGACY_ISSUER.into());
    claims.insert(LEGACY_NAMESPACE_CLAIM.into(), namespace.into());
    claims.insert(LEGACY_SECRET_CLAIM.into(), secret.into());
    claims.insert(LEGACY_ACCOUNT_CLAIM.into(), account.into());
    claims.insert(LEGACY_UID_CLAIM.into(), uid.into());
    claims.insert(
        "sub".into(),
        format!("system:serviceaccount:{namespace}:{account}").into(),
    );
    Value::Object(claims)
}

/// What a bound token is issued for.
pub struct BoundRequest<'a> {
    /// Issuer.
    pub issuer: &'a str,
    /// Namespace.
    pub namespace: &'a str,
    /// Account name.
    pub account: &'a str,
    /// Account uid.
    pub uid: &'a str,
    /// Audiences.
    pub audiences: &'a [String],
    /// Issue time (seconds since the epoch).
    pub now: i64,
    /// Lifetime in seconds.
    pub lifetime: i64,
    /// The token id.
    pub jti: &'a str,
    /// A Secret the token is bound to: `(name, uid)`.
    pub secret: Option<(&'a str, &'a str)>,
}

/// The claims of a bound token.
pub fn bound_claims(r: &BoundRequest<'_>) -> Value {
    let mut k8s = json!({
        "namespace": r.namespace,
        "serviceaccount": {"name": r.account, "uid": r.uid},
    });
    if let Some((name, uid)) = r.secret {
        k8s["secret"] = json!({"name": name, "uid": uid});
    }
    json!({
        "aud": r.audiences,
        "exp": r.now + r.lifetime,
        "iat": r.now,
        "iss": r.issuer,
        "jti": r.jti,
        "kubernetes.io": k8s,
        "nbf": r.now,
        "sub": format!("system:serviceaccount:{}:{}", r.namespace, r.account),
    })
}

/// The parts of a compact JWS, without checking anything.
pub struct Parsed<'a> {
    /// `alg` of the header.
    pub alg: String,
    /// `kid` of the header.
    pub kid: String,
    /// `header.payload`, the signed bytes.
    pub signed: &'a str,
    /// The decoded signature.
    pub signature: Vec<u8>,
    /// The decoded claims.
    pub claims: Value,
}

/// Splits and decodes a compact JWS.
pub fn parse(token: &str) -> Result<Parsed<'_>, TokenError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let decode = |part: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| TokenError::Malformed)
    };
    let header: Value = serde_json::from_slice(&decode(h)?).map_err(|_| TokenError::Malformed)?;
    let claims: Value = serde_json::from_slice(&decode(p)?).map_err(|_| TokenError::Malformed)?;
    let signature = decode(s)?;
    let field = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    Ok(Parsed {
        alg: field(&header, "alg"),
        kid: field(&header, "kid"),
        signed: &token[..h.len() + 1 + p.len()],
        signature,
        claims,
    })
}

/// What `jsonwebtoken` checks: the RS256 signature only. No claim is required or validated
/// there (see the module doc: the claims are read by [`claims`], time and audiences by the
/// authenticator).
fn validation() -> &'static Validation {
    static VALIDATION: OnceLock<Validation> = OnceLock::new();
    VALIDATION.get_or_init(|| {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation
    })
}

/// Verifies a token's signature against the key set and extracts its claims. `issuers` are the
/// bound-token issuers accepted.
///
/// The order of the checks is kube-apiserver's, and so is each answer: a token that is not a
/// JWS of base64url JSON, or whose issuer is not ours, or whose algorithm is not RS256, is
/// [`TokenError::Malformed`]; then the kid must name one of our keys ([`TokenError::NoKey`]);
/// then the signature must verify ([`TokenError::BadSignature`]); then the claim set must be
/// complete ([`TokenError::Claim`]).
pub fn verify(token: &str, keys: &KeySet, issuers: &[String]) -> Result<Claims, TokenError> {
    let parsed = parse(token)?;
    let iss = parsed
        .claims
        .get("iss")
        .and_then(Value::as_str)
        .unwrap_or("");
    if iss != LEGACY_ISSUER && !issuers.iter().any(|i| i == iss) {
        return Err(TokenError::Malformed);
    }
    if parsed.alg != "RS256" {
        return Err(TokenError::Malformed);
    }
    let key = keys.get(&parsed.kid).ok_or(TokenError::NoKey)?;
    match jsonwebtoken::decode::<IgnoredAny>(token, key.decoding(), validation()) {
        Ok(_) => {}
        Err(e) => match e.kind() {
            ErrorKind::InvalidSignature => return Err(TokenError::BadSignature),
            // jsonwebtoken reads the header, verifies the signature, then reads `exp` and `nbf`
            // for its own validation, refusing types our claim reader accepts (a negative or
            // string `exp`: expired, or "exp claim is missing"). When the header reads, such
            // an error can only come after the signature verified, so the claims decide.
            ErrorKind::Json(_) if jsonwebtoken::decode_header(token).is_ok() => {}
            // A header jsonwebtoken does not accept (a `kid` or `typ` that is not a string, a
            // `crit`): not one of ours.
            _ => return Err(TokenError::Malformed),
        },
    }
    claims(&parsed.claims)
}

fn claims(c: &Value) -> Result<Claims, TokenError> {
    let s = |k: &str| c.get(k).and_then(Value::as_str).map(str::to_owned);
    let iss = s("iss").unwrap_or_default();
    if iss == LEGACY_ISSUER {
        let sub = s("sub").ok_or_else(|| TokenError::Claim("sub claim is missing".into()))?;
        let namespace = s(LEGACY_NAMESPACE_CLAIM)
            .ok_or_else(|| TokenError::Claim("namespace claim is missing".into()))?;
        let secret = s(LEGACY_SECRET_CLAIM)
            .ok_or_else(|| TokenError::Claim("secretName claim is missing".into()))?;
        let account = s(LEGACY_ACCOUNT_CLAIM)
            .ok_or_else(|| TokenError::Claim("serviceAccountName claim is missing".into()))?;
        let uid = s(LEGACY_UID_CLAIM)
            .ok_or_else(|| TokenError::Claim("serviceAccountUID claim is missing".into()))?;
        if sub != format!("system:serviceaccount:{namespace}:{account}") {
            return Err(TokenError::Claim("sub claim is invalid".into()));
        }
        return Ok(Claims::Legacy {
            namespace,
            secret,
            account,
            uid,
        });
    }
    let k8s = c
        .get("kubernetes.io")
        .ok_or_else(|| TokenError::Claim("kubernetes.io claim is missing".into()))?;
    let ks = |path: &str| k8s.pointer(path).and_then(Value::as_str).map(str::to_owned);
    let namespace =
        ks("/namespace").ok_or_else(|| TokenError::Claim("namespace claim is missing".into()))?;
    let account = ks("/serviceaccount/name")
        .ok_or_else(|| TokenError::Claim("serviceaccount claim is missing".into()))?;
    let uid = ks("/serviceaccount/uid").unwrap_or_default();
    let audiences = match c.get("aud") {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    };
    let int = |k: &str| c.get(k).and_then(Value::as_i64);
    let secret = match (ks("/secret/name"), ks("/secret/uid")) {
        (Some(n), Some(u)) => Some((n, u)),
        _ => None,
    };
    Ok(Claims::Bound {
        issuer: iss,
        namespace,
        account,
        uid,
        audiences,
        expires: int("exp").ok_or_else(|| TokenError::Claim("exp claim is missing".into()))?,
        not_before: int("nbf").or_else(|| int("iat")).unwrap_or(0),
        jti: s("jti").unwrap_or_default(),
        secret,
        federated: c
            .get(crate::federation::FEDERATED_CLAIM)
            .and_then(|f| f.get("fingerprint"))
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

#[cfg(test)]
mod tests;

//! Whether the saved token can be sent as it is, must be refreshed, or cannot be: upstream's
//! rules (`pkg/cli/client/token_refresher.go`), applied before every command that talks to the
//! server. The messages are upstream's, word for word.

use base64::Engine as _;
use serde_json::Value;

/// What to do with the saved bearer token before a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Send it: not a JWT (an opaque token), a JWT without `exp` (a ServiceAccount token), or
    /// not expired yet.
    UseAsIs,
    /// Expired, and there is a refresh token to redeem (over verified TLS).
    Refresh,
    /// Expired, and nothing can renew it: log in again.
    Expired,
}

/// Why the saved token could not be used or renewed; printed after `error refreshing token: `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefreshError {
    /// Expired, with no refresh token (or TLS verification off, so none is trusted).
    #[error(
        "error refreshing token: your token is expired; please use `kargo login` to re-authenticate"
    )]
    Expired,
    /// Redeeming the refresh token failed (the cause is not shown, as upstream).
    #[error(
        "error refreshing token: error refreshing token; please use `kargo login` to re-authenticate"
    )]
    Failed,
}

/// Upstream's decision for a token at `now` (seconds since the epoch).
pub fn decide(token: &str, refresh_token: &str, insecure: bool, now: i64) -> Decision {
    let Some(exp) = claims(token).and_then(|c| c.get("exp").and_then(Value::as_f64)) else {
        return Decision::UseAsIs;
    };
    // `exp` is a NumericDate: seconds, possibly fractional; the token is valid before it.
    #[allow(clippy::cast_precision_loss)]
    if (now as f64) < exp {
        return Decision::UseAsIs;
    }
    if insecure || refresh_token.trim().is_empty() {
        Decision::Expired
    } else {
        Decision::Refresh
    }
}

/// The claims of a JWT, decoded but NOT verified (only to read `exp`, `iss`, `aud`, `email` of
/// a token the CLI itself received); `None` when the token is not a JWT.
pub fn claims(token: &str) -> Option<serde_json::Map<String, Value>> {
    let mut parts = token.trim().split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An unsigned JWT with these claims (the CLI never checks signatures).
    pub(crate) fn jwt(claims: &Value) -> String {
        let b64 = |v: &Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
        };
        format!(
            "{}.{}.c2ln",
            b64(&serde_json::json!({"alg": "RS256", "typ": "JWT"})),
            b64(claims)
        )
    }

    #[test]
    fn upstreams_rules_decide_what_happens_to_the_saved_token() {
        let now = 1_000_000;
        let expired = jwt(&serde_json::json!({"iss": "https://idp", "exp": now - 1}));
        let at_exp = jwt(&serde_json::json!({"exp": now}));
        let fresh = jwt(&serde_json::json!({"exp": now + 60}));
        let no_exp = jwt(&serde_json::json!({"sub": "system:serviceaccount:p:ci"}));
        let cases = [
            ("opaque-token", "r", false, Decision::UseAsIs),
            ("a.b.c", "", false, Decision::UseAsIs),
            (no_exp.as_str(), "", false, Decision::UseAsIs),
            (fresh.as_str(), "", false, Decision::UseAsIs),
            (expired.as_str(), "r", false, Decision::Refresh),
            (at_exp.as_str(), "r", false, Decision::Refresh),
            (expired.as_str(), "", false, Decision::Expired),
            (expired.as_str(), "  ", false, Decision::Expired),
            // With TLS verification off, a refresh token is never sent anywhere.
            (expired.as_str(), "r", true, Decision::Expired),
        ];
        for (token, refresh, insecure, expected) in cases {
            assert_eq!(
                decide(token, refresh, insecure, now),
                expected,
                "{token} {refresh:?} {insecure}"
            );
        }
    }

    #[test]
    fn the_messages_are_upstreams() {
        assert_eq!(
            RefreshError::Expired.to_string(),
            "error refreshing token: your token is expired; please use `kargo login` to re-authenticate"
        );
        assert_eq!(
            RefreshError::Failed.to_string(),
            "error refreshing token: error refreshing token; please use `kargo login` to re-authenticate"
        );
    }

    #[test]
    fn claims_are_read_from_jwts_only() {
        let token = jwt(&serde_json::json!({"email": "a@b.c", "exp": 5}));
        assert_eq!(claims(&token).unwrap()["email"], "a@b.c");
        assert_eq!(claims("opaque"), None);
        assert_eq!(claims("a.b.c.d"), None);
        assert_eq!(claims("a.!!.c"), None);
        let array = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("[1]");
        assert_eq!(claims(&format!("a.{array}.c")), None);
    }
}

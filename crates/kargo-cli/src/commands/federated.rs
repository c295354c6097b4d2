//! Workload identity federation on the CLI's side: a CI job's own OIDC token (a file, or
//! `KARGO_FEDERATED_TOKEN`) exchanged at `POST /v1beta1/token-exchange` for a short-lived
//! ServiceAccount token, at `kargo login --federated-token-file` and again before a command
//! when the saved token is within [`RENEW_BEFORE_SECS`] of its expiry.

use std::path::Path;

use serde_json::Value;

use super::Error;
use crate::cli::UsageError;
use crate::client::{Client, ClientError};
use crate::config::{ConfigFile, Environment};
use crate::sso::refresh;

/// The login method saved in the configuration.
pub(super) const FEDERATED: &str = "federated";
/// A saved token is exchanged again when it expires within this many seconds.
pub const RENEW_BEFORE_SECS: i64 = 60;

/// The CI job's token: the file's content (trimmed), else `KARGO_FEDERATED_TOKEN`.
pub(super) fn ci_token(env: &Environment, file: Option<&Path>) -> Result<String, Error> {
    let token = match file {
        Some(path) => std::fs::read_to_string(path).map_err(|e| {
            UsageError(format!(
                "reading the federated token file {}: {e}",
                path.display()
            ))
        })?,
        None => env.federated_token.clone().unwrap_or_default(),
    };
    let token = token.trim();
    if token.is_empty() {
        return Err(UsageError(
            "the federated token is empty (--federated-token-file or KARGO_FEDERATED_TOKEN)"
                .to_owned(),
        )
        .into());
    }
    Ok(token.to_owned())
}

/// Exchanges `ci_token` for a ServiceAccount token (`scope` chooses the account when several
/// trust the job).
pub(super) fn exchange(client: &Client, ci_token: &str, scope: &str) -> Result<String, Error> {
    let mut fields = vec![
        (
            "grant_type",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ),
        ("subject_token", ci_token),
        (
            "subject_token_type",
            "urn:ietf:params:oauth:token-type:id_token",
        ),
    ];
    if !scope.is_empty() {
        fields.push(("scope", scope));
    }
    let answer = client.send_form("/v1beta1/token-exchange", &fields)?;
    answer
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| {
            ClientError::Unexpected {
                address: "the server".to_owned(),
                status: 200,
                reason: "the token exchange answer has no access_token".to_owned(),
            }
            .into()
        })
}

/// Whether a saved token must be exchanged again: it expires within [`RENEW_BEFORE_SECS`] of
/// `now`, or its expiry cannot be read.
pub(super) fn needs_renewal(token: &str, now: i64) -> bool {
    match refresh::claims(token).and_then(|c| c.get("exp").and_then(Value::as_i64)) {
        Some(exp) => exp - RENEW_BEFORE_SECS <= now,
        None => true,
    }
}

/// The saved token, exchanged again first when it nears expiry (saved then).
pub(super) fn current_token(
    env: &Environment,
    file: &ConfigFile,
    client: &Client,
    now: i64,
) -> Result<String, Error> {
    let config = &file.config;
    if !needs_renewal(&config.bearer_token, now) {
        return Ok(config.bearer_token.trim().to_owned());
    }
    let path =
        (!config.federated_token_file.is_empty()).then(|| Path::new(&config.federated_token_file));
    let token = exchange(client, &ci_token(env, path)?, &config.federated_scope)?;
    let mut renewed = config.clone();
    renewed.bearer_token = token.clone();
    ConfigFile {
        path: file.path.clone(),
        config: renewed,
    }
    .save()?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn token_expiring_at(exp: i64) -> String {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::json!({"exp": exp}).to_string());
        format!("e30.{payload}.sig")
    }

    #[test]
    fn a_token_is_exchanged_again_a_minute_before_it_expires() {
        assert!(!needs_renewal(&token_expiring_at(1000), 900));
        assert!(needs_renewal(&token_expiring_at(1000), 940));
        assert!(needs_renewal(&token_expiring_at(1000), 2000));
        assert!(needs_renewal("", 0));
    }
}

//! `kargo login` and `kargo logout`, and the renewal of an expired single sign-on token
//! before a command.

use serde_json::Value;

use super::federated::{self, FEDERATED};
use super::{Context, Error};
use crate::api;
use crate::cli::{LoginArgs, UsageError};
use crate::client::{Client, ClientError, Connection, Tls};
use crate::config::{CliConfig, ConfigFile, Environment, normalize_address, read_ca};
use crate::sso::{self, OidcConfig, ProviderTls, SignIn, Tokens, refresh};

const ADMIN: &str = "admin";
const SSO: &str = "sso";
const TOKEN: &str = "token";

/// Logs in as the admin (the password from `--password` or the terminal), with `--sso` as
/// oneself through the server's OpenID provider, or with `--token` as a ServiceAccount (the
/// token is checked with the server first); saves the address, tokens and TLS settings.
/// Prints nothing on stdout (`--sso` prints the URL to open on stderr).
pub fn login(ctx: &mut Context<'_>, args: &LoginArgs) -> Result<(), Error> {
    let file = ctx.config()?;
    let method = match (args.admin, args.sso, file.config.auth_method.as_str()) {
        _ if args.token.is_some() => TOKEN,
        _ if args.federated_token_file.is_some() => FEDERATED,
        (true, _, _) => ADMIN,
        (_, true, _) => SSO,
        _ if ctx.env.federated_token.is_some() && args.password.is_none() => FEDERATED,
        (false, false, FEDERATED) => FEDERATED,
        (false, false, ADMIN) => ADMIN,
        (false, false, SSO) if args.password.is_none() => SSO,
        _ if args.password.is_some() => {
            return Err(UsageError(
                "--admin is required (this server supports logging in as the admin user)"
                    .to_owned(),
            )
            .into());
        }
        _ => {
            return Err(UsageError(
                "--admin, --sso, --token or --federated-token-file is required (log in as the admin user, as yourself through the server's OpenID provider, with a ServiceAccount token, or with a CI job's own OIDC token)"
                    .to_owned(),
            )
            .into());
        }
    };
    let address = match &args.address {
        Some(address) => normalize_address(address),
        None => file.config.api_address.clone(),
    };
    if address.is_empty() {
        return Err(UsageError(format!(
            "a server address is required: kargo login URL --{method}"
        ))
        .into());
    }
    // Saved absolute: later commands may run from another directory.
    let federated_file = match &args.federated_token_file {
        Some(path) => Some(std::path::absolute(path)?),
        None if method == FEDERATED && ctx.env.federated_token.is_none() => {
            Some(std::path::PathBuf::from(&file.config.federated_token_file))
                .filter(|p| !p.as_os_str().is_empty())
        }
        None => None,
    };
    let given_token = match &args.token {
        Some(token) => Some(read_token(token)?),
        None => None,
    };
    let same_server = address == file.config.api_address;
    let ca = match &args.certificate_authority {
        Some(path) => Some(read_ca(path)?),
        None if same_server => file.config.certificate_authority(&file.path)?,
        None => None,
    };
    // Logging in again to the same server keeps its TLS settings unless flags change them.
    let insecure = args.client.insecure_skip_tls_verify
        || (same_server
            && args.certificate_authority.is_none()
            && file.config.insecure_skip_tls_verify);
    let tls = match (&ca, insecure) {
        (_, true) => Tls::Insecure,
        (Some(pem), false) => Tls::CertificateAuthority(pem.clone()),
        (None, false) => Tls::System,
    };
    let client = Client::new(Connection {
        address: address.clone(),
        token: None,
        tls,
    })?;
    let (token, refresh_token, callback_port) = if let Some(token) = given_token {
        // Checked before it is saved: a mistyped or revoked token fails here, not later. A
        // SelfSubjectReview is allowed to everyone authenticated; Kubernetes refuses a bad token
        // with `Unauthorized`, said here as the Kargo API says it.
        match client.send_with(&api::self_subject_review(), Some(&token)) {
            Ok(_) => {}
            Err(ClientError::Api { status: 401, .. }) => {
                return Err(ClientError::Api {
                    status: 401,
                    message: "invalid token".to_owned(),
                    request_id: None,
                }
                .into());
            }
            Err(e) => return Err(e.into()),
        }
        (token, None, 0)
    } else if method == FEDERATED {
        let ci_token = federated::ci_token(ctx.env, federated_file.as_deref())?;
        let scope = args.federated_scope.clone().unwrap_or_default();
        (federated::exchange(&client, &ci_token, &scope)?, None, 0)
    } else if method == SSO {
        // Without an address, the last login's callback port is reused (upstream).
        let port = args
            .port
            .or(args.address.is_none().then_some(file.config.callback_port))
            .unwrap_or(0);
        let server_ca = ca.as_deref().filter(|_| !insecure);
        let tls = provider_tls(ctx.env, server_ca, insecure)?;
        let tokens = sign_in(ctx, &client, &tls, port)?;
        // With TLS verification off a refresh token is not kept (upstream): it would be sent
        // to whoever answers next time.
        let refresh_token = tokens.refresh_token.filter(|_| !insecure);
        (tokens.id_token, refresh_token, port)
    } else {
        (admin_token(&client, &address, args)?, None, 0)
    };

    let mut config = if same_server {
        file.config.clone()
    } else {
        CliConfig::default()
    };
    config.api_address = address;
    config.auth_method = method.to_owned();
    config.bearer_token = token;
    config.refresh_token = refresh_token.unwrap_or_default();
    config.callback_port = callback_port;
    config.insecure_skip_tls_verify = insecure;
    config.federated_token_file = federated_file
        .filter(|_| method == FEDERATED)
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    config.federated_scope = args
        .federated_scope
        .clone()
        .filter(|_| method == FEDERATED)
        .unwrap_or_default();
    // A CA given now is stored inline; logging in again without one keeps the file's
    // (`certificateAuthority` or `certificateAuthorityData`, as it was written).
    match (&args.certificate_authority, &ca, insecure) {
        (_, _, true) | (_, None, false) => config.clear_certificate_authority(),
        (Some(_), Some(pem), false) => config.set_certificate_authority(pem),
        (None, Some(_), false) => {}
    }
    ConfigFile { config, ..file }.save()?;
    Ok(())
}

/// The token of `--token`: the value, or with `-` the first line of standard input (so it
/// need not appear in the shell's history or the process list).
fn read_token(given: &str) -> Result<String, Error> {
    let token = if given == "-" {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        line
    } else {
        given.to_owned()
    };
    let token = token.trim();
    if token.is_empty() {
        return Err(UsageError("the token must not be empty".to_owned()).into());
    }
    Ok(token.to_owned())
}

/// The admin's token: the password (checked non-empty) exchanged at `POST /v1beta1/login`.
fn admin_token(client: &Client, address: &str, args: &LoginArgs) -> Result<String, Error> {
    let password = match &args.password {
        Some(password) => password.clone(),
        None => prompt_password()?,
    };
    if password.is_empty() {
        return Err(UsageError("the password must not be empty".to_owned()).into());
    }
    let public = client.send_with(&api::public_server_config(), None)?;
    if public.get("adminAccountEnabled").and_then(Value::as_bool) == Some(false) {
        return Err(ClientError::Api {
            status: 403,
            message: "server does not support admin user login".to_owned(),
            request_id: None,
        }
        .into());
    }
    let answer = client.send_with(&api::login(), Some(&password))?;
    let token = answer
        .get("idToken")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ClientError::Unexpected {
            address: address.to_owned(),
            status: 200,
            reason: "the login answer has no idToken".to_owned(),
        })?;
    Ok(token.to_owned())
}

/// The browser sign-in: the server's `oidcConfig`, then the authorization code flow. Prints
/// `Open this URL: <url>` on stderr (one line), opens the browser unless
/// `KARGO_SSO_NO_BROWSER` is set, and waits up to 5 minutes for the callback.
fn sign_in(
    ctx: &mut Context<'_>,
    client: &Client,
    tls: &ProviderTls,
    port: u16,
) -> Result<Tokens, Error> {
    let public = client.send_with(&api::public_server_config(), None)?;
    let oidc = OidcConfig::from_public_config(&public)?;
    let sign_in = SignIn::start(oidc, tls, port)?;
    writeln!(ctx.err, "{}{}", sso::URL_PREFIX, sign_in.url)?;
    ctx.err.flush()?;
    if !ctx.env.sso_no_browser {
        sso::open_browser(&sign_in.url);
    }
    Ok(sign_in.finish(sso::TIMEOUT)?)
}

/// What the CLI trusts for the OpenID provider: the system's roots, the Kargo server's CA and
/// `KARGO_OIDC_CA_FILE` (or nothing at all with `--insecure-skip-tls-verify`).
fn provider_tls(
    env: &Environment,
    server_ca: Option<&[u8]>,
    insecure: bool,
) -> Result<ProviderTls, Error> {
    let mut extra_roots: Vec<Vec<u8>> = server_ca.into_iter().map(<[u8]>::to_vec).collect();
    if let Some(path) = &env.oidc_ca_file {
        extra_roots.push(read_ca(std::path::Path::new(path))?);
    }
    Ok(ProviderTls {
        extra_roots,
        insecure,
    })
}

/// The bearer token a command sends: the saved one, or, when it is an expired ID token with a
/// refresh token, a new one redeemed from the provider and saved (upstream's rules and messages,
/// [`refresh`]).
pub(super) fn current_token(
    ctx: &Context<'_>,
    file: &ConfigFile,
    insecure_flag: bool,
) -> Result<String, Error> {
    let config = &file.config;
    let insecure = insecure_flag || config.insecure_skip_tls_verify;
    let now = ctx.now_ms.div_euclid(1000);
    if config.auth_method == FEDERATED {
        let client = Client::new(Connection {
            address: normalize_address(&config.api_address),
            token: None,
            tls: file.tls(insecure_flag)?,
        })?;
        return federated::current_token(ctx.env, file, &client, now);
    }
    match refresh::decide(&config.bearer_token, &config.refresh_token, insecure, now) {
        refresh::Decision::UseAsIs => Ok(config.bearer_token.trim().to_owned()),
        refresh::Decision::Expired => Err(refresh::RefreshError::Expired.into()),
        refresh::Decision::Refresh => {
            let tokens = redeem_saved(ctx.env, file).map_err(|e| {
                tracing::debug!("refreshing the ID token failed: {e}");
                refresh::RefreshError::Failed
            })?;
            let mut renewed = config.clone();
            renewed.bearer_token = tokens.id_token.clone();
            if let Some(refresh_token) = tokens.refresh_token {
                renewed.refresh_token = refresh_token;
            }
            ConfigFile {
                path: file.path.clone(),
                config: renewed,
            }
            .save()?;
            Ok(tokens.id_token)
        }
    }
}

/// Redeems the saved refresh token at the provider the server names.
fn redeem_saved(env: &Environment, file: &ConfigFile) -> Result<Tokens, Error> {
    let client = Client::new(Connection {
        address: normalize_address(&file.config.api_address),
        token: None,
        tls: file.tls(false)?,
    })?;
    let public = client.send_with(&api::public_server_config(), None)?;
    let oidc = OidcConfig::from_public_config(&public)?;
    let server_ca = file.config.certificate_authority(&file.path)?;
    let tls = provider_tls(env, server_ca.as_deref(), false)?;
    Ok(sso::redeem(&oidc, &tls, &file.config.refresh_token)?)
}

/// Reads the password from the terminal without echo.
fn prompt_password() -> Result<String, Error> {
    rpassword::prompt_password("Admin user password: ").map_err(|_| {
        UsageError(
            "--password is required when there is no terminal to prompt for it on".to_owned(),
        )
        .into()
    })
}

/// Ends the admin session on the server (`POST /v1beta1/logout`, so the saved token stops
/// working) and removes the configuration file. Prints nothing; when the server cannot be told
/// (it is down, or refuses), one warning on stderr, and the local logout happens all the same.
pub fn logout(ctx: &mut Context<'_>) -> Result<(), Error> {
    let file = ctx.config()?;
    if let Err(e) = end_session(&file) {
        writeln!(
            ctx.err,
            "Warning: the server did not end the session ({e}); the token stays valid until it expires"
        )?;
    }
    file.remove()?;
    Ok(())
}

/// Tells the server to end the saved admin session, if the configuration holds one.
fn end_session(file: &ConfigFile) -> Result<(), Error> {
    let config = &file.config;
    let token = config.bearer_token.trim();
    if config.auth_method != ADMIN || token.is_empty() || config.api_address.is_empty() {
        return Ok(());
    }
    let client = Client::new(Connection {
        address: normalize_address(&config.api_address),
        token: Some(token.to_owned()),
        tls: file.tls(false)?,
    })?;
    match client.send(&api::logout()) {
        // An expired or already ended session needs no ending.
        Ok(_) | Err(ClientError::Api { status: 401, .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sso::refresh::tests::jwt;
    use serde_json::json;

    const NOW_S: i64 = 2_000_000_000;

    /// `current_token` for a saved configuration (in a temporary directory), and the file after.
    fn current(config: CliConfig, insecure_flag: bool) -> (Result<String, String>, CliConfig) {
        let dir = tempfile::tempdir().unwrap();
        let file = ConfigFile {
            path: dir.path().join("kargo").join("config"),
            config,
        };
        file.save().unwrap();
        let env = Environment::default();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let ctx = Context {
            env: &env,
            out: &mut out,
            err: &mut err,
            now_ms: NOW_S * 1000,
        };
        let token = current_token(&ctx, &file, insecure_flag).map_err(|e| e.to_string());
        (token, ConfigFile::load(file.path.clone()).unwrap().config)
    }

    fn saved(token: &str, refresh_token: &str) -> CliConfig {
        CliConfig {
            // Nothing listens here: a refresh attempt fails at once.
            api_address: "https://127.0.0.1:1".into(),
            auth_method: SSO.into(),
            bearer_token: token.into(),
            refresh_token: refresh_token.into(),
            ..CliConfig::default()
        }
    }

    #[test]
    fn a_valid_or_unexpiring_token_is_sent_as_saved() {
        let fresh = jwt(&json!({"exp": NOW_S + 60}));
        let service_account = jwt(&json!({"sub": "system:serviceaccount:p:ci"}));
        for token in [fresh.as_str(), service_account.as_str(), "opaque"] {
            let (result, after) = current(saved(token, "r"), false);
            assert_eq!(result.as_deref(), Ok(token));
            assert_eq!(after, saved(token, "r"), "the file is not rewritten");
        }
    }

    #[test]
    fn an_expired_token_that_cannot_be_renewed_says_to_log_in_again() {
        let expired = jwt(&json!({"exp": NOW_S - 1}));
        let (result, _) = current(saved(&expired, ""), false);
        assert_eq!(
            result.unwrap_err(),
            "error refreshing token: your token is expired; please use `kargo login` to re-authenticate"
        );
        let (result, _) = current(saved(&expired, "r"), true);
        assert_eq!(
            result.unwrap_err(),
            "error refreshing token: your token is expired; please use `kargo login` to re-authenticate",
            "--insecure-skip-tls-verify never sends the refresh token"
        );
        let (result, after) = current(saved(&expired, "r"), false);
        assert_eq!(
            result.unwrap_err(),
            "error refreshing token: error refreshing token; please use `kargo login` to re-authenticate",
            "the server cannot be reached to name the provider"
        );
        assert_eq!(
            after,
            saved(&expired, "r"),
            "a failed refresh keeps the file"
        );
    }
}

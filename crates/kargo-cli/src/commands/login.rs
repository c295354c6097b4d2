//! `kargo login` and `kargo logout`.

use serde_json::Value;

use super::{Context, Error};
use crate::api;
use crate::cli::{LoginArgs, UsageError};
use crate::client::{Client, ClientError, Connection, Tls};
use crate::config::{CliConfig, ConfigFile, normalize_address, read_ca};

const ADMIN: &str = "admin";

/// Logs in as the admin (the password from `--password` or the terminal), and saves the address,
/// token and TLS settings. Prints nothing.
pub fn login(ctx: &mut Context<'_>, args: &LoginArgs) -> Result<(), Error> {
    let file = ctx.config()?;
    if !args.admin && file.config.auth_method != ADMIN {
        return Err(UsageError(
            "--admin is required (this server supports logging in as the admin user)".to_owned(),
        )
        .into());
    }
    let address = match &args.address {
        Some(address) => normalize_address(address),
        None => file.config.api_address.clone(),
    };
    if address.is_empty() {
        return Err(
            UsageError("a server address is required: kargo login URL --admin".to_owned()).into(),
        );
    }
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
        }
        .into());
    }
    let answer = client.send_with(&api::login(), Some(&password))?;
    let token = answer
        .get("idToken")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ClientError::Unexpected {
            address: address.clone(),
            status: 200,
            reason: "the login answer has no idToken".to_owned(),
        })?;

    let mut config = if same_server {
        file.config.clone()
    } else {
        CliConfig::default()
    };
    config.api_address = address;
    config.auth_method = ADMIN.to_owned();
    config.bearer_token = token.to_owned();
    config.insecure_skip_tls_verify = insecure;
    config.certificate_authority_data.clear();
    if let (Some(pem), false) = (&ca, insecure) {
        config.set_certificate_authority(pem);
    }
    ConfigFile { config, ..file }.save()?;
    Ok(())
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

//! `kargo create project|serviceaccount|serviceaccounttoken|role|token`; a token (of a
//! ServiceAccount, or a role's API token) prints as the banner, or ready to use
//! (`-o kubeconfig|env`, [`crate::credentials`]).

use std::collections::BTreeMap;

use base64::Engine as _;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kargo_api::kargo::{DESCRIPTION_ANNOTATION, Role};
use serde_json::Value;

use super::{Context, Error, project, scope};
use crate::api::{self, Request, Scope};
use crate::cli::{self, CreateCommand, NewTokenFlags, UsageError};
use crate::client::ClientError;
use crate::config::ConfigFile;
use crate::credentials::TokenAccess;
use crate::output::{self, Kind, TokenOutput};

/// What `kargo create serviceaccounttoken` prints: the token, once.
pub fn token_banner(token: &str) -> String {
    format!(
        "Token created successfully!\n\nIMPORTANT: Save this token securely. It will not be shown again.\n\nToken: {token}\n"
    )
}

/// Runs a `kargo create` command.
pub fn run(ctx: &mut Context<'_>, command: CreateCommand) -> Result<(), Error> {
    let config = ctx.logged_in_config()?;
    match command {
        CreateCommand::FederatedIdentity(args) => super::federated_identity::create(ctx, &args),
        CreateCommand::Project(args) => {
            let format = args.output.for_object()?;
            let name = single_name(&args.name)?;
            let client = ctx.client(&config, &args.client)?;
            let created = client.send(&api::create_project(&name))?;
            let text = output::render_changed(Kind::Project, &created, &name, "created", format)?;
            ctx.print(&text)
        }
        CreateCommand::ServiceAccount(args) => {
            let format = args.output.for_object()?;
            let name = single_name(&args.name)?;
            let project = project(&config, &args.project)?;
            let client = ctx.client(&config, &args.client)?;
            let created = client.send(&api::create_service_account(&project, &name))?;
            let text =
                output::render_changed(Kind::ServiceAccount, &created, &name, "created", format)?;
            ctx.print(&text)
        }
        CreateCommand::ServiceAccountToken(args) => {
            let service_account =
                owner(&args.service_account, "--service-account", "ServiceAccount")?;
            let scope = scope(&config, &args.scope)?;
            let token = &args.token;
            let request = |name: &str| {
                api::create_token(
                    &scope,
                    service_account,
                    name,
                    token.expires_in,
                    token.description.as_deref(),
                )
            };
            new_token(
                ctx,
                &config,
                Kind::ServiceAccountToken,
                &scope,
                service_account,
                token,
                request,
            )
        }
        CreateCommand::Token(args) => {
            let role = owner(&args.role, "--role", "role")?;
            let scope = scope(&config, &args.scope)?;
            let token = &args.token;
            let request = |name: &str| {
                api::create_api_token(
                    &scope,
                    role,
                    name,
                    token.expires_in,
                    token.description.as_deref(),
                )
            };
            new_token(ctx, &config, Kind::ApiToken, &scope, role, token, request)
        }
        CreateCommand::Role(args) => {
            let format = args.output.for_object()?;
            let name = single_name(&args.name)?;
            let claims = cli::parse_claims(&args.claims)?;
            let project = project(&config, &args.project)?;
            let client = ctx.client(&config, &args.client)?;
            let annotations = args
                .description
                .as_ref()
                .map(|d| BTreeMap::from([(DESCRIPTION_ANNOTATION.to_owned(), d.clone())]));
            let role = Role {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    namespace: Some(project.clone()),
                    annotations,
                    ..ObjectMeta::default()
                },
                claims,
                ..Role::default()
            };
            let created = client.send(&api::create_role(&project, &role))?;
            let text = output::render_changed(Kind::Role, &created, &name, "created", format)?;
            ctx.print(&text)
        }
    }
}

/// The trimmed value of the flag (`--service-account`, `--role`) that names what a token
/// belongs to (`what`).
fn owner<'a>(given: &'a str, flag: &str, what: &str) -> Result<&'a str, Error> {
    let name = given.trim();
    cli::check_name(name)
        .map_err(|_| UsageError(format!("{flag} must name a {what}, got {name:?}")))?;
    Ok(name)
}

/// Creates a token of `kind` bound to the ServiceAccount `account` with `request`, and prints it
/// as `-o` says: the banner, a kubeconfig, the `KARGO_*` lines, or the Secret.
fn new_token(
    ctx: &mut Context<'_>,
    config: &ConfigFile,
    kind: Kind,
    scope: &Scope,
    account: &str,
    flags: &NewTokenFlags,
    request: impl Fn(&str) -> Request,
) -> Result<(), Error> {
    let format = flags.output.checked()?;
    let name = single_name(&flags.name)?;
    let connection = ctx.connection(config, &flags.client)?;
    let client = ctx.client(config, &flags.client)?;
    let secret = client.send(&request(&name))?;
    let shown = ShownToken {
        kind,
        secret: &secret,
        name: &name,
        connection: &connection,
        scope,
        service_account: account,
    };
    ctx.print(&shown.text(format, "created", 201, token_banner)?)
}

pub(super) fn single_name(name: &str) -> Result<String, Error> {
    let name = name.trim();
    cli::check_name(name)?;
    Ok(name.to_owned())
}

/// A token Secret just answered with its value (created or rotated), and where it is used.
pub(super) struct ShownToken<'a> {
    /// A ServiceAccount's token or a role's API token.
    pub kind: Kind,
    /// The Secret, its `data.token` unredacted.
    pub secret: &'a Value,
    /// Its name.
    pub name: &'a str,
    /// The server, as the CLI reaches it.
    pub connection: &'a crate::client::Connection,
    /// Its project or the system level.
    pub scope: &'a api::Scope,
    /// Its ServiceAccount.
    pub service_account: &'a str,
}

impl ShownToken<'_> {
    /// What `-o` asks for: the Secret (`json|yaml|name|jsonpath`, with `verb` in the name
    /// line), a kubeconfig, `KARGO_*` lines, or by default `banner` of the token. `status` is
    /// the answer's code, named if the Secret has no token.
    pub fn text(
        &self,
        format: Option<&TokenOutput>,
        verb: &str,
        status: u16,
        banner: impl FnOnce(&str) -> String,
    ) -> Result<String, Error> {
        if let Some(TokenOutput::Object(format)) = format {
            return Ok(output::render_changed(
                self.kind,
                self.secret,
                self.name,
                verb,
                Some(format),
            )?);
        }
        let token = token_of(self.secret).ok_or_else(|| ClientError::Unexpected {
            address: "the server".to_owned(),
            status,
            reason: "the token Secret has no data.token".to_owned(),
        })?;
        let access = TokenAccess {
            address: &self.connection.address,
            tls: &self.connection.tls,
            scope: self.scope,
            service_account: self.service_account,
            token: &token,
        };
        Ok(match format {
            Some(TokenOutput::Kubeconfig) => access.kubeconfig(),
            Some(TokenOutput::Env) => access.env_lines(),
            _ => banner(&token),
        })
    }
}

/// The JWT in a token Secret's `data.token` (base64).
fn token_of(secret: &Value) -> Option<String> {
    let encoded = secret["data"]["token"].as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    String::from_utf8(bytes).ok().filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_banner_is_exactly_the_guides() {
        assert_eq!(
            token_banner("eyJhbGciOiJSUzI1NiIsImtpZCI6IjdwQ0..."),
            "Token created successfully!\n\nIMPORTANT: Save this token securely. It will not be shown again.\n\nToken: eyJhbGciOiJSUzI1NiIsImtpZCI6IjdwQ0...\n"
        );
    }

    #[test]
    fn the_token_is_decoded_from_the_secret() {
        assert_eq!(
            token_of(&json!({"data": {"token": "ZXlKaGJH"}})),
            Some("eyJhbG".to_owned())
        );
        assert_eq!(token_of(&json!({"data": {}})), None);
        assert_eq!(token_of(&json!({"data": {"token": ""}})), None);
        assert_eq!(token_of(&json!({"data": {"token": "!!"}})), None);
    }
}

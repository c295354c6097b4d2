//! `kargo create project|serviceaccount|serviceaccounttoken|role`; a token prints as the banner,
//! or ready to use (`-o kubeconfig|env`, [`crate::credentials`]).

use std::collections::BTreeMap;

use base64::Engine as _;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kargo_api::kargo::{DESCRIPTION_ANNOTATION, Role};
use serde_json::Value;

use super::{Context, Error, project, scope};
use crate::api;
use crate::cli::{self, CreateCommand, UsageError};
use crate::client::ClientError;
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
            let format = args.output.checked()?;
            let name = single_name(&args.name)?;
            let service_account = args.service_account.trim();
            cli::check_name(service_account).map_err(|_| {
                UsageError(format!(
                    "--service-account must name a ServiceAccount, got {service_account:?}"
                ))
            })?;
            let scope = scope(&config, &args.scope)?;
            let connection = ctx.connection(&config, &args.client)?;
            let client = ctx.client(&config, &args.client)?;
            let secret = client.send(&api::create_token(
                &scope,
                service_account,
                &name,
                args.expires_in,
            ))?;
            if let Some(TokenOutput::Object(format)) = format {
                let text = output::render_changed(
                    Kind::ServiceAccountToken,
                    &secret,
                    &name,
                    "created",
                    Some(format),
                )?;
                return ctx.print(&text);
            }
            let token = token_of(&secret).ok_or_else(|| ClientError::Unexpected {
                address: "the server".to_owned(),
                status: 201,
                reason: "the token Secret has no data.token".to_owned(),
            })?;
            let access = TokenAccess {
                address: &connection.address,
                tls: &connection.tls,
                scope: &scope,
                service_account,
                token: &token,
            };
            let text = match format {
                Some(TokenOutput::Kubeconfig) => access.kubeconfig(),
                Some(TokenOutput::Env) => access.env_lines(),
                _ => token_banner(&token),
            };
            ctx.print(&text)
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

fn single_name(name: &str) -> Result<String, Error> {
    let name = name.trim();
    cli::check_name(name)?;
    Ok(name.to_owned())
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

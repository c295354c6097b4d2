//! `kargo disable|enable serviceaccounttoken|token NAME...`: one request per name, as `delete`
//! (`TYPE/NAME disabled`, an `Error:` line per failure; an API token's TYPE is `secret`, as
//! `kargo delete token` prints); `kargo rotate serviceaccounttoken|token NAME`: the new value
//! printed once, as `create` prints a new token.

use kargo_api::token_lifecycle::{Grace, PREVIOUS_TOKEN_VALID_UNTIL_ANNOTATION};
use kargo_api::well_known::SERVICE_ACCOUNT_NAME_ANNOTATION;

use super::create::{ShownToken, single_name};
use super::{Context, Error, about, scope};
use crate::api::{self, Request, Scope};
use crate::cli::{self, RotateCommand, TokenStateCommand};
use crate::output::Kind;

/// What `kargo rotate serviceaccounttoken|token` prints: the new value, once, and until when the old
/// one still works (if it does).
pub fn rotated_banner(token: &str, old_valid_until: Option<&str>) -> String {
    let old = match old_valid_until {
        Some(until) => format!("The previous value stays valid until {until}.\n"),
        None => "The previous value no longer works.\n".to_owned(),
    };
    format!(
        "Token rotated successfully!\n\n{old}IMPORTANT: Save this token securely. It will not be shown again.\n\nToken: {token}\n"
    )
}

/// The disable (`true`) or enable request of a token of one kind.
type StateRequest = fn(&Scope, &str, bool) -> Request;

/// The rotation request of a token of one kind.
type RotateRequest = fn(&Scope, &str, Option<Grace>) -> Request;

/// Runs `kargo disable ...` (`disabled`) or `kargo enable ...`.
pub fn set_disabled(
    ctx: &mut Context<'_>,
    command: TokenStateCommand,
    disabled: bool,
) -> Result<(), Error> {
    let config = ctx.logged_in_config()?;
    let (kind, args, request): (Kind, _, StateRequest) = match command {
        TokenStateCommand::ServiceAccountToken(args) => {
            (Kind::ServiceAccountToken, args, api::set_token_disabled)
        }
        TokenStateCommand::Token(args) => (Kind::ApiToken, args, api::set_api_token_disabled),
    };
    let scope = scope(&config, &args.scope)?;
    let names = cli::names(&args.delete.names)?;
    let client = ctx.client(&config, &args.delete.client)?;
    let verb = if disabled { "disabled" } else { "enabled" };
    let mut errors = Vec::new();
    for name in &names {
        match client.send(&request(&scope, name, disabled)) {
            Ok(_) => ctx.print(&format!("{}/{name} {verb}\n", kind.qualified()))?,
            Err(e) => errors.push(about(kind, name, e)),
        }
    }
    Error::from_many(errors)
}

/// Runs `kargo rotate ...`.
pub fn rotate(ctx: &mut Context<'_>, command: RotateCommand) -> Result<(), Error> {
    let config = ctx.logged_in_config()?;
    let (kind, args, request): (Kind, _, RotateRequest) = match command {
        RotateCommand::ServiceAccountToken(args) => {
            (Kind::ServiceAccountToken, args, api::rotate_token)
        }
        RotateCommand::Token(args) => (Kind::ApiToken, args, api::rotate_api_token),
    };
    let format = args.output.checked()?;
    let name = single_name(&args.name)?;
    let scope = scope(&config, &args.scope)?;
    let connection = ctx.connection(&config, &args.client)?;
    let client = ctx.client(&config, &args.client)?;
    let secret = client
        .send(&request(&scope, &name, args.grace))
        .map_err(|e| about(kind, &name, e))?;
    let annotation = |key: &str| secret["metadata"]["annotations"][key].as_str();
    let service_account = annotation(SERVICE_ACCOUNT_NAME_ANNOTATION).unwrap_or_default();
    let old_valid_until = annotation(PREVIOUS_TOKEN_VALID_UNTIL_ANNOTATION);
    let shown = ShownToken {
        kind,
        secret: &secret,
        name: &name,
        connection: &connection,
        scope: &scope,
        service_account,
    };
    let text = shown.text(format, "rotated", 200, |token| {
        rotated_banner(token, old_valid_until)
    })?;
    ctx.print(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rotation_banner_says_whether_the_old_value_still_works() {
        assert_eq!(
            rotated_banner("eyJ...", Some("2030-01-02T03:04:05Z")),
            "Token rotated successfully!\n\nThe previous value stays valid until 2030-01-02T03:04:05Z.\nIMPORTANT: Save this token securely. It will not be shown again.\n\nToken: eyJ...\n"
        );
        assert!(
            rotated_banner("eyJ...", None)
                .contains("\nThe previous value no longer works.\nIMPORTANT")
        );
    }
}

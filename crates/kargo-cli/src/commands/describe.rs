//! `kargo describe project|serviceaccount|serviceaccounttoken|role|token NAME...`: each object and
//! what the REST API says about it besides (a ServiceAccount's roles and tokens, a project's
//! counts), as [`crate::output::describe`] lays it out. Like `kargo get NAME...`, every name is
//! tried: the ones found are printed, two blank lines apart as kubectl does, then one `Error:`
//! line per name that failed (exit 1).

use serde_json::Value;

use super::get::{get_request, items};
use super::{Context, Error, about, scope};
use crate::api::{self, Scope};
use crate::cli::{self, DescribeCommand};
use crate::client::Client;
use crate::output::{Kind, describe};

/// Runs a `kargo describe` command.
pub fn run(ctx: &mut Context<'_>, command: DescribeCommand) -> Result<(), Error> {
    let config = ctx.logged_in_config()?;
    let (kind, scope, args) = match command {
        DescribeCommand::Project(args) => (Kind::Project, None, args),
        DescribeCommand::ServiceAccount(args) => (
            Kind::ServiceAccount,
            Some(scope(&config, &args.scope)?),
            args.describe,
        ),
        DescribeCommand::ServiceAccountToken(args) => (
            Kind::ServiceAccountToken,
            Some(scope(&config, &args.scope)?),
            args.describe,
        ),
        DescribeCommand::Token(args) => (
            Kind::ApiToken,
            Some(scope(&config, &args.scope)?),
            args.describe,
        ),
        DescribeCommand::Role(args) => (
            Kind::Role,
            Some(scope(&config, &args.scope)?),
            args.describe,
        ),
    };
    let names = cli::names(&args.names)?;
    let client = ctx.client(&config, &args.client)?;
    let mut roles = None;
    let mut texts = Vec::new();
    let mut errors = Vec::new();
    for name in &names {
        let object = client
            .send(&get_request(kind, scope.as_ref(), name))
            .map_err(|e| about(kind, name, e));
        match object.and_then(|o| text(&client, kind, scope.as_ref(), &o, &mut roles)) {
            Ok(text) => texts.push(text),
            Err(e) => errors.push(e),
        }
    }
    // kubectl describe writes "\n\n" before each description but the first, and each ends
    // with a newline: two blank lines between them.
    ctx.print(&texts.join("\n\n"))?;
    Error::from_many(errors)
}

/// The description of one object, with what else it takes from the server. The scope's roles
/// are listed once for all the ServiceAccounts of the command (`roles`).
fn text(
    client: &Client,
    kind: Kind,
    scope: Option<&Scope>,
    object: &Value,
    roles: &mut Option<Vec<Value>>,
) -> Result<String, Error> {
    let name = crate::output::name(object);
    Ok(match (kind, scope) {
        (Kind::ServiceAccount, Some(scope)) => {
            let roles = match roles {
                Some(roles) => roles,
                None => roles.insert(items(client, &api::list_roles(scope))?),
            };
            let tokens = items(client, &api::list_tokens(scope, Some(name)))?;
            describe::service_account(object, roles, &tokens)
        }
        (Kind::ServiceAccountToken | Kind::ApiToken, _) => describe::token(object),
        (Kind::Role, _) => describe::role(object),
        // `run` gives a ServiceAccount its scope; a project has none.
        (Kind::Project, _) | (Kind::ServiceAccount, None) => {
            let project = Scope::Project(name.to_owned());
            let accounts = items(client, &api::list_service_accounts(&project))?;
            let roles = items(client, &api::list_roles(&project))?;
            describe::project(object, accounts.len(), roles.len())
        }
    })
}

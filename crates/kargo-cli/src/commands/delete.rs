//! `kargo delete project|serviceaccount|serviceaccounttoken|role|token NAME...`: one request per name;
//! each success prints `TYPE/NAME deleted`, each failure an `Error:` line, and any failure makes
//! the exit code 1.

use super::{Context, Error, about, project, scope};
use crate::api::{self, Request};
use crate::cli::{self, DeleteCommand};
use crate::output::Kind;

/// The delete request of a name.
type RequestFor = Box<dyn Fn(&str) -> Request>;

/// Runs a `kargo delete` command.
pub fn run(ctx: &mut Context<'_>, command: DeleteCommand) -> Result<(), Error> {
    let config = ctx.logged_in_config()?;
    let (kind, args, request): (Kind, _, RequestFor) = match command {
        DeleteCommand::FederatedIdentity(args) => {
            return super::federated_identity::delete(ctx, &args);
        }
        DeleteCommand::Project(args) => (Kind::Project, args, Box::new(api::delete_project)),
        DeleteCommand::ServiceAccount(args) => {
            let project = project(&config, &args.project)?;
            (
                Kind::ServiceAccount,
                args.delete,
                Box::new(move |name| api::delete_service_account(&project, name)),
            )
        }
        DeleteCommand::ServiceAccountToken(args) => {
            let scope = scope(&config, &args.scope)?;
            (
                Kind::ServiceAccountToken,
                args.delete,
                Box::new(move |name| api::delete_token(&scope, name)),
            )
        }
        DeleteCommand::Token(args) => {
            let scope = scope(&config, &args.scope)?;
            (
                Kind::ApiToken,
                args.delete,
                Box::new(move |name| api::delete_api_token(&scope, name)),
            )
        }
        DeleteCommand::Role(args) => {
            let project = project(&config, &args.project)?;
            (
                Kind::Role,
                args.delete,
                Box::new(move |name| api::delete_role(&project, name)),
            )
        }
    };
    let names = cli::names(&args.names)?;
    let client = ctx.client(&config, &args.client)?;
    let mut errors = Vec::new();
    for name in &names {
        match client.send(&request(name)) {
            Ok(_) => ctx.print(&format!("{}/{name} deleted\n", kind.qualified()))?,
            Err(e) => errors.push(about(kind, name, e)),
        }
    }
    Error::from_many(errors)
}

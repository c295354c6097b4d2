//! `kargo get projects|serviceaccounts|serviceaccounttokens|roles`.

use serde_json::Value;

use super::{Context, Error, about, scope};
use crate::api::{self, Request, Scope};
use crate::cli::{self, GetCommand};
use crate::client::{Client, ClientError};
use crate::output::{self, Kind, OutputFormat, Shape};

/// Runs a `kargo get` command.
pub fn run(ctx: &mut Context<'_>, command: GetCommand) -> Result<(), Error> {
    let config = ctx.logged_in_config()?;
    let (kind, scope, service_account, args) = match command {
        GetCommand::Projects(args) => (Kind::Project, None, None, args),
        GetCommand::ServiceAccounts(args) => (
            Kind::ServiceAccount,
            Some(scope(&config, &args.scope)?),
            None,
            args.get,
        ),
        GetCommand::ServiceAccountTokens(args) => {
            let service_account = match args.service_account.as_deref().map(str::trim) {
                Some(sa) => {
                    cli::check_name(sa)?;
                    Some(sa.to_owned())
                }
                None => None,
            };
            (
                Kind::ServiceAccountToken,
                Some(scope(&config, &args.scope)?),
                service_account,
                args.get,
            )
        }
        GetCommand::Roles(args) => (
            Kind::Role,
            Some(scope(&config, &args.scope)?),
            None,
            args.get,
        ),
    };
    let names = cli::names(&args.names)?;
    let client = ctx.client(&config, &args.client)?;
    let format = args.list.output.output.as_ref();

    let mut objects = Vec::new();
    let mut errors = Vec::new();
    if names.is_empty() {
        let request = list_request(kind, scope.as_ref(), service_account.as_deref());
        objects = items(&client, &request)?;
    } else {
        for name in &names {
            match client.send(&get_request(kind, scope.as_ref(), name)) {
                Ok(object) => objects.push(object),
                Err(e) => errors.push(about(kind, name, e)),
            }
        }
    }

    let shape = match names.len() {
        1 => Shape::One,
        _ => Shape::List,
    };
    let text = output::render_list(
        kind,
        &objects,
        shape,
        format,
        args.list.no_headers,
        ctx.now_ms,
    )?;
    ctx.print(&text)?;
    let tabular = matches!(
        format,
        None | Some(OutputFormat::Wide) | Some(OutputFormat::Name)
    );
    if names.is_empty() && objects.is_empty() && tabular {
        let note = match &scope {
            Some(Scope::Project(p)) => format!("No resources found in project {p:?}.\n"),
            _ => "No resources found.\n".to_owned(),
        };
        ctx.err.write_all(note.as_bytes())?;
    }
    Error::from_many(errors)
}

fn list_request(kind: Kind, scope: Option<&Scope>, service_account: Option<&str>) -> Request {
    match (kind, scope) {
        (Kind::Project, _) | (_, None) => api::list_projects(),
        (Kind::ServiceAccount, Some(s)) => api::list_service_accounts(s),
        (Kind::ServiceAccountToken, Some(s)) => api::list_tokens(s, service_account),
        (Kind::Role, Some(s)) => api::list_roles(s),
    }
}

pub(super) fn get_request(kind: Kind, scope: Option<&Scope>, name: &str) -> Request {
    match (kind, scope) {
        (Kind::Project, _) | (_, None) => api::get_project(name),
        (Kind::ServiceAccount, Some(s)) => api::get_service_account(s, name),
        (Kind::ServiceAccountToken, Some(s)) => api::get_token(s, name),
        (Kind::Role, Some(s)) => api::get_role(s, name),
    }
}

/// The objects of a list answer: a JSON array (roles) or a Kubernetes list's `items`.
pub(super) fn items(client: &Client, request: &Request) -> Result<Vec<Value>, Error> {
    match client.send(request)? {
        Value::Array(items) => Ok(items),
        Value::Object(mut list) => match list.remove("items") {
            Some(Value::Array(items)) => Ok(items),
            Some(Value::Null) | None => Ok(Vec::new()),
            Some(_) => Err(unexpected_list()),
        },
        _ => Err(unexpected_list()),
    }
}

fn unexpected_list() -> Error {
    ClientError::Unexpected {
        address: "the server".to_owned(),
        status: 200,
        reason: "the list answer has no items".to_owned(),
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_gets_go_to_the_kinds_routes() {
        let p = Scope::Project("p".into());
        let cases = [
            (
                list_request(Kind::ServiceAccountToken, Some(&p), Some("sa")).path,
                "/v1beta1/projects/p/service-account-tokens?serviceAccount=sa",
            ),
            (
                list_request(Kind::Project, None, None).path,
                "/v1beta1/projects",
            ),
            (
                get_request(Kind::Role, Some(&Scope::System), "kargo-admin").path,
                "/v1beta1/system/roles/kargo-admin",
            ),
            (
                get_request(Kind::ServiceAccount, Some(&p), "a").path,
                "/v1beta1/projects/p/service-accounts/a",
            ),
        ];
        for (actual, expected) in cases {
            assert_eq!(actual, expected);
        }
    }
}

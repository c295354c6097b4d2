//! `kargo get projects|serviceaccounts|serviceaccounttokens|roles`: a list or the named objects,
//! then `-l` (filtered here: the REST list routes take no label selector), `--sort-by`, and the
//! table options of [`output::TableOptions`]. `-A` lists each visible project in turn.

use serde_json::Value;

use super::{Context, Error, about, scope};
use crate::api::{self, Request, Scope};
use crate::cli::{self, AllProjectsFlag, GetCommand, ScopeFlags};
use crate::client::{Client, ClientError};
use crate::config::ConfigFile;
use crate::output::{self, Kind, OutputFormat, Shape, TableOptions, columns};

/// Runs a `kargo get` command.
pub fn run(ctx: &mut Context<'_>, command: GetCommand) -> Result<(), Error> {
    let config = ctx.logged_in_config()?;
    let (kind, all_projects, scope, service_account, args) = match command {
        GetCommand::FederatedIdentities(args) => return super::federated_identity::get(ctx, &args),
        GetCommand::Projects(args) => (Kind::Project, false, None, None, args),
        GetCommand::ServiceAccounts(args) => (
            Kind::ServiceAccount,
            args.all.all_projects,
            scoped(&config, &args.scope, &args.all)?,
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
                args.all.all_projects,
                scoped(&config, &args.scope, &args.all)?,
                service_account,
                args.get,
            )
        }
        GetCommand::Roles(args) => (
            Kind::Role,
            args.all.all_projects,
            scoped(&config, &args.scope, &args.all)?,
            None,
            args.get,
        ),
    };
    let names = cli::names(&args.names)?;
    let client = ctx.client(&config, &args.client)?;
    let list = &args.list;
    let format = list.output.output.as_ref();

    let mut objects = Vec::new();
    let mut errors = Vec::new();
    if all_projects {
        objects = across_projects(&client, kind, service_account.as_deref())?;
    } else if names.is_empty() {
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
    if let Some(selector) = &list.selector {
        objects.retain(|o| selector.matches(o));
    }
    if let Some(path) = &list.sort_by {
        columns::sort_by(&mut objects, path);
    }

    let shape = match names.len() {
        1 => Shape::One,
        _ => Shape::List,
    };
    let options = TableOptions {
        no_headers: list.no_headers,
        show_labels: list.show_labels,
        project_column: all_projects,
    };
    let text = output::render_list(kind, &objects, shape, format, options, ctx.now_ms)?;
    ctx.print(&text)?;
    let tabular = matches!(
        format,
        None | Some(OutputFormat::Wide)
            | Some(OutputFormat::Name)
            | Some(OutputFormat::CustomColumns(_))
    );
    if names.is_empty() && objects.is_empty() && tabular {
        let note = match &scope {
            Some(Scope::Project(p)) if !all_projects => {
                format!("No resources found in project {p:?}.\n")
            }
            _ => "No resources found.\n".to_owned(),
        };
        ctx.err.write_all(note.as_bytes())?;
    }
    Error::from_many(errors)
}

/// The scope of a project object's command; none with `-A` (every project).
fn scoped(
    config: &ConfigFile,
    flags: &ScopeFlags,
    all: &AllProjectsFlag,
) -> Result<Option<Scope>, Error> {
    match all.all_projects {
        true => Ok(None),
        false => scope(config, flags).map(Some),
    }
}

/// `-A`: the objects of every project the user can list, project by project (the Kargo REST API
/// has no cross-project list). Projects that answer 403 (or went away: 404) are skipped.
fn across_projects(
    client: &Client,
    kind: Kind,
    service_account: Option<&str>,
) -> Result<Vec<Value>, Error> {
    let mut objects = Vec::new();
    for project in items(client, &api::list_projects())? {
        let scope = Scope::Project(output::name(&project).to_owned());
        match items(client, &list_request(kind, Some(&scope), service_account)) {
            Ok(found) => objects.extend(found),
            Err(Error::Client(ClientError::Api {
                status: 403 | 404, ..
            })) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(objects)
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

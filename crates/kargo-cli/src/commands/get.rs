//! `kargo get projects|serviceaccounts|serviceaccounttokens|roles|tokens`: a list or the named objects,
//! then `-l` (filtered here: the REST list routes take no label selector), `--sort-by`, and the
//! table options of [`output::TableOptions`]. `-A` lists each visible project in turn. `-w`
//! lists again after each change [`crate::watch`] reports and prints what differs.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::{Context, Error, about, scope};
use crate::api::{self, Request, Scope};
use crate::cli::{self, AllProjectsFlag, GetCommand, ScopeFlags};
use crate::client::{Client, ClientError};
use crate::config::ConfigFile;
use crate::output::{self, Kind, OutputFormat, Shape, TableOptions, columns};
use crate::watch::{self, Changes};

/// Runs a `kargo get` command.
pub fn run(ctx: &mut Context<'_>, command: GetCommand) -> Result<(), Error> {
    let config = ctx.logged_in_config()?;
    // `owner`: only the tokens of this ServiceAccount (`--service-account`) or role (`--role`).
    let (kind, all_projects, scope, owner, args) = match command {
        GetCommand::FederatedIdentities(args) => return super::federated_identity::get(ctx, &args),
        GetCommand::Projects(args) => (Kind::Project, false, None, None, args),
        GetCommand::ServiceAccounts(args) => (
            Kind::ServiceAccount,
            args.all.all_projects,
            scoped(&config, &args.scope, &args.all)?,
            None,
            args.get,
        ),
        GetCommand::ServiceAccountTokens(args) => (
            Kind::ServiceAccountToken,
            args.all.all_projects,
            scoped(&config, &args.scope, &args.all)?,
            filter(args.service_account.as_deref())?,
            args.get,
        ),
        GetCommand::Tokens(args) => (
            Kind::ApiToken,
            args.all.all_projects,
            scoped(&config, &args.scope, &args.all)?,
            filter(args.role.as_deref())?,
            args.get,
        ),
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
    let query = Query {
        kind,
        all_projects,
        scope: scope.as_ref(),
        owner: owner.as_deref(),
        names: &names,
        list,
    };
    let options = TableOptions {
        no_headers: list.no_headers,
        show_labels: list.show_labels,
        project_column: all_projects,
        show_managed_fields: list.show_managed_fields,
    };
    let watching = list.watch || list.watch_only;
    // Watching starts before the first list, so no change falls between the two.
    let changes = watching.then(|| {
        let scope = if all_projects { None } else { scope.as_ref() };
        Changes::start(&client, watch::sources(kind, scope))
    });
    let (objects, errors) = query.fetch(&client, false)?;
    let Some(changes) = changes else {
        print_once(ctx, &query, &objects, options)?;
        return Error::from_many(errors);
    };
    if !errors.is_empty() {
        return Error::from_many(errors);
    }
    let mut printer = WatchPrinter {
        options,
        started: false,
    };
    if !list.watch_only {
        printer.print(ctx, &query, &objects)?;
    }
    follow(ctx, &client, &query, changes, objects, &mut printer)
}

/// What a `kargo get` lists: a kind in a scope (or every project), maybe only some names, then
/// filtered and sorted as its flags say.
struct Query<'a> {
    kind: Kind,
    all_projects: bool,
    scope: Option<&'a Scope>,
    /// Only the tokens of this ServiceAccount (`--service-account`) or role (`--role`).
    owner: Option<&'a str>,
    names: &'a [String],
    list: &'a cli::ListFlags,
}

impl Query<'_> {
    /// The objects, and an error for each name that could not be read. `gone_is_absent`: a
    /// named object that is not found is left out instead (it was deleted while watched).
    fn fetch(
        &self,
        client: &Client,
        gone_is_absent: bool,
    ) -> Result<(Vec<Value>, Vec<Error>), Error> {
        let mut objects = Vec::new();
        let mut errors = Vec::new();
        if self.all_projects {
            objects = across_projects(client, self.kind, self.owner)?;
        } else if self.names.is_empty() {
            let request = list_request(self.kind, self.scope, self.owner);
            objects = items(client, &request)?;
        } else {
            for name in self.names {
                match client.send(&get_request(self.kind, self.scope, name)) {
                    Ok(object) => objects.push(object),
                    Err(ClientError::Api { status: 404, .. }) if gone_is_absent => {}
                    Err(e) => errors.push(about(self.kind, name, e)),
                }
            }
        }
        if let Some(selector) = &self.list.selector {
            objects.retain(|o| selector.matches(o));
        }
        if let Some(path) = &self.list.sort_by {
            columns::sort_by(&mut objects, path);
        }
        Ok((objects, errors))
    }

    fn format(&self) -> Option<&OutputFormat> {
        self.list.output.output.as_ref()
    }
}

/// Prints the objects of a `kargo get` without `-w`: one table or document, and a note on
/// stderr when a table has nothing to show.
fn print_once(
    ctx: &mut Context<'_>,
    query: &Query<'_>,
    objects: &[Value],
    options: TableOptions,
) -> Result<(), Error> {
    let format = query.format();
    let shape = match query.names.len() {
        1 => Shape::One,
        _ => Shape::List,
    };
    let text = output::render_list(query.kind, objects, shape, format, options, ctx.now_ms)?;
    ctx.print(&text)?;
    let tabular = matches!(
        format,
        None | Some(OutputFormat::Wide)
            | Some(OutputFormat::Name)
            | Some(OutputFormat::CustomColumns(_))
    );
    if query.names.is_empty() && objects.is_empty() && tabular {
        let note = match query.scope {
            Some(Scope::Project(p)) if !query.all_projects => {
                format!("No resources found in project {p:?}.\n")
            }
            _ => "No resources found.\n".to_owned(),
        };
        ctx.err.write_all(note.as_bytes())?;
    }
    Ok(())
}

/// Prints objects as `kargo get -w` does (as `kubectl get -w`): a table's header once, then a
/// row per object; each object on its own in the other formats (YAML documents separated by
/// `---`), never a `List`.
struct WatchPrinter {
    options: TableOptions,
    started: bool,
}

impl WatchPrinter {
    fn print(
        &mut self,
        ctx: &mut Context<'_>,
        query: &Query<'_>,
        objects: &[Value],
    ) -> Result<(), Error> {
        if objects.is_empty() {
            return Ok(());
        }
        let format = query.format();
        let mut text = String::new();
        match format {
            None | Some(OutputFormat::Wide) | Some(OutputFormat::CustomColumns(_)) => {
                let options = TableOptions {
                    no_headers: self.options.no_headers || self.started,
                    ..self.options
                };
                text = output::render_list(
                    query.kind,
                    objects,
                    Shape::List,
                    format,
                    options,
                    ctx.now_ms,
                )?;
            }
            Some(format) => {
                for (i, object) in objects.iter().enumerate() {
                    if matches!(format, OutputFormat::Yaml) && (self.started || i > 0) {
                        text.push_str("---\n");
                    }
                    let one = std::slice::from_ref(object);
                    text.push_str(&output::render_list(
                        query.kind,
                        one,
                        Shape::One,
                        Some(format),
                        self.options,
                        ctx.now_ms,
                    )?);
                }
            }
        }
        self.started = true;
        ctx.print(&text)
    }
}

/// `-w`: after each change, lists again and prints the objects that are new or differ from the
/// last list, then those that are gone (as they last were), until interrupted or the watch
/// fails.
fn follow(
    ctx: &mut Context<'_>,
    client: &Client,
    query: &Query<'_>,
    mut changes: Changes,
    mut shown: Vec<Value>,
    printer: &mut WatchPrinter,
) -> Result<(), Error> {
    loop {
        changes.next(client)?;
        let (objects, errors) = query.fetch(client, true)?;
        if let Some(error) = errors.into_iter().next() {
            return Err(error);
        }
        let before: HashMap<(&str, &str), &Value> = shown.iter().map(|o| (key(o), o)).collect();
        let now: HashSet<(&str, &str)> = objects.iter().map(key).collect();
        let mut differing: Vec<Value> = objects
            .iter()
            .filter(|o| before.get(&key(o)) != Some(o))
            .cloned()
            .collect();
        differing.extend(shown.iter().filter(|o| !now.contains(&key(o))).cloned());
        printer.print(ctx, query, &differing)?;
        shown = objects;
    }
}

/// An object's namespace and name: what identifies it between two lists.
fn key(object: &Value) -> (&str, &str) {
    let field = |f: &str| {
        object
            .get("metadata")
            .and_then(|m| m.get(f))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    (field("namespace"), field("name"))
}

/// The name a token list is filtered by (`--service-account`, `--role`), trimmed and checked.
fn filter(given: Option<&str>) -> Result<Option<String>, Error> {
    match given.map(str::trim) {
        Some(name) => {
            cli::check_name(name)?;
            Ok(Some(name.to_owned()))
        }
        None => Ok(None),
    }
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
fn across_projects(client: &Client, kind: Kind, owner: Option<&str>) -> Result<Vec<Value>, Error> {
    let mut objects = Vec::new();
    for project in items(client, &api::list_projects())? {
        let scope = Scope::Project(output::name(&project).to_owned());
        match items(client, &list_request(kind, Some(&scope), owner)) {
            Ok(found) => objects.extend(found),
            Err(Error::Client(ClientError::Api {
                status: 403 | 404, ..
            })) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(objects)
}

/// The list request of `kind`; a token list only of the tokens of `owner` (a ServiceAccount's or
/// a role's).
fn list_request(kind: Kind, scope: Option<&Scope>, owner: Option<&str>) -> Request {
    match (kind, scope) {
        (Kind::Project, _) | (_, None) => api::list_projects(),
        (Kind::ServiceAccount, Some(s)) => api::list_service_accounts(s),
        (Kind::ServiceAccountToken, Some(s)) => api::list_tokens(s, owner),
        (Kind::ApiToken, Some(s)) => api::list_api_tokens(s, owner),
        (Kind::Role, Some(s)) => api::list_roles(s),
    }
}

pub(super) fn get_request(kind: Kind, scope: Option<&Scope>, name: &str) -> Request {
    match (kind, scope) {
        (Kind::Project, _) | (_, None) => api::get_project(name),
        (Kind::ServiceAccount, Some(s)) => api::get_service_account(s, name),
        (Kind::ServiceAccountToken, Some(s)) => api::get_token(s, name),
        (Kind::ApiToken, Some(s)) => api::get_api_token(s, name),
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
                list_request(Kind::ApiToken, Some(&Scope::System), Some("kargo-viewer")).path,
                "/v1beta1/system/api-tokens?role=kargo-viewer",
            ),
            (
                get_request(Kind::ApiToken, Some(&p), "t").path,
                "/v1beta1/projects/p/api-tokens/t",
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

//! `kargo apply -f FILE|DIR|-`: makes each object of the manifests ([`crate::manifest`]) what
//! the manifest says, through the same Kargo REST API the other commands use, and prints
//! kubectl's line per object in document order: `TYPE/NAME created` when it was absent,
//! `configured` when it differed, `unchanged` when it did not (nothing is written then).
//!
//! What "differs" means per kind, since the API cannot change everything:
//! - a project is created or left as it is (a `spec` other than the existing one is an error:
//!   there is no route to change a project);
//! - a ServiceAccount likewise (its labels and annotations must already be there);
//! - a role's claims, description and rules are replaced (`PUT`), and the ServiceAccounts it
//!   is granted to made those of the manifest (grants and revocations). Rules compare as the
//!   server stores them: one (resource, name, verb) at a time, `*` expanded.
//!
//! A bad document, or a failure of one object, is an `Error:` line after the others naming the
//! file and document; the objects before and after it are still applied, and the command
//! exits 1 (as kubectl does).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;

use k8s_openapi::api::rbac::v1::PolicyRule;
use kargo_api::kargo::{DESCRIPTION_ANNOTATION, Role};
use kargo_api::resources::STANDARD_VERBS;
use serde_json::{Value, json};

use super::{Context, Error, about, role};
use crate::api::{self, Scope};
use crate::cli::{self, ApplyArgs, DryRun, RoleChange};
use crate::client::{Client, ClientError};
use crate::manifest::{self, Object};
use crate::output::{self, Kind, OutputFormat};

/// What was done to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Created,
    Configured,
    Unchanged,
}

impl Outcome {
    fn word(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Configured => "configured",
            Outcome::Unchanged => "unchanged",
        }
    }
}

/// One object applied: what it is, what was done, and the object (as the server answered, or
/// as it would be with `--dry-run=client`).
struct Applied {
    kind: Kind,
    name: String,
    outcome: Outcome,
    object: Value,
}

/// Runs `kargo apply`.
pub fn run(ctx: &mut Context<'_>, args: &ApplyArgs) -> Result<(), Error> {
    let format = args.output.for_object()?;
    let config = ctx.logged_in_config()?;
    let flag = args
        .project
        .project
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty());
    if let Some(project) = flag {
        cli::check_name(project)?;
    }
    let default = config.project(flag);
    let sources = manifest::read_sources(&args.filenames, &mut || {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        Ok(text)
    })?;
    let client = ctx.client(&config, &args.client)?;
    let applier = Applier {
        client: &client,
        flag,
        default: default.as_deref(),
        dry_run: args.dry_run == DryRun::Client,
    };
    let suffix = if applier.dry_run { " (dry run)" } else { "" };
    let mut errors = Vec::new();
    let mut shown = Vec::new();
    for source in &sources {
        for document in manifest::documents(source) {
            let place = document.place();
            let applied = match document.object {
                Ok(object) => applier.apply(object).map_err(|e| e.to_string()),
                Err(message) => Err(message),
            }
            .map_err(|message| Error::Manifest { place, message });
            match applied {
                Ok(applied) if format.is_none() || format == Some(&OutputFormat::Name) => {
                    let verb = format!("{}{suffix}", applied.outcome.word());
                    let text = output::render_changed(
                        applied.kind,
                        &applied.object,
                        &applied.name,
                        &verb,
                        format,
                    )?;
                    ctx.print(&text)?;
                }
                Ok(applied) => shown.push(output::with_type_meta(applied.kind, &applied.object)),
                Err(error) => errors.push(error),
            }
        }
    }
    if let Some(format) = format.filter(|f| **f != OutputFormat::Name)
        && !shown.is_empty()
    {
        let document = match <[Value; 1]>::try_from(shown) {
            Ok([one]) => one,
            Err(many) => json!({
                "apiVersion": "v1",
                "items": many,
                "kind": "List",
                "metadata": {"resourceVersion": ""},
            }),
        };
        ctx.print(&output::render_document(&document, format)?)?;
    }
    Error::from_many(errors)
}

/// Applies objects one by one.
struct Applier<'a> {
    client: &'a Client,
    /// `--project`, which a document's own namespace must not contradict.
    flag: Option<&'a str>,
    /// The project of documents without a namespace (`--project` or the configured one).
    default: Option<&'a str>,
    dry_run: bool,
}

fn is_not_found(error: &ClientError) -> bool {
    matches!(error, ClientError::Api { status: 404, .. })
}

impl Applier<'_> {
    fn apply(&self, object: Object) -> Result<Applied, Error> {
        match object {
            Object::Project { name, manifest } => self.project(name, manifest),
            Object::ServiceAccount {
                name,
                namespace,
                labels,
                annotations,
            } => {
                let project = self.project_of(namespace, "ServiceAccount", &name)?;
                self.service_account(&project, name, labels, annotations)
            }
            Object::Role { namespace, role } => {
                let name = role.metadata.name.clone().unwrap_or_default();
                let project = self.project_of(namespace, "Role", &name)?;
                self.role(&project, *role)
            }
        }
    }

    /// The project of a namespaced object: its namespace, else `--project` or the configured
    /// one; a namespace other than `--project` is a mistake, as kubectl's `-n` makes it.
    fn project_of(
        &self,
        namespace: Option<String>,
        kind: &str,
        name: &str,
    ) -> Result<String, Error> {
        match (namespace, self.flag, self.default) {
            (Some(ns), Some(flag), _) if ns != flag => Err(invalid(format!(
                "the namespace of {kind} {name:?}, {ns:?}, does not match the project {flag:?} (--project)"
            ))),
            (Some(ns), _, _) => {
                cli::check_name(&ns)?;
                Ok(ns)
            }
            (None, _, Some(default)) => Ok(default.to_owned()),
            (None, _, None) => Err(invalid(format!(
                "{kind} {name:?} has no namespace: set metadata.namespace, or pass --project (or set a default project with `kargo config set-project NAME`)"
            ))),
        }
    }

    fn applied(&self, kind: Kind, name: String, outcome: Outcome, object: Value) -> Applied {
        Applied {
            kind,
            name,
            outcome,
            object,
        }
    }

    fn project(&self, name: String, manifest: Value) -> Result<Applied, Error> {
        match self.client.send(&api::get_project(&name)) {
            Ok(existing) => {
                if let Some(spec) = manifest.get("spec")
                    && existing.get("spec") != Some(spec)
                {
                    return Err(cannot_change(Kind::Project, &name, "its spec differs"));
                }
                Ok(self.applied(Kind::Project, name, Outcome::Unchanged, existing))
            }
            Err(e) if is_not_found(&e) => {
                let object = match self.dry_run {
                    true => manifest,
                    false => self
                        .client
                        .send(&api::create_project_from(&manifest))
                        .map_err(|e| about(Kind::Project, &name, e))?,
                };
                Ok(self.applied(Kind::Project, name, Outcome::Created, object))
            }
            Err(e) => Err(about(Kind::Project, &name, e)),
        }
    }

    fn service_account(
        &self,
        project: &str,
        name: String,
        labels: BTreeMap<String, String>,
        annotations: BTreeMap<String, String>,
    ) -> Result<Applied, Error> {
        let scope = Scope::Project(project.to_owned());
        match self.client.send(&api::get_service_account(&scope, &name)) {
            Ok(existing) => {
                let has = |key: &str, map: &BTreeMap<String, String>| {
                    map.iter()
                        .filter(|(k, v)| existing["metadata"][key][k.as_str()].as_str() != Some(v))
                        .map(|(k, _)| k.clone())
                        .collect::<Vec<_>>()
                };
                let mut other = has("labels", &labels);
                other.extend(has("annotations", &annotations));
                if !other.is_empty() {
                    let why = format!("its labels or annotations differ ({})", other.join(", "));
                    return Err(cannot_change(Kind::ServiceAccount, &name, &why));
                }
                Ok(self.applied(Kind::ServiceAccount, name, Outcome::Unchanged, existing))
            }
            Err(e) if is_not_found(&e) => {
                let metadata = json!({
                    "name": name, "namespace": project, "labels": labels, "annotations": annotations,
                });
                let object = match self.dry_run {
                    true => json!({"metadata": metadata}),
                    false => self
                        .client
                        .send(&api::create_service_account_with(project, metadata))
                        .map_err(|e| about(Kind::ServiceAccount, &name, e))?,
                };
                Ok(self.applied(Kind::ServiceAccount, name, Outcome::Created, object))
            }
            Err(e) => Err(about(Kind::ServiceAccount, &name, e)),
        }
    }

    fn role(&self, project: &str, mut role: Role) -> Result<Applied, Error> {
        let name = role.metadata.name.clone().unwrap_or_default();
        role.metadata.namespace = Some(project.to_owned());
        for account in &mut role.service_accounts {
            if account.namespace.is_empty() {
                account.namespace = project.to_owned();
            }
            if account.namespace != project {
                return Err(invalid(format!(
                    "the serviceAccounts of Role {name:?} must be in its project {project:?}, not {:?}",
                    account.namespace
                )));
            }
        }
        let fail = |e| about(Kind::Role, &name, e);
        let scope = Scope::Project(project.to_owned());
        let existing = match self.client.send(&api::get_role(&scope, &name)) {
            Ok(existing) => existing,
            Err(e) if is_not_found(&e) => {
                let object = match self.dry_run {
                    true => serde_json::to_value(&role).unwrap_or_default(),
                    false => self
                        .client
                        .send(&api::create_role(project, &role))
                        .map_err(fail)?,
                };
                return Ok(self.applied(Kind::Role, name, Outcome::Created, object));
            }
            Err(e) => return Err(fail(e)),
        };
        let current: Role = serde_json::from_value(existing.clone()).map_err(|e| {
            Error::Client(ClientError::Unexpected {
                address: "the server".to_owned(),
                status: 200,
                reason: format!("the role is not a Role: {e}"),
            })
        })?;
        let replace = Content::of(&role) != Content::of(&current);
        let members = |r: &Role| -> BTreeSet<String> {
            r.service_accounts
                .iter()
                .filter(|a| a.namespace == project)
                .map(|a| a.name.clone())
                .collect()
        };
        let (wanted, has) = (members(&role), members(&current));
        let grant: Vec<String> = wanted.difference(&has).cloned().collect();
        let revoke: Vec<String> = has.difference(&wanted).cloned().collect();
        if !replace && grant.is_empty() && revoke.is_empty() {
            return Ok(self.applied(Kind::Role, name, Outcome::Unchanged, existing));
        }
        if self.dry_run {
            let object = serde_json::to_value(&role).unwrap_or_default();
            return Ok(self.applied(Kind::Role, name, Outcome::Configured, object));
        }
        let mut last = existing.clone();
        if replace {
            last = self
                .client
                .send(&api::update_role(project, &role))
                .map_err(fail)?;
        }
        for (names, call) in [
            (grant, api::grant as fn(&str, &_) -> api::Request),
            (revoke, api::revoke),
        ] {
            if !names.is_empty() {
                let body = role::request(project, &name, RoleChange::ServiceAccounts(names));
                last = self.client.send(&call(project, &body)).map_err(fail)?;
            }
        }
        let outcome = match last == existing {
            true => Outcome::Unchanged,
            false => Outcome::Configured,
        };
        Ok(self.applied(Kind::Role, name, outcome, last))
    }
}

/// A document that cannot be applied as it is (the caller names the file and document).
fn invalid(message: String) -> Error {
    Error::Usage(cli::UsageError(message))
}

/// An existing object that the manifest would change where the Kargo API cannot.
fn cannot_change(kind: Kind, name: &str, why: &str) -> Error {
    invalid(format!(
        "{}/{name} exists and {why}, which the Kargo API cannot change (delete it and apply again)",
        kind.qualified()
    ))
}

/// What `PUT .../roles/{r}` replaces, in a form that compares as the server stores it.
#[derive(Debug, PartialEq, Eq)]
struct Content {
    claims: BTreeMap<String, BTreeSet<String>>,
    description: Option<String>,
    rules: BTreeSet<(String, String, String)>,
}

impl Content {
    fn of(role: &Role) -> Content {
        let mut claims: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for claim in &role.claims {
            let values = claim.values.iter().map(|v| v.trim().to_owned());
            claims
                .entry(claim.name.trim().to_owned())
                .or_default()
                .extend(values.filter(|v| !v.is_empty()));
        }
        claims.retain(|_, values| !values.is_empty());
        let description = role
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(DESCRIPTION_ANNOTATION))
            .cloned();
        Content {
            claims,
            description,
            rules: rule_set(&role.rules),
        }
    }
}

/// Rules as (resource, resource name or "", verb) triples, `*` expanded as the server expands
/// it when writing (`promote` included for Stages). The API group follows from the resource.
fn rule_set(rules: &[PolicyRule]) -> BTreeSet<(String, String, String)> {
    let mut set = BTreeSet::new();
    for rule in rules {
        let names: Vec<&str> = match rule.resource_names.as_deref() {
            Some(names) if !names.is_empty() => names.iter().map(|n| n.trim()).collect(),
            _ => vec![""],
        };
        for resource in rule.resources.iter().flatten().map(|r| r.trim()) {
            let mut verbs: BTreeSet<&str> = BTreeSet::new();
            for verb in rule.verbs.iter().map(|v| v.trim()) {
                match verb {
                    "" => {}
                    "*" => {
                        verbs.extend(STANDARD_VERBS);
                        if resource == "stages" {
                            verbs.insert("promote");
                        }
                    }
                    v => {
                        verbs.insert(v);
                    }
                }
            }
            for name in &names {
                for verb in &verbs {
                    set.insert((resource.to_owned(), (*name).to_owned(), (*verb).to_owned()));
                }
            }
        }
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn role(value: Value) -> Role {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn rules_compare_as_stored_whatever_their_grouping_and_order() {
        let given = role(json!({"rules": [
            {"resources": ["stages", "promotions"], "verbs": ["list", " get"]},
            {"apiGroups": ["kargo.akuity.io"], "resources": ["stages"], "resourceNames": ["dev"], "verbs": ["*"]},
        ]}));
        let stored = role(json!({"rules": [
            {"apiGroups": ["kargo.akuity.io"], "resources": ["promotions"], "verbs": ["get", "list"]},
            {"apiGroups": ["kargo.akuity.io"], "resources": ["stages"], "verbs": ["get", "list"]},
            {"apiGroups": ["kargo.akuity.io"], "resources": ["stages"], "resourceNames": ["dev"],
             "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "promote", "update", "watch"]},
        ]}));
        assert_eq!(Content::of(&given), Content::of(&stored));
        let fewer = role(json!({"rules": [{"resources": ["stages"], "verbs": ["get"]}]}));
        assert_ne!(Content::of(&fewer), Content::of(&stored));
    }

    #[test]
    fn claims_and_the_description_are_part_of_the_content() {
        let a = role(json!({"claims": [{"name": "email", "values": ["b", "a"]}]}));
        let b = role(
            json!({"claims": [{"name": "email", "values": ["a"]}, {"name": "email", "values": ["b"]}, {"name": "sub", "values": []}]}),
        );
        assert_eq!(Content::of(&a), Content::of(&b));
        let described = role(json!({"metadata": {"annotations": {DESCRIPTION_ANNOTATION: "x"}}}));
        assert_ne!(Content::of(&described), Content::of(&role(json!({}))));
    }
}

//! `kargo create|get|delete federatedidentity`: the outside identities (CI jobs' OIDC tokens) a
//! Kargo ServiceAccount trusts, through the Kargo API's federated-identities routes (stored in
//! the account's `rbac.kargo.akuity.io/federated-identities` annotation).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{Context, Error, project};
use crate::api;
use crate::cli::{
    self, CreateFederatedIdentityArgs, DeleteFederatedIdentityArgs, GetFederatedIdentitiesArgs,
    UsageError,
};
use crate::output;

/// The kind as messages name it.
const KIND: &str = "federatedidentity";

/// `kargo create federatedidentity`: prints `federatedidentity/<name> created`.
pub(super) fn create(
    ctx: &mut Context<'_>,
    args: &CreateFederatedIdentityArgs,
) -> Result<(), Error> {
    let config = ctx.logged_in_config()?;
    let project = project(&config, &args.project)?;
    let service_account = args.service_account.trim();
    cli::check_name(service_account)?;
    let mut claims = BTreeMap::new();
    for claim in cli::parse_claims(&args.claims)? {
        if claim.values.len() > 1 {
            return Err(UsageError(format!(
                "--claim {}: a federated identity's claim has one value, got {}",
                claim.name,
                claim.values.join(", ")
            ))
            .into());
        }
        claims.insert(claim.name, claim.values.concat());
    }
    let mut entry = json!({"issuer": args.issuer.trim(), "subject": args.subject.trim()});
    if let Some(audience) = &args.audience {
        entry["audience"] = audience.trim().into();
    }
    if !claims.is_empty() {
        entry["claims"] = json!(claims);
    }
    if let Some(name) = &args.name {
        entry["name"] = name.trim().into();
    }
    let client = ctx.client(&config, &args.client)?;
    let created = client.send(&api::create_federated_identity(
        &project,
        service_account,
        entry,
    ))?;
    let name = created["name"].as_str().unwrap_or_default();
    ctx.print(&format!("{KIND}/{name} created\n"))
}

/// `kargo get federatedidentities`: `NAME ISSUER SUBJECT AGE`, sorted by account then name
/// (with a `SERVICE ACCOUNT` column unless one is asked for).
pub(super) fn get(ctx: &mut Context<'_>, args: &GetFederatedIdentitiesArgs) -> Result<(), Error> {
    let config = ctx.logged_in_config()?;
    let project = project(&config, &args.project)?;
    let service_account = args.service_account.as_deref().map(str::trim);
    if let Some(sa) = service_account {
        cli::check_name(sa)?;
    }
    let client = ctx.client(&config, &args.client)?;
    let list = client.send(&api::list_federated_identities(&project, service_account))?;
    let items = list["items"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        writeln!(ctx.err, "No resources found in {project} namespace.")?;
        return Ok(());
    }
    let text = table(&items, service_account.is_none(), ctx.now_ms);
    ctx.print(&text)
}

/// The table of `kargo get federatedidentities`.
fn table(items: &[Value], with_account: bool, now_ms: i64) -> String {
    let text = |v: &Value, field: &str| v[field].as_str().unwrap_or("").to_owned();
    let mut headers = vec!["NAME"];
    if with_account {
        headers.push("SERVICE ACCOUNT");
    }
    headers.extend(["ISSUER", "SUBJECT", "AGE"]);
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|item| {
            let mut row = vec![text(item, "name")];
            if with_account {
                row.push(text(item, "serviceAccount"));
            }
            row.push(text(item, "issuer"));
            row.push(text(item, "subject"));
            row.push(age(item, now_ms));
            row
        })
        .collect();
    output::table(Some(&headers), &rows)
}

/// The age of an entry from its `createdAt`, `<unknown>` without one (written by hand).
fn age(item: &Value, now_ms: i64) -> String {
    let created: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time> =
        serde_json::from_value(item["createdAt"].clone()).ok();
    match created {
        Some(time) => {
            kargo_api::duration::human_duration((now_ms - time.0.as_millisecond()) / 1000)
        }
        None => "<unknown>".to_owned(),
    }
}

/// `kargo delete federatedidentity NAME...`: `federatedidentity/<name> deleted` for each.
pub(super) fn delete(
    ctx: &mut Context<'_>,
    args: &DeleteFederatedIdentityArgs,
) -> Result<(), Error> {
    let config = ctx.logged_in_config()?;
    let project = project(&config, &args.project)?;
    let service_account = args.service_account.as_deref().map(str::trim);
    let names = cli::names(&args.delete.names)?;
    let client = ctx.client(&config, &args.delete.client)?;
    let mut errors = Vec::new();
    for name in &names {
        match client.send(&api::delete_federated_identity(
            &project,
            name,
            service_account,
        )) {
            Ok(_) => ctx.print(&format!("{KIND}/{name} deleted\n"))?,
            Err(e) => errors.push(e.into()),
        }
    }
    Error::from_many(errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_names_issuer_subject_and_age() {
        let items = [
            json!({"name": "main", "serviceAccount": "ci", "issuer": "https://ci",
            "subject": "repo:a/b:ref:refs/heads/*", "createdAt": "2026-01-01T00:00:00Z"}),
        ];
        let now = 1_767_225_600_000 + 3_600_000;
        assert_eq!(
            table(&items, false, now),
            "NAME   ISSUER       SUBJECT                     AGE\nmain   https://ci   repo:a/b:ref:refs/heads/*   60m\n"
        );
        assert!(table(&items, true, now).starts_with("NAME   SERVICE ACCOUNT   ISSUER"));
    }
}

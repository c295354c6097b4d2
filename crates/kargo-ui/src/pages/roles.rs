//! A scope's Kargo Roles: the list with who holds each, a role's page (rules, holders, grant
//! and revoke, edit, delete), and creation. System roles are read only, as in the API.
//!
//! Rules and claims are edited as text, one per line: `stages: get, list, promote` (a resource,
//! optionally `/name`, and its verbs) and `groups: devops, admins` (a claim and its values).

use axum::response::Response;
use maud::{Markup, html};
use serde_json::{Value, json};

use super::{after, items, name_of, unreadable};
use crate::extract::{Names, Posted, Signed, is_name};
use crate::form::Form;
use crate::html;
use crate::scope::Scope;
use crate::session::Flash;
use kargo_api::kargo::DESCRIPTION_ANNOTATION;

const RBAC: &str = "rbac.authorization.k8s.io";

/// `GET {scope}/roles`.
pub(crate) async fn list(signed: Signed, names: Names) -> Response {
    let scope = &names.scope;
    let title = format!("{} · Roles", scope.title());
    let nav = html::scope_nav(scope, "roles");
    let roles = match signed.client.get(&format!("{}/roles", scope.api())).await {
        Ok(roles) => roles,
        Err(error) => return unreadable(&signed, &title, nav, &error),
    };
    let roles = roles.as_array().map(Vec::as_slice).unwrap_or(&[]);
    let may_create = scope.editable()
        && signed
            .client
            .can("create", RBAC, "roles", scope.namespace())
            .await;
    let body = html! {
        h1 { (title) }
        (nav)
        @if roles.is_empty() {
            p { "No roles." }
        } @else {
            table {
                caption.visually-hidden { "Roles" }
                thead { tr {
                    th scope="col" { "Name" } th scope="col" { "Description" }
                    th scope="col" { "Held by" } th scope="col" { "Managed by Kargo" }
                } }
                tbody {
                    @for role in roles {
                        @let name = name_of(role);
                        tr {
                            td { a href=(format!("{}/roles/{name}", scope.ui())) { (name) } }
                            td data-label="Description" { (description(role)) }
                            td data-label="Held by" { (holders_text(scope, role)) }
                            td data-label="Managed by Kargo" { @if role["kargoManaged"] == json!(true) { "yes" } @else { "no" } }
                        }
                    }
                }
            }
        }
        @if may_create {
            form.card method="post" action=(format!("{}/roles", scope.ui())) {
                h2 { "Create a role" }
                (html::csrf(&signed))
                label for="role-name" { "Name" }
                input #role-name name="name" required;
                (role_fields(None))
                button type="submit" { "Create role" }
            }
        }
    };
    html::ok(&title, &signed, body)
}

/// `GET {scope}/roles/{name}`.
pub(crate) async fn show(signed: Signed, names: Names) -> Response {
    let scope = &names.scope;
    let name = names.get("name");
    let title = format!("Role {name}");
    let nav = html::scope_nav(scope, "roles");
    let role = match signed
        .client
        .get(&format!("{}/roles/{name}", scope.api()))
        .await
    {
        Ok(role) => role,
        Err(error) => return unreadable(&signed, &title, nav, &error),
    };
    let ns = scope.namespace();
    let managed = scope.editable() && role["kargoManaged"] == json!(true);
    let (may_edit, may_grant, may_delete) = if managed {
        (
            signed.client.can("update", RBAC, "roles", ns).await,
            signed.client.can("update", RBAC, "rolebindings", ns).await,
            signed.client.can("delete", RBAC, "roles", ns).await,
        )
    } else {
        (false, false, false)
    };
    let accounts = if may_grant {
        signed
            .client
            .get(&format!("{}/service-accounts", scope.api()))
            .await
            .map(|list| items(&list).iter().map(|a| name_of(a).to_owned()).collect())
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let base = format!("{}/roles/{name}", scope.ui());
    let body = html! {
        h1 { (title) }
        (nav)
        p { (description(&role)) }
        h2 { "Permissions" }
        @if rules_text(&role).is_empty() { p { "None." } } @else { pre.rules { (rules_text(&role)) } }
        h2 { "Held by" }
        (holders(&signed, scope, &role, &base, may_grant))
        @if may_grant {
            div.cards {
                form.card method="post" action=(format!("{base}/grant")) {
                    h3 { "Grant to a ServiceAccount" }
                    (html::csrf(&signed))
                    input type="hidden" name="kind" value="account";
                    label for="grant-account" { "ServiceAccount" }
                    select #grant-account name="account" required {
                        @for account in &accounts { option value=(account) { (account) } }
                    }
                    button type="submit" { "Grant role" }
                }
                form.card method="post" action=(format!("{base}/grant")) {
                    h3 { "Grant to people by claim" }
                    (html::csrf(&signed))
                    input type="hidden" name="kind" value="claim";
                    label for="grant-claim" { "Claim" }
                    input #grant-claim name="claim" placeholder="groups" required;
                    label for="grant-values" { "Values (comma-separated)" }
                    input #grant-values name="values" required;
                    button type="submit" { "Grant role" }
                }
            }
        }
        @if may_edit {
            form.card method="post" action=(base.clone()) {
                h2 { "Edit" }
                (html::csrf(&signed))
                (role_fields(Some(&role)))
                button type="submit" { "Save role" }
            }
        }
        @if may_delete {
            (html::button_form(&signed, &format!("{base}/delete"), &format!("Delete role {name}"),
                Some(&format!("Delete role {name}? Its API tokens stop working."))))
        }
    };
    html::ok(&title, &signed, body)
}

/// `POST {scope}/roles`: creates a role.
pub(crate) async fn create(names: Names, posted: Posted) -> Response {
    let Posted { signed, form } = posted;
    let back = format!("{}/roles", names.scope.ui());
    let name = form.get("name");
    if !is_name(name) {
        signed.flash(Flash::Failed(format!("{name:?} is not a valid name.")));
        return html::see_other(&back);
    }
    let body = match role_body(&names.scope, name, &form) {
        Ok(body) => body,
        Err(message) => {
            signed.flash(Flash::Failed(message));
            return html::see_other(&back);
        }
    };
    let result = signed
        .client
        .post(&format!("{}/roles", names.scope.api()), body)
        .await;
    let shown = format!("{back}/{name}");
    match result {
        Ok(_) => after(
            &signed,
            Ok(Value::Null),
            format!("Role {name} created."),
            &shown,
        ),
        Err(error) => super::failed(&signed, &error, &back),
    }
}

/// `POST {scope}/roles/{name}`: replaces description, rules and claims.
pub(crate) async fn update(names: Names, posted: Posted) -> Response {
    let Posted { signed, form } = posted;
    let name = names.get("name");
    let back = format!("{}/roles/{name}", names.scope.ui());
    let path = format!("{}/roles/{name}", names.scope.api());
    let body = match role_body(&names.scope, name, &form) {
        Ok(mut body) => {
            // Holders stay as they are: an edit changes what the role permits.
            if let Ok(current) = signed.client.get(&path).await {
                body["serviceAccounts"] = current["serviceAccounts"].clone();
            }
            body
        }
        Err(message) => {
            signed.flash(Flash::Failed(message));
            return html::see_other(&back);
        }
    };
    let result = signed
        .client
        .send(http::Method::PUT, &path, Some(body))
        .await;
    after(&signed, result, format!("Role {name} saved."), &back)
}

/// `POST {scope}/roles/{name}/delete`.
pub(crate) async fn delete(names: Names, posted: Posted) -> Response {
    let signed = posted.signed;
    let name = names.get("name");
    let path = format!("{}/roles/{name}", names.scope.api());
    let result = signed.client.send(http::Method::DELETE, &path, None).await;
    let back = format!("{}/roles", names.scope.ui());
    match result {
        Ok(_) => after(
            &signed,
            Ok(Value::Null),
            format!("Role {name} deleted."),
            &back,
        ),
        Err(error) => super::failed(&signed, &error, &format!("{back}/{name}")),
    }
}

/// `POST {scope}/roles/{name}/grant`.
pub(crate) async fn grant(names: Names, posted: Posted) -> Response {
    change(names, posted, "grants", "granted to").await
}

/// `POST {scope}/roles/{name}/revoke`.
pub(crate) async fn revoke(names: Names, posted: Posted) -> Response {
    change(names, posted, "revocations", "revoked from").await
}

/// A grant or revocation: to a ServiceAccount (`kind=account`, `account`) or to people by a
/// claim (`kind=claim`, `claim`, `values`).
async fn change(names: Names, posted: Posted, route: &str, done: &str) -> Response {
    let Posted { signed, form } = posted;
    let name = names.get("name");
    let back = format!("{}/roles/{name}", names.scope.ui());
    let (body, whom) = if form.get("kind") == "claim" {
        let claim = form.get("claim");
        let values = split_list(form.get("values"));
        (
            json!({"role": name, "userClaims": {"claims": [{"name": claim, "values": values}]}}),
            format!("claim {claim} = {}", values.join(", ")),
        )
    } else {
        let account = form.get("account");
        let namespace = names.scope.namespace();
        (
            json!({"role": name, "serviceAccounts": {"serviceAccounts": [{"name": account, "namespace": namespace}]}}),
            format!("ServiceAccount {account}"),
        )
    };
    let result = signed
        .client
        .post(&format!("{}/roles/{route}", names.scope.api()), body)
        .await;
    after(
        &signed,
        result,
        format!("Role {name} {done} {whom}."),
        &back,
    )
}

/// Who holds a role, each with a revoke button when the user may revoke.
fn holders(signed: &Signed, scope: &Scope, role: &Value, base: &str, may_revoke: bool) -> Markup {
    let accounts = held_by_accounts(scope, role);
    let claims = role["claims"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    html! {
        @if accounts.is_empty() && claims.is_empty() {
            p { "Nobody." }
        } @else {
            ul.holders {
                @for (account, namespace) in &accounts {
                    li {
                        "ServiceAccount " code { (namespace) "/" (account) }
                        @if may_revoke && namespace == scope.namespace() {
                            form.inline method="post" action=(format!("{base}/revoke")) {
                                (html::csrf(signed))
                                input type="hidden" name="kind" value="account";
                                input type="hidden" name="account" value=(account);
                                button type="submit" aria-label=(format!("Revoke from {account}")) { "Revoke" }
                            }
                        }
                    }
                }
                @for claim in claims {
                    @let claim_name = claim["name"].as_str().unwrap_or("");
                    @for value in claim["values"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                        @let value = value.as_str().unwrap_or("");
                        li {
                            "People whose " code { (claim_name) } " is " code { (value) }
                            @if may_revoke {
                                form.inline method="post" action=(format!("{base}/revoke")) {
                                    (html::csrf(signed))
                                    input type="hidden" name="kind" value="claim";
                                    input type="hidden" name="claim" value=(claim_name);
                                    input type="hidden" name="values" value=(value);
                                    button type="submit" aria-label=(format!("Revoke from {claim_name} {value}")) { "Revoke" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The ServiceAccounts holding a role, but for the role's own: `(name, namespace)`.
fn held_by_accounts(scope: &Scope, role: &Value) -> Vec<(String, String)> {
    let own = name_of(role);
    role["serviceAccounts"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .map(|a| {
            let name = a["name"].as_str().unwrap_or("").to_owned();
            let namespace = a["namespace"]
                .as_str()
                .unwrap_or(scope.namespace())
                .to_owned();
            (name, namespace)
        })
        .filter(|(name, namespace)| !(name == own && namespace == scope.namespace()))
        .collect()
}

/// Who holds a role, as one line for the list.
fn holders_text(scope: &Scope, role: &Value) -> String {
    let mut parts: Vec<String> = held_by_accounts(scope, role)
        .into_iter()
        .map(|(name, namespace)| {
            if namespace == scope.namespace() {
                name
            } else {
                format!("{namespace}/{name}")
            }
        })
        .collect();
    for claim in role["claims"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
        let values: Vec<&str> = claim["values"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .filter_map(Value::as_str)
            .collect();
        parts.push(format!(
            "{}: {}",
            claim["name"].as_str().unwrap_or(""),
            values.join(", ")
        ));
    }
    if parts.is_empty() {
        "—".to_owned()
    } else {
        parts.join("; ")
    }
}

/// A role's description.
fn description(role: &Value) -> &str {
    super::annotation(role, DESCRIPTION_ANNOTATION).unwrap_or("")
}

/// The description, rules and claims fields, filled from `role` when editing.
fn role_fields(role: Option<&Value>) -> Markup {
    let id = if role.is_some() { "edit" } else { "new" };
    html! {
        label for=(format!("{id}-description")) { "Description" }
        input id=(format!("{id}-description")) name="description" value=(role.map(description).unwrap_or(""));
        label for=(format!("{id}-rules")) { "Permissions, one per line" }
        textarea id=(format!("{id}-rules")) name="rules" rows="4" aria-describedby=(format!("{id}-rules-help")) {
            (role.map(rules_text).unwrap_or_default())
        }
        small id=(format!("{id}-rules-help")) { "A resource (optionally " code { "/name" } ") and its verbs, e.g. " code { "stages: get, list, promote" } }
        label for=(format!("{id}-claims")) { "Claims, one per line" }
        textarea id=(format!("{id}-claims")) name="claims" rows="2" aria-describedby=(format!("{id}-claims-help")) {
            (role.map(claims_text).unwrap_or_default())
        }
        small id=(format!("{id}-claims-help")) { "A claim and its values, e.g. " code { "groups: devops, admins" } }
    }
}

/// A role's body from the form: name, description, rules, claims.
fn role_body(scope: &Scope, name: &str, form: &Form) -> Result<Value, String> {
    let rules = parse_lines(form.get("rules"), "permission")?
        .into_iter()
        .map(|(target, verbs)| {
            let (resource, object) = match target.split_once('/') {
                Some((resource, object)) => (resource, Some(object)),
                None => (target.as_str(), None),
            };
            let mut rule = json!({"verbs": verbs, "resources": [resource]});
            if let Some(object) = object {
                rule["resourceNames"] = json!([object]);
            }
            rule
        })
        .collect::<Vec<_>>();
    let claims = parse_lines(form.get("claims"), "claim")?
        .into_iter()
        .map(|(claim, values)| json!({"name": claim, "values": values}))
        .collect::<Vec<_>>();
    let mut metadata = json!({"name": name, "namespace": scope.namespace()});
    if let Some(description) = form.optional("description") {
        metadata["annotations"] = json!({ DESCRIPTION_ANNOTATION: description });
    }
    Ok(json!({"metadata": metadata, "rules": rules, "claims": claims, "serviceAccounts": []}))
}

/// Lines `key: a, b` (blank lines skipped); an error names the line.
fn parse_lines(text: &str, what: &str) -> Result<Vec<(String, Vec<String>)>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| {
            let Some((key, values)) = line.split_once(':') else {
                return Err(format!(
                    "{what} line {}: want \"name: a, b\", got {:?}",
                    n + 1,
                    line.trim()
                ));
            };
            let values = split_list(values);
            if key.trim().is_empty() || values.is_empty() {
                return Err(format!(
                    "{what} line {}: want \"name: a, b\", got {:?}",
                    n + 1,
                    line.trim()
                ));
            }
            Ok((key.trim().to_owned(), values))
        })
        .collect()
}

/// `a, b` as `["a", "b"]`.
fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A role's rules as the form's lines.
fn rules_text(role: &Value) -> String {
    let mut lines = Vec::new();
    for rule in role["rules"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
        let strings = |key: &str| -> Vec<String> {
            rule[key]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or(&[])
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        };
        let verbs = strings("verbs").join(", ");
        let objects = strings("resourceNames");
        for resource in strings("resources") {
            if objects.is_empty() {
                lines.push(format!("{resource}: {verbs}"));
            }
            for object in &objects {
                lines.push(format!("{resource}/{object}: {verbs}"));
            }
        }
    }
    lines.join("\n")
}

/// A role's claims as the form's lines.
fn claims_text(role: &Value) -> String {
    role["claims"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .map(|claim| {
            let values: Vec<&str> = claim["values"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or(&[])
                .iter()
                .filter_map(Value::as_str)
                .collect();
            format!(
                "{}: {}",
                claim["name"].as_str().unwrap_or(""),
                values.join(", ")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_and_claims_round_trip_through_their_lines() {
        let form = Form::parse(b"rules=stages%3A+get%2C+promote%0Astages%2Fdev%3A+promote&claims=groups%3A+devops%2C+ops");
        let body = role_body(&Scope::Project("p".into()), "r", &form).expect("parses");
        assert_eq!(
            rules_text(&body),
            "stages: get, promote\nstages/dev: promote"
        );
        assert_eq!(claims_text(&body), "groups: devops, ops");
    }

    #[test]
    fn a_line_without_verbs_is_named() {
        let form = Form::parse(b"rules=stages%3A+get%0Astages");
        let error = role_body(&Scope::System, "r", &form).expect_err("refused");
        assert_eq!(
            error,
            "permission line 2: want \"name: a, b\", got \"stages\""
        );
    }
}

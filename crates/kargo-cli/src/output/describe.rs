//! `kargo describe`'s text, as kubectl describe prints it: `Key:  value` lines with the values
//! aligned, more values on the lines below, `<none>` for nothing, and tables (a role's rules, a
//! ServiceAccount's tokens) indented under their title.
//!
//! Pure, like the rest of [`crate::output`]: the objects the REST API returned in, text out. A
//! token's `data` is never read, so its value cannot be printed.

use kargo_api::kargo::{MANAGED_ANNOTATION, TRUE};
use kargo_api::well_known::SERVICE_ACCOUNT_NAME_ANNOTATION;
use serde_json::Value;

use super::{Kind, annotation, bracketed, name, table};

/// One line (or block) of a description.
enum Line {
    /// `Key:  first value`, further values aligned below it; `<none>` when empty.
    Field(&'static str, Vec<String>),
    /// `Title:` and a table indented by two spaces (or `Title:  <none>` when it has no rows).
    Table(&'static str, &'static [&'static str], Vec<Vec<String>>),
}

fn field(key: &'static str, value: impl Into<String>) -> Line {
    Line::Field(key, vec![value.into()])
}

/// Lays the lines out: values start two spaces after the longest `Key:` of the description.
fn render(lines: &[Line]) -> String {
    let width = lines
        .iter()
        .map(|line| match line {
            Line::Field(key, _) | Line::Table(key, _, _) => key.chars().count() + 1,
        })
        .max()
        .unwrap_or(0)
        + 2;
    let mut out = String::new();
    let key_value = |out: &mut String, key: &str, values: &[String]| {
        let label = format!("{key}:");
        let none = ["<none>".to_owned()];
        let values = if values.is_empty() { &none[..] } else { values };
        for (i, value) in values.iter().enumerate() {
            let label = if i == 0 { label.as_str() } else { "" };
            out.push_str(&format!("{label:width$}{value}\n"));
        }
    };
    for line in lines {
        match line {
            Line::Field(key, values) => key_value(&mut out, key, values),
            Line::Table(key, _, rows) if rows.is_empty() => key_value(&mut out, key, &[]),
            Line::Table(key, headers, rows) => {
                let dashes: Vec<String> = headers.iter().map(|h| "-".repeat(h.len())).collect();
                let mut all = vec![headers.iter().map(|h| (*h).to_owned()).collect(), dashes];
                all.extend(rows.iter().cloned());
                let body: String = table(None, &all)
                    .lines()
                    .map(|l| format!("  {l}\n"))
                    .collect();
                out.push_str(&format!("{key}:\n{body}"));
            }
        }
    }
    out
}

/// `key=value` of a string map (labels, annotations), sorted by key.
fn pairs(map: &Value) -> Vec<String> {
    let mut pairs: Vec<String> = map
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    pairs.sort();
    pairs
}

fn str_at<'a>(object: &'a Value, pointer: &str) -> &'a str {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn created(object: &Value) -> String {
    match str_at(object, "/metadata/creationTimestamp") {
        "" => "<unknown>".to_owned(),
        time => time.to_owned(),
    }
}

fn name_line(object: &Value) -> Line {
    field("Name", name(object))
}

fn namespace_line(object: &Value) -> Line {
    field("Namespace", str_at(object, "/metadata/namespace"))
}

fn created_line(object: &Value) -> Line {
    field("Created", created(object))
}

fn labels_lines(object: &Value) -> [Line; 2] {
    [
        Line::Field("Labels", pairs(&object["metadata"]["labels"])),
        Line::Field("Annotations", pairs(&object["metadata"]["annotations"])),
    ]
}

/// Whether a role (its `kargoManaged`) or another object (its managed annotation) is Kargo's.
fn kargo_managed(kind: Kind, object: &Value) -> String {
    let managed = match kind {
        Kind::Role => object["kargoManaged"].as_bool().unwrap_or(false),
        _ => annotation(object, MANAGED_ANNOTATION) == Some(TRUE),
    };
    managed.to_string()
}

/// Whether `role` is granted to the ServiceAccount `account` (its name and namespace).
pub fn grants(role: &Value, account: &Value) -> bool {
    let (account_name, namespace) = (name(account), str_at(account, "/metadata/namespace"));
    role["serviceAccounts"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|sa| sa["name"].as_str() == Some(account_name) && sa["namespace"] == namespace)
}

/// A Kargo ServiceAccount, the roles of its project granted to it and its tokens.
pub fn service_account(account: &Value, roles: &[Value], tokens: &[Value]) -> String {
    let mut lines = vec![name_line(account), namespace_line(account)];
    lines.extend(labels_lines(account));
    lines.push(created_line(account));
    lines.push(Line::Field(
        "Roles",
        roles
            .iter()
            .filter(|r| grants(r, account))
            .map(|r| name(r).to_owned())
            .collect(),
    ));
    lines.push(Line::Table(
        "Tokens",
        &["Name", "Created"],
        tokens
            .iter()
            .map(|t| vec![name(t).to_owned(), created(t)])
            .collect(),
    ));
    render(&lines)
}

/// A Kargo ServiceAccount token: its metadata and account, never its `data`.
pub fn token(secret: &Value) -> String {
    let mut lines = vec![
        name_line(secret),
        namespace_line(secret),
        field(
            "Service Account",
            annotation(secret, SERVICE_ACCOUNT_NAME_ANNOTATION).unwrap_or(""),
        ),
        field(
            "Kargo Managed",
            kargo_managed(Kind::ServiceAccountToken, secret),
        ),
        created_line(secret),
    ];
    lines.extend(labels_lines(secret));
    render(&lines)
}

/// A rule's rows: one per resource, qualified by its API group (`stages.kargo.akuity.io`).
fn rule_rows(rule: &Value) -> Vec<Vec<String>> {
    let groups: Vec<&str> = rule["apiGroups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let groups = if groups.is_empty() { vec![""] } else { groups };
    let (names, verbs) = (bracketed(&rule["resourceNames"]), bracketed(&rule["verbs"]));
    rule["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .flat_map(|resource| {
            groups.iter().map(move |group| match *group {
                "" => resource.to_owned(),
                group => format!("{resource}.{group}"),
            })
        })
        .map(|resource| vec![resource, names.clone(), verbs.clone()])
        .collect()
}

/// A Kargo Role: whom it is granted to and its rules.
pub fn role(role: &Value) -> String {
    let namespace = str_at(role, "/metadata/namespace");
    let accounts = role["serviceAccounts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|sa| match sa["namespace"].as_str() {
            Some(ns) if ns != namespace => format!("{ns}/{}", str_at(sa, "/name")),
            _ => str_at(sa, "/name").to_owned(),
        })
        .collect();
    let claims = role["claims"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|claim| {
            let claim_name = str_at(claim, "/name");
            claim["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(move |value| format!("{claim_name}={value}"))
        })
        .collect();
    let mut lines = vec![
        name_line(role),
        namespace_line(role),
        field("Kargo Managed", kargo_managed(Kind::Role, role)),
        created_line(role),
    ];
    lines.extend(labels_lines(role));
    lines.push(Line::Field("Service Accounts", accounts));
    lines.push(Line::Field("Claims", claims));
    lines.push(Line::Table(
        "Rules",
        &["Resources", "Resource Names", "Verbs"],
        role["rules"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(rule_rows)
            .collect(),
    ));
    render(&lines)
}

/// A project, with how many Kargo ServiceAccounts and roles it has.
pub fn project(project: &Value, service_accounts: usize, roles: usize) -> String {
    let mut lines = vec![name_line(project), created_line(project)];
    lines.extend(labels_lines(project));
    if let Some(phase) = project["status"]["phase"].as_str() {
        lines.push(field("Phase", phase));
    }
    lines.push(field("Service Accounts", service_accounts.to_string()));
    lines.push(field("Roles", roles.to_string()));
    render(&lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(actual: &str, expected: &str) {
        assert_eq!(
            actual, expected,
            "\n--- expected ---\n{expected}--- actual ---\n{actual}"
        );
    }

    fn meta(name: &str) -> Value {
        json!({
            "name": name,
            "namespace": "p",
            "creationTimestamp": "2025-06-01T12:00:00Z",
            "annotations": {"rbac.kargo.akuity.io/managed": "true"},
        })
    }

    #[test]
    fn a_service_account_shows_the_roles_granted_to_it_and_its_tokens() {
        let account = json!({"metadata": meta("my-sa")});
        let roles = [
            json!({"metadata": meta("developer"), "serviceAccounts": [{"name": "my-sa", "namespace": "p"}]}),
            json!({"metadata": meta("other"), "serviceAccounts": [{"name": "my-sa", "namespace": "q"}]}),
            json!({"metadata": meta("viewer"), "serviceAccounts": [{"name": "my-sa", "namespace": "p"}]}),
        ];
        let tokens = [json!({"metadata": meta("my-sa-token")})];
        check(
            &service_account(&account, &roles, &tokens),
            "\
Name:         my-sa
Namespace:    p
Labels:       <none>
Annotations:  rbac.kargo.akuity.io/managed=true
Created:      2025-06-01T12:00:00Z
Roles:        developer
              viewer
Tokens:
  Name          Created
  ----          -------
  my-sa-token   2025-06-01T12:00:00Z
",
        );
        check(
            &service_account(&account, &[], &[]),
            "\
Name:         my-sa
Namespace:    p
Labels:       <none>
Annotations:  rbac.kargo.akuity.io/managed=true
Created:      2025-06-01T12:00:00Z
Roles:        <none>
Tokens:       <none>
",
        );
    }

    #[test]
    fn a_token_never_shows_its_value() {
        let secret = json!({
            "metadata": {
                "name": "t",
                "namespace": "p",
                "annotations": {"kubernetes.io/service-account.name": "my-sa"},
                "labels": {"a": "b"},
            },
            "type": "kubernetes.io/service-account-token",
            "data": {"token": "c2VjcmV0LXZhbHVl"},
            "stringData": {"token": "secret-value"},
        });
        let text = token(&secret);
        check(
            &text,
            "\
Name:             t
Namespace:        p
Service Account:  my-sa
Kargo Managed:    false
Created:          <unknown>
Labels:           a=b
Annotations:      kubernetes.io/service-account.name=my-sa
",
        );
        for secret_text in ["c2VjcmV0LXZhbHVl", "secret-value", "token:", "Data"] {
            assert!(!text.contains(secret_text), "{secret_text} in\n{text}");
        }
    }

    #[test]
    fn a_role_shows_its_accounts_claims_and_rules_as_kubectl_describe_role() {
        let object = json!({
            "metadata": meta("developer"),
            "kargoManaged": true,
            "serviceAccounts": [{"name": "my-sa", "namespace": "p"}, {"name": "x", "namespace": "q"}],
            "claims": [{"name": "email", "values": ["a@b.c", "d@e.f"]}],
            "rules": [
                {"apiGroups": ["kargo.akuity.io"], "resources": ["stages", "promotions"], "resourceNames": ["dev"], "verbs": ["get", "promote"]},
                {"apiGroups": [""], "resources": ["events"], "verbs": ["list"]},
            ],
        });
        check(
            &role(&object),
            "\
Name:              developer
Namespace:         p
Kargo Managed:     true
Created:           2025-06-01T12:00:00Z
Labels:            <none>
Annotations:       rbac.kargo.akuity.io/managed=true
Service Accounts:  my-sa
                   q/x
Claims:            email=a@b.c
                   email=d@e.f
Rules:
  Resources                    Resource Names   Verbs
  ---------                    --------------   -----
  stages.kargo.akuity.io       [dev]            [get promote]
  promotions.kargo.akuity.io   [dev]            [get promote]
  events                       []               [list]
",
        );
    }

    #[test]
    fn a_project_counts_its_accounts_and_roles() {
        let object = json!({
            "metadata": {"name": "p", "creationTimestamp": "2025-06-01T12:00:00Z"},
            "status": {"phase": "Ready"},
        });
        check(
            &project(&object, 2, 3),
            "\
Name:              p
Created:           2025-06-01T12:00:00Z
Labels:            <none>
Annotations:       <none>
Phase:             Ready
Service Accounts:  2
Roles:             3
",
        );
    }
}

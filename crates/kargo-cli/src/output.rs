//! What the CLI prints: the kinds it knows, kubectl-style tables (columns padded to the widest
//! cell + 3 spaces, the last one unpadded, ages as kubectl's `HumanDuration` from
//! `kargo_api::duration`), name lines
//! (`serviceaccount/my-sa created`) and `-o json|yaml|name|wide|jsonpath=...`.
//!
//! Everything here is pure: objects in, text out. Commands decide where the text goes.

use std::fmt::Write as _;

use kargo_api::kargo::{MANAGED_ANNOTATION, TRUE};
use kargo_api::resources::{KARGO_API_VERSION, KARGO_RBAC_API_VERSION, PROJECTS};
use kargo_api::well_known::{SERVICE_ACCOUNT_NAME_ANNOTATION, SERVICE_ACCOUNT_UID_ANNOTATION};
use serde_json::{Map, Value, json};

use crate::jsonpath::{self, JsonPathError};
use columns::CustomColumns;

pub mod columns;
pub mod describe;

/// The value of `-o/--output`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputFormat {
    /// The object (or a `List`) as JSON, indented by 4 spaces.
    Json,
    /// The object (or a `List`) as YAML.
    Yaml,
    /// `TYPE/NAME` lines.
    Name,
    /// The table with extra columns.
    Wide,
    /// A JSONPath template applied to the object (or the `List`); `jsonpath-file=FILE` reads
    /// the template from a file.
    JsonPath(String),
    /// A JSONPath template's results as a JSON array (`jsonpath-as-json=TEMPLATE`).
    JsonPathAsJson(String),
    /// A table of the given columns (`kargo get` only).
    CustomColumns(CustomColumns),
}

impl OutputFormat {
    /// Parses `json`, `yaml`, `name`, `wide`, `custom-columns=SPEC`, `jsonpath=TEMPLATE`,
    /// `jsonpath-file=FILE` or `jsonpath-as-json=TEMPLATE` (kubectl's and upstream's names).
    pub fn parse(s: &str) -> Result<OutputFormat, String> {
        match s {
            "json" => Ok(OutputFormat::Json),
            "yaml" => Ok(OutputFormat::Yaml),
            "name" => Ok(OutputFormat::Name),
            "wide" => Ok(OutputFormat::Wide),
            _ => match s.split_once('=') {
                Some(("jsonpath", template)) if !template.is_empty() => {
                    Ok(OutputFormat::JsonPath(template.to_owned()))
                }
                Some(("jsonpath-as-json", template)) if !template.is_empty() => {
                    Ok(OutputFormat::JsonPathAsJson(template.to_owned()))
                }
                Some(("jsonpath-file", file)) if !file.is_empty() => std::fs::read_to_string(file)
                    .map(|template| OutputFormat::JsonPath(template.trim_end().to_owned()))
                    .map_err(|e| format!("error reading --template {file}, {e}")),
                Some(("custom-columns", spec)) => {
                    CustomColumns::parse(spec).map(OutputFormat::CustomColumns)
                }
                _ => Err(format!(
                    "unknown output format {s:?} (use json, yaml, name, wide, custom-columns=SPEC or jsonpath=TEMPLATE)"
                )),
            },
        }
    }
}

/// The value of `-o/--output` of `kargo create serviceaccounttoken`: the formats of
/// [`OutputFormat`] (the created Secret), or the token ready to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenOutput {
    /// The created Secret in one of the usual formats.
    Object(OutputFormat),
    /// A kubeconfig for kubectl and client libraries (`crate::credentials::kubeconfig`).
    Kubeconfig,
    /// The `KARGO_*` variables a CI job sets (`crate::credentials::env_lines`).
    Env,
}

impl TokenOutput {
    /// Parses `kubeconfig`, `env`, or one of [`OutputFormat::parse`]'s values.
    pub fn parse(s: &str) -> Result<TokenOutput, String> {
        match s {
            "kubeconfig" => Ok(TokenOutput::Kubeconfig),
            "env" => Ok(TokenOutput::Env),
            _ => OutputFormat::parse(s).map(TokenOutput::Object).map_err(|_| {
                format!(
                    "unknown output format {s:?} (use kubeconfig, env, json, yaml, name or jsonpath=TEMPLATE)"
                )
            }),
        }
    }
}

/// The kinds of object the CLI prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A Kargo project (`kargo.akuity.io/v1alpha1`, cluster-scoped).
    Project,
    /// A Kargo ServiceAccount (a labeled Kubernetes ServiceAccount).
    ServiceAccount,
    /// A Kargo ServiceAccount token (a labeled `kubernetes.io/service-account-token` Secret).
    ServiceAccountToken,
    /// A Kargo Role (ServiceAccount + Role + RoleBinding).
    Role,
    /// A Kargo Role's API token (a `kubernetes.io/service-account-token` Secret labeled
    /// `rbac.kargo.akuity.io/api-token`, upstream Kargo's `token`).
    ApiToken,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Project,
    Name,
    Phase,
    ServiceAccount,
    /// The role of an API token: the ServiceAccount it is bound to.
    Role,
    KargoManaged,
    Age,
    ServiceAccountUid,
    Created,
    ServiceAccounts,
    Claims,
    Labels,
    /// A token's `kargo.akuity.io/expires-at`: `never`, `in 3h`, `expired` (`-o wide`).
    Expires,
    /// A token's `kargo.akuity.io/last-used-at`: `never`, `3m`, `2d` (`-o wide`).
    LastUsed,
    /// A token's state: `active`, `disabled`, `rotating (old value valid 5h)` (`-o wide`).
    State,
    /// A token's `kargo.akuity.io/description` (`-o wide`).
    Description,
}

impl Column {
    fn header(self) -> &'static str {
        match self {
            Column::Project => "PROJECT",
            Column::ServiceAccountUid => "SERVICE ACCOUNT UID",
            Column::Created => "CREATED",
            Column::ServiceAccounts => "SERVICE ACCOUNTS",
            Column::Claims => "CLAIMS",
            Column::Labels => "LABELS",
            Column::Name => "NAME",
            Column::Phase => "PHASE",
            Column::ServiceAccount => "SERVICE ACCOUNT",
            Column::Role => "ROLE",
            Column::KargoManaged => "KARGO MANAGED",
            Column::Age => "AGE",
            Column::Expires => "EXPIRES",
            Column::LastUsed => "LAST USED",
            Column::State => "STATE",
            Column::Description => "DESCRIPTION",
        }
    }
}

impl Kind {
    /// The `TYPE` of name lines: `serviceaccount`, `role.rbac.kargo.akuity.io`, ...
    pub fn qualified(self) -> &'static str {
        match self {
            Kind::Project => "project.kargo.akuity.io",
            Kind::ServiceAccount => "serviceaccount",
            Kind::ServiceAccountToken => "serviceaccounttoken.kargo.akuity.io",
            Kind::Role => "role.rbac.kargo.akuity.io",
            // Upstream prints a token Secret's name line (`secret/my-token deleted`).
            Kind::ApiToken => "secret",
        }
    }

    /// The plural the user types (`kargo get serviceaccounttokens`), as errors name it.
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Project => "projects",
            Kind::ServiceAccount => "serviceaccounts",
            Kind::ServiceAccountToken => "serviceaccounttokens",
            Kind::Role => "roles",
            Kind::ApiToken => "tokens",
        }
    }

    /// The plural of the Kubernetes object the server looks up first for this kind, which its
    /// "not found" names: a token is a Secret, a role's first object its ServiceAccount.
    fn underlying_plural(self) -> &'static str {
        match self {
            Kind::ServiceAccountToken | Kind::ApiToken => "secrets",
            Kind::Role => "serviceaccounts",
            other => other.plural(),
        }
    }

    /// The server's `<plural> "NAME" not found` about the object under a `NAME` of this kind,
    /// named as the user typed it: `serviceaccounttokens "t" not found` rather than
    /// `secrets "t" not found`, `roles "r" not found` rather than `serviceaccounts "r" not
    /// found`. Any other message is kept.
    pub fn not_found_as_typed(self, name: &str, message: &str) -> Option<String> {
        let server = format!("{} {name:?} not found", self.underlying_plural());
        (message == server && self.underlying_plural() != self.plural())
            .then(|| format!("{} {name:?} not found", self.plural()))
    }

    /// `apiVersion` and `kind` of the objects as printed by `-o json|yaml`.
    pub fn type_meta(self) -> (&'static str, &'static str) {
        match self {
            Kind::Project => (KARGO_API_VERSION, PROJECTS.kind),
            Kind::ServiceAccount => ("v1", "ServiceAccount"),
            Kind::ServiceAccountToken | Kind::ApiToken => ("v1", "Secret"),
            Kind::Role => (KARGO_RBAC_API_VERSION, "Role"),
        }
    }

    fn columns(self, wide: bool) -> &'static [Column] {
        use Column::*;
        match (self, wide) {
            (Kind::Project, _) => &[Name, Phase, Age],
            (Kind::ServiceAccount, false) => &[Name, Age],
            (Kind::ServiceAccount, true) => &[Name, KargoManaged, Age],
            (Kind::ServiceAccountToken, false) => &[Name, ServiceAccount, KargoManaged, Age],
            (Kind::ServiceAccountToken, true) => &[
                Name,
                ServiceAccount,
                KargoManaged,
                Age,
                ServiceAccountUid,
                Created,
                Expires,
                LastUsed,
                State,
                Description,
            ],
            (Kind::ApiToken, false) => &[Name, Role, KargoManaged, Age],
            (Kind::ApiToken, true) => &[
                Name,
                Role,
                KargoManaged,
                Age,
                ServiceAccountUid,
                Created,
                Expires,
                LastUsed,
                State,
                Description,
            ],
            (Kind::Role, false) => &[Name, KargoManaged, Age],
            (Kind::Role, true) => &[Name, KargoManaged, Age, ServiceAccounts, Claims],
        }
    }

    fn cell(self, column: Column, object: &Value, now_ms: i64) -> String {
        let or_none = |s: String| {
            if s.is_empty() {
                columns::NONE.to_owned()
            } else {
                s
            }
        };
        match column {
            Column::Project => object["metadata"]["namespace"]
                .as_str()
                .unwrap_or("")
                .to_owned(),
            Column::ServiceAccountUid => or_none(
                annotation(object, SERVICE_ACCOUNT_UID_ANNOTATION)
                    .unwrap_or("")
                    .to_owned(),
            ),
            Column::Created => or_none(
                object["metadata"]["creationTimestamp"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
            ),
            Column::ServiceAccounts => or_none(
                object["serviceAccounts"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|sa| sa["name"].as_str())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            Column::Claims => or_none(
                object["claims"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|claim| {
                        let name = claim["name"].as_str().unwrap_or("");
                        claim["values"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(Value::as_str)
                            .map(move |v| format!("{name}={v}"))
                    })
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            Column::Labels => columns::labels(object),
            Column::Name => name(object).to_owned(),
            Column::Phase => object["status"]["phase"].as_str().unwrap_or("").to_owned(),
            Column::ServiceAccount | Column::Role => {
                annotation(object, SERVICE_ACCOUNT_NAME_ANNOTATION)
                    .unwrap_or("")
                    .to_owned()
            }
            Column::KargoManaged => {
                let managed = match self {
                    Kind::Role => object["kargoManaged"].as_bool().unwrap_or(false),
                    _ => annotation(object, MANAGED_ANNOTATION) == Some(TRUE),
                };
                managed.to_string()
            }
            Column::Age => match created_ms(object) {
                // Go truncates toward zero, as integer division does: -1.5s is -1s.
                Some(created) => kargo_api::duration::human_duration((now_ms - created) / 1000),
                None => "<unknown>".to_owned(),
            },
            Column::State => kargo_api::token_lifecycle::describe_state(
                |key| annotation(object, key),
                now_ms.div_euclid(1000),
            ),
            Column::Description => or_none(
                annotation(object, kargo_api::kargo::DESCRIPTION_ANNOTATION)
                    .unwrap_or("")
                    .to_owned(),
            ),
            Column::Expires => kargo_api::expiry::describe(
                annotation(object, kargo_api::expiry::EXPIRES_AT_ANNOTATION),
                now_ms.div_euclid(1000),
            ),
            Column::LastUsed => kargo_api::last_used::describe(
                annotation(object, kargo_api::last_used::LAST_USED_AT_ANNOTATION),
                now_ms.div_euclid(1000),
            ),
        }
    }
}

/// `metadata.name`, or `""`.
pub fn name(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or("")
}

fn annotation<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object["metadata"]["annotations"][key].as_str()
}

/// `metadata.creationTimestamp` in milliseconds since the epoch.
fn created_ms(object: &Value) -> Option<i64> {
    let time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time =
        serde_json::from_value(object["metadata"]["creationTimestamp"].clone()).ok()?;
    Some(time.0.as_millisecond())
}

/// Now, in milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Lays out rows like kubectl's tab writer: each column as wide as its widest cell plus 3
/// spaces, the last column unpadded.
pub fn table(headers: Option<&[&str]>, rows: &[Vec<String>]) -> String {
    let mut all: Vec<Vec<&str>> = Vec::new();
    if let Some(headers) = headers {
        all.push(headers.to_vec());
    }
    all.extend(rows.iter().map(|r| r.iter().map(String::as_str).collect()));
    let columns = all.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            all.iter()
                .filter_map(|row| row.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in &all {
        for (c, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if c + 1 < row.len() {
                let pad = widths[c] + 3 - cell.chars().count();
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    }
    out
}

/// The object with `apiVersion` and `kind` first (filled in when the server left them out).
pub fn with_type_meta(kind: Kind, object: &Value) -> Value {
    let (api_version, kind_name) = kind.type_meta();
    let mut map = Map::new();
    let fields = object.as_object();
    let given = |key: &str| fields.and_then(|f| f.get(key)).filter(|v| !v.is_null());
    map.insert(
        "apiVersion".into(),
        given("apiVersion").cloned().unwrap_or(json!(api_version)),
    );
    map.insert(
        "kind".into(),
        given("kind").cloned().unwrap_or(json!(kind_name)),
    );
    for (key, value) in fields.into_iter().flatten() {
        if key != "apiVersion" && key != "kind" {
            map.insert(key.clone(), value.clone());
        }
    }
    Value::Object(map)
}

/// What `kargo get` asked for, which decides the shape of `-o json|yaml|jsonpath`: kubectl
/// prints the object itself only for one name, and a `List` otherwise, whatever the count (so
/// `{.items[*]...}` works with one item too; upstream kargo prints a bare object then).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `kargo get KIND NAME`: the object.
    One,
    /// `kargo get KIND` or several names: a `List`.
    List,
}

/// The object itself for [`Shape::One`]; a `v1` `List` otherwise, like kubectl.
pub fn document(kind: Kind, objects: &[Value], shape: Shape) -> Value {
    match (shape, objects) {
        (Shape::One, [one]) => with_type_meta(kind, one),
        _ => json!({
            "apiVersion": "v1",
            "items": objects.iter().map(|o| with_type_meta(kind, o)).collect::<Vec<_>>(),
            "kind": "List",
            "metadata": {"resourceVersion": ""},
        }),
    }
}

/// `[a b]`, as kubectl prints a list of strings (Go's `%v` of a `[]string`).
pub fn bracketed(values: &Value) -> String {
    let items: Vec<&str> = values
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    format!("[{}]", items.join(" "))
}

/// JSON the way kubectl prints it: indented by 4 spaces, ending with a newline.
pub fn to_json(value: &Value) -> String {
    let mut buf = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut buf, formatter);
    // Serializing a `Value` into memory cannot fail.
    let _ = serde::Serialize::serialize(value, &mut serializer);
    let mut text = String::from_utf8_lossy(&buf).into_owned();
    text.push('\n');
    text
}

/// The table flags of `kargo get`, besides `-o`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableOptions {
    /// `--no-headers`: no header row.
    pub no_headers: bool,
    /// `--show-labels`: a last `LABELS` column.
    pub show_labels: bool,
    /// `-A/--all-projects`: a first `PROJECT` column (the object's namespace).
    pub project_column: bool,
    /// `--show-managed-fields`: keep `metadata.managedFields` in `-o json|yaml|jsonpath`
    /// (left out otherwise, as kubectl does).
    pub show_managed_fields: bool,
}

/// The text `kargo get` prints for these objects (empty for no objects in a table or as names,
/// and for a missing object of [`Shape::One`]).
pub fn render_list(
    kind: Kind,
    objects: &[Value],
    shape: Shape,
    format: Option<&OutputFormat>,
    options: TableOptions,
    now_ms: i64,
) -> Result<String, JsonPathError> {
    match format {
        None | Some(OutputFormat::Wide) | Some(OutputFormat::CustomColumns(_))
            if objects.is_empty() =>
        {
            Ok(String::new())
        }
        None | Some(OutputFormat::Wide) => {
            let mut columns = Vec::new();
            if options.project_column {
                columns.push(Column::Project);
            }
            columns.extend(kind.columns(format == Some(&OutputFormat::Wide)));
            if options.show_labels {
                columns.push(Column::Labels);
            }
            let headers: Vec<&str> = columns.iter().map(|c| c.header()).collect();
            let rows: Vec<Vec<String>> = objects
                .iter()
                .map(|o| columns.iter().map(|c| kind.cell(*c, o, now_ms)).collect())
                .collect();
            Ok(table((!options.no_headers).then_some(&headers[..]), &rows))
        }
        Some(OutputFormat::CustomColumns(custom)) => {
            let rows: Vec<Vec<String>> = objects.iter().map(|o| custom.row(o)).collect();
            let headers = custom.headers();
            Ok(table((!options.no_headers).then_some(&headers[..]), &rows))
        }
        Some(OutputFormat::Name) => Ok(objects.iter().fold(String::new(), |mut out, o| {
            let _ = writeln!(out, "{}/{}", kind.qualified(), name(o));
            out
        })),
        Some(_) if shape == Shape::One && objects.is_empty() => Ok(String::new()),
        Some(other) => {
            let mut document = document(kind, objects, shape);
            if !options.show_managed_fields {
                omit_managed_fields(&mut document);
            }
            render_document(&document, other)
        }
    }
}

/// Removes `metadata.managedFields` from an object, or from each item of a `List`, as kubectl
/// prints objects unless `--show-managed-fields`.
pub fn omit_managed_fields(document: &mut Value) {
    let omit = |object: &mut Value| {
        if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            metadata.remove("managedFields");
        }
    };
    match document.get_mut("items").and_then(Value::as_array_mut) {
        Some(items) => items.iter_mut().for_each(omit),
        None => omit(document),
    }
}

/// The text a command that changed one object prints: `TYPE/NAME VERB`, `TYPE/NAME` with
/// `-o name` (kubectl's), or the object itself with `-o json|yaml|jsonpath=...` (without its
/// `managedFields`, as kubectl prints it).
pub fn render_changed(
    kind: Kind,
    object: &Value,
    object_name: &str,
    verb: &str,
    format: Option<&OutputFormat>,
) -> Result<String, JsonPathError> {
    match format {
        None | Some(OutputFormat::Wide) | Some(OutputFormat::CustomColumns(_)) => {
            Ok(format!("{}/{object_name} {verb}\n", kind.qualified()))
        }
        Some(OutputFormat::Name) => Ok(format!("{}/{object_name}\n", kind.qualified())),
        Some(other) => {
            let mut document = with_type_meta(kind, object);
            omit_managed_fields(&mut document);
            render_document(&document, other)
        }
    }
}

/// A document as JSON, YAML or through a JSONPath template.
pub fn render_document(document: &Value, format: &OutputFormat) -> Result<String, JsonPathError> {
    match format {
        OutputFormat::Json => Ok(to_json(document)),
        OutputFormat::JsonPath(template) => jsonpath::render(template, document),
        OutputFormat::JsonPathAsJson(template) => jsonpath::render_as_json(template, document),
        _ => Ok(crate::yaml::to_string(document)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2025-06-01T12:00:00Z";

    fn now() -> i64 {
        created_ms(&json!({"metadata": {"creationTimestamp": NOW}})).unwrap_or(0)
    }

    fn sa(name: &str, created: &str, managed: bool) -> Value {
        let mut annotations = json!({});
        if managed {
            annotations = json!({"rbac.kargo.akuity.io/managed": "true"});
        }
        json!({"metadata": {"name": name, "creationTimestamp": created, "annotations": annotations}})
    }

    fn check(actual: &str, expected: &str) {
        assert_eq!(
            actual, expected,
            "\n--- expected ---\n{expected}--- actual ---\n{actual}"
        );
    }

    #[test]
    fn documents_leave_out_managed_fields_unless_asked_like_kubectl() {
        let managed = json!([{"manager": "kargo", "operation": "Update"}]);
        let objects = [
            json!({"metadata": {"name": "a", "managedFields": managed}}),
            json!({"metadata": {"name": "b", "managedFields": managed}}),
        ];
        let json_of = |objects: &[Value], shape, show_managed_fields| {
            let options = TableOptions {
                show_managed_fields,
                ..TableOptions::default()
            };
            let text = render_list(
                Kind::ServiceAccount,
                objects,
                shape,
                Some(&OutputFormat::Json),
                options,
                now(),
            )
            .unwrap();
            serde_json::from_str::<Value>(&text).unwrap()
        };
        let list = json_of(&objects, Shape::List, false);
        assert_eq!(list["items"][1]["metadata"], json!({"name": "b"}));
        let one = json_of(&objects[..1], Shape::One, false);
        assert_eq!(one["metadata"], json!({"name": "a"}));
        let shown = json_of(&objects[..1], Shape::One, true);
        assert_eq!(shown["metadata"]["managedFields"], managed);
        let changed = render_changed(
            Kind::ServiceAccount,
            &objects[0],
            "a",
            "created",
            Some(&OutputFormat::Json),
        )
        .unwrap();
        assert!(!changed.contains("managedFields"), "{changed}");
    }

    #[test]
    fn ages_round_toward_zero_like_go() {
        let age = |ms: i64| {
            let created = json!({"metadata": {"creationTimestamp": NOW}});
            Kind::Project.cell(Column::Age, &created, now() + ms)
        };
        assert_eq!(age(-1_500), "0s");
        assert_eq!(age(-2_000), "<invalid>");
        assert_eq!(age(330_999), "5m30s");
        assert_eq!(age(3 * 3_600_000), "3h");
    }

    #[test]
    fn tables_pad_to_the_widest_cell_plus_three_and_leave_the_last_column_bare() {
        let rows = vec![
            vec![
                "my-sa-token".into(),
                "my-sa".into(),
                "true".into(),
                "5m".into(),
            ],
            vec![
                "t".into(),
                "a-longer-account".into(),
                "false".into(),
                "3h".into(),
            ],
        ];
        check(
            &table(
                Some(&["NAME", "SERVICE ACCOUNT", "KARGO MANAGED", "AGE"]),
                &rows,
            ),
            "NAME          SERVICE ACCOUNT    KARGO MANAGED   AGE\n\
             my-sa-token   my-sa              true            5m\n\
             t             a-longer-account   false           3h\n",
        );
        check(
            &table(None, &rows[..1]),
            "my-sa-token   my-sa   true   5m\n",
        );
    }

    #[test]
    fn service_account_tables_match_the_guide() {
        let objects = [sa("my-sa", "2025-06-01T11:59:30Z", true)];
        check(
            &render_list(
                Kind::ServiceAccount,
                &objects,
                Shape::List,
                None,
                TableOptions::default(),
                now(),
            )
            .unwrap(),
            "NAME    AGE\nmy-sa   30s\n",
        );
        check(
            &render_list(
                Kind::ServiceAccount,
                &objects,
                Shape::List,
                Some(&OutputFormat::Wide),
                TableOptions::default(),
                now(),
            )
            .unwrap(),
            "NAME    KARGO MANAGED   AGE\nmy-sa   true            30s\n",
        );
        check(
            &render_list(
                Kind::ServiceAccount,
                &objects,
                Shape::List,
                None,
                TableOptions {
                    no_headers: true,
                    ..TableOptions::default()
                },
                now(),
            )
            .unwrap(),
            "my-sa   30s\n",
        );
    }

    #[test]
    fn token_tables_match_the_guide() {
        let token = json!({"metadata": {
            "name": "my-sa-token",
            "creationTimestamp": "2025-06-01T11:55:00Z",
            "annotations": {
                "kubernetes.io/service-account.name": "my-sa",
                "rbac.kargo.akuity.io/managed": "true",
            },
        }});
        check(
            &render_list(
                Kind::ServiceAccountToken,
                &[token],
                Shape::List,
                None,
                TableOptions::default(),
                now(),
            )
            .unwrap(),
            "NAME          SERVICE ACCOUNT   KARGO MANAGED   AGE\n\
             my-sa-token   my-sa             true            5m\n",
        );
    }

    #[test]
    fn api_token_tables_are_upstreams_name_role_kargo_managed_age() {
        let token = json!({"metadata": {
            "name": "my-token",
            "creationTimestamp": "2025-06-01T11:55:00Z",
            "annotations": {
                "kubernetes.io/service-account.name": "developer",
                "rbac.kargo.akuity.io/managed": "true",
            },
        }});
        check(
            &render_list(
                Kind::ApiToken,
                std::slice::from_ref(&token),
                Shape::List,
                None,
                TableOptions::default(),
                now(),
            )
            .unwrap(),
            "NAME       ROLE        KARGO MANAGED   AGE\n\
             my-token   developer   true            5m\n",
        );
        check(
            &render_list(
                Kind::ApiToken,
                &[token],
                Shape::List,
                Some(&OutputFormat::Name),
                TableOptions::default(),
                now(),
            )
            .unwrap(),
            "secret/my-token\n",
        );
    }

    #[test]
    fn wide_token_tables_show_when_each_token_expires_its_state_and_description() {
        let token = |name: &str, extra: Value| {
            let mut token = json!({"metadata": {
                "name": name,
                "creationTimestamp": "2025-06-01T11:55:00Z",
                "annotations": {
                    "kubernetes.io/service-account.name": "my-sa",
                    "rbac.kargo.akuity.io/managed": "true",
                },
            }});
            for (key, value) in extra.as_object().unwrap() {
                token["metadata"]["annotations"][key] = value.clone();
            }
            token
        };
        let tokens = [
            token("forever", json!({})),
            token(
                "later",
                json!({"kargo.akuity.io/expires-at": "2025-06-01T15:00:00Z"}),
            ),
            token(
                "gone",
                json!({"kargo.akuity.io/expires-at": "2025-06-01T11:59:59Z"}),
            ),
            token(
                "off",
                json!({"kargo.akuity.io/disabled": "true", "kargo.akuity.io/description": "deploys from CI"}),
            ),
            token(
                "new",
                json!({
                    "kargo.akuity.io/previous-token-sha256": "ab".repeat(32),
                    "kargo.akuity.io/previous-token-valid-until": "2025-06-01T17:00:00Z",
                }),
            ),
        ];
        let wide = OutputFormat::Wide;
        check(
            &render_list(
                Kind::ServiceAccountToken,
                &tokens,
                Shape::List,
                Some(&wide),
                TableOptions::default(),
                now(),
            )
            .unwrap(),
            "NAME      SERVICE ACCOUNT   KARGO MANAGED   AGE   SERVICE ACCOUNT UID   CREATED                EXPIRES   LAST USED   STATE                           DESCRIPTION\n\
             forever   my-sa             true            5m    <none>                2025-06-01T11:55:00Z   never     never       active                          <none>\n\
             later     my-sa             true            5m    <none>                2025-06-01T11:55:00Z   in 3h     never       active                          <none>\n\
             gone      my-sa             true            5m    <none>                2025-06-01T11:55:00Z   expired   never       active                          <none>\n\
             off       my-sa             true            5m    <none>                2025-06-01T11:55:00Z   never     never       disabled                        deploys from CI\n\
             new       my-sa             true            5m    <none>                2025-06-01T11:55:00Z   never     never       rotating (old value valid 5h)   <none>\n",
        );
    }

    #[test]
    fn wide_token_tables_show_when_each_token_expires_and_was_last_used() {
        let token = |name: &str, expires_at: Option<&str>, last_used_at: Option<&str>| {
            let mut token = json!({"metadata": {
                "name": name,
                "creationTimestamp": "2025-06-01T11:55:00Z",
                "annotations": {
                    "kubernetes.io/service-account.name": "my-sa",
                    "rbac.kargo.akuity.io/managed": "true",
                },
            }});
            if let Some(at) = expires_at {
                token["metadata"]["annotations"]["kargo.akuity.io/expires-at"] = json!(at);
            }
            if let Some(at) = last_used_at {
                token["metadata"]["annotations"]["kargo.akuity.io/last-used-at"] = json!(at);
            }
            token
        };
        let tokens = [
            token("forever", None, Some("2025-06-01T11:57:00Z")),
            token("later", Some("2025-06-01T15:00:00Z"), None),
            token(
                "gone",
                Some("2025-06-01T11:59:59Z"),
                Some("2025-05-30T12:00:00Z"),
            ),
        ];
        let wide = OutputFormat::Wide;
        check(
            &render_list(
                Kind::ServiceAccountToken,
                &tokens,
                Shape::List,
                Some(&wide),
                TableOptions::default(),
                now(),
            )
            .unwrap(),
            "NAME      SERVICE ACCOUNT   KARGO MANAGED   AGE   SERVICE ACCOUNT UID   CREATED                EXPIRES   LAST USED   STATE    DESCRIPTION\n\
             forever   my-sa             true            5m    <none>                2025-06-01T11:55:00Z   never     3m          active   <none>\n\
             later     my-sa             true            5m    <none>                2025-06-01T11:55:00Z   in 3h     never       active   <none>\n\
             gone      my-sa             true            5m    <none>                2025-06-01T11:55:00Z   expired   2d          active   <none>\n",
        );
    }

    #[test]
    fn role_tables_read_kargo_managed_from_the_body() {
        let roles = [
            json!({"metadata": {"name": "default", "creationTimestamp": "2025-05-30T12:00:00Z"}, "serviceAccounts": []}),
            json!({"metadata": {"name": "kargo-admin", "creationTimestamp": NOW}, "kargoManaged": true, "serviceAccounts": []}),
        ];
        check(
            &render_list(
                Kind::Role,
                &roles,
                Shape::List,
                None,
                TableOptions::default(),
                now(),
            )
            .unwrap(),
            "NAME          KARGO MANAGED   AGE\n\
             default       false           2d\n\
             kargo-admin   true            0s\n",
        );
    }

    #[test]
    fn table_options_add_project_and_labels_columns_and_wide_adds_each_kinds_columns() {
        let token = json!({"metadata": {
            "name": "t",
            "namespace": "p",
            "creationTimestamp": NOW,
            "labels": {"b": "2", "a": "1"},
            "annotations": {
                "kubernetes.io/service-account.name": "sa",
                "kubernetes.io/service-account.uid": "u-1",
            },
        }});
        let role = json!({"metadata": {"name": "dev", "namespace": "p", "creationTimestamp": NOW},
            "kargoManaged": true,
            "claims": [{"name": "groups", "values": ["devops", "qa"]}, {"name": "email", "values": ["a@b.c"]}],
            "serviceAccounts": [{"name": "x", "namespace": "p"}, {"name": "y", "namespace": "p"}]});
        let bare_role = json!({"metadata": {"name": "default", "namespace": "p", "creationTimestamp": NOW}, "serviceAccounts": []});
        let all = TableOptions {
            project_column: true,
            show_labels: true,
            ..TableOptions::default()
        };
        let wide = Some(&OutputFormat::Wide);
        /// Kind, objects, `-o`, table options, the table.
        type Case<'a> = (
            Kind,
            &'a [Value],
            Option<&'a OutputFormat>,
            TableOptions,
            &'a str,
        );
        let cases: [Case; 4] = [
            (
                Kind::ServiceAccountToken,
                std::slice::from_ref(&token),
                None,
                all,
                "PROJECT   NAME   SERVICE ACCOUNT   KARGO MANAGED   AGE   LABELS\n\
                 p         t      sa                false           0s    a=1,b=2\n",
            ),
            (
                Kind::ServiceAccountToken,
                std::slice::from_ref(&token),
                wide,
                TableOptions::default(),
                "NAME   SERVICE ACCOUNT   KARGO MANAGED   AGE   SERVICE ACCOUNT UID   CREATED                EXPIRES   LAST USED   STATE    DESCRIPTION\n\
                 t      sa                false           0s    u-1                   2025-06-01T12:00:00Z   never     never       active   <none>\n",
            ),
            (
                Kind::Role,
                &[bare_role.clone(), role.clone()],
                wide,
                TableOptions::default(),
                "NAME      KARGO MANAGED   AGE   SERVICE ACCOUNTS   CLAIMS\n\
                 default   false           0s    <none>             <none>\n\
                 dev       true            0s    x,y                groups=devops,groups=qa,email=a@b.c\n",
            ),
            (
                Kind::Project,
                &[
                    json!({"metadata": {"name": "p", "creationTimestamp": NOW}, "status": {"phase": "Ready"}}),
                ],
                wide,
                TableOptions {
                    show_labels: true,
                    no_headers: true,
                    ..TableOptions::default()
                },
                "p   Ready   0s   <none>\n",
            ),
        ];
        for (kind, objects, format, options, expected) in cases {
            check(
                &render_list(kind, objects, Shape::List, format, options, now()).unwrap(),
                expected,
            );
        }
    }

    #[test]
    fn a_missing_creation_time_prints_unknown() {
        check(
            &render_list(
                Kind::Project,
                &[json!({"metadata": {"name": "p"}})],
                Shape::List,
                None,
                TableOptions::default(),
                0,
            )
            .unwrap(),
            "NAME   PHASE   AGE\np              <unknown>\n",
        );
    }

    #[test]
    fn project_tables_show_the_phase() {
        let project = json!({"metadata": {"name": "my-project", "creationTimestamp": NOW}, "status": {"phase": "Ready"}});
        check(
            &render_list(
                Kind::Project,
                &[project],
                Shape::List,
                None,
                TableOptions::default(),
                now(),
            )
            .unwrap(),
            "NAME         PHASE   AGE\nmy-project   Ready   0s\n",
        );
    }

    #[test]
    fn empty_lists_print_nothing_as_tables_and_names_but_an_empty_list_as_yaml() {
        for format in [None, Some(OutputFormat::Wide), Some(OutputFormat::Name)] {
            check(
                &render_list(
                    Kind::Role,
                    &[],
                    Shape::List,
                    format.as_ref(),
                    TableOptions::default(),
                    0,
                )
                .unwrap(),
                "",
            );
        }
        check(
            &render_list(
                Kind::Role,
                &[],
                Shape::List,
                Some(&OutputFormat::Yaml),
                TableOptions::default(),
                0,
            )
            .unwrap(),
            "apiVersion: v1\nitems: []\nkind: List\nmetadata:\n  resourceVersion: \"\"\n",
        );
    }

    #[test]
    fn names_are_qualified_by_kind() {
        let objects = [sa("a", NOW, true), sa("b", NOW, true)];
        let cases = [
            (Kind::ServiceAccount, "serviceaccount/a\nserviceaccount/b\n"),
            (
                Kind::ServiceAccountToken,
                "serviceaccounttoken.kargo.akuity.io/a\nserviceaccounttoken.kargo.akuity.io/b\n",
            ),
            (
                Kind::Role,
                "role.rbac.kargo.akuity.io/a\nrole.rbac.kargo.akuity.io/b\n",
            ),
            (
                Kind::Project,
                "project.kargo.akuity.io/a\nproject.kargo.akuity.io/b\n",
            ),
        ];
        for (kind, expected) in cases {
            check(
                &render_list(
                    kind,
                    &objects,
                    Shape::List,
                    Some(&OutputFormat::Name),
                    TableOptions::default(),
                    0,
                )
                .unwrap(),
                expected,
            );
        }
    }

    #[test]
    fn one_name_prints_the_object_and_a_list_is_a_list_whatever_its_count() {
        let secret = json!({"metadata": {"name": "t"}, "data": {"token": "KioqIFJFREFDVEVEICoqKg=="}, "type": "kubernetes.io/service-account-token"});
        let one = std::slice::from_ref(&secret);
        check(
            &render_list(
                Kind::ServiceAccountToken,
                one,
                Shape::One,
                Some(&OutputFormat::Yaml),
                TableOptions::default(),
                0,
            )
            .unwrap(),
            "apiVersion: v1\ndata:\n  token: KioqIFJFREFDVEVEICoqKg==\nkind: Secret\nmetadata:\n  name: t\ntype: kubernetes.io/service-account-token\n",
        );
        check(
            &render_list(
                Kind::ServiceAccountToken,
                one,
                Shape::List,
                Some(&OutputFormat::JsonPath(
                    "{.kind} {.items[*].metadata.name}".into(),
                )),
                TableOptions::default(),
                0,
            )
            .unwrap(),
            "List t",
        );
        check(
            &render_list(
                Kind::ServiceAccountToken,
                &[],
                Shape::One,
                Some(&OutputFormat::Json),
                TableOptions::default(),
                0,
            )
            .unwrap(),
            "",
        );
        check(
            &render_list(
                Kind::ServiceAccount,
                &[
                    json!({"metadata": {"name": "a"}}),
                    json!({"metadata": {"name": "b"}}),
                ],
                Shape::List,
                Some(&OutputFormat::Json),
                TableOptions::default(),
                0,
            )
            .unwrap(),
            "{\n    \"apiVersion\": \"v1\",\n    \"items\": [\n        {\n            \"apiVersion\": \"v1\",\n            \"kind\": \"ServiceAccount\",\n            \"metadata\": {\n                \"name\": \"a\"\n            }\n        },\n        {\n            \"apiVersion\": \"v1\",\n            \"kind\": \"ServiceAccount\",\n            \"metadata\": {\n                \"name\": \"b\"\n            }\n        }\n    ],\n    \"kind\": \"List\",\n    \"metadata\": {\n        \"resourceVersion\": \"\"\n    }\n}\n",
        );
        check(
            &render_list(
                Kind::ServiceAccount,
                &[
                    json!({"metadata": {"name": "a"}}),
                    json!({"metadata": {"name": "b"}}),
                ],
                Shape::List,
                Some(&OutputFormat::JsonPath("{.items[*].metadata.name}".into())),
                TableOptions::default(),
                0,
            )
            .unwrap(),
            "a b",
        );
    }

    #[test]
    fn not_found_names_the_kind_the_user_typed() {
        let cases = [
            (
                Kind::ServiceAccountToken,
                "t",
                "secrets \"t\" not found",
                Some("serviceaccounttokens \"t\" not found"),
            ),
            (
                Kind::Role,
                "dev",
                "serviceaccounts \"dev\" not found",
                Some("roles \"dev\" not found"),
            ),
            (
                Kind::Role,
                "dev",
                "serviceaccounts \"my-sa\" not found",
                None,
            ),
            (
                Kind::Role,
                "dev",
                "projects.kargo.akuity.io \"dev\" not found",
                None,
            ),
            (
                Kind::ServiceAccount,
                "a",
                "serviceaccounts \"a\" not found",
                None,
            ),
        ];
        for (kind, name, message, expected) in cases {
            assert_eq!(
                kind.not_found_as_typed(name, message).as_deref(),
                expected,
                "{message}"
            );
        }
    }

    #[test]
    fn changed_objects_print_a_name_line_or_the_object() {
        let role = json!({"metadata": {"name": "developer"}, "serviceAccounts": []});
        check(
            &render_changed(Kind::Role, &role, "developer", "updated", None).unwrap(),
            "role.rbac.kargo.akuity.io/developer updated\n",
        );
        check(
            &render_changed(
                Kind::ServiceAccount,
                &role,
                "x",
                "created",
                Some(&OutputFormat::Name),
            )
            .unwrap(),
            "serviceaccount/x\n",
        );
        check(
            &render_changed(
                Kind::Role,
                &role,
                "developer",
                "updated",
                Some(&OutputFormat::Yaml),
            )
            .unwrap(),
            "apiVersion: rbac.kargo.akuity.io/v1alpha1\nkind: Role\nmetadata:\n  name: developer\nserviceAccounts: []\n",
        );
    }

    #[test]
    fn output_formats_parse_and_unknown_ones_are_named() {
        let cases = [
            ("json", Ok(OutputFormat::Json)),
            ("yaml", Ok(OutputFormat::Yaml)),
            ("name", Ok(OutputFormat::Name)),
            ("wide", Ok(OutputFormat::Wide)),
            (
                "jsonpath={.data.token}",
                Ok(OutputFormat::JsonPath("{.data.token}".into())),
            ),
            (
                "jsonpath=",
                Err(
                    "unknown output format \"jsonpath=\" (use json, yaml, name, wide, custom-columns=SPEC or jsonpath=TEMPLATE)",
                ),
            ),
            (
                "table",
                Err(
                    "unknown output format \"table\" (use json, yaml, name, wide, custom-columns=SPEC or jsonpath=TEMPLATE)",
                ),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                OutputFormat::parse(input),
                expected.map_err(str::to_owned),
                "{input}"
            );
        }
    }
}

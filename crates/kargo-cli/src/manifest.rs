//! The manifests of `kargo apply -f`: files, directories (their `*.yaml`, `*.yml` and `*.json`
//! files in name order) and standard input, split into documents (`---`; JSON is YAML) and each
//! document read as one of the objects the Kargo API manages: a `Project`, a Kargo
//! `ServiceAccount` or a Kargo `Role`. A token Secret is refused: a token is created by the
//! server, and its value never belongs in a manifest.
//!
//! Pure but for reading the files: what to send is `commands::apply`'s business.

use std::collections::BTreeMap;
use std::path::Path;

use kargo_api::kargo::{Role, SERVICE_ACCOUNT_LABEL, TRUE};
use kargo_api::resources::{KARGO_API_VERSION, KARGO_RBAC_API_VERSION, PROJECTS};
use serde::Deserialize as _;
use serde_json::Value;

use crate::cli::{self, UsageError};

/// The text of one manifest file (or of standard input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// As errors name it: the path given (or found in a directory), `STDIN` for `-`.
    pub name: String,
    /// Its text.
    pub text: String,
}

/// The sources of `-f` values, in order: a directory gives its manifest files sorted by name
/// (not its subdirectories), `-` standard input (read by `stdin`, at most once). A path that
/// cannot be read stops everything before anything is applied, as kubectl does.
pub fn read_sources(
    filenames: &[String],
    stdin: &mut dyn FnMut() -> std::io::Result<String>,
) -> Result<Vec<Source>, UsageError> {
    let mut sources = Vec::new();
    let mut stdin_read = false;
    for filename in filenames {
        if filename == "-" {
            if stdin_read {
                return Err(UsageError("-f - may be given only once".to_owned()));
            }
            stdin_read = true;
            let text = stdin()
                .map_err(|e| UsageError(format!("reading standard input: {}", plain(&e))))?;
            sources.push(Source {
                name: "STDIN".to_owned(),
                text,
            });
            continue;
        }
        let path = Path::new(filename);
        let metadata = std::fs::metadata(path)
            .map_err(|e| UsageError(format!("the path {filename:?} {}", plain_path(&e))))?;
        let files = if metadata.is_dir() {
            manifests_in(path)
                .map_err(|e| UsageError(format!("reading directory {filename:?}: {}", plain(&e))))?
        } else {
            vec![path.to_path_buf()]
        };
        for file in files {
            let name = file.display().to_string();
            let text = std::fs::read_to_string(&file)
                .map_err(|e| UsageError(format!("reading {name:?}: {}", plain(&e))))?;
            sources.push(Source { name, text });
        }
    }
    Ok(sources)
}

/// The manifest files directly in `dir`, sorted by name.
fn manifests_in(dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let is_manifest = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"));
        if is_manifest && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// An I/O error's message without the `(os error N)` Rust appends.
fn plain(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// Why a path cannot be used, as kubectl says it (`the path "x" does not exist`).
fn plain_path(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "does not exist".to_owned(),
        _ => format!("cannot be read: {}", plain(e)),
    }
}

/// One object a manifest asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    /// A Kargo `Project` (cluster-scoped); the manifest is sent as it is.
    Project {
        /// Its name.
        name: String,
        /// The whole document.
        manifest: Value,
    },
    /// A Kargo ServiceAccount: a `v1` `ServiceAccount` labeled
    /// `rbac.kargo.akuity.io/service-account: "true"`.
    ServiceAccount {
        /// Its name.
        name: String,
        /// `metadata.namespace`, if given.
        namespace: Option<String>,
        /// Its labels (the Kargo one included).
        labels: BTreeMap<String, String>,
        /// Its annotations.
        annotations: BTreeMap<String, String>,
    },
    /// A Kargo `Role` as the REST API represents it.
    Role {
        /// `metadata.namespace`, if given.
        namespace: Option<String>,
        /// The role.
        role: Box<Role>,
    },
}

#[cfg(test)]
impl Object {
    /// The object's name.
    pub fn name(&self) -> &str {
        match self {
            Object::Project { name, .. } | Object::ServiceAccount { name, .. } => name,
            Object::Role { role, .. } => role.metadata.name.as_deref().unwrap_or_default(),
        }
    }
}

/// One document of a source: the object, or why it is not one.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The source's name.
    pub source: String,
    /// Its position in the source, from 1 (empty documents count).
    pub index: usize,
    /// The object, or a one-line reason.
    pub object: Result<Object, String>,
}

impl Document {
    /// Where the document is, for errors: `roles.yaml: document 2`.
    pub fn place(&self) -> String {
        format!("{}: document {}", self.source, self.index)
    }
}

/// The documents of a source; empty ones (only comments, or nothing between two `---`) are
/// skipped. A YAML syntax error ends the source: it is the last document, with its line.
pub fn documents(source: &Source) -> Vec<Document> {
    let mut out = Vec::new();
    for (i, document) in yaml_serde::Deserializer::from_str(&source.text).enumerate() {
        let parsed = Value::deserialize(document);
        let broken = parsed.is_err();
        let object = match parsed {
            Ok(Value::Null) => continue,
            Ok(value) => object(&value),
            Err(e) => Err(format!("invalid YAML: {e}")),
        };
        out.push(Document {
            source: source.name.clone(),
            index: i + 1,
            object,
        });
        if broken {
            break;
        }
    }
    out
}

const TAKES: &str = "kargo apply takes a Project (kargo.akuity.io/v1alpha1), a ServiceAccount (v1) or a Role (rbac.kargo.akuity.io/v1alpha1)";

/// What a document asks for, from its `apiVersion` and `kind`.
pub fn object(value: &Value) -> Result<Object, String> {
    if !value.is_object() {
        return Err(format!("not an object: {TAKES}"));
    }
    let field = |key: &str| value[key].as_str().unwrap_or_default();
    let (api_version, kind) = (field("apiVersion"), field("kind"));
    if kind.is_empty() {
        return Err(format!("no kind: {TAKES}"));
    }
    if kind == "Secret" {
        return Err(
            "a Secret cannot be applied: ServiceAccount tokens are created by `kargo create serviceaccounttoken` (a token must never be in a manifest)"
                .to_owned(),
        );
    }
    let name = value["metadata"]["name"]
        .as_str()
        .map(str::trim)
        .unwrap_or_default();
    let known = matches!(
        (api_version, kind),
        (KARGO_API_VERSION, k) if k == PROJECTS.kind
    ) || matches!(
        (api_version, kind),
        ("v1", "ServiceAccount") | (KARGO_RBAC_API_VERSION, "Role")
    );
    if !known {
        return Err(format!(
            "unknown kind {kind:?} of apiVersion {api_version:?}: {TAKES}"
        ));
    }
    if name.is_empty() {
        return Err(format!("{kind} has no metadata.name"));
    }
    cli::check_name(name).map_err(|e| e.0)?;
    let namespace = value["metadata"]["namespace"]
        .as_str()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned);
    match kind {
        "ServiceAccount" => service_account(value, name, namespace),
        "Role" => {
            let mut role: Role = serde_json::from_value(value.clone())
                .map_err(|e| format!("invalid Role {name:?}: {e}"))?;
            role.metadata.name = Some(name.to_owned());
            Ok(Object::Role {
                namespace,
                role: Box::new(role),
            })
        }
        _ => Ok(Object::Project {
            name: name.to_owned(),
            manifest: value.clone(),
        }),
    }
}

fn service_account(value: &Value, name: &str, namespace: Option<String>) -> Result<Object, String> {
    let map = |key: &str| -> Result<BTreeMap<String, String>, String> {
        match &value["metadata"][key] {
            Value::Null => Ok(BTreeMap::new()),
            v => serde_json::from_value(v.clone()).map_err(|_| {
                format!("metadata.{key} of ServiceAccount {name:?} must map names to strings")
            }),
        }
    };
    let labels = map("labels")?;
    if labels.get(SERVICE_ACCOUNT_LABEL).map(String::as_str) != Some(TRUE) {
        return Err(format!(
            "ServiceAccount {name:?} is not a Kargo ServiceAccount: it needs the label {SERVICE_ACCOUNT_LABEL}: \"true\""
        ));
    }
    Ok(Object::ServiceAccount {
        name: name.to_owned(),
        namespace,
        labels,
        annotations: map("annotations")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn source(text: &str) -> Source {
        Source {
            name: "m.yaml".to_owned(),
            text: text.to_owned(),
        }
    }

    fn errors(text: &str) -> Vec<String> {
        documents(&source(text))
            .into_iter()
            .filter_map(|d| {
                d.object
                    .as_ref()
                    .err()
                    .map(|e| format!("{}: {e}", d.place()))
            })
            .collect()
    }

    #[test]
    fn each_kind_is_read_with_its_index_and_empty_documents_are_skipped() {
        let docs = documents(&source(
            "---\napiVersion: kargo.akuity.io/v1alpha1\nkind: Project\nmetadata:\n  name: p\n---\n# nothing\n---\n\
             {\"apiVersion\": \"v1\", \"kind\": \"ServiceAccount\", \"metadata\": {\"name\": \"sa\", \"namespace\": \"p\", \"labels\": {\"rbac.kargo.akuity.io/service-account\": \"true\"}}}\n---\n\
             apiVersion: rbac.kargo.akuity.io/v1alpha1\nkind: Role\nmetadata:\n  name: dev\nserviceAccounts:\n- name: sa\nrules:\n- resources: [stages]\n  verbs: [get]\n",
        ));
        let got: Vec<(usize, String)> = docs
            .iter()
            .map(|d| (d.index, d.object.as_ref().unwrap().name().to_owned()))
            .collect();
        assert_eq!(got, [(1, "p".into()), (3, "sa".into()), (4, "dev".into())]);
        match &docs[2].object {
            Ok(Object::Role { namespace, role }) => {
                assert_eq!(namespace, &None);
                assert_eq!(role.service_accounts[0].name, "sa");
                assert_eq!(role.rules[0].verbs, ["get"]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_bad_document_says_why_in_one_line_and_never_shows_a_secret() {
        assert_eq!(
            errors("kind: Foo\napiVersion: x/v1\nmetadata:\n  name: a\n"),
            [
                "m.yaml: document 1: unknown kind \"Foo\" of apiVersion \"x/v1\": kargo apply takes a Project (kargo.akuity.io/v1alpha1), a ServiceAccount (v1) or a Role (rbac.kargo.akuity.io/v1alpha1)"
            ]
        );
        assert_eq!(
            errors("apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: a\n")
                .len(),
            1
        );
        assert_eq!(
            errors("apiVersion: v1\nkind: ServiceAccount\nmetadata: {}\n"),
            ["m.yaml: document 1: ServiceAccount has no metadata.name"]
        );
        assert_eq!(
            errors("apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: sa\n"),
            [
                "m.yaml: document 1: ServiceAccount \"sa\" is not a Kargo ServiceAccount: it needs the label rbac.kargo.akuity.io/service-account: \"true\""
            ]
        );
        let secret = errors(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: t\ndata:\n  token: c2VjcmV0LXZhbHVl\n",
        );
        assert_eq!(secret.len(), 1);
        assert!(
            secret[0].contains("kargo create serviceaccounttoken"),
            "{secret:?}"
        );
        assert!(!secret[0].contains("c2VjcmV0"), "{secret:?}");
    }

    #[test]
    fn a_yaml_syntax_error_names_its_line_and_ends_the_source() {
        let got = errors("apiVersion: v1\nkind: [\n---\nkind: Foo\n");
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].starts_with("m.yaml: document 1: invalid YAML: "),
            "{got:?}"
        );
        assert!(got[0].contains("line "), "{got:?}");
    }

    #[test]
    fn a_project_keeps_its_whole_manifest() {
        let value = json!({"apiVersion": "kargo.akuity.io/v1alpha1", "kind": "Project", "metadata": {"name": " p "}, "spec": {"x": 1}});
        assert_eq!(
            object(&value),
            Ok(Object::Project {
                name: "p".into(),
                manifest: value.clone()
            })
        );
    }

    #[test]
    fn a_directory_gives_its_manifests_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.yml", "a.yaml", "c.json", "notes.txt"] {
            std::fs::write(dir.path().join(name), name).unwrap();
        }
        std::fs::create_dir(dir.path().join("d.yaml")).unwrap();
        let given = vec![dir.path().display().to_string()];
        let got: Vec<String> = read_sources(&given, &mut || Ok(String::new()))
            .unwrap()
            .into_iter()
            .map(|s| s.text)
            .collect();
        assert_eq!(got, ["a.yaml", "b.yml", "c.json"]);
        let missing = vec!["/nonexistent/x.yaml".to_owned()];
        assert_eq!(
            read_sources(&missing, &mut || Ok(String::new()))
                .unwrap_err()
                .0,
            "the path \"/nonexistent/x.yaml\" does not exist"
        );
    }
}

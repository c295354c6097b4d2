//! Kubernetes API machinery for Kargo ServiceAccounts, with no IO.
//!
//! The API server (and partly the CLI) uses these pieces to answer exactly like kube-apiserver
//! (Kubernetes 1.32/1.33):
//!
//! - [`duration`]: ages as kubectl prints them (`5m30s`).
//! - [`federation`]: the outside identities (CI OIDC tokens) a ServiceAccount trusts, parsed,
//!   validated and matched.
//! - [`expiry`]: token expiry: the `kargo.akuity.io/expires-at` annotation and lifetimes (`90d`).
//! - [`last_used`]: when a token was last used: `kargo.akuity.io/last-used-at`/`-from` and
//!   Kubernetes' `kubernetes.io/legacy-token-last-used` label.
//! - [`field`]: field errors ([`field::FieldError`]) rendered as Go's `field.Error`, their
//!   `Status` causes, and the message of a 422 `Invalid` ([`field::invalid_message`]).
//! - [`names`]: name, label and annotation rules with Kubernetes' messages, `ObjectMeta`
//!   validation on create and update, and `generateName` expansion.
//! - [`selector`]: label selectors (`?labelSelector=`, `metav1.LabelSelector`) and field
//!   selectors (`?fieldSelector=`), parsed, printed and matched like `k8s.io/apimachinery`.
//! - [`request_info`]: what a request path asks for (verb, resource, namespace, name), as
//!   kube-apiserver derives it.
//! - [`resources`]: the table of resource types the server serves (discovery, keys, routing).
//! - [`kargo`]: Kargo's labels and annotations, and the bodies and paths of the Kargo REST API.
//! - [`well_known`]: Kubernetes' own well-known annotations, labels and Secret types.
//! - [`json`]: JSON decoding that reports duplicate fields for field validation.
//! - [`limits`]: the largest and deepest object the server stores, and iterative measures of a
//!   value against them.
//! - [`yaml`]: YAML documents to JSON, refusing nesting its scanner would take quadratic time on.
//! - [`kubeconfig`]: kubeconfigs of one cluster, user and context (the admin's, a token's), as
//!   values.
//! - [`version`]: the build (Kargo version, git commit) and the `/version` document.
//! - [`crd`]: the schemas of Kargo's kinds (upstream Kargo's CRDs, vendored in `crds/`) and
//!   the pruning of fields they do not declare.
//! - [`patch`]: JSON merge patch, JSON patch and strategic merge patch, with how each failure
//!   maps to a kube-apiserver `Status` ([`patch::PatchError`]).
//!
//! Dependencies are data-only: `serde`/`serde_json` for objects, `k8s-openapi` for the typed
//! `ObjectMeta` and `LabelSelector`, `json-patch` for RFC 6902, `thiserror`. This crate does
//! no IO: no tokio, axum, rusqlite or etcd (check with `cargo tree -p kargo-api`). It does not
//! build HTTP responses either; the server turns these errors into `Status` objects.

pub mod crd;
pub mod duration;
pub mod expiry;
pub mod federation;
pub mod field;
pub mod json;
pub mod kargo;
pub mod kubeconfig;
pub mod last_used;
pub mod limits;
pub mod names;
pub mod patch;
pub mod request_info;
pub mod resources;
pub mod selector;
pub mod token_lifecycle;
pub mod version;
pub mod well_known;
pub mod yaml;

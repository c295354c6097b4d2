//! Kubernetes name rules and `ObjectMeta` validation, with Kubernetes' exact messages.
//!
//! The checks mirror `k8s.io/apimachinery/pkg/util/validation` (`IsDNS1123Subdomain`,
//! `IsDNS1123Label`, `IsQualifiedName`, `IsValidLabelValue`), `.../api/validation/path`
//! (`ValidatePathSegmentName`) and `.../api/validation` (`ValidateObjectMeta`,
//! `ValidateObjectMetaUpdate`) plus the finalizer check that the core API group adds. Each `is_*`
//! function returns the list of messages, empty when the value is valid; the regular expressions
//! are implemented by hand. [`generate_name`] is the server's `generateName` expansion.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};

use crate::field::{BadValue, FieldError};

/// Longest DNS-1123 label (`must be no more than 63 characters`).
pub const DNS1123_LABEL_MAX_LENGTH: usize = 63;
/// Longest DNS-1123 subdomain.
pub const DNS1123_SUBDOMAIN_MAX_LENGTH: usize = 253;
/// Longest name part of a qualified name (label and annotation keys).
pub const QUALIFIED_NAME_MAX_LENGTH: usize = 63;
/// Longest label value.
pub const LABEL_VALUE_MAX_LENGTH: usize = 63;
/// Largest total size of an object's annotations, keys plus values, in bytes (256 KiB).
pub const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;
/// How much of `generateName` is kept before the random suffix.
pub const MAX_GENERATED_NAME_LENGTH: usize = 58;
/// Length of the random suffix of a generated name.
pub const GENERATED_SUFFIX_LENGTH: usize = 5;
/// The characters of a generated suffix (Kubernetes' `utilrand` alphabet, no vowels).
pub const GENERATED_NAME_ALPHABET: &str = "bcdfghjklmnpqrstvwxz2456789";

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_ERR: &str = "a lowercase RFC 1123 label must consist of lower case \
     alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR: &str = "a lowercase RFC 1123 subdomain must consist of lower case \
     alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_ERR: &str = "must consist of alphanumeric characters, '-', '_' or '.', and \
     must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR: &str = "a valid label must be an empty string or consist of alphanumeric \
     characters, '-', '_' or '.', and must start and end with an alphanumeric character";

/// `must be no more than N characters` (Go's `MaxLenError`).
fn max_len_error(length: usize) -> String {
    format!("must be no more than {length} characters")
}

/// Go's `RegexError`: `msg (e.g. 'a',  or 'b', regex used for validation is 'fmt')`.
fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let mut s = format!("{msg} (e.g. ");
    for (i, example) in examples.iter().enumerate() {
        if i > 0 {
            s.push_str(" or ");
        }
        s.push('\'');
        s.push_str(example);
        s.push_str("', ");
    }
    s.push_str("regex used for validation is '");
    s.push_str(fmt);
    s.push_str("')");
    s
}

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
fn matches_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(&first), Some(&last)) => {
            is_lower_alnum(first)
                && is_lower_alnum(last)
                && b.iter().all(|&c| is_lower_alnum(c) || c == b'-')
        }
        _ => false,
    }
}

/// `^label(\.label)*$`
fn matches_dns1123_subdomain(s: &str) -> bool {
    s.split('.').all(matches_dns1123_label)
}

/// `^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`
fn matches_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && b.iter()
                    .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// Kubernetes' `IsDNS1123Label`: a lowercase RFC 1123 label, at most 63 characters.
pub fn is_dns1123_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_LABEL_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_LABEL_MAX_LENGTH));
    }
    if !matches_dns1123_label(value) {
        if matches_dns1123_subdomain(value) {
            // A valid subdomain but not a label: it has dots.
            errs.push("must not contain dots".to_string());
        } else {
            errs.push(regex_error(
                DNS1123_LABEL_ERR,
                DNS1123_LABEL_FMT,
                &["my-name", "123-abc"],
            ));
        }
    }
    errs
}

/// Kubernetes' `IsConfigMapKey`: a key of a ConfigMap's or Secret's `data`.
pub fn is_config_map_key(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 253 {
        errs.push(max_len_error(253));
    }
    let valid = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !valid {
        errs.push(regex_error(
            "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
            "[-._a-zA-Z0-9]+",
            &["key.name", "KEY_NAME", "key-name"],
        ));
    }
    if value == "." {
        errs.push("must not be '.'".to_owned());
    } else if value == ".." {
        errs.push("must not be '..'".to_owned());
    } else if value.starts_with("..") {
        errs.push("must not start with '..'".to_owned());
    }
    errs
}

/// Kubernetes' `IsDNS1123Subdomain`: a lowercase RFC 1123 subdomain, at most 253 characters.
pub fn is_dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    if !matches_dns1123_subdomain(value) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_ERR,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// Kubernetes' `IsValidPathSegmentName` (RBAC object names): not `.` or `..`, no `/` or `%`.
pub fn is_valid_path_segment_name(name: &str) -> Vec<String> {
    for illegal in [".", ".."] {
        if name == illegal {
            return vec![format!("may not be '{illegal}'")];
        }
    }
    is_valid_path_segment_prefix(name)
}

/// Kubernetes' `IsValidPathSegmentPrefix` (a `generateName` of an RBAC object): no `/` or `%`.
pub fn is_valid_path_segment_prefix(name: &str) -> Vec<String> {
    ["/", "%"]
        .iter()
        .filter(|illegal| name.contains(*illegal))
        .map(|illegal| format!("may not contain '{illegal}'"))
        .collect()
}

/// Kubernetes' `IsQualifiedName` (label and annotation keys, finalizers): an optional DNS
/// subdomain prefix and `/`, then a name part of at most 63 characters.
pub fn is_qualified_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                errs.extend(
                    is_dns1123_subdomain(prefix)
                        .into_iter()
                        .map(|msg| format!("prefix part {msg}")),
                );
            }
            *name
        }
        _ => {
            return vec![format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(
                    QUALIFIED_NAME_ERR,
                    QUALIFIED_NAME_FMT,
                    &["MyName", "my.name", "123-abc"]
                )
            )];
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > QUALIFIED_NAME_MAX_LENGTH {
        errs.push(format!(
            "name part {}",
            max_len_error(QUALIFIED_NAME_MAX_LENGTH)
        ));
    }
    if !matches_qualified_name_part(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_ERR,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// Kubernetes' `IsValidLabelValue`: empty, or a qualified-name part of at most 63 characters.
pub fn is_valid_label_value(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > LABEL_VALUE_MAX_LENGTH {
        errs.push(max_len_error(LABEL_VALUE_MAX_LENGTH));
    }
    if !(value.is_empty() || matches_qualified_name_part(value)) {
        errs.push(regex_error(
            LABEL_VALUE_ERR,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// The naming rule of a kind (Go's `ValidateNameFunc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameCheck {
    /// `NameIsDNSSubdomain`: ServiceAccount, Secret, ConfigMap, most kinds.
    DnsSubdomain,
    /// `NameIsDNSLabel`: Namespace.
    DnsLabel,
    /// `ValidatePathSegmentName`: Role, RoleBinding, ClusterRole, ClusterRoleBinding.
    PathSegment,
}

impl NameCheck {
    /// Check a name, or with `prefix` a `generateName` (whose trailing `-` is allowed).
    pub fn check(self, name: &str, prefix: bool) -> Vec<String> {
        match self {
            NameCheck::DnsSubdomain if prefix => is_dns1123_subdomain(&mask_trailing_dash(name)),
            NameCheck::DnsSubdomain => is_dns1123_subdomain(name),
            NameCheck::DnsLabel if prefix => is_dns1123_label(&mask_trailing_dash(name)),
            NameCheck::DnsLabel => is_dns1123_label(name),
            NameCheck::PathSegment if prefix => is_valid_path_segment_prefix(name),
            NameCheck::PathSegment => is_valid_path_segment_name(name),
        }
    }
}

/// Go's `maskTrailingDash`: a prefix ending in `-` has its last two bytes replaced by `a`.
fn mask_trailing_dash(name: &str) -> String {
    let b = name.as_bytes();
    if b.len() > 1 && b.ends_with(b"-") {
        let mut masked = b[..b.len() - 2].to_vec();
        masked.push(b'a');
        String::from_utf8_lossy(&masked).into_owned()
    } else {
        name.to_string()
    }
}

/// `ValidateLabels`: every key a qualified name, every value a label value; errors are reported
/// at `path` itself (`metadata.labels`), keys in sorted order.
pub fn validate_labels(labels: &BTreeMap<String, String>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (k, v) in labels {
        for msg in is_qualified_name(k) {
            errs.push(FieldError::invalid(path, BadValue::string(k), msg));
        }
        for msg in is_valid_label_value(v) {
            errs.push(FieldError::invalid(path, BadValue::string(v), msg));
        }
    }
    errs
}

/// `ValidateAnnotations`: every key a qualified name (compared in lower case), and keys plus
/// values at most [`TOTAL_ANNOTATION_SIZE_LIMIT`] bytes in all.
pub fn validate_annotations(annotations: &BTreeMap<String, String>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for k in annotations.keys() {
        for msg in is_qualified_name(&k.to_lowercase()) {
            errs.push(FieldError::invalid(path, BadValue::string(k), msg));
        }
    }
    let total: usize = annotations.iter().map(|(k, v)| k.len() + v.len()).sum();
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(FieldError::too_long(
            path,
            Some(TOTAL_ANNOTATION_SIZE_LIMIT),
        ));
    }
    errs
}

/// `schema.ParseGroupVersion`: `(group, version)`, or `None` for more than one `/`.
fn parse_group_version(api_version: &str) -> Option<(&str, &str)> {
    if api_version.is_empty() || api_version == "/" {
        return Some(("", ""));
    }
    match api_version.matches('/').count() {
        0 => Some(("", api_version)),
        1 => api_version.split_once('/'),
        _ => None,
    }
}

/// A `*bool` as `%#v` prints it (the address is not reproducible; a fixed one stands in).
fn go_bool_ptr(b: Option<bool>) -> &'static str {
    match b {
        None => "(*bool)(nil)",
        Some(_) => "(*bool)(0xc000000000)",
    }
}

/// `ValidateOwnerReferences`, errors at `path.apiVersion` etc. (no index, as Kubernetes does).
pub fn validate_owner_references(refs: &[OwnerReference], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut first_controller = String::new();
    for r in refs {
        let (group, version) = parse_group_version(&r.api_version).unwrap_or(("", ""));
        if version.is_empty() {
            errs.push(FieldError::invalid(
                format!("{path}.apiVersion"),
                BadValue::string(&r.api_version),
                "version must not be empty",
            ));
        }
        if r.kind.is_empty() {
            errs.push(FieldError::invalid(
                format!("{path}.kind"),
                BadValue::string(&r.kind),
                "kind must not be empty",
            ));
        }
        if r.name.is_empty() {
            errs.push(FieldError::invalid(
                format!("{path}.name"),
                BadValue::string(&r.name),
                "name must not be empty",
            ));
        }
        if r.uid.is_empty() {
            errs.push(FieldError::invalid(
                format!("{path}.uid"),
                BadValue::string(&r.uid),
                "uid must not be empty",
            ));
        }
        if group.is_empty() && version == "v1" && r.kind == "Event" {
            errs.push(FieldError::invalid(
                path,
                BadValue::Raw(go_owner_reference(r)),
                "/v1, Kind=Event is disallowed from being an owner",
            ));
        }
        if r.controller == Some(true) {
            let current = format!("{}/{}", r.kind, r.name);
            if first_controller.is_empty() {
                first_controller = current;
            } else {
                errs.push(FieldError::invalid(
                    path,
                    BadValue::Raw(go_owner_references(refs)),
                    format!(
                        "Only one reference can have Controller set to true. Found \"true\" in references for {first_controller} and {current}"
                    ),
                ));
            }
        }
    }
    errs
}

/// A `v1.OwnerReference` as `%#v` prints it.
fn go_owner_reference(r: &OwnerReference) -> String {
    format!(
        "v1.OwnerReference{{APIVersion:{}, Kind:{}, Name:{}, UID:{}, Controller:{}, BlockOwnerDeletion:{}}}",
        crate::field::go_quote(&r.api_version),
        crate::field::go_quote(&r.kind),
        crate::field::go_quote(&r.name),
        crate::field::go_quote(&r.uid),
        go_bool_ptr(r.controller),
        go_bool_ptr(r.block_owner_deletion)
    )
}

/// `[]v1.OwnerReference` as `%#v` prints it.
fn go_owner_references(refs: &[OwnerReference]) -> String {
    let items: Vec<String> = refs.iter().map(go_owner_reference).collect();
    format!("[]v1.OwnerReference{{{}}}", items.join(", "))
}

/// Finalizers Kubernetes accepts without a `/` (`IsStandardFinalizerName`).
const STANDARD_FINALIZERS: [&str; 3] = ["kubernetes", "orphan", "foregroundDeletion"];

/// `ValidateFinalizers`: every finalizer a qualified name (reported at `path`), and not both
/// `orphan` and `foregroundDeletion`.
pub fn validate_finalizers(finalizers: &[String], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for f in finalizers {
        for msg in is_qualified_name(f) {
            errs.push(FieldError::invalid(path, BadValue::string(f), msg));
        }
    }
    let has = |name: &str| finalizers.iter().any(|f| f == name);
    if has("orphan") && has("foregroundDeletion") {
        errs.push(FieldError::invalid(
            path,
            BadValue::Strings(Some(finalizers.to_vec())),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
    errs
}

/// The core API group's extra finalizer check (`validateKubeFinalizerName`), at
/// `metadata.finalizers[i]`: a qualified name, and fully qualified unless standard.
fn validate_kube_finalizer_names(finalizers: &[String]) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, f) in finalizers.iter().enumerate() {
        let path = format!("metadata.finalizers[{i}]");
        for msg in is_qualified_name(f) {
            errs.push(FieldError::invalid(&path, BadValue::string(f), msg));
        }
        if !f.contains('/') && !STANDARD_FINALIZERS.contains(&f.as_str()) {
            errs.push(FieldError::invalid(
                &path,
                BadValue::string(f),
                "name is neither a standard finalizer name nor is it fully qualified",
            ));
        }
    }
    errs
}

fn empty_map() -> &'static BTreeMap<String, String> {
    static EMPTY: BTreeMap<String, String> = BTreeMap::new();
    &EMPTY
}

/// `ValidateObjectMeta` of a built-in kind on create, with errors under `metadata.`: name (or
/// `generateName`) by `name_check`, namespace required (a DNS label) when `namespaced` and
/// forbidden otherwise, non-negative generation, labels, annotations, owner references and
/// finalizers (including the core group's `metadata.finalizers[i]` check).
///
/// Like Kubernetes, this expects `generateName` to have been expanded into `name` already
/// ([`generate_name`]); a kind's own rules (e.g. a Secret's data) are the caller's.
pub fn validate_object_meta(
    meta: &ObjectMeta,
    namespaced: bool,
    name_check: NameCheck,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let generate_name = meta.generate_name.as_deref().unwrap_or("");
    if !generate_name.is_empty() {
        for msg in name_check.check(generate_name, true) {
            errs.push(FieldError::invalid(
                "metadata.generateName",
                BadValue::string(generate_name),
                msg,
            ));
        }
    }
    let name = meta.name.as_deref().unwrap_or("");
    if name.is_empty() {
        errs.push(FieldError::required(
            "metadata.name",
            "name or generateName is required",
        ));
    } else {
        for msg in name_check.check(name, false) {
            errs.push(FieldError::invalid(
                "metadata.name",
                BadValue::string(name),
                msg,
            ));
        }
    }
    let namespace = meta.namespace.as_deref().unwrap_or("");
    if namespaced {
        if namespace.is_empty() {
            errs.push(FieldError::required("metadata.namespace", ""));
        } else {
            for msg in NameCheck::DnsLabel.check(namespace, false) {
                errs.push(FieldError::invalid(
                    "metadata.namespace",
                    BadValue::string(namespace),
                    msg,
                ));
            }
        }
    } else if !namespace.is_empty() {
        errs.push(FieldError::forbidden(
            "metadata.namespace",
            "not allowed on this type",
        ));
    }
    if let Some(generation) = meta.generation.filter(|g| *g < 0) {
        errs.push(FieldError::invalid(
            "metadata.generation",
            BadValue::Int(generation),
            "must be greater than or equal to 0",
        ));
    }
    errs.extend(validate_labels(
        meta.labels.as_ref().unwrap_or(empty_map()),
        "metadata.labels",
    ));
    errs.extend(validate_annotations(
        meta.annotations.as_ref().unwrap_or(empty_map()),
        "metadata.annotations",
    ));
    let owners = meta.owner_references.as_deref().unwrap_or(&[]);
    errs.extend(validate_owner_references(
        owners,
        "metadata.ownerReferences",
    ));
    let finalizers = meta.finalizers.as_deref().unwrap_or(&[]);
    errs.extend(validate_finalizers(finalizers, "metadata.finalizers"));
    errs.extend(validate_kube_finalizer_names(finalizers));
    errs
}

/// A `metav1.Time` as Go's `time.Time.String()` prints it (UTC):
/// `2024-01-02 03:04:05 +0000 UTC`; absent is Go's zero time.
fn go_time(t: Option<&Time>) -> String {
    match t {
        None => "0001-01-01 00:00:00 +0000 UTC".to_string(),
        Some(t) => {
            let rendered = t.0.strftime("%Y-%m-%d %H:%M:%S%.f").to_string();
            format!("{rendered} +0000 UTC")
        }
    }
}

/// `ValidateObjectMetaUpdate` of a built-in kind, errors under `metadata.`: no new finalizers
/// once deletion started, `resourceVersion` present, generation not decremented, name,
/// namespace, uid, timestamps and grace period immutable, then labels, annotations, owner
/// references and the core finalizer check.
///
/// Kubernetes validates an update with this *and* the create rules on the new object; the
/// caller runs both. The server normally copies `creationTimestamp`, `deletionTimestamp` and
/// `deletionGracePeriodSeconds` from the old object first, as kube-apiserver does.
pub fn validate_object_meta_update(new: &ObjectMeta, old: &ObjectMeta) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if old.deletion_timestamp.is_some() {
        let old_finalizers = old.finalizers.as_deref().unwrap_or(&[]);
        let mut extra: Vec<String> = new
            .finalizers
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .filter(|f| !old_finalizers.contains(f))
            .cloned()
            .collect();
        extra.sort();
        extra.dedup();
        if !extra.is_empty() {
            errs.push(FieldError::forbidden(
                "metadata.finalizers",
                format!(
                    "no new finalizers can be added if the object is being deleted, found new finalizers {}",
                    BadValue::Strings(Some(extra))
                ),
            ));
        }
    }
    let rv = new.resource_version.as_deref().unwrap_or("");
    if rv.is_empty() {
        errs.push(FieldError::invalid(
            "metadata.resourceVersion",
            BadValue::string(rv),
            "must be specified for an update",
        ));
    }
    let new_generation = new.generation.unwrap_or(0);
    if new_generation < old.generation.unwrap_or(0) {
        errs.push(FieldError::invalid(
            "metadata.generation",
            BadValue::Int(new_generation),
            "must not be decremented",
        ));
    }
    let immutable_strings = [
        ("metadata.name", &new.name, &old.name),
        ("metadata.namespace", &new.namespace, &old.namespace),
        ("metadata.uid", &new.uid, &old.uid),
    ];
    for (path, n, o) in immutable_strings {
        let n = n.as_deref().unwrap_or("");
        if n != o.as_deref().unwrap_or("") {
            errs.push(FieldError::invalid(
                path,
                BadValue::string(n),
                "field is immutable",
            ));
        }
    }
    if new.creation_timestamp != old.creation_timestamp {
        errs.push(FieldError::invalid(
            "metadata.creationTimestamp",
            BadValue::Raw(go_time(new.creation_timestamp.as_ref())),
            "field is immutable",
        ));
    }
    if new.deletion_timestamp != old.deletion_timestamp {
        let value = match &new.deletion_timestamp {
            None => BadValue::Null,
            Some(t) => BadValue::Raw(go_time(Some(t))),
        };
        errs.push(FieldError::invalid(
            "metadata.deletionTimestamp",
            value,
            "field is immutable",
        ));
    }
    if new.deletion_grace_period_seconds != old.deletion_grace_period_seconds {
        let value = match new.deletion_grace_period_seconds {
            None => BadValue::Null,
            Some(s) => BadValue::Int(s),
        };
        errs.push(FieldError::invalid(
            "metadata.deletionGracePeriodSeconds",
            value,
            "field is immutable",
        ));
    }
    errs.extend(validate_labels(
        new.labels.as_ref().unwrap_or(empty_map()),
        "metadata.labels",
    ));
    errs.extend(validate_annotations(
        new.annotations.as_ref().unwrap_or(empty_map()),
        "metadata.annotations",
    ));
    let owners = new.owner_references.as_deref().unwrap_or(&[]);
    errs.extend(validate_owner_references(
        owners,
        "metadata.ownerReferences",
    ));
    errs.extend(validate_kube_finalizer_names(
        new.finalizers.as_deref().unwrap_or(&[]),
    ));
    errs
}

/// Expand a `generateName` as kube-apiserver does: `base` cut to 58 bytes (at a character
/// boundary) plus 5 characters of [`GENERATED_NAME_ALPHABET`], each picked by `random() % 27`.
///
/// The server retries with a new suffix when the name is taken (Kubernetes tries 8 times).
pub fn generate_name(base: &str, mut random: impl FnMut() -> u32) -> String {
    let mut cut = base.len().min(MAX_GENERATED_NAME_LENGTH);
    while !base.is_char_boundary(cut) {
        cut -= 1;
    }
    let alphabet = GENERATED_NAME_ALPHABET.as_bytes();
    let mut name = String::with_capacity(cut + GENERATED_SUFFIX_LENGTH);
    name.push_str(&base[..cut]);
    for _ in 0..GENERATED_SUFFIX_LENGTH {
        let i = random() as usize % alphabet.len();
        name.push(char::from(alphabet[i]));
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUBDOMAIN_RE: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
    const LABEL_RE: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
    const NAME_PART_RE: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
    const LABEL_VALUE_RE: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

    fn check(f: fn(&str) -> Vec<String>, input: &str, expected: &[&str]) {
        assert_eq!(f(input), expected, "input {input:?}");
    }

    #[test]
    fn config_map_keys_follow_is_config_map_key() {
        assert!(is_config_map_key("ca.crt").is_empty());
        assert!(is_config_map_key("KEY_name-1").is_empty());
        assert_eq!(
            is_config_map_key("a/b"),
            [
                "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
            ]
        );
        assert_eq!(is_config_map_key(".."), ["must not be '..'"]);
        assert_eq!(is_config_map_key("..a"), ["must not start with '..'"]);
    }

    #[test]
    fn dns1123_subdomains_follow_kubernetes() {
        let long = format!("{}.b", "a".repeat(252));
        for ok in ["a", "example.com", "a-b.c-d", "0", "1.2.3"] {
            check(is_dns1123_subdomain, ok, &[]);
        }
        for bad in ["", "A", "a_b", "-a", "a-", "a..b", ".a", "a.", "é"] {
            check(is_dns1123_subdomain, bad, &[SUBDOMAIN_RE]);
        }
        check(
            is_dns1123_subdomain,
            &long,
            &["must be no more than 253 characters"],
        );
        check(
            is_dns1123_subdomain,
            &format!("{}_", "a".repeat(253)),
            &["must be no more than 253 characters", SUBDOMAIN_RE],
        );
    }

    #[test]
    fn dns1123_labels_follow_kubernetes() {
        for ok in ["a", "my-name", "123-abc", &"a".repeat(63)] {
            check(is_dns1123_label, ok, &[]);
        }
        check(is_dns1123_label, "a.b", &["must not contain dots"]);
        check(is_dns1123_label, "", &[LABEL_RE]);
        check(is_dns1123_label, "Kube", &[LABEL_RE]);
        check(
            is_dns1123_label,
            &"a".repeat(64),
            &["must be no more than 63 characters"],
        );
    }

    #[test]
    fn path_segment_names_follow_kubernetes() {
        check(is_valid_path_segment_name, "admin:view", &[]);
        check(is_valid_path_segment_name, ".", &["may not be '.'"]);
        check(is_valid_path_segment_name, "..", &["may not be '..'"]);
        check(
            is_valid_path_segment_name,
            "a/b%c",
            &["may not contain '/'", "may not contain '%'"],
        );
        check(is_valid_path_segment_prefix, ".", &[]);
    }

    #[test]
    fn qualified_names_follow_kubernetes() {
        for ok in ["a", "MyName", "my.name", "example.com/MyName", "a_b-c.d"] {
            check(is_qualified_name, ok, &[]);
        }
        check(is_qualified_name, "a b", &[NAME_PART_RE]);
        check(
            is_qualified_name,
            "",
            &["name part must be non-empty", NAME_PART_RE],
        );
        check(is_qualified_name, "/a", &["prefix part must be non-empty"]);
        check(
            is_qualified_name,
            "Example.com/a",
            &[&format!("prefix part {SUBDOMAIN_RE}")],
        );
        check(
            is_qualified_name,
            "a/",
            &["name part must be non-empty", NAME_PART_RE],
        );
        check(
            is_qualified_name,
            &"a".repeat(64),
            &["name part must be no more than 63 characters"],
        );
        check(
            is_qualified_name,
            "a/b/c",
            &[
                "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
            ],
        );
        check(
            is_qualified_name,
            "app.kubernetes_io/name",
            &[&format!("prefix part {SUBDOMAIN_RE}")],
        );
    }

    #[test]
    fn label_values_follow_kubernetes() {
        for ok in ["", "MyValue", "my_value", "12345", "a.b-c"] {
            check(is_valid_label_value, ok, &[]);
        }
        check(is_valid_label_value, "-b", &[LABEL_VALUE_RE]);
        check(is_valid_label_value, "a b", &[LABEL_VALUE_RE]);
        check(
            is_valid_label_value,
            &"z".repeat(64),
            &["must be no more than 63 characters"],
        );
    }

    #[test]
    fn generate_name_prefixes_allow_a_trailing_dash() {
        let cases: &[(NameCheck, &str, bool, &[&str])] = &[
            (NameCheck::DnsSubdomain, "my-sa-", true, &[]),
            (NameCheck::DnsSubdomain, "my-sa-", false, &[SUBDOMAIN_RE]),
            (NameCheck::DnsSubdomain, "a-", true, &[]),
            (NameCheck::DnsSubdomain, "-", true, &[SUBDOMAIN_RE]),
            (NameCheck::DnsSubdomain, "My-", true, &[SUBDOMAIN_RE]),
            (NameCheck::DnsLabel, "ns-", true, &[]),
            (NameCheck::PathSegment, "..", true, &[]),
            (NameCheck::PathSegment, "a/", true, &["may not contain '/'"]),
        ];
        for (rule, name, prefix, expected) in cases {
            assert_eq!(
                rule.check(name, *prefix),
                *expected,
                "{rule:?} {name:?} {prefix}"
            );
        }
    }

    fn meta(json: serde_json::Value) -> ObjectMeta {
        serde_json::from_value(json).unwrap_or_default()
    }

    fn check_meta(json: serde_json::Value, namespaced: bool, rule: NameCheck, expected: &[&str]) {
        let m = meta(json.clone());
        let got: Vec<String> = validate_object_meta(&m, namespaced, rule)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got, expected, "{json}");
    }

    #[test]
    fn object_meta_validation_reports_like_validate_object_meta() {
        use serde_json::json;
        check_meta(
            json!({"name": "sa", "namespace": "p", "labels": {"a": "b"}}),
            true,
            NameCheck::DnsSubdomain,
            &[],
        );
        check_meta(
            json!({"name": "A", "namespace": "p"}),
            true,
            NameCheck::DnsSubdomain,
            &[&format!(
                "metadata.name: Invalid value: \"A\": {SUBDOMAIN_RE}"
            )],
        );
        check_meta(
            json!({}),
            true,
            NameCheck::DnsSubdomain,
            &[
                "metadata.name: Required value: name or generateName is required",
                "metadata.namespace: Required value",
            ],
        );
        check_meta(
            json!({"name": "n", "namespace": "p"}),
            false,
            NameCheck::DnsLabel,
            &["metadata.namespace: Forbidden: not allowed on this type"],
        );
        check_meta(
            json!({"name": "x", "generateName": "Bad-", "namespace": "bad.ns"}),
            true,
            NameCheck::DnsSubdomain,
            &[
                &format!("metadata.generateName: Invalid value: \"Bad-\": {SUBDOMAIN_RE}"),
                "metadata.namespace: Invalid value: \"bad.ns\": must not contain dots",
            ],
        );
        check_meta(
            json!({"name": "r/x", "namespace": "p", "generation": -1}),
            true,
            NameCheck::PathSegment,
            &[
                "metadata.name: Invalid value: \"r/x\": may not contain '/'",
                "metadata.generation: Invalid value: -1: must be greater than or equal to 0",
            ],
        );
        check_meta(
            json!({"name": "sa", "namespace": "p", "labels": {"a b": "ok", "k": "-v"}}),
            true,
            NameCheck::DnsSubdomain,
            &[
                &format!("metadata.labels: Invalid value: \"a b\": {NAME_PART_RE}"),
                &format!("metadata.labels: Invalid value: \"-v\": {LABEL_VALUE_RE}"),
            ],
        );
        check_meta(
            json!({"name": "sa", "namespace": "p", "annotations": {"Example.COM/Key": "v", "a b": ""}}),
            true,
            NameCheck::DnsSubdomain,
            &[&format!(
                "metadata.annotations: Invalid value: \"a b\": {NAME_PART_RE}"
            )],
        );
    }

    #[test]
    fn annotations_are_limited_to_256_kib_in_total() {
        use serde_json::json;
        let big = "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT - 1);
        check_meta(
            json!({"name": "sa", "namespace": "p", "annotations": {"a": big}}),
            true,
            NameCheck::DnsSubdomain,
            &[],
        );
        let too_big = "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT);
        check_meta(
            json!({"name": "sa", "namespace": "p", "annotations": {"a": too_big}}),
            true,
            NameCheck::DnsSubdomain,
            &["metadata.annotations: Too long: may not be more than 262144 bytes"],
        );
    }

    #[test]
    fn owner_references_and_finalizers_are_checked() {
        use serde_json::json;
        check_meta(
            json!({"name": "sa", "namespace": "p", "ownerReferences": [
                {"apiVersion": "apps/", "kind": "", "name": "", "uid": ""},
                {"apiVersion": "v1", "kind": "Event", "name": "e", "uid": "u"}
            ]}),
            true,
            NameCheck::DnsSubdomain,
            &[
                "metadata.ownerReferences.apiVersion: Invalid value: \"apps/\": version must not be empty",
                "metadata.ownerReferences.kind: Invalid value: \"\": kind must not be empty",
                "metadata.ownerReferences.name: Invalid value: \"\": name must not be empty",
                "metadata.ownerReferences.uid: Invalid value: \"\": uid must not be empty",
                "metadata.ownerReferences: Invalid value: v1.OwnerReference{APIVersion:\"v1\", Kind:\"Event\", Name:\"e\", UID:\"u\", Controller:(*bool)(nil), BlockOwnerDeletion:(*bool)(nil)}: /v1, Kind=Event is disallowed from being an owner",
            ],
        );
        check_meta(
            json!({"name": "sa", "namespace": "p", "ownerReferences": [
                {"apiVersion": "v1", "kind": "A", "name": "a", "uid": "1", "controller": true},
                {"apiVersion": "v1", "kind": "B", "name": "b", "uid": "2", "controller": true}
            ]}),
            true,
            NameCheck::DnsSubdomain,
            &[
                "metadata.ownerReferences: Invalid value: []v1.OwnerReference{v1.OwnerReference{APIVersion:\"v1\", Kind:\"A\", Name:\"a\", UID:\"1\", Controller:(*bool)(0xc000000000), BlockOwnerDeletion:(*bool)(nil)}, v1.OwnerReference{APIVersion:\"v1\", Kind:\"B\", Name:\"b\", UID:\"2\", Controller:(*bool)(0xc000000000), BlockOwnerDeletion:(*bool)(nil)}}: Only one reference can have Controller set to true. Found \"true\" in references for A/a and B/b",
            ],
        );
        check_meta(
            json!({"name": "sa", "namespace": "p", "finalizers": ["kubernetes", "example.com/f", "foo", "a b", "orphan", "foregroundDeletion"]}),
            true,
            NameCheck::DnsSubdomain,
            &[
                &format!("metadata.finalizers: Invalid value: \"a b\": {NAME_PART_RE}"),
                "metadata.finalizers: Invalid value: []string{\"kubernetes\", \"example.com/f\", \"foo\", \"a b\", \"orphan\", \"foregroundDeletion\"}: finalizer orphan and foregroundDeletion cannot be both set",
                "metadata.finalizers[2]: Invalid value: \"foo\": name is neither a standard finalizer name nor is it fully qualified",
                &format!("metadata.finalizers[3]: Invalid value: \"a b\": {NAME_PART_RE}"),
                "metadata.finalizers[3]: Invalid value: \"a b\": name is neither a standard finalizer name nor is it fully qualified",
            ],
        );
    }

    #[test]
    fn update_validation_reports_immutable_fields() {
        use serde_json::json;
        let old = meta(
            json!({"name": "sa", "namespace": "p", "uid": "u1", "resourceVersion": "5",
            "creationTimestamp": "2024-01-02T03:04:05Z", "generation": 2,
            "deletionTimestamp": "2024-01-03T00:00:00Z", "finalizers": ["a.io/x"]}),
        );
        let new = meta(json!({"name": "sb", "namespace": "p", "uid": "u2",
            "creationTimestamp": "2024-01-02T03:04:06Z", "generation": 1,
            "deletionTimestamp": "2024-01-03T00:00:00Z", "finalizers": ["b.io/y", "a.io/x", "b.io/y"]}));
        let got: Vec<String> = validate_object_meta_update(&new, &old)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            got,
            [
                "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{\"b.io/y\"}",
                "metadata.resourceVersion: Invalid value: \"\": must be specified for an update",
                "metadata.generation: Invalid value: 1: must not be decremented",
                "metadata.name: Invalid value: \"sb\": field is immutable",
                "metadata.uid: Invalid value: \"u2\": field is immutable",
                "metadata.creationTimestamp: Invalid value: 2024-01-02 03:04:06 +0000 UTC: field is immutable",
            ]
        );
        let same = validate_object_meta_update(&old, &old);
        assert_eq!(same, Vec::new());
    }

    #[test]
    fn generated_names_cut_the_base_and_append_five_characters() {
        let mut n = 0u32;
        let counter = move || {
            n += 1;
            n - 1
        };
        assert_eq!(generate_name("sa-", counter), "sa-bcdfg");
        let mut n = 25u32;
        let from_25 = move || {
            n += 1;
            n - 1
        };
        assert_eq!(generate_name("x", from_25), "x89bcd");
        let long = "a".repeat(70);
        let generated = generate_name(&long, || 0);
        assert_eq!(generated, format!("{}bbbbb", "a".repeat(58)));
        assert_eq!(generated.len(), 63);
        // A multi-byte character straddling the cut is dropped whole.
        let base = format!("{}é", "a".repeat(57));
        assert_eq!(
            generate_name(&base, || 1),
            format!("{}ccccc", "a".repeat(57))
        );
    }
}

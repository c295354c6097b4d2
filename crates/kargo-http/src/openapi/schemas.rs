//! The component schemas (`definitions` in OpenAPI v2) of the served kinds.
//!
//! - Built-in kinds: `k8s-openapi`'s `schemars` schemas (generated from Kubernetes' own OpenAPI
//!   document, so names and descriptions are kube-apiserver's), plus the `x-kubernetes-*`
//!   extensions they leave out ([`super::extensions`]).
//! - Kargo's kinds: the `openAPIV3Schema` of upstream Kargo's CRDs ([`kargo_api::crd`]), with
//!   `metadata` pointing at `ObjectMeta` as kube-apiserver publishes a CRD's schema.
//!
//! Every kind and its list carry `x-kubernetes-group-version-kind`; kubectl finds a kind's
//! schema by it (`kubectl explain`, `kubectl apply`).

use k8s_openapi::api::authentication::v1 as authn;
use k8s_openapi::api::authorization::v1 as authz;
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::rbac::v1 as rbac;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_openapi::schemars::SchemaGenerator;
use k8s_openapi::schemars::generate::SchemaSettings;
use kargo_api::resources::ResourceType;
use serde_json::{Map, Value, json};

use super::extensions;

/// Where v3 documents keep their schemas.
pub(super) const V3_PREFIX: &str = "#/components/schemas/";
/// Where the v2 document keeps its definitions.
pub(super) const V2_PREFIX: &str = "#/definitions/";

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
/// The `Patch` body of `patch` operations.
pub(super) const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
/// The `Status` of errors and deletions.
pub(super) const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
/// The body of deletions.
pub(super) const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";

const API_VERSION_DESCRIPTION: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND_DESCRIPTION: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";

/// The definition name of a kind (`io.k8s.api.core.v1.ServiceAccount`,
/// `io.akuity.kargo.v1alpha1.Stage`): kube-apiserver's `io.k8s.api.<group's first label>` for
/// built-in groups, the reversed group for custom resources.
pub(super) fn definition_name(rt: &ResourceType) -> String {
    let prefix = if rt.group.is_empty() {
        "io.k8s.api.core".to_owned()
    } else if let Some(builtin) = rt.group.strip_suffix(".k8s.io") {
        format!(
            "io.k8s.api.{}",
            builtin.split('.').next().unwrap_or(builtin)
        )
    } else {
        rt.group.split('.').rev().collect::<Vec<_>>().join(".")
    };
    format!("{prefix}.{}.{}", rt.version, rt.kind)
}

/// The definition name of a kind's list (`io.k8s.api.core.v1.ServiceAccountList`).
pub(super) fn list_definition_name(rt: &ResourceType) -> String {
    format!("{}List", definition_name(rt))
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!([{"group": group, "kind": kind, "version": version}])
}

/// Adds a built-in kind's schema (and what it references) to `generator`; false if `rt` is not
/// a built-in kind.
fn add_builtin(generator: &mut SchemaGenerator, rt: &ResourceType) -> bool {
    macro_rules! kinds {
        ($($group:pat, $kind:literal => $ty:ty;)*) => {
            match (rt.group, rt.kind) {
                $(($group, $kind) => { generator.subschema_for::<$ty>(); true })*
                _ => false,
            }
        };
    }
    use kargo_api::resources::{AUTHENTICATION_GROUP as AUTHN, AUTHORIZATION_GROUP as AUTHZ};
    use kargo_api::resources::{CORE_GROUP as CORE, RBAC_GROUP as RBAC};
    kinds! {
        CORE, "Namespace" => core::Namespace;
        CORE, "ServiceAccount" => core::ServiceAccount;
        CORE, "Secret" => core::Secret;
        CORE, "ConfigMap" => core::ConfigMap;
        CORE, "Event" => core::Event;
        CORE, "Endpoints" => core::Endpoints;
        RBAC, "Role" => rbac::Role;
        RBAC, "RoleBinding" => rbac::RoleBinding;
        RBAC, "ClusterRole" => rbac::ClusterRole;
        RBAC, "ClusterRoleBinding" => rbac::ClusterRoleBinding;
        AUTHN, "TokenReview" => authn::TokenReview;
        AUTHN, "SelfSubjectReview" => authn::SelfSubjectReview;
        AUTHZ, "SubjectAccessReview" => authz::SubjectAccessReview;
        AUTHZ, "LocalSubjectAccessReview" => authz::LocalSubjectAccessReview;
        AUTHZ, "SelfSubjectAccessReview" => authz::SelfSubjectAccessReview;
        AUTHZ, "SelfSubjectRulesReview" => authz::SelfSubjectRulesReview;
    }
}

/// A wrapped reference to `name`, with a description of its own (OpenAPI v3 ignores siblings of
/// `$ref`, so kube-apiserver wraps it in `allOf`).
fn described_ref(name: &str, description: &str) -> Value {
    json!({"allOf": [{"$ref": format!("{V3_PREFIX}{name}")}], "description": description})
}

/// A Kargo kind's schema as kube-apiserver publishes a CRD's: the CRD's `openAPIV3Schema` with
/// `apiVersion`, `kind` and `metadata` described like every kind's.
fn custom_schema(rt: &ResourceType) -> Option<Value> {
    let mut schema = kargo_api::crd::schema(rt.kind)?.clone();
    let props = schema.get_mut("properties")?.as_object_mut()?;
    props.insert(
        "apiVersion".into(),
        json!({"description": API_VERSION_DESCRIPTION, "type": "string"}),
    );
    props.insert(
        "kind".into(),
        json!({"description": KIND_DESCRIPTION, "type": "string"}),
    );
    props.insert(
        "metadata".into(),
        described_ref(OBJECT_META, "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"),
    );
    Some(schema)
}

/// The schema of a kind's list, as kube-apiserver publishes it for custom resources (the
/// built-in lists' descriptions differ a little per kind).
fn list_schema(rt: &ResourceType) -> Value {
    json!({
        "description": format!("{}List is a list of {}", rt.kind, rt.kind),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"description": API_VERSION_DESCRIPTION, "type": "string"},
            "items": {
                "description": format!("List of {}. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md", rt.plural),
                "type": "array",
                "items": {"$ref": format!("{V3_PREFIX}{}", definition_name(rt))},
            },
            "kind": {"description": KIND_DESCRIPTION, "type": "string"},
            "metadata": described_ref(LIST_META, "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"),
        },
        "x-kubernetes-group-version-kind": gvk(rt.group, rt.version, &rt.list_kind()),
    })
}

/// Whether a kind is only created (the reviews): it has no list.
fn has_list(rt: &ResourceType) -> bool {
    rt.storage != kargo_api::resources::Storage::Virtual
}

/// The OpenAPI v3 component schemas of `kinds`, with the meta types every document refers to.
pub(super) fn v3_schemas<'a>(kinds: impl Iterator<Item = &'a ResourceType>) -> Map<String, Value> {
    let mut generator = SchemaSettings::openapi3()
        .with(|s| s.meta_schema = None)
        .into_generator();
    for_meta_types(&mut generator);
    let mut custom = Vec::new();
    let mut served = Vec::new();
    for rt in kinds {
        if !add_builtin(&mut generator, rt) {
            if let Some(schema) = custom_schema(rt) {
                custom.push((definition_name(rt), schema));
            } else {
                continue;
            }
        }
        served.push(rt);
    }
    let mut defs = generator.take_definitions(true);
    defs.extend(custom);
    for rt in served {
        let name = definition_name(rt);
        if let Some(Value::Object(def)) = defs.get_mut(&name) {
            // k8s-openapi makes `metadata` required on every kind; kube-apiserver does not
            // (a core/v1 Event's is, as its Go field has no omitempty).
            if rt.kind != "Event"
                && let Some(Value::Array(required)) = def.get_mut("required")
            {
                required.retain(|r| r != "metadata");
                if required.is_empty() {
                    def.remove("required");
                }
            }
            def.insert(
                "x-kubernetes-group-version-kind".into(),
                gvk(rt.group, rt.version, rt.kind),
            );
        }
        if has_list(rt) {
            defs.insert(list_definition_name(rt), list_schema(rt));
        }
    }
    extensions::apply(&mut defs);
    defs.sort_keys();
    defs
}

/// The meta types every group-version document has (lists, patches, deletions, errors).
fn for_meta_types(generator: &mut SchemaGenerator) {
    generator.subschema_for::<meta::ObjectMeta>();
    generator.subschema_for::<meta::ListMeta>();
    generator.subschema_for::<meta::Patch>();
    generator.subschema_for::<meta::Status>();
    generator.subschema_for::<meta::DeleteOptions>();
}

/// The OpenAPI v2 (Swagger 2.0) form of v3 schemas: references under `#/definitions/`, a
/// described reference as `$ref` with a sibling description (as kube-apiserver's v2 has it),
/// no `nullable`.
pub(super) fn to_v2(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("$ref", Value::String(r)) => {
                        let name = r.strip_prefix(V3_PREFIX).unwrap_or(r);
                        out.insert(key.clone(), format!("{V2_PREFIX}{name}").into());
                    }
                    ("allOf", Value::Array(all))
                        if all.len() == 1 && all[0].get("$ref").is_some() =>
                    {
                        if let Value::Object(inner) = to_v2(&all[0]) {
                            out.extend(inner);
                        }
                    }
                    ("nullable", _) => {}
                    _ => {
                        out.insert(key.clone(), to_v2(v));
                    }
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(to_v2).collect()),
        other => other.clone(),
    }
}

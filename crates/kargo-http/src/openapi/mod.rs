//! kube-apiserver's OpenAPI documents: `/openapi/v3` (a root naming one document per
//! group-version, each at a URL with its content hash) and `/openapi/v2` (one Swagger 2.0
//! document, JSON only). They carry every served kind's paths ([`paths`]) and schemas
//! ([`schemas`]), so that kubectl explains kinds (`kubectl explain sa.secrets`), leaves field
//! validation to the server (`fieldValidation`), and computes `kubectl apply` patches as it does
//! against kube-apiserver: strategic merge from the published patch strategies for built-in
//! kinds, JSON merge for Kargo's.
//!
//! The documents are built once, serialized once, and served with an `ETag` (their hash);
//! a request by the hashed URL is cacheable for good, as kube-apiserver's are.

mod extensions;
mod paths;
mod proto;
mod schemas;

use std::sync::OnceLock;

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use kargo_api::resources;
use serde_json::{Map, Value, json};

use paths::{Version, gv_path};

/// The media type client-go asks `/openapi/v2` in (not a valid media type: `@`).
const V2_PROTOBUF_ASKED: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";
/// The media types of `/openapi/v2` in protobuf kube-apiserver accepts, and the one it answers.
const V2_PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// One document, serialized, with its hash.
struct Document {
    bytes: Vec<u8>,
    hash: String,
    /// The protobuf form and its hash (`/openapi/v2` only).
    protobuf: Option<(Vec<u8>, String)>,
}

fn sha512_hex(bytes: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA512, bytes);
    digest.as_ref().iter().map(|b| format!("{b:02X}")).collect()
}

impl Document {
    fn new(value: &Value) -> Document {
        let bytes = serde_json::to_vec(value).unwrap_or_default();
        let hash = sha512_hex(&bytes);
        Document {
            bytes,
            hash,
            protobuf: None,
        }
    }

    fn with_protobuf(value: &Value) -> Document {
        let protobuf = proto::encode(value);
        let hash = sha512_hex(&protobuf);
        Document {
            protobuf: Some((protobuf, hash)),
            ..Document::new(value)
        }
    }
}

fn info() -> Value {
    json!({"title": "Kubernetes", "version": format!("v1.{}.0", kargo_api::version::KUBE_MINOR)})
}

fn group_version_doc(group: &str, version: &str) -> Value {
    let mut paths = Map::new();
    for rt in resources::in_group_version(group, version) {
        paths::add(&mut paths, rt, Version::V3);
    }
    json!({
        "openapi": "3.0.0",
        "info": info(),
        "paths": paths,
        "components": {
            "schemas": schemas::v3_schemas(resources::in_group_version(group, version)),
            "securitySchemes": {"BearerToken": {"description": "Bearer Token authentication",
                "in": "header", "name": "authorization", "type": "apiKey"}},
        },
        "security": [{"BearerToken": []}],
    })
}

fn v2_doc() -> Value {
    let mut paths = Map::new();
    for rt in resources::ALL {
        paths::add(&mut paths, rt, Version::V2);
    }
    let definitions = schemas::to_v2(&Value::Object(schemas::v3_schemas(
        resources::ALL.iter().copied(),
    )));
    json!({
        "swagger": "2.0",
        "info": info(),
        "paths": paths,
        "definitions": definitions,
        "securityDefinitions": {"BearerToken": {"description": "Bearer Token authentication",
            "in": "header", "name": "authorization", "type": "apiKey"}},
        "security": [{"BearerToken": []}],
    })
}

struct Documents {
    root: Document,
    by_path: Vec<(String, Document)>,
    v2: Document,
}

fn documents() -> &'static Documents {
    static DOCS: OnceLock<Documents> = OnceLock::new();
    DOCS.get_or_init(|| {
        let mut root_paths = Map::new();
        let mut by_path = Vec::new();
        for (group, version) in resources::group_versions() {
            let doc = Document::new(&group_version_doc(group, version));
            let path = gv_path(group, version);
            root_paths.insert(
                path.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={}", doc.hash)}),
            );
            by_path.push((path, doc));
        }
        Documents {
            root: Document::new(&json!({"paths": root_paths})),
            by_path,
            v2: Document::with_protobuf(&v2_doc()),
        }
    })
}

fn find_group_version(path: &str) -> Option<&'static Document> {
    documents()
        .by_path
        .iter()
        .find(|(p, _)| p == path.trim_matches('/'))
        .map(|(_, doc)| doc)
}

/// The documents as served, parsed back (for tests).
#[cfg(test)]
fn parsed(doc: &Document) -> Value {
    serde_json::from_slice(&doc.bytes).unwrap()
}

/// `/openapi/v3`.
#[cfg(test)]
fn root() -> Value {
    parsed(&documents().root)
}

/// `/openapi/v3/<path>`, if it names a served group-version.
#[cfg(test)]
fn group_version(path: &str) -> Option<Value> {
    find_group_version(path).map(parsed)
}

/// `/openapi/v2`.
#[cfg(test)]
fn v2() -> Value {
    parsed(&documents().v2)
}

/// Which document a request names.
pub(crate) enum Request<'a> {
    /// `/openapi/v3`.
    Root,
    /// `/openapi/v3/<path>`.
    GroupVersion(&'a str),
    /// `/openapi/v2`.
    V2,
}

/// The media types a request's `Accept` names (none: anything).
fn accepted(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.split(';').next().unwrap_or_default().trim().to_owned())
        .collect()
}

/// The response to a document request: JSON (or, for `/openapi/v2` when asked, protobuf) with
/// its `ETag`, a 304 when the client has it, a 404 for an unknown group-version, a 406 when
/// neither is accepted.
pub(crate) fn serve(request: Request<'_>, query: Option<&str>, headers: &HeaderMap) -> Response {
    let docs = documents();
    let doc = match request {
        Request::Root => &docs.root,
        Request::V2 => &docs.v2,
        Request::GroupVersion(path) => match find_group_version(path) {
            Some(doc) => doc,
            None => {
                return crate::StatusResponse::into_response(
                    kargo_registry::status::Status::no_route(),
                );
            }
        },
    };
    let accepted = accepted(headers);
    let json_ok = accepted.is_empty()
        || accepted.iter().any(|t| {
            matches!(
                t.as_str(),
                "" | "*/*" | "application/*" | "application/json"
            )
        });
    let (bytes, hash, content_type) = match &doc.protobuf {
        Some((bytes, hash))
            if accepted
                .iter()
                .any(|t| t == V2_PROTOBUF || t == V2_PROTOBUF_ASKED) =>
        {
            (bytes, hash, V2_PROTOBUF)
        }
        _ if json_ok => (&doc.bytes, &doc.hash, "application/json"),
        _ => {
            return crate::StatusResponse::into_response(kargo_registry::status::Status::failure(
                406,
                "NotAcceptable",
                "only application/json is served for this OpenAPI document",
            ));
        }
    };
    let etag = format!("\"{hash}\"");
    let cache = if query.is_some_and(|q| {
        form_urlencoded::parse(q.as_bytes()).any(|(k, v)| k == "hash" && v == hash.as_str())
    }) {
        "public, immutable, max-age=31536000"
    } else {
        "no-cache, private"
    };
    let mut response = if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (StatusCode::OK, bytes.clone()).into_response()
    };
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_points_at_every_group_version_document() {
        let root = root();
        let paths = root["paths"].as_object().unwrap();
        for key in [
            "api/v1",
            "apis/rbac.authorization.k8s.io/v1",
            "apis/kargo.akuity.io/v1alpha1",
        ] {
            let url = paths[key]["serverRelativeURL"].as_str().unwrap();
            assert!(
                url.starts_with(&format!("/openapi/v3/{key}?hash=")),
                "{url}"
            );
            assert!(group_version(key).is_some());
        }
    }

    #[test]
    fn patch_operations_take_field_validation_and_name_their_kind() {
        let doc = group_version("api/v1").unwrap();
        let op = &doc["paths"]["/api/v1/namespaces/{namespace}/serviceaccounts/{name}"]["patch"];
        assert_eq!(
            op["x-kubernetes-group-version-kind"]["kind"],
            "ServiceAccount"
        );
        assert!(
            op["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation")
        );
        let ns = &doc["paths"]["/api/v1/namespaces/{name}"]["patch"];
        assert_eq!(ns["x-kubernetes-group-version-kind"]["kind"], "Namespace");
    }

    /// Every `$ref` in `value`, with where it was found.
    fn refs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    out.push(r.clone());
                }
                map.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    fn gvk_of(def: &Value) -> Vec<(String, String, String)> {
        def["x-kubernetes-group-version-kind"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|g| {
                        let s = |k: &str| g[k].as_str().unwrap_or_default().to_owned();
                        (s("group"), s("version"), s("kind"))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn every_served_kind_has_a_described_schema_with_its_group_version_kind() {
        for rt in resources::ALL {
            let doc = group_version(&gv_path(rt.group, rt.version)).unwrap();
            let defs = doc["components"]["schemas"].as_object().unwrap();
            let name = schemas::definition_name(rt);
            let def = defs
                .get(&name)
                .unwrap_or_else(|| panic!("{} has no schema {name}", rt.kind));
            assert!(def["description"].is_string(), "{name}");
            assert!(def["properties"]["metadata"].is_object(), "{name}");
            assert_eq!(
                gvk_of(def),
                [(rt.group.into(), rt.version.into(), rt.kind.into())],
                "{name}"
            );
            let v2 = v2();
            assert_eq!(gvk_of(&v2["definitions"][&name]), gvk_of(def), "{name}");
            if rt.storage != resources::Storage::Virtual {
                let list = &defs[&schemas::list_definition_name(rt)];
                assert_eq!(gvk_of(list)[0].2, rt.list_kind());
            }
        }
        let v2 = v2();
        let sa = &v2["definitions"]["io.k8s.api.core.v1.ServiceAccount"];
        assert!(
            sa["properties"]["secrets"]["description"]
                .as_str()
                .unwrap()
                .starts_with("Secrets is a list of the secrets")
        );
        assert_eq!(
            sa["properties"]["metadata"]["$ref"],
            "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
        );
        let stage = &v2["definitions"]["io.akuity.kargo.v1alpha1.Stage"];
        assert!(stage["properties"]["spec"]["properties"]["requestedFreight"].is_object());
    }

    #[test]
    fn every_reference_resolves_in_its_own_document() {
        let mut docs: Vec<(String, Value, &str)> = resources::group_versions()
            .into_iter()
            .map(|(g, v)| {
                let path = gv_path(g, v);
                let doc = group_version(&path).unwrap();
                (path, doc, "components/schemas")
            })
            .collect();
        docs.push(("v2".into(), v2(), "definitions"));
        for (path, doc, defs_at) in docs {
            let mut found = Vec::new();
            refs(&doc, &mut found);
            assert!(found.len() > 10, "{path}");
            for r in found {
                let name = r
                    .strip_prefix(&format!("#/{defs_at}/"))
                    .unwrap_or_else(|| panic!("{path}: {r}"));
                let defs = if defs_at == "definitions" {
                    &doc["definitions"]
                } else {
                    &doc["components"]["schemas"]
                };
                assert!(defs.get(name).is_some(), "{path}: {r} does not resolve");
            }
        }
    }

    #[test]
    fn published_patch_strategies_are_the_servers() {
        use kargo_api::patch::{
            ListStrategy, object_meta_list_strategy, service_account_list_strategy,
        };
        let published = |def: &str, prop: &str| match extensions::patch_strategy(def, prop) {
            None => ListStrategy::Atomic,
            Some((_, key)) if key.is_empty() => ListStrategy::MergeSet,
            Some((_, key)) => match key.as_str() {
                "uid" => ListStrategy::MergeByKey("uid"),
                "name" => ListStrategy::MergeByKey("name"),
                other => panic!("{other}"),
            },
        };
        let meta = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
        for field in ["ownerReferences", "finalizers", "managedFields", "labels"] {
            assert_eq!(
                published(meta, field),
                object_meta_list_strategy(&format!("metadata.{field}")),
                "{field}"
            );
        }
        for field in ["secrets", "imagePullSecrets"] {
            assert_eq!(
                published("io.k8s.api.core.v1.ServiceAccount", field),
                service_account_list_strategy(field),
                "{field}"
            );
        }
        // And they are in the served documents.
        let doc = group_version("api/v1").unwrap();
        let secrets = &doc["components"]["schemas"]["io.k8s.api.core.v1.ServiceAccount"]["properties"]
            ["secrets"];
        assert_eq!(secrets["x-kubernetes-patch-strategy"], "merge");
        assert_eq!(secrets["x-kubernetes-patch-merge-key"], "name");
        let rules = &group_version("apis/rbac.authorization.k8s.io/v1").unwrap()["components"]["schemas"]
            ["io.k8s.api.rbac.v1.Role"]["properties"]["rules"];
        assert_eq!(rules["x-kubernetes-list-type"], "atomic");
    }

    #[test]
    fn only_built_in_kinds_take_strategic_merge_patches() {
        let consumes = |doc: &Value, path: &str| -> Vec<String> {
            doc["paths"][path]["patch"]["requestBody"]["content"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect()
        };
        let strategic = "application/strategic-merge-patch+json".to_owned();
        let core = group_version("api/v1").unwrap();
        assert!(
            consumes(
                &core,
                "/api/v1/namespaces/{namespace}/serviceaccounts/{name}"
            )
            .contains(&strategic)
        );
        let kargo = group_version("apis/kargo.akuity.io/v1alpha1").unwrap();
        let stage = consumes(
            &kargo,
            "/apis/kargo.akuity.io/v1alpha1/namespaces/{namespace}/stages/{name}",
        );
        assert!(!stage.contains(&strategic), "{stage:?}");
        assert!(stage.contains(&"application/merge-patch+json".to_owned()));
        let v2 = v2();
        let v2_consumes =
            &v2["paths"]["/apis/kargo.akuity.io/v1alpha1/projects/{name}"]["patch"]["consumes"];
        assert!(!v2_consumes.as_array().unwrap().contains(&strategic.into()));
    }

    #[test]
    fn documents_hash_what_they_serve() {
        let root = root();
        let url = root["paths"]["api/v1"]["serverRelativeURL"]
            .as_str()
            .unwrap();
        let hash = url.split("hash=").nth(1).unwrap();
        assert_eq!(hash, find_group_version("api/v1").unwrap().hash);
        let bytes = &find_group_version("api/v1").unwrap().bytes;
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA512, bytes);
        let expected: String = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(hash, expected);
    }

    #[test]
    fn documents_are_served_with_etags_and_in_the_asked_media_type() {
        let gv = find_group_version("api/v1").unwrap();
        let mut headers = HeaderMap::new();
        let query = format!("hash={}", gv.hash);
        let ok = serve(Request::GroupVersion("api/v1"), Some(&query), &headers);
        assert_eq!(ok.status(), StatusCode::OK);
        let etag = ok.headers()[header::ETAG].to_str().unwrap().to_owned();
        assert_eq!(etag, format!("\"{}\"", gv.hash));
        assert_eq!(
            ok.headers()[header::CACHE_CONTROL],
            "public, immutable, max-age=31536000"
        );
        let unhashed = serve(Request::Root, None, &headers);
        assert_eq!(
            unhashed.headers()[header::CACHE_CONTROL],
            "no-cache, private"
        );

        headers.insert(header::IF_NONE_MATCH, etag.parse().unwrap());
        let cached = serve(Request::GroupVersion("api/v1"), None, &headers);
        assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);

        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, V2_PROTOBUF_ASKED.parse().unwrap());
        let pb = serve(Request::V2, None, &headers);
        assert_eq!(pb.status(), StatusCode::OK);
        assert_eq!(pb.headers()[header::CONTENT_TYPE], V2_PROTOBUF);
        let refused = serve(Request::Root, None, &headers);
        assert_eq!(refused.status(), StatusCode::NOT_ACCEPTABLE);
        let missing = serve(
            Request::GroupVersion("apis/nothing/v1"),
            None,
            &HeaderMap::new(),
        );
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    }
}

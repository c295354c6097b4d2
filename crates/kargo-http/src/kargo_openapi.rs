//! The OpenAPI 3 document of the Kargo REST API (`GET /v1beta1/openapi.json`), generated from
//! the route table that routes ([`crate::kargo::ROUTES`]): every route's path and query
//! parameters, request body, success and error responses. The bodies' component schemas are
//! data here, referenced by name from the table. Kubernetes objects (ServiceAccount, Secret,
//! Project and their lists) are described by their metadata only; they carry what Kubernetes
//! puts in them.

use std::sync::OnceLock;

use kargo_api::expiry::EXPIRES_AT_ANNOTATION;
use kargo_api::last_used::{LAST_USED_AT_ANNOTATION, LAST_USED_FROM_ANNOTATION};
use kargo_api::resources::KARGO_API_VERSION;
use kargo_api::well_known::LEGACY_TOKEN_LAST_USED_LABEL;
use serde_json::{Value, json};

use crate::kargo::{Access, ROUTES, Route};

/// The parameters of the route paths, with their descriptions.
const PATH_PARAMS: &[(&str, &str)] = &[
    ("project", "Project name"),
    ("serviceaccount", "ServiceAccount name"),
    ("token", "Token Secret name"),
    ("apitoken", "API token Secret name"),
    ("role", "Role name"),
    ("federatedidentity", "Federated identity name"),
];

fn schema(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn path_param(name: &str, description: &str) -> Value {
    json!({
        "name": name,
        "in": "path",
        "required": true,
        "description": description,
        "schema": {"type": "string"},
    })
}

fn error(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": schema("Error")}},
    })
}

/// The parameters of a route: those of its path, in order, then its query parameters.
fn parameters(route: &Route) -> Vec<Value> {
    let mut out = Vec::new();
    for part in route.path.split('/') {
        if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            let description = PATH_PARAMS
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, d)| *d)
                .unwrap_or_else(|| panic!("{}: no description of {{{name}}}", route.path));
            out.push(path_param(name, description));
        }
    }
    for q in route.op.query {
        out.push(json!({
            "name": q.name,
            "in": "query",
            "required": false,
            "description": q.description,
            "schema": {"type": "string"},
        }));
    }
    out
}

/// The operation object of a route.
fn operation(route: &Route) -> Value {
    let public = route.op.access == Access::Public;
    let mut responses = serde_json::Map::new();
    let success = match route.op.response {
        Some(name) => {
            json!({"description": "Success", "content": {"application/json": {"schema": schema(name)}}})
        }
        None => json!({"description": "Success"}),
    };
    responses.insert(route.op.success.to_string(), success);
    let mut errors = vec![
        ("400", "Malformed request, or not allowed on this object"),
        ("404", "The project or object does not exist"),
        ("413", "Request body over 1 MiB"),
    ];
    if public {
        errors.extend([
            ("403", "Admin login disabled, or a wrong password"),
            (
                "429",
                "Too many wrong passwords from this address, or too many logins in progress (see Retry-After)",
            ),
        ]);
    } else {
        errors.extend([
            ("401", "No token, or an invalid one"),
            (
                "429",
                "An invalid token from an address that sent too many (see Retry-After)",
            ),
            ("403", "The caller may not do this"),
            ("409", "Conflicts with an existing object"),
            ("422", "The object is invalid"),
            ("504", "The token was not issued in time"),
        ]);
    }
    for (code, description) in errors {
        responses.insert(code.into(), error(description));
    }
    let mut op = json!({
        "operationId": route.operation_id,
        "summary": route.summary,
        "tags": [route.tag],
        "parameters": parameters(route),
        "responses": responses,
    });
    if let Some(body) = route.op.body {
        op["requestBody"] = json!({
            "required": true,
            "content": {route.op.body_type: {"schema": schema(body)}},
        });
    }
    if public {
        op["security"] = json!([]);
    }
    op
}

/// Names of new objects: DNS-1123 labels (valid for every kind, projects included).
fn name_schema() -> Value {
    json!({"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63})
}

fn schemas() -> Value {
    let string_map = json!({"type": "object", "additionalProperties": {"type": "string"}});
    json!({
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"type": "string"}},
        },
        "ObjectMeta": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "namespace": {"type": "string"},
                "labels": string_map,
                "annotations": string_map,
                "uid": {"type": "string"},
                "resourceVersion": {"type": "string"},
                "creationTimestamp": {"type": "string", "format": "date-time"},
            },
        },
        "NewObjectMeta": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": name_schema(),
                "namespace": {"type": "string"},
                "labels": string_map,
                "annotations": string_map,
            },
        },
        "KubernetesObject": {
            "type": "object",
            "description": "A Kubernetes object (ServiceAccount, Secret, Project)",
            "properties": {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "metadata": schema("ObjectMeta"),
            },
        },
        "TokenSecret": {
            "type": "object",
            "description": "A token Secret (type kubernetes.io/service-account-token), data.token redacted",
            "properties": {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "type": {"type": "string"},
                "metadata": schema("TokenSecretMeta"),
                "data": string_map,
            },
        },
        "TokenSecretMeta": {
            "type": "object",
            "description": "A token Secret's metadata: when the token expires and when it was last used",
            "properties": {
                "name": {"type": "string"},
                "namespace": {"type": "string"},
                "uid": {"type": "string"},
                "resourceVersion": {"type": "string"},
                "creationTimestamp": {"type": "string", "format": "date-time"},
                "labels": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                    "properties": {
                        LEGACY_TOKEN_LAST_USED_LABEL: {
                            "type": "string",
                            "format": "date",
                            "description": "The UTC date of the token's last use, updated at most daily (as Kubernetes)",
                        },
                    },
                },
                "annotations": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                    "properties": {
                        EXPIRES_AT_ANNOTATION: {
                            "type": "string",
                            "format": "date-time",
                            "description": "The token is refused from this time on (absent: never expires)",
                        },
                        LAST_USED_AT_ANNOTATION: {
                            "type": "string",
                            "format": "date-time",
                            "description": "The minute the token was last used (absent: never used); written by the server about once a minute",
                        },
                        LAST_USED_FROM_ANNOTATION: {
                            "type": "string",
                            "description": "The client address of a use in the minute of last-used-at",
                        },
                    },
                },
            },
        },
        "TokenSecretList": {
            "type": "object",
            "description": "A SecretList of token Secrets, items sorted by name",
            "required": ["items"],
            "properties": {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "metadata": {"type": "object"},
                "items": {"type": "array", "items": schema("TokenSecret")},
            },
        },
        "KubernetesList": {
            "type": "object",
            "description": "A Kubernetes list (ServiceAccountList, SecretList, ProjectList), items sorted by name",
            "required": ["items"],
            "properties": {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "metadata": {"type": "object"},
                "items": {"type": "array", "items": schema("KubernetesObject")},
            },
        },
        "NewServiceAccount": {
            "type": "object",
            "description": "A ServiceAccount; only metadata.name is required",
            "required": ["metadata"],
            "properties": {"metadata": schema("NewObjectMeta")},
        },
        "NewProject": {
            "type": "object",
            "description": format!("A Project ({KARGO_API_VERSION}); only metadata.name is required"),
            "required": ["metadata"],
            "properties": {
                "apiVersion": {"type": "string", "enum": [KARGO_API_VERSION]},
                "kind": {"type": "string", "enum": ["Project"]},
                "metadata": schema("NewObjectMeta"),
                "spec": {"type": "object"},
            },
        },
        "CreateTokenRequest": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": name_schema(),
                "expiresIn": {
                    "type": "string",
                    "description": "How long the token lives: a whole number of s, m, h or d (90d, 12h, 30m, 30s). Sets the Secret's kargo.akuity.io/expires-at.",
                },
                "expiresAt": {
                    "type": "string",
                    "format": "date-time",
                    "description": "When the token stops working (RFC 3339). Sets the Secret's kargo.akuity.io/expires-at.",
                },
                "description": {
                    "type": "string",
                    "maxLength": 256,
                    "description": "What the token is for (one line). Sets the Secret's kargo.akuity.io/description.",
                },
            },
        },
        "RotateTokenRequest": {
            "type": "object",
            "properties": {
                "grace": {
                    "type": "string",
                    "description": "How long the old value stays valid: 0 (the default: refused at once) or a whole number of s, m, h or d (24h). Sets the Secret's kargo.akuity.io/previous-token-sha256 and kargo.akuity.io/previous-token-valid-until.",
                },
            },
        },
        "Claim": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string"},
                "values": {"type": "array", "items": {"type": "string"}},
            },
        },
        "ServiceAccountReference": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string"},
                "namespace": {"type": "string", "description": "Defaults to the project"},
            },
        },
        "PolicyRule": {
            "type": "object",
            "required": ["verbs"],
            "properties": {
                "verbs": {"type": "array", "items": {"type": "string"}},
                "apiGroups": {"type": "array", "items": {"type": "string"}},
                "resources": {"type": "array", "items": {"type": "string"}},
                "resourceNames": {"type": "array", "items": {"type": "string"}},
            },
        },
        "Role": {
            "type": "object",
            "description": "A Kargo Role: a ServiceAccount, a Role and a RoleBinding of one name",
            "properties": {
                "metadata": schema("ObjectMeta"),
                "kargoManaged": {"type": "boolean"},
                "claims": {"type": "array", "items": schema("Claim")},
                "serviceAccounts": {"type": "array", "items": schema("ServiceAccountReference")},
                "rules": {"type": "array", "items": schema("PolicyRule")},
            },
        },
        "NewRole": {
            "type": "object",
            "description": "A Kargo Role to create; only metadata.name is required",
            "required": ["metadata"],
            "properties": {
                "metadata": schema("NewObjectMeta"),
                "claims": {"type": "array", "items": schema("Claim")},
                "serviceAccounts": {"type": "array", "items": schema("ServiceAccountReference")},
                "rules": {"type": "array", "items": schema("PolicyRule")},
            },
        },
        "RoleList": {"type": "array", "items": schema("Role")},
        "GrantRequest": {
            "type": "object",
            "description": "Exactly one of userClaims, serviceAccounts, resourceDetails is used, in that order of precedence",
            "properties": {
                "role": {"type": "string"},
                "userClaims": {
                    "type": "object",
                    "properties": {"claims": {"type": "array", "items": schema("Claim")}},
                },
                "serviceAccounts": {
                    "type": "object",
                    "properties": {
                        "serviceAccounts": {"type": "array", "items": schema("ServiceAccountReference")},
                    },
                },
                "resourceDetails": {
                    "type": "object",
                    "properties": {
                        "resourceType": {"type": "string"},
                        "resourceName": {"type": "string"},
                        "verbs": {"type": "array", "items": {"type": "string"}},
                    },
                },
            },
        },
        "FederatedIdentity": {
            "type": "object",
            "required": ["issuer", "subject"],
            "properties": {
                "name": {"type": "string", "description": "Generated (fid-<hash>) when absent"},
                "serviceAccount": {"type": "string", "readOnly": true},
                "issuer": {"type": "string", "description": "The CI issuer (https); the operator must allow it"},
                "subject": {"type": "string", "description": "Exact, or a glob whose * matches within one ':'-separated part"},
                "audience": {"type": "string", "description": "Defaults to the server's URL"},
                "claims": {"type": "object", "additionalProperties": {"type": "string"}},
                "createdAt": {"type": "string", "format": "date-time", "readOnly": true},
            },
        },
        "FederatedIdentityList": {
            "type": "object",
            "properties": {"items": {"type": "array", "items": schema("FederatedIdentity")}},
        },
        "TokenExchangeRequest": {
            "type": "object",
            "required": ["grant_type", "subject_token", "subject_token_type"],
            "properties": {
                "grant_type": {"type": "string", "enum": [kargo_auth::federation::GRANT_TYPE]},
                "subject_token": {"type": "string", "description": "The CI job's OIDC token"},
                "subject_token_type": {"type": "string", "enum": kargo_auth::federation::SUBJECT_TOKEN_TYPES},
                "scope": {"type": "string", "description": "project/<project>/serviceaccount/<name>, when several accounts trust the identity"},
                "requested_lifetime": {"type": "integer", "description": "Seconds (default 900, at most the server's --federated-token-max-lifetime)"},
            },
        },
        "TokenExchangeResponse": {
            "type": "object",
            "properties": {
                "access_token": {"type": "string"},
                "issued_token_type": {"type": "string"},
                "token_type": {"type": "string"},
                "expires_in": {"type": "integer"},
            },
        },
        "LoginResponse": {
            "type": "object",
            "properties": {"idToken": {"type": "string"}},
        },
        "PublicServerConfig": {
            "type": "object",
            "properties": {
                "oidcConfig": {
                    "type": "object",
                    "nullable": true,
                    "properties": {
                        "issuerUrl": {"type": "string"},
                        "clientId": {"type": "string"},
                        "cliClientId": {"type": "string"},
                        "scopes": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "adminAccountEnabled": {"type": "boolean"},
                "skipAuth": {"type": "boolean"},
            },
        },
    })
}

/// Links from creations to what uses the created object, for stateful testing:
/// `(from operation, to operation, parameters)`.
fn links() -> Vec<(&'static str, &'static str, Value)> {
    let name = "$response.body#/metadata/name";
    let project = "$request.path.project";
    let mut out = Vec::new();
    for to in [
        "GetProject",
        "DeleteProject",
        "ListProjectRoles",
        "ListProjectServiceAccounts",
    ] {
        out.push(("CreateProject", to, json!({"project": name})));
    }
    for to in [
        "GetProjectServiceAccount",
        "DeleteProjectServiceAccount",
        "CreateProjectServiceAccountToken",
    ] {
        out.push((
            "CreateProjectServiceAccount",
            to,
            json!({"project": project, "serviceaccount": name}),
        ));
    }
    for to in [
        "GetProjectServiceAccountToken",
        "DeleteProjectServiceAccountToken",
        "DisableProjectServiceAccountToken",
        "EnableProjectServiceAccountToken",
        "RotateProjectServiceAccountToken",
    ] {
        out.push((
            "CreateProjectServiceAccountToken",
            to,
            json!({"project": project, "token": name}),
        ));
    }
    for to in [
        "GetProjectRole",
        "UpdateProjectRole",
        "DeleteProjectRole",
        "CreateProjectAPIToken",
    ] {
        out.push((
            "CreateProjectRole",
            to,
            json!({"project": project, "role": name}),
        ));
    }
    for to in [
        "GetProjectAPIToken",
        "DeleteProjectAPIToken",
        "DisableProjectAPIToken",
        "EnableProjectAPIToken",
        "RotateProjectAPIToken",
    ] {
        out.push((
            "CreateProjectAPIToken",
            to,
            json!({"project": project, "apitoken": name}),
        ));
    }
    out
}

fn add_links(paths: &mut serde_json::Map<String, Value>) {
    for (from, to, parameters) in links() {
        for item in paths.values_mut() {
            let Some(methods) = item.as_object_mut() else {
                continue;
            };
            for op in methods.values_mut() {
                if op["operationId"] != from {
                    continue;
                }
                let Some(responses) = op["responses"].as_object_mut() else {
                    continue;
                };
                for (code, response) in responses.iter_mut() {
                    if code.starts_with('2') {
                        response["links"][to] =
                            json!({"operationId": to, "parameters": parameters});
                    }
                }
            }
        }
    }
}

/// The document.
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut paths = serde_json::Map::new();
        for route in ROUTES {
            let entry = paths
                .entry(route.path.to_owned())
                .or_insert_with(|| json!({}));
            entry[route.method.openapi_name()] = operation(route);
        }
        add_links(&mut paths);
        json!({
            "openapi": "3.0.3",
            "info": {
                "title": "Kargo REST API",
                "version": "v1beta1",
                "description": "Projects, Kargo ServiceAccounts, their tokens, and Kargo Roles. Errors are {\"error\": \"<message>\"}.",
            },
            "servers": [{"url": "/"}],
            "security": [{"BearerAuth": []}],
            "paths": paths,
            "components": {
                "securitySchemes": {"BearerAuth": {"type": "http", "scheme": "bearer"}},
                "schemas": schemas(),
            },
        })
    })
}

/// Every `(method, path)` the document describes, for tests that compare it with the router.
pub fn routes() -> Vec<(&'static str, &'static str)> {
    ROUTES
        .iter()
        .map(|r| (r.method.openapi_name(), r.path))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reference_resolves() {
        let doc = document();
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for part in text.split("#/components/schemas/").skip(1) {
            let name: String = part.chars().take_while(|c| c.is_alphanumeric()).collect();
            assert!(schemas.contains_key(&name), "{name}");
        }
    }

    #[test]
    fn operation_ids_are_unique_and_paths_start_with_v1beta1() {
        let mut ids: Vec<&str> = ROUTES.iter().map(|r| r.operation_id).collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n);
        assert!(routes().iter().all(|(_, p)| p.starts_with("/v1beta1/")));
    }

    #[test]
    fn every_route_is_described_once_and_every_described_operation_is_routed() {
        let doc = document();
        let mut described = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                described.push((method.as_str(), path.as_str(), op["operationId"].clone()));
            }
        }
        let routed: Vec<_> = ROUTES
            .iter()
            .map(|r| (r.method.openapi_name(), r.path, json!(r.operation_id)))
            .collect();
        assert_eq!(described.len(), routed.len());
        for r in &routed {
            assert!(described.contains(r), "{r:?}");
        }
    }

    #[test]
    fn links_name_operations_of_the_table() {
        let ids: Vec<&str> = ROUTES.iter().map(|r| r.operation_id).collect();
        for (from, to, _) in links() {
            assert!(ids.contains(&from) && ids.contains(&to), "{from} -> {to}");
        }
    }
}

//! The OpenAPI 3 document of the Kargo REST API (`GET /v1beta1/openapi.json`): every `/v1beta1`
//! route with its parameters, request body, success and error responses, and the bodies'
//! schemas. Kubernetes objects (ServiceAccount, Secret, Project and their lists) are described by
//! their metadata only; they carry what Kubernetes puts in them.

use std::sync::OnceLock;

use serde_json::{Value, json};

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

/// One operation. `ok` is the success code and the schema of its body (none for 204).
struct Op<'a> {
    id: &'a str,
    summary: &'a str,
    tag: &'a str,
    params: Vec<Value>,
    body: Option<Value>,
    ok: (u16, Option<Value>),
    public: bool,
}

impl Op<'_> {
    fn to_json(&self) -> Value {
        let mut responses = serde_json::Map::new();
        let (code, body) = &self.ok;
        let success = match body {
            Some(s) => {
                json!({"description": "Success", "content": {"application/json": {"schema": s}}})
            }
            None => json!({"description": "Success"}),
        };
        responses.insert(code.to_string(), success);
        let mut errors = vec![
            ("400", "Malformed request, or not allowed on this object"),
            ("404", "The project or object does not exist"),
            ("413", "Request body over 1 MiB"),
        ];
        if self.public {
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
            "operationId": self.id,
            "summary": self.summary,
            "tags": [self.tag],
            "parameters": self.params,
            "responses": responses,
        });
        if let Some(body) = &self.body {
            op["requestBody"] = json!({
                "required": true,
                "content": {"application/json": {"schema": body}},
            });
        }
        if self.public {
            op["security"] = json!([]);
        }
        op
    }
}

/// Names of new objects: DNS-1123 labels (valid for every kind, projects included).
fn name_schema() -> Value {
    json!({"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63})
}

fn project() -> Value {
    path_param("project", "Project name")
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
            "description": "A Project (kargo.akuity.io/v1alpha1); only metadata.name is required",
            "required": ["metadata"],
            "properties": {
                "apiVersion": {"type": "string", "enum": ["kargo.akuity.io/v1alpha1"]},
                "kind": {"type": "string", "enum": ["Project"]},
                "metadata": schema("NewObjectMeta"),
                "spec": {"type": "object"},
            },
        },
        "CreateTokenRequest": {
            "type": "object",
            "required": ["name"],
            "properties": {"name": name_schema()},
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
        "LoginResponse": {
            "type": "object",
            "properties": {"idToken": {"type": "string"}},
        },
        "PublicServerConfig": {
            "type": "object",
            "properties": {
                "oidcConfig": {"nullable": true},
                "adminAccountEnabled": {"type": "boolean"},
                "skipAuth": {"type": "boolean"},
            },
        },
    })
}

fn operations() -> Vec<(&'static str, &'static str, Op<'static>)> {
    let obj = || Some(schema("KubernetesObject"));
    let list = || Some(schema("KubernetesList"));
    let sa = || path_param("serviceaccount", "ServiceAccount name");
    let token = || path_param("token", "Token Secret name");
    let role = || path_param("role", "Role name");
    let sa_filter = || {
        json!({
            "name": "serviceAccount",
            "in": "query",
            "required": false,
            "description": "Only the tokens of this ServiceAccount",
            "schema": {"type": "string"},
        })
    };
    let op =
        |id, summary, tag, params: Vec<Value>, body: Option<Value>, ok: (u16, Option<Value>)| Op {
            id,
            summary,
            tag,
            params,
            body,
            ok,
            public: false,
        };
    vec![
        (
            "/v1beta1/login",
            "post",
            Op {
                id: "AdminLogin",
                summary: "Log in as the admin (password as `Authorization: Bearer <password>`)",
                tag: "System",
                params: vec![],
                body: None,
                ok: (200, Some(schema("LoginResponse"))),
                public: true,
            },
        ),
        (
            "/v1beta1/logout",
            "post",
            op(
                "AdminLogout",
                "End the session of the admin token that sends this (on every replica)",
                "System",
                vec![],
                None,
                (204, None),
            ),
        ),
        (
            "/v1beta1/system/public-server-config",
            "get",
            Op {
                id: "GetPublicServerConfig",
                summary: "The server's public configuration",
                tag: "System",
                params: vec![],
                body: None,
                ok: (200, Some(schema("PublicServerConfig"))),
                public: true,
            },
        ),
        (
            "/v1beta1/projects",
            "get",
            op(
                "ListProjects",
                "List projects",
                "Projects",
                vec![],
                None,
                (200, list()),
            ),
        ),
        (
            "/v1beta1/projects",
            "post",
            op(
                "CreateProject",
                "Create a project: its namespace and default roles",
                "Projects",
                vec![],
                Some(schema("NewProject")),
                (201, obj()),
            ),
        ),
        (
            "/v1beta1/projects/{project}",
            "get",
            op(
                "GetProject",
                "Get a project",
                "Projects",
                vec![project()],
                None,
                (200, obj()),
            ),
        ),
        (
            "/v1beta1/projects/{project}",
            "delete",
            op(
                "DeleteProject",
                "Delete a project and everything in it",
                "Projects",
                vec![project()],
                None,
                (204, None),
            ),
        ),
        (
            "/v1beta1/projects/{project}/service-accounts",
            "get",
            op(
                "ListProjectServiceAccounts",
                "List Kargo ServiceAccounts",
                "ServiceAccounts",
                vec![project()],
                None,
                (200, list()),
            ),
        ),
        (
            "/v1beta1/projects/{project}/service-accounts",
            "post",
            op(
                "CreateProjectServiceAccount",
                "Create a Kargo ServiceAccount",
                "ServiceAccounts",
                vec![project()],
                Some(schema("NewServiceAccount")),
                (201, obj()),
            ),
        ),
        (
            "/v1beta1/projects/{project}/service-accounts/{serviceaccount}",
            "get",
            op(
                "GetProjectServiceAccount",
                "Get a Kargo ServiceAccount",
                "ServiceAccounts",
                vec![project(), sa()],
                None,
                (200, obj()),
            ),
        ),
        (
            "/v1beta1/projects/{project}/service-accounts/{serviceaccount}",
            "delete",
            op(
                "DeleteProjectServiceAccount",
                "Delete a Kargo ServiceAccount, its tokens and its grants",
                "ServiceAccounts",
                vec![project(), sa()],
                None,
                (204, None),
            ),
        ),
        (
            "/v1beta1/projects/{project}/service-accounts/{serviceaccount}/tokens",
            "post",
            op(
                "CreateProjectServiceAccountToken",
                "Create a token; the answer is the only time it is shown",
                "Tokens",
                vec![project(), sa()],
                Some(schema("CreateTokenRequest")),
                (201, obj()),
            ),
        ),
        (
            "/v1beta1/projects/{project}/service-account-tokens",
            "get",
            op(
                "ListProjectServiceAccountTokens",
                "List tokens (redacted)",
                "Tokens",
                vec![project(), sa_filter()],
                None,
                (200, list()),
            ),
        ),
        (
            "/v1beta1/projects/{project}/service-account-tokens/{token}",
            "get",
            op(
                "GetProjectServiceAccountToken",
                "Get a token (redacted)",
                "Tokens",
                vec![project(), token()],
                None,
                (200, obj()),
            ),
        ),
        (
            "/v1beta1/projects/{project}/service-account-tokens/{token}",
            "delete",
            op(
                "DeleteProjectServiceAccountToken",
                "Delete a token",
                "Tokens",
                vec![project(), token()],
                None,
                (204, None),
            ),
        ),
        (
            "/v1beta1/projects/{project}/roles",
            "get",
            op(
                "ListProjectRoles",
                "List roles",
                "Roles",
                vec![project()],
                None,
                (200, Some(schema("RoleList"))),
            ),
        ),
        (
            "/v1beta1/projects/{project}/roles",
            "post",
            op(
                "CreateProjectRole",
                "Create a role",
                "Roles",
                vec![project()],
                Some(schema("NewRole")),
                (201, Some(schema("Role"))),
            ),
        ),
        (
            "/v1beta1/projects/{project}/roles/{role}",
            "get",
            op(
                "GetProjectRole",
                "Get a role",
                "Roles",
                vec![project(), role()],
                None,
                (200, Some(schema("Role"))),
            ),
        ),
        (
            "/v1beta1/projects/{project}/roles/{role}",
            "put",
            op(
                "UpdateProjectRole",
                "Replace a role's claims, description and rules",
                "Roles",
                vec![project(), role()],
                Some(schema("Role")),
                (200, Some(schema("Role"))),
            ),
        ),
        (
            "/v1beta1/projects/{project}/roles/{role}",
            "delete",
            op(
                "DeleteProjectRole",
                "Delete a role",
                "Roles",
                vec![project(), role()],
                None,
                (204, None),
            ),
        ),
        (
            "/v1beta1/projects/{project}/roles/grants",
            "post",
            op(
                "GrantProjectRole",
                "Grant a role to ServiceAccounts or users, or a permission to a role",
                "Roles",
                vec![project()],
                Some(schema("GrantRequest")),
                (200, Some(schema("Role"))),
            ),
        ),
        (
            "/v1beta1/projects/{project}/roles/revocations",
            "post",
            op(
                "RevokeProjectRole",
                "Revoke a role from ServiceAccounts or users, or a permission from a role",
                "Roles",
                vec![project()],
                Some(schema("GrantRequest")),
                (200, Some(schema("Role"))),
            ),
        ),
        (
            "/v1beta1/system/service-accounts",
            "get",
            op(
                "ListSystemServiceAccounts",
                "List system Kargo ServiceAccounts",
                "System",
                vec![],
                None,
                (200, list()),
            ),
        ),
        (
            "/v1beta1/system/service-accounts/{serviceaccount}",
            "get",
            op(
                "GetSystemServiceAccount",
                "Get a system Kargo ServiceAccount",
                "System",
                vec![sa()],
                None,
                (200, obj()),
            ),
        ),
        (
            "/v1beta1/system/service-accounts/{serviceaccount}/tokens",
            "post",
            op(
                "CreateSystemServiceAccountToken",
                "Create a token of a system ServiceAccount",
                "System",
                vec![sa()],
                Some(schema("CreateTokenRequest")),
                (201, obj()),
            ),
        ),
        (
            "/v1beta1/system/service-account-tokens",
            "get",
            op(
                "ListSystemServiceAccountTokens",
                "List system tokens (redacted)",
                "System",
                vec![sa_filter()],
                None,
                (200, list()),
            ),
        ),
        (
            "/v1beta1/system/service-account-tokens/{token}",
            "get",
            op(
                "GetSystemServiceAccountToken",
                "Get a system token (redacted)",
                "System",
                vec![token()],
                None,
                (200, obj()),
            ),
        ),
        (
            "/v1beta1/system/service-account-tokens/{token}",
            "delete",
            op(
                "DeleteSystemServiceAccountToken",
                "Delete a system token",
                "System",
                vec![token()],
                None,
                (204, None),
            ),
        ),
        (
            "/v1beta1/system/roles",
            "get",
            op(
                "ListSystemRoles",
                "List system roles (read only)",
                "System",
                vec![],
                None,
                (200, Some(schema("RoleList"))),
            ),
        ),
        (
            "/v1beta1/system/roles/{role}",
            "get",
            op(
                "GetSystemRole",
                "Get a system role (read only)",
                "System",
                vec![role()],
                None,
                (200, Some(schema("Role"))),
            ),
        ),
    ]
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
    ] {
        out.push((
            "CreateProjectServiceAccountToken",
            to,
            json!({"project": project, "token": name}),
        ));
    }
    for to in ["GetProjectRole", "UpdateProjectRole", "DeleteProjectRole"] {
        out.push((
            "CreateProjectRole",
            to,
            json!({"project": project, "role": name}),
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
        for (path, method, op) in operations() {
            let entry = paths
                .entry(path.to_owned())
                .or_insert_with(|| json!({}));
            entry[method] = op.to_json();
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
    operations()
        .into_iter()
        .map(|(path, method, _)| (method, path))
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
        let mut ids: Vec<&str> = operations().iter().map(|(_, _, op)| op.id).collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n);
        assert!(routes().iter().all(|(_, p)| p.starts_with("/v1beta1/")));
    }
}

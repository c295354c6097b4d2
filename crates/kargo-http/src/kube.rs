//! The Kubernetes API: `/api/...` and `/apis/...`. Parses the request into [`RequestInfo`],
//! authorizes it, and calls one registry operation per verb.

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::response::Response;
use futures::StreamExt;
use http::{HeaderMap, HeaderValue, StatusCode, Uri};
use kargo_api::field::FieldError;
use kargo_api::resources::{self, PROJECTS, ResourceType, Storage};
use serde_json::{Value, json};

use super::{AppState, body, discovery, json_response, metadata, table};
use crate::StatusResponse;
use kargo_api::request_info::{RequestInfo, Verb};
use kargo_auth::rbac::UserInfo;
use kargo_registry::status::{Result, Status};
use kargo_registry::{
    DeleteOptions, FieldValidation, ListOptions, Target, WatchOptions, WriteOptions, Written,
    patch::PatchType,
};

/// Query parameters, first value of each.
pub(crate) type Query = HashMap<String, String>;

/// Parses a query string.
pub(crate) fn parse_query(uri: &Uri) -> Query {
    let mut out = HashMap::new();
    if let Some(q) = uri.query() {
        for (k, v) in form_urlencoded::parse(q.as_bytes()) {
            out.entry(k.into_owned()).or_insert_with(|| v.into_owned());
        }
    }
    out
}

pub(crate) fn flag(query: &Query, key: &str) -> bool {
    matches!(query.get(key).map(String::as_str), Some("true" | "1"))
}

/// Serves one authenticated request to an `/api` or `/apis` path. It takes the request whole
/// rather than through extractors, which would copy the headers (with the bearer token) on every
/// request. `info` is the request's attributes when the request seam has parsed them already.
pub(crate) async fn handle(
    app: &AppState,
    user: &UserInfo,
    request: axum::extract::Request,
    info: Option<&RequestInfo<'_>>,
) -> Response {
    let (parts, body) = request.into_parts();
    let (method, uri, headers) = (parts.method, parts.uri, parts.headers);
    let body = match body::read(body, body::MAX_BODY).await {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Status::too_large(body::MAX_BODY).into_response(),
        Err(status) => return status.into_response(),
    };
    let query = parse_query(&uri);
    let parsed;
    let info = match info {
        Some(info) => info,
        None => {
            parsed = RequestInfo::parse(method.as_str(), uri.path(), flag(&query, "watch"));
            &parsed
        }
    };
    match serve(app, user, info, &query, &headers, body).await {
        Ok(response) => response,
        Err(status) => status.into_response(),
    }
}

/// One request to a resource, authorized and resolved to its type: what the handlers of each
/// verb family read.
struct ResourceRequest<'r> {
    app: &'r AppState,
    user: &'r UserInfo,
    rt: &'static ResourceType,
    /// `None` for a cluster-scoped type, or a namespaced type across all namespaces.
    namespace: Option<&'r str>,
    info: &'r RequestInfo<'r>,
    query: &'r Query,
    headers: &'r HeaderMap,
}

impl ResourceRequest<'_> {
    /// The object the path names.
    fn target(&self) -> Target<'_> {
        Target::new(self.rt, self.namespace, self.info.name)
    }

    /// How to render what is read, as the client's `Accept` asks: a `Table` (kubectl) before
    /// metadata only, before the objects themselves.
    fn rendering(&self) -> Rendering {
        if table::wanted(self.headers) {
            let include = self.query.get("includeObject").map(String::as_str);
            Rendering::Table(table::Include::parse(include))
        } else if metadata::wanted(self.headers) {
            Rendering::Metadata
        } else {
            Rendering::Objects
        }
    }
}

/// How a read (get, list, watch event) is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rendering {
    /// The objects as stored.
    Objects,
    /// A `Table` of kubectl's columns.
    Table(table::Include),
    /// `PartialObjectMetadata`: each object's `metadata` only.
    Metadata,
}

async fn serve(
    app: &AppState,
    user: &UserInfo,
    info: &RequestInfo<'_>,
    query: &Query,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response> {
    if !info.is_resource_request {
        app.authorize(user, info)?;
        return discovery_response(app, info, headers);
    }
    if is_crd_read(info) {
        app.authorize(user, info)?;
        return crd_read(info);
    }
    let (rt, namespace) = resolve(info)?;
    app.authorize(user, info)?;
    // Every path but a read is boxed: a request's future is as large as its largest path, and
    // a read, the commonest request, should not carry (and move) a write's kilobytes.
    if rt.storage == Storage::Virtual || info.subresource == "token" {
        let body = body::decode(headers, &body)?;
        return Box::pin(super::reviews::create(app, user, rt, info, body)).await;
    }
    let request = ResourceRequest {
        app,
        user,
        rt,
        namespace,
        info,
        query,
        headers,
    };
    if !info.subresource.is_empty() {
        return Box::pin(subresource(&request, body)).await;
    }
    match info.verb {
        Verb::Get | Verb::List => read(&request).await,
        Verb::Watch => Box::pin(watch(&request)).await,
        Verb::Create | Verb::Update | Verb::Patch => Box::pin(write(&request, body)).await,
        Verb::Delete | Verb::DeleteCollection => Box::pin(delete(&request, body)).await,
        _ => Err(Status::method_not_allowed()),
    }
}

/// Whether a request reads `apiextensions.k8s.io/v1` `customresourcedefinitions`: served
/// read-only (and outside discovery) with Kargo's CRDs, because kubectl lists them to decide
/// how to validate a kind its OpenAPI documents give no `patch` operation (the reviews).
fn is_crd_read(info: &RequestInfo<'_>) -> bool {
    info.api_group == "apiextensions.k8s.io"
        && info.api_version == "v1"
        && info.resource == "customresourcedefinitions"
        && info.namespace.is_empty()
        && info.subresource.is_empty()
        && !info.has_extra_segments()
        && matches!(info.verb, Verb::Get | Verb::List)
}

/// A get or list of Kargo's CustomResourceDefinitions ([`kargo_api::crd::definitions`]).
fn crd_read(info: &RequestInfo<'_>) -> Result<Response> {
    let crds = kargo_api::crd::definitions();
    if info.verb == Verb::Get {
        let crd = crds
            .iter()
            .find(|c| c["metadata"]["name"] == info.name)
            .ok_or_else(|| {
                Status::failure(
                    404,
                    "NotFound",
                    format!(
                        "customresourcedefinitions.apiextensions.k8s.io \"{}\" not found",
                        info.name
                    ),
                )
            })?;
        return Ok(json_response(StatusCode::OK, crd, &[]));
    }
    let list = json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinitionList",
        "metadata": {"resourceVersion": ""},
        "items": crds,
    });
    Ok(json_response(StatusCode::OK, &list, &[]))
}

/// The type a resource path names and its namespace, or 404 for a path that names nothing.
fn resolve<'r>(info: &RequestInfo<'r>) -> Result<(&'static ResourceType, Option<&'r str>)> {
    let rt = resources::find(info.api_group, info.api_version, info.resource)
        .filter(|_| !info.has_extra_segments())
        .ok_or_else(Status::no_route)?;
    // A namespaced path for a cluster-scoped type (other than a namespace itself) names nothing.
    if !rt.namespaced && !info.namespace.is_empty() && rt.plural != "namespaces" {
        return Err(Status::no_route());
    }
    let namespace = (rt.namespaced && !info.namespace.is_empty()).then_some(info.namespace);
    if rt.namespaced && namespace.is_none() && !matches!(info.verb, Verb::List | Verb::Watch) {
        return Err(Status::no_route());
    }
    if !info.subresource.is_empty() && rt.subresource(info.subresource).is_none() {
        return Err(Status::no_route());
    }
    Ok((rt, namespace))
}

/// `get` and `list`, as JSON, as a `Table` or as `PartialObjectMetadata`.
async fn read(request: &ResourceRequest<'_>) -> Result<Response> {
    let (registry, rt) = (&request.app.registry, request.rt);
    let rendering = request.rendering();
    if request.info.verb == Verb::Get {
        if rendering == Rendering::Objects {
            return Ok(json_bytes_response(
                registry.get_json(request.target()).await?,
            ));
        }
        let obj = registry.get(request.target()).await?;
        return Ok(match rendering {
            Rendering::Table(include) => {
                let rv = json!({"resourceVersion": kargo_registry::Meta::resource_version(&obj)});
                table_response(&table::table(rt, std::slice::from_ref(&obj), rv, include))
            }
            _ => json_response(StatusCode::OK, &metadata::object(&obj), &[]),
        });
    }
    let options = list_options(rt, request.query)?;
    let list = registry.list(rt, request.namespace, &options).await?;
    match rendering {
        Rendering::Table(include) => {
            let json = list.to_json(rt);
            Ok(table_response(&table::table(
                rt,
                &list.items,
                json["metadata"].clone(),
                include,
            )))
        }
        Rendering::Metadata => Ok(json_response(
            StatusCode::OK,
            &metadata::list(&list.to_json(rt)),
            &list.warnings(),
        )),
        Rendering::Objects => Ok(json_response(
            StatusCode::OK,
            &list.to_json(rt),
            &list.warnings(),
        )),
    }
}

/// `create`, `update` and `patch`: the written object once this server's views have seen it.
async fn write(request: &ResourceRequest<'_>, body: Bytes) -> Result<Response> {
    let (app, rt, query, headers) = (request.app, request.rt, request.query, request.headers);
    let registry = &app.registry;
    let (code, written) = match request.info.verb {
        Verb::Create => {
            let mut body = body::decode_reporting_duplicates(headers, &body)?;
            let project = rt.plural == PROJECTS.plural && rt.group == PROJECTS.group;
            if project {
                kargo_core::projects::stamp_create_actor(request.user, &mut body.value);
            }
            let mut options = write_options_for(app, request.user, rt, query, headers)?;
            options.duplicate_fields = body.duplicates;
            let written = registry
                .create(rt, request.namespace, body.value, &options)
                .await?;
            if project && !options.dry_run {
                project_ready(app, kargo_registry::Meta::name(&written.object)).await;
            }
            (StatusCode::CREATED, written)
        }
        Verb::Update => {
            let body = body::decode_reporting_duplicates(headers, &body)?;
            let mut options = write_options(query, headers)?;
            options.duplicate_fields = body.duplicates;
            let written = registry
                .update(request.target(), body.value, &options)
                .await?;
            (StatusCode::OK, written)
        }
        _ => {
            let patch_type = PatchType::from_content_type(&body::content_type(headers))?;
            if body.len() > body::MAX_BODY {
                return Err(Status::too_large(body::MAX_BODY));
            }
            let mut options = write_options_for(app, request.user, rt, query, headers)?;
            patch_options(patch_type, query, &mut options)?;
            let written = registry
                .patch(request.target(), patch_type, &body, &options)
                .await?;
            let code = if written.created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            (code, written)
        }
    };
    app.await_seen(&written.object).await;
    Ok(written_response(code, &written))
}

/// A Project created through this API made ready before its create is answered, as the Kargo
/// API's create does: its namespace and default roles exist when the client gets the Project.
/// Best effort: the project controller finishes what this could not.
async fn project_ready(app: &AppState, name: &str) {
    match kargo_core::projects::make_ready(&app.registry, name).await {
        Ok(Some(ready)) => app.await_seen(&ready).await,
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(project = name, error = %e, "making a new project ready failed; its controller will retry")
        }
    }
}

/// `delete` and `deletecollection`: what was deleted once this server's views have seen it.
async fn delete(request: &ResourceRequest<'_>, body: Bytes) -> Result<Response> {
    let (app, rt, query) = (request.app, request.rt, request.query);
    if request.info.verb == Verb::Delete {
        let options = delete_options(query, &body)?;
        let deleted = app.registry.delete(request.target(), &options).await?;
        app.await_seen(deleted.object()).await;
        return Ok(json_response(StatusCode::OK, &deleted.response(rt), &[]));
    }
    let list = list_options(rt, query)?;
    let options = delete_options(query, &body)?;
    let deleted = app
        .registry
        .delete_collection(rt, request.namespace, &list, &options)
        .await?;
    if let Some(last) = deleted.items.last() {
        app.await_seen(last).await;
    }
    Ok(json_response(StatusCode::OK, &deleted.to_json(rt), &[]))
}

fn discovery_response(
    app: &AppState,
    info: &RequestInfo<'_>,
    headers: &HeaderMap,
) -> Result<Response> {
    if info.verb != Verb::Get {
        return Err(Status::method_not_allowed());
    }
    let parts: Vec<&str> = info.path.trim_matches('/').split('/').collect();
    if matches!(parts.as_slice(), ["api"] | ["apis"]) && discovery::aggregated_wanted(headers) {
        let mut response = json_response(
            StatusCode::OK,
            &discovery::aggregated(parts == ["api"]),
            &[],
        );
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(discovery::AGGREGATED_CONTENT_TYPE),
        );
        response
            .headers_mut()
            .insert(http::header::VARY, HeaderValue::from_static("Accept"));
        return Ok(response);
    }
    let doc = match parts.as_slice() {
        ["api"] => Some(discovery::api_versions(&app.advertised_address)),
        ["api", version] => discovery::api_resource_list("", version),
        ["apis"] => Some(discovery::api_group_list()),
        ["apis", group] => discovery::api_group(group),
        ["apis", group, version] => discovery::api_resource_list(group, version),
        _ => None,
    };
    let doc = doc.ok_or_else(Status::no_route)?;
    Ok(json_response(StatusCode::OK, &doc, &[]))
}

fn parse_limit(query: &Query) -> Result<usize> {
    match query.get("limit").map(String::as_str) {
        None | Some("") => Ok(0),
        Some(s) => s
            .parse::<i64>()
            .map(|n| n.max(0) as usize)
            .map_err(|_| Status::bad_request(format!("invalid limit: {s}"))),
    }
}

fn list_options(rt: &ResourceType, query: &Query) -> Result<ListOptions> {
    let mut options = ListOptions::with_selectors(
        rt,
        query.get("labelSelector").map(String::as_str),
        query.get("fieldSelector").map(String::as_str),
    )?;
    options.limit = parse_limit(query)?;
    options.continue_token = query.get("continue").filter(|c| !c.is_empty()).cloned();
    options.resource_version = query.get("resourceVersion").cloned();
    options.resource_version_match = query
        .get("resourceVersionMatch")
        .filter(|c| !c.is_empty())
        .cloned();
    Ok(options)
}

fn write_options_for(
    app: &AppState,
    user: &UserInfo,
    rt: &'static ResourceType,
    query: &Query,
    headers: &HeaderMap,
) -> Result<WriteOptions> {
    let mut options = write_options(query, headers)?;
    options.admission = app.authz.admission(user, rt);
    Ok(options)
}

/// The options only a PATCH has, checked as kube-apiserver's `ValidatePatchOptions`: a
/// server-side apply needs `?fieldManager=` (the User-Agent does not count) and may `force`;
/// other patches may not `force`.
fn patch_options(patch_type: PatchType, query: &Query, options: &mut WriteOptions) -> Result<()> {
    let force = match query.get("force").map(String::as_str) {
        None | Some("") => None,
        Some(v) => Some(v == "true" || v == "1"),
    };
    if patch_type == PatchType::Apply {
        if query.get("fieldManager").is_none_or(String::is_empty) {
            return Err(Status::invalid_patch_options(&[FieldError::required(
                "fieldManager",
                "is required for apply patch",
            )]));
        }
        options.force = force.unwrap_or(false);
    } else if force.is_some() {
        return Err(Status::invalid_patch_options(&[FieldError::forbidden(
            "force",
            "may not be specified for non-apply patch",
        )]));
    }
    Ok(())
}

/// Who writes (`metadata.managedFields`): `?fieldManager=`, else kube-apiserver's default, the
/// User-Agent up to its first `/` (printable characters, at most 128 bytes). A `fieldManager`
/// longer than 128 bytes is kube-apiserver's 422.
fn field_manager(query: &Query, headers: &HeaderMap) -> Result<Option<String>> {
    if let Some(manager) = query.get("fieldManager").filter(|m| !m.is_empty()) {
        if manager.len() > FIELD_MANAGER_MAX_LENGTH {
            return Err(Status::invalid_patch_options(&[FieldError::too_long(
                "fieldManager",
                Some(FIELD_MANAGER_MAX_LENGTH),
            )]));
        }
        return Ok(Some(manager.clone()));
    }
    let agent = headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let mut manager = String::new();
    for c in agent.split('/').next().unwrap_or_default().chars() {
        if c.is_control() {
            continue;
        }
        if manager.len() + c.len_utf8() > FIELD_MANAGER_MAX_LENGTH {
            break;
        }
        manager.push(c);
    }
    Ok(Some(manager).filter(|m| !m.is_empty()))
}

/// kube-apiserver's `FieldManagerMaxLength`.
const FIELD_MANAGER_MAX_LENGTH: usize = 128;

fn write_options(query: &Query, headers: &HeaderMap) -> Result<WriteOptions> {
    let dry_run = match query.get("dryRun").map(String::as_str) {
        None | Some("") => false,
        Some("All") => true,
        Some(other) => {
            return Err(Status::bad_request(format!(
                "Invalid dryRun value: {other}. Must be one of: All"
            )));
        }
    };
    Ok(WriteOptions {
        dry_run,
        field_validation: FieldValidation::parse(query.get("fieldValidation").map(String::as_str))?,
        admission: None,
        duplicate_fields: Vec::new(),
        field_manager: field_manager(query, headers)?,
        force: false,
    })
}

fn delete_options(query: &Query, body: &Bytes) -> Result<DeleteOptions> {
    let mut options: DeleteOptions = if body.iter().all(u8::is_ascii_whitespace) {
        DeleteOptions::default()
    } else {
        let value = body::decode_json(body).or_else(|_| {
            crate::protobuf::decode(body).map_err(|e| Status::bad_request(e.to_string()))
        })?;
        serde_json::from_value(value)
            .map_err(|e| Status::bad_request(format!("invalid DeleteOptions: {e}")))?
    };
    if let Some(p) = query.get("propagationPolicy") {
        options.propagation_policy = Some(
            serde_json::from_value(Value::String(p.clone())).map_err(|_| {
                Status::bad_request(format!(
                    "propagationPolicy: Unsupported value: \"{p}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
                ))
            })?,
        );
    }
    if let Some(o) = query.get("orphanDependents") {
        options.orphan_dependents = Some(o == "true");
    }
    if query.get("dryRun").map(String::as_str) == Some("All") {
        options.dry_run = vec!["All".into()];
    }
    Ok(options)
}

fn written_response(code: StatusCode, written: &Written) -> Response {
    let warnings: Vec<String> = written.warnings.clone();
    json_response(code, &written.object, &warnings)
}

fn json_bytes_response(bytes: Bytes) -> Response {
    let mut response = Response::new(Body::from(bytes));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn table_response(table: &Value) -> Response {
    let mut response = json_response(StatusCode::OK, table, &[]);
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(table::CONTENT_TYPE),
    );
    response
}

/// `watch`: a stream of events, one JSON object a line, holding a watch slot while it runs.
async fn watch(request: &ResourceRequest<'_>) -> Result<Response> {
    let (app, user, rt, namespace, info, query) = (
        request.app,
        request.user,
        request.rt,
        request.namespace,
        request.info,
        request.query,
    );
    let rendering = request.rendering();
    let mut list = list_options(rt, query)?;
    if !info.name.is_empty() {
        let by_name =
            kargo_api::selector::FieldSelector::parse(&format!("metadata.name={}", info.name))
                .map_err(|e| Status::bad_request(e.to_string()))?;
        list.field_selector = Some(by_name);
    }
    let timeout = app.limits.watch_timeout(
        query
            .get("timeoutSeconds")
            .and_then(|t| t.parse::<u64>().ok()),
    );
    let options = WatchOptions {
        list,
        allow_bookmarks: flag(query, "allowWatchBookmarks"),
        send_initial_events: query.get("sendInitialEvents").map(|v| v == "true"),
        timeout: Some(timeout),
    };
    // Held by the stream: the slot is given back when the watch ends or its client goes away.
    let exempt = user.groups.iter().any(|g| g == kargo_auth::authn::MASTERS);
    let Ok(slot) = app.limits.watches.try_take(&user.username, exempt) else {
        return Ok(super::too_many_requests(false));
    };
    let events = kargo_registry::watch::watch(&app.registry, rt, namespace, options).await?;
    let shutdown = app.shutdown.clone();
    // Held by the stream too: the watch counts as open until the stream is dropped.
    let watching = app.metrics.as_ref().map(|m| m.watch_opened(rt));
    let stream = events
        .map(move |mut event| {
            let _slot = &slot;
            if let Some(watching) = &watching {
                watching.sent();
            }
            if event.kind.is_change() {
                match rendering {
                    Rendering::Table(include) => {
                        let rv = json!({"resourceVersion": kargo_registry::Meta::resource_version(&event.object)});
                        event.object =
                            table::table(rt, std::slice::from_ref(&event.object), rv, include);
                    }
                    Rendering::Metadata => event.object = metadata::object(&event.object),
                    Rendering::Objects => {}
                }
            }
            let mut line = serde_json::to_vec(&event.to_json()).unwrap_or_default();
            line.push(b'\n');
            Ok::<_, std::convert::Infallible>(Bytes::from(line))
        })
        .take_until(async move {
            tokio::select! {
                _ = tokio::time::sleep(timeout) => {}
                _ = shutdown.cancelled() => {}
            }
        });
    let mut response = Response::new(Body::from_stream(stream));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    Ok(response)
}

/// The `status` and `finalize` subresources.
async fn subresource(request: &ResourceRequest<'_>, body: Bytes) -> Result<Response> {
    let (rt, info, query, headers) = (request.rt, request.info, request.query, request.headers);
    let target = request.target();
    let registry = &request.app.registry;
    match (info.subresource, &info.verb) {
        ("status", Verb::Get) => Ok(json_response(
            StatusCode::OK,
            &registry.get(target).await?,
            &[],
        )),
        ("status", Verb::Update) => {
            let body = body::decode(headers, &body)?;
            let (obj, _) = registry.decode_body(rt, body, FieldValidation::Ignore, &[])?;
            let status = obj.get("status").cloned();
            let rv = kargo_registry::Meta::resource_version(&obj).to_owned();
            // Status writes keep the managed fields as they are (not recorded per subresource).
            let options = WriteOptions {
                field_manager: None,
                ..write_options(query, headers)?
            };
            let updated = registry
                .update_with(target, &options, |current| {
                    let mut next = current.clone();
                    if !rv.is_empty() {
                        kargo_registry::object::set_meta(
                            &mut next,
                            "resourceVersion",
                            Some(rv.clone().into()),
                        );
                    }
                    match (&status, next.as_object_mut()) {
                        (Some(s), Some(map)) => {
                            map.insert("status".into(), s.clone());
                        }
                        (None, Some(map)) => {
                            map.remove("status");
                        }
                        _ => {}
                    }
                    Ok(next)
                })
                .await?;
            Ok(json_response(StatusCode::OK, &updated, &[]))
        }
        ("status", Verb::Patch) => {
            let patch_type = PatchType::from_content_type(&body::content_type(headers))?;
            let written = registry
                .patch_status(target, patch_type, &body, &write_options(query, headers)?)
                .await?;
            Ok(written_response(StatusCode::OK, &written))
        }
        ("finalize", Verb::Update) => {
            let body = body::decode(headers, &body)?;
            let finalizers = body
                .pointer("/spec/finalizers")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let obj = registry.finalize_namespace(info.name, finalizers).await?;
            Ok(json_response(StatusCode::OK, &obj, &[]))
        }
        _ => Err(Status::method_not_allowed()),
    }
}

//! The Kubernetes API: `/api/...` and `/apis/...`. Parses the request into [`RequestInfo`],
//! authorizes it, and calls one registry operation per verb.

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::response::Response;
use futures::StreamExt;
use http::{HeaderMap, HeaderValue, StatusCode, Uri};
use kargo_api::resources::{self, ResourceType, Storage};
use serde_json::{Value, json};

use super::{AppState, body, discovery, json_response, table};
use crate::StatusResponse;
use kargo_api::request_info::{RequestInfo, Verb};
use kargo_auth::rbac::UserInfo;
use kargo_registry::status::{Result, Status};
use kargo_registry::{
    DeleteOptions, FieldValidation, ListOptions, Target, WatchOptions, WriteOptions, Written,
    patch::PatchType,
};

/// Query parameters, first value of each.
pub type Query = HashMap<String, String>;

/// Parses a query string.
pub fn parse_query(uri: &Uri) -> Query {
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
/// request.
pub async fn handle(app: &AppState, user: &UserInfo, request: axum::extract::Request) -> Response {
    let (parts, body) = request.into_parts();
    let (method, uri, headers) = (parts.method, parts.uri, parts.headers);
    let body = match body::read(body, body::MAX_BODY).await {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Status::too_large(body::MAX_BODY).into_response(),
        Err(status) => return status.into_response(),
    };
    let query = parse_query(&uri);
    let info = RequestInfo::parse(method.as_str(), uri.path(), flag(&query, "watch"));
    match serve(app, user, &info, &query, &headers, body).await {
        Ok(response) => response,
        Err(status) => status.into_response(),
    }
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
        return discovery_response(app, info);
    }
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
    app.authorize(user, info)?;
    if rt.storage == Storage::Virtual || info.subresource == "token" {
        let body = body::decode(headers, &body)?;
        return super::reviews::create(app, user, rt, info, body).await;
    }
    if !info.subresource.is_empty() {
        return subresource(app, rt, namespace, info, query, headers, body).await;
    }
    let registry = &app.registry;
    let name = info.name;
    let as_table = table::wanted(headers)
        .then(|| table::Include::parse(query.get("includeObject").map(String::as_str)));
    match info.verb {
        Verb::Get => {
            let target = Target::new(rt, namespace, name);
            let Some(include) = as_table else {
                return Ok(json_bytes_response(registry.get_json(target).await?));
            };
            let obj = registry.get(target).await?;
            let rv = json!({"resourceVersion": kargo_registry::Meta::resource_version(&obj)});
            Ok(table_response(&table::table(
                rt,
                std::slice::from_ref(&obj),
                rv,
                include,
            )))
        }
        Verb::List => {
            let options = list_options(rt, query)?;
            let list = registry.list(rt, namespace, &options).await?;
            match as_table {
                Some(include) => {
                    let json = list.to_json(rt);
                    Ok(table_response(&table::table(
                        rt,
                        &list.items,
                        json["metadata"].clone(),
                        include,
                    )))
                }
                None => Ok(json_response(
                    StatusCode::OK,
                    &list.to_json(rt),
                    &list.warnings(),
                )),
            }
        }
        Verb::Watch => watch(app, user, rt, namespace, info, query, as_table).await,
        Verb::Create => {
            let body = body::decode_reporting_duplicates(headers, &body)?;
            let mut options = write_options_for(app, user, rt, query)?;
            options.duplicate_fields = body.duplicates;
            let written = registry.create(rt, namespace, body.value, &options).await?;
            app.await_seen(&written.object).await;
            Ok(written_response(StatusCode::CREATED, &written))
        }
        Verb::Update => {
            let body = body::decode_reporting_duplicates(headers, &body)?;
            let mut options = write_options(query)?;
            options.duplicate_fields = body.duplicates;
            let written = registry
                .update(Target::new(rt, namespace, name), body.value, &options)
                .await?;
            app.await_seen(&written.object).await;
            Ok(written_response(StatusCode::OK, &written))
        }
        Verb::Patch => {
            let patch_type = PatchType::from_content_type(&body::content_type(headers))?;
            if body.len() > body::MAX_BODY {
                return Err(Status::too_large(body::MAX_BODY));
            }
            let written = registry
                .patch(
                    Target::new(rt, namespace, name),
                    patch_type,
                    &body,
                    &write_options_for(app, user, rt, query)?,
                )
                .await?;
            app.await_seen(&written.object).await;
            Ok(written_response(StatusCode::OK, &written))
        }
        Verb::Delete => {
            let options = delete_options(query, &body)?;
            let deleted = registry
                .delete(Target::new(rt, namespace, name), &options)
                .await?;
            app.await_seen(deleted.object()).await;
            Ok(json_response(StatusCode::OK, &deleted.response(rt), &[]))
        }
        Verb::DeleteCollection => {
            let list = list_options(rt, query)?;
            let options = delete_options(query, &body)?;
            let deleted = registry
                .delete_collection(rt, namespace, &list, &options)
                .await?;
            if let Some(last) = deleted.items.last() {
                app.await_seen(last).await;
            }
            Ok(json_response(StatusCode::OK, &deleted.to_json(rt), &[]))
        }
        _ => Err(Status::method_not_allowed()),
    }
}

fn discovery_response(app: &AppState, info: &RequestInfo<'_>) -> Result<Response> {
    if info.verb != Verb::Get {
        return Err(Status::method_not_allowed());
    }
    let parts: Vec<&str> = info.path.trim_matches('/').split('/').collect();
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
) -> Result<WriteOptions> {
    let mut options = write_options(query)?;
    options.admission = app.authz.admission(user, rt);
    Ok(options)
}

fn write_options(query: &Query) -> Result<WriteOptions> {
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

async fn watch(
    app: &AppState,
    user: &UserInfo,
    rt: &'static ResourceType,
    namespace: Option<&str>,
    info: &RequestInfo<'_>,
    query: &Query,
    as_table: Option<table::Include>,
) -> Result<Response> {
    let mut list = list_options(rt, query)?;
    if !info.name.is_empty() {
        let by_name =
            kargo_api::selector::FieldSelector::parse(&format!("metadata.name={}", info.name))
                .map_err(|e| Status::bad_request(e.to_string()))?;
        list.field_selector = Some(by_name);
    }
    let options = WatchOptions {
        list,
        allow_bookmarks: flag(query, "allowWatchBookmarks"),
        send_initial_events: query.get("sendInitialEvents").map(|v| v == "true"),
    };
    let timeout = app.limits.watch_timeout(
        query
            .get("timeoutSeconds")
            .and_then(|t| t.parse::<u64>().ok()),
    );
    // Held by the stream: the slot is given back when the watch ends or its client goes away.
    let exempt = user.groups.iter().any(|g| g == kargo_auth::authn::MASTERS);
    let Ok(slot) = app.limits.watches.try_take(&user.username, exempt) else {
        return Ok(super::too_many_requests(false));
    };
    let events = kargo_registry::watch::watch(&app.registry, rt, namespace, options).await?;
    let shutdown = app.shutdown.clone();
    let stream = events
        .map(move |mut event| {
            let _slot = &slot;
            if let Some(include) = as_table
                && matches!(event.kind, "ADDED" | "MODIFIED" | "DELETED")
            {
                let rv = json!({"resourceVersion": kargo_registry::Meta::resource_version(&event.object)});
                event.object = table::table(rt, std::slice::from_ref(&event.object), rv, include);
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

async fn subresource(
    app: &AppState,
    rt: &'static ResourceType,
    namespace: Option<&str>,
    info: &RequestInfo<'_>,
    query: &Query,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let target = Target::new(rt, namespace, info.name);
    let registry = &app.registry;
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
            let updated = registry
                .update_with(target, &write_options(query)?, |current| {
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
                .patch_status(target, patch_type, &body, &write_options(query)?)
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

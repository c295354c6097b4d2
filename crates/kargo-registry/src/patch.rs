//! PATCH: JSON patch, JSON merge patch, strategic merge patch and server-side apply (module
//! `managed`), applied to the current object and written with the same rules as an update.

use std::sync::Arc;
use std::time::Duration;

use kargo_api::patch as p;
use kargo_api::resources::ResourceType;
use serde_json::Value;
use tokio::sync::Semaphore;

use super::managed::{self, Tracking};
use super::object::{Meta, set_meta};
use super::{
    Object, Registry, Target, UPDATE_RETRIES, WriteOptions, Written, check_name, strategy, too_busy,
};
use crate::status::{Result, Status};

/// The patch formats kube-apiserver accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json` (RFC 6902).
    Json,
    /// `application/merge-patch+json` (RFC 7386).
    Merge,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply).
    Apply,
}

const ACCEPTED: &str =
    "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml";
const ACCEPTED_WITH_STRATEGIC: &str = "application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml";

impl PatchType {
    /// The patch type of a Content-Type.
    pub fn from_content_type(content_type: &str) -> Result<PatchType> {
        match content_type {
            "application/json-patch+json" => Ok(PatchType::Json),
            "application/merge-patch+json" => Ok(PatchType::Merge),
            "application/strategic-merge-patch+json" => Ok(PatchType::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Ok(PatchType::Apply),
            other => Err(Status::unsupported_media_type(
                other,
                ACCEPTED_WITH_STRATEGIC,
            )),
        }
    }
}

/// The patched object, and the fields the patch document named twice (merge and strategic
/// patches, for field validation).
type Patched = (Value, Vec<String>);

/// Applies a patch document to an object; a JSON patch stops as soon as the object would grow
/// past `max_object_bytes` or the nesting limit.
fn apply(
    rt: &ResourceType,
    patch_type: PatchType,
    current: &Value,
    patch: &[u8],
    max_object_bytes: usize,
    applier: &Applier,
) -> Result<Patched> {
    let parse_json = |bytes: &[u8]| -> Result<kargo_api::json::Decoded> {
        kargo_api::json::from_slice(bytes)
            .map_err(|e| Status::bad_request(format!("error decoding patch: {e}")))
    };
    match patch_type {
        PatchType::Json => {
            let doc = parse_json(patch)?.value;
            let mut obj = current.clone();
            let limits = p::JsonPatchLimits {
                max_object_bytes,
                ..p::JsonPatchLimits::default()
            };
            p::json_patch_with_limits(&mut obj, &doc, &limits).map_err(|e| patch_status(&e))?;
            Ok((obj, Vec::new()))
        }
        PatchType::Merge => {
            let doc = parse_json(patch)?;
            if !doc.value.is_object() {
                return Err(Status::bad_request(
                    "error decoding patch: a merge patch must be a JSON object",
                ));
            }
            let mut obj = current.clone();
            p::merge_patch(&mut obj, &doc.value).map_err(|e| patch_status(&e))?;
            Ok((obj, doc.duplicates))
        }
        PatchType::Strategic => {
            let strategy = strategy::for_type(rt);
            if strategy.list_strategy("").is_none() {
                return Err(Status::unsupported_media_type(
                    "application/strategic-merge-patch+json",
                    ACCEPTED,
                ));
            }
            let doc = parse_json(patch)?;
            if !doc.value.is_object() {
                return Err(Status::bad_request(
                    "error decoding patch: a strategic merge patch must be a JSON object",
                ));
            }
            let lists = |path: &str| {
                strategy
                    .list_strategy(path)
                    .unwrap_or(p::ListStrategy::Atomic)
            };
            let obj = p::strategic_merge_patch(current, &doc.value, &lists)
                .map_err(|e| patch_status(&e))?;
            Ok((obj, doc.duplicates))
        }
        PatchType::Apply => {
            let doc = apply_config(rt, patch)?;
            let obj = managed::apply(rt, Some(current), doc, &applier.manager, applier.force)?;
            Ok((obj, Vec::new()))
        }
    }
}

/// Who applies, for a server-side apply: the field manager and `force`.
#[derive(Debug, Clone, Default)]
struct Applier {
    manager: String,
    force: bool,
}

impl Applier {
    /// The applier of a write; kube-apiserver's 422 when an apply has no field manager.
    fn of(patch_type: PatchType, options: &WriteOptions) -> Result<Applier> {
        let manager = options.field_manager.clone().unwrap_or_default();
        if patch_type == PatchType::Apply && manager.is_empty() {
            return Err(Status::invalid_patch_options(&[
                kargo_api::field::FieldError::required(
                    "fieldManager",
                    "is required for apply patch",
                ),
            ]));
        }
        Ok(Applier {
            manager,
            force: options.force,
        })
    }
}

/// An apply patch's configuration: a YAML (or JSON) object of the type's API version
/// (kube-apiserver's 400 otherwise: `Incorrect version specified in apply patch. Specified patch
/// version: , expected: v1`).
fn apply_config(rt: &ResourceType, patch: &[u8]) -> Result<Value> {
    let doc = yaml(patch)?;
    if !doc.is_object() {
        return Err(Status::bad_request(
            "error decoding YAML: the body must be an object",
        ));
    }
    let version = doc.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let expected = rt.api_version();
    if version != expected {
        return Err(Status::bad_request(format!(
            "Incorrect version specified in apply patch. Specified patch version: {version}, expected: {expected}"
        )));
    }
    Ok(doc)
}

/// A patch failure as a client error. kube-apiserver answers a few malformed strategic patches
/// with a 500 and hides the cause of a failed JSON patch behind a generic 422; both are the
/// client's mistakes, so they are 422s here and say what went wrong.
fn patch_status(err: &p::PatchError) -> Status {
    match err.code() {
        400 => Status::bad_request(err.status_message()),
        413 => Status::failure(413, "RequestEntityTooLarge", err.status_message()),
        _ => Status::failure(
            422,
            "Invalid",
            format!(
                "{}: {err}",
                err.status_message()
                    .trim_end_matches(&format!("{err}"))
                    .trim_end_matches(": ")
                    .trim()
            ),
        ),
    }
}

/// How long applying a patch may take (queueing for a slot included) before the request is
/// answered 504, as kube-apiserver answers a request past its deadline. Patches are linear or
/// n·log n in the body (at most 3 MiB), so an honest patch takes milliseconds.
pub(crate) const PATCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Applies a patch off the async threads, at most one per core at a time, within
/// [`PATCH_TIMEOUT`]. A patch past its deadline keeps its slot until it ends, so timed-out work
/// still counts against the bound.
async fn apply_bounded(
    slots: &Arc<Semaphore>,
    max_object_bytes: usize,
    rt: &'static ResourceType,
    patch_type: PatchType,
    current: Object,
    patch: Arc<[u8]>,
    applier: Applier,
) -> Result<Patched> {
    let work = async {
        let permit = slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Status::unavailable("the server is shutting down"))?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            apply(rt, patch_type, &current, &patch, max_object_bytes, &applier)
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "applying a patch failed");
            Status::internal("applying the patch failed")
        })?
    };
    tokio::time::timeout(PATCH_TIMEOUT, work)
        .await
        .map_err(|_| {
            Status::timeout(
                "Timeout: request did not complete within requested timeout - context deadline exceeded",
            )
        })?
}

/// The slots of [`apply_bounded`]: one per core.
pub(super) fn patch_slots() -> Arc<Semaphore> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    Arc::new(Semaphore::new(cores))
}

/// An apply patch's YAML document (bounded: see [`kargo_api::yaml`]).
fn yaml(patch: &[u8]) -> Result<Value> {
    kargo_api::yaml::decode(patch)
        .map(|d| d.value)
        .map_err(|e| Status::bad_request(e.to_string()))
}

impl Registry {
    /// Patches an object. Server-side apply of a missing object creates it.
    pub async fn patch(
        &self,
        target: Target<'_>,
        patch_type: PatchType,
        patch: &[u8],
        options: &WriteOptions,
    ) -> Result<Written> {
        let applier = Applier::of(patch_type, options)?;
        if patch_type == PatchType::Apply && self.try_get(target).await?.is_none() {
            let body = apply_config(target.rt, patch)?;
            check_name(target, &body)?;
            let obj = managed::apply(target.rt, None, body, &applier.manager, applier.force)?;
            return self
                .create_tracked(target.rt, target.namespace, obj, options, Tracking::Keep)
                .await;
        }
        let tracking = if patch_type == PatchType::Apply {
            Tracking::Keep
        } else {
            Tracking::Update
        };
        self.patch_with(
            target,
            (patch_type, applier, tracking),
            patch,
            options,
            |current, (patched, duplicates)| {
                check_name(target, &patched)?;
                let (mut obj, warnings) =
                    self.decode_body(target.rt, patched, options.field_validation, &duplicates)?;
                // A patch that does not mention resourceVersion applies to whatever is current.
                if obj.resource_version() == current.resource_version() {
                    set_meta(&mut obj, "resourceVersion", None);
                }
                Ok((obj, warnings))
            },
        )
        .await
    }

    /// Patches only the `status` of an object (the status subresource).
    pub async fn patch_status(
        &self,
        target: Target<'_>,
        patch_type: PatchType,
        patch: &[u8],
        options: &WriteOptions,
    ) -> Result<Written> {
        let applier = Applier::of(patch_type, options)?;
        self.patch_with(
            target,
            (patch_type, applier, Tracking::Keep),
            patch,
            options,
            |current, (patched, _)| {
                let mut obj = current.clone();
                set_meta(&mut obj, "resourceVersion", None);
                if let Some(map) = obj.as_object_mut() {
                    match patched.get("status") {
                        Some(s) => map.insert("status".into(), s.clone()),
                        None => map.remove("status"),
                    };
                }
                Ok((obj, Vec::new()))
            },
        )
        .await
    }

    /// Reads the object, applies the patch to it (bounded: [`apply_bounded`]), lets `finish`
    /// make the object to write (with warnings) from the current and the patched one, and
    /// writes it with the update rules; a lost race starts again from a fresh read.
    async fn patch_with(
        &self,
        target: Target<'_>,
        (patch_type, applier, tracking): (PatchType, Applier, Tracking),
        patch: &[u8],
        options: &WriteOptions,
        finish: impl Fn(&Object, Patched) -> Result<(Object, Vec<String>)>,
    ) -> Result<Written> {
        let patch: Arc<[u8]> = patch.into();
        for _ in 0..UPDATE_RETRIES {
            let (kv, current) = self.read_decoded(target).await?;
            let patched = apply_bounded(
                &self.patch_slots,
                self.max_object_bytes,
                target.rt,
                patch_type,
                current.clone(),
                patch.clone(),
                applier.clone(),
            )
            .await?;
            let (obj, warnings) = finish(&current, patched)?;
            if let Some(object) = self
                .try_update(target, options, &kv, &current, obj, tracking)
                .await?
            {
                return Ok(Written {
                    object,
                    warnings,
                    created: false,
                });
            }
        }
        Err(too_busy(target))
    }
}

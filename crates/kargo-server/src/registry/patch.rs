//! PATCH: JSON patch, JSON merge patch, strategic merge patch and (a simplified) server-side apply,
//! applied to the current object and written with the same rules as an update.

use kargo_api::patch as p;
use serde_json::Value;

use super::object::{Meta, set_meta};
use super::{Registry, Target, WriteOptions, Written, strategy};
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

/// Applies a patch document to an object.
fn apply(
    rt: &kargo_api::resources::ResourceType,
    patch_type: PatchType,
    current: &Value,
    patch: &[u8],
) -> Result<Value> {
    let parse_json = |bytes: &[u8]| -> Result<Value> {
        serde_json::from_slice(bytes)
            .map_err(|e| Status::bad_request(format!("error decoding patch: {e}")))
    };
    match patch_type {
        PatchType::Json => {
            let doc = parse_json(patch)?;
            let mut obj = current.clone();
            p::json_patch(&mut obj, &doc).map_err(|e| patch_status(&e))?;
            Ok(obj)
        }
        PatchType::Merge => {
            let doc = parse_json(patch)?;
            if !doc.is_object() {
                return Err(Status::bad_request(
                    "error decoding patch: a merge patch must be a JSON object",
                ));
            }
            let mut obj = current.clone();
            p::merge_patch(&mut obj, &doc).map_err(|e| patch_status(&e))?;
            Ok(obj)
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
            if !doc.is_object() {
                return Err(Status::bad_request(
                    "error decoding patch: a strategic merge patch must be a JSON object",
                ));
            }
            let lists = |path: &str| {
                strategy
                    .list_strategy(path)
                    .unwrap_or(p::ListStrategy::Atomic)
            };
            p::strategic_merge_patch(current, &doc, &lists).map_err(|e| patch_status(&e))
        }
        PatchType::Apply => {
            let doc: Value = yaml_serde::from_slice(patch)
                .map_err(|e| Status::bad_request(format!("error decoding YAML: {e}")))?;
            if !doc.is_object() {
                return Err(Status::bad_request(
                    "error decoding YAML: the body must be an object",
                ));
            }
            let mut obj = current.clone();
            p::merge_patch(&mut obj, &doc).map_err(|e| patch_status(&e))?;
            Ok(obj)
        }
    }
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

impl Registry {
    /// Patches an object. Server-side apply of a missing object creates it.
    pub async fn patch(
        &self,
        target: Target<'_>,
        patch_type: PatchType,
        patch: &[u8],
        options: &WriteOptions,
    ) -> Result<Written> {
        if patch_type == PatchType::Apply && self.try_get(target).await?.is_none() {
            let body: Value = yaml_serde::from_slice(patch)
                .map_err(|e| Status::bad_request(format!("error decoding YAML: {e}")))?;
            return self
                .create(target.rt, target.namespace, body, options)
                .await;
        }
        let rt = target.rt;
        let mut warnings = Vec::new();
        let object = self
            .update_with(target, options, |current| {
                let patched = apply(rt, patch_type, current, patch)?;
                let (mut obj, unknown) = self.decode_body(rt, patched, options.field_validation)?;
                warnings = unknown;
                // A patch that does not mention resourceVersion applies to whatever is current.
                if obj.resource_version() == current.resource_version() {
                    set_meta(&mut obj, "resourceVersion", None);
                }
                Ok(obj)
            })
            .await?;
        Ok(Written { object, warnings })
    }

    /// Patches only the `status` of an object (the status subresource).
    pub async fn patch_status(
        &self,
        target: Target<'_>,
        patch_type: PatchType,
        patch: &[u8],
        options: &WriteOptions,
    ) -> Result<Written> {
        let rt = target.rt;
        let object = self
            .update_with(target, options, |current| {
                let patched = apply(rt, patch_type, current, patch)?;
                let mut obj = current.clone();
                set_meta(&mut obj, "resourceVersion", None);
                if let Some(map) = obj.as_object_mut() {
                    match patched.get("status") {
                        Some(s) => map.insert("status".into(), s.clone()),
                        None => map.remove("status"),
                    };
                }
                Ok(obj)
            })
            .await?;
        Ok(Written {
            object,
            warnings: Vec::new(),
        })
    }
}

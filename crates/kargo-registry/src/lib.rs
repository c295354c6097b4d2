//! The registry: typed objects on top of the store, with every rule Kubernetes applies to every
//! object: validation, `generateName`, uid and timestamps, `resourceVersion` conflicts, selectors,
//! paging, watch, and deletion with finalizers and owner references.
//!
//! It speaks JSON objects ([`object::Object`]) and answers errors as Kubernetes [`Status`]es. It
//! does not authorize: callers (the HTTP layer, the Kargo layer, controllers) decide who may do
//! what before calling it.
//!
//! Every write of an object (create, update, patch, status, deletion with or without
//! finalizers) reaches the store through one function, `Registry::commit` (module `commit`):
//! encoding bounds, compare-and-swap on the revision read, and the mapping of store conflicts
//! to Kubernetes statuses live there once.
//!
//! Every write records who wrote what in `metadata.managedFields`, and a server-side apply
//! merges by field ownership (module `managed`, over the algorithms of
//! `kargo_api::patch::apply`); the entries are stored with the object, so reads recompute
//! nothing.
//!
//! It also carries how the layers above follow the store: the [`informer`] (one list-then-watch
//! of the whole key space, fanned out to views and controllers) and the controllers' work
//! [`queue`].
//!
//! Depends on `kargo-api` and `kargo-store` only; knows nothing of users, HTTP or Kargo.

pub mod cache;
mod commit;
mod create;
pub mod delete;
pub mod events;
pub mod informer;
pub mod list;
mod managed;
pub mod object;
pub mod patch;
pub mod queue;
pub mod status;
pub mod strategy;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
#[cfg(test)]
mod tests;
pub mod touched;
pub mod watch;

use std::sync::Arc;

use kargo_api::resources::ResourceType;
use kargo_store::{KeyValue, Store};
use serde_json::Value;

pub use delete::{DeleteOptions, Deleted, Propagation};
pub use list::{ListOptions, ObjectList};
pub use object::{Meta, Object};
pub use strategy::FieldValidation;
pub use watch::{WatchEvent, WatchEventType, WatchOptions};

use crate::status::{Result, Status};
use object::{decode, encode, set_meta};

/// How many times an update retries after losing a compare-and-swap race.
const UPDATE_RETRIES: usize = 16;

/// Metadata the server sets and clients cannot: dropped from a create, kept from the stored
/// object on an update.
const SERVER_OWNED_META: [&str; 5] = [
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
];

/// An update or patch may not rename or move an object (kube-apiserver's `checkName`).
fn check_name(target: Target<'_>, obj: &Value) -> Result<()> {
    if obj.name() != target.name {
        return Err(Status::bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({})",
            obj.name(),
            target.name
        )));
    }
    if let (Some(in_body), Some(in_url)) = (obj.namespace(), target.namespace)
        && in_body != in_url
    {
        return Err(Status::bad_request(format!(
            "the namespace of the object ({in_body}) does not match the namespace on the URL ({in_url})"
        )));
    }
    Ok(())
}

/// A check a write must pass after validation and before it is stored: `(new, old)`, with `old`
/// `None` on create. Callers use it for what depends on who writes (RBAC escalation prevention).
pub type AdmissionCheck = Arc<dyn Fn(&Object, Option<&Object>) -> Result<()> + Send + Sync>;

/// Options of a write.
#[derive(Clone, Default)]
pub struct WriteOptions {
    /// `dryRun=All`: validate and answer, write nothing.
    pub dry_run: bool,
    /// How unknown fields are treated.
    pub field_validation: FieldValidation,
    /// A check of the final object, if any.
    pub admission: Option<AdmissionCheck>,
    /// Fields the request body named twice (JSON), which field validation reports like
    /// unknown fields.
    pub duplicate_fields: Vec<String>,
    /// Who writes, for `metadata.managedFields` (`?fieldManager=`, else the User-Agent up to
    /// its first `/`; `kargo` for the Kargo API). `None` (the server's own writes) keeps the
    /// entries as they are. A server-side apply requires one.
    pub field_manager: Option<String>,
    /// `force=true` on a server-side apply: take over fields other managers own.
    pub force: bool,
}

impl WriteOptions {
    /// Runs the admission check, if any, on `new` (replacing `old`, `None` on create).
    fn admit(&self, new: &Object, old: Option<&Object>) -> Result<()> {
        match &self.admission {
            Some(check) => check(new, old),
            None => Ok(()),
        }
    }
}

impl std::fmt::Debug for WriteOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteOptions")
            .field("dry_run", &self.dry_run)
            .field("field_validation", &self.field_validation)
            .field("admission", &self.admission.is_some())
            .field("duplicate_fields", &self.duplicate_fields)
            .field("field_manager", &self.field_manager)
            .field("force", &self.force)
            .finish()
    }
}

/// The outcome of a write: the object and any warnings for the client.
#[derive(Debug, Clone)]
pub struct Written {
    /// The object as stored.
    pub object: Object,
    /// Warnings (`unknown field "spec.foo"`), sent as `Warning` headers.
    pub warnings: Vec<String>,
    /// Whether the write created the object (a server-side apply of a missing object is
    /// answered 201, as a create).
    pub created: bool,
}

/// Typed objects on top of a store.
#[derive(Clone)]
pub struct Registry {
    store: Arc<dyn Store>,
    /// The largest encoded object a write may store.
    max_object_bytes: usize,
    /// Bounds the patches being applied at once (see `patch`).
    patch_slots: Arc<tokio::sync::Semaphore>,
    cache: Option<(
        Arc<cache::ObjectCache>,
        tokio::sync::watch::Receiver<kargo_store::Revision>,
    )>,
}

/// Where an object lives: its type, namespace and name.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The resource type.
    pub rt: &'static ResourceType,
    /// The namespace (ignored for cluster-scoped types).
    pub namespace: Option<&'a str>,
    /// The object's name.
    pub name: &'a str,
}

impl<'a> Target<'a> {
    /// A target.
    pub fn new(rt: &'static ResourceType, namespace: Option<&'a str>, name: &'a str) -> Self {
        Target {
            rt,
            namespace: if rt.namespaced { namespace } else { None },
            name,
        }
    }

    /// The store key.
    pub(crate) fn key(&self) -> String {
        self.rt.key(self.namespace, self.name)
    }
}

impl Registry {
    /// A registry over a store.
    pub fn new(store: Arc<dyn Store>) -> Registry {
        Registry {
            store,
            max_object_bytes: kargo_api::limits::MAX_OBJECT_BYTES,
            patch_slots: patch::patch_slots(),
            cache: None,
        }
    }

    /// The same registry, refusing to store objects whose encoding is larger than `bytes`.
    pub fn with_max_object_bytes(mut self, bytes: usize) -> Registry {
        self.max_object_bytes = bytes;
        self
    }

    /// Encodes an object for the store, within the limits on every stored object.
    fn encode(&self, obj: &Object) -> Result<Vec<u8>> {
        encode(obj, self.max_object_bytes)
    }

    /// The same registry, serving single-object reads from `cache` when the informer (whose
    /// applied revision `applied` reports) has seen every committed write. See [`cache`].
    pub fn with_cache(
        &self,
        cache: Arc<cache::ObjectCache>,
        applied: tokio::sync::watch::Receiver<kargo_store::Revision>,
    ) -> Registry {
        Registry {
            store: self.store.clone(),
            max_object_bytes: self.max_object_bytes,
            patch_slots: self.patch_slots.clone(),
            cache: Some((cache, applied)),
        }
    }

    /// One object as JSON (with its resourceVersion), from the cache when it is current.
    pub async fn get_json(&self, target: Target<'_>) -> Result<bytes::Bytes> {
        let encode_json = |obj: &Object| {
            serde_json::to_vec(obj)
                .map(bytes::Bytes::from)
                .map_err(|e| {
                    tracing::error!(error = %e, "encoding an object failed");
                    Status::internal("encoding the object failed")
                })
        };
        let Some((cache, applied)) = &self.cache else {
            return encode_json(&self.get(target).await?);
        };
        let key = target.key();
        let committed = self.store.committed_revision();
        let seen = *applied.borrow();
        if cache::complete(seen, committed)
            && let Some(bytes) = cache.get(&key)
        {
            return Ok(bytes);
        }
        let bytes = encode_json(&decode(&self.read(target).await?)?)?;
        cache.insert_if(&key, bytes.clone(), || {
            cache::complete(seen, committed)
                && self.store.committed_revision() == committed
                && *applied.borrow() == seen
        });
        Ok(bytes)
    }

    /// The underlying store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Reads one object's raw key-value.
    async fn read(&self, target: Target<'_>) -> Result<KeyValue> {
        self.store
            .get(&target.key())
            .await?
            .ok_or_else(|| Status::not_found(target.rt, target.name))
    }

    /// Reads and decodes one object, with its raw key-value (for a compare-and-swap).
    async fn read_decoded(&self, target: Target<'_>) -> Result<(KeyValue, Object)> {
        let kv = self.read(target).await?;
        let current = decode(&kv)?;
        Ok((kv, current))
    }

    /// Gets one object.
    pub async fn get(&self, target: Target<'_>) -> Result<Object> {
        decode(&self.read(target).await?)
    }

    /// Gets one object, or `None`.
    pub async fn try_get(&self, target: Target<'_>) -> Result<Option<Object>> {
        match self.store.get(&target.key()).await? {
            Some(kv) => Ok(Some(decode(&kv)?)),
            None => Ok(None),
        }
    }

    /// Decodes and normalizes a request body for `rt`: checks `apiVersion`/`kind`, applies the
    /// kind's typed decoding and the field-validation mode.
    pub fn decode_body(
        &self,
        rt: &ResourceType,
        mut body: Value,
        validation: FieldValidation,
        duplicates: &[String],
    ) -> Result<(Object, Vec<String>)> {
        let Some(map) = body.as_object_mut() else {
            return Err(strategy::cannot_handle(
                rt,
                &"the body must be a JSON object",
            ));
        };
        let api_version = rt.api_version();
        match map.get("apiVersion").and_then(Value::as_str) {
            None | Some("") => {
                map.insert("apiVersion".into(), Value::String(api_version.clone()));
            }
            Some(v) if v == api_version => {}
            Some(v) => {
                return Err(Status::bad_request(format!(
                    "the API version in the data ({v}) does not match the expected API version ({api_version})"
                )));
            }
        }
        match map.get("kind").and_then(Value::as_str) {
            None | Some("") => {
                map.insert("kind".into(), Value::String(rt.kind.to_owned()));
            }
            Some(k) if k == rt.kind => {}
            Some(k) => {
                return Err(Status::bad_request(format!(
                    "the kind in the data ({k}) does not match the expected kind ({})",
                    rt.kind
                )));
            }
        }
        // Bookkeeping the server owns or does not keep; managed fields are checked and kept
        // apart from the kind's decoding (see `managed`).
        if let Some(Value::Object(meta)) = map.get_mut("metadata") {
            meta.remove("selfLink");
        }
        let managed_fields = managed::take(&mut body);
        let mut decoded = strategy::for_type(rt).decode(rt, body)?;
        if let Some(value) = managed_fields {
            set_meta(&mut decoded.object, "managedFields", Some(value));
        }
        let warnings = duplicates
            .iter()
            .map(|f| format!("duplicate field \"{f}\""))
            .chain(
                decoded
                    .unknown
                    .iter()
                    .map(|f| format!("unknown field \"{f}\"")),
            )
            .collect::<Vec<_>>();
        match validation {
            FieldValidation::Strict if !warnings.is_empty() => Err(strategy::cannot_handle(
                rt,
                &format!("strict decoding error: {}", warnings.join(", ")),
            )),
            FieldValidation::Warn => Ok((decoded.object, warnings)),
            _ => Ok((decoded.object, Vec::new())),
        }
    }

    /// Replaces an object (PUT). `body` is decoded and validated like a create.
    pub async fn update(
        &self,
        target: Target<'_>,
        body: Value,
        options: &WriteOptions,
    ) -> Result<Written> {
        let (obj, warnings) = self.decode_body(
            target.rt,
            body,
            options.field_validation,
            &options.duplicate_fields,
        )?;
        check_name(target, &obj)?;
        let wanted_rv = obj.resource_version().to_owned();
        let strategy = strategy::for_type(target.rt);
        if wanted_rv.is_empty() && !strategy.allows_unconditional_update() {
            return Err(Status::invalid(
                target.rt,
                target.name,
                &[kargo_api::field::FieldError::invalid(
                    "metadata.resourceVersion",
                    kargo_api::field::BadValue::Uint(0),
                    "must be specified for an update",
                )],
            ));
        }
        let object = self
            .update_with(target, options, |_current| Ok(obj.clone()))
            .await?;
        Ok(Written {
            object,
            warnings,
            created: false,
        })
    }

    /// Read-modify-write of one object: `mutate` gets the current object (with its
    /// resourceVersion) and returns the new one. A `resourceVersion` in the returned object that
    /// differs from the current one is a conflict; an empty one means "whatever is current". Lost
    /// races retry with fresh state. An unchanged object is not written. The update that empties
    /// the finalizers of an object being deleted deletes it.
    pub async fn update_with(
        &self,
        target: Target<'_>,
        options: &WriteOptions,
        mut mutate: impl FnMut(&Object) -> Result<Object>,
    ) -> Result<Object> {
        for _ in 0..UPDATE_RETRIES {
            let (kv, current) = self.read_decoded(target).await?;
            let obj = mutate(&current)?;
            let tracking = managed::Tracking::Update;
            if let Some(written) = self
                .try_update(target, options, &kv, &current, obj, tracking)
                .await?
            {
                return Ok(written);
            }
        }
        Err(too_busy(target))
    }

    /// One attempt of [`update_with`](Self::update_with): writes `obj`, the caller's new version
    /// of `current` (read as `kv`), with the update rules and its managed fields as `tracking`
    /// says; `None` if another write won the race and the caller should read again.
    async fn try_update(
        &self,
        target: Target<'_>,
        options: &WriteOptions,
        kv: &KeyValue,
        current: &Object,
        mut obj: Object,
        tracking: managed::Tracking,
    ) -> Result<Option<Object>> {
        let rt = target.rt;
        let strategy = strategy::for_type(rt);
        let wanted_rv = obj.resource_version().to_owned();
        if !wanted_rv.is_empty() && wanted_rv != current.resource_version() {
            return Err(Status::stale(rt, target.name));
        }
        set_meta(&mut obj, "namespace", target.namespace.map(|n| n.into()));
        set_meta(&mut obj, "name", Some(target.name.into()));
        // Immutable metadata the server owns.
        for field in SERVER_OWNED_META {
            let old = current.meta().and_then(|m| m.get(field)).cloned();
            set_meta(&mut obj, field, old);
        }
        set_meta(&mut obj, "resourceVersion", None);
        if obj.get("apiVersion").is_none() {
            obj["apiVersion"] = Value::String(rt.api_version());
        }
        if obj.get("kind").is_none() {
            obj["kind"] = Value::String(rt.kind.to_owned());
        }
        strategy.prepare_update(&mut obj, current);
        if tracking == managed::Tracking::Update {
            managed::record_update(rt, options, Some(current), &mut obj);
        }
        if strategy.tracks_generation() && spec_changed(&obj, current) {
            let generation = current
                .meta()
                .and_then(|m| m.get("generation"))
                .and_then(Value::as_i64)
                .unwrap_or(0);
            set_meta(&mut obj, "generation", Some(Value::from(generation + 1)));
        }
        // Validate as the stored object will read (with the current resourceVersion).
        set_meta(
            &mut obj,
            "resourceVersion",
            Some(Value::String(current.resource_version().to_owned())),
        );
        let mut errors = strategy::validate_meta(rt, &obj, Some(current));
        errors.extend(strategy.validate(&obj, Some(current)));
        set_meta(&mut obj, "resourceVersion", None);
        if !errors.is_empty() {
            return Err(Status::invalid(rt, target.name, &errors));
        }
        let mut stored = current.clone();
        set_meta(&mut stored, "resourceVersion", None);
        if stored == obj {
            return Ok(Some(current.clone()));
        }
        options.admit(&obj, Some(&stored))?;
        if options.dry_run {
            self.encode(&obj)?;
            set_meta(
                &mut obj,
                "resourceVersion",
                Some(Value::String(kv.mod_revision.to_string())),
            );
            return Ok(Some(obj));
        }
        // (The update that empties the finalizers of an object being deleted removes it.)
        match self.replace(target, kv.mod_revision, obj).await? {
            Some(written) => Ok(Some(written)),
            None if !wanted_rv.is_empty() => Err(Status::stale(rt, target.name)),
            None => Ok(None),
        }
    }

    /// Read-modify-write of fields the server owns (status, deletion marks, namespace
    /// finalizers), without the update rules: `change` returns the new object, or `None` to leave
    /// it as it is. Lost races retry with fresh state.
    pub(crate) async fn rewrite(
        &self,
        target: Target<'_>,
        mut change: impl FnMut(Object) -> Result<Option<Object>>,
    ) -> Result<Object> {
        for _ in 0..UPDATE_RETRIES {
            let kv = self.read(target).await?;
            let current = decode(&kv)?;
            let Some(next) = change(current.clone())? else {
                return Ok(current);
            };
            if let Some(written) = self.replace(target, kv.mod_revision, next).await? {
                return Ok(written);
            }
        }
        Err(too_busy(target))
    }

    /// Lists objects.
    pub async fn list(
        &self,
        rt: &'static ResourceType,
        namespace: Option<&str>,
        options: &ListOptions,
    ) -> Result<ObjectList> {
        list::list(self, rt, namespace, options).await
    }
}

/// The conflict of an object that kept changing under every retry.
fn too_busy(target: Target<'_>) -> Status {
    Status::conflict(
        target.rt,
        target.name,
        "the object is being changed by others too often; try again",
    )
}

/// Whether anything outside `metadata` and `status` changed (custom resources bump
/// `metadata.generation` then).
fn spec_changed(new: &Value, old: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.as_object_mut() {
            m.remove("metadata");
            m.remove("status");
        }
        v
    };
    strip(new) != strip(old)
}

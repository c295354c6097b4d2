//! Creating an object, in kube-apiserver's steps: decode the body, prepare its metadata (namespace,
//! server-owned fields, the kind's defaults, `generateName`), validate, admit, check the
//! namespace, then store it under a fresh uid (a generated name that is taken is drawn again).

use kargo_api::resources::{NAMESPACES, ResourceType};
use serde_json::Value;

use crate::commit::{Committed, Write, already_exists};
use crate::managed::{self, Tracking};
use crate::object::{Meta, meta_mut, now_rfc3339, set_meta};
use crate::status::{Cause, Details, Result, Status};
use crate::{Object, Registry, SERVER_OWNED_META, Target, WriteOptions, Written, strategy};

/// How many names `generateName` tries.
const GENERATE_NAME_TRIES: usize = 8;

impl Registry {
    /// Creates an object of type `rt` in `namespace` from a request body.
    pub async fn create(
        &self,
        rt: &'static ResourceType,
        namespace: Option<&str>,
        body: Value,
        options: &WriteOptions,
    ) -> Result<Written> {
        self.create_tracked(rt, namespace, body, options, Tracking::Update)
            .await
    }

    /// [`create`](Self::create), with the body's managed fields recorded as `tracking` says.
    pub(crate) async fn create_tracked(
        &self,
        rt: &'static ResourceType,
        namespace: Option<&str>,
        body: Value,
        options: &WriteOptions,
        tracking: Tracking,
    ) -> Result<Written> {
        let (mut obj, warnings) = self.decode_body(
            rt,
            body,
            options.field_validation,
            &options.duplicate_fields,
        )?;
        let namespace = if rt.namespaced { namespace } else { None };
        let generate = prepare_metadata(rt, namespace, &mut obj)?;
        if tracking == Tracking::Update {
            managed::record_update(rt, options, None, &mut obj);
        }
        validate_new(rt, &obj)?;
        options.admit(&obj, None)?;
        if let Some(ns) = namespace {
            self.check_namespace(rt, ns, obj.name()).await?;
        }
        let object = self
            .insert(rt, namespace, obj, generate, options.dry_run)
            .await?;
        Ok(Written {
            object,
            warnings,
            created: true,
        })
    }

    /// Checks that a namespace exists and is not terminating before content is created in it.
    async fn check_namespace(&self, rt: &ResourceType, namespace: &str, name: &str) -> Result<()> {
        let ns = self
            .try_get(Target::new(&NAMESPACES, None, namespace))
            .await?;
        match ns {
            None => Err(Status::not_found(&NAMESPACES, namespace)),
            Some(ns) if ns.is_deleting() => Err(Status::forbidden(
                format!(
                    "{} \"{}\" is forbidden: unable to create new content in namespace {} because it is being terminated",
                    rt.qualified(),
                    name,
                    namespace
                ),
                Some(Details {
                    name: name.to_owned(),
                    group: rt.group.to_owned(),
                    kind: rt.plural.to_owned(),
                    causes: vec![Cause {
                        reason: "NamespaceTerminating".into(),
                        message: format!("namespace {namespace} is being terminated"),
                        field: "metadata.namespace".into(),
                    }],
                    ..Default::default()
                }),
            )),
            Some(_) => Ok(()),
        }
    }

    /// Stores a validated new object under a fresh uid and creation time; a generated name
    /// (`generate`) that is taken is drawn again, up to [`GENERATE_NAME_TRIES`] names.
    async fn insert(
        &self,
        rt: &'static ResourceType,
        namespace: Option<&str>,
        mut obj: Object,
        generate: bool,
        dry_run: bool,
    ) -> Result<Object> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            set_meta(&mut obj, "uid", Some(Value::String(uuid())));
            set_meta(
                &mut obj,
                "creationTimestamp",
                Some(Value::String(now_rfc3339())),
            );
            let target = Target::new(rt, namespace, obj.name());
            if dry_run {
                self.encode(&obj)?;
                if let Some(existing) = self.store.get(&target.key()).await? {
                    return Err(already_exists(rt, obj.name(), &existing));
                }
                return Ok(obj);
            }
            match self.commit(target, Write::Create(&obj)).await {
                Ok(Committed::Done(kv)) => {
                    set_meta(
                        &mut obj,
                        "resourceVersion",
                        Some(Value::String(kv.mod_revision.to_string())),
                    );
                    return Ok(obj);
                }
                Ok(Committed::Lost) => {
                    // A create compares with nothing; the store never answers it so.
                    return Err(Status::internal("the object could not be created"));
                }
                Err(e) if generate && e.is_already_exists() => {
                    if attempts < GENERATE_NAME_TRIES {
                        generate_name(&mut obj);
                        continue;
                    }
                    return Err(names_exhausted(rt, obj.name()));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Prepares the metadata of a new object: the namespace (which must match the URL's), no
/// `resourceVersion`, no server-owned fields, the kind's defaults, a first generation where
/// generations are tracked, and a name drawn from `generateName` if there is no name. Answers
/// whether the name was generated.
fn prepare_metadata(rt: &ResourceType, namespace: Option<&str>, obj: &mut Object) -> Result<bool> {
    match (obj.namespace(), namespace) {
        (Some(in_body), Some(in_url)) if in_body != in_url => {
            return Err(Status::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        _ => {}
    }
    set_meta(
        obj,
        "namespace",
        namespace.map(|n| Value::String(n.to_owned())),
    );
    if !obj.resource_version().is_empty() {
        return Err(Status::bad_request(
            "resourceVersion should not be set on objects to be created",
        ));
    }
    let strategy = strategy::for_type(rt);
    {
        let meta = meta_mut(obj);
        for field in SERVER_OWNED_META {
            meta.remove(field);
        }
    }
    strategy.prepare_create(obj);
    if strategy.tracks_generation() {
        set_meta(obj, "generation", Some(Value::from(1)));
    }
    let generate =
        obj.name().is_empty() && obj.meta_str("generateName").is_some_and(|g| !g.is_empty());
    if generate {
        // The generated name is validated like any name, so the base is checked too.
        generate_name(obj);
    }
    Ok(generate)
}

/// Validates a new object: the metadata every kind shares, then the kind's rules (422).
fn validate_new(rt: &ResourceType, obj: &Object) -> Result<()> {
    let mut errors = strategy::validate_meta(rt, obj, None);
    errors.extend(strategy::for_type(rt).validate(obj, None));
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Status::invalid(rt, obj.name(), &errors))
    }
}

/// Sets `metadata.name` to `generateName` plus a random suffix.
fn generate_name(obj: &mut Object) {
    let base = obj.meta_str("generateName").unwrap_or_default().to_owned();
    let name = kargo_api::names::generate_name(&base, random_u32);
    set_meta(obj, "name", Some(Value::String(name)));
}

/// 409 when every generated name was taken, with kube-apiserver's message and a retry hint.
fn names_exhausted(rt: &ResourceType, name: &str) -> Status {
    let mut status = Status::already_exists(rt, name);
    status.message = format!(
        "{}, the server was not able to generate a unique name for the object",
        status.message
    );
    if let Some(d) = status.details.as_mut() {
        d.retry_after_seconds = Some(1);
    }
    status
}

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn random_u32() -> u32 {
    let mut bytes = [0u8; 4];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        // The system RNG failing is not something a name can fix; fall back to the clock.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        return nanos;
    }
    u32::from_le_bytes(bytes)
}

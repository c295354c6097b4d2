//! `metadata.managedFields`: who owns which fields, and how an update or an apply changes that
//! (structured-merge-diff's `Updater.Update` and `Updater.Apply`, with kube-apiserver's
//! bookkeeping: stripped metadata, timestamps of changed entries, entry order).

use serde_json::{Map, Value, json};

use super::fieldset::{FieldSet, Path, PathElement, path_string};
use super::walk::{compare, field_set, merge, remove_empty, remove_paths};
use super::{ApplyError, Schema};

/// The operation an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    /// Server-side apply.
    Apply,
    /// Create, update or a non-apply patch.
    Update,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// One entry of `metadata.managedFields`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The manager's name.
    pub manager: String,
    /// Apply or Update.
    pub operation: Operation,
    /// The API version the fields are in.
    pub api_version: String,
    /// When the entry's fields last changed (RFC 3339), if known.
    pub time: Option<String>,
    /// The subresource written (`status`), empty for the object itself.
    pub subresource: String,
    /// The fields owned.
    pub fields: FieldSet,
}

impl Entry {
    /// Whether two entries are the same manager: kube-apiserver's manager identifier (name,
    /// operation, subresource, and the API version of updates).
    fn same_manager(&self, other: &Entry) -> bool {
        self.manager == other.manager
            && self.operation == other.operation
            && self.subresource == other.subresource
            && (self.operation == Operation::Apply || self.api_version == other.api_version)
    }

    /// How conflicts name the manager (kube-apiserver's `printManager`).
    fn printed(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            s = format!("{s} with subresource {:?}", self.subresource);
        }
        if self.operation == Operation::Update {
            s = format!("{s} using {}", self.api_version);
        }
        s
    }
}

/// The managers of an object's fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManagedFields(pub Vec<Entry>);

/// Metadata no manager owns (kube-apiserver's `stripMeta`).
const STRIPPED: [&[&str]; 12] = [
    &["apiVersion"],
    &["kind"],
    &["metadata"],
    &["metadata", "name"],
    &["metadata", "namespace"],
    &["metadata", "creationTimestamp"],
    &["metadata", "selfLink"],
    &["metadata", "uid"],
    &["metadata", "clusterName"],
    &["metadata", "generation"],
    &["metadata", "managedFields"],
    &["metadata", "resourceVersion"],
];

fn stripped(path: &Path) -> bool {
    STRIPPED.iter().any(|s| {
        s.len() == path.len()
            && s.iter()
                .zip(path)
                .all(|(a, b)| matches!(b, PathElement::Field(f) if f == a))
    })
}

impl ManagedFields {
    /// Reads `metadata.managedFields` (a list of entries).
    pub fn decode(value: &Value) -> Result<ManagedFields, ApplyError> {
        let bad = |why: &str| ApplyError::BadFieldsV1(why.to_owned());
        let list = value
            .as_array()
            .ok_or_else(|| bad("managedFields must be a list"))?;
        let mut entries = Vec::with_capacity(list.len());
        for item in list {
            let s = |k: &str| item.get(k).and_then(Value::as_str).unwrap_or_default();
            let operation = match s("operation") {
                "Apply" => Operation::Apply,
                "Update" => Operation::Update,
                other => return Err(bad(&format!("unknown operation {other:?}"))),
            };
            if s("fieldsType") != "FieldsV1" {
                return Err(bad("fieldsType must be FieldsV1"));
            }
            let fields = match item.get("fieldsV1") {
                Some(v) => FieldSet::from_fields_v1(v)?,
                None => FieldSet::new(),
            };
            entries.push(Entry {
                manager: s("manager").to_owned(),
                operation,
                api_version: s("apiVersion").to_owned(),
                time: item.get("time").and_then(Value::as_str).map(str::to_owned),
                subresource: s("subresource").to_owned(),
                fields,
            });
        }
        Ok(ManagedFields(entries))
    }

    /// The entries as `metadata.managedFields`, in kube-apiserver's order (Apply before
    /// Update, then by time, manager, API version and subresource); entries owning nothing are
    /// left out.
    pub fn encode(&self) -> Value {
        let mut entries: Vec<&Entry> = self.0.iter().filter(|e| !e.fields.is_empty()).collect();
        entries.sort_by(|a, b| {
            (
                a.operation,
                &a.time,
                &a.manager,
                &a.api_version,
                &a.subresource,
            )
                .cmp(&(
                    b.operation,
                    &b.time,
                    &b.manager,
                    &b.api_version,
                    &b.subresource,
                ))
        });
        Value::Array(
            entries
                .into_iter()
                .map(|e| {
                    let mut m = Map::new();
                    m.insert("manager".into(), json!(e.manager));
                    m.insert("operation".into(), json!(e.operation.as_str()));
                    m.insert("apiVersion".into(), json!(e.api_version));
                    if let Some(t) = &e.time {
                        m.insert("time".into(), json!(t));
                    }
                    m.insert("fieldsType".into(), json!("FieldsV1"));
                    m.insert("fieldsV1".into(), e.fields.to_fields_v1());
                    if !e.subresource.is_empty() {
                        m.insert("subresource".into(), json!(e.subresource));
                    }
                    Value::Object(m)
                })
                .collect(),
        )
    }

    fn position(&self, who: &Entry) -> Option<usize> {
        self.0.iter().position(|e| e.same_manager(who))
    }

    /// Removes stripped metadata and ignored paths from every entry and drops empty entries.
    fn tidy(&mut self, ignored: &dyn Fn(&Path) -> bool) {
        for e in &mut self.0 {
            e.fields.retain(|p| !stripped(p) && !ignored(p));
        }
        self.0.retain(|e| !e.fields.is_empty());
    }
}

/// Who writes, and how: the inputs of [`update`] and [`apply`] besides the objects.
pub struct Writer<'a> {
    /// The manager's name.
    pub manager: &'a str,
    /// The subresource written, empty for the object itself.
    pub subresource: &'a str,
    /// The object's API version.
    pub api_version: &'a str,
    /// Now, as RFC 3339 (the time of changed entries).
    pub now: &'a str,
    /// The object's schema.
    pub schema: &'a Schema<'a>,
    /// Paths no manager of this write owns (`status` when the kind has a status subresource).
    pub ignored: &'a dyn Fn(&Path) -> bool,
}

impl Writer<'_> {
    fn entry(&self, operation: Operation, fields: FieldSet) -> Entry {
        Entry {
            manager: self.manager.to_owned(),
            operation,
            api_version: self.api_version.to_owned(),
            time: Some(self.now.to_owned()),
            subresource: self.subresource.to_owned(),
            fields,
        }
    }
}

/// A field another manager owns with a different value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The other manager, as kube-apiserver prints it (`"kubectl" using v1`).
    pub manager: String,
    /// The field (`.spec.x`).
    pub field: String,
}

/// kube-apiserver's message for apply conflicts: `Apply failed with 1 conflict: conflict with
/// "m": .a` or, for several, `Apply failed with N conflicts: conflicts with "m":\n- .a...`
/// (managers sorted).
pub fn conflict_message(conflicts: &[Conflict]) -> String {
    if let [one] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            one.manager, one.field
        );
    }
    let mut managers: Vec<&str> = conflicts.iter().map(|c| c.manager.as_str()).collect();
    managers.sort_unstable();
    managers.dedup();
    let mut lines = Vec::new();
    for m in managers {
        lines.push(format!("conflicts with {m}:"));
        for c in conflicts.iter().filter(|c| c.manager == m) {
            lines.push(format!("- {}", c.field));
        }
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

/// structured-merge-diff's `update`: compares `live` and `new`; other managers (all but
/// `skip`) that own a changed or added field conflict, and lose what was removed. With
/// `force`, they lose the conflicting fields instead.
fn settle(
    live: &Value,
    new: &Value,
    managed: &mut ManagedFields,
    skip: Option<usize>,
    force: bool,
    writer: &Writer<'_>,
) -> Result<super::walk::Comparison, ApplyError> {
    let cmp = compare(live, new, writer.schema)?;
    let changed = cmp.modified.union(&cmp.added);
    let mut conflicts = Vec::new();
    for (i, e) in managed.0.iter().enumerate() {
        if Some(i) == skip {
            continue;
        }
        for path in e.fields.intersection(&changed).iter() {
            conflicts.push(Conflict {
                manager: e.printed(),
                field: path_string(path),
            });
        }
    }
    if !force && !conflicts.is_empty() {
        return Err(ApplyError::Conflicts(conflicts));
    }
    for (i, e) in managed.0.iter_mut().enumerate() {
        if Some(i) == skip {
            continue;
        }
        e.fields = e.fields.difference(&changed).difference(&cmp.removed);
    }
    Ok(cmp)
}

/// The managers after an update (create, PUT, non-apply patch) from `live` (`None` for a
/// create) to `new`: the writer gains every field it changed or added, others lose those and
/// what was removed. The writer's entry is re-timed only if it gained something. Objects are
/// given without `metadata.managedFields`.
pub fn update(
    live: Option<&Value>,
    new: &Value,
    mut managed: ManagedFields,
    writer: &Writer<'_>,
) -> Result<ManagedFields, ApplyError> {
    let empty = Value::Object(Map::new());
    let live = live.unwrap_or(&empty);
    let cmp = settle(live, new, &mut managed, None, true, writer)?;
    let mut gained = cmp.modified.union(&cmp.added);
    gained.retain(|p| !stripped(p) && !(writer.ignored)(p));
    if !gained.is_empty() {
        let me = writer.entry(Operation::Update, gained);
        match managed.position(&me) {
            Some(i) => {
                let e = &mut managed.0[i];
                e.fields = e.fields.union(&me.fields);
                e.time = me.time;
            }
            None => managed.0.push(me),
        }
    }
    managed.tidy(writer.ignored);
    Ok(managed)
}

/// Server-side apply of `config` to `live` (`None` if the object does not exist yet): the
/// merged object and its managers. The applier owns exactly the fields of `config`; fields it
/// owned before and no longer applies are removed unless another manager owns them; a field
/// another manager owns with a different value is a conflict unless `force` (then the applier
/// takes it over). Objects are given without `metadata.managedFields`.
pub fn apply(
    live: Option<&Value>,
    config: &Value,
    mut managed: ManagedFields,
    force: bool,
    writer: &Writer<'_>,
) -> Result<(Value, ManagedFields), ApplyError> {
    let empty = Value::Object(Map::new());
    let live = live.unwrap_or(&empty);
    let mut merged = merge(live, config, writer.schema)?;
    let mut applied = field_set(config, writer.schema)?;
    applied.retain(|p| !stripped(p) && !(writer.ignored)(p));
    let me = writer.entry(Operation::Apply, applied);
    let mine = managed.position(&me);
    if let Some(i) = mine {
        let last = &managed.0[i].fields;
        let mut keep = me.fields.with_ancestors();
        for (j, e) in managed.0.iter().enumerate() {
            if j != i {
                keep = keep.union(&e.fields.with_ancestors());
            }
        }
        remove_paths(&mut merged, &last.difference(&keep), writer.schema);
        // Parents left empty by the removal go too, unless someone owns them.
        let parents = last.with_ancestors().difference(last).difference(&keep);
        remove_empty(&mut merged, &parents, writer.schema);
    }
    let mine = match mine {
        Some(i) => {
            let previous = managed.0[i].time.clone();
            managed.0[i] = Entry {
                time: previous,
                ..me
            };
            i
        }
        None => {
            managed.0.push(Entry { time: None, ..me });
            managed.0.len() - 1
        }
    };
    settle(live, &merged, &mut managed, Some(mine), force, writer)?;
    if merged != *live || managed.0[mine].time.is_none() {
        managed.0[mine].time = Some(writer.now.to_owned());
    }
    managed.tidy(writer.ignored);
    Ok((merged, managed))
}

/// Before the first apply to an object that has no managers (created before managed fields
/// were kept), its fields are given to `before-first-apply`, as kube-apiserver does.
pub fn before_first_apply(live: &Value, writer: &Writer<'_>) -> Result<ManagedFields, ApplyError> {
    let first = Writer {
        manager: "before-first-apply",
        ..*writer
    };
    update(None, live, ManagedFields::default(), &first)
}

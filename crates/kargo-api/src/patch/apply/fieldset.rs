//! Field sets as structured-merge-diff defines them: sets of paths into an object, written as
//! `FieldsV1` (`f:<field>`, `k:<keys as JSON>`, `v:<value as JSON>`, `i:<index>`, `.` for a
//! path that is itself a member and has children).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{Map, Value};

use super::ApplyError;

/// One step of a path: a field of an object, an associative-list item by its key fields, a
/// set item by its value, or (for lists without keys) an index.
///
/// The order (fields, then keys, then values, then indices) is structured-merge-diff's, so
/// encoded `FieldsV1` lists children as kube-apiserver does.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathElement {
    /// `f:name`: a field of an object or a key of a map.
    Field(String),
    /// `k:{"name":"x"}`: the item of an associative list whose key fields have these values
    /// (compact JSON, fields sorted).
    Key(String),
    /// `v:"x"`: the item of a set with this value (compact JSON).
    Value(String),
    /// `i:0`: a list item by position.
    Index(usize),
}

impl PathElement {
    /// The key element of an associative-list item from its key fields' values.
    pub fn key(fields: &[(&str, &Value)]) -> PathElement {
        let mut sorted: Vec<_> = fields.to_vec();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        let map: Map<String, Value> = sorted
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.clone()))
            .collect();
        PathElement::Key(Value::Object(map).to_string())
    }

    /// The value element of a set item.
    pub fn value(v: &Value) -> PathElement {
        PathElement::Value(v.to_string())
    }

    fn encode(&self) -> String {
        match self {
            PathElement::Field(f) => format!("f:{f}"),
            PathElement::Key(k) => format!("k:{k}"),
            PathElement::Value(v) => format!("v:{v}"),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    fn decode(s: &str) -> Result<PathElement, ApplyError> {
        let bad = || ApplyError::BadFieldsV1(format!("invalid path element {s:?}"));
        let (prefix, rest) = s.split_once(':').ok_or_else(bad)?;
        match prefix {
            "f" => Ok(PathElement::Field(rest.to_owned())),
            "k" => {
                let v: Value = serde_json::from_str(rest).map_err(|_| bad())?;
                let map = v.as_object().ok_or_else(bad)?;
                let fields: Vec<(&str, &Value)> =
                    map.iter().map(|(k, v)| (k.as_str(), v)).collect();
                Ok(PathElement::key(&fields))
            }
            "v" => {
                let v: Value = serde_json::from_str(rest).map_err(|_| bad())?;
                Ok(PathElement::value(&v))
            }
            "i" => rest.parse().map(PathElement::Index).map_err(|_| bad()),
            _ => Err(bad()),
        }
    }
}

/// Go's `value.ToString`: strings quoted, anything else as JSON.
fn go_value_string(json: &str) -> String {
    json.to_owned()
}

impl fmt::Display for PathElement {
    /// structured-merge-diff's `PathElement.String`: `.name`, `[name="x"]`, `[="x"]`, `[0]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(name) => write!(f, ".{name}"),
            PathElement::Key(k) => {
                let map: Map<String, Value> = serde_json::from_str(k).unwrap_or_default();
                let parts: Vec<String> = map
                    .iter()
                    .map(|(name, v)| format!("{name}={}", go_value_string(&v.to_string())))
                    .collect();
                write!(f, "[{}]", parts.join(","))
            }
            PathElement::Value(v) => write!(f, "[={}]", go_value_string(v)),
            PathElement::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// A path from the root of an object.
pub type Path = Vec<PathElement>;

/// A path as structured-merge-diff prints it in conflicts: `.spec.x`, `.secrets[name="a"]`.
pub fn path_string(path: &[PathElement]) -> String {
    path.iter().map(ToString::to_string).collect()
}

/// A set of paths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet(BTreeSet<Path>);

impl FieldSet {
    /// The empty set.
    pub fn new() -> FieldSet {
        FieldSet::default()
    }

    /// Adds a path.
    pub fn insert(&mut self, path: Path) {
        self.0.insert(path);
    }

    /// Whether the set has `path`.
    pub fn contains(&self, path: &[PathElement]) -> bool {
        self.0.contains(path)
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The paths, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Path> {
        self.0.iter()
    }

    /// The paths in both sets.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        FieldSet(self.0.intersection(&other.0).cloned().collect())
    }

    /// The paths of `self` not in `other`.
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        FieldSet(self.0.difference(&other.0).cloned().collect())
    }

    /// The paths in either set.
    pub fn union(&self, other: &FieldSet) -> FieldSet {
        FieldSet(self.0.union(&other.0).cloned().collect())
    }

    /// Keeps the paths for which `keep` holds.
    pub fn retain(&mut self, keep: impl Fn(&Path) -> bool) {
        self.0.retain(|p| keep(p));
    }

    /// The set with every ancestor of its paths added (as structured-merge-diff's
    /// `EnsureNamedFieldsAreMembers` does when pruning): a field or list item counts as owned
    /// when something under it is, so it is not removed under another manager's feet.
    pub fn with_ancestors(&self) -> FieldSet {
        let mut out = self.0.clone();
        for path in &self.0 {
            for end in 1..path.len() {
                out.insert(path[..end].to_vec());
            }
        }
        FieldSet(out)
    }

    /// The set as `FieldsV1` JSON.
    pub fn to_fields_v1(&self) -> Value {
        let mut root = Node::default();
        for path in &self.0 {
            let mut node = &mut root;
            for pe in path {
                node = node.children.entry(pe.clone()).or_default();
            }
            node.member = true;
        }
        root.encode()
    }

    /// Reads `FieldsV1` JSON.
    pub fn from_fields_v1(value: &Value) -> Result<FieldSet, ApplyError> {
        let mut set = FieldSet::new();
        decode_into(value, &mut Vec::new(), &mut set)?;
        Ok(set)
    }
}

impl FromIterator<Path> for FieldSet {
    fn from_iter<I: IntoIterator<Item = Path>>(iter: I) -> Self {
        FieldSet(iter.into_iter().collect())
    }
}

#[derive(Default)]
struct Node {
    member: bool,
    children: BTreeMap<PathElement, Node>,
}

impl Node {
    fn encode(&self) -> Value {
        let mut map = Map::new();
        if self.member && !self.children.is_empty() {
            map.insert(".".into(), Value::Object(Map::new()));
        }
        for (pe, child) in &self.children {
            map.insert(pe.encode(), child.encode());
        }
        Value::Object(map)
    }
}

fn decode_into(value: &Value, path: &mut Path, set: &mut FieldSet) -> Result<(), ApplyError> {
    let map = value
        .as_object()
        .ok_or_else(|| ApplyError::BadFieldsV1("a FieldsV1 node must be an object".into()))?;
    for (key, child) in map {
        if key == "." {
            set.insert(path.clone());
            continue;
        }
        path.push(PathElement::decode(key)?);
        let is_leaf = child.as_object().is_some_and(Map::is_empty);
        if is_leaf {
            set.insert(path.clone());
        } else {
            decode_into(child, path, set)?;
        }
        path.pop();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(name: &str) -> PathElement {
        PathElement::Field(name.into())
    }

    #[test]
    fn fields_v1_round_trips_with_dot_for_members_that_have_children() {
        let v = json!({
            "f:data": {".": {}, "f:a": {}},
            "f:metadata": {"f:finalizers": {"v:\"x\"": {}}, "f:labels": {"f:app": {}}},
            "f:secrets": {"k:{\"name\":\"s\"}": {}},
        });
        let set = FieldSet::from_fields_v1(&v).unwrap();
        assert!(set.contains(&[f("data")]));
        assert!(set.contains(&[f("data"), f("a")]));
        assert!(!set.contains(&[f("metadata")]));
        assert_eq!(set.to_fields_v1(), v);
        assert_eq!(
            set.to_fields_v1().to_string(),
            v.to_string(),
            "children are written in structured-merge-diff's order"
        );
    }

    #[test]
    fn paths_print_as_structured_merge_diff_prints_them() {
        let key = PathElement::key(&[("name", &json!("a"))]);
        assert_eq!(path_string(&[f("secrets"), key]), ".secrets[name=\"a\"]");
        let v = PathElement::value(&json!("x"));
        assert_eq!(
            path_string(&[f("metadata"), f("finalizers"), v]),
            ".metadata.finalizers[=\"x\"]"
        );
        assert_eq!(path_string(&[f("spec"), f("x")]), ".spec.x");
    }

    #[test]
    fn bad_fields_v1_is_an_error() {
        for bad in [
            json!({"x:y": {}}),
            json!({"f:a": 1}),
            json!({"k:notjson": {}}),
        ] {
            assert!(FieldSet::from_fields_v1(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ancestors_are_added() {
        let key = PathElement::key(&[("name", &json!("a"))]);
        let set: FieldSet = [vec![f("secrets"), key.clone(), f("name")]]
            .into_iter()
            .collect();
        let with = set.with_ancestors();
        assert!(with.contains(&[f("secrets")]));
        assert!(with.contains(&[f("secrets"), key]));
    }
}

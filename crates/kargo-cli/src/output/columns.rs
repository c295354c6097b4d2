//! The `kargo get` table options kubectl users expect: `-o custom-columns=HEADER:PATH,...`,
//! `--sort-by PATH` and the `--show-labels` cell. Paths are [`crate::jsonpath::Path`]s.

use std::cmp::Ordering;

use serde_json::Value;

use crate::jsonpath::Path;

/// What a cell shows for a missing value, as kubectl does.
pub const NONE: &str = "<none>";

/// `-o custom-columns=NAME:.metadata.name,AGE:.metadata.creationTimestamp`: headers printed as
/// given, one path per column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomColumns(Vec<(String, Path)>);

impl CustomColumns {
    /// Parses the part after `custom-columns=`.
    pub fn parse(spec: &str) -> Result<CustomColumns, String> {
        let fail = |why: String| format!("invalid custom-columns {spec:?}: {why}");
        let mut columns = Vec::new();
        for column in spec.split(',') {
            let (header, path) = column.split_once(':').ok_or_else(|| {
                fail(format!(
                    "{column:?} is not HEADER:PATH, as in NAME:.metadata.name"
                ))
            })?;
            if header.trim().is_empty() {
                return Err(fail(format!("{column:?} has no header")));
            }
            let path = Path::parse(path).map_err(|e| fail(e.to_string()))?;
            columns.push((header.trim().to_owned(), path));
        }
        Ok(CustomColumns(columns))
    }

    /// The headers, in order.
    pub fn headers(&self) -> Vec<&str> {
        self.0.iter().map(|(h, _)| h.as_str()).collect()
    }

    /// One object's row.
    pub fn row(&self, object: &Value) -> Vec<String> {
        self.0.iter().map(|(_, path)| cell(path, object)).collect()
    }
}

/// The values at `path`, joined by commas (strings raw, others as JSON), or `<none>`.
fn cell(path: &Path, object: &Value) -> String {
    let values: Vec<String> = path
        .find(object)
        .into_iter()
        .filter(|v| !v.is_null())
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
    if values.is_empty() {
        NONE.to_owned()
    } else {
        values.join(",")
    }
}

/// The `LABELS` cell: `k=v,k2=v2` sorted by key, or `<none>`.
pub fn labels(object: &Value) -> String {
    let Some(labels) = object["metadata"]["labels"]
        .as_object()
        .filter(|l| !l.is_empty())
    else {
        return NONE.to_owned();
    };
    let mut pairs: Vec<(&String, &Value)> = labels.iter().collect();
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect::<Vec<_>>()
        .join(",")
}

/// `--sort-by PATH`: a stable sort on the first value at `path`, as kubectl sorts: objects
/// without it first, then numbers by value, strings lexically (RFC 3339 times sort by time).
pub fn sort_by(objects: &mut [Value], path: &Path) {
    objects.sort_by(|a, b| compare(path.find(a).first().copied(), path.find(b).first().copied()));
}

fn compare(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    fn rank(v: Option<&Value>) -> u8 {
        match v {
            None | Some(Value::Null) => 0,
            Some(Value::Bool(_)) => 1,
            Some(Value::Number(_)) => 2,
            Some(Value::String(_)) => 3,
            Some(_) => 4,
        }
    }
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            x.total_cmp(&y)
        }
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        (Some(x), Some(y)) if rank(a) == 4 && rank(b) == 4 => x.to_string().cmp(&y.to_string()),
        _ => rank(a).cmp(&rank(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path(p: &str) -> Path {
        Path::parse(p).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn custom_columns_print_values_or_none_and_reject_bad_specs() {
        let columns = CustomColumns::parse(
            "NAME:.metadata.name,Managed:{.kargoManaged},SAS:.serviceAccounts[*].name",
        );
        let Ok(columns) = columns else {
            panic!("{columns:?}")
        };
        assert_eq!(columns.headers(), ["NAME", "Managed", "SAS"]);
        let role =
            json!({"metadata": {"name": "dev"}, "serviceAccounts": [{"name": "a"}, {"name": "b"}]});
        assert_eq!(columns.row(&role), ["dev", "<none>", "a,b"]);
        let bad = [
            (
                "NAME",
                "invalid custom-columns \"NAME\": \"NAME\" is not HEADER:PATH, as in NAME:.metadata.name",
            ),
            (
                ":.a",
                "invalid custom-columns \":.a\": \":.a\" has no header",
            ),
            (
                "N:metadata",
                "invalid custom-columns \"N:metadata\": error executing jsonpath \"metadata\": a path must start with '.', as in .metadata.name",
            ),
        ];
        for (spec, message) in bad {
            assert_eq!(
                CustomColumns::parse(spec),
                Err(message.to_owned()),
                "{spec}"
            );
        }
    }

    #[test]
    fn labels_print_sorted_or_none() {
        assert_eq!(
            labels(&json!({"metadata": {"labels": {"b": "2", "a": "1"}}})),
            "a=1,b=2"
        );
        assert_eq!(labels(&json!({"metadata": {"labels": {}}})), "<none>");
        assert_eq!(labels(&json!({"metadata": {}})), "<none>");
    }

    #[test]
    fn sorting_puts_missing_values_first_and_numbers_by_value() {
        let mut objects = vec![
            json!({"n": "b", "v": 10}),
            json!({"n": "a", "v": 9}),
            json!({"n": "c"}),
            json!({"n": "d", "v": 9.5}),
        ];
        let names = |objects: &[Value]| -> Vec<String> {
            objects
                .iter()
                .map(|o| o["n"].as_str().unwrap_or("").to_owned())
                .collect()
        };
        sort_by(&mut objects, &path(".v"));
        assert_eq!(names(&objects), ["c", "a", "d", "b"]);
        sort_by(&mut objects, &path("{.n}"));
        assert_eq!(names(&objects), ["a", "b", "c", "d"]);
    }
}

//! JSON decoding that reports duplicate fields, as kube-apiserver's strict decoding
//! (`sigs.k8s.io/json`) does: `{"a":1,"a":2}` decodes to its last value, and the field `a` is
//! reported, so that field validation can warn (`Warn`) or refuse (`Strict`).

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// A decoded document and the fields it named more than once.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The document; a duplicated field holds its last value, as in Go.
    pub value: Value,
    /// The paths of duplicated fields (`metadata.name`, `spec.items[1].name`), in document
    /// order.
    pub duplicates: Vec<String>,
}

/// Decodes one JSON document, reporting duplicate fields. Nesting is bounded by serde_json's
/// recursion limit, as for `serde_json::from_slice`.
pub fn from_slice(bytes: &[u8]) -> Result<Decoded, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let decoded = from_deserializer(&mut de)?;
    de.end()?;
    Ok(decoded)
}

/// Decodes one document of any self-describing format (JSON, YAML) into a JSON value,
/// reporting duplicate fields.
pub fn from_deserializer<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decoded, D::Error> {
    let mut duplicates = Vec::new();
    let value = Seed {
        path: None,
        duplicates: &mut duplicates,
    }
    .deserialize(deserializer)?;
    Ok(Decoded { value, duplicates })
}

/// One step of the path to the value being decoded; only printed when a duplicate is found.
enum Step<'a> {
    Field(&'a str),
    Index(usize),
}

struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    step: Step<'a>,
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(parent) = self.parent {
            parent.fmt(f)?;
        }
        match self.step {
            Step::Field(name) if self.parent.is_some() => write!(f, ".{name}"),
            Step::Field(name) => f.write_str(name),
            Step::Index(i) => write!(f, "[{i}]"),
        }
    }
}

struct Seed<'p, 'd> {
    path: Option<&'p Path<'p>>,
    duplicates: &'d mut Vec<String>,
}

impl<'de> DeserializeSeed<'de> for Seed<'_, '_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_, '_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        loop {
            let path = Path {
                parent: self.path,
                step: Step::Index(items.len()),
            };
            let seed = Seed {
                path: Some(&path),
                duplicates: &mut *self.duplicates,
            };
            match seq.next_element_seed(seed)? {
                Some(item) => items.push(item),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut fields = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = {
                let path = Path {
                    parent: self.path,
                    step: Step::Field(&key),
                };
                if fields.contains_key(&key) {
                    self.duplicates.push(path.to_string());
                }
                map.next_value_seed(Seed {
                    path: Some(&path),
                    duplicates: &mut *self.duplicates,
                })?
            };
            fields.insert(key, value);
        }
        Ok(Value::Object(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(input: &str, value: Value, duplicates: &[&str]) {
        let decoded = from_slice(input.as_bytes()).unwrap();
        assert_eq!(decoded.value, value, "{input}");
        assert_eq!(decoded.duplicates, duplicates, "{input}");
        assert_eq!(
            decoded.value,
            serde_json::from_str::<Value>(input).unwrap(),
            "decodes as serde_json does: {input}"
        );
    }

    #[test]
    fn duplicate_fields_are_reported_with_their_path_and_the_last_value_wins() {
        check(r#"{"a":1,"b":2}"#, json!({"a":1,"b":2}), &[]);
        check(r#"{"a":1,"a":2}"#, json!({"a":2}), &["a"]);
        check(
            r#"{"metadata":{"name":"x","labels":{"k":"1"},"name":"y"}}"#,
            json!({"metadata":{"name":"y","labels":{"k":"1"}}}),
            &["metadata.name"],
        );
        check(
            r#"{"spec":{"items":[{"n":1},{"n":2,"n":3}]},"spec2":[[{"z":0,"z":1}]]}"#,
            json!({"spec":{"items":[{"n":1},{"n":3}]},"spec2":[[{"z":1}]]}),
            &["spec.items[1].n", "spec2[0][0].z"],
        );
    }

    #[test]
    fn scalars_and_numbers_decode_like_serde_json() {
        check(
            r#"[null,true,-1,18446744073709551615,1.5,"s\u00e9"]"#,
            json!([null, true, -1, 18446744073709551615u64, 1.5, "sé"]),
            &[],
        );
    }

    #[test]
    fn malformed_and_too_deep_documents_fail_like_serde_json() {
        for input in ["{", "{\"a\":1,}", "[1] [2]", "", "nul"] {
            assert!(from_slice(input.as_bytes()).is_err(), "{input}");
        }
        let deep = "[".repeat(200) + &"]".repeat(200);
        let err = from_slice(deep.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("recursion limit"), "{err}");
    }
}

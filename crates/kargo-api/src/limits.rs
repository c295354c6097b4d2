//! Bounds on every object the server stores, and cheap ways to measure an object against them.
//!
//! - [`MAX_OBJECT_BYTES`]: the largest encoded object, kube-apiserver's effective limit (etcd's
//!   default `--max-request-bytes`, 1.5 MiB). The server may be configured with another value.
//! - [`MAX_NESTING_DEPTH`]: the deepest nesting of arrays and objects. serde_json refuses to
//!   decode 128 nested containers, so an object stored deeper could never be read back (every
//!   GET, LIST and DELETE of it would fail); 100 leaves room below that.
//!
//! The measures are iterative ([`nesting_depth`], [`deeper_than`], [`json_len`]): a value built
//! in memory (for example by a JSON patch) can be deeper than anything serde_json decodes, and a
//! recursive walk of it could overflow the stack.

use serde_json::Value;

/// The deepest nesting of arrays and objects an object may have, as [`nesting_depth`] counts it
/// (`{"a": [1]}` is 2 deep).
///
/// Below serde_json's decoding limit (127 nested containers decode, 128 do not), so every stored
/// object decodes again.
pub const MAX_NESTING_DEPTH: usize = 100;

/// The default largest object, in bytes of compact JSON: 1.5 MiB, etcd's default request limit,
/// which bounds what kube-apiserver can store.
pub const MAX_OBJECT_BYTES: usize = 3 * 512 * 1024;

/// How many arrays and objects are nested at the deepest point of `value`: 0 for a scalar, 1 for
/// `{}` or `[1, 2]`, 2 for `{"a": {}}`.
///
/// Iterative, so any depth is safe to measure. Visits every array and object once.
pub fn nesting_depth(value: &Value) -> usize {
    let mut deepest = 0;
    walk_containers(value, |depth| {
        deepest = deepest.max(depth);
        true
    });
    deepest
}

/// Whether `value` is nested deeper than `limit` ([`nesting_depth`]`(value) > limit`), stopping at
/// the first container past the limit rather than measuring the whole value.
pub fn deeper_than(value: &Value, limit: usize) -> bool {
    !walk_containers(value, |depth| depth <= limit)
}

/// Visit every array and object of `value` with its depth (1 for `value` itself) until `visit`
/// returns false; returns false if it stopped early.
fn walk_containers(value: &Value, mut visit: impl FnMut(usize) -> bool) -> bool {
    let is_container = |v: &&Value| v.is_array() || v.is_object();
    let mut stack: Vec<(&Value, usize)> = Some(value)
        .filter(is_container)
        .map(|v| (v, 1))
        .into_iter()
        .collect();
    while let Some((v, depth)) = stack.pop() {
        if !visit(depth) {
            return false;
        }
        let children = depth + 1;
        match v {
            Value::Array(items) => {
                stack.extend(items.iter().filter(is_container).map(|c| (c, children)));
            }
            Value::Object(map) => {
                stack.extend(map.values().filter(is_container).map(|c| (c, children)));
            }
            _ => {}
        }
    }
    true
}

/// The length of `value` encoded as compact JSON (`serde_json::to_vec(value).len()`), without
/// building the encoding.
///
/// Iterative over arrays and objects; strings, numbers and keys are measured with serde_json's
/// own encoder, so escapes and number formats count exactly.
pub fn json_len(value: &Value) -> usize {
    let mut len = 0;
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        len += match v {
            Value::Array(items) => {
                stack.extend(items.iter());
                // `[` `]` and a comma between items.
                2 + items.len().saturating_sub(1)
            }
            Value::Object(map) => {
                stack.extend(map.values());
                // `{` `}`, a comma between members, a colon in each.
                2 + map.len().saturating_sub(1)
                    + map.keys().map(|k| json_string_len(k) + 1).sum::<usize>()
            }
            scalar => encoded_len(scalar),
        };
    }
    len
}

/// The encoded length of a JSON string, quotes and escapes included.
pub(crate) fn json_string_len(s: &str) -> usize {
    encoded_len(s)
}

fn encoded_len(scalar: &(impl serde::Serialize + ?Sized)) -> usize {
    let mut counter = Counter(0);
    // Writing to a counter cannot fail, and a scalar or string always encodes.
    let _ = serde_json::to_writer(&mut counter, scalar);
    counter.0
}

/// A writer that only counts bytes.
struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `depth` arrays nested in each other around `inner`.
    fn nested(depth: usize, inner: Value) -> Value {
        (0..depth).fold(inner, |v, _| Value::Array(vec![v]))
    }

    #[test]
    fn nesting_depth_counts_arrays_and_objects_on_the_deepest_path() {
        let cases = [
            (json!(1), 0),
            (json!("s"), 0),
            (json!(null), 0),
            (json!([]), 1),
            (json!({}), 1),
            (json!([1, 2]), 1),
            (json!({"a": [1]}), 2),
            (json!({"a": {"b": {}}, "c": [[[[]]]]}), 5),
            (json!([{"a": 1}, [[2]], {}]), 3),
        ];
        for (value, depth) in cases {
            assert_eq!(nesting_depth(&value), depth, "{value}");
            assert!(!deeper_than(&value, depth), "{value}");
            assert_eq!(
                deeper_than(&value, depth.saturating_sub(1)),
                depth > 0,
                "{value}"
            );
        }
    }

    #[test]
    fn the_nesting_limit_leaves_every_stored_object_decodable() {
        let deepest = nested(MAX_NESTING_DEPTH, json!(1));
        assert_eq!(nesting_depth(&deepest), MAX_NESTING_DEPTH);
        let text = deepest.to_string();
        assert!(serde_json::from_str::<Value>(&text).is_ok());
        // serde_json's own limit is what the margin protects.
        let too_deep = nested(128, json!(1)).to_string();
        assert!(serde_json::from_str::<Value>(&too_deep).is_err());
    }

    #[test]
    fn depth_of_a_value_far_deeper_than_any_decoder_allows_is_measured_without_recursion() {
        let depth = 200_000;
        let deep = nested(depth, json!({}));
        assert_eq!(nesting_depth(&deep), depth + 1);
        assert!(deeper_than(&deep, MAX_NESTING_DEPTH));
        assert_eq!(json_len(&deep), 2 * depth + 2);
        // Dropping it recursively would overflow the stack: take it apart level by level.
        let mut v = deep;
        while let Value::Array(mut items) = v {
            v = items.pop().unwrap_or(Value::Null);
        }
    }

    #[test]
    fn json_len_is_the_length_of_the_compact_encoding() {
        let values = [
            json!(null),
            json!(true),
            json!(false),
            json!(0),
            json!(-17),
            json!(u64::MAX),
            json!(1.5),
            json!(-0.0),
            json!(1e300),
            json!("plain"),
            json!("quote \" backslash \\ newline \n tab \t bell \u{7} é ☃ 😀"),
            json!([]),
            json!({}),
            json!([1, [2, [3, {}]], "x"]),
            json!({"a": 1, "b\"c": {"d": [null, true]}, "": ""}),
        ];
        for value in values {
            let encoded = serde_json::to_vec(&value).map(|v| v.len()).unwrap_or(0);
            assert_eq!(json_len(&value), encoded, "{value}");
        }
    }
}

//! Limits on what the server stores, as kube-apiserver has them: how deep an object may nest
//! and how large its encoding may be.

use serde_json::Value;

/// How deeply an object may nest (objects and arrays). Below serde_json's parse limit of 128,
/// so every object the server stores decodes again.
pub const MAX_NESTING_DEPTH: usize = 100;

/// The default largest encoded object the server stores: kube-apiserver's limit for an etcd
/// value (1.5 MiB).
pub const MAX_OBJECT_BYTES: usize = 1536 * 1024;

/// How deeply `value` nests: 0 for a scalar, 1 for an object or array of scalars. Iterative, so
/// any depth is measured without recursion.
pub fn nesting_depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 0usize)];
    while let Some((v, depth)) = stack.pop() {
        match v {
            Value::Object(m) => {
                deepest = deepest.max(depth + 1);
                stack.extend(m.values().map(|c| (c, depth + 1)));
            }
            Value::Array(a) => {
                deepest = deepest.max(depth + 1);
                stack.extend(a.iter().map(|c| (c, depth + 1)));
            }
            _ => {}
        }
    }
    deepest
}

/// Whether `value` nests deeper than `limit`; stops at the first path that does.
pub fn deeper_than(value: &Value, limit: usize) -> bool {
    let mut stack = vec![(value, 0usize)];
    while let Some((v, depth)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match v {
            Value::Object(m) => Box::new(m.values()),
            Value::Array(a) => Box::new(a.iter()),
            _ => continue,
        };
        if depth + 1 > limit {
            return true;
        }
        stack.extend(children.map(|c| (c, depth + 1)));
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nested(depth: usize) -> Value {
        let mut v = json!(1);
        for _ in 0..depth {
            v = json!([v]);
        }
        v
    }

    #[test]
    fn depth_counts_objects_and_arrays_not_scalars() {
        assert_eq!(nesting_depth(&json!("x")), 0);
        assert_eq!(nesting_depth(&json!({})), 1);
        assert_eq!(nesting_depth(&json!({"a": [1, {"b": 2}]})), 3);
        assert_eq!(nesting_depth(&nested(1000)), 1000);
    }

    #[test]
    fn deeper_than_agrees_with_the_depth() {
        for depth in [0, 1, 2, 99, 100, 101] {
            let v = nested(depth);
            assert_eq!(
                deeper_than(&v, MAX_NESTING_DEPTH),
                depth > MAX_NESTING_DEPTH
            );
        }
    }
}

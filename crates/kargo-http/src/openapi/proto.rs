//! `/openapi/v2` as protobuf (`application/com.github.proto-openapi.spec.v2@v1.0+protobuf`):
//! the JSON document re-encoded as gnostic's `openapi.v2.Document`
//! (`github.com/google/gnostic-models/openapiv2/OpenAPIv2.proto`), the only form client-go
//! asks for. kubectl reads it when the v3 documents do not settle a question: it validates a
//! kind with no `patch` operation (the reviews) against these schemas before creating it.
//!
//! Only the fields kube-apiserver's documents use are encoded; vendor extensions (and `default`,
//! `enum`, `example`) travel as YAML text in gnostic's `Any.yaml` (JSON is YAML).

use serde_json::{Map, Value};

/// A protobuf message being written.
#[derive(Default)]
struct Message(Vec<u8>);

impl Message {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn key(&mut self, field: u32, wire: u8) {
        self.varint((u64::from(field) << 3) | u64::from(wire));
    }

    fn bytes(&mut self, field: u32, bytes: &[u8]) {
        self.key(field, 2);
        self.varint(bytes.len() as u64);
        self.0.extend_from_slice(bytes);
    }

    fn string(&mut self, field: u32, value: Option<&Value>) {
        if let Some(s) = value.and_then(Value::as_str) {
            self.bytes(field, s.as_bytes());
        }
    }

    fn strings(&mut self, field: u32, value: Option<&Value>) {
        for s in value.and_then(Value::as_array).into_iter().flatten() {
            self.string(field, Some(s));
        }
    }

    fn message(&mut self, field: u32, message: Message) {
        self.bytes(field, &message.0);
    }

    fn bool(&mut self, field: u32, value: Option<&Value>) {
        if value.and_then(Value::as_bool) == Some(true) {
            self.key(field, 0);
            self.varint(1);
        }
    }

    fn int64(&mut self, field: u32, value: Option<&Value>) {
        if let Some(v) = value.and_then(Value::as_i64) {
            self.key(field, 0);
            self.varint(v as u64);
        }
    }

    fn double(&mut self, field: u32, value: Option<&Value>) {
        if let Some(v) = value.and_then(Value::as_f64) {
            self.key(field, 1);
            self.0.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// An `Any` holding `value` as YAML (`Any.yaml` = 2).
    fn any(&mut self, field: u32, value: &Value) {
        let mut any = Message::default();
        any.bytes(2, value.to_string().as_bytes());
        self.message(field, any);
    }

    /// The `x-` keys of `map` as `NamedAny`s.
    fn vendor_extensions(&mut self, field: u32, map: &Map<String, Value>) {
        for (name, value) in map.iter().filter(|(k, _)| k.starts_with("x-")) {
            let mut named = Message::default();
            named.bytes(1, name.as_bytes());
            named.any(2, value);
            self.message(field, named);
        }
    }
}

/// A `NamedX { name = 1; value = 2; }`.
fn named(name: &str, value: Message) -> Message {
    let mut m = Message::default();
    m.bytes(1, name.as_bytes());
    m.message(2, value);
    m
}

fn schema(value: &Value) -> Message {
    let mut m = Message::default();
    let Some(map) = value.as_object() else {
        return m;
    };
    m.string(1, map.get("$ref"));
    m.string(2, map.get("format"));
    m.string(3, map.get("title"));
    m.string(4, map.get("description"));
    if let Some(default) = map.get("default") {
        m.any(5, default);
    }
    m.double(6, map.get("multipleOf"));
    m.double(7, map.get("maximum"));
    m.bool(8, map.get("exclusiveMaximum"));
    m.double(9, map.get("minimum"));
    m.bool(10, map.get("exclusiveMinimum"));
    m.int64(11, map.get("maxLength"));
    m.int64(12, map.get("minLength"));
    m.string(13, map.get("pattern"));
    m.int64(14, map.get("maxItems"));
    m.int64(15, map.get("minItems"));
    m.bool(16, map.get("uniqueItems"));
    m.int64(17, map.get("maxProperties"));
    m.int64(18, map.get("minProperties"));
    m.strings(19, map.get("required"));
    for e in map
        .get("enum")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.any(20, e);
    }
    match map.get("additionalProperties") {
        Some(Value::Bool(b)) => {
            let mut item = Message::default();
            item.bool(2, Some(&Value::Bool(*b)));
            if !*b {
                // `false` is the default of a bool field: say it explicitly.
                item.key(2, 0);
                item.varint(0);
            }
            m.message(21, item);
        }
        Some(s @ Value::Object(_)) => {
            let mut item = Message::default();
            item.message(1, schema(s));
            m.message(21, item);
        }
        _ => {}
    }
    if let Some(t) = map.get("type") {
        let mut item = Message::default();
        match t {
            Value::Array(_) => item.strings(1, Some(t)),
            _ => item.string(1, Some(t)),
        }
        m.message(22, item);
    }
    if let Some(items) = map.get("items") {
        let mut item = Message::default();
        match items {
            Value::Array(all) => all.iter().for_each(|s| item.message(1, schema(s))),
            s => item.message(1, schema(s)),
        }
        m.message(23, item);
    }
    for s in map
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.message(24, schema(s));
    }
    if let Some(props) = map.get("properties").and_then(Value::as_object) {
        let mut p = Message::default();
        for (name, s) in props {
            p.message(1, named(name, schema(s)));
        }
        m.message(25, p);
    }
    m.bool(27, map.get("readOnly"));
    if let Some(example) = map.get("example") {
        m.any(30, example);
    }
    m.vendor_extensions(31, map);
    m
}

/// A `ParametersItem`: a body parameter or a query/path parameter.
fn parameter(value: &Value) -> Message {
    let mut p = Message::default();
    if value["in"] == "body" {
        let mut body = Message::default();
        body.string(1, value.get("description"));
        body.string(2, value.get("name"));
        body.string(3, value.get("in"));
        body.bool(4, value.get("required"));
        if let Some(s) = value.get("schema") {
            body.message(5, schema(s));
        }
        p.message(1, body);
    } else {
        // Query (3) and path (4) sub-schemas number their fields alike up to `name`, then
        // path parameters have no `allow_empty_value` (5).
        let path = value["in"] == "path";
        let mut sub = Message::default();
        sub.bool(1, value.get("required"));
        sub.string(2, value.get("in"));
        sub.string(3, value.get("description"));
        sub.string(4, value.get("name"));
        sub.string(if path { 5 } else { 6 }, value.get("type"));
        sub.bool(if path { 19 } else { 20 }, value.get("uniqueItems"));
        let mut non_body = Message::default();
        non_body.message(if path { 4 } else { 3 }, sub);
        p.message(2, non_body);
    }
    let mut item = Message::default();
    item.message(1, p);
    item
}

fn operation(value: &Value) -> Message {
    let mut m = Message::default();
    m.strings(1, value.get("tags"));
    m.string(3, value.get("description"));
    m.string(5, value.get("operationId"));
    m.strings(6, value.get("produces"));
    m.strings(7, value.get("consumes"));
    for p in value["parameters"].as_array().into_iter().flatten() {
        m.message(8, parameter(p));
    }
    if let Some(responses) = value["responses"].as_object() {
        let mut r = Message::default();
        for (code, response) in responses {
            let mut body = Message::default();
            body.string(1, response.get("description"));
            if let Some(s) = response.get("schema") {
                let mut item = Message::default();
                item.message(1, schema(s));
                body.message(2, item);
            }
            let mut value = Message::default();
            value.message(1, body);
            r.message(1, named(code, value));
        }
        m.message(9, r);
    }
    m.strings(10, value.get("schemes"));
    if let Some(map) = value.as_object() {
        m.vendor_extensions(13, map);
    }
    m
}

fn path_item(value: &Value) -> Message {
    let mut m = Message::default();
    for (field, method) in [
        (2, "get"),
        (3, "put"),
        (4, "post"),
        (5, "delete"),
        (8, "patch"),
    ] {
        if let Some(op) = value.get(method) {
            m.message(field, operation(op));
        }
    }
    for p in value["parameters"].as_array().into_iter().flatten() {
        m.message(9, parameter(p));
    }
    m
}

/// The protobuf encoding of a Swagger 2.0 JSON document.
pub(super) fn encode(doc: &Value) -> Vec<u8> {
    let mut m = Message::default();
    m.string(1, doc.get("swagger"));
    let mut info = Message::default();
    info.string(1, doc["info"].get("title"));
    info.string(2, doc["info"].get("version"));
    m.message(2, info);
    let mut paths = Message::default();
    for (name, item) in doc["paths"].as_object().into_iter().flatten() {
        paths.message(2, named(name, path_item(item)));
    }
    m.message(8, paths);
    let mut definitions = Message::default();
    for (name, s) in doc["definitions"].as_object().into_iter().flatten() {
        definitions.message(1, named(name, schema(s)));
    }
    m.message(9, definitions);
    m.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_are_encoded_as_gnostic_numbers_them() {
        let doc = json!({"swagger": "2.0", "info": {"title": "T", "version": "v"}, "paths": {},
            "definitions": {"D": {"type": "object", "description": "d",
                "x-kubernetes-group-version-kind": [{"group": "", "kind": "D", "version": "v1"}]}}});
        let bytes = encode(&doc);
        // swagger = 1, "2.0"
        assert_eq!(&bytes[..5], &[0x0a, 3, b'2', b'.', b'0']);
        // info = 2 { title = 1 "T", version = 2 "v" }
        assert_eq!(&bytes[5..13], &[0x12, 6, 0x0a, 1, b'T', 0x12, 1, b'v']);
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("x-kubernetes-group-version-kind"));
        assert!(text.contains(r#"[{"group":"","kind":"D","version":"v1"}]"#));
    }
}

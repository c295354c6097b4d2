//! Request bodies: JSON (with or without a Content-Type), YAML, and the Kubernetes protobuf that
//! kubectl 1.32+ sends, all decoded to a JSON value; and the size limit.

use axum::body::Bytes;
use http::HeaderMap;
use serde_json::Value;

use crate::status::Status;

/// The largest body the Kubernetes API accepts (kube-apiserver's 3 MiB).
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// How much of an oversized body is read (and dropped) before answering 413, so that the client
/// gets the answer instead of a reset connection.
const DRAIN_LIMIT: usize = 16 * 1024 * 1024;

/// Reads a request body; `None` if it is longer than `limit` (what was sent is drained up to a
/// bound first).
pub async fn read(body: axum::body::Body, limit: usize) -> Result<Option<Bytes>, Status> {
    use axum::body::HttpBody as _;
    use http_body_util::BodyExt;
    if body.is_end_stream() {
        return Ok(Some(Bytes::new()));
    }
    let limited = http_body_util::Limited::new(body, DRAIN_LIMIT.max(limit));
    match limited.collect().await {
        Ok(collected) => {
            let bytes = collected.to_bytes();
            Ok((bytes.len() <= limit).then_some(bytes))
        }
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Ok(None),
        Err(e) => Err(Status::bad_request(format!(
            "reading the request body failed: {e}"
        ))),
    }
}

/// The media type of a request body, without parameters.
pub fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

/// Decodes a create/update body by its Content-Type.
pub fn decode(headers: &HeaderMap, body: &Bytes) -> Result<Value, Status> {
    if body.len() > MAX_BODY {
        return Err(Status::too_large(MAX_BODY));
    }
    match content_type(headers).as_str() {
        crate::protobuf::MEDIA_TYPE => crate::protobuf::decode(body)
            .map_err(|e| Status::bad_request(format!("unable to decode the protobuf body: {e}"))),
        "application/yaml" | "application/x-yaml" | "text/yaml" => decode_yaml(body),
        "" | "application/json" | "text/plain" | "application/octet-stream" => decode_json(body),
        other => Err(Status::unsupported_media_type(
            other,
            "application/json, application/yaml, application/vnd.kubernetes.protobuf",
        )),
    }
}

/// Decodes JSON, with kube-apiserver's message for malformed input.
pub fn decode_json(body: &[u8]) -> Result<Value, Status> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Status::bad_request(
            "couldn't get version/kind; json parse error: unexpected end of JSON input",
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        Status::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
    })
}

/// The deepest flow nesting (`[`, `{`) a YAML body may reach, as [`yaml_flow_depth_bound`]
/// counts it.
///
/// The YAML scanner (libyaml's design, as in `yaml_serde`) revisits every open flow level on
/// every token, so its time grows with the square of the nesting: a 500 KB body of `{a: `
/// repeated 100,000 times held a thread for 90 s in an optimized build (found by fuzzing). The
/// decoder refuses more than 128 levels anyway; the bound over-counts (brackets inside quoted
/// scalars and comments may count), hence the margin. libyaml itself now stops at 1000 levels.
pub const MAX_YAML_FLOW_DEPTH: u32 = 256;

/// The lexical modes a YAML scanner can be in where brackets are, or are not, structure.
#[derive(Clone, Copy)]
enum YamlMode {
    /// Structure or a plain scalar: `[{` open and `]}` close a flow collection.
    Structure,
    /// A single-quoted scalar.
    Single,
    /// A double-quoted scalar.
    Double,
    /// Just after a `\` in a double-quoted scalar.
    DoubleEscape,
    /// A comment, to the end of the line.
    Comment,
    /// A verbatim tag, `!<...>`, which may hold brackets.
    Verbatim,
}

/// An upper bound of the flow nesting depth a YAML scanner reaches on `body`, in one linear
/// pass over its bytes.
///
/// Whether a quote or `#` starts a scalar or a comment depends on context this pass does not
/// track, so it follows every possibility at once (one depth per mode, the largest kept when
/// two possibilities meet): brackets inside a string or a comment can raise the bound but never
/// hide a real level. Bytes, not characters, are scanned: every byte that matters is ASCII, and
/// no byte of a multi-byte UTF-8 character is (other encodings are transcoded first).
pub fn yaml_flow_depth_bound(body: &[u8]) -> u32 {
    const MODES: usize = 6;
    let index = |mode: YamlMode| mode as usize;
    let mut depths: [Option<u32>; MODES] = [None; MODES];
    depths[index(YamlMode::Structure)] = Some(0);
    let mut deepest = 0;
    let mut previous = 0u8;
    for &byte in body {
        let mut next: [Option<u32>; MODES] = [None; MODES];
        let mut enter = |mode: YamlMode, depth: u32| {
            let slot = &mut next[index(mode)];
            *slot = Some(slot.map_or(depth, |d| d.max(depth)));
        };
        for (mode, depth) in [
            YamlMode::Structure,
            YamlMode::Single,
            YamlMode::Double,
            YamlMode::DoubleEscape,
            YamlMode::Comment,
            YamlMode::Verbatim,
        ]
        .into_iter()
        .filter_map(|mode| depths[index(mode)].map(|depth| (mode, depth)))
        {
            match (mode, byte) {
                (YamlMode::Structure, b'[' | b'{') => enter(YamlMode::Structure, depth + 1),
                (YamlMode::Structure, b']' | b'}') => {
                    enter(YamlMode::Structure, depth.saturating_sub(1))
                }
                (YamlMode::Structure, _) => {
                    enter(YamlMode::Structure, depth);
                    match byte {
                        b'\'' => enter(YamlMode::Single, depth),
                        b'"' => enter(YamlMode::Double, depth),
                        b'#' => enter(YamlMode::Comment, depth),
                        b'<' if previous == b'!' => enter(YamlMode::Verbatim, depth),
                        _ => {}
                    }
                }
                (YamlMode::Single, b'\'') => enter(YamlMode::Structure, depth),
                (YamlMode::Double, b'\\') => enter(YamlMode::DoubleEscape, depth),
                (YamlMode::Double, b'"') => enter(YamlMode::Structure, depth),
                (YamlMode::DoubleEscape, _) => enter(YamlMode::Double, depth),
                (YamlMode::Comment, b'\n' | b'\r') => enter(YamlMode::Structure, depth),
                (YamlMode::Verbatim, b'>') => enter(YamlMode::Structure, depth),
                (mode, _) => enter(mode, depth),
            }
        }
        depths = next;
        deepest = depths.iter().flatten().fold(deepest, |a, b| a.max(*b));
        previous = byte;
    }
    deepest
}

/// A YAML body as UTF-8: UTF-16 with a byte-order mark (which the YAML parser also reads) is
/// transcoded, so that [`yaml_flow_depth_bound`] sees its brackets as bytes.
fn yaml_utf8(body: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, Status> {
    let little = match body {
        [0xff, 0xfe, ..] => true,
        [0xfe, 0xff, ..] => false,
        _ => return Ok(std::borrow::Cow::Borrowed(body)),
    };
    let units = body[2..].chunks(2).map(|pair| match pair {
        [a, b] if little => u16::from_le_bytes([*a, *b]),
        [a, b] => u16::from_be_bytes([*a, *b]),
        // An odd trailing byte: an invalid unit, refused below.
        _ => 0xdc00,
    });
    char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .map(|text| std::borrow::Cow::Owned(text.into_bytes()))
        .map_err(|_| Status::bad_request("error converting YAML to JSON: invalid UTF-16"))
}

/// Decodes YAML (one document) into JSON.
pub fn decode_yaml(body: &[u8]) -> Result<Value, Status> {
    let body = yaml_utf8(body)?;
    if yaml_flow_depth_bound(&body) > MAX_YAML_FLOW_DEPTH {
        return Err(Status::bad_request(format!(
            "error converting YAML to JSON: flow collections ([...], {{...}}) nested deeper than {MAX_YAML_FLOW_DEPTH} levels"
        )));
    }
    let value: Value = yaml_serde::from_slice(&body)
        .map_err(|e| Status::bad_request(format!("error converting YAML to JSON: {e}")))?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(ct: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(ct) = ct {
            h.insert(http::header::CONTENT_TYPE, ct.parse().unwrap());
        }
        h
    }

    #[test]
    fn json_decodes_with_or_without_a_content_type() {
        let body = Bytes::from_static(br#"{"metadata":{"name":"x"}}"#);
        for ct in [
            None,
            Some("application/json"),
            Some("application/json; charset=utf-8"),
        ] {
            assert_eq!(
                decode(&headers(ct), &body).unwrap()["metadata"]["name"],
                "x"
            );
        }
    }

    #[test]
    fn yaml_decodes_to_the_same_json() {
        let body = Bytes::from_static(b"metadata:\n  name: x\n  labels:\n    a: \"1\"\n");
        let v = decode(&headers(Some("application/yaml")), &body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"metadata": {"name": "x", "labels": {"a": "1"}}})
        );
    }

    /// Regression (found by the `body` fuzz target): YAML's scanner time grows with the square
    /// of the flow nesting; a 500 KB body held a thread for 90 s (optimized build).
    #[test]
    fn deeply_nested_yaml_flow_collections_are_refused_at_once() {
        let yaml = headers(Some("application/yaml"));
        for open in ["{a: ", "[", "{", "[a, "] {
            let body = Bytes::from(open.repeat(100_000));
            let started = std::time::Instant::now();
            let err = decode(&yaml, &body).unwrap_err();
            assert_eq!(err.code, 400);
            assert!(
                err.message.contains("nested deeper than 256 levels"),
                "{}",
                err.message
            );
            assert!(
                started.elapsed() < std::time::Duration::from_secs(2),
                "{open:?}"
            );
        }
    }

    #[test]
    fn brackets_inside_strings_and_comments_cannot_hide_a_level() {
        // Each unit opens a real level; the closers are inside strings, comments or a verbatim
        // tag, and alternate quote kinds so that a scanner guessing where strings start errs.
        for unit in [
            r#"[ "]", "#,
            "[ ']', ",
            "[ # ]\n",
            r#"[ "it's ]", [ "]'", "#,
            r#"[ !<x]> a, "#,
            r#"[ "\"]", "#,
        ] {
            let body = unit.repeat(300);
            assert!(
                yaml_flow_depth_bound(body.as_bytes()) >= 300,
                "{unit:?}: {}",
                yaml_flow_depth_bound(body.as_bytes())
            );
        }
    }

    #[test]
    fn yaml_within_the_nesting_limit_still_decodes() {
        let yaml = headers(Some("application/yaml"));
        let deep = format!("{}{}", "[".repeat(128), "]".repeat(128));
        assert!(decode(&yaml, &Bytes::from(deep)).is_ok());
        let annotated = "metadata:\n  annotations:\n    last: '{\"a\":[[1]],\"b\":\"]\"}' # don't [\n  name: x\n";
        assert_eq!(
            decode(&yaml, &Bytes::from(annotated)).unwrap()["metadata"]["name"],
            "x"
        );
        let utf16: Vec<u8> = [0xfeff_u16]
            .into_iter()
            .chain("a: [1, {b: ŝ}]".encode_utf16())
            .flat_map(u16::to_le_bytes)
            .collect();
        assert_eq!(
            decode(&yaml, &Bytes::from(utf16)).unwrap(),
            serde_json::json!({"a": [1, {"b": "ŝ"}]})
        );
    }

    #[test]
    fn malformed_and_oversized_bodies_are_client_errors() {
        let err = decode(&headers(None), &Bytes::from_static(b"{nope")).unwrap_err();
        assert_eq!(err.code, 400);
        assert!(
            err.message
                .starts_with("couldn't get version/kind; json parse error: ")
        );
        let big = Bytes::from(vec![b' '; MAX_BODY + 1]);
        assert_eq!(decode(&headers(None), &big).unwrap_err().code, 413);
        let err = decode(
            &headers(Some("application/xml")),
            &Bytes::from_static(b"<x/>"),
        )
        .unwrap_err();
        assert_eq!(err.code, 415);
    }
}

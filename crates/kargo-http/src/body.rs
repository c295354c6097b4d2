//! Request bodies: JSON (with or without a Content-Type), YAML, and the Kubernetes protobuf that
//! kubectl 1.32+ sends, all decoded to a JSON value; and the size limit.

use axum::body::Bytes;
use http::HeaderMap;
use kargo_api::json::Decoded;
use serde_json::Value;

use kargo_registry::status::Status;

/// The largest body the Kubernetes API accepts (kube-apiserver's 3 MiB).
pub(crate) const MAX_BODY: usize = 3 * 1024 * 1024;

/// How much of an oversized body is read (and dropped) before answering 413, so that the client
/// gets the answer instead of a reset connection.
const DRAIN_LIMIT: usize = 16 * 1024 * 1024;

/// Reads a request body; `None` if it is longer than `limit` (what was sent is drained up to a
/// bound first).
pub(crate) async fn read(body: axum::body::Body, limit: usize) -> Result<Option<Bytes>, Status> {
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
pub(crate) fn content_type(headers: &HeaderMap) -> String {
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
    decode_reporting_duplicates(headers, body).map(|d| d.value)
}

/// Decodes a create/update body by its Content-Type, with the fields a JSON body names twice
/// (for field validation).
pub(crate) fn decode_reporting_duplicates(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Decoded, Status> {
    if body.len() > MAX_BODY {
        return Err(Status::too_large(MAX_BODY));
    }
    let plain = |value| Decoded {
        value,
        duplicates: Vec::new(),
    };
    match content_type(headers).as_str() {
        crate::protobuf::MEDIA_TYPE => crate::protobuf::decode(body)
            .map(plain)
            .map_err(|e| Status::bad_request(format!("unable to decode the protobuf body: {e}"))),
        "application/yaml" | "application/x-yaml" | "text/yaml" => {
            kargo_api::yaml::decode(body).map_err(|e| Status::bad_request(e.to_string()))
        }
        "" | "application/json" | "text/plain" | "application/octet-stream" => {
            decode_json_reporting_duplicates(body)
        }
        other => Err(Status::unsupported_media_type(
            other,
            "application/json, application/yaml, application/vnd.kubernetes.protobuf",
        )),
    }
}

/// Decodes JSON, with kube-apiserver's message for malformed input.
pub(crate) fn decode_json(body: &[u8]) -> Result<Value, Status> {
    decode_json_reporting_duplicates(body).map(|d| d.value)
}

/// [`decode_json`], with the fields the body names twice.
fn decode_json_reporting_duplicates(body: &[u8]) -> Result<Decoded, Status> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Status::bad_request(
            "couldn't get version/kind; json parse error: unexpected end of JSON input",
        ));
    }
    kargo_api::json::from_slice(body).map_err(|e| {
        Status::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
    })
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
    fn json_and_yaml_bodies_report_duplicate_fields_and_keep_the_last_value() {
        let json = Bytes::from_static(br#"{"metadata":{"name":"x","name":"y"}}"#);
        let yaml = Bytes::from_static(b"metadata:\n  name: x\n  name: y\n");
        for (ct, body) in [(None, json), (Some("application/yaml"), yaml)] {
            let decoded = decode_reporting_duplicates(&headers(ct), &body).unwrap();
            assert_eq!(decoded.value["metadata"]["name"], "y", "{ct:?}");
            assert_eq!(decoded.duplicates, ["metadata.name"], "{ct:?}");
        }
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

//! Lists: label and field selectors, `limit`/`continue` paging with kube-apiserver's continue
//! tokens, and the `resourceVersion` / `resourceVersionMatch` rules of a list.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kargo_api::resources::ResourceType;
use kargo_api::selector::{FieldSelector, LabelSelector};
use kargo_store::{ListRequest, Revision};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::object::{Meta, decode, parse_revision};
use super::{Registry, strategy};
use crate::status::{Result, Status};

/// How many keys one store read fetches while filtering with selectors.
const SCAN_PAGE: usize = 500;

/// The query of a list (or of the initial state of a watch).
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// `labelSelector`.
    pub label_selector: Option<LabelSelector>,
    /// `fieldSelector`.
    pub field_selector: Option<FieldSelector>,
    /// `limit` (0 = none).
    pub limit: usize,
    /// `continue`.
    pub continue_token: Option<String>,
    /// `resourceVersion`.
    pub resource_version: Option<String>,
    /// `resourceVersionMatch`.
    pub resource_version_match: Option<String>,
}

impl ListOptions {
    /// Parses and checks the selectors of a request for `rt`.
    pub fn with_selectors(
        rt: &ResourceType,
        label_selector: Option<&str>,
        field_selector: Option<&str>,
    ) -> Result<ListOptions> {
        let label_selector =
            match label_selector {
                Some(s) if !s.trim().is_empty() => Some(LabelSelector::parse(s).map_err(|e| {
                    Status::bad_request(format!("unable to parse requirement: {e}"))
                })?),
                _ => None,
            };
        let field_selector = match field_selector {
            Some(s) if !s.trim().is_empty() => {
                let selector =
                    FieldSelector::parse(s).map_err(|e| Status::bad_request(e.to_string()))?;
                let probe = json!({"metadata": {}});
                for req in selector.requirements() {
                    if strategy::field_value(rt, &probe, &req.field).is_none() {
                        return Err(Status::bad_request(format!(
                            "field label not supported: {}",
                            req.field
                        )));
                    }
                }
                Some(selector)
            }
            _ => None,
        };
        Ok(ListOptions {
            label_selector,
            field_selector,
            ..ListOptions::default()
        })
    }

    /// Whether an object passes the selectors.
    pub(crate) fn matches(&self, rt: &ResourceType, obj: &Value) -> bool {
        if let Some(ls) = &self.label_selector
            && !ls.matches(&obj.labels())
        {
            return false;
        }
        if let Some(fs) = &self.field_selector
            && !fs.matches(|f| strategy::field_value(rt, obj, f).flatten())
        {
            return false;
        }
        true
    }

    /// Whether any selector is set.
    pub(crate) fn has_selectors(&self) -> bool {
        self.label_selector.is_some() || self.field_selector.is_some()
    }
}

/// A page of objects.
#[derive(Debug, Clone)]
pub struct ObjectList {
    /// The objects.
    pub items: Vec<Value>,
    /// The revision the list was read at.
    pub resource_version: Revision,
    /// The token for the next page, if any.
    pub continue_token: Option<String>,
    /// Keys whose stored values do not decode, left out of `items` (see
    /// `object::undecodable`).
    pub unreadable: Vec<String>,
}

impl ObjectList {
    /// A `Warning` for each object left out because it does not decode.
    pub fn warnings(&self) -> Vec<String> {
        self.unreadable
            .iter()
            .map(|key| {
                let what = match kargo_api::resources::parse_key(key) {
                    Some((rt, Some(ns), name)) => {
                        format!("{} \"{name}\" in namespace \"{ns}\"", rt.qualified())
                    }
                    Some((rt, None, name)) => format!("{} \"{name}\"", rt.qualified()),
                    None => format!("the object under {key}"),
                };
                format!("{what} could not be decoded and is left out of the list; it can only be deleted")
            })
            .collect()
    }

    /// The list as Kubernetes JSON (`ServiceAccountList`).
    pub fn to_json(&self, rt: &ResourceType) -> Value {
        let mut metadata = serde_json::Map::new();
        metadata.insert(
            "resourceVersion".into(),
            Value::String(self.resource_version.to_string()),
        );
        if let Some(c) = &self.continue_token {
            metadata.insert("continue".into(), Value::String(c.clone()));
        }
        json!({
            "kind": rt.list_kind(),
            "apiVersion": rt.api_version(),
            "metadata": metadata,
            "items": self.items,
        })
    }
}

#[derive(Serialize, Deserialize)]
struct ContinueToken {
    v: String,
    rv: i64,
    start: String,
}

const TOKEN_VERSION: &str = "meta.k8s.io/v1";

/// Encodes a continue token: the list's revision and the key to continue after.
pub fn encode_continue(revision: Revision, last_key: &str, prefix: &str) -> String {
    let start = format!("{}\u{0}", last_key.strip_prefix(prefix).unwrap_or(last_key));
    let token = ContinueToken {
        v: TOKEN_VERSION.into(),
        rv: revision.0,
        start,
    };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&token).unwrap_or_default())
}

/// Decodes a continue token into `(revision, key to continue after)`; the key is always under
/// `prefix`.
pub fn decode_continue(token: &str, prefix: &str) -> Result<(Option<Revision>, String)> {
    let invalid = |why: &str| Status::bad_request(format!("invalid continue token: {why}"));
    let bytes = URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|e| invalid(&e.to_string()))?;
    let token: ContinueToken =
        serde_json::from_slice(&bytes).map_err(|e| invalid(&e.to_string()))?;
    if token.v != TOKEN_VERSION {
        return Err(invalid(&format!(
            "server does not recognize this encoded version {:?}",
            token.v
        )));
    }
    if token.start.contains("..") || token.start.starts_with('/') {
        return Err(invalid("continue key is not valid"));
    }
    let start = token.start.strip_suffix('\u{0}').unwrap_or(&token.start);
    let revision = (token.rv > 0).then_some(Revision(token.rv));
    Ok((revision, format!("{prefix}{start}")))
}

/// The revision a list reads at, from `resourceVersion`/`resourceVersionMatch`/`continue`.
async fn read_revision(
    registry: &Registry,
    options: &ListOptions,
    from_token: Option<Revision>,
) -> Result<Option<Revision>> {
    let rv = options
        .resource_version
        .as_deref()
        .filter(|s| !s.is_empty());
    if options.continue_token.is_some() {
        if rv.is_some_and(|r| r != "0") {
            return Err(Status::bad_request(
                "specifying resource version is not allowed when using continue",
            ));
        }
        return Ok(from_token);
    }
    let parsed = match rv {
        None => None,
        Some(s) => Some(
            parse_revision(s)
                .ok_or_else(|| Status::bad_request(format!("invalid resource version: {s}")))?,
        ),
    };
    match options.resource_version_match.as_deref() {
        None | Some("") => {}
        Some("Exact") | Some("NotOlderThan") if parsed.is_none() => {
            return Err(Status::bad_request(
                "resourceVersionMatch is forbidden unless resourceVersion is provided",
            ));
        }
        Some("Exact") if parsed == Some(Revision(0)) => {
            return Err(Status::bad_request(
                "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
            ));
        }
        Some("Exact") => return Ok(parsed),
        Some("NotOlderThan") => {
            check_not_future(registry, parsed).await?;
            return Ok(None);
        }
        Some(other) => {
            return Err(Status::bad_request(format!(
                "resourceVersionMatch: Unsupported value: \"{other}\": supported values: \"Exact\", \"NotOlderThan\""
            )));
        }
    }
    match parsed {
        // "0" = any version: the latest is as good as any.
        None | Some(Revision(0)) => Ok(None),
        // With a limit, kube-apiserver reads exactly at that revision.
        Some(r) if options.limit > 0 => Ok(Some(r)),
        r => {
            check_not_future(registry, r).await?;
            Ok(None)
        }
    }
}

async fn check_not_future(registry: &Registry, rv: Option<Revision>) -> Result<()> {
    if let Some(r) = rv {
        let current = registry.store().current_revision().await?;
        if r > current {
            return Err(too_large(r, current));
        }
    }
    Ok(())
}

pub(crate) fn too_large(requested: Revision, current: Revision) -> Status {
    Status::timeout(format!(
        "Timeout: Too large resource version: {requested}, current: {current}"
    ))
    .with_details(Some(crate::status::Details {
        causes: vec![crate::status::Cause {
            reason: "ResourceVersionTooLarge".into(),
            message: "Too large resource version".into(),
            field: String::new(),
        }],
        retry_after_seconds: Some(1),
        ..Default::default()
    }))
}

const CONTINUE_TOO_OLD: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

/// Lists objects of `rt` (in `namespace`, or everywhere).
pub(crate) async fn list(
    registry: &Registry,
    rt: &'static ResourceType,
    namespace: Option<&str>,
    options: &ListOptions,
) -> Result<ObjectList> {
    let prefix = rt.namespace_prefix(namespace);
    let (token_rev, mut start_after) = match &options.continue_token {
        Some(token) => {
            let (rev, key) = decode_continue(token, &prefix)?;
            (rev, Some(key))
        }
        None => (None, None),
    };
    let mut revision = read_revision(registry, options, token_rev).await?;
    let mut items = Vec::new();
    let mut unreadable = Vec::new();
    let mut continue_token = None;
    let filtering = options.has_selectors();
    loop {
        let want = if options.limit == 0 {
            None
        } else if filtering {
            Some(SCAN_PAGE.max(options.limit - items.len()))
        } else {
            Some(options.limit - items.len())
        };
        let page = registry
            .store()
            .list(ListRequest {
                prefix: prefix.clone(),
                start_after: start_after.clone(),
                revision,
                limit: want,
            })
            .await;
        let page = match page {
            Ok(p) => p,
            Err(kargo_store::Error::Compacted { .. }) => {
                return Err(if options.continue_token.is_some() {
                    let mut status = Status::expired(CONTINUE_TOO_OLD);
                    status.reason = "Expired";
                    status
                } else {
                    Status::expired("The resourceVersion for the provided list is too old.")
                });
            }
            Err(kargo_store::Error::FutureRevision { requested, current }) => {
                return Err(too_large(requested, current));
            }
            Err(e) => return Err(e.into()),
        };
        revision = Some(page.revision);
        let mut last_key = None;
        let mut stopped_early = false;
        for kv in &page.kvs {
            last_key = Some(kv.key.clone());
            let Ok(obj) = decode(kv) else {
                unreadable.push(kv.key.clone());
                continue;
            };
            if options.matches(rt, &obj) {
                items.push(obj);
                if options.limit > 0 && items.len() >= options.limit {
                    stopped_early =
                        kv.key != page.kvs.last().map(|k| k.key.clone()).unwrap_or_default();
                    break;
                }
            }
        }
        let full = options.limit > 0 && items.len() >= options.limit;
        if full && (page.more || stopped_early) {
            if let Some(last) = &last_key {
                continue_token = Some(encode_continue(page.revision, last, &prefix));
            }
            break;
        }
        if !page.more || last_key.is_none() {
            break;
        }
        start_after = last_key;
    }
    Ok(ObjectList {
        items,
        resource_version: revision.unwrap_or_default(),
        continue_token,
        unreadable,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip_like_kube_apiserver() {
        let token = encode_continue(
            Revision(42),
            "/registry/secrets/p/b",
            "/registry/secrets/p/",
        );
        let raw = URL_SAFE_NO_PAD.decode(&token).unwrap();
        assert_eq!(
            String::from_utf8(raw).unwrap(),
            r#"{"v":"meta.k8s.io/v1","rv":42,"start":"b\u0000"}"#
        );
        let (rev, key) = decode_continue(&token, "/registry/secrets/p/").unwrap();
        assert_eq!(rev, Some(Revision(42)));
        assert_eq!(key, "/registry/secrets/p/b");
    }

    #[test]
    fn malformed_continue_tokens_are_bad_requests() {
        for token in ["%%%", "eyJ2IjoieCJ9", "bm90IGpzb24"] {
            let err = decode_continue(token, "/registry/secrets/").unwrap_err();
            assert_eq!(err.code, 400, "{token}");
            assert!(
                err.message.starts_with("invalid continue token: "),
                "{}",
                err.message
            );
        }
    }
}

//! The claims annotation of a role's ServiceAccount (`rbac.kargo.akuity.io/claims`): a JSON
//! object from claim name to values, e.g. `{"email":["a@b.c"],"groups":["devops"]}`.
//!
//! Reading accepts a scalar value as a one-element list and sorts and deduplicates values;
//! writing produces compact JSON with sorted keys and values.

use std::collections::{BTreeMap, BTreeSet};

use kargo_api::kargo::{CLAIMS_ANNOTATION, Claim};
use serde::Deserialize;

/// Claim name → sorted, distinct values.
pub(crate) type Claims = BTreeMap<String, BTreeSet<String>>;

/// The annotation does not hold claims.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unmarshaling OIDC claims from annotation value: {0}")]
pub struct ClaimsError(pub String);

#[derive(Deserialize)]
#[serde(untagged)]
enum Values {
    Many(Vec<String>),
    One(String),
}

/// The claims of an annotation map (none when the annotation is absent).
pub(crate) fn parse(annotations: &BTreeMap<String, String>) -> Result<Claims, ClaimsError> {
    let Some(value) = annotations.get(CLAIMS_ANNOTATION) else {
        return Ok(Claims::new());
    };
    let raw: BTreeMap<String, Values> =
        serde_json::from_str(value).map_err(|e| ClaimsError(e.to_string()))?;
    Ok(raw
        .into_iter()
        .map(|(name, values)| {
            let values = match values {
                Values::Many(v) => v.into_iter().collect(),
                Values::One(v) => BTreeSet::from([v]),
            };
            (name, values)
        })
        .collect())
}

/// The annotation value of claims: compact JSON, keys and values sorted (`{}` when none).
pub(crate) fn render(claims: &Claims) -> String {
    serde_json::to_string(claims).unwrap_or_else(|_| "{}".to_owned())
}

/// Claims from a request's list; a name given twice has the union of its values, and a claim
/// without values is left out.
pub(crate) fn from_list(list: &[Claim]) -> Claims {
    let mut claims = Claims::new();
    for claim in list {
        if claim.values.is_empty() {
            continue;
        }
        claims
            .entry(claim.name.clone())
            .or_default()
            .extend(claim.values.iter().cloned());
    }
    claims
}

/// The claims as a request or response lists them: sorted by name.
pub(crate) fn to_list(claims: &Claims) -> Vec<Claim> {
    claims
        .iter()
        .map(|(name, values)| Claim {
            name: name.clone(),
            values: values.iter().cloned().collect(),
        })
        .collect()
}

/// Adds `more` to `claims`.
pub(crate) fn amend(claims: &mut Claims, more: &Claims) {
    for (name, values) in more {
        claims
            .entry(name.clone())
            .or_default()
            .extend(values.iter().cloned());
    }
}

/// Removes `less` from `claims`; a claim left without values goes.
pub(crate) fn drop(claims: &mut Claims, less: &Claims) {
    for (name, values) in less {
        if let Some(have) = claims.get_mut(name) {
            have.retain(|v| !values.contains(v));
            if have.is_empty() {
                claims.remove(name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(value: &str) -> BTreeMap<String, String> {
        BTreeMap::from([(CLAIMS_ANNOTATION.to_owned(), value.to_owned())])
    }

    /// Parses an annotation value and renders it back, or gives the error.
    fn check(value: &str, expected: Result<&str, &str>) {
        let got = parse(&annotations(value))
            .map(|c| render(&c))
            .map_err(|e| e.to_string());
        assert_eq!(
            got,
            expected.map(str::to_owned).map_err(str::to_owned),
            "{value}"
        );
    }

    #[test]
    fn the_json_style_reads_and_renders_compact_with_sorted_keys() {
        check(
            r#"{"groups": ["devops", "admins"], "email": ["a@b.c"]}"#,
            Ok(r#"{"email":["a@b.c"],"groups":["admins","devops"]}"#),
        );
    }

    #[test]
    fn a_scalar_value_is_a_one_element_list() {
        check(r#"{"sub": "foo-sub"}"#, Ok(r#"{"sub":["foo-sub"]}"#));
    }

    #[test]
    fn duplicate_values_are_removed() {
        check(
            r#"{"groups": ["b", "a", "b"]}"#,
            Ok(r#"{"groups":["a","b"]}"#),
        );
    }

    #[test]
    fn invalid_json_is_an_error() {
        let err = parse(&annotations("invalid")).unwrap_err().to_string();
        assert!(
            err.starts_with("unmarshaling OIDC claims from annotation value: "),
            "{err}"
        );
        check(
            r#"{"groups": 5}"#,
            Err(
                "unmarshaling OIDC claims from annotation value: data did not match any variant of untagged enum Values at line 1 column 13",
            ),
        );
    }

    #[test]
    fn no_annotation_means_no_claims_and_renders_as_an_empty_object() {
        assert_eq!(render(&parse(&BTreeMap::new()).unwrap()), "{}");
    }

    #[test]
    fn granting_and_revoking_merge_and_remove_values() {
        let claim = |name: &str, values: &[&str]| Claim {
            name: name.into(),
            values: values.iter().map(|v| v.to_string()).collect(),
        };
        let mut claims = parse(&annotations(r#"{"sub":["foo-sub"]}"#)).unwrap();
        amend(
            &mut claims,
            &from_list(&[
                claim("groups", &["devops"]),
                claim("email", &["b@c.d", "a@b.c"]),
                claim("groups", &["admins", "devops"]),
                claim("empty", &[]),
            ]),
        );
        assert_eq!(
            render(&claims),
            r#"{"email":["a@b.c","b@c.d"],"groups":["admins","devops"],"sub":["foo-sub"]}"#
        );
        drop(
            &mut claims,
            &from_list(&[
                claim("email", &["a@b.c", "b@c.d"]),
                claim("groups", &["admins", "devops", "other"]),
                claim("missing", &["x"]),
            ]),
        );
        assert_eq!(render(&claims), r#"{"sub":["foo-sub"]}"#);
        assert_eq!(to_list(&claims), [claim("sub", &["foo-sub"])]);
    }
}

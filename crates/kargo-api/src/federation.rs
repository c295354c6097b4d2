//! Workload identity federation: which outside identities (a CI job's OIDC token) a Kargo
//! ServiceAccount trusts, as the annotation [`FEDERATED_IDENTITIES_ANNOTATION`] holds them.
//!
//! The annotation's value is a JSON list of [`FederatedIdentity`]:
//!
//! ```json
//! [{"name": "main", "issuer": "https://token.actions.githubusercontent.com",
//!   "subject": "repo:acme/app:ref:refs/heads/*", "audience": "https://kargo.example.com",
//!   "claims": {"workflow": "deploy"}}]
//! ```
//!
//! - `name` (optional) names the entry for `kargo get|delete federatedidentity`; an entry without
//!   one is named [`FederatedIdentity::effective_name`] (`fid-` and a hash of its issuer,
//!   subject and audience), so a hand-written entry still has a stable name. Names are unique
//!   within one account and follow the DNS-label rule.
//! - `issuer` is an `https://` URL; it must also be allowed by the server's operator
//!   (`--federated-issuer`) for an exchange to succeed, which is checked at exchange time.
//! - `subject` is exact, or a glob whose `*` matches any run of characters within one
//!   `:`-separated part ([`subject_matches`]).
//! - `audience` (optional) is what the token's `aud` must contain: the server's URL by default.
//! - `claims` (optional) must each equal the token's claim of that name exactly.
//! - `createdAt` (optional, RFC 3339) is written by the Kargo API when it adds the entry; it
//!   only feeds `kargo get federatedidentities`' `AGE`.
//!
//! Pure: parsing, validation ([`validate`], the write-time check) and matching; the server's
//! registry refuses a malformed value with a 422, and `kargo-auth` matches verified tokens.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::field::{BadValue, FieldError};

/// Annotation on a Kargo ServiceAccount: the outside identities it trusts (a JSON list).
pub const FEDERATED_IDENTITIES_ANNOTATION: &str = "rbac.kargo.akuity.io/federated-identities";

/// The most entries one account may list.
pub const MAX_ENTRIES: usize = 100;

/// One trusted outside identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederatedIdentity {
    /// The entry's name (see [`FederatedIdentity::effective_name`] when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The issuer, exactly as the token's `iss`.
    pub issuer: String,
    /// The subject, exact or a glob ([`subject_matches`]).
    pub subject: String,
    /// The audience the token must carry (the server's URL when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// Claims the token must carry with exactly these values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub claims: BTreeMap<String, String>,
    /// When the entry was added (RFC 3339), set by the Kargo API; informational (`AGE`).
    #[serde(default, rename = "createdAt", skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}

impl FederatedIdentity {
    /// The entry's name: its `name`, else `fid-` and 8 hexadecimal digits of a hash (FNV-1a) of
    /// its issuer, subject and audience, stable across servers and versions.
    pub fn effective_name(&self) -> String {
        if let Some(name) = &self.name {
            return name.clone();
        }
        let mut hash: u32 = 0x811c_9dc5;
        let text = format!(
            "{}\n{}\n{}",
            self.issuer,
            self.subject,
            self.audience.as_deref().unwrap_or("")
        );
        for byte in text.bytes() {
            hash ^= u32::from(byte);
            hash = hash.wrapping_mul(0x0100_0193);
        }
        format!("fid-{hash:08x}")
    }

    /// Whether a verified token's claims satisfy this entry, given the audience that applies
    /// when the entry names none (`default_audience`, the server's URL). `iss` is compared
    /// exactly, `sub` with [`subject_matches`], `aud` (a string or a list) must contain the
    /// audience, and every listed claim must be a string equal to its value.
    pub fn accepts(
        &self,
        claims: &serde_json::Map<String, serde_json::Value>,
        default_audience: &str,
    ) -> Result<(), Mismatch> {
        let text = |name: &str| claims.get(name).and_then(serde_json::Value::as_str);
        if text("iss") != Some(self.issuer.as_str()) {
            return Err(Mismatch::Issuer);
        }
        if !text("sub").is_some_and(|sub| subject_matches(&self.subject, sub)) {
            return Err(Mismatch::Subject);
        }
        let audience = self.audience.as_deref().unwrap_or(default_audience);
        let has_audience = match claims.get("aud") {
            Some(serde_json::Value::String(a)) => a == audience,
            Some(serde_json::Value::Array(items)) => {
                items.iter().any(|a| a.as_str() == Some(audience))
            }
            _ => false,
        };
        if !has_audience {
            return Err(Mismatch::Audience);
        }
        for (name, value) in &self.claims {
            if text(name) != Some(value.as_str()) {
                return Err(Mismatch::Claim(name.clone()));
            }
        }
        Ok(())
    }
}

/// Which part of an entry a token does not satisfy (for the audit log, never for the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// Another issuer.
    Issuer,
    /// The subject does not match.
    Subject,
    /// The audience is not in `aud`.
    Audience,
    /// A claim is missing or differs.
    Claim(String),
}

/// Whether `subject` matches `pattern`: exactly, where each `*` matches any run (possibly
/// empty) of characters other than `:`, so that a glob never reaches into the next
/// `:`-separated part (`repo:acme/*:ref:refs/heads/main` does not match
/// `repo:acme/app:x:ref:refs/heads/main`).
pub fn subject_matches(pattern: &str, subject: &str) -> bool {
    // Iterative glob with one backtrack point, as wildcard matchers do; a star may not swallow
    // a ':' so the backtrack stops there.
    let (p, s) = (pattern.as_bytes(), subject.as_bytes());
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if pi < p.len() && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if let Some((sp, ss)) = star
            && s[ss] != b':'
        {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Parses an annotation value, or says what is wrong with it.
pub fn parse(value: &str) -> Result<Vec<FederatedIdentity>, String> {
    let entries: Vec<FederatedIdentity> = serde_json::from_str(value).map_err(|e| {
        format!(
            "must be a JSON list of {{\"name\", \"issuer\", \"subject\", \"audience\", \"claims\"}} objects: {e}"
        )
    })?;
    check(&entries)?;
    Ok(entries)
}

/// The entries' rules beyond their JSON shape.
fn check(entries: &[FederatedIdentity]) -> Result<(), String> {
    if entries.len() > MAX_ENTRIES {
        return Err(format!("must list at most {MAX_ENTRIES} identities"));
    }
    let mut names = std::collections::BTreeSet::new();
    for (i, entry) in entries.iter().enumerate() {
        let at = |what: &str| format!("entry {i}: {what}");
        if !entry.issuer.starts_with("https://") || entry.issuer.len() <= "https://".len() {
            return Err(at(&format!(
                "issuer must be an https:// URL, got {:?}",
                entry.issuer
            )));
        }
        if entry.subject.is_empty() {
            return Err(at("subject must not be empty"));
        }
        if entry.subject.chars().all(|c| c == '*' || c == ':') {
            return Err(at(
                "subject must name something besides \"*\" (a glob matches within one ':'-separated part)",
            ));
        }
        if entry.audience.as_deref() == Some("") {
            return Err(at(
                "audience must not be empty (omit it for the server's URL)",
            ));
        }
        if let Some(name) = &entry.name
            && let Some(problem) = crate::names::is_dns1123_label(name).into_iter().next()
        {
            return Err(at(&format!("name {name:?}: {problem}")));
        }
        if entry.claims.keys().any(String::is_empty) {
            return Err(at("claim names must not be empty"));
        }
        if ["iss", "sub", "aud"]
            .iter()
            .any(|c| entry.claims.contains_key(*c))
        {
            return Err(at(
                "claims must not list iss, sub or aud (use issuer, subject and audience)",
            ));
        }
        if !names.insert(entry.effective_name()) {
            return Err(at(&format!("duplicate name {:?}", entry.effective_name())));
        }
    }
    Ok(())
}

/// Renders entries as the annotation's value.
pub fn render(entries: &[FederatedIdentity]) -> String {
    serde_json::to_string(entries).unwrap_or_else(|_| "[]".to_owned())
}

/// The write-time check of the annotation's value (`None`: absent): a field error on
/// `metadata.annotations[rbac.kargo.akuity.io/federated-identities]` when it is malformed.
pub fn validate(value: Option<&str>) -> Option<FieldError> {
    parse(value?).err().map(|detail| {
        FieldError::invalid(
            format!("metadata.annotations[{FEDERATED_IDENTITIES_ANNOTATION}]"),
            BadValue::Omitted,
            detail,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_star_matches_within_one_colon_separated_part_only() {
        let cases = [
            (
                "repo:acme/app:ref:refs/heads/*",
                "repo:acme/app:ref:refs/heads/main",
                true,
            ),
            (
                "repo:acme/app:ref:refs/heads/*",
                "repo:acme/app:ref:refs/heads/a/b",
                true,
            ),
            (
                "repo:acme/app:ref:refs/heads/*",
                "repo:acme/app:ref:refs/tags/v1",
                false,
            ),
            (
                "repo:acme/*:ref:refs/heads/main",
                "repo:acme/app:ref:refs/heads/main",
                true,
            ),
            (
                "repo:acme/*:ref:refs/heads/main",
                "repo:acme/app:x:ref:refs/heads/main",
                false,
            ),
            ("repo:acme/app:*", "repo:acme/app:environment:prod", false),
            ("repo:acme/app:*:*", "repo:acme/app:environment:prod", true),
            ("repo:acme/app", "repo:acme/app", true),
            ("repo:acme/app", "repo:acme/app2", false),
            ("repo:*/app:*", "repo:evil:x/app:y", false),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "aXbY", false),
            ("*", "", true),
        ];
        for (pattern, subject, expected) in cases {
            assert_eq!(
                subject_matches(pattern, subject),
                expected,
                "{pattern} ~ {subject}"
            );
        }
    }

    fn check_value(value: serde_json::Value) -> Result<(), String> {
        parse(&value.to_string()).map(|_| ())
    }

    #[test]
    fn malformed_values_are_refused_with_what_is_wrong() {
        let issuer = "https://token.actions.githubusercontent.com";
        let cases: Vec<(serde_json::Value, Option<&str>)> = vec![
            (
                json!([{"issuer": issuer, "subject": "repo:a/b:ref:refs/heads/main"}]),
                None,
            ),
            (json!({"issuer": issuer}), Some("must be a JSON list")),
            (json!([{"issuer": issuer}]), Some("missing field `subject`")),
            (
                json!([{"issuer": "http://x", "subject": "s"}]),
                Some("https:// URL"),
            ),
            (
                json!([{"issuer": issuer, "subject": ""}]),
                Some("subject must not be empty"),
            ),
            (json!([{"issuer": issuer, "subject": "*"}]), Some("besides")),
            (
                json!([{"issuer": issuer, "subject": "s", "extra": 1}]),
                Some("unknown field `extra`"),
            ),
            (
                json!([{"issuer": issuer, "subject": "s", "claims": {"ref": 1}}]),
                Some("invalid type"),
            ),
            (
                json!([{"issuer": issuer, "subject": "s", "claims": {"sub": "x"}}]),
                Some("must not list iss"),
            ),
            (
                json!([{"issuer": issuer, "subject": "s", "audience": ""}]),
                Some("audience must not be empty"),
            ),
            (
                json!([{"name": "Bad_Name", "issuer": issuer, "subject": "s"}]),
                Some("name \"Bad_Name\""),
            ),
            (
                json!([{"name": "a", "issuer": issuer, "subject": "s"}, {"name": "a", "issuer": issuer, "subject": "t"}]),
                Some("entry 1: duplicate name \"a\""),
            ),
            (
                json!([{"issuer": issuer, "subject": "s"}, {"issuer": issuer, "subject": "s"}]),
                Some("entry 1: duplicate name \"fid-"),
            ),
        ];
        for (value, expected) in cases {
            let got = check_value(value.clone());
            match expected {
                None => assert_eq!(got, Ok(()), "{value}"),
                Some(text) => {
                    let err = got.expect_err(&value.to_string());
                    assert!(err.contains(text), "{value}: {err}");
                }
            }
        }
    }

    #[test]
    fn a_malformed_annotation_is_a_field_error_on_the_annotation() {
        let err = validate(Some("nope")).expect("refused");
        assert_eq!(
            err.field,
            "metadata.annotations[rbac.kargo.akuity.io/federated-identities]"
        );
        assert_eq!(validate(Some("[]")), None);
        assert_eq!(validate(None), None);
    }

    #[test]
    fn an_entry_accepts_only_tokens_that_satisfy_every_part() {
        let entry = FederatedIdentity {
            name: None,
            issuer: "https://ci".into(),
            subject: "repo:acme/app:ref:refs/heads/*".into(),
            audience: None,
            claims: [("workflow".to_owned(), "deploy".to_owned())].into(),
            created_at: None,
        };
        let token = |changes: serde_json::Value| {
            let mut claims = json!({"iss": "https://ci", "sub": "repo:acme/app:ref:refs/heads/main",
                "aud": ["https://kargo"], "workflow": "deploy"});
            for (k, v) in changes.as_object().unwrap() {
                claims[k] = v.clone();
            }
            claims.as_object().unwrap().clone()
        };
        let accepts = |changes| entry.accepts(&token(changes), "https://kargo");
        assert_eq!(accepts(json!({})), Ok(()));
        assert_eq!(accepts(json!({"aud": "https://kargo"})), Ok(()));
        assert_eq!(
            accepts(json!({"iss": "https://other"})),
            Err(Mismatch::Issuer)
        );
        assert_eq!(
            accepts(json!({"sub": "repo:acme/app:ref:refs/tags/v1"})),
            Err(Mismatch::Subject)
        );
        assert_eq!(
            accepts(json!({"aud": "https://else"})),
            Err(Mismatch::Audience)
        );
        assert_eq!(
            accepts(json!({"workflow": "other"})),
            Err(Mismatch::Claim("workflow".into()))
        );
        assert!(entry.effective_name().starts_with("fid-"));
        assert_eq!(entry.effective_name(), entry.clone().effective_name());
    }
}

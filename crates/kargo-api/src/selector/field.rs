//! Field selectors: `fields.ParseSelector` (`?fieldSelector=`) and the field-label checks.

use std::fmt;

use crate::field::go_quote;

/// A field selector could not be parsed or names a field the kind does not support.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldSelectorError {
    /// A term has no `=`, `==` or `!=`.
    #[error("invalid selector: '{selector}'; can't understand '{term}'")]
    Syntax {
        /// The whole selector.
        selector: String,
        /// The term that does not parse.
        term: String,
    },
    /// A `\` not followed by `\`, `,` or `=` (or at the end).
    #[error("invalid field selector: invalid escape sequence: {0}")]
    InvalidEscape(String),
    /// An unescaped `,` or `=` in a value; Kubernetes prints the character's code point.
    #[error("invalid field selector: unescaped character in value: {}", u32::from(*.0))]
    UnescapedCharacter(char),
    /// A field the kind's field-label conversion rejects (kinds with their own list, e.g.
    /// Secret, Namespace).
    #[error("field label not supported: {0}")]
    UnsupportedField(String),
    /// A field other than `metadata.name`/`metadata.namespace` for kinds without their own list
    /// (Kubernetes' `DefaultMetaV1FieldSelectorConversion`).
    #[error("{} is not a known field selector: only \"metadata.name\", \"metadata.namespace\"", go_quote(.0))]
    UnknownField(String),
}

/// The operator of a field requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldOperator {
    /// `field=value` or `field==value`
    Equals,
    /// `field!=value`
    NotEquals,
}

/// One term of a field selector, with its value unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    /// The field path, `metadata.name`.
    pub field: String,
    /// `=` or `!=`.
    pub operator: FieldOperator,
    /// The wanted value.
    pub value: String,
}

impl FieldRequirement {
    /// Whether a field value satisfies the term; a missing field counts as `""`.
    pub fn matches(&self, actual: Option<&str>) -> bool {
        let actual = actual.unwrap_or("");
        match self.operator {
            FieldOperator::Equals => actual == self.value,
            FieldOperator::NotEquals => actual != self.value,
        }
    }
}

impl fmt::Display for FieldRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.operator {
            FieldOperator::Equals => "=",
            FieldOperator::NotEquals => "!=",
        };
        write!(f, "{}{op}{}", self.field, escape_field_value(&self.value))
    }
}

/// A field selector: terms that must all hold, in sorted order; empty selects everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// Parse as `fields.ParseSelector`: split at unescaped `,`, sort the terms, split each at
    /// its first `!=`, `==` or `=`, unescape the value.
    pub fn parse(selector: &str) -> Result<Self, FieldSelectorError> {
        let mut terms = split_terms(selector);
        terms.sort();
        let mut requirements = Vec::new();
        for term in terms.iter().filter(|t| !t.is_empty()) {
            let Some((field, operator, rhs)) = split_term(term) else {
                return Err(FieldSelectorError::Syntax {
                    selector: selector.to_string(),
                    term: term.to_string(),
                });
            };
            requirements.push(FieldRequirement {
                field: field.to_string(),
                operator,
                value: unescape_field_value(rhs)?,
            });
        }
        Ok(FieldSelector { requirements })
    }

    /// The terms, in sorted order.
    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.requirements
    }

    /// Whether the selector selects everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether an object matches; `get` returns a field's value (`None`: absent, read as `""`).
    pub fn matches(&self, get: impl Fn(&str) -> Option<String>) -> bool {
        self.requirements
            .iter()
            .all(|r| r.matches(get(&r.field).as_deref()))
    }

    /// The single value `field` must have, if the selector pins it with `=`.
    pub fn requires_exact_match(&self, field: &str) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.field == field && r.operator == FieldOperator::Equals)
            .map(|r| r.value.as_str())
    }

    /// Reject a field outside `supported` with `field label not supported: <field>`, the
    /// message of kinds that register their own field labels (Secret: `type`, `metadata.name`,
    /// `metadata.namespace`; Namespace: `status.phase`, `metadata.name`). The first offending
    /// term in sorted order is reported, as kube-apiserver does.
    pub fn check_fields(&self, supported: &[&str]) -> Result<(), FieldSelectorError> {
        match self
            .requirements
            .iter()
            .find(|r| !supported.contains(&r.field.as_str()))
        {
            Some(r) => Err(FieldSelectorError::UnsupportedField(r.field.clone())),
            None => Ok(()),
        }
    }

    /// Reject a field other than `metadata.name` and `metadata.namespace` with
    /// `"<field>" is not a known field selector: only "metadata.name", "metadata.namespace"`,
    /// the message of kinds without their own field labels (ServiceAccount, RBAC kinds).
    pub fn check_metadata_fields(&self) -> Result<(), FieldSelectorError> {
        match self
            .requirements
            .iter()
            .find(|r| r.field != "metadata.name" && r.field != "metadata.namespace")
        {
            Some(r) => Err(FieldSelectorError::UnknownField(r.field.clone())),
            None => Ok(()),
        }
    }
}

impl fmt::Display for FieldSelector {
    /// The canonical form: terms joined by `,`, `==` written as `=`, values escaped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for FieldSelector {
    type Err = FieldSelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Split at commas not escaped by `\`.
fn split_terms(selector: &str) -> Vec<&str> {
    if selector.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in selector.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&selector[start..i]);
            start = i + 1;
        }
    }
    terms.push(&selector[start..]);
    terms
}

/// Split a term at the first position where `!=`, `==` or `=` starts.
fn split_term(term: &str) -> Option<(&str, FieldOperator, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for (op, operator) in [
            ("!=", FieldOperator::NotEquals),
            ("==", FieldOperator::Equals),
            ("=", FieldOperator::Equals),
        ] {
            if let Some(rhs) = rest.strip_prefix(op) {
                return Some((&term[..i], operator, rhs));
            }
        }
    }
    None
}

/// `fields.UnescapeValue`: `\\`, `\,`, `\=` are the only escapes; bare `,` and `=` are errors.
pub fn unescape_field_value(s: &str) -> Result<String, FieldSelectorError> {
    if !s.contains(['\\', ',', '=']) {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            match c {
                '\\' | ',' | '=' => out.push(c),
                _ => return Err(FieldSelectorError::InvalidEscape(format!("\\{c}"))),
            }
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            ',' | '=' => return Err(FieldSelectorError::UnescapedCharacter(c)),
            _ => out.push(c),
        }
    }
    if in_slash {
        return Err(FieldSelectorError::InvalidEscape("\\".to_string()));
    }
    Ok(out)
}

/// `fields.EscapeValue`: escape `\`, `,` and `=` with a backslash.
pub fn escape_field_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_fields(input: &str, expected: &str) {
        let got = match FieldSelector::parse(input) {
            Ok(s) => s.to_string(),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(got, expected, "input {input:?}");
    }

    #[test]
    fn field_selectors_parse_like_parse_selector() {
        check_fields("", "");
        check_fields("metadata.name=x", "metadata.name=x");
        check_fields("metadata.name==x", "metadata.name=x");
        check_fields("b!=2,a=1", "a=1,b!=2");
        check_fields("a=1,,b=2", "a=1,b=2");
        check_fields("a=x\\,y\\=z\\\\", "a=x\\,y\\=z\\\\");
        check_fields("a=", "a=");
        check_fields("a", "error: invalid selector: 'a'; can't understand 'a'");
        check_fields(
            "b=1,zz",
            "error: invalid selector: 'b=1,zz'; can't understand 'zz'",
        );
        check_fields(
            "a=b=c",
            "error: invalid field selector: unescaped character in value: 61",
        );
        check_fields(
            "a=\\x",
            "error: invalid field selector: invalid escape sequence: \\x",
        );
        check_fields(
            "a=b\\",
            "error: invalid field selector: invalid escape sequence: \\",
        );
    }

    #[test]
    fn field_selectors_match_and_expose_requirements() {
        let s = FieldSelector::parse("metadata.name=a\\,b,type!=Opaque").unwrap_or_default();
        assert_eq!(
            s.requirements(),
            &[
                FieldRequirement {
                    field: "metadata.name".into(),
                    operator: FieldOperator::Equals,
                    value: "a,b".into()
                },
                FieldRequirement {
                    field: "type".into(),
                    operator: FieldOperator::NotEquals,
                    value: "Opaque".into()
                },
            ]
        );
        let object = |f: &str| match f {
            "metadata.name" => Some("a,b".to_string()),
            "type" => Some("kubernetes.io/tls".to_string()),
            _ => None,
        };
        assert!(s.matches(object));
        assert!(!s.matches(|_| None));
        assert!(
            FieldSelector::parse("x=")
                .unwrap_or_default()
                .matches(|_| None)
        );
        assert_eq!(s.requires_exact_match("metadata.name"), Some("a,b"));
        assert!(FieldSelector::default().is_empty());
    }

    #[test]
    fn unsupported_field_labels_are_rejected_with_kube_apiserver_messages() {
        let s = FieldSelector::parse("spec.x=1,metadata.name=a,foo=b").unwrap_or_default();
        assert_eq!(
            s.check_fields(&["metadata.name", "metadata.namespace", "type"])
                .map_err(|e| e.to_string()),
            Err("field label not supported: foo".to_string())
        );
        assert_eq!(
            s.check_metadata_fields().map_err(|e| e.to_string()),
            Err(
                "\"foo\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
                    .to_string()
            )
        );
        let ok = FieldSelector::parse("metadata.namespace=p,metadata.name=a").unwrap_or_default();
        assert_eq!(ok.check_metadata_fields(), Ok(()));
    }
}

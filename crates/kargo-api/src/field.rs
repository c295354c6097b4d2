//! Kubernetes field errors, as `k8s.io/apimachinery/pkg/util/validation/field` renders them.
//!
//! A [`FieldError`] is one validation failure at a field path such as `metadata.name`. Its
//! [`Display`](std::fmt::Display) is Go's `field.Error.Error()`, [`FieldError::body`] is
//! `ErrorBody()` (the message of a `Status` cause) and [`FieldError::reason`] the cause `reason`.
//! [`invalid_message`] builds the message of a 422 `Invalid` `Status` (`errors.NewInvalid`).
//!
//! The rendering follows apimachinery v0.32 (Kubernetes 1.32): strings are quoted like Go's
//! `%q` ([`go_quote`]), integers and booleans are bare, other values as Go's `%#v`, `TooLong`
//! hides the value and says `may not be more than N bytes`. (1.34 prints composite values as
//! JSON and says `1 byte`; releases before 1.32 said `must have at most N bytes`.)

use std::fmt;
use std::fmt::Write as _;

use serde::Serialize;

/// Why a field is invalid: Go's `field.ErrorType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorType {
    /// `FieldValueNotFound`, "Not found".
    NotFound,
    /// `FieldValueRequired`, "Required value".
    Required,
    /// `FieldValueDuplicate`, "Duplicate value".
    Duplicate,
    /// `FieldValueInvalid`, "Invalid value".
    Invalid,
    /// `FieldValueNotSupported`, "Unsupported value".
    NotSupported,
    /// `FieldValueForbidden`, "Forbidden".
    Forbidden,
    /// `FieldValueTooLong`, "Too long".
    TooLong,
    /// `FieldValueTooMany`, "Too many".
    TooMany,
    /// `InternalError`, "Internal error".
    Internal,
    /// `FieldValueTypeInvalid`, "Invalid value".
    TypeInvalid,
}

impl ErrorType {
    /// The cause `reason` Kubernetes puts in a `Status` (`FieldValueInvalid`, ...).
    pub fn reason(self) -> &'static str {
        match self {
            ErrorType::NotFound => "FieldValueNotFound",
            ErrorType::Required => "FieldValueRequired",
            ErrorType::Duplicate => "FieldValueDuplicate",
            ErrorType::Invalid => "FieldValueInvalid",
            ErrorType::NotSupported => "FieldValueNotSupported",
            ErrorType::Forbidden => "FieldValueForbidden",
            ErrorType::TooLong => "FieldValueTooLong",
            ErrorType::TooMany => "FieldValueTooMany",
            ErrorType::Internal => "InternalError",
            ErrorType::TypeInvalid => "FieldValueTypeInvalid",
        }
    }

    /// The human words that start the message (`Invalid value`, `Required value`, ...).
    pub fn words(self) -> &'static str {
        match self {
            ErrorType::NotFound => "Not found",
            ErrorType::Required => "Required value",
            ErrorType::Duplicate => "Duplicate value",
            ErrorType::Invalid | ErrorType::TypeInvalid => "Invalid value",
            ErrorType::NotSupported => "Unsupported value",
            ErrorType::Forbidden => "Forbidden",
            ErrorType::TooLong => "Too long",
            ErrorType::TooMany => "Too many",
            ErrorType::Internal => "Internal error",
        }
    }
}

/// The offending value of a field error, remembered with the Go type that decides how
/// Kubernetes prints it.
#[derive(Debug, Clone, PartialEq)]
pub enum BadValue {
    /// A Go `string`: printed quoted, `"A"` (see [`go_quote`]).
    String(String),
    /// A Go `int64`, `int32` or `int`: printed bare, `-1`.
    Int(i64),
    /// A Go `uint64`, printed with `%#v`: hexadecimal, `0x0`. (kube-apiserver 1.32/1.33 print
    /// the missing `resourceVersion` of an update this way; 1.34 prints `0`.)
    Uint(u64),
    /// A Go `float64`: printed with `%v`, `1.5`.
    Float(f64),
    /// A Go `bool`: `true` / `false`.
    Bool(bool),
    /// A nil value or nil pointer: `null`.
    Null,
    /// A Go `[]string`, printed with `%#v`: `[]string{"a", "b"}`; `None` is a nil slice,
    /// `[]string(nil)`.
    Strings(Option<Vec<String>>),
    /// Anything else, already rendered the way Go renders it (`String()` or `%#v`).
    Raw(String),
    /// No value: the message is the error type alone (Go's `omitValue`).
    Omitted,
}

impl BadValue {
    /// A string value.
    pub fn string(s: impl Into<String>) -> Self {
        BadValue::String(s.into())
    }
}

impl fmt::Display for BadValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadValue::String(s) => f.write_str(&go_quote(s)),
            BadValue::Int(i) => write!(f, "{i}"),
            BadValue::Uint(u) => write!(f, "{u:#x}"),
            BadValue::Float(x) => f.write_str(&go_float(*x)),
            BadValue::Bool(b) => write!(f, "{b}"),
            BadValue::Null => f.write_str("null"),
            BadValue::Strings(None) => f.write_str("[]string(nil)"),
            BadValue::Strings(Some(items)) => {
                f.write_str("[]string{")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str(&go_quote(item))?;
                }
                f.write_str("}")
            }
            BadValue::Raw(s) => f.write_str(s),
            BadValue::Omitted => Ok(()),
        }
    }
}

/// One validation failure: Go's `field.Error`.
///
/// Build it with the constructors ([`FieldError::invalid`], [`FieldError::required`], ...):
/// they compute `detail` the way Kubernetes does (for example the `supported values: ...` of
/// [`FieldError::not_supported`]).
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// Path of the field, `metadata.name`, `metadata.finalizers[0]`, `values[0][key]`.
    pub field: String,
    /// What is wrong.
    pub error_type: ErrorType,
    /// The offending value; shown for every type except `Required`, `Forbidden`, `TooLong`
    /// and `Internal`.
    pub value: BadValue,
    /// The explanation after the value (may be empty).
    pub detail: String,
}

impl FieldError {
    fn new(
        field: impl Into<String>,
        error_type: ErrorType,
        value: BadValue,
        detail: impl Into<String>,
    ) -> Self {
        FieldError {
            field: field.into(),
            error_type,
            value,
            detail: detail.into(),
        }
    }

    /// `field.Invalid`: `metadata.name: Invalid value: "A": <detail>`.
    pub fn invalid(field: impl Into<String>, value: BadValue, detail: impl Into<String>) -> Self {
        Self::new(field, ErrorType::Invalid, value, detail)
    }

    /// `field.TypeInvalid`.
    pub fn type_invalid(
        field: impl Into<String>,
        value: BadValue,
        detail: impl Into<String>,
    ) -> Self {
        Self::new(field, ErrorType::TypeInvalid, value, detail)
    }

    /// `field.Required`: `metadata.name: Required value: <detail>`.
    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(field, ErrorType::Required, BadValue::string(""), detail)
    }

    /// `field.Forbidden`: `metadata.namespace: Forbidden: <detail>`.
    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(field, ErrorType::Forbidden, BadValue::string(""), detail)
    }

    /// `field.NotFound`: `<field>: Not found: <value>`.
    pub fn not_found(field: impl Into<String>, value: BadValue) -> Self {
        Self::new(field, ErrorType::NotFound, value, "")
    }

    /// `field.Duplicate`: `<field>: Duplicate value: <value>`.
    pub fn duplicate(field: impl Into<String>, value: BadValue) -> Self {
        Self::new(field, ErrorType::Duplicate, value, "")
    }

    /// `field.NotSupported`: `<field>: Unsupported value: "x": supported values: "a", "b"`.
    pub fn not_supported<S: AsRef<str>>(
        field: impl Into<String>,
        value: BadValue,
        supported: &[S],
    ) -> Self {
        let detail = if supported.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = supported.iter().map(|s| go_quote(s.as_ref())).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        Self::new(field, ErrorType::NotSupported, value, detail)
    }

    /// `field.TooLong`: `<field>: Too long: may not be more than <max> bytes` (`None`: `value is
    /// too long`). The value is never shown. (Kubernetes 1.32 says `1 bytes` too.)
    pub fn too_long(field: impl Into<String>, max: Option<usize>) -> Self {
        let detail = match max {
            Some(max) => format!("may not be more than {max} bytes"),
            None => "value is too long".to_string(),
        };
        Self::new(
            field,
            ErrorType::TooLong,
            BadValue::string("<value omitted>"),
            detail,
        )
    }

    /// `field.TooMany`: `<field>: Too many: <actual>: must have at most <max> items`.
    pub fn too_many(field: impl Into<String>, actual: Option<usize>, max: Option<usize>) -> Self {
        let detail = match max {
            Some(max) => format!("must have at most {max} items"),
            None => "has too many items".to_string(),
        };
        let value = match actual {
            Some(n) => BadValue::Int(i64::try_from(n).unwrap_or(i64::MAX)),
            None => BadValue::Omitted,
        };
        Self::new(field, ErrorType::TooMany, value, detail)
    }

    /// `field.InternalError`: `<field>: Internal error: <detail>`.
    pub fn internal(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(field, ErrorType::Internal, BadValue::Null, detail)
    }

    /// The cause `reason` (`FieldValueInvalid`, `FieldValueRequired`, ...).
    pub fn reason(&self) -> &'static str {
        self.error_type.reason()
    }

    /// The message without the field: Go's `ErrorBody()`, used as the cause `message`
    /// (`Invalid value: "A": <detail>`).
    pub fn body(&self) -> String {
        let mut s = String::from(self.error_type.words());
        match self.error_type {
            ErrorType::Required
            | ErrorType::Forbidden
            | ErrorType::TooLong
            | ErrorType::Internal => {}
            _ => {
                if self.value != BadValue::Omitted {
                    let _ = write!(s, ": {}", self.value);
                }
            }
        }
        if !self.detail.is_empty() {
            let _ = write!(s, ": {}", self.detail);
        }
        s
    }

    /// The `Status` cause for this error (`{"reason", "message", "field"}`).
    pub fn cause(&self) -> StatusCause {
        StatusCause {
            reason: self.reason().to_string(),
            message: self.body(),
            field: self.field.clone(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

impl std::error::Error for FieldError {}

/// One entry of `Status.details.causes`, serialized in Kubernetes' key order
/// (`reason`, `message`, `field`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusCause {
    /// `FieldValueInvalid`, ...
    pub reason: String,
    /// The error without the field ([`FieldError::body`]).
    pub message: String,
    /// The field path.
    pub field: String,
}

/// The message of a list of field errors: Go's `ErrorList.ToAggregate().Error()`.
///
/// Duplicate messages are dropped; one message stands alone, several are joined as
/// `[e1, e2]`. `None` when the list is empty.
pub fn aggregate(errors: &[FieldError]) -> Option<String> {
    aggregate_messages(errors.iter().map(ToString::to_string))
}

/// Go's `utilerrors.NewAggregate(errs).Error()` over already rendered messages: duplicates
/// dropped, one stands alone, several become `[e1, e2]`. `None` when there are none.
pub fn aggregate_messages(messages: impl IntoIterator<Item = String>) -> Option<String> {
    let mut unique: Vec<String> = Vec::new();
    for m in messages {
        if !unique.contains(&m) {
            unique.push(m);
        }
    }
    match unique.len() {
        0 => None,
        1 => unique.pop(),
        _ => Some(format!("[{}]", unique.join(", "))),
    }
}

/// The message of a 422 `Invalid` `Status`, as `errors.NewInvalid` builds it:
/// `ServiceAccount "A" is invalid: metadata.name: Invalid value: "A": ...`.
///
/// `kind` is the qualified kind (`Kind` for the core group, `Kind.group` otherwise). With no
/// errors the message is just `<kind> "<name>" is invalid`.
pub fn invalid_message(kind: &str, name: &str, errors: &[FieldError]) -> String {
    match aggregate(errors) {
        None => format!("{kind} {} is invalid", go_quote(name)),
        Some(agg) => format!("{kind} {} is invalid: {agg}", go_quote(name)),
    }
}

/// Quote a string the way Go's `strconv.Quote` (and `%q`) does: `"` and `\` escaped,
/// `\a \b \f \n \r \t \v` for those controls, `\xNN` for other ASCII controls, `\uNNNN` /
/// `\UNNNNNNNN` for other non-printable characters; printable Unicode is kept as is.
///
/// Go's notion of "printable" comes from Unicode tables; this follows it for ASCII, Latin-1,
/// spaces, controls, format characters and private use, which covers what appears in names.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if is_go_print(c) => out.push(c),
            '\u{07}' => out.push_str("\\a"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{0b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// Go's `strconv.IsPrint`, approximated outside Latin-1 (see [`go_quote`]).
fn is_go_print(c: char) -> bool {
    let u = c as u32;
    if u < 0x100 {
        return (0x20..0x7f).contains(&u) || ((0xa1..=0xff).contains(&u) && u != 0xad);
    }
    if c.is_whitespace() || c.is_control() {
        return false;
    }
    let format_or_private = matches!(
        u,
        0x0600..=0x0605
            | 0x061c
            | 0x06dd
            | 0x070f
            | 0x0890..=0x0891
            | 0x08e2
            | 0x180e
            | 0x200b..=0x200f
            | 0x202a..=0x202e
            | 0x2060..=0x2064
            | 0x2066..=0x206f
            | 0xe000..=0xf8ff
            | 0xfdd0..=0xfdef
            | 0xfeff
            | 0xfff9..=0xfffb
            | 0x110bd
            | 0x110cd
            | 0x13430..=0x1343f
            | 0x1bca0..=0x1bca3
            | 0x1d173..=0x1d17a
            | 0xe0001
            | 0xe0020..=0xe007f
            | 0xf0000..=0x10ffff
    );
    !format_or_private && (u & 0xfffe) != 0xfffe
}

/// A `float64` printed with Go's `%v`: shortest digits, exponent form below 1e-4 and from
/// 1e21 on (`1e+21`, `1e-05`).
pub fn go_float(x: f64) -> String {
    if x.is_nan() {
        return "NaN".to_string();
    }
    if x.is_infinite() {
        return if x > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    // Rust's `{:e}` gives the shortest round-trip digits with an exponent, e.g. `1.5e-7`.
    let sci = format!("{x:e}");
    let (mantissa, exp) = match sci.split_once('e') {
        Some((m, e)) => (m.to_string(), e.parse::<i32>().unwrap_or(0)),
        None => return sci,
    };
    if !(-4..21).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        format!("{x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(err: FieldError, display: &str, body: &str, reason: &str) {
        assert_eq!(err.to_string(), display);
        assert_eq!(err.body(), body);
        assert_eq!(err.reason(), reason);
    }

    #[test]
    fn errors_render_like_go_field_error() {
        let why = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric \
                   characters, '-' or '.', and must start and end with an alphanumeric \
                   character (e.g. 'example.com', regex used for validation is \
                   '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
        check(
            FieldError::invalid("metadata.name", BadValue::string("A"), why),
            &format!("metadata.name: Invalid value: \"A\": {why}"),
            &format!("Invalid value: \"A\": {why}"),
            "FieldValueInvalid",
        );
        check(
            FieldError::required("metadata.name", "name or generateName is required"),
            "metadata.name: Required value: name or generateName is required",
            "Required value: name or generateName is required",
            "FieldValueRequired",
        );
        check(
            FieldError::required("metadata.namespace", ""),
            "metadata.namespace: Required value",
            "Required value",
            "FieldValueRequired",
        );
        check(
            FieldError::forbidden("metadata.namespace", "not allowed on this type"),
            "metadata.namespace: Forbidden: not allowed on this type",
            "Forbidden: not allowed on this type",
            "FieldValueForbidden",
        );
        check(
            FieldError::too_long("metadata.annotations", Some(262144)),
            "metadata.annotations: Too long: may not be more than 262144 bytes",
            "Too long: may not be more than 262144 bytes",
            "FieldValueTooLong",
        );
        check(
            FieldError::too_long("x", Some(1)),
            "x: Too long: may not be more than 1 bytes",
            "Too long: may not be more than 1 bytes",
            "FieldValueTooLong",
        );
        check(
            FieldError::too_long("x", None),
            "x: Too long: value is too long",
            "Too long: value is too long",
            "FieldValueTooLong",
        );
        check(
            FieldError::not_supported(
                "spec.type",
                BadValue::string("Foo"),
                &["Opaque", "kubernetes.io/tls"],
            ),
            "spec.type: Unsupported value: \"Foo\": supported values: \"Opaque\", \"kubernetes.io/tls\"",
            "Unsupported value: \"Foo\": supported values: \"Opaque\", \"kubernetes.io/tls\"",
            "FieldValueNotSupported",
        );
        check(
            FieldError::duplicate("secrets[1].name", BadValue::string("s")),
            "secrets[1].name: Duplicate value: \"s\"",
            "Duplicate value: \"s\"",
            "FieldValueDuplicate",
        );
        check(
            FieldError::not_found("roleRef", BadValue::string("r")),
            "roleRef: Not found: \"r\"",
            "Not found: \"r\"",
            "FieldValueNotFound",
        );
        check(
            FieldError::too_many("rules", Some(5), Some(4)),
            "rules: Too many: 5: must have at most 4 items",
            "Too many: 5: must have at most 4 items",
            "FieldValueTooMany",
        );
        check(
            FieldError::too_many("rules", None, Some(1)),
            "rules: Too many: must have at most 1 items",
            "Too many: must have at most 1 items",
            "FieldValueTooMany",
        );
        check(
            FieldError::internal("metadata", "boom"),
            "metadata: Internal error: boom",
            "Internal error: boom",
            "InternalError",
        );
        check(
            FieldError::type_invalid("spec", BadValue::Null, "must be an object"),
            "spec: Invalid value: null: must be an object",
            "Invalid value: null: must be an object",
            "FieldValueTypeInvalid",
        );
    }

    #[test]
    fn values_print_with_their_go_verbs() {
        let cases: &[(BadValue, &str)] = &[
            (BadValue::Int(-1), "-1"),
            (BadValue::Uint(0), "0x0"),
            (BadValue::Uint(255), "0xff"),
            (BadValue::Bool(true), "true"),
            (BadValue::Float(1.5), "1.5"),
            (BadValue::Null, "null"),
            (BadValue::Strings(None), "[]string(nil)"),
            (BadValue::Strings(Some(vec![])), "[]string{}"),
            (
                BadValue::Strings(Some(vec!["a".into(), "b\"c".into()])),
                "[]string{\"a\", \"b\\\"c\"}",
            ),
            (BadValue::Raw("&X{}".into()), "&X{}"),
        ];
        for (value, expected) in cases {
            assert_eq!(value.to_string(), *expected, "{value:?}");
        }
    }

    #[test]
    fn strings_are_quoted_like_strconv_quote() {
        let cases = [
            ("A", r#""A""#),
            ("", r#""""#),
            ("a\"b\\c", r#""a\"b\\c""#),
            (
                "tab\there\nnl\r\u{7}\u{8}\u{c}\u{b}",
                r#""tab\there\nnl\r\a\b\f\v""#,
            ),
            ("\u{1}\u{7f}", r#""\x01\x7f""#),
            ("\u{80}\u{a0}\u{ad}", r#""\u0080\u00a0\u00ad""#),
            ("é日本", "\"é日本\""),
            ("\u{200b}\u{feff}\u{2028}", r#""\u200b\ufeff\u2028""#),
            ("\u{1f600}", "\"\u{1f600}\""),
            ("\u{f0000}", r#""\U000f0000""#),
        ];
        for (input, expected) in cases {
            assert_eq!(go_quote(input), expected, "{input:?}");
        }
    }

    #[test]
    fn floats_print_like_go_percent_v() {
        let cases = [
            (1.0, "1"),
            (0.5, "0.5"),
            (1e20, "100000000000000000000"),
            (1e21, "1e+21"),
            (1.5e-7, "1.5e-07"),
            (0.0001, "0.0001"),
            (-2.25, "-2.25"),
        ];
        for (x, expected) in cases {
            assert_eq!(go_float(x), expected, "{x}");
        }
    }

    #[test]
    fn invalid_message_aggregates_like_new_invalid() {
        let e1 = FieldError::invalid("metadata.name", BadValue::string("A"), "bad");
        let e2 = FieldError::required("metadata.namespace", "");
        assert_eq!(
            invalid_message("ServiceAccount", "A", std::slice::from_ref(&e1)),
            "ServiceAccount \"A\" is invalid: metadata.name: Invalid value: \"A\": bad"
        );
        assert_eq!(
            invalid_message(
                "Role.rbac.authorization.k8s.io",
                "r",
                &[e1.clone(), e2.clone()]
            ),
            "Role.rbac.authorization.k8s.io \"r\" is invalid: [metadata.name: Invalid value: \"A\": bad, metadata.namespace: Required value]"
        );
        // Duplicates collapse, and a list of one repeated error is not bracketed.
        assert_eq!(
            invalid_message("ServiceAccount", "A", &[e1.clone(), e1.clone()]),
            "ServiceAccount \"A\" is invalid: metadata.name: Invalid value: \"A\": bad"
        );
        assert_eq!(
            invalid_message("ServiceAccount", "A", &[e1.clone(), e2.clone(), e1]),
            "ServiceAccount \"A\" is invalid: [metadata.name: Invalid value: \"A\": bad, metadata.namespace: Required value]"
        );
        assert_eq!(
            invalid_message("ServiceAccount", "x\"y", &[]),
            "ServiceAccount \"x\\\"y\" is invalid"
        );
    }

    #[test]
    fn causes_serialize_in_kubernetes_key_order() {
        let e = FieldError::invalid("metadata.name", BadValue::string("A"), "bad");
        assert_eq!(
            serde_json::to_string(&e.cause()).ok(),
            Some(
                r#"{"reason":"FieldValueInvalid","message":"Invalid value: \"A\": bad","field":"metadata.name"}"#
                    .to_string()
            )
        );
    }
}

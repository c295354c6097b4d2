//! Go `encoding/json` rules, as a small builder for JSON objects and helpers for field values.
//!
//! The converters in the sibling modules turn a decoded protobuf message into the JSON that Go's
//! `json.Marshal` would print for the same Go object. Three facts about Go drive the helpers here:
//!
//! - A Go field is never absent: a string the message left out is `""`, a bool `false`, a number
//!   `0`, and a slice or map is nil, which Go prints as `null`. The value helpers ([`string`],
//!   [`boolean`], [`int64`], [`strings`], [`list`], [`map`], [`time`]) produce exactly that, so an empty
//!   slice or map always comes out as `null`, never `[]` or `{}` (the protobuf wire cannot tell an
//!   empty slice from a nil one, and Go's decoder leaves it nil).
//! - `omitempty` drops `false`, `0`, `""`, nil pointers and empty slices and maps, and **never drops a
//!   struct**. [`JsonObject::omitempty`] drops `null`, `false`, `0` and `""`; converters pass struct
//!   values to [`JsonObject::field`] whatever their tag says.
//! - A pointer field is nil exactly when the protobuf message left it out, and a non-nil pointer is
//!   kept by `omitempty` even when it points at `false`, `0`, `""` or a zero time:
//!   [`JsonObject::pointer`] writes the field exactly when the pointer is set.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use k8s_pb::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::{Map, Value};

/// A JSON object built field by field, in the order of the Go struct's fields.
#[derive(Debug, Default)]
pub(super) struct JsonObject(Map<String, Value>);

impl JsonObject {
    /// An empty object.
    pub(super) fn new() -> Self {
        Self::default()
    }

    /// A field without `omitempty`, or a struct-valued field: always written.
    pub(super) fn field(mut self, key: &str, value: Value) -> Self {
        self.0.insert(key.to_owned(), value);
        self
    }

    /// A non-pointer field tagged `omitempty`: left out when Go considers the value empty.
    pub(super) fn omitempty(self, key: &str, value: Value) -> Self {
        if is_go_empty(&value) {
            self
        } else {
            self.field(key, value)
        }
    }

    /// A pointer field tagged `omitempty`: written exactly when the pointer is set.
    pub(super) fn pointer(self, key: &str, value: Option<Value>) -> Self {
        match value {
            Some(value) => self.field(key, value),
            None => self,
        }
    }

    /// The finished JSON object.
    pub(super) fn build(self) -> Value {
        Value::Object(self.0)
    }
}

/// Whether `omitempty` drops a value as the helpers in this module represent Go values. Objects
/// only come from structs (empty maps are `null`), and Go never omits a struct.
fn is_go_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_i64() == Some(0) || n.as_u64() == Some(0),
        Value::String(s) => s.is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Object(_) => false,
    }
}

/// A Go `string`: a missing field is `""`.
pub(super) fn string(value: &Option<String>) -> Value {
    Value::String(value.clone().unwrap_or_default())
}

/// A Go `bool`: a missing field is `false`.
pub(super) fn boolean(value: Option<bool>) -> Value {
    Value::Bool(value.unwrap_or_default())
}

/// A Go `int64`: a missing field is `0`.
pub(super) fn int64(value: Option<i64>) -> Value {
    Value::from(value.unwrap_or_default())
}

/// A Go `[]string`: `null` when empty.
pub(super) fn strings(items: &[String]) -> Value {
    list(items, |item| Value::String(item.clone()))
}

/// A Go `[]T`: `null` when empty, otherwise each item converted.
pub(super) fn list<T>(items: &[T], convert: impl Fn(&T) -> Value) -> Value {
    if items.is_empty() {
        Value::Null
    } else {
        Value::Array(items.iter().map(convert).collect())
    }
}

/// A Go `map[string]V`: `null` when empty, otherwise each value converted (keys come out sorted,
/// as Go prints them).
pub(super) fn map<V>(entries: &BTreeMap<String, V>, convert: impl Fn(&V) -> Value) -> Value {
    if entries.is_empty() {
        Value::Null
    } else {
        Value::Object(
            entries
                .iter()
                .map(|(key, value)| (key.clone(), convert(value)))
                .collect(),
        )
    }
}

/// A Go `map[string]string`.
pub(super) fn string_map(entries: &BTreeMap<String, String>) -> Value {
    map(entries, |value| Value::String(value.clone()))
}

/// A Go `map[string][]byte`: each value in standard base64 with padding. An entry whose value the
/// message left out comes out as `""` (Go would print `null` for a nil slice, but prost cannot tell
/// a missing value from an empty one, and kubectl always sends non-nil values).
pub(super) fn bytes_map(entries: &BTreeMap<String, Vec<u8>>) -> Value {
    map(entries, |bytes| Value::String(STANDARD.encode(bytes)))
}

/// A Go struct field of message type: the message, or the zero value when the message left it out.
pub(super) fn embedded<T: Default>(message: &Option<T>, convert: impl Fn(&T) -> Value) -> Value {
    match message {
        Some(message) => convert(message),
        None => convert(&T::default()),
    }
}

/// A Go pointer field without `omitempty`: `null` when nil.
pub(super) fn nullable(value: Option<Value>) -> Value {
    value.unwrap_or(Value::Null)
}

/// `time.Unix()` of Go's zero `time.Time` (0001-01-01T00:00:00Z), which `metav1.Time` prints as
/// `null`.
const GO_ZERO_TIME_UNIX: i64 = -62_135_596_800;

/// A `metav1.Time` (non-pointer): `null` for the zero time, else RFC 3339 in UTC to the second, as
/// `metav1.Time.MarshalJSON` prints it.
///
/// Go decodes an empty `Time` message to the zero time, and any other to `time.Unix(seconds, 0)`:
/// `nanos` is ignored.
pub(super) fn time(value: Option<&Time>) -> Value {
    let Some(value) = value else {
        return Value::Null;
    };
    if value.seconds.is_none() && value.nanos.is_none() {
        return Value::Null;
    }
    let seconds = value.seconds.unwrap_or_default();
    if seconds == GO_ZERO_TIME_UNIX {
        return Value::Null;
    }
    Value::String(rfc3339(seconds))
}

/// Formats Unix seconds as Go's `t.UTC().Format(time.RFC3339)`, e.g. `2024-01-02T03:04:05Z`. The
/// year has at least four digits and a `-` sign before year 0, as Go writes it.
fn rfc3339(unix_seconds: i64) -> String {
    let days = unix_seconds.div_euclid(86_400);
    let second_of_day = unix_seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let sign = if year < 0 { "-" } else { "" };
    format!(
        "{sign}{:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        year.unsigned_abs(),
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60,
    )
}

/// The proleptic Gregorian date of a count of days since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`), exact for every day count that `i64` Unix seconds can produce.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    // `day` is in 1..=31 and `month` in 1..=12 by construction.
    (year, month as u32, day as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_time(seconds: Option<i64>, nanos: Option<i32>, expected: Value) {
        assert_eq!(
            time(Some(&Time { seconds, nanos })),
            expected,
            "seconds {seconds:?}"
        );
    }

    #[test]
    fn times_print_as_go_prints_metav1_time() {
        check_time(Some(1_704_164_645), None, "2024-01-02T03:04:05Z".into());
        check_time(
            Some(1_704_164_645),
            Some(999_999_999),
            "2024-01-02T03:04:05Z".into(),
        );
        check_time(Some(0), None, "1970-01-01T00:00:00Z".into());
        check_time(None, Some(5), "1970-01-01T00:00:00Z".into());
        check_time(Some(-1), None, "1969-12-31T23:59:59Z".into());
        check_time(Some(951_782_400), None, "2000-02-29T00:00:00Z".into());
        check_time(Some(253_402_300_799), None, "9999-12-31T23:59:59Z".into());
        check_time(Some(253_402_300_800), None, "10000-01-01T00:00:00Z".into());
        check_time(
            Some(GO_ZERO_TIME_UNIX + 1),
            None,
            "0001-01-01T00:00:01Z".into(),
        );
        check_time(
            Some(GO_ZERO_TIME_UNIX - 86_400 * 366),
            None,
            "0000-01-01T00:00:00Z".into(),
        );
        check_time(
            Some(GO_ZERO_TIME_UNIX - 86_400 * 731),
            None,
            "-0001-01-01T00:00:00Z".into(),
        );
        check_time(Some(GO_ZERO_TIME_UNIX), None, Value::Null);
        check_time(None, None, Value::Null);
        assert_eq!(time(None), Value::Null);
    }

    #[test]
    fn extreme_times_format_without_overflow() {
        assert_eq!(rfc3339(i64::MAX), "292277026596-12-04T15:30:07Z");
        assert_eq!(rfc3339(i64::MIN), "-292277022657-01-27T08:29:52Z");
    }

    #[test]
    fn omitempty_drops_go_empty_values_but_never_structs() {
        let object = JsonObject::new()
            .omitempty("null", Value::Null)
            .omitempty("false", Value::Bool(false))
            .omitempty("zero", Value::from(0))
            .omitempty("empty", Value::from(""))
            .omitempty("struct", JsonObject::new().build())
            .omitempty("true", Value::Bool(true))
            .pointer("unset", None)
            .pointer("setToFalse", Some(Value::Bool(false)))
            .build();
        assert_eq!(
            object.to_string(),
            r#"{"struct":{},"true":true,"setToFalse":false}"#
        );
    }
}

//! Optional expiry of ServiceAccount tokens: the `kargo.akuity.io/expires-at` annotation on a
//! token Secret (RFC 3339, UTC), token lifetimes as users write them (`90d`, `12h`, `30m`,
//! `30s`), and how a list shows an expiry (`never`, `in 3h`, `expired`). Values only, no clock:
//! callers pass the time.

use std::fmt;

/// Annotation of a token Secret: the first second at which its token is refused (RFC 3339,
/// UTC, e.g. `2026-01-02T03:04:05Z`). A token whose Secret has no such annotation never expires.
pub const EXPIRES_AT_ANNOTATION: &str = "kargo.akuity.io/expires-at";

/// The units of a lifetime, largest first, with their length in seconds.
const UNITS: [(char, u64); 4] = [('d', 86_400), ('h', 3_600), ('m', 60), ('s', 1)];

/// The longest lifetime accepted (100 years): beyond it no timestamp is meaningful.
const MAX_SECONDS: u64 = 100 * 365 * 86_400;

/// How long a token lives, in whole seconds (at least one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Lifetime(u64);

/// A value that is not a lifetime or not a timestamp; the message names the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpiryError {
    /// Not `<number><s|m|h|d>` of at least one second.
    #[error(
        "invalid token lifetime {0:?}: want a number of at least 1 followed by s, m, h or d (e.g. 90d, 12h, 30m, 30s)"
    )]
    Lifetime(String),
    /// Not an RFC 3339 timestamp.
    #[error("invalid expiry time {0:?}: want an RFC 3339 time such as 2030-01-02T03:04:05Z")]
    Timestamp(String),
}

impl Lifetime {
    /// A lifetime of `seconds` (at least one, at most a hundred years).
    pub fn from_secs(seconds: u64) -> Option<Lifetime> {
        (1..=MAX_SECONDS)
            .contains(&seconds)
            .then_some(Lifetime(seconds))
    }

    /// Its length in seconds.
    pub fn as_secs(self) -> u64 {
        self.0
    }

    /// Parses `90d`, `12h`, `30m` or `30s` (a whole number of one unit).
    pub fn parse(value: &str) -> Result<Lifetime, ExpiryError> {
        let invalid = || ExpiryError::Lifetime(value.to_owned());
        let unit = value.chars().last().ok_or_else(invalid)?;
        let (_, length) = UNITS.iter().find(|(u, _)| *u == unit).ok_or_else(invalid)?;
        let digits = &value[..value.len() - 1];
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        digits
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(*length))
            .and_then(Lifetime::from_secs)
            .ok_or_else(invalid)
    }
}

impl fmt::Display for Lifetime {
    /// In the largest unit that divides it: `90d`, `36h`, `90m`, `61s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (unit, length) = UNITS
            .iter()
            .find(|(_, length)| self.0.is_multiple_of(*length))
            .copied()
            .unwrap_or(('s', 1));
        write!(f, "{}{unit}", self.0 / length)
    }
}

impl std::str::FromStr for Lifetime {
    type Err = ExpiryError;

    fn from_str(value: &str) -> Result<Lifetime, ExpiryError> {
        Lifetime::parse(value)
    }
}

/// Parses the annotation's value (any RFC 3339 time) to Unix seconds.
pub fn parse_expires_at(value: &str) -> Result<i64, ExpiryError> {
    value
        .parse::<k8s_openapi::jiff::Timestamp>()
        .map(|t| t.as_second())
        .map_err(|_| ExpiryError::Timestamp(value.to_owned()))
}

/// The annotation's value for Unix seconds `at` (`2030-01-02T03:04:05Z`).
pub fn format_expires_at(at: i64) -> String {
    k8s_openapi::jiff::Timestamp::from_second(at)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|_| "9999-12-31T23:59:59Z".to_owned())
}

/// Whether a token expiring at `at` is refused at `now` (from the first second at `at` on).
pub fn is_expired(at: i64, now: i64) -> bool {
    now >= at
}

/// How a list shows the expiry of a token whose annotation is `value` at `now`: `never`, `in
/// 3h` (kubectl's human duration), `expired`, or `invalid` for a value that is not a time
/// (such a token is refused).
pub fn describe(value: Option<&str>, now: i64) -> String {
    let Some(value) = value else {
        return "never".to_owned();
    };
    match parse_expires_at(value) {
        Ok(at) if is_expired(at, now) => "expired".to_owned(),
        Ok(at) => format!("in {}", crate::duration::human_duration(at - now)),
        Err(_) => "invalid".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_parse_in_each_unit_and_print_in_the_largest() {
        for (input, seconds, printed) in [
            ("90d", 90 * 86_400, "90d"),
            ("12h", 12 * 3_600, "12h"),
            ("30m", 1_800, "30m"),
            ("30s", 30, "30s"),
            ("1s", 1, "1s"),
            ("48h", 48 * 3_600, "2d"),
            ("90m", 5_400, "90m"),
        ] {
            let lifetime = Lifetime::parse(input).unwrap();
            assert_eq!(lifetime.as_secs(), seconds, "{input}");
            assert_eq!(lifetime.to_string(), printed, "{input}");
        }
    }

    #[test]
    fn bad_lifetimes_are_refused_naming_the_value() {
        for input in [
            "",
            "0s",
            "10",
            "d",
            "-1h",
            "1.5h",
            "1w",
            "1 h",
            "h1",
            "+5m",
            "99999999999999999999d",
            "36501d",
        ] {
            let err = Lifetime::parse(input).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with(&format!("invalid token lifetime {input:?}")),
                "{input}: {err}"
            );
        }
    }

    #[test]
    fn expiry_times_round_trip_and_bad_ones_are_refused() {
        let at = parse_expires_at("2030-01-02T03:04:05Z").unwrap();
        assert_eq!(format_expires_at(at), "2030-01-02T03:04:05Z");
        assert_eq!(
            parse_expires_at("2030-01-02T04:04:05+01:00").unwrap(),
            at,
            "offsets are accepted"
        );
        assert_eq!(
            parse_expires_at("tomorrow").unwrap_err().to_string(),
            "invalid expiry time \"tomorrow\": want an RFC 3339 time such as 2030-01-02T03:04:05Z"
        );
    }

    #[test]
    fn an_expiry_reads_never_in_a_duration_or_expired() {
        let at = parse_expires_at("2030-01-02T03:04:05Z").unwrap();
        let value = Some("2030-01-02T03:04:05Z");
        assert_eq!(describe(None, at), "never");
        assert_eq!(describe(value, at - 3 * 3_600), "in 3h");
        assert_eq!(describe(value, at - 1), "in 1s");
        assert_eq!(describe(value, at), "expired");
        assert_eq!(describe(Some("soon"), at), "invalid");
        assert!(!is_expired(at, at - 1));
        assert!(is_expired(at, at));
    }
}

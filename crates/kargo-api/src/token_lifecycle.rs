//! The lifecycle of ServiceAccount tokens besides expiry ([`crate::expiry`]): disabling a token
//! without deleting it, rotating its value with a grace period for the old one, and its
//! description. All of it lives in annotations of the token Secret, so kubectl sees and sets it
//! too, and the server's auth view reads it from the informer like any other change. Values
//! only, no clock: callers pass the time.

use std::fmt;

use crate::expiry::{Lifetime, parse_expires_at};

/// Annotation of a token Secret: `"true"` refuses its token until it is removed (or set to
/// `"false"`). Any other value also refuses it (fail closed).
pub const DISABLED_ANNOTATION: &str = "kargo.akuity.io/disabled";

/// Annotation of a rotated token Secret: the SHA-256 (lowercase hex) of the value it held before
/// its last rotation, accepted until [`PREVIOUS_TOKEN_VALID_UNTIL_ANNOTATION`]. Never the value.
pub const PREVIOUS_TOKEN_SHA256_ANNOTATION: &str = "kargo.akuity.io/previous-token-sha256";

/// Annotation of a rotated token Secret: the first second (RFC 3339, UTC) at which the previous
/// value is refused.
pub const PREVIOUS_TOKEN_VALID_UNTIL_ANNOTATION: &str =
    "kargo.akuity.io/previous-token-valid-until";

/// The longest description of a token, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 256;

/// Whether a token whose Secret's [`DISABLED_ANNOTATION`] is `value` is disabled: absent or
/// `"false"` is enabled, anything else disabled.
pub fn is_disabled(value: Option<&str>) -> bool {
    value.is_some_and(|v| v != "false")
}

/// How long the previous value of a rotated token stays valid, in whole seconds (zero: it is
/// refused at once).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Grace(u64);

/// A grace that is not `0` or a lifetime; the message names the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid grace period {0:?}: want 0 or a number followed by s, m, h or d (e.g. 24h, 30m)")]
pub struct GraceError(String);

impl Grace {
    /// No grace: the old value is refused at once.
    pub const NONE: Grace = Grace(0);

    /// Parses `0` (or `0s`, `0m`...) or a lifetime (`24h`, `30m`, `7d`).
    pub fn parse(value: &str) -> Result<Grace, GraceError> {
        let digits = value.trim_end_matches(['s', 'm', 'h', 'd']);
        if value == "0" || (digits == "0" && value.len() == 2) {
            return Ok(Grace::NONE);
        }
        Lifetime::parse(value)
            .map(|l| Grace(l.as_secs()))
            .map_err(|_| GraceError(value.to_owned()))
    }

    /// Its length in seconds.
    pub fn as_secs(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Grace {
    /// `0`, or as a [`Lifetime`] prints: `24h`, `2d`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Lifetime::from_secs(self.0) {
            Some(lifetime) => lifetime.fmt(f),
            None => f.write_str("0"),
        }
    }
}

impl std::str::FromStr for Grace {
    type Err = GraceError;

    fn from_str(value: &str) -> Result<Grace, GraceError> {
        Grace::parse(value)
    }
}

/// Lowercase hex of a SHA-256 (the value of [`PREVIOUS_TOKEN_SHA256_ANNOTATION`]).
pub fn sha256_hex(hash: &[u8; 32]) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SHA-256 a [`PREVIOUS_TOKEN_SHA256_ANNOTATION`] names (64 hex digits, either case).
pub fn parse_sha256_hex(value: &str) -> Option<[u8; 32]> {
    if value.len() != 64 || !value.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&value[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// The previous value of a rotated token: its SHA-256 and the first Unix second at which it is
/// refused, when both annotations are well formed (otherwise it is refused: fail closed).
pub fn previous_token(hash: Option<&str>, valid_until: Option<&str>) -> Option<([u8; 32], i64)> {
    let hash = parse_sha256_hex(hash?)?;
    let until = parse_expires_at(valid_until?).ok()?;
    Some((hash, until))
}

/// A token's description checked: at most [`MAX_DESCRIPTION_CHARS`] characters, none of them
/// a control character (it is printed in a table row).
pub fn check_description(description: &str) -> Result<(), String> {
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(format!(
            "description is longer than {MAX_DESCRIPTION_CHARS} characters"
        ));
    }
    if description.chars().any(char::is_control) {
        return Err("description must not contain control characters (such as newlines)".into());
    }
    Ok(())
}

/// How a list shows a token's state at `now`, from its Secret's annotations (`annotation`
/// looks one up): `disabled`, `rotating (old value valid 5h)` while the previous value of a
/// rotation is accepted, or `active`.
pub fn describe_state<'a>(annotation: impl Fn(&str) -> Option<&'a str>, now: i64) -> String {
    if is_disabled(annotation(DISABLED_ANNOTATION)) {
        return "disabled".to_owned();
    }
    match previous_token(
        annotation(PREVIOUS_TOKEN_SHA256_ANNOTATION),
        annotation(PREVIOUS_TOKEN_VALID_UNTIL_ANNOTATION),
    ) {
        Some((_, until)) if now < until => format!(
            "rotating (old value valid {})",
            crate::duration::human_duration(until - now)
        ),
        _ => "active".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::expiry::format_expires_at;

    #[test]
    fn only_an_absent_or_false_annotation_leaves_a_token_enabled() {
        assert!(!is_disabled(None));
        assert!(!is_disabled(Some("false")));
        for value in ["true", "True", "yes", "", "1"] {
            assert!(is_disabled(Some(value)), "{value:?}");
        }
    }

    #[test]
    fn graces_are_zero_or_lifetimes() {
        for (input, seconds, printed) in [
            ("0", 0, "0"),
            ("0s", 0, "0"),
            ("0h", 0, "0"),
            ("24h", 86_400, "1d"),
            ("30m", 1_800, "30m"),
            ("3s", 3, "3s"),
        ] {
            let grace = Grace::parse(input).unwrap();
            assert_eq!(grace.as_secs(), seconds, "{input}");
            assert_eq!(grace.to_string(), printed, "{input}");
        }
        for input in ["", "-1h", "00", "1w", "h", "0x"] {
            assert_eq!(
                Grace::parse(input).unwrap_err().to_string(),
                format!(
                    "invalid grace period {input:?}: want 0 or a number followed by s, m, h or d (e.g. 24h, 30m)"
                )
            );
        }
    }

    #[test]
    fn hashes_round_trip_through_hex_and_bad_hex_is_refused() {
        let mut hash = [0u8; 32];
        hash[0] = 0xab;
        hash[31] = 0x01;
        let hex = sha256_hex(&hash);
        assert_eq!(hex.len(), 64);
        assert!(hex.starts_with("ab00") && hex.ends_with("01"));
        assert_eq!(parse_sha256_hex(&hex), Some(hash));
        assert_eq!(parse_sha256_hex(&hex.to_uppercase()), Some(hash));
        assert_eq!(parse_sha256_hex(&hex[1..]), None);
        assert_eq!(parse_sha256_hex(&format!("{}zz", &hex[2..])), None);
        assert_eq!(parse_sha256_hex(&"é".repeat(32)), None);
    }

    #[test]
    fn descriptions_are_short_single_lines() {
        assert_eq!(check_description("deploys from CI"), Ok(()));
        assert_eq!(check_description(&"x".repeat(256)), Ok(()));
        assert_eq!(
            check_description(&"x".repeat(257)),
            Err("description is longer than 256 characters".into())
        );
        assert!(check_description("two\nlines").is_err());
    }

    #[test]
    fn a_state_reads_disabled_rotating_or_active() {
        let now = 1_893_553_445;
        let until = format_expires_at(now + 5 * 3600);
        let hash = sha256_hex(&[7; 32]);
        let state = |pairs: &[(&str, &str)], now: i64| {
            let map: BTreeMap<String, String> = pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            describe_state(|k| map.get(k).map(String::as_str), now)
        };
        let rotating = [
            (PREVIOUS_TOKEN_SHA256_ANNOTATION, hash.as_str()),
            (PREVIOUS_TOKEN_VALID_UNTIL_ANNOTATION, until.as_str()),
        ];
        assert_eq!(state(&[], now), "active");
        assert_eq!(state(&rotating, now), "rotating (old value valid 5h)");
        assert_eq!(state(&rotating, now + 5 * 3600), "active", "grace over");
        assert_eq!(
            state(&rotating[..1], now),
            "active",
            "no end: the old value is refused"
        );
        let disabled = [rotating[0], rotating[1], (DISABLED_ANNOTATION, "true")];
        assert_eq!(state(&disabled, now), "disabled");
        assert_eq!(state(&[(DISABLED_ANNOTATION, "false")], now), "active");
    }
}

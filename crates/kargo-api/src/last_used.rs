//! When a legacy token was last used, as its Secret records it: the annotations
//! `kargo.akuity.io/last-used-at` (RFC 3339, UTC, to the minute) and
//! `kargo.akuity.io/last-used-from` (the client's address), and Kubernetes' label
//! `kubernetes.io/legacy-token-last-used` (the UTC date, updated at most daily, as
//! kube-apiserver's legacy token authenticator keeps it). What a use changes ([`stamp`]) and how
//! a list shows it ([`describe`]). Values only, no clock: callers pass the time.

use std::net::IpAddr;

use crate::duration::human_duration;
use crate::well_known::LEGACY_TOKEN_LAST_USED_LABEL;

/// Annotation of a token Secret: the minute its token was last used (RFC 3339, UTC, seconds
/// zero, e.g. `2026-01-02T03:04:00Z`). Never moves backwards.
pub const LAST_USED_AT_ANNOTATION: &str = "kargo.akuity.io/last-used-at";
/// Annotation of a token Secret: the client address of a use in the minute of
/// [`LAST_USED_AT_ANNOTATION`] (absent when that use had no known address, e.g. a TokenReview).
pub const LAST_USED_FROM_ANNOTATION: &str = "kargo.akuity.io/last-used-from";

/// One observed use of a token: the minute it was seen in and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Use {
    /// Unix seconds of the start of the minute (a multiple of 60).
    pub minute: i64,
    /// The client's address, when known.
    pub from: Option<IpAddr>,
}

impl Use {
    /// A use at Unix second `at` from `from` (an IPv4-mapped IPv6 address reads as IPv4).
    pub fn new(at: i64, from: Option<IpAddr>) -> Use {
        Use {
            minute: minute_of(at),
            from: from.map(|a| a.to_canonical()),
        }
    }
}

/// The start of the minute of Unix second `at`.
pub fn minute_of(at: i64) -> i64 {
    at - at.rem_euclid(60)
}

/// What recording a use changes on a token Secret's metadata (nothing when both are `None`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stamp {
    /// New `last-used-at` and `last-used-from` values (`None`: remove `last-used-from`), when
    /// the use is later than the one recorded.
    pub last_used: Option<(String, Option<String>)>,
    /// The new value of `kubernetes.io/legacy-token-last-used`.
    pub label: Option<String>,
}

impl Stamp {
    /// Whether the Secret is left as it is.
    pub fn is_empty(&self) -> bool {
        self.last_used.is_none() && self.label.is_none()
    }

    /// Applies the stamp to a Secret's `metadata.annotations` and `metadata.labels` (as JSON
    /// maps, created by the caller if missing).
    pub fn apply(
        &self,
        annotations: &mut serde_json::Map<String, serde_json::Value>,
        labels: &mut serde_json::Map<String, serde_json::Value>,
    ) {
        if let Some((at, from)) = &self.last_used {
            annotations.insert(LAST_USED_AT_ANNOTATION.into(), at.clone().into());
            match from {
                Some(from) => {
                    annotations.insert(LAST_USED_FROM_ANNOTATION.into(), from.clone().into());
                }
                None => {
                    annotations.remove(LAST_USED_FROM_ANNOTATION);
                }
            }
        }
        if let Some(date) = &self.label {
            labels.insert(LEGACY_TOKEN_LAST_USED_LABEL.into(), date.clone().into());
        }
    }
}

/// What recording `used` changes on a Secret whose `last-used-at` annotation is `recorded_at`
/// and whose `legacy-token-last-used` label is `label`. The annotations change only for a use
/// in a later minute than the recorded one (so replicas that flush in any order never move the
/// time backwards; an unreadable value is replaced); the label, as Kubernetes does, unless it
/// already holds the use's date or the next day's.
pub fn stamp(recorded_at: Option<&str>, label: Option<&str>, used: Use) -> Stamp {
    let recorded = recorded_at.and_then(|v| crate::expiry::parse_expires_at(v).ok());
    let last_used = recorded.is_none_or(|r| used.minute > r).then(|| {
        (
            crate::expiry::format_expires_at(used.minute),
            used.from.map(|a| a.to_string()),
        )
    });
    let today = date(used.minute);
    let tomorrow = date(used.minute + 86_400);
    let label =
        (label != Some(today.as_str()) && label != Some(tomorrow.as_str())).then_some(today);
    Stamp { last_used, label }
}

/// The UTC date of Unix second `at` (`2026-01-02`), the label's value.
pub fn date(at: i64) -> String {
    k8s_openapi::jiff::Timestamp::from_second(at)
        .map(|t| t.strftime("%Y-%m-%d").to_string())
        .unwrap_or_else(|_| "9999-12-31".to_owned())
}

/// How a list shows a token's `last-used-at` annotation `value` at Unix second `now`: `never`,
/// its age in whole minutes as kubectl prints ages (`0s` within the minute, `3m`, `2d`), or
/// `invalid` for a value that is not a time.
pub fn describe(value: Option<&str>, now: i64) -> String {
    let Some(value) = value else {
        return "never".to_owned();
    };
    match crate::expiry::parse_expires_at(value) {
        // Truncated toward zero, as Go's integer division: a time under a minute ahead is `0s`.
        Ok(at) => human_duration((now - at) / 60 * 60),
        Err(_) => "invalid".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOON: &str = "2026-03-04T12:00:00Z";

    fn at(value: &str) -> i64 {
        crate::expiry::parse_expires_at(value).unwrap()
    }

    fn ip(value: &str) -> Option<IpAddr> {
        Some(value.parse().unwrap())
    }

    #[test]
    fn a_use_is_recorded_to_the_minute_with_its_canonical_address() {
        let used = Use::new(at("2026-03-04T12:34:56Z"), ip("::ffff:192.0.2.7"));
        assert_eq!(used.minute, at("2026-03-04T12:34:00Z"));
        assert_eq!(used.from, ip("192.0.2.7"));
        assert_eq!(minute_of(-1), -60);
    }

    #[test]
    fn a_first_use_sets_both_annotations_and_the_label() {
        let stamp = stamp(None, None, Use::new(at(NOON) + 5, ip("2001:db8::1")));
        assert_eq!(
            stamp,
            Stamp {
                last_used: Some((NOON.into(), Some("2001:db8::1".into()))),
                label: Some("2026-03-04".into()),
            }
        );
        let mut annotations = serde_json::Map::new();
        let mut labels = serde_json::Map::new();
        annotations.insert(LAST_USED_FROM_ANNOTATION.into(), "192.0.2.1".into());
        stamp.apply(&mut annotations, &mut labels);
        assert_eq!(annotations[LAST_USED_AT_ANNOTATION], NOON);
        assert_eq!(annotations[LAST_USED_FROM_ANNOTATION], "2001:db8::1");
        assert_eq!(labels[LEGACY_TOKEN_LAST_USED_LABEL], "2026-03-04");
    }

    #[test]
    fn the_time_never_moves_backwards_and_the_same_minute_writes_nothing() {
        let same = Use::new(at(NOON) + 59, ip("192.0.2.9"));
        assert!(stamp(Some(NOON), Some("2026-03-04"), same).is_empty());
        let earlier = Use::new(at(NOON) - 60, ip("192.0.2.9"));
        assert!(stamp(Some(NOON), Some("2026-03-04"), earlier).is_empty());
        let later = Use::new(at(NOON) + 60, None);
        assert_eq!(
            stamp(Some(NOON), Some("2026-03-04"), later),
            Stamp {
                last_used: Some(("2026-03-04T12:01:00Z".into(), None)),
                label: None,
            },
            "a later use without an address drops the older address"
        );
        assert!(
            stamp(Some("yesterday"), Some("2026-03-04"), same)
                .last_used
                .is_some(),
            "an unreadable time is replaced"
        );
    }

    #[test]
    fn the_label_is_kept_when_it_holds_today_or_tomorrow_as_kubernetes_does() {
        let used = Use::new(at(NOON), None);
        for (label, written) in [
            (Some("2026-03-04"), None),
            (Some("2026-03-05"), None),
            (Some("2026-03-03"), Some("2026-03-04")),
            (Some("2026-03-06"), Some("2026-03-04")),
            (Some("junk"), Some("2026-03-04")),
            (None, Some("2026-03-04")),
        ] {
            assert_eq!(
                stamp(Some(NOON), label, used).label.as_deref(),
                written,
                "{label:?}"
            );
        }
    }

    #[test]
    fn lists_show_never_or_the_age_in_whole_minutes_as_kubectl_prints_ages() {
        let noon = at(NOON);
        assert_eq!(describe(None, noon), "never");
        assert_eq!(describe(Some(NOON), noon + 59), "0s");
        assert_eq!(describe(Some(NOON), noon + 60), "60s");
        assert_eq!(describe(Some(NOON), noon + 3 * 60 + 20), "3m");
        assert_eq!(describe(Some(NOON), noon + 2 * 86_400 + 30), "2d");
        assert_eq!(
            describe(Some(NOON), noon - 30),
            "0s",
            "a clock a little behind"
        );
        assert_eq!(describe(Some("soon"), noon), "invalid");
    }
}

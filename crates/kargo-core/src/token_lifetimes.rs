//! How long a token created through the Kargo API lives: the request's `expiresIn` or
//! `expiresAt`, bounded by the server's `--max-token-lifetime`, and the
//! `--default-token-lifetime` (or, without one, the maximum) when the request names none. The
//! answer is the value of the token Secret's `kargo.akuity.io/expires-at`.

use kargo_api::expiry::{Lifetime, format_expires_at, parse_expires_at};
use kargo_api::kargo::CreateTokenRequest;

use super::{Error, Result};

/// The server's bounds on token lifetimes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenLifetimes {
    max: Option<Lifetime>,
    default: Option<Lifetime>,
}

/// A default lifetime longer than the maximum.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the default token lifetime {default} exceeds the maximum of {max}")]
pub struct DefaultExceedsMax {
    default: Lifetime,
    max: Lifetime,
}

impl TokenLifetimes {
    /// Bounds with an optional maximum and default; a default beyond the maximum is refused.
    pub fn new(
        max: Option<Lifetime>,
        default: Option<Lifetime>,
    ) -> std::result::Result<TokenLifetimes, DefaultExceedsMax> {
        if let (Some(max), Some(default)) = (max, default)
            && default > max
        {
            return Err(DefaultExceedsMax { default, max });
        }
        Ok(TokenLifetimes { max, default })
    }

    /// The `kargo.akuity.io/expires-at` of a token asked for by `request` at Unix second `now`
    /// (`None`: it never expires). 400 for a bad value (named), both fields given, a time
    /// not in the future, or a lifetime beyond the maximum.
    pub(crate) fn expires_at(
        &self,
        request: &CreateTokenRequest,
        now: i64,
    ) -> Result<Option<String>> {
        let bad = |e: kargo_api::expiry::ExpiryError| Error::BadRequest(e.to_string());
        let lifetime = match (&request.expires_in, &request.expires_at) {
            (Some(_), Some(_)) => {
                return Err(Error::BadRequest(
                    "only one of expiresIn and expiresAt may be given".into(),
                ));
            }
            (Some(expires_in), None) => Lifetime::parse(expires_in).map_err(bad)?,
            (None, Some(expires_at)) => {
                let at = parse_expires_at(expires_at).map_err(bad)?;
                let seconds = u64::try_from(at.saturating_sub(now)).unwrap_or(0);
                Lifetime::from_secs(seconds).ok_or_else(|| {
                    Error::BadRequest(format!("expiry time {expires_at:?} is not in the future"))
                })?
            }
            (None, None) => match self.default.or(self.max) {
                Some(lifetime) => lifetime,
                None => return Ok(None),
            },
        };
        if let Some(max) = self.max
            && lifetime > max
        {
            return Err(Error::BadRequest(format!(
                "token lifetime {lifetime} exceeds the maximum of {max}"
            )));
        }
        let at = now.saturating_add(i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX));
        Ok(Some(format_expires_at(at)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_893_553_445; // 2030-01-02T03:04:05Z

    fn lifetime(value: &str) -> Option<Lifetime> {
        Some(Lifetime::parse(value).unwrap())
    }

    /// The answer for a request with `expires_in` / `expires_at` under `bounds`.
    fn check(
        bounds: TokenLifetimes,
        expires_in: Option<&str>,
        expires_at: Option<&str>,
        expected: std::result::Result<Option<&str>, &str>,
    ) {
        let request = CreateTokenRequest {
            name: "t".into(),
            expires_in: expires_in.map(Into::into),
            expires_at: expires_at.map(Into::into),
            description: None,
        };
        let got = bounds
            .expires_at(&request, NOW)
            .map_err(|e| (e.code(), e.to_string()));
        let expected = expected
            .map(|at| at.map(str::to_owned))
            .map_err(|message| (400, message.to_owned()));
        assert_eq!(got, expected, "{expires_in:?} {expires_at:?}");
    }

    #[test]
    fn a_token_expires_when_asked_within_the_maximum() {
        let none = TokenLifetimes::default();
        check(none, None, None, Ok(None));
        check(none, Some("30s"), None, Ok(Some("2030-01-02T03:04:35Z")));
        check(none, Some("1d"), None, Ok(Some("2030-01-03T03:04:05Z")));
        check(
            none,
            None,
            Some("2030-01-02T04:00:00Z"),
            Ok(Some("2030-01-02T04:00:00Z")),
        );
        check(
            none,
            None,
            Some("2030-01-02T05:00:00+01:00"),
            Ok(Some("2030-01-02T04:00:00Z")),
        );
        let max = TokenLifetimes::new(lifetime("90d"), None).unwrap();
        check(max, Some("90d"), None, Ok(Some("2030-04-02T03:04:05Z")));
        check(max, None, None, Ok(Some("2030-04-02T03:04:05Z")));
        check(
            max,
            Some("100d"),
            None,
            Err("token lifetime 100d exceeds the maximum of 90d"),
        );
        check(
            max,
            None,
            Some("2031-01-02T03:04:05Z"),
            Err("token lifetime 365d exceeds the maximum of 90d"),
        );
        let default = TokenLifetimes::new(lifetime("90d"), lifetime("12h")).unwrap();
        check(default, None, None, Ok(Some("2030-01-02T15:04:05Z")));
        check(default, Some("30d"), None, Ok(Some("2030-02-01T03:04:05Z")));
    }

    #[test]
    fn bad_expiries_are_refused_naming_the_value() {
        let none = TokenLifetimes::default();
        check(
            none,
            Some("3 days"),
            None,
            Err(
                "invalid token lifetime \"3 days\": want a number of at least 1 followed by s, m, h or d (e.g. 90d, 12h, 30m, 30s)",
            ),
        );
        check(
            none,
            None,
            Some("soon"),
            Err("invalid expiry time \"soon\": want an RFC 3339 time such as 2030-01-02T03:04:05Z"),
        );
        check(
            none,
            None,
            Some("2030-01-02T03:04:05Z"),
            Err("expiry time \"2030-01-02T03:04:05Z\" is not in the future"),
        );
        check(
            none,
            Some("1h"),
            Some("2031-01-01T00:00:00Z"),
            Err("only one of expiresIn and expiresAt may be given"),
        );
    }

    #[test]
    fn a_default_beyond_the_maximum_is_refused() {
        assert_eq!(
            TokenLifetimes::new(lifetime("1d"), lifetime("2d"))
                .unwrap_err()
                .to_string(),
            "the default token lifetime 2d exceeds the maximum of 1d"
        );
    }
}

//! Limits on guessing: failed admin logins and failed bearer tokens are counted per source
//! address, and an address that keeps failing is told to back off (`429` with `Retry-After`).
//!
//! Each [`FailureLimiter`] lets an address fail [`Backoff::free`] times, then blocks it for
//! [`Backoff::base`], doubling with every further failure up to [`Backoff::max`]; an address
//! that has not failed for [`Backoff::forget`] starts over. Only failures are counted: a correct
//! password or a valid token is never counted and, for tokens, never refused. Attempts refused
//! while an address is blocked are not counted either, so a client that waits as told gets one
//! attempt per back-off period.
//!
//! IPv4 addresses are counted one by one; IPv6 addresses by their /64 prefix, the block one
//! subscriber usually holds (an attacker gets a whole /64 as easily as one address).
//!
//! **Memory is bounded:** the map holds at most `capacity` addresses and forgets the least
//! recently seen one to admit another (`hashlink::LruCache`), so an attacker with many addresses
//! cannot grow it; at worst they push out entries of other addresses, which they could as well
//! replace by fresh addresses of their own.
//!
//! Hand-written rather than `governor`'s keyed limiter, because that limiter counts every
//! request (here successes must cost nothing and are never refused), has no way to check an
//! address without spending a cell (the login checks before the password hash and counts after
//! it), meters a constant rate rather than a back-off that grows with persistent guessing, and
//! bounds its memory only when `retain_recent` is called, not by construction.

use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hashlink::LruCache;

/// How an address backs off after failing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Backoff {
    /// Failures an address may make before it is blocked.
    pub free: u32,
    /// The first block; each further failure doubles it.
    pub base: Duration,
    /// The longest block.
    pub max: Duration,
    /// After this long without a failure, an address starts over.
    pub forget: Duration,
}

/// Admin logins: 10 wrong passwords, then 1 s, 2 s, 4 s, ... up to 5 minutes. A guesser who
/// waits as told gets about 14 guesses in the first quarter hour and 12 an hour after that.
pub(crate) const LOGIN_BACKOFF: Backoff = Backoff {
    free: 10,
    base: Duration::from_secs(1),
    max: Duration::from_secs(300),
    forget: Duration::from_secs(15 * 60),
};

/// Bearer tokens that fail verification: 100 (NIST SP 800-63B's ceiling for consecutive
/// failures), then 1 s, 2 s, ... up to one minute. A token is a signed JWT, so guessing one is
/// hopeless anyway; the limit stops a client from spending the server on it.
pub(crate) const TOKEN_BACKOFF: Backoff = Backoff {
    free: 100,
    base: Duration::from_secs(1),
    max: Duration::from_secs(60),
    forget: Duration::from_secs(15 * 60),
};

/// How many addresses each limiter remembers (about 100 bytes each).
pub(crate) const CAPACITY: usize = 16_384;

/// What a limiter remembers of one address.
#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last_failure: Instant,
    blocked_until: Option<Instant>,
}

/// Failures per source address, and the back-off they earn.
pub(crate) struct FailureLimiter {
    policy: Backoff,
    entries: Mutex<LruCache<IpAddr, Entry, std::hash::RandomState>>,
}

/// The key an address is counted under: an IPv4 address (also when mapped into IPv6), or the
/// /64 prefix of an IPv6 address.
pub(crate) fn source_key(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
    }
}

/// Whole seconds to wait, rounded up and at least one (the value of a `Retry-After` header).
pub(crate) fn retry_after_secs(wait: Duration) -> u32 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    u32::try_from(secs.max(1)).unwrap_or(u32::MAX)
}

impl FailureLimiter {
    /// A limiter with `policy` that remembers at most `capacity` addresses.
    pub fn new(policy: Backoff, capacity: usize) -> FailureLimiter {
        FailureLimiter {
            policy,
            entries: Mutex::new(LruCache::with_hasher(
                capacity.max(1),
                std::hash::RandomState::new(),
            )),
        }
    }

    fn entries(
        &self,
    ) -> std::sync::MutexGuard<'_, LruCache<IpAddr, Entry, std::hash::RandomState>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How long `source` must still wait, if it is blocked at `now`.
    pub(crate) fn blocked(&self, source: IpAddr, now: Instant) -> Option<Duration> {
        let entries = self.entries();
        let until = entries.peek(&source_key(source))?.blocked_until?;
        until.checked_duration_since(now).filter(|d| !d.is_zero())
    }

    /// Counts a failure of `source` at `now`, unless it is blocked (then nothing is counted).
    /// Returns how long the address is blocked from now on, if it is.
    pub fn fail(&self, source: IpAddr, now: Instant) -> Option<Duration> {
        let key = source_key(source);
        let mut entries = self.entries();
        let entry = match entries.get_mut(&key) {
            Some(entry) => entry,
            None => {
                entries.insert(
                    key,
                    Entry {
                        failures: 0,
                        last_failure: now,
                        blocked_until: None,
                    },
                );
                entries.get_mut(&key)?
            }
        };
        if let Some(wait) = entry
            .blocked_until
            .and_then(|until| until.checked_duration_since(now))
            .filter(|d| !d.is_zero())
        {
            return Some(wait);
        }
        if now.saturating_duration_since(entry.last_failure) >= self.policy.forget {
            entry.failures = 0;
        }
        entry.failures = entry.failures.saturating_add(1);
        entry.last_failure = now;
        if entry.failures < self.policy.free {
            entry.blocked_until = None;
            return None;
        }
        let doublings = (entry.failures - self.policy.free).min(31);
        let block = self
            .policy
            .base
            .saturating_mul(1u32 << doublings)
            .min(self.policy.max);
        entry.blocked_until = Some(now + block);
        Some(block)
    }

    /// How many addresses the limiter remembers now.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: Backoff = Backoff {
        free: 3,
        base: Duration::from_secs(1),
        max: Duration::from_secs(8),
        forget: Duration::from_secs(60),
    };

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_address_fails_freely_then_backs_off_twice_as_long_each_time_up_to_the_maximum() {
        let limiter = FailureLimiter::new(POLICY, 10);
        let a = ip("192.0.2.1");
        let t0 = Instant::now();
        assert_eq!(limiter.fail(a, t0), None);
        assert_eq!(limiter.fail(a, t0), None);
        assert_eq!(limiter.blocked(a, t0), None);
        // The third failure uses the last free one: blocked for the base period.
        assert_eq!(limiter.fail(a, t0), Some(Duration::from_secs(1)));
        assert_eq!(limiter.blocked(a, t0), Some(Duration::from_secs(1)));
        // Failures while blocked are not counted: the block does not grow.
        assert_eq!(
            limiter.fail(a, t0 + Duration::from_millis(500)),
            Some(Duration::from_millis(500))
        );
        let mut now = t0 + Duration::from_secs(1);
        assert_eq!(limiter.blocked(a, now), None);
        for expected in [2, 4, 8, 8, 8] {
            assert_eq!(limiter.fail(a, now), Some(Duration::from_secs(expected)));
            now += Duration::from_secs(expected);
            assert_eq!(limiter.blocked(a, now), None);
        }
    }

    #[test]
    fn an_address_that_stops_failing_for_the_forget_period_starts_over() {
        let limiter = FailureLimiter::new(POLICY, 10);
        let a = ip("192.0.2.1");
        let t0 = Instant::now();
        for _ in 0..4 {
            limiter.fail(a, t0 + Duration::from_secs(10));
        }
        let later = t0 + Duration::from_secs(10) + POLICY.forget;
        assert_eq!(limiter.fail(a, later), None);
        assert_eq!(limiter.fail(a, later), None);
        assert_eq!(limiter.fail(a, later), Some(Duration::from_secs(1)));
    }

    #[test]
    fn addresses_are_counted_apart_and_ipv6_by_its_64_bit_prefix() {
        let limiter = FailureLimiter::new(POLICY, 10);
        let t0 = Instant::now();
        for _ in 0..3 {
            limiter.fail(ip("2001:db8:1:2::1"), t0);
        }
        assert!(limiter.blocked(ip("2001:db8:1:2:ffff::9"), t0).is_some());
        assert_eq!(limiter.blocked(ip("2001:db8:1:3::1"), t0), None);
        assert_eq!(limiter.blocked(ip("192.0.2.1"), t0), None);
        for _ in 0..3 {
            limiter.fail(ip("192.0.2.1"), t0);
        }
        // The same address reached over IPv6 (a dual-stack listener) is the same address.
        assert!(limiter.blocked(ip("::ffff:192.0.2.1"), t0).is_some());
        assert_eq!(limiter.blocked(ip("192.0.2.2"), t0), None);
    }

    #[test]
    fn many_addresses_cannot_grow_the_limiter_past_its_capacity() {
        let limiter = FailureLimiter::new(POLICY, 1_000);
        let t0 = Instant::now();
        let attacker = ip("198.51.100.7");
        for _ in 0..3 {
            limiter.fail(attacker, t0);
        }
        for n in 0..100_000u32 {
            let address = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + n));
            limiter.fail(address, t0);
            if n % 100 == 0 {
                // The attacker keeps trying, so its entry stays among the recently seen.
                assert!(limiter.fail(attacker, t0).is_some());
            }
            assert!(limiter.len() <= 1_000);
        }
        assert_eq!(limiter.len(), 1_000);
        assert!(limiter.blocked(attacker, t0).is_some());
        // IPv6 addresses of one /64 take one entry, however many there are.
        let limiter = FailureLimiter::new(POLICY, 1_000);
        for n in 0..10_000u128 {
            limiter.fail(IpAddr::V6(Ipv6Addr::from(0x2001_0db8_u128 << 96 | n)), t0);
        }
        assert_eq!(limiter.len(), 1);
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds_and_is_at_least_one() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1_001)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(4)), 4);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }
}

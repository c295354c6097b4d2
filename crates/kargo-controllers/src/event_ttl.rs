//! Event expiry: every replica deletes, now and then, the Events whose last occurrence is older
//! than the server's `--event-ttl` (kube-apiserver's flag, one hour by default), so events do
//! not pile up. Deleting an event twice (two replicas) is harmless.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kargo_registry::Registry;
use kargo_registry::events;
use tokio_util::sync::CancellationToken;

/// How often expired events are looked for: a tenth of the TTL, between 1 s and a minute.
pub fn sweep_interval(ttl: Duration) -> Duration {
    (ttl / 10).clamp(Duration::from_secs(1), Duration::from_secs(60))
}

/// Deletes expired events every [`sweep_interval`] until `shutdown`.
pub async fn run(registry: Registry, ttl: Duration, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(sweep_interval(ttl));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        match events::expire(&registry, ttl, now).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(deleted = n, "expired events"),
            Err(e) => tracing::warn!(error = %e, "expiring events failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweeps_a_tenth_of_the_ttl_between_a_second_and_a_minute() {
        assert_eq!(
            sweep_interval(Duration::from_secs(3600)),
            Duration::from_secs(60)
        );
        assert_eq!(
            sweep_interval(Duration::from_secs(100)),
            Duration::from_secs(10)
        );
        assert_eq!(
            sweep_interval(Duration::from_secs(2)),
            Duration::from_secs(1)
        );
    }
}

//! A closed-loop driver: a fixed number of tasks, each sending its next request as soon as the
//! last one is answered, for a time or a number of requests; and the latency summary.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// When a run stops.
#[derive(Debug, Clone, Copy)]
pub enum Until {
    /// After this long.
    Elapsed(Duration),
    /// After this many requests in all.
    Requests(u64),
}

/// The latencies of a run, sorted, and how long it took.
pub struct Run {
    /// Every request's latency, shortest first.
    pub latencies: Vec<Duration>,
    /// The run's wall-clock time.
    pub elapsed: Duration,
}

impl Run {
    /// Requests per second.
    pub fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The latency at percentile `p`.
    pub fn p(&self, p: f64) -> Duration {
        percentile(&self.latencies, p)
    }

    /// `requests=N rate=R/s p50=…ms p90=…ms p99=…ms max=…ms`.
    pub fn summary(&self) -> String {
        format!(
            "requests={} rate={:.0}/s p50={}ms p90={}ms p99={}ms max={}ms",
            self.latencies.len(),
            self.rate(),
            ms(self.p(50.0)),
            ms(self.p(90.0)),
            ms(self.p(99.0)),
            ms(self.latencies.last().copied().unwrap_or_default()),
        )
    }
}

/// The value at percentile `p` of `sorted` (nearest rank; zero when empty).
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Milliseconds with two decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// Runs `op(n)` for n = 0, 1, 2, … from `concurrency` tasks until `until`, timing each call.
/// The first error stops the run and is returned.
pub async fn closed_loop<F, Fut>(concurrency: usize, until: Until, op: F) -> anyhow::Result<Run>
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let op = Arc::new(op);
    let counter = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (op, counter) = (op.clone(), counter.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let done = match until {
                    Until::Elapsed(d) => started.elapsed() >= d,
                    Until::Requests(r) => n >= r,
                };
                if done {
                    return Ok::<_, anyhow::Error>(latencies);
                }
                let sent = Instant::now();
                op(n).await?;
                latencies.push(sent.elapsed());
            }
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await??);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    Ok(Run { latencies, elapsed })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let sorted: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&sorted, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&sorted, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&[], 99.0), Duration::ZERO);
    }

    #[tokio::test]
    async fn a_run_by_count_makes_exactly_that_many_requests() {
        let run = closed_loop(4, Until::Requests(10), |_| async { Ok(()) })
            .await
            .unwrap();
        assert_eq!(run.latencies.len(), 10);
    }
}

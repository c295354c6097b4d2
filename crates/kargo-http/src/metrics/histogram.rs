//! A histogram of durations whose observation takes no lock and shares no cache line.
//!
//! `prometheus_client`'s `Histogram` takes a write lock for every observation. With every
//! request observing the same few series from every worker thread, that lock was contended and
//! its waiters parked: four times the context switches per request and a fifth of the
//! authenticated read rate (`bench/ab.sh`, docs/performance.md). Here each bucket, and the sum
//! in nanoseconds, is an atomic counter in the observing thread's own slot ([`Shards`]); an
//! observation is two relaxed atomic additions to lines no other thread writes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

use super::shards::Shards;

/// The most bounds a histogram has (the `+Inf` bucket follows them).
const MAX_BOUNDS: usize = 31;

/// A histogram of durations over fixed bucket bounds (in seconds).
#[derive(Debug, Clone)]
pub(super) struct DurationHistogram(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    /// Upper bounds, ascending, in seconds; the `+Inf` bucket follows them.
    bounds: &'static [f64],
    /// Each thread's counts.
    slots: Shards<Slot>,
}

/// One thread's counts.
#[derive(Debug, Default)]
struct Slot {
    /// Observations per bucket (not cumulative): one per bound, then `+Inf`.
    buckets: [AtomicU64; MAX_BOUNDS + 1],
    /// The sum of the observations, in nanoseconds.
    sum_nanos: AtomicU64,
}

impl DurationHistogram {
    /// An empty histogram over `bounds` (ascending, in seconds; at most 31).
    pub(super) fn new(bounds: &'static [f64]) -> DurationHistogram {
        assert!(bounds.len() <= MAX_BOUNDS, "too many histogram bounds");
        DurationHistogram(Arc::new(Inner {
            bounds,
            slots: Shards::default(),
        }))
    }

    /// Counts one observation of `duration`.
    pub(super) fn observe(&self, duration: Duration) {
        let seconds = duration.as_secs_f64();
        let bucket = self
            .0
            .bounds
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(self.0.bounds.len());
        let slot = self.0.slots.local();
        slot.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        slot.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// `(sum in seconds, count, [(upper bound, count in the bucket)])`, the last bound being
    /// `f64::MAX` (`+Inf` to the encoder). The count is the buckets' total, so that a scrape
    /// during an observation stays consistent.
    fn snapshot(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let bounds = self.0.bounds;
        let mut counts = vec![0u64; bounds.len() + 1];
        let mut sum_nanos = 0u64;
        for slot in self.0.slots.iter() {
            for (count, bucket) in counts.iter_mut().zip(&slot.buckets) {
                *count += bucket.load(Ordering::Relaxed);
            }
            sum_nanos = sum_nanos.wrapping_add(slot.sum_nanos.load(Ordering::Relaxed));
        }
        let buckets: Vec<(f64, u64)> = bounds
            .iter()
            .copied()
            .chain(std::iter::once(f64::MAX))
            .zip(counts)
            .collect();
        let count = buckets.iter().map(|(_, n)| n).sum();
        (sum_nanos as f64 / 1e9, count, buckets)
    }
}

impl TypedMetric for DurationHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for DurationHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let (sum, count, buckets) = self.snapshot();
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_that_holds_them() {
        static BOUNDS: [f64; 3] = [0.001, 0.01, 0.1];
        let histogram = DurationHistogram::new(&BOUNDS);
        for ms in [0, 1, 2, 10] {
            histogram.observe(Duration::from_millis(ms));
        }
        // Observed on other threads: other slots, the same histogram.
        std::thread::scope(|scope| {
            for ms in [50, 1000] {
                let histogram = &histogram;
                scope.spawn(move || histogram.observe(Duration::from_millis(ms)));
            }
        });
        let (sum, count, buckets) = histogram.snapshot();
        assert_eq!(count, 6);
        assert!((sum - 1.063).abs() < 1e-9, "{sum}");
        assert_eq!(buckets, [(0.001, 2), (0.01, 2), (0.1, 1), (f64::MAX, 1)]);
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register("d_seconds", "D", histogram);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for line in [
            "d_seconds_count 6",
            r#"d_seconds_bucket{le="0.001"} 2"#,
            r#"d_seconds_bucket{le="0.01"} 4"#,
            r#"d_seconds_bucket{le="0.1"} 5"#,
            r#"d_seconds_bucket{le="+Inf"} 6"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }
}

//! Counting without contention: the metrics every request touches keep one slot per worker
//! thread, each on its own cache line, and a scrape sums the slots.
//!
//! A counter every request adds to from every worker thread is one cache line that the cores
//! pass back and forth: each addition waits for it. With a dozen such additions per request
//! (the request's series, its duration buckets, the in-flight gauges, the authentication and
//! authorization counters), that was most of what metrics cost a read served by two threads
//! (`bench/ab.sh`, docs/performance.md). Here a thread adds to its own slot, which stays in its
//! core's cache; threads beyond the number of slots share them (still correct, only slower).

use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

/// Slots per metric: the machine's threads, rounded up to a power of two (at most 64).
static SLOTS: LazyLock<usize> = LazyLock::new(|| {
    std::thread::available_parallelism()
        .map_or(8, |n| n.get())
        .clamp(1, 64)
        .next_power_of_two()
});

/// The next thread's slot number.
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's slot number (taken from [`NEXT_SLOT`] at its first count).
    static SLOT: usize = NEXT_SLOT.fetch_add(1, Ordering::Relaxed);
}

/// A value on a cache line of its own (128 bytes: adjacent lines are fetched in pairs).
#[repr(align(128))]
#[derive(Debug, Default)]
struct Padded<T>(T);

/// One `T` per slot.
#[derive(Debug)]
pub(super) struct Shards<T>(Box<[Padded<T>]>);

impl<T> Shards<T> {
    /// A slot for each thread, each made by `make`.
    pub(super) fn new(mut make: impl FnMut() -> T) -> Shards<T> {
        Shards((0..*SLOTS).map(|_| Padded(make())).collect())
    }

    /// The calling thread's slot.
    pub(super) fn local(&self) -> &T {
        let at = SLOT.with(|slot| *slot) & (self.0.len() - 1);
        &self.0[at].0
    }

    /// Every slot.
    pub(super) fn iter(&self) -> impl Iterator<Item = &T> {
        self.0.iter().map(|padded| &padded.0)
    }
}

impl<T: Default> Default for Shards<T> {
    fn default() -> Shards<T> {
        Shards::new(T::default)
    }
}

/// A monotonic counter counted per thread.
#[derive(Debug, Clone, Default)]
pub(super) struct ShardedCounter(Arc<Shards<AtomicU64>>);

impl ShardedCounter {
    /// Adds one.
    pub(super) fn inc(&self) {
        self.0.local().fetch_add(1, Ordering::Relaxed);
    }

    /// The total.
    pub(super) fn get(&self) -> u64 {
        self.0.iter().map(|n| n.load(Ordering::Relaxed)).sum()
    }
}

impl TypedMetric for ShardedCounter {
    const TYPE: MetricType = MetricType::Counter;
}

impl EncodeMetric for ShardedCounter {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_counter::<NoLabelSet, _, u64>(&self.get(), None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// A gauge moved up and down per thread (a request may end on another thread than it began:
/// the slots' sum is still the gauge).
#[derive(Debug, Clone, Default)]
pub(super) struct ShardedGauge(Arc<Shards<AtomicI64>>);

impl ShardedGauge {
    /// Adds one.
    pub(super) fn inc(&self) {
        self.0.local().fetch_add(1, Ordering::Relaxed);
    }

    /// Takes one away.
    pub(super) fn dec(&self) {
        self.0.local().fetch_sub(1, Ordering::Relaxed);
    }

    /// The gauge's value.
    pub(super) fn get(&self) -> i64 {
        self.0.iter().map(|n| n.load(Ordering::Relaxed)).sum()
    }
}

impl TypedMetric for ShardedGauge {
    const TYPE: MetricType = MetricType::Gauge;
}

impl EncodeMetric for ShardedGauge {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_gauge(&self.get())
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_from_many_threads_add_up() {
        let counter = ShardedCounter::default();
        let gauge = ShardedGauge::default();
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..1000 {
                        counter.inc();
                        gauge.inc();
                    }
                });
            }
        });
        // Down on other threads than it went up.
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..500 {
                        gauge.dec();
                    }
                });
            }
        });
        assert_eq!(counter.get(), 8000);
        assert_eq!(gauge.get(), 6000);
    }
}

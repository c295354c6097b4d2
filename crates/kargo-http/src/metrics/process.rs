//! The process's own metrics, as Prometheus' client libraries name them
//! (`process_cpu_seconds_total`, `process_resident_memory_bytes`, `process_open_fds`, ...),
//! read from `/proc/self` at each scrape. Written here rather than with a crate: the six
//! numbers take two small files and a directory count, and the process-metrics crates pull in
//! a whole `/proc` parser. Elsewhere than Linux, nothing is reported.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Reads the process's numbers at each scrape.
#[derive(Debug)]
pub(super) struct ProcessCollector {
    ticks_per_second: f64,
    page_size: f64,
}

/// What one read of `/proc/self` found.
#[derive(Debug, Default, PartialEq)]
struct Sample {
    cpu_seconds: f64,
    resident_bytes: f64,
    virtual_bytes: f64,
    start_time_seconds: f64,
    open_fds: Option<f64>,
    max_fds: Option<f64>,
}

impl ProcessCollector {
    pub(super) fn new() -> ProcessCollector {
        ProcessCollector {
            ticks_per_second: rustix::param::clock_ticks_per_second() as f64,
            page_size: rustix::param::page_size() as f64,
        }
    }

    fn sample(&self) -> Option<Sample> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let boot = std::fs::read_to_string("/proc/stat").ok()?;
        let mut sample = parse_stat(&stat, &boot, self.ticks_per_second, self.page_size)?;
        sample.open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|d| d.count() as f64);
        sample.max_fds = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .map(|n| n as f64);
        Some(sample)
    }
}

/// The numbers of `/proc/self/stat` (fields after the command, which is in parentheses and
/// may hold spaces) and the boot time of `/proc/stat`.
fn parse_stat(stat: &str, proc_stat: &str, ticks: f64, page_size: f64) -> Option<Sample> {
    let after_command = &stat[stat.rfind(')')? + 2..];
    // Field 3 (state) is index 0 here; utime is field 14, stime 15, starttime 22, vsize 23,
    // rss 24 (proc(5)).
    let fields: Vec<&str> = after_command.split_ascii_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<f64>().ok();
    let boot_time = proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse::<f64>()
        .ok()?;
    Some(Sample {
        cpu_seconds: (field(14)? + field(15)?) / ticks,
        start_time_seconds: boot_time + field(22)? / ticks,
        virtual_bytes: field(23)?,
        resident_bytes: field(24)? * page_size,
        open_fds: None,
        max_fds: None,
    })
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(sample) = self.sample() else {
            return Ok(());
        };
        let cpu = ConstCounter::new(sample.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds.",
            None,
            cpu.metric_type(),
        )?)?;
        let gauges = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                Some(sample.resident_bytes),
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                Some(sample.virtual_bytes),
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                Some(sample.start_time_seconds),
            ),
            (
                "process_open_fds",
                "Number of open file descriptors.",
                sample.open_fds,
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors.",
                sample.max_fds,
            ),
        ];
        for (name, help, value) in gauges {
            let Some(value) = value else { continue };
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_read_after_a_command_with_spaces() {
        let stat = "4242 (kargo (a b)) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 1000 2097152 300 18446744073709551615";
        let sample = parse_stat(stat, "cpu 1 2 3\nbtime 1700000000\n", 100.0, 4096.0).unwrap();
        assert_eq!(
            sample,
            Sample {
                cpu_seconds: 3.0,
                resident_bytes: 300.0 * 4096.0,
                virtual_bytes: 2097152.0,
                start_time_seconds: 1_700_000_010.0,
                open_fds: None,
                max_fds: None,
            }
        );
        assert_eq!(parse_stat("garbage", "", 100.0, 4096.0), None);
    }

    #[test]
    fn this_process_is_sampled() {
        let sample = ProcessCollector::new().sample().unwrap();
        assert!(sample.resident_bytes > 1e6, "{sample:?}");
        assert!(sample.open_fds.unwrap() >= 3.0, "{sample:?}");
        assert!(
            sample.max_fds.unwrap() >= sample.open_fds.unwrap(),
            "{sample:?}"
        );
    }
}

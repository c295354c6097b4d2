//! A process's CPU time and resident memory, from `/proc/<pid>/stat` and `/proc/<pid>/status`.

use anyhow::Context;

/// Clock ticks per second of `/proc/<pid>/stat` (`USER_HZ`, 100 on every Linux architecture
/// this runs on).
const TICKS_PER_SECOND: f64 = 100.0;

/// User plus system CPU time of `pid` (or of this process when `None`), in seconds.
pub fn cpu_seconds(pid: Option<u32>) -> anyhow::Result<f64> {
    let path = pid.map_or_else(
        || "/proc/self/stat".to_owned(),
        |p| format!("/proc/{p}/stat"),
    );
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // The command name (field 2) may hold spaces: count fields from after its closing parenthesis.
    let rest = stat.rsplit_once(')').context("no ')' in /proc stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 (utime) and 15 (stime) of the line are 11 and 12 after the command name.
    let ticks = |i: usize| -> anyhow::Result<f64> {
        Ok(fields.get(i).context("short /proc stat")?.parse::<f64>()?)
    };
    Ok((ticks(11)? + ticks(12)?) / TICKS_PER_SECOND)
}

/// Resident memory of `pid`, in KiB.
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("no VmRSS in /proc status")?;
    let kib = line
        .split_whitespace()
        .nth(1)
        .context("malformed VmRSS line")?;
    Ok(kib.parse()?)
}

/// CPU time of a process over a stretch of a run.
pub struct CpuMeter {
    pid: Option<u32>,
    start: f64,
}

impl CpuMeter {
    /// Starts counting the CPU time of `pid` (this process when `None`).
    pub fn start(pid: Option<u32>) -> anyhow::Result<CpuMeter> {
        Ok(CpuMeter {
            pid,
            start: cpu_seconds(pid)?,
        })
    }

    /// Microseconds of CPU time since the start, per one of `count` units of work.
    pub fn micros_per(&self, count: usize) -> anyhow::Result<f64> {
        let spent = cpu_seconds(self.pid)? - self.start;
        Ok(spent * 1e6 / count.max(1) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_cpu_time_and_memory() {
        assert!(cpu_seconds(None).unwrap() >= 0.0);
        assert!(rss_kib(std::process::id()).unwrap() > 0);
    }
}

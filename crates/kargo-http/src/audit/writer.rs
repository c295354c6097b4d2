//! The audit log's writer: requests hand it formatted lines through a bounded channel and never
//! wait; one dedicated thread writes them through a buffer, flushes when the channel is idle
//! and at least every [`FLUSH_INTERVAL`], and rotates the file by size.
//!
//! **Invariant:** a request never blocks on the log. A full channel (a slow or stuck disk)
//! drops the event and counts it (`dropped`); a failed write (a full disk) is counted
//! (`write_errors`), reported to the server's log at most once per [`REPORT_INTERVAL`], and the
//! writer carries on with the next event.
//!
//! Rotation follows kube-apiserver's (lumberjack): when a line would take the file past the
//! size limit, the file is renamed `<name>-<UTC time>.<ext>` (`audit-2026-12-07T11-21-35.123.log`)
//! and a new one is started; only the newest `max_backups` rotated files are kept (`0`: all).

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant};

/// How long written lines may wait in the buffer.
pub(crate) const FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// How often a failing log is reported to the server's log.
pub(crate) const REPORT_INTERVAL: Duration = Duration::from_secs(60);
/// How many lines may wait for the writer before events are dropped (kube-apiserver's default
/// buffer for its batching backend).
pub(crate) const CHANNEL_CAPACITY: usize = 10_000;
/// The length of a rotated file's time (`2026-12-07T11-21-35.123`).
const STAMP_LEN: usize = 23;

/// Where lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sink {
    /// The process's standard output (`--audit-log-path -`).
    Stdout,
    /// A file, rotated past `max_bytes` (`0`: never), keeping `max_backups` rotated files (`0`:
    /// all).
    File {
        /// The file.
        path: PathBuf,
        /// The size past which it is rotated.
        max_bytes: u64,
        /// How many rotated files are kept.
        max_backups: usize,
    },
}

/// The writer's counters.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) events: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) write_errors: AtomicU64,
}

/// The requests' side of the writer: cheap to call, never blocking.
pub(crate) struct Writer {
    lines: SyncSender<String>,
    pub(crate) counters: Arc<Counters>,
}

impl Writer {
    /// Opens the sink (an error here is the operator's to fix before the server starts) and
    /// starts the writing thread, with room for `capacity` waiting lines.
    pub(crate) fn start(sink: Sink, capacity: usize) -> io::Result<Writer> {
        let output = Output::open(sink)?;
        let (lines, received) = std::sync::mpsc::sync_channel(capacity);
        let counters = Arc::new(Counters::default());
        let thread_counters = counters.clone();
        std::thread::Builder::new()
            .name("audit-log".into())
            .spawn(move || write_lines(output, received, &thread_counters))?;
        Ok(Writer { lines, counters })
    }

    /// Hands one line (ending with a newline) to the writer, or drops and counts it if the
    /// writer is behind.
    pub(crate) fn send(&self, line: String) {
        match self.lines.try_send(line) {
            Ok(()) => self.counters.events.fetch_add(1, Ordering::Relaxed),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed)
            }
        };
    }
}

/// The writing thread: until every sender is gone, writes what arrives, and flushes once the
/// channel is empty, or every [`FLUSH_INTERVAL`] while it is not.
fn write_lines(mut output: Output, received: Receiver<String>, counters: &Counters) {
    let mut reporter = Reporter::default();
    let mut failed = |output: &Output, e: io::Error| {
        counters.write_errors.fetch_add(1, Ordering::Relaxed);
        reporter.report(output, &e);
    };
    loop {
        let first = match received.recv_timeout(FLUSH_INTERVAL) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let mut last_flush = Instant::now();
        let mut next = Some(first);
        while let Some(line) = next {
            if let Err(e) = output.write_line(line.as_bytes()) {
                failed(&output, e);
            }
            if last_flush.elapsed() >= FLUSH_INTERVAL {
                if let Err(e) = output.flush() {
                    failed(&output, e);
                }
                last_flush = Instant::now();
            }
            next = received.try_recv().ok();
        }
        if let Err(e) = output.flush() {
            failed(&output, e);
        }
    }
    if let Err(e) = output.flush() {
        failed(&output, e);
    }
}

/// Reports write failures to the server's log, at most once per [`REPORT_INTERVAL`].
#[derive(Default)]
struct Reporter {
    last: Option<Instant>,
    since: u64,
}

impl Reporter {
    fn report(&mut self, output: &Output, error: &io::Error) {
        self.since += 1;
        if self.last.is_some_and(|at| at.elapsed() < REPORT_INTERVAL) {
            return;
        }
        tracing::error!(
            audit_log = %output.name(),
            error = %error,
            failures = self.since,
            "writing the audit log failed; audit events are being lost"
        );
        self.last = Some(Instant::now());
        self.since = 0;
    }
}

/// The open sink.
enum Output {
    Stdout(BufWriter<io::Stdout>),
    File(LogFile),
}

impl Output {
    fn open(sink: Sink) -> io::Result<Output> {
        Ok(match sink {
            Sink::Stdout => Output::Stdout(BufWriter::new(io::stdout())),
            Sink::File {
                path,
                max_bytes,
                max_backups,
            } => Output::File(LogFile::open(path, max_bytes, max_backups)?),
        })
    }

    fn name(&self) -> String {
        match self {
            Output::Stdout(_) => "-".to_owned(),
            Output::File(file) => file.path.display().to_string(),
        }
    }

    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        match self {
            Output::Stdout(out) => out.write_all(line),
            Output::File(file) => file.write_line(line),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Stdout(out) => out.flush(),
            Output::File(file) => file.file.flush(),
        }
    }
}

/// A log file rotated by size.
struct LogFile {
    path: PathBuf,
    file: BufWriter<File>,
    size: u64,
    max_bytes: u64,
    max_backups: usize,
}

/// Opens `path` for appending, created private (0600; its directory 0700 if it is created).
fn open_private(path: &Path) -> io::Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

impl LogFile {
    fn open(path: PathBuf, max_bytes: u64, max_backups: usize) -> io::Result<LogFile> {
        let file = open_private(&path)?;
        let size = file.metadata()?.len();
        Ok(LogFile {
            path,
            file: BufWriter::with_capacity(64 * 1024, file),
            size,
            max_bytes,
            max_backups,
        })
    }

    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        let len = line.len() as u64;
        if self.max_bytes > 0 && self.size > 0 && self.size + len > self.max_bytes {
            self.rotate()?;
        }
        self.file.write_all(line)?;
        self.size += len;
        Ok(())
    }

    /// Renames the file to its backup name, starts a new one and removes the oldest backups.
    fn rotate(&mut self) -> io::Result<()> {
        self.file.flush()?;
        let (stem, ext) = stem_and_extension(&self.path);
        let stamp = rotation_stamp(std::time::SystemTime::now());
        let dir = self.dir();
        // A second rotation within one millisecond: a counter after the time, above any of
        // that millisecond, so that names keep the order of rotations.
        let same_time = backups(&dir, &self.path)?
            .into_iter()
            .filter(|((time, _), _)| *time == stamp)
            .map(|((_, n), _)| n)
            .max();
        let backup = match same_time {
            None => dir.join(format!("{stem}-{stamp}{ext}")),
            Some(n) => dir.join(format!("{stem}-{stamp}-{}{ext}", n + 1)),
        };
        std::fs::rename(&self.path, &backup)?;
        self.file = BufWriter::with_capacity(64 * 1024, open_private(&self.path)?);
        self.size = 0;
        self.prune()
    }

    fn dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
            _ => PathBuf::from("."),
        }
    }

    /// Removes all but the newest `max_backups` backups (none when it is 0).
    fn prune(&self) -> io::Result<()> {
        if self.max_backups == 0 {
            return Ok(());
        }
        let mut backups = backups(&self.dir(), &self.path)?;
        backups.sort();
        let excess = backups.len().saturating_sub(self.max_backups);
        for (_, path) in backups.into_iter().take(excess) {
            std::fs::remove_file(path)?;
        }
        Ok(())
    }
}

/// A file's name without its extension, and the extension with its dot (`audit`, `.log`).
fn stem_and_extension(path: &Path) -> (String, String) {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    (stem, ext)
}

/// The rotated files of `path` in `dir`, each with its order key (time, then the counter a
/// second rotation in the same millisecond adds).
fn backups(dir: &Path, path: &Path) -> io::Result<Vec<((String, u32), PathBuf)>> {
    let (stem, ext) = stem_and_extension(path);
    let prefix = format!("{stem}-");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        let Some(rest) = name
            .strip_prefix(&prefix)
            .and_then(|r| r.strip_suffix(ext.as_str()))
        else {
            continue;
        };
        if rest.len() < STAMP_LEN || !rest.is_char_boundary(STAMP_LEN) {
            continue;
        }
        let (stamp, counter) = rest.split_at(STAMP_LEN);
        let counter = match counter.strip_prefix('-') {
            Some(n) => n.parse().unwrap_or(0),
            None if counter.is_empty() => 0,
            None => continue,
        };
        if !stamp.starts_with(|c: char| c.is_ascii_digit()) {
            continue;
        }
        found.push(((stamp.to_owned(), counter), dir.join(name)));
    }
    Ok(found)
}

/// lumberjack's backup time: `2006-01-02T15-04-05.000` in UTC.
fn rotation_stamp(at: std::time::SystemTime) -> String {
    let millis = at
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    k8s_openapi::jiff::Timestamp::from_millisecond(millis)
        .map(|t| t.strftime("%Y-%m-%dT%H-%M-%S.%3f").to_string())
        .unwrap_or_else(|_| "1970-01-01T00-00-00.000".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait_for(what: &str, done: impl Fn() -> bool) {
        for _ in 0..500 {
            if done() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("{what} never happened");
    }

    #[test]
    fn a_full_disk_is_counted_and_never_blocks_a_sender() {
        let writer = Writer::start(
            Sink::File {
                path: "/dev/full".into(),
                max_bytes: 0,
                max_backups: 0,
            },
            16,
        )
        .unwrap();
        let started = Instant::now();
        for i in 0..1_000 {
            writer.send(format!("{{\"n\":{i}}}\n"));
        }
        assert!(started.elapsed() < Duration::from_millis(500));
        wait_for("a write error", || {
            writer.counters.write_errors.load(Ordering::Relaxed) > 0
        });
        let c = &writer.counters;
        assert_eq!(
            c.events.load(Ordering::Relaxed) + c.dropped.load(Ordering::Relaxed),
            1_000
        );
    }

    #[test]
    fn a_full_channel_drops_and_counts_the_event() {
        // A writer whose thread never reads: the channel holds two lines.
        let (lines, _held) = std::sync::mpsc::sync_channel(2);
        let writer = Writer {
            lines,
            counters: Arc::default(),
        };
        for _ in 0..5 {
            writer.send("{}\n".into());
        }
        assert_eq!(writer.counters.events.load(Ordering::Relaxed), 2);
        assert_eq!(writer.counters.dropped.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn rotation_renames_past_the_size_and_keeps_the_newest_backups() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let mut file = LogFile::open(path.clone(), 100, 2).unwrap();
        for i in 0..10 {
            // 40 bytes each: two lines a file.
            file.write_line(format!("{i:039}\n").as_bytes()).unwrap();
        }
        file.file.flush().unwrap();
        let mut backups = backups(dir.path(), &path).unwrap();
        backups.sort();
        assert_eq!(backups.len(), 2, "{backups:?}");
        for (_, backup) in &backups {
            let name = backup.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                name.starts_with("audit-") && name.ends_with(".log"),
                "{name}"
            );
            assert_eq!(std::fs::read_to_string(backup).unwrap().lines().count(), 2);
        }
        // The newest backup holds lines 6 and 7; the file 8 and 9.
        assert_eq!(
            std::fs::read_to_string(&backups[1].1).unwrap(),
            format!("{:039}\n{:039}\n", 6, 7)
        );
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{:039}\n{:039}\n", 8, 9)
        );
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
    }

    #[test]
    fn the_rotation_stamp_is_lumberjacks() {
        let at = std::time::SystemTime::UNIX_EPOCH + Duration::from_millis(1_796_642_495_123);
        assert_eq!(rotation_stamp(at), "2026-12-07T11-21-35.123");
    }
}

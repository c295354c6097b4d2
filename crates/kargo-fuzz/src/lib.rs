//! The fuzzing driver of the Kargo test suites.
//!
//! A target is written as a cargo-fuzz target is: a function of `&[u8]` that panics when a
//! property breaks (`fn(data: &[u8])`). [`Fuzzer::run`] calls it with
//!
//! 1. every seed of the target's corpus, as is (a regression run: seeds are real inputs — kubectl
//!    bodies, patches from tests, token shapes — and earlier crashes);
//! 2. then, until the time budget is spent, inputs made by mutating seeds the way libFuzzer does
//!    (bit flips, interesting bytes, insertions, deletions, copies, splices, repeated chunks,
//!    tokens of the target's dictionary), stacking mutations on earlier mutants, and now and then
//!    random bytes.
//!
//! There is no coverage feedback: stable Rust has no sanitizer-coverage runtime. Targets make up
//! for it by decoding non-seed input into structured values with [`arbitrary::Unstructured`], so
//! random bytes still become well-formed patches, selectors or tokens most of the time.
//!
//! A panicking input is written to a file (`KARGO_FUZZ_CRASH_DIR`, by default the system's
//! temporary directory) and the run fails with the file's name, the input and the command that
//! replays it. An execution slower than `KARGO_FUZZ_SLOW_MS` fails the same way: a request must
//! not be able to hold a thread.
//!
//! Environment:
//! - `KARGO_FUZZ_SECONDS`: the time budget per target (default 2; `scripts/fuzz.sh` sets more);
//! - `KARGO_FUZZ_SEED`: the random seed (default: from the clock; always printed);
//! - `KARGO_FUZZ_REPLAY`: a file or directory of inputs: run only those, once each;
//! - `KARGO_FUZZ_CRASH_DIR`: where failing inputs are written;
//! - `KARGO_FUZZ_SLOW_MS`: the longest one execution may take (default 5000).
//!
//! Each run prints one line on stderr (`fuzz: NAME: N executions in S s ...`) that
//! `scripts/fuzz.sh` collects.

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use arbitrary;

pub mod structured;

/// The default time budget of one target, in seconds: short enough for the normal test suite.
const DEFAULT_SECONDS: f64 = 2.0;
/// The default longest execution, in milliseconds (debug builds are slow; a hang is far slower).
const DEFAULT_SLOW_MS: u64 = 5_000;
/// The default largest input, in bytes.
const DEFAULT_MAX_LEN: usize = 4096;
/// How many mutants are kept to be mutated further.
const POOL_LIMIT: usize = 1024;
/// Bytes that often sit on a parser's edges.
const INTERESTING: &[u8] = &[
    0, 1, 0x7f, 0x80, 0xff, b'"', b'\'', b'\\', b'{', b'}', b'[', b']', b'(', b')', b',', b':',
    b'.', b'=', b'!', b'/', b'~', b'$', b'-', b'0', b'9', b' ', b'\n', b'\t',
];

/// A fuzzing run of one target: its seeds, dictionary and limits.
#[derive(Debug, Clone)]
pub struct Fuzzer {
    name: String,
    seeds: Vec<Vec<u8>>,
    dictionary: Vec<Vec<u8>>,
    max_len: usize,
}

/// What a run did.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The target's name.
    pub name: String,
    /// How many times the target was called.
    pub executions: u64,
    /// How many seeds the corpus had.
    pub seeds: usize,
    /// How long the run took.
    pub elapsed: Duration,
    /// The random seed (`KARGO_FUZZ_SEED` replays the same mutations).
    pub random_seed: u64,
}

/// The environment's settings for one run.
struct Settings {
    budget: Duration,
    random_seed: u64,
    replay: Option<PathBuf>,
    crash_dir: PathBuf,
    slow: Duration,
}

impl Settings {
    fn from_env(name: &str) -> Settings {
        let var = |key: &str| std::env::var(key).ok().filter(|v| !v.trim().is_empty());
        let seconds = var("KARGO_FUZZ_SECONDS")
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .unwrap_or(DEFAULT_SECONDS);
        let random_seed = var("KARGO_FUZZ_SEED")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or_else(clock_seed);
        let slow_ms = var("KARGO_FUZZ_SLOW_MS")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(DEFAULT_SLOW_MS);
        let crash_dir = var("KARGO_FUZZ_CRASH_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| std::env::temp_dir().join("kargo-fuzz"))
            .join(name);
        Settings {
            budget: Duration::from_secs_f64(seconds),
            random_seed,
            replay: var("KARGO_FUZZ_REPLAY").map(PathBuf::from),
            crash_dir,
            slow: Duration::from_millis(slow_ms),
        }
    }
}

fn clock_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    // Fold the 128-bit count and the process id so parallel targets start apart.
    (nanos as u64) ^ ((nanos >> 64) as u64) ^ u64::from(std::process::id()).rotate_left(32)
}

/// Every file of a directory (sorted by name, hidden files skipped); a missing directory is an
/// empty corpus, any other failure panics (a broken test setup).
fn read_dir_files(dir: &Path) -> Vec<Vec<u8>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => panic!("reading the corpus {}: {e}", dir.display()),
    };
    let mut paths: Vec<PathBuf> = entries
        .map(|entry| match entry {
            Ok(entry) => entry.path(),
            Err(e) => panic!("reading the corpus {}: {e}", dir.display()),
        })
        .filter(|path| path.is_file())
        .filter(|path| {
            !path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'))
        })
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|path| match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) => panic!("reading the seed {}: {e}", path.display()),
        })
        .collect()
}

impl Fuzzer {
    /// A run of the target `name` (the name of its corpus directory and of its crash files).
    pub fn new(name: impl Into<String>) -> Fuzzer {
        Fuzzer {
            name: name.into(),
            seeds: Vec::new(),
            dictionary: Vec::new(),
            max_len: DEFAULT_MAX_LEN,
        }
    }

    /// Adds every file of `dir` as a seed.
    pub fn corpus(mut self, dir: impl AsRef<Path>) -> Fuzzer {
        self.seeds.extend(read_dir_files(dir.as_ref()));
        self
    }

    /// Adds one seed (for inputs made at run time, such as tokens signed by a fresh key).
    pub fn seed(mut self, bytes: impl Into<Vec<u8>>) -> Fuzzer {
        self.seeds.push(bytes.into());
        self
    }

    /// Adds tokens that mutations insert (keywords, directives, separators).
    pub fn dictionary<T: AsRef<[u8]>>(mut self, tokens: impl IntoIterator<Item = T>) -> Fuzzer {
        self.dictionary
            .extend(tokens.into_iter().map(|t| t.as_ref().to_vec()));
        self
    }

    /// Sets the largest input mutations make (seeds may be larger).
    pub fn max_len(mut self, max_len: usize) -> Fuzzer {
        self.max_len = max_len.max(1);
        self
    }

    /// Runs `target` on the seeds, then on mutants until the time budget is spent, and prints
    /// the report line.
    ///
    /// # Panics
    ///
    /// When `target` panics or is too slow on an input, after writing that input to a file.
    pub fn run(self, target: impl Fn(&[u8])) -> Report {
        let settings = Settings::from_env(&self.name);
        self.run_with(&settings, target)
    }

    fn run_with(self, settings: &Settings, target: impl Fn(&[u8])) -> Report {
        let started = Instant::now();
        let mut executions = 0u64;
        let mut execute = |input: &[u8]| {
            executions += 1;
            self.execute(settings, &target, input, executions);
        };
        if let Some(replay) = &settings.replay {
            let inputs = if replay.is_dir() {
                read_dir_files(replay)
            } else {
                match std::fs::read(replay) {
                    Ok(bytes) => vec![bytes],
                    Err(e) => panic!("reading {}: {e}", replay.display()),
                }
            };
            inputs.iter().for_each(|input| execute(input));
        } else {
            self.seeds.iter().for_each(|seed| execute(seed));
            let mut rng = Rng::new(settings.random_seed);
            let mut pool = self.seeds.clone();
            if pool.is_empty() {
                pool.push(Vec::new());
            }
            while started.elapsed() < settings.budget {
                let input = self.mutant(&mut rng, &pool);
                execute(&input);
                if rng.below(16) == 0 {
                    if pool.len() < POOL_LIMIT {
                        pool.push(input);
                    } else {
                        let at = self.seeds.len() + rng.below(POOL_LIMIT - self.seeds.len());
                        if let Some(slot) = pool.get_mut(at) {
                            *slot = input;
                        }
                    }
                }
            }
        }
        let report = Report {
            name: self.name.clone(),
            executions,
            seeds: self.seeds.len(),
            elapsed: started.elapsed(),
            random_seed: settings.random_seed,
        };
        eprintln!(
            "fuzz: {}: {} executions in {:.1} s ({} seeds, KARGO_FUZZ_SEED={}), 0 crashes",
            report.name,
            report.executions,
            report.elapsed.as_secs_f64(),
            report.seeds,
            report.random_seed,
        );
        report
    }

    /// Calls the target once; on a panic or an over-long call, saves the input and fails.
    fn execute(&self, settings: &Settings, target: &impl Fn(&[u8]), input: &[u8], count: u64) {
        let started = Instant::now();
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| target(input)));
        let took = started.elapsed();
        let failure = match outcome {
            Err(payload) => Some(panic_message(payload.as_ref())),
            Ok(()) if took > settings.slow => Some(format!(
                "one execution took {} ms (limit KARGO_FUZZ_SLOW_MS={})",
                took.as_millis(),
                settings.slow.as_millis()
            )),
            Ok(()) => None,
        };
        if let Some(message) = failure {
            let path = self.save(&settings.crash_dir, input);
            panic!(
                "fuzz target {name} failed after {count} executions: {message}\n  input ({len} bytes): {preview}\n  saved to: {path}\n  replay: KARGO_FUZZ_REPLAY={path} cargo test {name}\n  (random seed KARGO_FUZZ_SEED={seed})",
                name = self.name,
                len = input.len(),
                preview = preview(input),
                path = path.display(),
                seed = settings.random_seed,
            );
        }
    }

    fn save(&self, dir: &Path, input: &[u8]) -> PathBuf {
        let path = dir.join(format!("crash-{:016x}", fnv1a(input)));
        if let Err(e) = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, input)) {
            eprintln!(
                "fuzz: {}: could not save {}: {e}",
                self.name,
                path.display()
            );
        }
        path
    }

    /// A new input: a pool entry with one to eight stacked mutations, or random bytes.
    fn mutant(&self, rng: &mut Rng, pool: &[Vec<u8>]) -> Vec<u8> {
        if rng.below(20) == 0 {
            let len = rng.below(self.max_len.min(256) + 1);
            return (0..len).map(|_| rng.byte()).collect();
        }
        let mut data = pool[rng.below(pool.len())].clone();
        for _ in 0..=rng.below(8) {
            self.mutate(rng, &mut data, pool);
        }
        data.truncate(self.max_len);
        data
    }

    fn mutate(&self, rng: &mut Rng, data: &mut Vec<u8>, pool: &[Vec<u8>]) {
        let len = data.len();
        match rng.below(13) {
            0 if len > 0 => {
                let at = rng.below(len);
                data[at] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let at = rng.below(len);
                data[at] = rng.byte();
            }
            2 if len > 0 => {
                let at = rng.below(len);
                data[at] = INTERESTING[rng.below(INTERESTING.len())];
            }
            3 => {
                let at = rng.below(len + 1);
                let count = 1 + rng.below(8);
                let bytes: Vec<u8> = (0..count).map(|_| rng.byte()).collect();
                data.splice(at..at, bytes);
            }
            4 if len > 0 => {
                let at = rng.below(len);
                let count = 1 + rng.below((len - at).min(16));
                data.drain(at..at + count);
            }
            5 if len > 0 => {
                // Copy a chunk elsewhere (nested structures, repeated fields).
                let from = rng.below(len);
                let count = 1 + rng.below((len - from).min(64));
                let chunk = data[from..from + count].to_vec();
                let at = rng.below(len + 1);
                data.splice(at..at, chunk);
            }
            6 | 7 if !self.dictionary.is_empty() => {
                let token = &self.dictionary[rng.below(self.dictionary.len())];
                let at = rng.below(len + 1);
                if rng.below(2) == 0 || at + token.len() > len {
                    data.splice(at..at, token.iter().copied());
                } else {
                    data[at..at + token.len()].copy_from_slice(token);
                }
            }
            8 => {
                // Splice: a prefix of this input, the suffix of another.
                let other = &pool[rng.below(pool.len())];
                let cut = rng.below(len + 1);
                let from = rng.below(other.len() + 1);
                data.truncate(cut);
                data.extend_from_slice(&other[from..]);
            }
            9 if len > 0 => data.truncate(rng.below(len)),
            10 if len > 0 => {
                // Nudge a byte: length prefixes and varints live on small steps.
                let at = rng.below(len);
                let delta = 1 + rng.below(4) as u8;
                data[at] = if rng.below(2) == 0 {
                    data[at].wrapping_add(delta)
                } else {
                    data[at].wrapping_sub(delta)
                };
            }
            11 if len > 0 => {
                // Repeat a chunk many times: deep nesting, long lists.
                let from = rng.below(len);
                let count = 1 + rng.below((len - from).min(16));
                let chunk = data[from..from + count].to_vec();
                let times = 2 + rng.below(64);
                let at = from + count;
                let repeated: Vec<u8> = chunk
                    .iter()
                    .copied()
                    .cycle()
                    .take(chunk.len() * times)
                    .collect();
                data.splice(at..at, repeated);
            }
            _ => {
                let at = rng.below(len + 1);
                data.insert(at, INTERESTING[rng.below(INTERESTING.len())]);
            }
        }
    }
}

/// The text of a panic payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

/// The input as an escaped byte string, cut after 512 bytes.
fn preview(input: &[u8]) -> String {
    let shown = &input[..input.len().min(512)];
    let mut text = String::from("b\"");
    text.extend(
        shown
            .iter()
            .flat_map(|b| std::ascii::escape_default(*b).map(char::from)),
    );
    text.push('"');
    if shown.len() < input.len() {
        text.push_str("...");
    }
    text
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// SplitMix64: small, fast and good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `bound` (0 when `bound` is 0).
    fn below(&mut self, bound: usize) -> usize {
        if bound == 0 {
            0
        } else {
            (self.next() % bound as u64) as usize
        }
    }

    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutants_stay_within_the_length_limit_and_differ_from_their_seeds() {
        let fuzzer = Fuzzer::new("limits")
            .seed(b"{\"a\":[1,2,3]}".to_vec())
            .dictionary(["$patch", "null"])
            .max_len(64);
        let mut rng = Rng::new(7);
        let pool = fuzzer.seeds.clone();
        let mutants: Vec<Vec<u8>> = (0..2000).map(|_| fuzzer.mutant(&mut rng, &pool)).collect();
        assert!(mutants.iter().all(|m| m.len() <= 64));
        let changed = mutants.iter().filter(|m| **m != pool[0]).count();
        assert!(changed > 1900, "only {changed} of 2000 mutants differ");
    }

    fn settings(crash_dir: PathBuf) -> Settings {
        Settings {
            budget: Duration::from_millis(100),
            random_seed: 1,
            replay: None,
            crash_dir,
            slow: Duration::from_secs(5),
        }
    }

    #[test]
    fn a_panicking_target_fails_the_run_and_its_input_is_saved() {
        let dir = std::env::temp_dir().join(format!("kargo-fuzz-selftest-{}", std::process::id()));
        let settings = settings(dir.clone());
        let fuzzer = Fuzzer::new("selftest");
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
            fuzzer.execute(
                &settings,
                &|data: &[u8]| assert!(data != b"boom", "found it"),
                b"boom",
                7,
            )
        }));
        let message = panic_message(outcome.expect_err("the run fails").as_ref());
        assert!(
            message.contains("failed after 7 executions: found it"),
            "{message}"
        );
        let saved = dir.join(format!("crash-{:016x}", fnv1a(b"boom")));
        assert!(message.contains(&saved.display().to_string()), "{message}");
        assert_eq!(std::fs::read(&saved).expect("saved"), b"boom");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn seeds_run_first_and_the_run_counts_every_execution() {
        let seen = std::cell::RefCell::new(Vec::new());
        let report = Fuzzer::new("count")
            .seed(b"one".to_vec())
            .seed(b"two".to_vec())
            .run_with(&settings(std::env::temp_dir()), |data| {
                seen.borrow_mut().push(data.to_vec())
            });
        let seen = seen.into_inner();
        assert_eq!(&seen[..2], &[b"one".to_vec(), b"two".to_vec()]);
        assert_eq!(report.executions, seen.len() as u64);
        assert_eq!(report.seeds, 2);
    }
}

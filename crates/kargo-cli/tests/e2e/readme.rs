//! Issue 19: the README's quick start and "your first service account", run as written.
//!
//! The commands are read from `README.md` itself, so they cannot drift from what is tested. Every
//! ```` ```sh ```` block of the README follows a marker comment that says what the test does with
//! it:
//!
//! - `<!-- readme-test: skip (why) -->`: not run (installing `kargo`, the test suite itself);
//! - `<!-- readme-test: server -->`: started in the background, as in a terminal of its own; the
//!   test waits for `kargo server listening on URL`;
//! - `<!-- readme-test: run -->`: run by `bash -eu -o pipefail`, which must exit 0; a ```` ```text
//!   ```` block after it marked `<!-- readme-test: output -->` is its exact standard output, and
//!   `<!-- readme-test: run printing "TEXT" -->` asks for `TEXT` in it (for output that varies);
//! - `<!-- readme-test: fails "TEXT" -->`: must exit non-zero with `TEXT` on standard error.
//!
//! The blocks run one after the other as in one terminal: each starts in the directory the one
//! before it ended in (shell variables do not carry over). What the test changes, and only this:
//! `HOME` is a temporary directory (so `~/kargo-quickstart` and `~/.config/kargo` are the test's
//! own), `PATH` starts with a directory holding the `kargo` binary under test (what step 1's
//! install does), every `KARGO_*` variable and `KUBECONFIG` are cleared, the server command gets
//! `--address 127.0.0.1:0` (a free port) appended, and `https://127.0.0.1:8443` in the other
//! blocks becomes the address it printed.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DEFAULT_URL: &str = "https://127.0.0.1:8443";

/// What the test does with a block.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Marker {
    Skip,
    Server,
    /// Run, and the text its standard output must contain, if any.
    Run(Option<String>),
    Fails(String),
    Output,
}

/// A fenced block of the README and its marker.
#[derive(Debug, Clone)]
struct Block {
    marker: Marker,
    language: String,
    text: String,
    /// 1-based line of the opening fence, for messages.
    line: usize,
}

fn parse_marker(comment: &str) -> Marker {
    let body = comment.trim();
    if body.starts_with("skip") {
        Marker::Skip
    } else if body == "server" {
        Marker::Server
    } else if body == "run" {
        Marker::Run(None)
    } else if let Some(text) = body.strip_prefix("run printing ") {
        Marker::Run(Some(text.trim().trim_matches('"').to_owned()))
    } else if body == "output" {
        Marker::Output
    } else if let Some(text) = body.strip_prefix("fails ") {
        Marker::Fails(text.trim().trim_matches('"').to_owned())
    } else {
        panic!("unknown readme-test marker {comment:?}")
    }
}

/// Every fenced block that follows a marker; panics on an `sh` block without one, so a new
/// command in the README cannot go untested by accident.
fn blocks(readme: &str) -> Vec<Block> {
    let lines: Vec<&str> = readme.lines().collect();
    let mut out = Vec::new();
    let mut marker: Option<Marker> = None;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        if let Some(rest) = line
            .strip_prefix("<!-- readme-test:")
            .and_then(|r| r.strip_suffix("-->"))
        {
            marker = Some(parse_marker(rest));
        } else if let Some(language) = line.strip_prefix("```").filter(|l| !l.is_empty()) {
            let start = i + 1;
            let mut end = start;
            while end < lines.len() && lines[end].trim() != "```" {
                end += 1;
            }
            let text = lines[start..end].join("\n") + "\n";
            match marker.take() {
                Some(marker) => out.push(Block {
                    marker,
                    language: language.to_owned(),
                    text,
                    line: start,
                }),
                None => assert!(
                    language != "sh",
                    "README.md line {start}: an sh block without a readme-test marker"
                ),
            }
            i = end;
        } else if !line.is_empty() {
            // A marker applies to the block right after it (blank lines aside).
            assert!(
                marker.is_none(),
                "README.md line {}: a readme-test marker not followed by a block",
                i + 1
            );
        }
        i += 1;
    }
    out
}

/// The shell the blocks run in: the test's HOME and PATH, nothing of the user's.
struct Shell {
    home: tempfile::TempDir,
    bin: PathBuf,
    cwd: PathBuf,
    url: Option<String>,
}

/// What a block printed and how it exited.
struct Ran {
    stdout: String,
    stderr: String,
    code: i32,
}

impl Shell {
    fn new() -> Shell {
        let home = tempfile::tempdir().expect("tempdir");
        let bin = home.path().join(".test-bin");
        std::fs::create_dir_all(&bin).expect("bin dir");
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_kargo"), bin.join("kargo"))
            .expect("symlink kargo");
        let cwd = home.path().to_owned();
        Shell {
            home,
            bin,
            cwd,
            url: None,
        }
    }

    fn bash(&self, script: &str) -> Command {
        let mut cmd = Command::new("bash");
        cmd.args(["-eu", "-o", "pipefail", "-c", script])
            .current_dir(&self.cwd);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("KARGO_") {
                cmd.env_remove(&key);
            }
        }
        let path = std::env::var("PATH").unwrap_or_default();
        cmd.env_remove("KUBECONFIG")
            .env_remove("XDG_CONFIG_HOME")
            .env("HOME", self.home.path())
            .env("PATH", format!("{}:{path}", self.bin.display()))
            .stdin(Stdio::null());
        cmd
    }

    /// The block's text with the test's one substitution (the server's address).
    fn script(&self, block: &Block) -> String {
        match &self.url {
            Some(url) => block.text.replace(DEFAULT_URL, url),
            None => block.text.clone(),
        }
    }

    /// Runs a block to its end; the directory it ends in is where the next one starts.
    fn run(&mut self, block: &Block) -> Ran {
        let cwd_file = self.home.path().join(".test-cwd");
        let script = format!("{}\npwd > {}\n", self.script(block), shell_quote(&cwd_file));
        let out = self
            .bash(&script)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .expect("bash runs");
        let ran = Ran {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            code: out.status.code().unwrap_or(-1),
        };
        if ran.code == 0 {
            let cwd = std::fs::read_to_string(&cwd_file).expect("the block's directory");
            self.cwd = PathBuf::from(cwd.trim_end());
        }
        ran
    }

    /// Starts the server block in its own process group, and waits for its address.
    fn start_server(&mut self, block: &Block) -> ServerProcess {
        let script: String = block
            .text
            .lines()
            .map(|line| match line.trim_end().strip_suffix("kargo server") {
                Some(_) => format!("{} --address 127.0.0.1:0\n", line.trim_end()),
                None => format!("{line}\n"),
            })
            .collect();
        assert!(
            script.contains("kargo server --address 127.0.0.1:0"),
            "README.md line {}: the server block does not end a line with `kargo server`",
            block.line
        );
        let log = self.home.path().join(".test-server.log");
        let mut child = self
            .bash(&script)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .process_group(0)
            .spawn()
            .expect("bash runs");
        let stdout = child.stdout.take().expect("stdout");
        let server = ServerProcess { child, log };
        let mut lines = BufReader::new(stdout).lines();
        let deadline = Instant::now() + Duration::from_secs(60);
        let url = loop {
            assert!(
                Instant::now() < deadline,
                "the server did not start in time"
            );
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(url) = line.strip_prefix("kargo server listening on ") {
                        break url.trim().to_owned();
                    }
                }
                _ => panic!(
                    "the README's server exited before listening:\n{}",
                    server.log()
                ),
            }
        };
        std::thread::spawn(move || for _ in lines {});
        self.url = Some(url);
        server
    }
}

/// The server block's shell and the server under it.
struct ServerProcess {
    child: Child,
    log: PathBuf,
}

impl ServerProcess {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // The group this test started: bash and the server under it.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}

fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

fn readme() -> String {
    let path = format!("{}/../../README.md", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_readme_marks_every_shell_block_and_installs_with_the_lock_file() {
    let blocks = blocks(&readme());
    let install = blocks
        .iter()
        .find(|b| b.text.contains("cargo install"))
        .expect("an install command");
    assert_eq!(
        install.text, "cargo install --locked --path crates/kargo-cli\n",
        "the install command changed: check it by hand, then update this test"
    );
    let build = blocks
        .iter()
        .find(|b| b.text.contains("cargo build"))
        .expect("a build-in-place command");
    assert_eq!(
        build.text,
        "cargo build --release --locked -p kargo-cli\nexport PATH=\"$PWD/target/release:$PATH\"\n",
        "the build command changed: check it by hand, then update this test"
    );
    assert!(
        env!("CARGO_BIN_EXE_kargo").ends_with("/kargo"),
        "the binary is named kargo, as the README's commands call it"
    );
    assert!(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("Cargo.toml")
            .is_file()
            && Path::new(&format!("{}/../../Cargo.lock", env!("CARGO_MANIFEST_DIR"))).is_file(),
        "crates/kargo-cli and Cargo.lock are where the install command says"
    );
    let servers = blocks.iter().filter(|b| b.marker == Marker::Server).count();
    assert_eq!(servers, 1, "one server block");
    for (i, block) in blocks.iter().enumerate() {
        if block.marker == Marker::Output {
            assert!(
                i > 0 && matches!(blocks[i - 1].marker, Marker::Run(_)),
                "README.md line {}: an output block must follow a run block",
                block.line
            );
        } else {
            assert_eq!(block.language, "sh", "README.md line {}", block.line);
        }
    }
}

#[test]
fn the_readme_quick_start_and_first_service_account_work_as_written() {
    let blocks = blocks(&readme());
    let mut shell = Shell::new();
    let mut server: Option<ServerProcess> = None;
    let mut last: Option<(usize, Ran)> = None;
    let log = |server: &Option<ServerProcess>| server.as_ref().map(ServerProcess::log);
    for block in &blocks {
        let script = shell.script(block);
        match &block.marker {
            Marker::Skip => {}
            Marker::Server => server = Some(shell.start_server(block)),
            Marker::Run(printing) => {
                let ran = shell.run(block);
                let printed = printing
                    .as_ref()
                    .is_none_or(|text| ran.stdout.contains(text.as_str()));
                assert!(
                    ran.code == 0 && printed,
                    "README.md line {}: exited {} (expected 0, printing {printing:?})\n{script}--- stdout ---\n{}--- stderr ---\n{}--- server ---\n{:?}",
                    block.line,
                    ran.code,
                    ran.stdout,
                    ran.stderr,
                    log(&server)
                );
                last = Some((block.line, ran));
            }
            Marker::Output => {
                let (line, ran) = last.take().expect("an output block after a run block");
                assert_eq!(
                    ran.stdout, block.text,
                    "README.md line {line}: the output differs from the README's (line {})",
                    block.line
                );
            }
            Marker::Fails(expected) => {
                let ran = shell.run(block);
                assert!(
                    ran.code != 0 && ran.stderr.contains(expected.as_str()),
                    "README.md line {}: expected a failure saying {expected:?}\n{script}exited {}\n--- stdout ---\n{}--- stderr ---\n{}",
                    block.line,
                    ran.code,
                    ran.stdout,
                    ran.stderr
                );
            }
        }
    }
    assert!(server.is_some(), "the README starts no server");
    // What the walk-through left: the project and its role, no account.
    let admin_config = shell.home.path().join(".config/kargo/config");
    assert!(
        admin_config.is_file(),
        "kargo login wrote ~/.config/kargo/config"
    );
    let mut check = shell.bash("kargo get serviceaccounts --project my-project -o name");
    let out = check.output().expect("kargo runs");
    assert_eq!(
        (
            String::from_utf8_lossy(&out.stdout).as_ref(),
            out.status.code()
        ),
        ("", Some(0)),
        "the walk-through deletes its ServiceAccount"
    );
}

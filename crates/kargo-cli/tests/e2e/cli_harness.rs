//! Runs the real `kargo` CLI in isolation: each [`Kargo`] has its own temporary `HOME` (and
//! `XDG_CONFIG_HOME`), with every `KARGO_*` variable and `KUBECONFIG` cleared, so no test sees the
//! user's configuration or another test's. Assertions print expected and actual output.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tempfile::TempDir;

use crate::harness::{ADMIN_PASSWORD, Server};

/// One user of the CLI: a home directory with its own configuration file.
pub struct Kargo {
    home: TempDir,
    env: Vec<(String, String)>,
}

/// What one run of `kargo` printed, and its exit code.
pub struct Out {
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// The exit code (-1 when killed by a signal).
    pub code: i32,
    command: String,
}

impl Out {
    fn show(&self) -> String {
        format!(
            "`{}` exited {}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.command, self.code, self.stdout, self.stderr
        )
    }

    /// Asserts exit code 0, nothing on stderr, and exactly `expected` on stdout.
    #[track_caller]
    pub fn prints(&self, expected: &str) {
        assert!(
            self.code == 0 && self.stdout == expected && self.stderr.is_empty(),
            "expected exit 0 with stdout:\n{expected}\n--- but ---\n{}",
            self.show()
        );
    }

    /// Asserts exit code 0 and returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "expected success\n{}", self.show());
        &self.stdout
    }

    /// Asserts exit code 1, nothing on stdout and exactly one line `Error: <message>` on stderr.
    #[track_caller]
    pub fn fails_with(&self, message: &str) {
        let expected = format!("Error: {message}\n");
        assert!(
            self.code == 1 && self.stdout.is_empty() && self.stderr == expected,
            "expected exit 1 with stderr:\n{expected}--- but ---\n{}",
            self.show()
        );
    }

    /// Asserts exit code 1 and one `Error: ` line starting with `prefix`; returns the line.
    #[track_caller]
    pub fn fails_starting_with(&self, prefix: &str) -> &str {
        let line = self.stderr.strip_suffix('\n').unwrap_or(&self.stderr);
        assert!(
            self.code == 1
                && self.stdout.is_empty()
                && !line.contains('\n')
                && line.starts_with(&format!("Error: {prefix}")),
            "expected exit 1 with one line starting `Error: {prefix}`\n--- but ---\n{}",
            self.show()
        );
        line
    }
}

impl Kargo {
    /// A user with an empty home directory.
    pub fn new() -> Kargo {
        let home = tempfile::tempdir().expect("tempdir");
        Kargo {
            home,
            env: Vec::new(),
        }
    }

    /// A user logged in to `server` as the admin, trusting its CA.
    pub fn logged_in(server: &Server) -> Kargo {
        let kargo = Kargo::new();
        kargo.login_as_admin(server).prints("");
        kargo
    }

    /// Runs `kargo login URL --admin --password … --certificate-authority CA` against `server`.
    pub fn login_as_admin(&self, server: &Server) -> Out {
        let ca = server.ca();
        self.run(&[
            "login",
            &server.url,
            "--admin",
            "--password",
            ADMIN_PASSWORD,
            "--certificate-authority",
            ca.to_str().expect("CA path"),
        ])
    }

    /// A user whose configuration file is `config`'s with `bearerToken` replaced by `token`:
    /// what the guide tells a CI job to do.
    pub fn with_token(config: &Kargo, token: &str) -> Kargo {
        let kargo = Kargo::new();
        let text: String = config
            .config_text()
            .lines()
            .map(|line| {
                if line.starts_with("bearerToken:") {
                    format!("bearerToken: {token}\n")
                } else {
                    format!("{line}\n")
                }
            })
            .collect();
        kargo.write_config(&text);
        kargo
    }

    /// Sets an environment variable for every later run.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.push((key.to_owned(), value.to_owned()));
    }

    /// The home directory.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// `$XDG_CONFIG_HOME/kargo/config`.
    pub fn config_path(&self) -> PathBuf {
        self.home
            .path()
            .join(".config")
            .join("kargo")
            .join("config")
    }

    /// The configuration file's text (empty when there is none).
    pub fn config_text(&self) -> String {
        std::fs::read_to_string(self.config_path()).unwrap_or_default()
    }

    /// Writes the configuration file by hand, as the guide tells a CI job to.
    pub fn write_config(&self, text: &str) {
        let path = self.config_path();
        std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
        std::fs::write(path, text).expect("write config");
    }

    fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(args);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("KARGO_") {
                cmd.env_remove(&key);
            }
        }
        cmd.env_remove("KUBECONFIG")
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path().join(".config"))
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Runs `kargo ARGS...` and waits for it.
    pub fn run(&self, args: &[&str]) -> Out {
        let out = self
            .command(env!("CARGO_BIN_EXE_kargo"), args)
            .output()
            .expect("kargo runs");
        Out {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            code: out.status.code().unwrap_or(-1),
            command: format!("kargo {}", args.join(" ")),
        }
    }

    /// Starts `kargo ARGS...` without waiting for it (a `kargo get -w`), its output read line
    /// by line as it comes.
    pub fn start(&self, args: &[&str]) -> Running {
        let mut child = self
            .command(env!("CARGO_BIN_EXE_kargo"), args)
            .spawn()
            .expect("kargo runs");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead as _;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
            command: format!("kargo {}", args.join(" ")),
        }
    }

    /// Runs `kargo ARGS...` with `input` on its standard input.
    pub fn run_with_input(&self, args: &[&str], input: &str) -> Out {
        use std::io::Write as _;
        let mut child = self
            .command(env!("CARGO_BIN_EXE_kargo"), args)
            .stdin(Stdio::piped())
            .spawn()
            .expect("kargo runs");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(input.as_bytes()).expect("write stdin");
        drop(stdin);
        let out = child.wait_with_output().expect("kargo output");
        Out {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            code: out.status.code().unwrap_or(-1),
            command: format!("kargo {} < input", args.join(" ")),
        }
    }

    /// Runs another program (a shell completing `kargo`) as this user: its `HOME` and
    /// configuration, no `KARGO_*` variable of the test's own environment.
    pub fn run_program(&self, program: &str, args: &[&str]) -> Out {
        let out = self
            .command(program, args)
            .output()
            .unwrap_or_else(|e| panic!("{program} must be installed (scripts/test.sh): {e}"));
        Out {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            code: out.status.code().unwrap_or(-1),
            command: format!("{program} {}", args.join(" ")),
        }
    }

    /// Runs `kargo ARGS...` in a new session, without a controlling terminal.
    pub fn run_without_terminal(&self, args: &[&str]) -> Out {
        let mut all = vec!["--wait", env!("CARGO_BIN_EXE_kargo")];
        all.extend_from_slice(args);
        let out = self.command("setsid", &all).output().expect("setsid runs");
        Out {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            code: out.status.code().unwrap_or(-1),
            command: format!("setsid kargo {}", args.join(" ")),
        }
    }

    /// Runs `kargo ARGS...` on a pseudo-terminal (Python's `pty`), typing `input` once `prompt`
    /// appears and echo is off; returns everything the terminal showed, and the exit code.
    pub fn run_on_terminal(&self, args: &[&str], prompt: &str, input: &str) -> Out {
        const SCRIPT: &str = r#"
import os, pty, sys, termios, time
prompt, text, argv = sys.argv[1].encode(), sys.argv[2].encode(), sys.argv[3:]
pid, fd = pty.fork()
if pid == 0:
    os.execv(argv[0], argv)
seen = b""
deadline = time.time() + 30
while prompt not in seen and time.time() < deadline:
    try:
        chunk = os.read(fd, 1024)
    except OSError:
        break
    if not chunk:
        break
    seen += chunk
# Type only once the program has turned echo off (a password prompt must); if it never does,
# typing anyway shows the echo in the output.
while time.time() < deadline and termios.tcgetattr(fd)[3] & termios.ECHO:
    time.sleep(0.01)
os.write(fd, text + b"\n")
while True:
    try:
        chunk = os.read(fd, 1024)
    except OSError:
        break
    if not chunk:
        break
    seen += chunk
_, status = os.waitpid(pid, 0)
sys.stdout.write(seen.decode("utf-8", "replace"))
sys.exit(os.waitstatus_to_exitcode(status))
"#;
        let mut all = vec!["-c", SCRIPT, prompt, input, env!("CARGO_BIN_EXE_kargo")];
        all.extend_from_slice(args);
        let out = self
            .command("python3", &all)
            .output()
            .expect("python3 runs");
        Out {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            code: out.status.code().unwrap_or(-1),
            command: format!("(on a terminal) kargo {}", args.join(" ")),
        }
    }
}

/// A `kargo` still running (see [`Kargo::start`]); killed when dropped.
pub struct Running {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
    command: String,
}

impl Running {
    /// The next line it prints, within 20 seconds, else the test fails showing what it printed
    /// (stdout and stderr).
    #[track_caller]
    pub fn next_line(&mut self) -> String {
        match self.lines.recv_timeout(std::time::Duration::from_secs(20)) {
            Ok(line) => {
                self.seen.push(line.clone());
                line
            }
            Err(_) => {
                let _ = self.child.kill();
                let mut stderr = String::new();
                if let Some(mut err) = self.child.stderr.take() {
                    use std::io::Read as _;
                    let _ = err.read_to_string(&mut stderr);
                }
                panic!(
                    "`{}` printed no further line within 20s\n--- stdout so far ---\n{}\n--- stderr ---\n{stderr}",
                    self.command,
                    self.seen.join("\n")
                );
            }
        }
    }

    /// Whether it prints nothing more for `wait`.
    pub fn stays_quiet(&mut self, wait: std::time::Duration) -> Result<(), String> {
        match self.lines.recv_timeout(wait) {
            Ok(line) => Err(line),
            Err(_) => Ok(()),
        }
    }

    /// Waits for it to end by itself: its exit code and standard error.
    pub fn finish(mut self) -> (i32, String) {
        let status = self.child.wait().expect("kargo ends");
        let mut stderr = String::new();
        if let Some(mut err) = self.child.stderr.take() {
            use std::io::Read as _;
            let _ = err.read_to_string(&mut stderr);
        }
        (status.code().unwrap_or(-1), stderr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The token of `kargo create serviceaccounttoken`'s banner, checking the banner is exactly the
/// guide's.
#[track_caller]
pub fn token_from_banner(out: &Out) -> String {
    let token = out
        .ok()
        .lines()
        .find_map(|l| l.strip_prefix("Token: "))
        .unwrap_or_else(|| panic!("no token in:\n{}", out.stdout))
        .to_owned();
    out.prints(&format!(
        "Token created successfully!\n\nIMPORTANT: Save this token securely. It will not be shown again.\n\nToken: {token}\n"
    ));
    assert!(token.starts_with("eyJ"), "not a JWT: {token}");
    token
}

/// Replaces the ages at the ends of table rows (`30s`, `5m30s`, `2d`, `<unknown>`) with `AGE`,
/// so tables can be compared byte for byte.
pub fn mask_ages(table: &str) -> String {
    let masked: String = table
        .lines()
        .map(|line| {
            let trimmed = line.trim_end();
            let start = trimmed.rfind(' ').map_or(0, |i| i + 1);
            let last = &trimmed[start..];
            if is_age(last) && start > 0 {
                format!("{}AGE", &trimmed[..start])
            } else {
                line.to_owned()
            }
        })
        .map(|line| line + "\n")
        .collect();
    if table.ends_with('\n') {
        masked
    } else {
        masked.trim_end_matches('\n').to_owned()
    }
}

fn is_age(cell: &str) -> bool {
    let mut digits = false;
    let mut units = 0;
    for c in cell.chars() {
        if c.is_ascii_digit() {
            digits = true;
        } else if "smhdy".contains(c) && digits {
            units += 1;
            digits = false;
        } else {
            return false;
        }
    }
    units > 0 && !digits
}

/// A ServiceAccount `account` in `project` (which `admin` made), granted `role`, and the token
/// of its new token `<account>-token`.
pub fn account_with_role(admin: &Kargo, project: &str, account: &str, role: &str) -> String {
    admin.run(&["create", "sa", "-p", project, account]).ok();
    admin
        .run(&[
            "grant",
            "-p",
            project,
            "--role",
            role,
            "--service-account",
            account,
        ])
        .ok();
    token_from_banner(&admin.run(&[
        "create",
        "sat",
        "-p",
        project,
        "--service-account",
        account,
        &format!("{account}-token"),
    ]))
}

/// A logged-in admin who made `project`, a ServiceAccount `ci` in it that may read
/// (`kargo-viewer`), and `ci`'s token `ci-token`.
pub fn viewer_with_token(server: &Server, project: &str) -> (Kargo, String) {
    let admin = Kargo::logged_in(server);
    admin.run(&["create", "project", project]).ok();
    let token = account_with_role(&admin, project, "ci", "kargo-viewer");
    (admin, token)
}

//! Records which commit this binary is built from, for `/version` and `kargo version`:
//! `KARGO_GIT_COMMIT` (`git rev-parse HEAD`) and `KARGO_BUILD_DATE` (that commit's date, UTC,
//! RFC 3339, so that a rebuild of one commit reports the same date). Both are empty when git or
//! the repository is missing (a build from a source archive); the build never fails for that.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let commit = git(&["rev-parse", "HEAD"]).unwrap_or_default();
    let date = if commit.is_empty() {
        String::new()
    } else {
        git(&[
            "show",
            "-s",
            "--format=%cd",
            "--date=format-local:%Y-%m-%dT%H:%M:%SZ",
            "HEAD",
        ])
        .unwrap_or_default()
    };
    println!("cargo:rustc-env=KARGO_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=KARGO_BUILD_DATE={date}");
    // Run again when HEAD moves (a commit, a checkout), not on every change of a source file.
    for path in ["HEAD", "packed-refs"] {
        rerun_if(git(&["rev-parse", "--git-path", path]));
    }
    if let Some(reference) = git(&["symbolic-ref", "-q", "HEAD"]) {
        rerun_if(git(&["rev-parse", "--git-path", &reference]));
    }
    println!("cargo:rerun-if-changed=build.rs");
}

/// What a git command prints (trimmed), or `None` if it fails or git is missing.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .env("TZ", "UTC")
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !text.trim().is_empty()).then(|| text.trim().to_owned())
}

fn rerun_if(path: Option<String>) {
    if let Some(path) = path.map(PathBuf::from).filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

//! Which build this is, as the server reports it at `/version` and `kargo version` prints it.
//!
//! `/version` keeps kube-apiserver's `version.Info` shape, so that kubectl and client libraries
//! read it as they read any cluster's: the Kubernetes API level the server speaks
//! ([`KUBE_MINOR`]; kubectl's dispatcher picks its bundled kubectl of that minor, so there is no
//! version-skew warning) with the Kargo version as build metadata, as k3s reports
//! `v1.28.5+k3s1`: `v1.32.0+kargo-0.1.0`. `kargo version` prints the Kargo version itself
//! (`v0.1.0`), read back from that `gitVersion` ([`kargo_version_of`]).

use serde_json::{Value, json};

/// The Kubernetes major version the server reports.
pub const KUBE_MAJOR: &str = "1";

/// The Kubernetes minor version the server reports: the API level it serves.
pub const KUBE_MINOR: &str = "32";

/// What marks the Kargo version in a `gitVersion` (`v1.32.0+kargo-0.1.0`).
const KARGO_MARK: &str = "+kargo-";

/// One build of the `kargo` binary: what its build script found. Empty strings are unknown
/// (a build from a source archive has no git commit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Build {
    /// The crate version (`0.1.0`).
    pub version: &'static str,
    /// The git commit built (40 hex digits), or empty.
    pub git_commit: &'static str,
    /// `clean` or `dirty` when known, else empty.
    pub git_tree_state: &'static str,
    /// When the built commit was made (RFC 3339, UTC), or empty.
    pub build_date: &'static str,
}

impl Build {
    /// A build known only by its version (tests, and builds without git).
    pub const fn unknown() -> Build {
        Build {
            version: env!("CARGO_PKG_VERSION"),
            git_commit: "",
            git_tree_state: "",
            build_date: "",
        }
    }

    /// The Kargo version: `v0.1.0`.
    pub fn kargo_version(&self) -> String {
        format!("v{}", self.version)
    }

    /// The `gitVersion` of `/version`: `v1.32.0+kargo-0.1.0`.
    pub fn kube_git_version(&self) -> String {
        format!("v{KUBE_MAJOR}.{KUBE_MINOR}.0{KARGO_MARK}{}", self.version)
    }

    /// The platform built for, as Go names it (`linux/amd64`).
    pub fn platform() -> String {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        };
        format!("{}/{arch}", std::env::consts::OS)
    }

    /// kube-apiserver's `version.Info`, the body of `GET /version`. `goVersion` is empty: no Go
    /// compiler built this; `compiler` says which did.
    pub fn kube_info(&self) -> Value {
        json!({
            "major": KUBE_MAJOR,
            "minor": KUBE_MINOR,
            "gitVersion": self.kube_git_version(),
            "gitCommit": self.git_commit,
            "gitTreeState": self.git_tree_state,
            "buildDate": self.build_date,
            "goVersion": "",
            "compiler": "rustc",
            "platform": Build::platform(),
        })
    }

    /// Upstream Kargo's `Version` (`kargo version -o json`): `version`, `buildDate`,
    /// `gitCommit`, `gitTreeDirty`, `goVersion`, `compiler`, `platform`.
    pub fn kargo_info(&self) -> Value {
        json!({
            "version": self.kargo_version(),
            "buildDate": self.build_date,
            "gitCommit": self.git_commit,
            "gitTreeDirty": self.git_tree_state == "dirty",
            "goVersion": "",
            "compiler": "rustc",
            "platform": Build::platform(),
        })
    }
}

/// The Kargo version of a server from its `/version` body: `v0.1.0` out of
/// `v1.32.0+kargo-0.1.0`; a server that is not Kargo's gives its `gitVersion` as it is.
pub fn kargo_version_of(kube_info: &Value) -> Option<String> {
    let git_version = kube_info.get("gitVersion")?.as_str()?;
    Some(match git_version.split_once(KARGO_MARK) {
        Some((_, kargo)) if !kargo.is_empty() => format!("v{kargo}"),
        _ => git_version.to_owned(),
    })
}

/// Upstream Kargo's `Version` of a server, from its `/version` body (see [`Build::kargo_info`]).
pub fn kargo_info_of(kube_info: &Value) -> Value {
    let field = |name: &str| kube_info.get(name).cloned().unwrap_or(json!(""));
    json!({
        "version": kargo_version_of(kube_info).unwrap_or_default(),
        "buildDate": field("buildDate"),
        "gitCommit": field("gitCommit"),
        "gitTreeDirty": kube_info.get("gitTreeState").and_then(Value::as_str) == Some("dirty"),
        "goVersion": field("goVersion"),
        "compiler": field("compiler"),
        "platform": field("platform"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUILD: Build = Build {
        version: "0.3.1",
        git_commit: "0123456789abcdef0123456789abcdef01234567",
        git_tree_state: "clean",
        build_date: "2026-12-07T11:00:00Z",
    };

    #[test]
    fn version_keeps_kube_apiservers_shape_with_kargo_as_build_metadata() {
        let info = BUILD.kube_info();
        let mut keys: Vec<&str> = info
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "buildDate",
                "compiler",
                "gitCommit",
                "gitTreeState",
                "gitVersion",
                "goVersion",
                "major",
                "minor",
                "platform"
            ]
        );
        assert_eq!(info["major"], "1");
        assert_eq!(info["minor"], KUBE_MINOR);
        assert_eq!(info["gitVersion"], format!("v1.{KUBE_MINOR}.0+kargo-0.3.1"));
        assert_eq!(info["gitCommit"], BUILD.git_commit);
        assert_eq!(info["buildDate"], BUILD.build_date);
    }

    #[test]
    fn the_kargo_version_reads_back_from_git_version() {
        assert_eq!(
            kargo_version_of(&BUILD.kube_info()).as_deref(),
            Some("v0.3.1")
        );
        assert_eq!(
            kargo_version_of(&json!({"gitVersion": "v1.31.2"})).as_deref(),
            Some("v1.31.2")
        );
        assert_eq!(kargo_version_of(&json!({})), None);
        let server = kargo_info_of(&BUILD.kube_info());
        assert_eq!(server, BUILD.kargo_info());
        assert_eq!(server["version"], "v0.3.1");
        assert_eq!(server["gitTreeDirty"], false);
    }
}

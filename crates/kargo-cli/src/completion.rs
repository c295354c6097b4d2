//! Shell completion, with names from the server.
//!
//! `kargo completion SHELL` prints a short registration script (clap_complete's dynamic
//! completion). When the shell completes a `kargo` command line, the script runs `kargo` again
//! with [`VAR`] set and the words so far; [`main`](crate) hands such a run to
//! `clap_complete::CompleteEnv`, which completes commands and flags from [`crate::cli`] and
//! calls the completers here for the values that name objects on the server: `--project`,
//! `--service-account`, `--role`, and the NAME arguments of `get`, `describe` and `delete`.
//!
//! A completer reads the whole command line ([`Line`]) for what it cannot see in its own word:
//! the kind (`get sa`), the project (`-p`, else the configured default) and `--system`. It asks
//! the server with the saved login, never renewing or saving a token, and gives up after
//! [`WAIT`]: not logged in, an unreachable server or any error completes nothing, silently.

use std::ffi::OsStr;
use std::sync::mpsc;
use std::time::Duration;

use clap_complete::engine::CompletionCandidate;
use serde_json::Value;

use crate::api::{self, Scope};
use crate::cli::{
    API_TOKEN_ALIASES, PROJECT_ALIASES, ROLE_ALIASES, SERVICE_ACCOUNT_ALIASES, TOKEN_ALIASES,
};
use crate::client::Client;
use crate::config::{ConfigFile, Environment};
use crate::output::Kind;

/// The environment variable that makes a run of `kargo` a completion request.
pub const VAR: &str = "KARGO_COMPLETE";

/// How long a completion waits for the server before offering nothing.
const WAIT: Duration = Duration::from_secs(2);

/// Writes the script that registers `kargo`'s completion in `shell`; it runs this binary.
pub fn write_registration(
    shell: clap_complete::Shell,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let name = shell.to_string();
    let shells = clap_complete::env::Shells::builtins();
    let completer = shells
        .completer(&name)
        .ok_or_else(|| std::io::Error::other(format!("no completion for the shell {name}")))?;
    let binary = std::env::current_exe()
        .ok()
        .and_then(|path| path.to_str().map(str::to_owned))
        .unwrap_or_else(|| "kargo".to_owned());
    completer.write_registration(VAR, "kargo", "kargo", &binary, out)
}

/// Project names (`--project`).
pub fn projects(current: &OsStr) -> Vec<CompletionCandidate> {
    offer(Kind::Project, current)
}

/// Kargo ServiceAccount names of the project on the command line (`--service-account`).
pub fn service_accounts(current: &OsStr) -> Vec<CompletionCandidate> {
    offer(Kind::ServiceAccount, current)
}

/// Kargo Role names of the project on the command line (`--role`).
pub fn roles(current: &OsStr) -> Vec<CompletionCandidate> {
    offer(Kind::Role, current)
}

/// Names of the kind the command line names (`kargo get sa <TAB>`).
pub fn names(current: &OsStr) -> Vec<CompletionCandidate> {
    match Line::read(&command_line()).kind {
        Some(kind) => offer(kind, current),
        None => Vec::new(),
    }
}

/// The names of `kind` starting with `current`, sorted.
fn offer(kind: Kind, current: &OsStr) -> Vec<CompletionCandidate> {
    let Some(prefix) = current.to_str() else {
        return Vec::new();
    };
    let line = Line::read(&command_line());
    let (sender, receiver) = mpsc::channel();
    // The request runs on its own thread so that a slow server costs at most `WAIT`: the
    // process exits right after completing, ending the thread if it is still waiting.
    std::thread::spawn(move || {
        let _ = sender.send(fetch(kind, &line));
    });
    let mut names = receiver.recv_timeout(WAIT).unwrap_or_default();
    names.retain(|name| name.starts_with(prefix));
    names.sort();
    names.dedup();
    names.into_iter().map(CompletionCandidate::new).collect()
}

/// The words of the command line being completed: what the shell passed after `--`.
fn command_line() -> Vec<String> {
    std::env::args()
        .skip_while(|arg| arg != "--")
        .skip(1)
        .collect()
}

/// The names of `kind` in the line's scope, from the server; none on any failure.
fn fetch(kind: Kind, line: &Line) -> Vec<String> {
    let Ok(env) = Environment::from_process() else {
        return Vec::new();
    };
    let Ok(path) = env.config_path() else {
        return Vec::new();
    };
    let Ok(config) = ConfigFile::load(path) else {
        return Vec::new();
    };
    let Ok(Some(connection)) = config.connection(&env, false) else {
        return Vec::new();
    };
    let scope = if line.system {
        Some(Scope::System)
    } else {
        config.project(line.project.as_deref()).map(Scope::Project)
    };
    let request = match (kind, &scope) {
        (Kind::Project, _) => api::list_projects(),
        (_, None) => return Vec::new(),
        (Kind::ServiceAccount, Some(scope)) => api::list_service_accounts(scope),
        (Kind::ServiceAccountToken, Some(scope)) => api::list_tokens(scope, None),
        (Kind::ApiToken, Some(scope)) => api::list_api_tokens(scope, None),
        (Kind::Role, Some(scope)) => api::list_roles(scope),
    };
    let Ok(client) = Client::new(connection) else {
        return Vec::new();
    };
    client
        .send(&request)
        .map(|answer| object_names(&answer))
        .unwrap_or_default()
}

/// `metadata.name` of each object of a list answer: a JSON array (roles) or a list's `items`.
fn object_names(answer: &Value) -> Vec<String> {
    let items = match answer {
        Value::Array(items) => items,
        Value::Object(list) => match list.get("items") {
            Some(Value::Array(items)) => items,
            _ => return Vec::new(),
        },
        _ => return Vec::new(),
    };
    items
        .iter()
        .filter_map(|item| item.pointer("/metadata/name")?.as_str())
        .map(str::to_owned)
        .collect()
}

/// What a command line says about the names to offer.
#[derive(Debug, Default, PartialEq, Eq)]
struct Line {
    /// The kind after `get`, `describe`, `delete`, `disable`, `enable` or `rotate`.
    kind: Option<Kind>,
    /// `--project`/`-p`, the last one given.
    project: Option<String>,
    /// `--system`.
    system: bool,
}

impl Line {
    /// Reads the words of a command line (`kargo get sa -p my-project ...`).
    fn read(words: &[String]) -> Line {
        let mut line = Line::default();
        let mut words = words.iter().skip(1).map(String::as_str).peekable();
        let mut verb_seen = false;
        while let Some(word) = words.next() {
            if word == "--" {
                break;
            }
            match word {
                "--system" => line.system = true,
                "-p" | "--project" => {
                    if let Some(value) = words.next_if(|next| !next.starts_with('-')) {
                        line.project = Some(value.to_owned());
                    }
                }
                _ if word.starts_with("--project=") => {
                    line.project = Some(word["--project=".len()..].to_owned());
                }
                _ if word.starts_with("-p") && !word.starts_with("--") => {
                    let value = word[2..].strip_prefix('=').unwrap_or(&word[2..]);
                    line.project = Some(value.to_owned());
                }
                "get" | "describe" | "delete" | "disable" | "enable" | "rotate" if !verb_seen => {
                    verb_seen = true
                }
                _ if verb_seen && line.kind.is_none() && !word.starts_with('-') => {
                    line.kind = kind_named(word);
                }
                _ => {}
            }
        }
        line.project = line.project.filter(|p| !p.trim().is_empty());
        line
    }
}

/// The kind a word of `get`/`describe`/`delete` names (any of its aliases).
fn kind_named(word: &str) -> Option<Kind> {
    let named = |singular: &str, aliases: &[&str]| word == singular || aliases.contains(&word);
    if named("project", &PROJECT_ALIASES) {
        Some(Kind::Project)
    } else if named("serviceaccount", &SERVICE_ACCOUNT_ALIASES) {
        Some(Kind::ServiceAccount)
    } else if named("serviceaccounttoken", &TOKEN_ALIASES) {
        Some(Kind::ServiceAccountToken)
    } else if named("role", &ROLE_ALIASES) {
        Some(Kind::Role)
    } else if named("token", &API_TOKEN_ALIASES) {
        Some(Kind::ApiToken)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(line: &str) -> Line {
        let words: Vec<String> = line.split(' ').map(str::to_owned).collect();
        Line::read(&words)
    }

    #[test]
    fn the_kind_is_the_word_after_the_verb_in_any_spelling() {
        assert_eq!(read("kargo get sa ").kind, Some(Kind::ServiceAccount));
        assert_eq!(
            read("kargo describe sats x").kind,
            Some(Kind::ServiceAccountToken)
        );
        assert_eq!(read("kargo delete roles ").kind, Some(Kind::Role));
        assert_eq!(read("kargo get tokens ").kind, Some(Kind::ApiToken));
        assert_eq!(
            read("kargo delete token --system ").kind,
            Some(Kind::ApiToken)
        );
        assert_eq!(read("kargo get -p a projects ").kind, Some(Kind::Project));
        assert_eq!(read("kargo get nothing ").kind, None);
        assert_eq!(read("kargo grant --role ").kind, None);
    }

    #[test]
    fn the_project_is_read_in_every_flag_form_and_the_last_wins() {
        for line in [
            "kargo get sa -p a ",
            "kargo get sa --project a ",
            "kargo get sa --project=a ",
            "kargo get sa -pa ",
            "kargo get sa -p=a ",
            "kargo get sa -p b --project a ",
        ] {
            assert_eq!(read(line).project.as_deref(), Some("a"), "{line}");
        }
        assert_eq!(read("kargo get sa -p ").project, None);
        assert_eq!(read("kargo get sa -p --system ").project, None);
        assert!(read("kargo get roles --system ").system);
    }

    #[test]
    fn names_come_from_arrays_and_kubernetes_lists() {
        let list = serde_json::json!({"items": [{"metadata": {"name": "a"}}, {"metadata": {}}]});
        assert_eq!(object_names(&list), ["a"]);
        let array = serde_json::json!([{"metadata": {"name": "r"}}]);
        assert_eq!(object_names(&array), ["r"]);
        assert!(object_names(&serde_json::json!({"kind": "Status"})).is_empty());
    }
}

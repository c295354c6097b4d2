//! Issue 19, item 5: `kargo completion SHELL` completes project, ServiceAccount, token and role
//! names from the server in bash, zsh and fish. Each test sources the script `kargo completion`
//! prints into the real shell and calls the completion the way the shell does on TAB:
//!
//! - bash: `COMP_WORDS`, `COMP_CWORD`, `COMP_LINE` and `COMP_POINT` set, then the function
//!   `complete -p kargo` names, with the command, current and previous words; `COMPREPLY` printed;
//! - zsh: `compinit`, then the function the script `compdef`s, with `words` and `CURRENT` set;
//!   its `_describe` (which can only add matches inside a completion widget) prints them;
//! - fish: `complete -C 'LINE'`, fish's own "what would TAB offer here".
//!
//! A missing shell fails the test (scripts/test.sh installs them).

use std::time::{Duration, Instant};

use crate::cli_harness::{Kargo, account_with_role};
use crate::harness::Server;

const SHELLS: [&str; 3] = ["bash", "zsh", "fish"];

/// The words `shell` offers for the command line `line` (completing its last word, which is
/// empty when `line` ends with a space), sorted; asserts the shell printed nothing on stderr.
fn offered(kargo: &Kargo, shell: &str, line: &str) -> Vec<String> {
    let script = kargo.home().join(format!("kargo.{shell}"));
    let printed = kargo.run(&["completion", shell]);
    std::fs::write(&script, printed.ok()).expect("write the script");
    let script = script.to_str().expect("path");
    let words: Vec<&str> = line.split(' ').collect();
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let current = words.len() - 1;
    let program = match shell {
        "bash" => format!(
            "source '{script}'\n\
             COMP_WORDS=({words})\nCOMP_CWORD={current}\nCOMP_LINE='{line}'\nCOMP_POINT=${{#COMP_LINE}}\n\
             function=$(complete -p kargo | sed -E 's/.* -F ([^ ]+) .*/\\1/')\n\
             \"$function\" kargo {cur} {prev}\n\
             printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            words = quoted.join(" "),
            cur = quoted[current],
            prev = quoted[current - 1],
        ),
        "zsh" => format!(
            "autoload -U compinit && compinit -u -D\n\
             source '{script}'\n\
             _describe() {{ print -rl -- ${{(P)3}} }}\n\
             words=({words})\nCURRENT={position}\n\
             ${{_comps[kargo]}}",
            words = quoted.join(" "),
            position = current + 1,
        ),
        "fish" => format!("source '{script}'\ncomplete -C '{line}'"),
        other => panic!("no such shell {other}"),
    };
    let args: Vec<&str> = match shell {
        "bash" => vec!["--norc", "--noprofile", "-c", &program],
        "zsh" => vec!["-f", "-c", &program],
        _ => vec!["--no-config", "-c", &program],
    };
    let out = kargo.run_program(shell, &args);
    assert!(
        out.code == 0 && out.stderr.is_empty(),
        "{shell} completing {line:?}: exit {}, stderr {:?}",
        out.code,
        out.stderr
    );
    // zsh's entries may be `value:description`, fish's `value<TAB>description`.
    let mut words: Vec<String> = out
        .stdout
        .lines()
        .filter(|w| !w.is_empty())
        .map(|w| w.split(['\t', ':']).next().unwrap_or(w).to_owned())
        .collect();
    words.sort();
    words
}

/// The words `shell` offers for `line`. An empty word is offered the flags too (clap_complete's
/// choice); they are left out unless the word being completed is a flag.
fn names_offered(kargo: &Kargo, shell: &str, line: &str) -> Vec<String> {
    let flag = line.rsplit(' ').next().is_some_and(|w| w.starts_with('-'));
    let mut words = offered(kargo, shell, line);
    words.retain(|w| flag || !w.starts_with('-'));
    words
}

/// Asserts every shell offers `expected` for `line`.
fn offers(kargo: &Kargo, line: &str, expected: &[&str]) {
    for shell in SHELLS {
        assert_eq!(
            names_offered(kargo, shell, line),
            expected,
            "{shell}: {line:?}"
        );
    }
}

#[test]
fn names_from_the_server_complete_in_bash_zsh_and_fish() {
    let server = Server::start();
    let admin = Kargo::logged_in(&server);
    for project in ["proj-a", "proj-b"] {
        admin.run(&["create", "project", project]).ok();
    }
    account_with_role(&admin, "proj-a", "alpha", "kargo-viewer");
    admin.run(&["create", "sa", "-p", "proj-a", "beta"]).ok();
    admin.run(&["create", "sa", "-p", "proj-b", "gamma"]).ok();
    admin
        .run(&["create", "role", "-p", "proj-a", "deployer"])
        .ok();
    admin
        .run(&["create", "role", "-p", "proj-b", "builder"])
        .ok();

    // Projects, after -p/--project and as the names of `kargo get projects`.
    offers(&admin, "kargo get sa -p ", &["proj-a", "proj-b"]);
    offers(
        &admin,
        "kargo describe role --project proj-",
        &["proj-a", "proj-b"],
    );
    offers(
        &admin,
        "kargo get projects proj-a proj-",
        &["proj-a", "proj-b"],
    );
    offers(&admin, "kargo delete project proj-b", &["proj-b"]);

    // ServiceAccounts, tokens and roles of the project on the command line.
    offers(&admin, "kargo get sa -p proj-a ", &["alpha", "beta"]);
    offers(
        &admin,
        "kargo get serviceaccounts --project=proj-b ",
        &["gamma"],
    );
    offers(&admin, "kargo describe sat -p proj-a ", &["alpha-token"]);
    offers(&admin, "kargo delete serviceaccounttoken -p proj-b ", &[]);
    offers(&admin, "kargo delete role -p proj-a dep", &["deployer"]);
    offers(&admin, "kargo get roles -p proj-b b", &["builder"]);

    // --service-account and --role.
    offers(
        &admin,
        "kargo grant -p proj-a --role deployer --service-account ",
        &["alpha", "beta"],
    );
    offers(&admin, "kargo revoke -p proj-a --role dep", &["deployer"]);
    offers(
        &admin,
        "kargo create sat --project proj-b --service-account ",
        &["gamma"],
    );

    // The configured default project, when no --project is given.
    admin.run(&["config", "set-project", "proj-b"]).ok();
    offers(&admin, "kargo get sa ", &["gamma"]);
    offers(&admin, "kargo get sa -p proj-a a", &["alpha"]);

    // Commands and flags still complete.
    offers(&admin, "kargo desc", &["describe"]);
    offers(&admin, "kargo get sa --sys", &["--system"]);
}

#[test]
fn without_a_login_or_a_server_nothing_is_offered_quickly_and_silently() {
    // Not logged in.
    let nobody = Kargo::new();
    offers(&nobody, "kargo get sa -p ", &[]);
    offers(&nobody, "kargo get sa -p proj-a ", &[]);

    // A server that accepts the connection and never answers: given up after 2 s.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = silent.local_addr().expect("address");
    let stranded = Kargo::new();
    stranded.write_config(&format!(
        "apiAddress: https://{address}\nbearerToken: some-token\nproject: proj-a\n"
    ));
    for shell in SHELLS {
        let started = Instant::now();
        assert_eq!(
            names_offered(&stranded, shell, "kargo get sa "),
            Vec::<String>::new(),
            "{shell}"
        );
        let took = started.elapsed();
        assert!(took < Duration::from_secs(6), "{shell} took {took:?}");
    }

    // A server that is gone.
    drop(silent);
    offers(&stranded, "kargo get sa -p ", &[]);
}

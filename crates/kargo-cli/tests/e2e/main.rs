//! End-to-end tests: the real `kargo` binary runs `kargo server`, and real clients (kubectl, the
//! Python `kubernetes` client, the `kargo` CLI) drive it over HTTPS.
//!
//! One test binary; each module covers one client or concern:
//! - `kubectl`: every resource with kubectl, and kube-apiserver's error messages;
//! - `python`: the Python client's CRUD;
//! - `bad_input`: malformed bodies, selectors and patches get 4xx and the server keeps serving;
//! - `request_bounds`: patches, object size and depth, undecodable objects: no request can
//!   freeze, exhaust or brick the server;
//! - `limits`: attacks on the connection and request limits, each with an honest client's p99;
//! - `logs`: `--log-format text|json`, colour only on a terminal, the request id of a 5xx in
//!   its `Status`, the CLI's output and one log line; start-up errors said once;
//! - `health`: `/readyz` and `/livez` on etcd losing and regaining its quorum, a flood of
//!   `/readyz?verbose` against etcd's read count, `kubectl version` and `kargo version`;
//! - `persistence`: restarting keeps objects and resourceVersions keep increasing;
//! - `data_dir`: the data directory private whatever the umask, `--init`, a damaged or foreign
//!   store, one server per directory;
//! - `encryption`: encryption at rest on SQLite and etcd, key rotation, start-up errors;
//! - `tokens`: service-account tokens, RBAC and revocation with kubectl;
//! - `api_tokens`: Kargo Roles' API tokens (upstream's `kargo create token --role`) with the
//!   CLI, kubectl and curl, on SQLite, across a restart and on two replicas (issue 17);
//! - `kargo_rest`: rules of every Kargo REST route (auth, missing project, bad bodies, OpenAPI);
//! - `kargo_projects`, `kargo_accounts`, `kargo_roles`: each Kargo REST route's successes and
//!   errors, with exact messages (`kargo_client` is their client);
//! - `kargo_access`: Kargo tokens with kubectl and the Python client, revocation, escalation,
//!   declarative objects;
//! - `kargo_fuzz`: Schemathesis against the served OpenAPI document;
//! - `openapi`: `/openapi/v3` and `/openapi/v2` with kubectl (`explain`, validation left to the
//!   server, `apply`'s strategic merge) and the Python client;
//! - `abuse`: password and token guessing floods, answered 429 while an honest client (`honest`)
//!   is measured; `sessions`: admin logout, password change, the minimum password length;
//! - `cli_login`: `kargo login`, `logout` and `config`, and the configuration file;
//! - `cli_flags`: command-line mistakes caught before any request, help and completions;
//! - `cli_commands`: every `kargo` command's output and errors against the Kargo REST API;
//! - `cli_apply`: `kargo apply -f` of projects, ServiceAccounts and roles, created, unchanged,
//!   configured and in effect; bad documents named, token Secrets refused;
//! - `cli_completion`: names from the server completed in real bash, zsh and fish (issue 19);
//! - `cli_describe`: `kargo describe` of each kind, never a token's value;
//! - `cli_lists`, `cli_errors`, `cli_token_login`: lists are always lists, errors name what
//!   was typed, logging in with a ServiceAccount token and a CA file path (issue 19);
//! - `cli_token_output`: a new token as a kubeconfig for kubectl and as `KARGO_*` lines (issue
//!   17);
//! - `impersonation`: `kubectl --as`/`--as-group` and `Impersonate-*` headers, allowed and
//!   refused as kube-apiserver does, and the audit log's two users (issue 18);
//! - `client_node`: an `@kubernetes/client-node` informer (tests/node) converging through
//!   writes and a restart, on SQLite and etcd (issue 18);
//! - `server_side_apply`: `kubectl apply --server-side` and the Python client's apply: managed
//!   fields, conflicts, force, removal, `kubectl diff`, every kind family, SQLite and etcd;
//! - `guide`: the ServiceAccounts user guide replayed command by command;
//! - `ui`: the web UI in headless chromium (selenium, `tests/python/ui.py`): sign in, accounts,
//!   roles, grants, a token from the page used with kubectl then deleted, a viewer's view,
//!   axe-core on every page, no external requests; CSP and CSRF checked with curl (issue 20);
//! - `readme`: the README's quick start and first service account, run as written;
//! - `oidc_provider`: the tests' OpenID provider (`oidc`, npm `oidc-provider`) on its own;
//!   `oidc_sso`: people signed in through it, against the server and the CLI; `oidc_bench`
//!   (ignored, `bench/oidc.sh`): their read rate beside a ServiceAccount token's.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli_harness;
mod harness;
mod honest;
mod oidc;

mod abuse;
mod aggregation;
mod api_tokens;
mod audit;
mod bad_input;
mod cli_apply;
mod cli_commands;
mod cli_completion;
mod cli_describe;
mod cli_errors;
mod cli_flags;
mod cli_get_flags;
mod cli_lists;
mod cli_login;
mod cli_token_login;
mod cli_token_output;
mod cli_watch;
mod client_node;
mod data_dir;
mod encryption;
mod events;
mod federation;
mod guide;
mod health;
mod impersonation;
mod kargo_access;
mod kargo_accounts;
mod kargo_client;
mod kargo_fuzz;
mod kargo_projects;
mod kargo_rest;
mod kargo_roles;
mod kube_rs;
mod kubectl;
mod limits;
mod logs;
mod metrics;
mod oidc_bench;
mod oidc_provider;
mod oidc_sso;
mod openapi;
mod partial_metadata;
mod persistence;
mod python;
mod readme;
mod replicas;
mod request_bounds;
mod server_side_apply;
mod sessions;
mod token_expiry;
mod token_last_used;
mod token_lifecycle;
mod tokens;
mod ui;

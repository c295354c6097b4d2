#!/usr/bin/env bash
# The inner loop: every crate's unit tests and the in-process tier (the registry, controllers,
# auth, Kargo roles and the whole API over a temporary SQLite store, with no spawned server, no
# etcd and no Python). About 15-40 s after a build; `scripts/test.sh` runs everything.
# Arguments go to the test runner (a filter, say).
set -euo pipefail
cd "$(dirname "$0")/.."
if cargo nextest --version >/dev/null 2>&1; then
  # nextest runs the crates' test binaries side by side.
  exec cargo nextest run --workspace --lib --no-fail-fast --status-level fail "$@"
fi
exec cargo test --workspace --lib --no-fail-fast "$@"

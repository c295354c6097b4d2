#!/usr/bin/env bash
# The whole test suite: unit tests, the store conformance and crash tests, and the end-to-end
# tests that drive a real `kargo server` with kubectl, the Python kubernetes client and the kargo
# CLI. Prepares what the tests need first (a Python venv in .venv; etcd for the etcd backend).
set -euo pipefail
cd "$(dirname "$0")/.."

# Python client and tools for the end-to-end tests, in a project-local venv.
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import kubernetes' 2>/dev/null; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
fi

export KARGO_TEST_PYTHON="$PWD/.venv/bin/python"
cargo test --workspace --all-targets --no-fail-fast "$@"

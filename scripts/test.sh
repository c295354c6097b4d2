#!/usr/bin/env bash
# The whole test suite: unit tests, the store conformance and crash tests, and the end-to-end
# tests that drive a real `kargo server` with kubectl, the Python kubernetes client and the kargo
# CLI. Prepares what the tests need first (a Python venv in .venv; etcd for the etcd backend;
# zsh and fish for the completion tests;
# the npm packages of the OpenID provider and of @kubernetes/client-node in tests/*/node_modules;
# chromium, chromedriver and axe-core in tests/ui/node_modules for the web UI's browser tests).
set -euo pipefail
cd "$(dirname "$0")/.."

# Python client and tools for the end-to-end tests (the kubernetes client, Schemathesis), in a
# project-local venv. `python -m pip` so that a venv copied from elsewhere installs into itself.
if [ ! -x .venv/bin/python ] || [ ! -x .venv/bin/schemathesis ] \
  || ! .venv/bin/python -c 'import kubernetes, schemathesis, prometheus_client, selenium' 2>/dev/null; then
  python3 -m venv .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
fi

# etcd for the etcd backend's tests and the replica tests (they fail, not skip, without it).
if ! command -v etcd >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server \
      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server; }
  else
    echo "scripts/test.sh: the etcd tests need etcd: sudo apt-get install etcd-server" >&2
    exit 1
  fi
fi

# zsh and fish for the completion tests (they fail, not skip, without them; bash is there).
missing_shells=()
for shell in zsh fish; do
  command -v "$shell" >/dev/null || missing_shells+=("$shell")
done
if [ ${#missing_shells[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing_shells[@]}" \
      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing_shells[@]}"; }
  else
    echo "scripts/test.sh: the completion tests need zsh and fish: sudo apt-get install ${missing_shells[*]}" >&2
    exit 1
  fi
fi

# Headless chromium and its WebDriver for the web UI's browser tests (crates/kargo-cli/tests/e2e/ui.rs).
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver \
      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }
  else
    echo "scripts/test.sh: the browser tests need chromium: sudo apt-get install chromium chromium-driver" >&2
    exit 1
  fi
fi
# axe-core, the accessibility checker the browser tests run on every page (pinned by
# tests/ui/package-lock.json).
if [ ! -f tests/ui/node_modules/axe-core/axe.min.js ]; then
  npm ci --prefix tests/ui --no-audit --no-fund --loglevel=error
fi

# The tests' OpenID provider (npm `oidc-provider`, pinned by tests/oidc/package-lock.json).
if [ ! -d tests/oidc/node_modules/oidc-provider ]; then
  if ! command -v npm >/dev/null; then
    echo "scripts/test.sh: the OIDC tests need Node.js >= 20.19 and npm (on Debian 12: NodeSource's nodejs)" >&2
    exit 1
  fi
  npm ci --prefix tests/oidc --no-audit --no-fund --loglevel=error
fi
# The official JavaScript client (npm `@kubernetes/client-node`, pinned by tests/node/package-lock.json).
if [ ! -d tests/node/node_modules/@kubernetes/client-node ]; then
  npm ci --prefix tests/node --no-audit --no-fund --loglevel=error
fi
# oidc-provider 9 needs Node.js 20.19 or later (Debian 12's own nodejs is 18: use NodeSource's).
if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'; then
  echo "scripts/test.sh: the OIDC tests need Node.js >= 20.19, found $(node --version)" >&2
  exit 1
fi

export KARGO_TEST_PYTHON="$PWD/.venv/bin/python"
cargo test --workspace --all-targets --no-fail-fast "$@"

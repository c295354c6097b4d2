#!/usr/bin/env bash
# The read of bench/ab.sh by a person signed in with OIDC beside the same read with a
# ServiceAccount token, on one server in one run: the e2e test `oidc_bench::bench_oidc_read_rate`
# (ignored by default) starts the tests' OpenID provider (npm oidc-provider, tests/oidc), a
# release server trusting it, gives Alice (claim groups=devops) and a ServiceAccount the same
# read permission, and runs wrk -t2 -c32 alternately with each token:
#
#   bench/oidc.sh                    # ROUNDS=6 DURATION=8 by default
#
# Each round: requests per second and server CPU per request for both tokens and their ratios;
# then the medians. Target (issue 15): the OIDC rate at least 0.95 of the ServiceAccount's.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "bench/oidc.sh needs wrk (apt-get install wrk)" >&2; exit 1; }
[ -d tests/oidc/node_modules/oidc-provider ] || npm ci --prefix tests/oidc
# The server's stderr is the test's: rustls warns of the IP address wrk sends as SNI, once per
# connection.
ROUNDS=${ROUNDS:-6} DURATION=${DURATION:-8} \
  cargo test --release -p kargo-cli --test e2e bench_oidc_read_rate -- --ignored --nocapture 2>&1 \
  | { grep -v 'Illegal SNI extension' || true; }

#!/usr/bin/env bash
# The authenticated read of bench/run.sh (section 1) on two kargo binaries side by side, in
# interleaved rounds, so that a change to the request path is measured before and after on the
# same machine at the same time (the machine's load moves single runs by 10% or more):
#
#   cp target/release/kargo /tmp/kargo-before    # built at the base commit
#   cargo build --release -p kargo-cli -p kargo-bench
#   bench/ab.sh /tmp/kargo-before target/release/kargo       # ROUNDS=6 DURATION=8 by default
#
# OLD_ARGS and NEW_ARGS add server flags to one side (e.g. the audit log, issue 16:
#   NEW_ARGS='--audit-log-path /tmp/kargo-ab-audit.log' bench/ab.sh /tmp/kargo-before target/release/kargo
# compares the build before with the metrics and an audit log against the build after with both).
#
# Each line: requests per second and server CPU per request for /healthz and for the GET of a
# ServiceAccount with a ServiceAccount token, and their ratio. Compare medians across rounds
# (`bench/ab-summary.py` prints them).
set -euo pipefail
OLD=$(realpath "$1"); NEW=$(realpath "$2")
cd "$(dirname "$0")/.."
DURATION=${DURATION:-8}; ROUNDS=${ROUNDS:-6}
bench=$PWD/target/release/kargo-bench
command -v wrk >/dev/null || { echo "bench/ab.sh needs wrk (apt-get install wrk)" >&2; exit 1; }
PASSWORD=bench-admin-password
work=$(mktemp -d /tmp/kargo-ab.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
start() { # name binary port [flags...]
  local name=$1 binary=$2 port=$3; shift 3
  KARGO_ADMIN_PASSWORD=$PASSWORD KARGO_LOG=warn "$binary" server --address "127.0.0.1:$port" --data-dir "$work/$name" "$@" > "$work/$name.out" 2> "$work/$name.err" &
  pids+=($!)
  for _ in $(seq 1 600); do grep -q "listening on" "$work/$name.out" 2>/dev/null && return 0; sleep 0.05; done; return 1
}
setup() { # name port -> prints the SA token
  local url=https://127.0.0.1:$2 ca=$work/$1/tls/ca.crt
  local admin; admin=$("$bench" --url "$url" --ca "$ca" login --password "$PASSWORD")
  KARGO_BENCH_TOKEN=$admin "$bench" --url "$url" --ca "$ca" seed --prefix read --projects 1 --accounts 1 >/dev/null
  curl -sS --fail --cacert "$ca" -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
    -d '{"metadata":{"name":"reader"},"rules":[{"apiGroups":[""],"resources":["serviceaccounts"],"verbs":["get"]}]}' \
    "$url/v1beta1/projects/read-0/roles" >/dev/null
  curl -sS --fail --cacert "$ca" -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
    -d '{"role":"reader","serviceAccounts":{"serviceAccounts":[{"name":"sa-0","namespace":"read-0"}]}}' \
    "$url/v1beta1/projects/read-0/roles/grants" >/dev/null
  curl -sS --fail --cacert "$ca" -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
    -d '{"name":"reader-token"}' "$url/v1beta1/projects/read-0/service-accounts/sa-0/tokens" \
    | python3 -c 'import sys,json,base64; print(base64.b64decode(json.load(sys.stdin)["data"]["token"]).decode())'
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rate() { # pid url [args] -> req/s, server CPU us per request
  local pid=$1; shift
  local before; before=$(cpu_ticks "$pid")
  local out; out=$(wrk --latency -t2 -c32 -d"${DURATION}s" "$@")
  local after; after=$(cpu_ticks "$pid")
  if echo "$out" | grep -q "Non-2xx"; then echo "$out" >&2; exit 1; fi
  local requests; requests=$(echo "$out" | awk '/requests in/ {print $1}')
  echo "$(echo "$out" | awk '/Requests\/sec/ {print $2}') $(python3 -c "print(round(($after - $before) * 1e6 / $(getconf CLK_TCK) / $requests, 2))")us"
}
# shellcheck disable=SC2086 # the flags are words
start old "$OLD" 19501 ${OLD_ARGS:-}; pid_old=${pids[-1]}
# shellcheck disable=SC2086
start new "$NEW" 19502 ${NEW_ARGS:-}; pid_new=${pids[-1]}
tok_old=$(setup old 19501); tok_new=$(setup new 19502)
path=/api/v1/namespaces/read-0/serviceaccounts/sa-0
for r in $(seq 1 "$ROUNDS"); do
  # The sides take turns going first: whichever runs first in a round meets a different machine.
  order="old new"; [ $((r % 2)) = 0 ] && order="new old"
  for side in $order; do
    port=19501; tok=$tok_old; pid=$pid_old; [ $side = new ] && { port=19502; tok=$tok_new; pid=$pid_new; }
    h=$(rate $pid "https://127.0.0.1:$port/healthz"); g=$(rate $pid "https://127.0.0.1:$port$path" -H "Authorization: Bearer $tok")
    echo "round $r $side: healthz $h read $g ratio $(python3 -c "print(round(${g%% *}/${h%% *},3))")"
  done
done

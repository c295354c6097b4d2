#!/usr/bin/env bash
# Reproduces every figure of docs/performance.md with one command:
#
#   bench/run.sh              # the full run (the scale part seeds 1,000 projects, 100,000
#                             # accounts and 200,000 tokens: allow about an hour)
#   SCALE_PROJECTS=50 bench/run.sh   # a quicker run with a smaller scale part
#
# Results go to stdout and to bench/results/<date>.md. Everything runs on this machine: the
# servers, the load generators (wrk for the read comparison, kargo-bench for the rest) and etcd
# for the replica part, so compare the ratios within one run rather than absolute numbers across
# machines.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

SCALE_PROJECTS=${SCALE_PROJECTS:-1000}
SCALE_ACCOUNTS=${SCALE_ACCOUNTS:-100}
SCALE_TOKENS=${SCALE_TOKENS:-2}
DURATION=${DURATION:-10}
PASSWORD=bench-admin-password

for tool in wrk curl python3; do
  if ! command -v "$tool" >/dev/null; then
    echo "installing $tool" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$tool" >/dev/null
  fi
done

cargo build --release -q -p kargo-cli -p kargo-bench
kargo=$root/target/release/kargo
bench=$root/target/release/kargo-bench

work=$(mktemp -d /tmp/kargo-bench.XXXXXX)
pids=()
# The scale part's data directory alone is about 1 GiB: stop the servers, then remove it all.
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$root/bench/results"
results=$root/bench/results/$(date -u +%Y-%m-%dT%H%M%SZ).md
{
  echo "# kargo benchmark run $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo
  echo "- machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
  echo "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "- scale: $SCALE_PROJECTS projects x $SCALE_ACCOUNTS accounts x $SCALE_TOKENS tokens"
  echo
} > "$results"
say() { echo "$*" | tee -a "$results"; }

# start_server NAME PORT [extra flags...]: starts a server, waits until it listens; sets PID_<NAME>.
start_server() {
  local name=$1 port=$2; shift 2
  local started=$(date +%s.%N)
  KARGO_ADMIN_PASSWORD=$PASSWORD KARGO_LOG=warn "$kargo" server --address "127.0.0.1:$port" \
    --data-dir "$work/$name" "$@" > "$work/$name.out" 2> "$work/$name.err" &
  local pid=$!
  pids+=("$pid")
  eval "PID_$name=$pid"
  for _ in $(seq 1 600); do
    if grep -q "listening on" "$work/$name.out" 2>/dev/null; then
      local ready=$(date +%s.%N)
      eval "STARTUP_$name=$(python3 -c "print($ready - $started)")"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then cat "$work/$name.err" >&2; return 1; fi
    sleep 0.05
  done
  echo "server $name did not start" >&2
  return 1
}

stop_server() {
  local pid; eval "pid=\$PID_$1"
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
}

rss_mib() { awk '/VmRSS/ {printf "%.0f", $2/1024}' "/proc/$1/status"; }

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

wrk_line() { # label, then wrk args: prints "label: rate p50 p99 server-CPU-per-request"
  local label=$1; shift
  local before; before=$(cpu_ticks "$PID_a")
  local out; out=$(wrk --latency "$@")
  local after; after=$(cpu_ticks "$PID_a")
  local rate p50 p99 requests
  rate=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1=="50%" {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  requests=$(echo "$out" | awk '/requests in/ {print $1}')
  if echo "$out" | grep -q "Non-2xx"; then echo "$out" >&2; echo "non-2xx answers in $label" >&2; exit 1; fi
  local per; per=$(python3 -c "print(round(($after - $before) * 1e6 / $(getconf CLK_TCK) / $requests, 2))")
  echo "$label: rate=${rate}/s p50=$p50 p99=$p99 server-cpu=${per}us/request" | tee -a "$results" >&2
  echo "$rate"
}

# --- one server --------------------------------------------------------------------------
start_server a 19443
url=https://127.0.0.1:19443
ca=$work/a/tls/ca.crt
export KARGO_BENCH_TOKEN; KARGO_BENCH_TOKEN=$("$bench" --url "$url" --ca "$ca" login --password "$PASSWORD")
b() { "$bench" --url "$url" --ca "$ca" "$@"; }

b seed --prefix read --projects 1 --accounts 1 >/dev/null
curl -sS --fail --cacert "$ca" -H "Authorization: Bearer $KARGO_BENCH_TOKEN" -H 'Content-Type: application/json' \
  -d '{"metadata":{"name":"reader"},"rules":[{"apiGroups":[""],"resources":["serviceaccounts"],"verbs":["get"]}]}' \
  "$url/v1beta1/projects/read-0/roles" >/dev/null
curl -sS --fail --cacert "$ca" -H "Authorization: Bearer $KARGO_BENCH_TOKEN" -H 'Content-Type: application/json' \
  -d '{"role":"reader","serviceAccounts":{"serviceAccounts":[{"name":"sa-0","namespace":"read-0"}]}}' \
  "$url/v1beta1/projects/read-0/roles/grants" >/dev/null
sa_token=$(curl -sS --fail --cacert "$ca" -H "Authorization: Bearer $KARGO_BENCH_TOKEN" -H 'Content-Type: application/json' \
  -d '{"name":"reader-token"}' "$url/v1beta1/projects/read-0/service-accounts/sa-0/tokens" \
  | python3 -c 'import sys,json,base64; print(base64.b64decode(json.load(sys.stdin)["data"]["token"]).decode())')

say
say "## 1. Authenticated read vs /healthz (wrk -t2 -c32, ${DURATION}s each, HTTPS keep-alive)"
# Three pairs, each /healthz then the authenticated GET right after it, so that both halves of a
# ratio see the same machine; the median pair is the result (single runs vary by about 0.03).
ratios=()
for pair in 1 2 3; do
  healthz=$(wrk_line "pair $pair: GET /healthz" -t2 -c32 -d"${DURATION}s" "$url/healthz")
  read_rate=$(wrk_line "pair $pair: GET serviceaccount with a ServiceAccount token" -t2 -c32 -d"${DURATION}s" \
    -H "Authorization: Bearer $sa_token" "$url/api/v1/namespaces/read-0/serviceaccounts/sa-0")
  ratios+=("$(python3 -c "print(round($read_rate / $healthz, 3))")")
  say "pair $pair ratio: ${ratios[-1]}"
done
say "ratio (median of the pairs): $(printf '%s\n' "${ratios[@]}" | sort -n | sed -n 2p) of /healthz"
# What the HTTP and TLS stack alone costs for this request's shape: the same token header on
# /healthz, and a JSON answer of about the same size (/version) without authentication.
wrk_line "GET /healthz with the same Authorization header" -t2 -c32 -d"${DURATION}s" \
  -H "Authorization: Bearer $sa_token" "$url/healthz" >/dev/null
wrk_line "GET /version (no credentials, ~300-byte JSON)" -t2 -c32 -d"${DURATION}s" "$url/version" >/dev/null

say
say "## 2. Kargo list of 1,000 accounts (one client, ${DURATION}s)"
b seed --prefix list --projects 1 --accounts 1000 --concurrency 32 >/dev/null
b load --label "GET /v1beta1/projects/list-0/service-accounts" --path /v1beta1/projects/list-0/service-accounts \
  --concurrency 1 --seconds "$DURATION" | tee -a "$results"

say
say "## 3. Token creation through the Kargo REST API (32 clients, ${DURATION}s)"
b load --label "POST tokens" --method POST --path /v1beta1/projects/read-0/service-accounts/sa-0/tokens \
  --body '{"name":"t-{n}"}' --expect 201 --concurrency 32 --seconds "$DURATION" | tee -a "$results"

say
say "## 5a. Revocation on one server (delete, then the next request)"
b revocation --project read-0 --account sa-0 --trials 200 | tee -a "$results"
stop_server a

# --- replicas on etcd --------------------------------------------------------------------
if command -v etcd >/dev/null; then
  say
  say "## 5b. Revocation across two replicas on one etcd (delete on A, observe on B)"
  etcd --name bench --data-dir "$work/etcd" --listen-client-urls http://127.0.0.1:23790 \
    --advertise-client-urls http://127.0.0.1:23790 --listen-peer-urls http://127.0.0.1:23800 \
    --initial-advertise-peer-urls http://127.0.0.1:23800 \
    --initial-cluster bench=http://127.0.0.1:23800 > "$work/etcd.log" 2>&1 &
  pids+=($!)
  sleep 2
  start_server ra 19444 --store etcd --etcd-endpoints http://127.0.0.1:23790
  start_server rb 19445 --store etcd --etcd-endpoints http://127.0.0.1:23790
  url=https://127.0.0.1:19444; ca=$work/ra/tls/ca.crt
  KARGO_BENCH_TOKEN=$("$bench" --url "$url" --ca "$ca" login --password "$PASSWORD")
  b seed --prefix rep --projects 1 --accounts 1 >/dev/null
  b revocation --project rep-0 --account sa-0 --trials 200 --observe https://127.0.0.1:19445 | tee -a "$results"
  stop_server ra; stop_server rb
else
  say "(etcd not installed: replica revocation skipped; apt-get install etcd-server)"
fi

# --- scale -------------------------------------------------------------------------------
measure_project() { # label: list and read latency of one project, one client
  b load --label "$1 list (GET .../projects/scale-0/service-accounts)" \
    --path /v1beta1/projects/scale-0/service-accounts --concurrency 1 --seconds "$DURATION" | tee -a "$results"
  b load --label "$1 read (GET .../projects/scale-0/service-accounts/sa-7)" \
    --path /v1beta1/projects/scale-0/service-accounts/sa-7 --concurrency 1 --seconds "$DURATION" | tee -a "$results"
}

say
say "## 4. Scale: one project of $SCALE_ACCOUNTS accounts alone, then among $SCALE_PROJECTS projects"
start_server s 19446
url=https://127.0.0.1:19446; ca=$work/s/tls/ca.crt
KARGO_BENCH_TOKEN=$("$bench" --url "$url" --ca "$ca" login --password "$PASSWORD")
b seed --prefix scale --projects 1 --accounts "$SCALE_ACCOUNTS" --tokens "$SCALE_TOKENS" --concurrency 32 | tee -a "$results"
measure_project "one-project store:"
b seed --prefix scale --projects "$SCALE_PROJECTS" --accounts "$SCALE_ACCOUNTS" --tokens "$SCALE_TOKENS" \
  --concurrency 32 | tee -a "$results"
measure_project "full store:"
say "full store: server resident memory $(rss_mib "$PID_s") MiB, data directory $(du -sm "$work/s" | cut -f1) MiB"
stop_server s
start_server s 19446
say "full store: start-up to listening (informer synced) $(printf '%.2f' "$STARTUP_s") s, resident memory after start $(rss_mib "$PID_s") MiB"
stop_server s

echo
echo "results written to $results"

#!/usr/bin/env bash
# Reproduces every figure of docs/performance.md with one command:
#
#   bench/run.sh              # the full run (the scale part seeds 1,000 projects, 100,000
#                             # accounts and 200,000 tokens: allow about an hour)
#   SCALE_PROJECTS=50 bench/run.sh   # a quicker run with a smaller scale part
#   QUICK=1 bench/run.sh      # everything at a smaller size, under 10 minutes on 2 cores
#
# The replica-scale parts (issue 21: etcd cluster, watch fan-out, cold tokens and a flood of
# random ones, the upstream design side by side) are sections 6 to 9; their sizes are set by
# WATCHERS, COLD_TOKENS, FLOOD_TOKENS and IDLE_CONNECTIONS (smaller under QUICK=1); many idle
# connections are section 11.
#
# Results go to stdout and to bench/results/<date>.md. Everything runs on this machine: the
# servers, the load generators (wrk for the read comparison, kargo-bench for the rest) and etcd
# for the replica part, so compare the ratios within one run rather than absolute numbers across
# machines.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
  SCALE_PROJECTS=${SCALE_PROJECTS:-20}
  DURATION=${DURATION:-3}
  WATCHERS=${WATCHERS:-10 100 300}
  WATCH_SECONDS=${WATCH_SECONDS:-5}
  COLD_TOKENS=${COLD_TOKENS:-2000}
  COLD_SEQUENTIAL=${COLD_SEQUENTIAL:-500}
  FLOOD_TOKENS=${FLOOD_TOKENS:-50000}
  IDLE_CONNECTIONS=${IDLE_CONNECTIONS:-2000}
  PAIRS=${PAIRS:-1}
fi
SCALE_PROJECTS=${SCALE_PROJECTS:-1000}
SCALE_ACCOUNTS=${SCALE_ACCOUNTS:-100}
SCALE_TOKENS=${SCALE_TOKENS:-2}
DURATION=${DURATION:-10}
WATCHERS=${WATCHERS:-10 100 1000}
WATCH_SECONDS=${WATCH_SECONDS:-10}
COLD_TOKENS=${COLD_TOKENS:-10000}
COLD_SEQUENTIAL=${COLD_SEQUENTIAL:-1000}
FLOOD_TOKENS=${FLOOD_TOKENS:-1000000}
IDLE_CONNECTIONS=${IDLE_CONNECTIONS:-10000}
PAIRS=${PAIRS:-3}
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
  echo "- replica scale: watchers $WATCHERS for ${WATCH_SECONDS}s each, $COLD_TOKENS cold tokens, $FLOOD_TOKENS flood tokens (QUICK=$QUICK)"
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
  # The server measured is $CPU_PID (server a unless set).
  local label=$1; shift
  local pid=${CPU_PID:-$PID_a}
  local before; before=$(cpu_ticks "$pid")
  local out; out=$(wrk --latency "$@")
  local after; after=$(cpu_ticks "$pid")
  local rate p50 p99 requests
  rate=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1=="50%" {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  requests=$(echo "$out" | awk '/requests in/ {print $1}')
  if echo "$out" | grep -q "Non-2xx"; then echo "$out" >&2; echo "non-2xx answers in $label" >&2; exit 1; fi
  local per; per=$(python3 -c "print(round(($after - $before) * 1e6 / $(getconf CLK_TCK) / $requests, 2))")
  echo "$label: rate=${rate}/s p50=$p50 p99=$p99 server-cpu=${per}us/request" | tee -a "$results" >&2
  echo "$rate $per $requests"
}

# reader_token: on the server at $url, a project read-0 with an account sa-0 allowed to get
# ServiceAccounts there (a Role and a grant); prints a token of sa-0.
reader_token() {
  b seed --prefix read --projects 1 --accounts 1 >/dev/null
  curl -sS --fail --cacert "$ca" -H "Authorization: Bearer $KARGO_BENCH_TOKEN" -H 'Content-Type: application/json' \
    -d '{"metadata":{"name":"reader"},"rules":[{"apiGroups":[""],"resources":["serviceaccounts"],"verbs":["get"]}]}' \
    "$url/v1beta1/projects/read-0/roles" >/dev/null
  curl -sS --fail --cacert "$ca" -H "Authorization: Bearer $KARGO_BENCH_TOKEN" -H 'Content-Type: application/json' \
    -d '{"role":"reader","serviceAccounts":{"serviceAccounts":[{"name":"sa-0","namespace":"read-0"}]}}' \
    "$url/v1beta1/projects/read-0/roles/grants" >/dev/null
  curl -sS --fail --cacert "$ca" -H "Authorization: Bearer $KARGO_BENCH_TOKEN" -H 'Content-Type: application/json' \
    -d '{"name":"reader-token"}' "$url/v1beta1/projects/read-0/service-accounts/sa-0/tokens" \
    | python3 -c 'import sys,json,base64; print(base64.b64decode(json.load(sys.stdin)["data"]["token"]).decode())'
}
read_path=/api/v1/namespaces/read-0/serviceaccounts/sa-0
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

# --- one server --------------------------------------------------------------------------
start_server a 19443
url=https://127.0.0.1:19443
ca=$work/a/tls/ca.crt
export KARGO_BENCH_TOKEN; KARGO_BENCH_TOKEN=$("$bench" --url "$url" --ca "$ca" login --password "$PASSWORD")
b() { "$bench" --url "$url" --ca "$ca" "$@"; }

sa_token=$(reader_token)

say
say "## 1. Authenticated read vs /healthz (wrk -t2 -c32, ${DURATION}s each, HTTPS keep-alive)"
# Three pairs, each /healthz then the authenticated GET right after it, so that both halves of a
# ratio see the same machine; the median pair is the result (single runs vary by about 0.03).
ratios=()
for pair in 1 2 3; do
  healthz=$(wrk_line "pair $pair: GET /healthz" -t2 -c32 -d"${DURATION}s" "$url/healthz" | cut -d' ' -f1)
  read_rate=$(wrk_line "pair $pair: GET serviceaccount with a ServiceAccount token" -t2 -c32 -d"${DURATION}s" \
    -H "Authorization: Bearer $sa_token" "$url$read_path" | cut -d' ' -f1)
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

say
say "## 10. The upstream design side by side (kargo-bench, 32 clients, ${DURATION}s halves, $PAIRS pair(s))"
say "Each upstream request: TokenReview + SubjectAccessReview (admin's token) + the read, in series on one"
say "keep-alive TLS connection (a client-side emulation: see bench/src/upstream.rs for what it models)."
KARGO_BENCH_READER_TOKEN=$sa_token b upstream --namespace read-0 --name sa-0 --concurrency 32 \
  --seconds "$DURATION" --pairs "$PAIRS" --pid "$PID_a" | tee -a "$results"

say
say "## 8. Cold path: $COLD_TOKENS tokens the server has not seen, each used once"
b cold --project read-0 --account sa-0 --path "$read_path" --tokens "$COLD_TOKENS" \
  --sequential "$COLD_SEQUENTIAL" --concurrency 32 --pid "$PID_a" | tee -a "$results"

say
say "## 9. Attack: $FLOOD_TOKENS random well-formed JWTs (the server's key id, random claims and signature)"
say "16 flood connections, 90 tokens per loopback source address (under the 100 failures an address may"
say "make before it is blocked, so each token costs a signature check); 2 honest clients read meanwhile."
KARGO_BENCH_HONEST_TOKEN=$sa_token b flood --path "$read_path" --requests "$FLOOD_TOKENS" --concurrency 16 \
  --per-address 90 --honest-concurrency 2 --baseline-seconds "$DURATION" --pid "$PID_a" | tee -a "$results"
stop_server a

# --- replicas on a three-member etcd ---------------------------------------------------------
# start_etcd_cluster: three members on loopback, ready when each answers /health.
etcd_pids=()
start_etcd_cluster() {
  local cluster="" i
  for i in 1 2 3; do cluster+="${cluster:+,}e$i=http://127.0.0.1:2380$i"; done
  for i in 1 2 3; do
    etcd --name "e$i" --data-dir "$work/etcd-e$i" --listen-client-urls "http://127.0.0.1:2379$i" \
      --advertise-client-urls "http://127.0.0.1:2379$i" --listen-peer-urls "http://127.0.0.1:2380$i" \
      --initial-advertise-peer-urls "http://127.0.0.1:2380$i" --initial-cluster "$cluster" \
      --initial-cluster-state new --log-level warn > "$work/etcd-e$i.log" 2>&1 &
    pids+=($!); etcd_pids+=($!)
  done
  for i in 1 2 3; do
    for _ in $(seq 1 200); do
      curl -sf "http://127.0.0.1:2379$i/health" | grep -q '"health":"true"' && break
      sleep 0.1
    done
  done
}

# etcd_calls: the Range and Txn calls the three members have answered (OK), summed: "ranges txns".
etcd_calls() {
  local i
  for i in 1 2 3; do curl -s "http://127.0.0.1:2379$i/metrics"; done |
    awk -F'[ ]' '/^grpc_server_handled_total.*grpc_code="OK".*grpc_method="Range"/ {r += $2}
                 /^grpc_server_handled_total.*grpc_code="OK".*grpc_method="Txn"/ {t += $2}
                 END {printf "%d %d\n", r, t}'
}
per_each() { python3 -c "print(round(($2 - $1) / max($3, 1), 2))"; } # before after count

if command -v etcd >/dev/null; then
  say
  say "## 6. Two replicas on a three-member etcd (issue 21 item 2)"
  start_etcd_cluster
  endpoints=http://127.0.0.1:23791,http://127.0.0.1:23792,http://127.0.0.1:23793
  start_server ea 19447 --store etcd --etcd-endpoints "$endpoints"
  start_server eb 19448 --store etcd --etcd-endpoints "$endpoints"
  url=https://127.0.0.1:19447; ca=$work/ea/tls/ca.crt
  KARGO_BENCH_TOKEN=$("$bench" --url "$url" --ca "$ca" login --password "$PASSWORD")
  etcd_token=$(reader_token)
  # Token creation: 16 clients on each replica (32 in all) against etcd's own put rate at 32.
  for pair in $(seq 1 "$PAIRS"); do
    "$bench" etcd-put --endpoints "$endpoints" --concurrency 32 --seconds "$DURATION" \
      --label "pair $pair: etcd put (kargo-store client, create txn, 1 KiB, 32 in flight)" | tee -a "$results" > "$work/put.txt"
    loaders=()
    for r in ea:19447 eb:19448; do
      "$bench" --url "https://127.0.0.1:${r#*:}" --ca "$ca" load --label "pair $pair: POST tokens on ${r%%:*}" --method POST \
        --path /v1beta1/projects/read-0/service-accounts/sa-0/tokens --body "{\"name\":\"${r%%:*}-$pair-{n}\"}" \
        --expect 201 --concurrency 16 --seconds "$DURATION" > "$work/tokens-${r%%:*}.txt" &
      loaders+=($!)
    done
    read -r ranges0 txns0 < <(etcd_calls)
    wait "${loaders[@]}"
    read -r ranges1 txns1 < <(etcd_calls)
    cat "$work/tokens-ea.txt" "$work/tokens-eb.txt" | tee -a "$results"
    put=$(sed -n 's/.* rate=\([0-9]*\)\/s.*/\1/p' "$work/put.txt")
    made=$(cat "$work/tokens-ea.txt" "$work/tokens-eb.txt" | sed -n 's/.* rate=\([0-9]*\)\/s.*/\1/p' | paste -sd+ | python3 -c 'print(eval(input()))')
    created=$(cat "$work/tokens-ea.txt" "$work/tokens-eb.txt" | sed -n 's/.* requests=\([0-9]*\) .*/\1/p' | paste -sd+ | python3 -c 'print(eval(input()))')
    say "pair $pair: etcd calls per token created: $(per_each "$ranges0" "$ranges1" "$created") Range, $(per_each "$txns0" "$txns1" "$created") Txn (all three members, the replicas' informers and leases included)"
    say "pair $pair: token creation on two replicas $made/s = $(python3 -c "print(round($made / $put, 3))") of etcd's put rate $put/s (target >= 0.5)"
  done
  # Reads: the same authenticated GET on an etcd replica and on a SQLite server, interleaved.
  start_server q 19449
  sqlite_url=https://127.0.0.1:19449
  url=$sqlite_url; ca=$work/q/tls/ca.crt
  KARGO_BENCH_TOKEN=$("$bench" --url "$url" --ca "$ca" login --password "$PASSWORD")
  sqlite_token=$(reader_token)
  ratios=(); cpu_ratios=()
  for pair in $(seq 1 "$PAIRS"); do
    read -r on_sqlite cpu_sqlite _ < <(CPU_PID=$PID_q wrk_line "pair $pair: GET serviceaccount on SQLite" -t2 -c32 \
      -d"${DURATION}s" -H "Authorization: Bearer $sqlite_token" "$sqlite_url$read_path")
    read -r ranges0 _ < <(etcd_calls)
    read -r on_etcd cpu_etcd reads < <(CPU_PID=$PID_ea wrk_line "pair $pair: GET serviceaccount on an etcd replica" -t2 -c32 \
      -d"${DURATION}s" -H "Authorization: Bearer $etcd_token" "https://127.0.0.1:19447$read_path")
    read -r ranges1 _ < <(etcd_calls)
    say "pair $pair: etcd Range calls per read on the etcd replica: $(per_each "$ranges0" "$ranges1" "$reads")"
    ratios+=("$(python3 -c "print(round($on_etcd / $on_sqlite, 3))")")
    cpu_ratios+=("$(python3 -c "print(round($cpu_sqlite / $cpu_etcd, 3))")")
    say "pair $pair: etcd / SQLite read rate ${ratios[-1]}, SQLite / etcd server CPU per read ${cpu_ratios[-1]}"
  done
  say "etcd replica read vs SQLite (median of the pairs): rate $(printf '%s\n' "${ratios[@]}" | median), CPU $(printf '%s\n' "${cpu_ratios[@]}" | median) (target within 5%)"
  stop_server q; stop_server ea; stop_server eb
  kill "${etcd_pids[@]}" 2>/dev/null || true
else
  say "(etcd not installed: the etcd cluster part skipped; apt-get install etcd-server)"
fi

# --- watch fan-out -------------------------------------------------------------------------
say
say "## 7. Watch fan-out: N watches on one namespace's ServiceAccounts, 100 creations/s for ${WATCH_SECONDS}s"
start_server w 19450 --max-watches-per-user 0
url=https://127.0.0.1:19450; ca=$work/w/tls/ca.crt
KARGO_BENCH_TOKEN=$("$bench" --url "$url" --ca "$ca" login --password "$PASSWORD")
for n in $WATCHERS; do
  for transport in h1 h2; do
    b seed --prefix "w$n$transport" --projects 1 --accounts 0 >/dev/null
    flag=(); [ "$transport" = h2 ] && flag=(--http2)
    line=$(b watch --project "w$n$transport-0" --watchers "$n" "${flag[@]}" --rate 100 --seconds "$WATCH_SECONDS" \
      --pid "$PID_w" --label "$n watches ($transport)")
    say "$line"
  done
done
say "(target: every watcher gets every event in order; p99 write-to-delivery < 50 ms)"
svg=${results%.md}-fanout.svg
python3 bench/chart.py "$results" "$svg"
say "chart: bench/results/$(basename "$svg")"
stop_server w

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

# --- many idle clients ----------------------------------------------------------------------
say
say "## 11. $IDLE_CONNECTIONS idle keep-alive TLS connections (HTTP/1.1), and 32 active clients meanwhile"
start_server c 19451 --idle-connection-timeout 600s
url=https://127.0.0.1:19451; ca=$work/c/tls/ca.crt
KARGO_BENCH_TOKEN=$("$bench" --url "$url" --ca "$ca" login --password "$PASSWORD")
idle_token=$(reader_token)
read -r without _ < <(CPU_PID=$PID_c wrk_line "GET serviceaccount, 32 clients, no idle connections" -t2 -c32 \
  -d"${DURATION}s" -H "Authorization: Bearer $idle_token" "$url$read_path")
b idle --address 127.0.0.1:19451 --connections "$IDLE_CONNECTIONS" --per-address 1000 \
  --hold-seconds $((DURATION + 10)) --ready-file "$work/idle.ready" --pid "$PID_c" > "$work/idle.txt" &
idler=$!
for _ in $(seq 1 1200); do [ -e "$work/idle.ready" ] && break; kill -0 "$idler" 2>/dev/null || break; sleep 0.1; done
read -r with _ < <(CPU_PID=$PID_c wrk_line "GET serviceaccount, 32 clients, beside the idle connections" -t2 -c32 \
  -d"${DURATION}s" -H "Authorization: Bearer $idle_token" "$url$read_path")
wait "$idler"
tee -a "$results" < "$work/idle.txt"
# Before, beside, after: the idle connections' effect against the mean of the runs either side.
read -r after _ < <(CPU_PID=$PID_c wrk_line "GET serviceaccount, 32 clients, the idle connections closed" -t2 -c32 \
  -d"${DURATION}s" -H "Authorization: Bearer $idle_token" "$url$read_path")
say "active clients' rate beside the idle connections / mean of before and after: $(python3 -c "print(round(2 * $with / ($without + $after), 3))") (target >= 0.9); memory per connection target < 20 KiB"
stop_server c

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

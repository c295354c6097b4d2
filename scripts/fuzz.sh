#!/usr/bin/env bash
# Fuzz every target for SECONDS_PER_TARGET (default 60), one target at a time, in the `fuzz`
# profile (optimized, overflow checks and debug assertions on). Prints the executions of each
# target and every crash; exits 1 if any target failed.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]
#
# Targets and their corpora: crates/kargo-api/tests/fuzz.rs (fuzz/ beside it: selectors, the
# three patch types), crates/kargo-server/tests/fuzz.rs (protobuf, bearer tokens, bodies,
# continue tokens, resourceVersions), crates/kargo-cli/src/jsonpath.rs (jsonpath). A failing
# input is written to target/fuzz-crashes/<target>/ and the failure prints the command that
# replays it. KARGO_FUZZ_SEED fixes the random seed; KARGO_FUZZ_SLOW_MS the longest one input
# may take (default 1000 here: an optimized build has no excuse to be slower).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[0-9]+([.][0-9]+)?$ ]]; then
  echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET]" >&2
  exit 2
fi
export KARGO_FUZZ_SECONDS="$seconds"
export KARGO_FUZZ_CRASH_DIR="${KARGO_FUZZ_CRASH_DIR:-$PWD/target/fuzz-crashes}"
export KARGO_FUZZ_SLOW_MS="${KARGO_FUZZ_SLOW_MS:-1000}"
export RUST_BACKTRACE=0
log="target/fuzz-$(date +%Y%m%d-%H%M%S).log"
mkdir -p target

# package, test target selection, test-name filter
runs=(
  "kargo-api|--test fuzz|"
  "kargo-server|--test fuzz|"
  "kargo-cli|--bin kargo|jsonpath::fuzz"
)

echo "scripts/fuzz.sh: building the fuzz profile" >&2
for run in "${runs[@]}"; do
  IFS='|' read -r package selection _ <<<"$run"
  # shellcheck disable=SC2086
  cargo test --profile fuzz -p "$package" $selection --no-run --quiet
done

status=0
for run in "${runs[@]}"; do
  IFS='|' read -r package selection filter <<<"$run"
  echo "scripts/fuzz.sh: $package $selection ${filter:-(all)}: ${seconds} s per target" >&2
  # One test at a time: each target gets the whole budget on one core.
  # shellcheck disable=SC2086
  if ! cargo test --profile fuzz -p "$package" $selection -- $filter \
      --test-threads=1 --nocapture 2>&1 | tee -a "$log"; then
    status=1
  fi
done

echo
echo "== executions per target (${seconds} s each; full log: $log)"
grep -oE 'fuzz: [^ ]+: [0-9]+ executions.*' "$log" | sed -E 's/^fuzz: //' || true
grep -oE 'fuzz: [^ ]+: [0-9]+ executions' "$log" \
  | awk '{ total += $3 } END { print "== total executions: " total + 0 }' || true
grep -oE 'fuzz target [^ ]+ failed after [0-9]+ executions' "$log" \
  | awk '{ total += $6 } END { if (total) print "== executions of failed targets until their crash: " total }' || true
echo "== crashes"
if grep -oE 'fuzz target .* failed.*' "$log"; then
  grep -E '^  (saved to|replay):' "$log" || true
else
  echo "none"
fi
exit "$status"

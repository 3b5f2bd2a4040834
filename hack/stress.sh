#!/usr/bin/env bash
# `make stress`: the integration binary (tests/integration/) STRESS_RUNS times in a row with more
# parallelism than CI (--test-threads=STRESS_THREADS) while STRESS_HOGS busy loops keep the cores
# busy, to bring out races that a quiet machine hides. A test that fails here is a defect of the
# product or of the test: find the race, never add patience.
#
#   make stress                                   # 10 runs, 8 threads, 1 hog
#   STRESS_RUNS=3 STRESS_THREADS=16 STRESS_HOGS=2 make stress
#   STRESS_FILTER=manual_run make stress          # only the tests whose names contain this
#
# Stops at the first red run (its log is kept) unless STRESS_KEEP_GOING=1. Each run's output is
# in target/stress/run-N.log; the last line says how many runs were green.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${STRESS_RUNS:-10}
threads=${STRESS_THREADS:-8}
hogs=${STRESS_HOGS:-1}
filter=${STRESS_FILTER:-}
logs=target/stress
mkdir -p "$logs"

hog_pids=()
stop_hogs() {
  local pid
  for pid in "${hog_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop_hogs EXIT
for _ in $(seq "$hogs"); do
  # A bounded busy loop: it ends by itself after two hours even if this script is killed hard.
  timeout 7200 sh -c 'while :; do :; done' &
  hog_pids+=($!)
done
echo "stress: $runs runs of the integration tests at --test-threads=$threads beside $hogs CPU hog(s)${filter:+, tests matching '$filter'}"

# The binary `make stress` built, run as it is: a source change made while the runs go on is not
# picked up halfway (cargo test would rebuild it).
bin=$(cargo test --locked --test integration --no-run --message-format=json 2>/dev/null \
  | python3 hack/cargo-executable.py integration)
[[ -x "$bin" ]] || { echo "stress: the integration test binary was not found (cargo test --test integration --no-run)" >&2; exit 1; }

green=0
for i in $(seq "$runs"); do
  log="$logs/run-$i.log"
  start=$SECONDS
  args=(--test-threads="$threads")
  [[ -z "$filter" ]] || args=("$filter" "${args[@]}")
  if "$bin" "${args[@]}" >"$log" 2>&1; then
    result=green
    green=$((green + 1))
  else
    result=RED
  fi
  summary=$(grep -E '^test result:' "$log" | tail -1 || true)
  printf 'stress: run %d/%d %s in %d s: %s\n' "$i" "$runs" "$result" $((SECONDS - start)) "${summary:-no test result line}"
  if [[ $result == RED ]]; then
    grep -E '^(---- .* stdout ----|thread .* panicked)' "$log" | head -20 | sed 's/^/    /' || true
    echo "    log: $log"
    [[ -n "${STRESS_KEEP_GOING:-}" ]] || break
  fi
done
echo "stress: $green of $runs runs green"
(( green == runs ))

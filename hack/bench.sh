#!/usr/bin/env bash
# make bench: builds the release binary, runs the benchmark in tests/bench.rs (four fleets of
# transfers, each against a fresh operator, on a local control plane and the AWS emulator) and
# writes its tables into BENCHMARKS.md between the bench:start and bench:end markers.
#
#   FERRY_BENCH_COUNTS="1,10,10,10,0,0"  a quick subset: transfers of scenarios a to f (0 skips one)
#   FERRY_BENCH_IDLE_SECS=20         a shorter idle window than the default resync interval
#
# With either set, the tables are printed but BENCHMARKS.md is left alone unless
# FERRY_BENCH_WRITE=1. The run's stderr (progress, test environment) goes to
# target/bench-stderr.log.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked
export FERRY_BENCH_BIN="$PWD/target/release/ferry"
out=$(mktemp)
log="$PWD/target/bench-stderr.log"
trap 'rm -f "$out"' EXIT
started=$(date +%s)
if ! cargo test --locked --test bench -- --ignored --nocapture --test-threads=1 2>"$log" | tee "$out"; then
    echo "the benchmark failed; see $log" >&2
    tail -n 20 "$log" >&2
    exit 1
fi
elapsed=$(( $(date +%s) - started ))
table=$(sed -n '/<!-- bench-output:start -->/,/<!-- bench-output:end -->/p' "$out" \
    | sed -e 's/^test bench_fleets \.\.\. //' | grep -v -e '<!-- bench-output:' || true)
if [ -z "$table" ]; then
    echo "no table in the benchmark's output; see $log" >&2
    exit 1
fi
if { [ -n "${FERRY_BENCH_COUNTS:-}" ] || [ -n "${FERRY_BENCH_IDLE_SECS:-}" ]; } && [ "${FERRY_BENCH_WRITE:-0}" != 1 ]; then
    echo "a subset (FERRY_BENCH_COUNTS/FERRY_BENCH_IDLE_SECS): BENCHMARKS.md left alone (FERRY_BENCH_WRITE=1 writes it)"
    exit 0
fi
machine="$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -m)"
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- src 2>/dev/null || echo ' + uncommitted changes in src/')"
python3 - "$table" "$machine" "$commit" "$elapsed" "${FERRY_BENCH_COUNTS:-1,100,1000,100,1000,1000}" <<'PY'
import re, sys, datetime
table, machine, commit, elapsed, counts = sys.argv[1:]
path = "BENCHMARKS.md"
text = open(path).read()
start, end = "<!-- bench:start -->", "<!-- bench:end -->"
stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
block = (f"{start}\nLast run: {stamp} on {machine}; release build of {commit}; "
         f"transfers per scenario {counts}; the whole run took {int(elapsed) // 60} min {int(elapsed) % 60} s.\n\n"
         f"{table.strip()}\n{end}")
if start not in text or end not in text:
    sys.exit(f"{path}: the {start} / {end} markers are missing")
text = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S)
open(path, "w").write(text)
PY
echo "BENCHMARKS.md updated"

#!/usr/bin/env bash
# make bench: builds the release binary and runs the benchmarks in tests/bench.rs against a
# local control plane and the AWS emulator, then writes the table into BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked
export FERRY_BENCH_BIN="$PWD/target/release/ferry"
out=$(mktemp)
cargo test --locked --test bench -- --ignored --nocapture --test-threads=1 2>/dev/null | tee "$out"
table=$(grep -o '| .*|$' "$out")
rm -f "$out"
machine="$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -m)"
python3 - "$table" "$machine" <<'PY'
import re, sys, datetime
table, machine = sys.argv[1], sys.argv[2]
path = "BENCHMARKS.md"
text = open(path).read()
start, end = "<!-- bench:start -->", "<!-- bench:end -->"
block = f"{start}\nLast run: {datetime.date.today()} on {machine}.\n\n{table}\n{end}"
text = re.sub(re.escape(start) + ".*?" + re.escape(end), block, text, flags=re.S)
open(path, "w").write(text)
PY
echo "BENCHMARKS.md updated"

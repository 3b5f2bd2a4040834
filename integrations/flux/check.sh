#!/bin/sh
# Computes the kstatus (what Flux's `wait: true` / `healthChecks` read) of every example object in
# ../argocd/testdata with ferry-kstatus (sigs.k8s.io/cli-utils kstatus) and compares it with
# testdata/<name>.kstatus.
#
#   integrations/flux/check.sh                # uses <repo>/.cache/bin/ferry-kstatus
#   KSTATUS=/path/to/ferry-kstatus integrations/flux/check.sh
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
kstatus=${KSTATUS:-"$repo/.cache/bin/ferry-kstatus"}
if [ ! -x "$kstatus" ]; then
  echo "ferry-kstatus not found at $kstatus (build it with tests/tools/build.sh)" >&2
  exit 2
fi

fail=0
count=0
for expected in "$here"/testdata/*.kstatus; do
  [ -e "$expected" ] || continue
  name=$(basename "$expected" .kstatus)
  object="$here/../argocd/testdata/$name.json"
  count=$((count + 1))
  if ! got=$("$kstatus" -object "$object"); then
    echo "FAIL $name: ferry-kstatus failed"
    fail=1
    continue
  fi
  if [ "$got" = "$(cat "$expected")" ]; then
    echo "ok   $name -> $got"
  else
    echo "FAIL $name"
    echo "  want: $(cat "$expected")"
    echo "  got:  $got"
    fail=1
  fi
done
[ "$count" -gt 0 ] || { echo "no expectations in $here/testdata" >&2; exit 1; }
exit "$fail"

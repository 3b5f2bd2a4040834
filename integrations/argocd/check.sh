#!/bin/sh
# Runs health.lua over every testdata/*.json (and *.yaml) object with ferry-luahealth, the
# gopher-lua harness set up as Argo CD sets it up, and compares the result with the sidecar
# .expected file. Also checks that argocd-cm-patch.yaml embeds exactly health.lua.
#
#   integrations/argocd/check.sh              # uses <repo>/.cache/bin/ferry-luahealth
#   LUAHEALTH=/path/to/ferry-luahealth integrations/argocd/check.sh
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
luahealth=${LUAHEALTH:-"$repo/.cache/bin/ferry-luahealth"}
if [ ! -x "$luahealth" ]; then
  echo "ferry-luahealth not found at $luahealth (build it with tests/tools/build.sh)" >&2
  exit 2
fi

"$here/render-cm.sh" --check

fail=0
count=0
for object in "$here"/testdata/*.json "$here"/testdata/*.yaml; do
  [ -e "$object" ] || continue
  expected="${object%.*}.expected"
  name=$(basename "$object")
  count=$((count + 1))
  if [ ! -f "$expected" ]; then
    echo "FAIL $name: no $(basename "$expected")"
    fail=1
    continue
  fi
  bad=0
  # As Argo CD runs a health check from argocd-cm (no string/math), and with every library open.
  for flags in "" "-open-libs"; do
    # shellcheck disable=SC2086
    if ! got=$("$luahealth" $flags -script "$here/health.lua" -object "$object"); then
      echo "FAIL $name ${flags}: ferry-luahealth failed"
      bad=1
      continue
    fi
    if [ "$got" != "$(cat "$expected")" ]; then
      echo "FAIL $name ${flags}"
      echo "  want: $(cat "$expected")"
      echo "  got:  $got"
      bad=1
    fi
  done
  if [ "$bad" -eq 0 ]; then
    echo "ok   $name -> $(cat "$expected")"
  else
    fail=1
  fi
done
[ "$count" -gt 0 ] || { echo "no test objects in $here/testdata" >&2; exit 1; }
exit "$fail"

#!/usr/bin/env bash
# Installs the Debian packages the image build and the test node need, when they are missing:
#
#   hack/host-packages.sh podman runc                 # make image
#   hack/host-packages.sh containerd runc containernetworking-plugins   # the e2e node
#
# Idempotent: a package already installed costs one dpkg-query. `apt-get update` runs only when
# a package is not found in the current lists. Needs root (or sudo) the first time; never
# starts a service (containerd is started by the tests, with its own config and state dirs).
set -euo pipefail
(( $# > 0 )) || { echo "usage: $0 PACKAGE..." >&2; exit 2; }

# Sets `missing` to those of the arguments that are not installed.
find_missing() {
  missing=()
  local p status
  for p in "$@"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [[ "$status" == "install ok installed" ]] || missing+=("$p")
  done
}

find_missing "$@"
(( ${#missing[@]} > 0 )) || exit 0
# One install at a time on this machine (make -j runs several callers; dpkg has one lock and
# apt-get fails at once when another holds it): wait for the other, then look again.
exec 9>"${TMPDIR:-/tmp}/ferry-host-packages.lock"
flock 9
find_missing "$@"
(( ${#missing[@]} > 0 )) || exit 0

sudo=()
if (( EUID != 0 )); then
  command -v sudo >/dev/null || { echo "host-packages: need root to install ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
# Packages must not start daemons on install (containerd's postinst would otherwise try to).
install_cmd=("${sudo[@]}" env RUNLEVEL=1 apt-get install -y -q --no-install-recommends)
echo "host-packages: installing ${missing[*]}" >&2
# A package the current lists do not know (a fresh machine has none): update them first.
for p in "${missing[@]}"; do
  candidate=$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ { print $2 }')
  if [[ -z "$candidate" || "$candidate" == "(none)" ]]; then
    "${sudo[@]}" apt-get update -q >/dev/null
    break
  fi
done
if ! "${install_cmd[@]}" "${missing[@]}" >/dev/null; then
  # Stale lists (a version no longer on the mirror): update and try once more.
  "${sudo[@]}" apt-get update -q >/dev/null
  "${install_cmd[@]}" "${missing[@]}" >/dev/null
fi

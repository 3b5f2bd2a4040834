#!/usr/bin/env bash
# Builds the pinned Kubernetes tools and Ferry's small checkers from their Go
# modules into .cache/bin/ (git-ignored):
#
#   etcd  kube-apiserver  kubectl  helm  ferry-luahealth  ferry-kstatus
#   kubelet  kube-scheduler  kube-controller-manager  ferry-pause
#
# The kubelet, kube-scheduler, kube-controller-manager and ferry-pause make the
# real node that tests/e2e.rs starts (tests/common/node.rs); ferry-pause is the
# sandbox ("pause") process of its pods.
#
#   tests/tools/build.sh              # everything
#   tests/tools/build.sh helm etcd    # only these
#   FORCE=1 tests/tools/build.sh      # rebuild even when up to date
#
# A tool is rebuilt only when its inputs change: .cache/bin/.stamps/<tool> holds
# a hash of its module's files (go.mod, go.sum, sources), the package, the
# flags and the Go version. The out-of-date tools of one module (and the same
# ldflags) are built by ONE go build, so the packages they share — most of
# them, for etcd and the Kubernetes binaries — are compiled once and the two
# cores stay busy while one binary links. Nothing prebuilt is downloaded: only
# the Go module proxy is used, through the go command.
set -euo pipefail
cd "$(dirname "$0")"/../..
root=$PWD

export GOTOOLCHAIN=local
export CGO_ENABLED=0
bin="$root/.cache/bin"
stamps="$bin/.stamps"
mkdir -p "$bin" "$stamps"

command -v go >/dev/null || { echo "build.sh: the go command is not on PATH" >&2; exit 1; }
goversion=$(go env GOVERSION GOOS GOARCH | tr '\n' ' ')

# Versions are read from the wrapper modules, so go.mod stays the one place
# where a version is pinned.
modversion() { # <module dir> <module path>
  awk -v m="$2" '{ for (i = 1; i < NF; i++) if ($i == m && $(i+1) ~ /^v/) { print $(i+1); exit } }' "$1/go.mod"
}
kube_version=$(modversion tests/tools/kube k8s.io/kubernetes)
helm_version=$(modversion tests/tools/helm helm.sh/helm/v3)
helm_clientgo=$(modversion tests/tools/helm k8s.io/client-go) # v0.MINOR.PATCH
[[ -n "$kube_version" && -n "$helm_version" && -n "$helm_clientgo" ]] || {
  echo "build.sh: could not read the pinned versions from tests/tools/*/go.mod" >&2; exit 1; }

kube_minor=${kube_version#v1.}; kube_minor=${kube_minor%%.*}
kube_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  kube_ldflags+=" -X $pkg.gitVersion=$kube_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$kube_minor -X $pkg.gitTreeState=clean"
done
# As helm's Makefile does: its version, and the Kubernetes version it assumes
# when templating offline (from the client-go it is built with).
helm_k8s_minor=${helm_clientgo#v0.}; helm_k8s_minor=${helm_k8s_minor%%.*}
helm_ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$helm_version -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  helm_ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$helm_k8s_minor"
done

# name | module dir | package (its full import path: go list names it so) | ldflags
tools=(
  # etcd gets the Kubernetes ldflags only to share their build: it has none of those packages.
  "etcd|tests/tools/kube|go.etcd.io/etcd/server/v3|$kube_ldflags"
  "kube-apiserver|tests/tools/kube|k8s.io/kubernetes/cmd/kube-apiserver|$kube_ldflags"
  "kubectl|tests/tools/kube|k8s.io/kubernetes/cmd/kubectl|$kube_ldflags"
  "kubelet|tests/tools/kube|k8s.io/kubernetes/cmd/kubelet|$kube_ldflags"
  "kube-scheduler|tests/tools/kube|k8s.io/kubernetes/cmd/kube-scheduler|$kube_ldflags"
  "kube-controller-manager|tests/tools/kube|k8s.io/kubernetes/cmd/kube-controller-manager|$kube_ldflags"
  "helm|tests/tools/helm|helm.sh/helm/v3/cmd/helm|$helm_ldflags"
  "ferry-luahealth|tests/tools/gitops|ferry.test/tools/gitops/cmd/ferry-luahealth|-s -w"
  "ferry-kstatus|tests/tools/gitops|ferry.test/tools/gitops/cmd/ferry-kstatus|-s -w"
  "ferry-pause|tests/tools/pause|ferry.test/tools/pause|-s -w"
)

wanted=("$@")
for w in "${wanted[@]}"; do
  found=no
  for t in "${tools[@]}"; do [[ "${t%%|*}" == "$w" ]] && found=yes; done
  [[ $found == yes ]] || { echo "build.sh: unknown tool '$w'" >&2; exit 2; }
done

# DWARF is not generated at all (the linker's -s -w would strip it): about a
# fifth less CPU for a cold build, the same binaries otherwise.
#
# And no inlining (-l) in the Kubernetes projects' own packages, the generated
# clients, informers, conversions and validation that are most of the compile;
# the standard library and the other modules (etcd's storage, gRPC, protobuf,
# JSON, k8s.io/apimachinery) keep it, so the API server's CPU under load stays
# the same (measured in README.md here). A -gcflags pattern that matches
# replaces the earlier ones, so each repeats -dwarf=false.
gcflags=(-gcflags="all=-dwarf=false")
for project in kubernetes client-go apiserver api kubectl apiextensions-apiserver kube-aggregator cloud-provider; do
  gcflags+=(-gcflags="k8s.io/$project/...=-dwarf=false -l")
done

wants() { # <name>: was it asked for (or was nothing asked for)?
  (( ${#wanted[@]} == 0 )) && return 0
  local w
  for w in "${wanted[@]}"; do [[ "$w" == "$1" ]] && return 0; done
  return 1
}

# The out-of-date tools, grouped by (module dir, ldflags) in the order of first appearance.
declare -A group_of stamp_of pkg_of
groups=()
for t in "${tools[@]}"; do
  IFS='|' read -r name dir pkg ldflags <<<"$t"
  wants "$name" || continue

  stamp=$( {
    printf '%s\n' "$name" "$pkg" "$ldflags" "${gcflags[*]}" "$goversion"
    # Every file of the module: go.mod, go.sum and, for our own programs, the sources.
    (cd "$dir" && find . -type f ! -name '*~' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
  } | sha256sum | cut -d' ' -f1)

  if [[ -z "${FORCE:-}" && -x "$bin/$name" && -f "$stamps/$name" && "$(cat "$stamps/$name")" == "$stamp" ]]; then
    printf '%-24s up to date\n' "$name"
    continue
  fi
  key="$dir|$ldflags"
  [[ -n "${group_of[$key]:-}" ]] || groups+=("$key")
  group_of[$key]+="$name "
  stamp_of[$name]=$stamp
  pkg_of[$name]=$pkg
done

failed=0
for key in "${groups[@]}"; do
  dir=${key%%|*}
  ldflags=${key#*|}
  read -ra names <<<"${group_of[$key]}"
  pkgs=()
  for name in "${names[@]}"; do pkgs+=("${pkg_of[$name]}"); rm -f "$stamps/$name"; done

  start=$SECONDS
  # A line when a build starts, not only when it ends: kube-apiserver alone takes minutes cold.
  printf '%-24s building (go build %s)\n' "${names[*]}" "${pkgs[*]}"
  # A folder of this run's own: two build.sh at once (two make targets) must not write or
  # move each other's output.
  out="$bin/.build.$$"
  rm -rf "$out"
  mkdir -p "$out"
  # go build -o <folder>/ names each binary as go install would: ask go for those names, in
  # one go list (it loads the module graph once), and refuse two tools that would share one.
  declare -A built_as=() taken=()
  ok=yes
  listed=$(cd "$dir" && go list -f '{{.ImportPath}}|{{.Target}}' "${pkgs[@]}") || ok=no
  while IFS='|' read -r path target; do
    [[ -n "$path" ]] || continue
    built_as[$path]=$(basename "$target")
  done <<<"$listed"
  for name in "${names[@]}"; do
    as=${built_as[${pkg_of[$name]}]:-}
    if [[ -z "$as" ]]; then
      echo "build.sh: go list named no binary for $name (${pkg_of[$name]})" >&2; ok=no
    elif [[ -n "${taken[$as]:-}" ]]; then
      echo "build.sh: $name and ${taken[$as]} would both be built as $as" >&2; ok=no
    else
      taken[$as]=$name
    fi
  done
  if [[ $ok == yes ]] && (cd "$dir" && go build -p 2 -trimpath -buildvcs=false "${gcflags[@]}" \
    -ldflags "$ldflags" -o "$out/" "${pkgs[@]}"); then
    for name in "${names[@]}"; do
      mv -f "$out/${built_as[${pkg_of[$name]}]}" "$bin/$name"
      echo "${stamp_of[$name]}" > "$stamps/$name"
      printf '%-24s built in %d s\n' "$name" $((SECONDS - start))
    done
  else
    printf '%-24s FAILED after %d s\n' "${names[*]}" $((SECONDS - start)) >&2
    failed=1
  fi
  rm -rf "$out"
  unset built_as taken
done
exit $failed

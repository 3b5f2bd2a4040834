#!/usr/bin/env bash
# Builds container images offline with podman (no registry, no Docker engine):
#
#   hack/image.sh            # the operator: ghcr.io/ferry-dev/ferry:<crate version>  (make image)
#   hack/image.sh pause      # the test node's sandbox image ferry.test/pause:1 (tests/common/node.rs)
#
# The operator image has exactly the contents of the Dockerfile's final stage (read from it):
# the ferry binary linked statically (crt-static, target x86_64-unknown-linux-gnu, built into
# target/static so the normal target dir is untouched), the machine's CA bundle, user 65532,
# FROM scratch. Each image is also saved as a docker-archive in .cache/images/ (what
# `ctr images import` loads on the test node). podman's storage lives in .cache/podman.
#
# Environment: IMAGE (repository, default ghcr.io/ferry-dev/ferry), TAG (default: the crate
# version from Cargo.toml), PROFILE (the cargo profile of the binary: release, the default and
# what `make image` ships; `make test` builds the e2e image with dev: the debug build linked
# statically, unoptimized).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
what=${1:-ferry}

bash hack/host-packages.sh podman runc

out="$root/.cache/images"
mkdir -p "$out" "$root/.cache/podman"
export CONTAINERS_CONF="$root/hack/containers.conf"
podman=(podman --root "$root/.cache/podman/storage" --runroot "$root/.cache/podman/run"
        --tmpdir "$root/.cache/podman/tmp" --storage-driver vfs --cgroup-manager cgroupfs --events-backend file)

# The crate version, from [package] in Cargo.toml.
version=$(awk -F'"' '/^\[package\]/ { p = 1; next } /^\[/ { p = 0 } p && $1 ~ /^version *= */ { print $2; exit }' Cargo.toml)
[[ -n "$version" ]] || { echo "image.sh: no version in Cargo.toml" >&2; exit 1; }

ctx=$(mktemp -d "$root/.cache/images/ctx.XXXXXX")
trap 'rm -rf "$ctx"' EXIT

build() { # <image reference> <archive>
  local ref=$1 archive=$2 start=$SECONDS
  "${podman[@]}" build --quiet --pull=never --network=none --layers=false \
    --timestamp 0 -t "$ref" -f "$ctx/Containerfile" "$ctx" >/dev/null
  # The image this tag named before, now dangling, goes.
  "${podman[@]}" image prune --force >/dev/null
  rm -f "$archive"
  "${podman[@]}" save --quiet --format docker-archive -o "$archive" "$ref"
  local bytes id
  bytes=$("${podman[@]}" image inspect --format '{{.Size}}' "$ref")
  id=$("${podman[@]}" image inspect --format '{{.Id}}' "$ref")
  printf 'image %s: %s bytes (%s MiB), id sha256:%.12s, saved to %s in %d s\n' "$ref" "$bytes" \
    "$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }')" "$id" "${archive#"$root"/}" $((SECONDS - start))
}

case "$what" in
  ferry)
    ref="${IMAGE:-ghcr.io/ferry-dev/ferry}:${TAG:-$version}"
    start=$SECONDS
    profile=${PROFILE:-release}
    if [[ $profile == dev ]]; then
      # The debug build's own compiled crates (target/debug, as `cargo build` left them), linked
      # once more with glibc statically: after a `cargo build` (make demo) only the ferry
      # binary's crate is compiled again, in seconds. After a `cargo test` alone, the crates
      # whose features the tests' dev-dependencies change (tokio's and aws-smithy-http-client's
      # test-util, indexmap's serde, ...) and those above them are compiled again for the plain
      # feature set: 55 crates, 113 s in a cold `make test` on 2 cores. A build for another
      # target or profile compiles every dependency again (6 minutes cold on 2 cores
      # unoptimized, 17 optimized). cargo keeps this binary apart: target/debug/ferry stays the
      # dynamic one.
      bin=$(cargo rustc --locked --bin ferry --message-format=json-render-diagnostics \
              -- -C target-feature=+crt-static | python3 hack/cargo-executable.py ferry)
    else
      RUSTFLAGS="-C target-feature=+crt-static" CARGO_TARGET_DIR="$root/target/static" \
        cargo build --profile "$profile" --locked --bin ferry --target x86_64-unknown-linux-gnu
      bin="$root/target/static/x86_64-unknown-linux-gnu/$profile/ferry"
    fi
    [[ -x "$bin" ]] || { echo "image.sh: no ferry binary was built" >&2; exit 1; }
    # Static indeed: no program interpreter, no shared libraries.
    if readelf -l "$bin" 2>/dev/null | grep -q 'Requesting program interpreter'; then
      echo "image.sh: $bin is dynamically linked" >&2; exit 1
    fi
    echo "static binary ($profile profile) built in $((SECONDS - start)) s"
    mkdir -p "$ctx/out"
    cp "$bin" "$ctx/out/ferry"
    # Symbols are of no use in the image (a third of the binary); the Dockerfile strips too.
    strip --strip-all "$ctx/out/ferry"
    cp /etc/ssl/certs/ca-certificates.crt "$ctx/out/ca-certificates.crt"
    # The Dockerfile's final stage, its COPY --from=build /out/X reading X from the context.
    awk '/^FROM /{ stage = $0 == "FROM scratch"; buf = "" } stage { buf = buf $0 "\n" } END { printf "%s", buf }' Dockerfile \
      | sed 's|^COPY --from=build /out/|COPY out/|' > "$ctx/Containerfile"
    grep -q '^FROM scratch' "$ctx/Containerfile" || { echo "image.sh: the Dockerfile's last stage is not FROM scratch" >&2; exit 1; }
    if grep -v '^\(#\|$\|FROM scratch$\|COPY out/\|USER \|ENTRYPOINT \|CMD \|LABEL \)' "$ctx/Containerfile"; then
      echo "image.sh: the Dockerfile's final stage has instructions hack/image.sh cannot reproduce (above)" >&2; exit 1
    fi
    build "$ref" "$out/ferry-${TAG:-$version}.tar"
    ;;
  pause)
    bash tests/tools/build.sh ferry-pause >/dev/null
    cp .cache/bin/ferry-pause "$ctx/pause"
    printf 'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n' > "$ctx/Containerfile"
    build ferry.test/pause:1 "$out/pause.tar"
    ;;
  *)
    echo "usage: $0 [ferry|pause]" >&2; exit 2 ;;
esac

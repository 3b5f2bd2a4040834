# The operator image the Helm chart runs (values: image.repository, image.tag or image.digest).
#
#   docker build -t <registry>/ferry:0.1.0 .        # or: podman build ...
#
# The final stage is exactly what `make image` (hack/image.sh) builds offline with podman: a
# static binary, the CA bundle, user 65532 — nothing else (no shell, no libc, no package
# manager). hack/image.sh reads its Containerfile from the final stage below, so the two cannot
# drift apart: keep every instruction of that stage a COPY --from=build /out/..., USER,
# ENTRYPOINT, CMD or LABEL.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY src ./src
# glibc linked in statically: no target to install, and the binary runs FROM scratch.
ENV RUSTFLAGS="-C target-feature=+crt-static" CARGO_TARGET_DIR=/src/target/static
RUN cargo build --release --locked --bin ferry --target x86_64-unknown-linux-gnu \
 && mkdir -p /out \
 && cp target/static/x86_64-unknown-linux-gnu/release/ferry /out/ferry \
 && strip --strip-all /out/ferry \
 && cp /etc/ssl/certs/ca-certificates.crt /out/ca-certificates.crt

# A static binary, the CA bundle and a non-root user 65532: what the chart's security context
# (runAsNonRoot, runAsUser 65532, readOnlyRootFilesystem) expects.
FROM scratch
COPY --from=build /out/ferry /usr/local/bin/ferry
COPY --from=build /out/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/ferry"]
CMD ["run"]

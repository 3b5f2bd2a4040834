# The operator image the Helm chart runs (values: image.repository, image.tag).
# Not built in this repository's CI: the development machines have no Docker engine.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY src ./src
RUN cargo build --release --locked --bin ferry

# glibc, CA certificates, a non-root user 65532: what the chart's security context expects.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/ferry /usr/local/bin/ferry
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/ferry"]
CMD ["run"]

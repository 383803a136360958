# syntax=docker/dockerfile:1
# The secure-api-operator image: the release binary on distroless (glibc, CA certificates, no
# shell), running as the unprivileged user 65532.
#
#   docker build --build-arg VERSION=0.1.0 -t REGISTRY/secure-api-operator:0.1.0 .
#
# VERSION only labels the image; keep it the crate version of Cargo.toml (the chart's appVersion).
#
# The builder compiles the dependencies first, against placeholder sources, in a layer that is only
# rebuilt when Cargo.toml or Cargo.lock change; an edit under src/ recompiles this crate only.
# The test bed (crates/testbed: emulators, `dev`, `emulator`) is a workspace member that the
# operator's binary never depends on: only its manifest is copied, for cargo to read the workspace,
# and its library is a placeholder. The image offers `run`, `crds` and `render`, and the same flags
# in both builds keep the dependency layer a match. (A chart test looks for
# `cargo build --release --locked --bin secure-api-operator`: keep that prefix.)
# tests/integration/image.rs replays this stage without a container engine: its COPY lines into a
# clean directory, its RUN lines there with `sh`, in order. So keep every path relative to WORKDIR.

# Bookworm, like the runtime below: the binary links glibc dynamically and must not need a newer
# glibc than Debian 12's.
ARG RUST_VERSION=1.95
FROM rust:${RUST_VERSION}-slim-bookworm AS builder
WORKDIR /build

# Dependencies only. cargo reads every target the workspace's manifests declare (benches, tests,
# the test bed's library) before it builds anything, so each gets a placeholder file, read from
# the manifests themselves so the list cannot fall behind them. Then this crate's placeholder build goes (`cargo clean -p`), and the placeholders
# with it: the next build compiles the crate from its sources whatever their files' times, and no
# placeholder binary is left where a build might take it for current.
COPY Cargo.toml Cargo.lock ./
COPY crates/testbed/Cargo.toml ./crates/testbed/
COPY docker/cargo-placeholders.sh ./docker/
RUN sh docker/cargo-placeholders.sh . crates/testbed > placeholders \
    && cargo build --release --locked --bin secure-api-operator \
    && cargo clean --release --locked -p secure-api-operator \
    && xargs rm -f < placeholders \
    && rm placeholders

# The crate itself. Benches and tests are not built, so placeholders stand in for them again.
# CARGO_TARGET_DIR: the replay test shares its own target directory, so that the dependencies are
# compiled once.
COPY src ./src
RUN sh docker/cargo-placeholders.sh . crates/testbed \
    && cargo build --release --locked --bin secure-api-operator \
    && cp "${CARGO_TARGET_DIR:-target}/release/secure-api-operator" ./secure-api-operator

# distroless/cc: glibc and libgcc for the dynamically linked binary, CA certificates for rustls'
# native roots, and the `nonroot` user (65532). No shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="secure-api-operator" \
      org.opencontainers.image.description="Kubernetes operator: Google Cloud Secret Manager secrets into workloads, exact-version rollouts, API Gateway from declared routes" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:nonroot"
COPY --from=builder /build/secure-api-operator /secure-api-operator
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/secure-api-operator"]
CMD ["run"]

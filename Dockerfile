# syntax=docker/dockerfile:1
# The secure-api-operator image: the release binary on distroless (glibc, CA certificates, no
# shell), running as the unprivileged user 65532.
#
#   docker build --build-arg VERSION=0.1.0 -t REGISTRY/secure-api-operator:0.1.0 .
#
# VERSION only labels the image; keep it the crate version of Cargo.toml (the chart's appVersion).
#
# The builder compiles the dependencies first, against a placeholder crate, in a layer that is
# only rebuilt when Cargo.toml or Cargo.lock change; an edit under src/ recompiles this crate only.
# Both builds leave out the `testbed` feature (emulators, `dev`, `emulator`): the image offers
# `run`, `crds` and `render`, and the same flags in both keep the dependency layer a match. (A chart
# test looks for `cargo build --release --locked --bin secure-api-operator`: keep that prefix.)

# Bookworm, like the runtime below: the binary links glibc dynamically and must not need a newer
# glibc than Debian 12's.
ARG RUST_VERSION=1.95
FROM rust:${RUST_VERSION}-slim-bookworm AS builder
WORKDIR /build

# Dependencies only: every target Cargo.toml declares gets a placeholder source file (cargo looks
# for the bench's file even though the bench, like the integration test, needs `testbed` and is
# not built here).
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches tests/integration \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && echo 'fn main() {}' > benches/kube_emulator.rs \
    && touch tests/integration/main.rs \
    && cargo build --release --locked --bin secure-api-operator --no-default-features \
    && rm -rf src benches tests

# The crate itself. touch: COPY keeps the files' own times, which may be older than the
# placeholder build, and cargo decides what to rebuild by modification time.
COPY src ./src
COPY benches ./benches
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --bin secure-api-operator --no-default-features \
    && cp target/release/secure-api-operator /secure-api-operator

# distroless/cc: glibc and libgcc for the dynamically linked binary, CA certificates for rustls'
# native roots, and the `nonroot` user (65532). No shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="secure-api-operator" \
      org.opencontainers.image.description="Kubernetes operator: Google Cloud Secret Manager secrets into workloads, exact-version rollouts, API Gateway from declared routes" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:nonroot"
COPY --from=builder /secure-api-operator /secure-api-operator
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/secure-api-operator"]
CMD ["run"]

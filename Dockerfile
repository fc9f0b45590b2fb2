# syntax=docker/dockerfile:1.7
#
# Ingot's container image: the release `ingot` binary on distroless (glibc, no shell, no
# package manager), running as the non-root user 65532. Build from the repository root:
#
#   docker build -t ingot:0.1.0 .
#
# The Helm chart in deploy/helm/ingot runs it with `serve --roles ...`; on its own,
# `docker run -p 8080:8080 -p 1883:1883 -p 5683:5683/udp ingot:0.1.0` starts the embedded
# mode with its data in the volume /var/lib/ingot.

# The toolchain of rust-toolchain.toml, so the image builds what CI tests.
ARG RUST_VERSION=1.95.0

FROM rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src
# The whole workspace: Cargo.lock pins every dependency (--locked below).
COPY . .
# The registry and target directories are BuildKit caches, so a rebuild after a source
# change recompiles only Ingot's crates. The binary leaves the cache before the layer ends.
# No debug information and stripped symbols in the image (the repository's release
# profile keeps line tables for local profiling).
ENV CARGO_PROFILE_RELEASE_DEBUG=none \
    CARGO_PROFILE_RELEASE_STRIP=symbols
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p ingot --bin ingot \
    && cp target/release/ingot /usr/local/bin/ingot \
    && mkdir -p /var/lib/ingot/data

# distroless/cc: glibc and libgcc of Debian 12, matching the bookworm build; CA
# certificates for TLS to NATS; the `nonroot` tag sets uid and gid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /usr/local/bin/ingot /usr/local/bin/ingot
COPY --from=build --chown=65532:65532 /var/lib/ingot /var/lib/ingot
USER 65532:65532
WORKDIR /var/lib/ingot
ENV INGOT_DATA_DIR=/var/lib/ingot/data \
    INGOT_LOG_FORMAT=json
VOLUME ["/var/lib/ingot"]
# HTTP (API, UI, ingest, /metrics, /healthz, /readyz), MQTT, CoAP.
EXPOSE 8080/tcp 1883/tcp 5683/udp
ENTRYPOINT ["/usr/local/bin/ingot"]
CMD ["serve"]

# syntax=docker/dockerfile:1
# paved's container image: the release binary on distroless, non-root (UID/GID 65532).
#   docker build -t ghcr.io/example/paved:0.1.0 .
# (docker buildx build / podman build / buildah bud work the same way.) See deploy/README.md.

ARG RUST_VERSION=1.89
# Debian 12 on both sides: the binary links against the glibc that distroless/cc-debian12 ships.
FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY . .
# --locked: exactly the dependency versions of Cargo.lock. The cache mounts keep the registry and
# target/ between builds (BuildKit); the binary is copied out of the cached target/.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin paved \
    && install -D -m 0755 target/release/paved /out/paved

FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="paved" \
      org.opencontainers.image.description="Self-service PostgreSQL on AWS RDS for Kubernetes from Crossplane-style claims" \
      org.opencontainers.image.source="https://github.com/example/paved" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/paved /paved
# nonroot in distroless: 65532:65532. Numeric, so runAsNonRoot can verify it.
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["/paved"]
CMD ["run"]

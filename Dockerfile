# One Dockerfile, three images:
#   docker build --target registry   -t rss-recipes/registry .
#   docker build --target middletier -t rss-recipes/middletier .
#   docker build --target edge       -t rss-recipes/edge .
# (docker-compose.yml builds all three.)
#
# Stages: `chef` has the toolchain and cargo-chef; `planner` writes the
# dependency recipe; `builder` compiles the dependencies first, in a layer
# that is reused until Cargo.toml or Cargo.lock change, then all three
# binaries in one `cargo build`. The runtime images are distroless: glibc
# and CA certificates, no shell, no package manager, running as the
# unprivileged `nonroot` user.
#
# No `# syntax=` line: it would make every BuildKit build fetch its
# frontend from Docker Hub, and the built-in one reads this file. Where
# Docker Hub or gcr.io cannot be reached, scripts/base-images.sh builds
# local stand-ins for the base images first.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
# The root Cargo.toml is both the workspace and the all-in-one package, so
# each service's package is named (-p): a bare `cargo build` builds only
# the all-in-one. Release binaries without debug info or symbols: about
# 11-21 MiB each, instead of 97-145 MB with line tables.
ENV CARGO_PROFILE_RELEASE_DEBUG=false \
    CARGO_PROFILE_RELEASE_STRIP=symbols
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked -p registry -p middletier -p edge --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked -p registry -p middletier -p edge

FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
# Marks our images, so the test command can remove the ones a rebuild
# left untagged.
LABEL rss-recipes.image=true
WORKDIR /app
# Listen on every interface inside the container; the published ports and
# the compose network decide who can reach it.
ENV RSS_HOST=0.0.0.0 \
    RSS_LOG_FORMAT=json
USER nonroot

FROM runtime AS registry
COPY --from=builder /src/target/release/registry /app/registry
EXPOSE 8761
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 CMD ["/app/registry", "healthcheck"]
ENTRYPOINT ["/app/registry"]

FROM runtime AS middletier
COPY --from=builder /src/target/release/middletier /app/middletier
EXPOSE 9191
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 CMD ["/app/middletier", "healthcheck"]
ENTRYPOINT ["/app/middletier"]

FROM runtime AS edge
COPY --from=builder /src/target/release/edge /app/edge
EXPOSE 9090
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 CMD ["/app/edge", "healthcheck"]
ENTRYPOINT ["/app/edge"]

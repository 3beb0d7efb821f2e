# syntax=docker/dockerfile:1
#
# One Dockerfile, three images:
#   docker build --target registry   -t rss-recipes/registry .
#   docker build --target middletier -t rss-recipes/middletier .
#   docker build --target edge       -t rss-recipes/edge .
# (docker-compose.yml builds all three.)
#
# Stages: `chef` has the toolchain and cargo-chef; `planner` writes the
# dependency recipe; `builder` compiles the dependencies first, in a layer
# that is reused until Cargo.toml or Cargo.lock change, then the project.
# The runtime images are distroless: glibc and CA certificates, no shell,
# no package manager, running as the unprivileged `nonroot` user.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-bookworm AS chef
RUN cargo install cargo-chef --locked
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked --bin registry --bin middletier --bin edge

FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
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

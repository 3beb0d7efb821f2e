# A local stand-in for the official rust:<version>-slim-bookworm, for
# machines that cannot pull it (scripts/base-images.sh builds it only
# then). It has what the official slim image has for building: Debian 12
# with gcc and libc6-dev, the toolchain under /usr/local/rustup, cargo's
# home in /usr/local/cargo, and the same environment. The toolchain is this
# machine's own (copied into the build context as toolchain/), and there
# is no rustup: the image builds with the one toolchain it has.
FROM debian:bookworm-slim

ARG RUST_VERSION
ENV RUSTUP_HOME=/usr/local/rustup \
    CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    RUST_VERSION=${RUST_VERSION}

RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*

COPY toolchain/ /usr/local/rustup/toolchains/${RUST_VERSION}-x86_64-unknown-linux-gnu/
RUN mkdir -p /usr/local/cargo/bin \
    && for tool in /usr/local/rustup/toolchains/*/bin/*; do ln -s "$tool" /usr/local/cargo/bin/; done \
    && chmod -R a+w /usr/local/cargo \
    && rustc --version && cargo --version

CMD ["bash"]

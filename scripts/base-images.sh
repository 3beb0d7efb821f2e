#!/usr/bin/env bash
# The base images the Dockerfile and docker-compose.yml start from, made
# ready in this machine's Docker engine:
#
#   scripts/base-images.sh           each image: kept if already here, else pulled, else built locally
#   scripts/base-images.sh --list    the images it provides, one per line
#
# A machine that reaches Docker Hub and gcr.io just pulls the official
# images, and nothing is built. Where no registry is reachable (a closed
# network), each missing image is built here instead, under the same name,
# as a local stand-in (labelled `rss-recipes.local-stand-in`), from what
# this machine can reach:
#
#   debian:bookworm-slim                   debootstrap --variant=minbase from Debian's mirror, imported
#   rust:1.95-slim-bookworm                that Debian, plus this machine's own Rust toolchain (no rustup),
#                                          with the official image's environment (docker/base-images/rust.Dockerfile)
#   gcr.io/distroless/cc-debian12:nonroot  FROM scratch: glibc, libgcc, libssl, CA certificates and tzdata from
#                                          Debian 12 packages, user nonroot (65532), no shell (distroless-cc.Dockerfile)
#   cassandra:5.0                          Apache Cassandra 5.0's jars from Maven Central (interop/cassandra/pom.xml),
#                                          OpenJDK 17, cqlsh from PyPI, and an entrypoint that reads the official
#                                          image's variables (docker/base-images/cassandra/)
#
# The stand-ins trust what this machine trusts: its own CA certificates
# (/usr/local/share/ca-certificates) go into the Debian base, so a build
# inside reaches crates.io the way this machine does. Remove a stand-in
# (`docker rmi NAME`) to have it pulled or built again. Needs a running
# Docker engine (scripts/docker-engine.sh); installs debootstrap from
# Debian's packages, and Java 17 and Maven, when a stand-in needs them.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
NAME=base-images.sh
JDK_PACKAGE=openjdk-17-jre-headless
# shellcheck source=scripts/lib/jvm-peer.sh
. scripts/lib/jvm-peer.sh

DEBIAN=debian:bookworm-slim
RUST_VERSION=$(sed -n 's/^ARG RUST_VERSION=//p' Dockerfile)
RUST=rust:${RUST_VERSION}-slim-bookworm
RUNTIME=gcr.io/distroless/cc-debian12:nonroot
CASSANDRA=$(sed -n 's/^ *image: \(cassandra:.*\)$/\1/p' docker-compose.yml)
IMAGES=("$DEBIAN" "$RUST" "$RUNTIME" "$CASSANDRA")
LABEL=rss-recipes.local-stand-in
WORK=$ROOT/target/base-images

case "${1:-}" in
    --list) printf '%s\n' "${IMAGES[@]}"; exit 0 ;;
    -h|--help) usage ;;
    "") ;;
    *) die "unknown argument $1 (see --help)" ;;
esac

docker info >/dev/null 2>&1 ||
    die "no Docker engine answers; run scripts/docker-engine.sh first (it installs and starts one)"

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

have() { docker image inspect "$1" >/dev/null 2>&1; }

# A build's output goes to a log; on failure its last lines are shown.
logged() {
    local log=$1
    shift
    if ! "$@" >"$log" 2>&1; then
        echo "--- last lines of $log ---" >&2
        tail -n 40 "$log" >&2
        return 1
    fi
}

build_debian() {
    command -v debootstrap >/dev/null 2>&1 || {
        echo "$NAME: installing debootstrap (Debian package)" >&2
        as_root apt-get update -qq
        DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq debootstrap >&2
    }
    local rootfs=$WORK/debian-rootfs
    as_root rm -rf "$rootfs"
    logged "$WORK/debian.log" as_root debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian ||
        die "debootstrap could not make a Debian 12 root file system (is deb.debian.org reachable?)"
    # As the official image: updates and security too, and no apt caches.
    as_root tee "$rootfs/etc/apt/sources.list" >/dev/null <<'APT'
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
APT
    as_root rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb
    if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
        as_root mkdir -p "$rootfs/usr/local/share/ca-certificates"
        as_root cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
    fi
    as_root tar -C "$rootfs" -c . | docker import \
        --change 'CMD ["bash"]' \
        --change "LABEL $LABEL=\"debootstrap --variant=minbase bookworm, by scripts/base-images.sh\"" \
        - "$DEBIAN" >/dev/null
    as_root rm -rf "$rootfs"
}

build_rust() {
    local sysroot version context=$WORK/rust
    sysroot=$(rustc --print sysroot)
    version=$("$sysroot/bin/rustc" -V | cut -d' ' -f2)
    [ "${version%.*}" = "$RUST_VERSION" ] ||
        die "the Dockerfile builds with Rust $RUST_VERSION, but this machine's rustc is $version; install it (rustup toolchain install $RUST_VERSION) or change ARG RUST_VERSION"
    rm -rf "$context"
    mkdir -p "$context/toolchain"
    cp docker/base-images/rust.Dockerfile "$context/Dockerfile"
    # The whole toolchain but its documentation (hard links when possible).
    for part in bin lib libexec etc; do
        [ -e "$sysroot/$part" ] || continue
        cp -al "$sysroot/$part" "$context/toolchain/" 2>/dev/null || cp -a "$sysroot/$part" "$context/toolchain/"
    done
    logged "$WORK/rust.log" docker build --build-arg "RUST_VERSION=$version" --label "$LABEL=this machine's Rust $version" -t "$RUST" "$context" ||
        die "building the local $RUST failed (its last lines are above)"
    rm -rf "$context"
}

build_runtime() {
    logged "$WORK/runtime.log" docker build --label "$LABEL=Debian 12 packages, FROM scratch" \
        -t "$RUNTIME" -f docker/base-images/distroless-cc.Dockerfile docker/base-images ||
        die "building the local $RUNTIME failed (its last lines are above)"
}

build_cassandra() {
    ensure_java_and_maven
    local context=$WORK/cassandra
    rm -rf "$context"
    cp -r docker/base-images/cassandra "$context"
    cp interop/cassandra/jvm17-server.options interop/cassandra/cassandra.yaml.in "$context/"
    logged "$WORK/cassandra-jars.log" mvn -q -B -Dstyle.color=never -f interop/cassandra/pom.xml \
        dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$context/lib" ||
        die "Maven could not fetch Cassandra's jars (interop/cassandra/pom.xml): is Maven Central reachable?"
    # cqlsh for the image's Python (Debian 12: CPython 3.11), fetched here.
    logged "$WORK/cassandra-cqlsh.log" python3 -m pip download --quiet --disable-pip-version-check \
        --only-binary=:all: --implementation cp --python-version 3.11 \
        --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
        -d "$context/wheels" -r docker/base-images/cassandra/cqlsh-requirements.txt ||
        die "pip could not fetch cqlsh (docker/base-images/cassandra/cqlsh-requirements.txt): is PyPI reachable?"
    logged "$WORK/cassandra.log" docker build --label "$LABEL=Cassandra's jars from Maven Central" -t "$CASSANDRA" "$context" ||
        die "building the local $CASSANDRA failed (its last lines are above)"
    rm -rf "$context"
}

mkdir -p "$WORK"
for image in "${IMAGES[@]}"; do
    if have "$image"; then
        continue
    fi
    echo "$NAME: pulling $image" >&2
    if timeout 300 docker pull -q "$image" >"$WORK/pull.log" 2>&1; then
        continue
    fi
    echo "$NAME: $image cannot be pulled here ($(tail -n 1 "$WORK/pull.log")); building a local stand-in" >&2
    started=$SECONDS
    case "$image" in
        "$DEBIAN") build_debian ;;
        "$RUST") build_rust ;;
        "$RUNTIME") build_runtime ;;
        "$CASSANDRA") build_cassandra ;;
    esac
    echo "$NAME: built $image in $((SECONDS - started)) s" >&2
done

#!/usr/bin/env bash
# The test command: README's "run the tests", and what .ci/run calls.
#
# It installs what the tests need, starts the real peers (Apache Cassandra
# and a Netflix Eureka server, from Maven Central) and a Docker engine with
# the base images, checks formatting and lints, builds every binary (the
# end-to-end tests start them as real processes), then runs every test in
# the workspace (one of them builds the images and runs the compose stack
# in containers), and stops the peers.
set -euo pipefail
cd "$(dirname "$0")/.."

started=$SECONDS
step() { printf '\n==> %s (%ss)\n' "$1" "$((SECONDS - started))"; }

# System packages the tests use: the browser test drives Chromium through
# chromedriver, and the interop tests install Eureka clients with pip (in
# a venv) and npm. (Docker comes below.)
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
command -v npm >/dev/null 2>&1 || need+=(npm)
python3 -m venv --help >/dev/null 2>&1 || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
    step "installing Debian packages the tests need: ${need[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}"
fi

step "the standard Eureka clients and feedparser the tests compare with (PyPI, npm)"
./scripts/interop-clients.sh

# Real Apache Cassandra and a real Netflix Eureka server (Maven Central,
# Java 17): started in the background now, since they mostly wait, and
# stopped when this script ends, whatever happens.
step "starting the real peers: Apache Cassandra 5.0, a Netflix Eureka server"
mkdir -p target/peers
cassandra_dir=$PWD/target/cassandra-test
stop_peers() {
    scripts/cassandra.sh stop --dir "$cassandra_dir" || true
    scripts/eureka.sh stop || true
}
trap stop_peers EXIT
# A fresh node each run: every test makes keyspaces of its own, and
# keyspaces left by earlier runs would pile up in the node's heap. 1 GiB
# of heap holds one run's few hundred tables with room to spare (exported:
# the outage test stops and starts the node again).
export CASSANDRA_HEAP=1G
scripts/cassandra.sh stop --dir "$cassandra_dir" >/dev/null 2>&1 || true
rm -rf "$cassandra_dir"
scripts/cassandra.sh start --dir "$cassandra_dir" >target/peers/cassandra.out 2>&1 &
cassandra_started=$!
{ scripts/eureka.sh start && scripts/eureka.sh build; } >target/peers/eureka.out 2>&1 &
eureka_started=$!
# The compose test's needs, also in the background: a Docker engine and
# Compose v2 (installed and started if missing), and the base images
# (pulled, or built here where no registry is reachable). Docker's build
# cache is kept under 20 GB, and the images earlier runs left untagged go.
{
    scripts/docker-engine.sh && scripts/base-images.sh &&
        docker builder prune --force --keep-storage 20GB >/dev/null &&
        docker image prune --force --filter label=rss-recipes.image >/dev/null
} >target/peers/docker.out 2>&1 &
docker_ready=$!

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "build the binaries the tests start"
cargo build --workspace --bins --locked
export RSS_TEST_PREBUILT=1

step "waiting for the real peers"
wait "$cassandra_started" || { cat target/peers/cassandra.out >&2; exit 1; }
wait "$eureka_started" || { cat target/peers/eureka.out >&2; exit 1; }
wait "$docker_ready" || { cat target/peers/docker.out >&2; exit 1; }
# Under test-only names: the services the tests build in-process read
# RSS_* variables as their own settings.
RSS_TEST_CASSANDRA_NODES=$(sed -n 's/^RSS_CASSANDRA_NODES=//p' target/peers/cassandra.out | tail -n 1)
RSS_TEST_EUREKA_URL=$(sed -n 's/^EUREKA_URL=//p' target/peers/eureka.out | tail -n 1)
export RSS_TEST_CASSANDRA_NODES RSS_TEST_CASSANDRA_DIR=$cassandra_dir RSS_TEST_EUREKA_URL
echo "Cassandra at $RSS_TEST_CASSANDRA_NODES, Eureka at $RSS_TEST_EUREKA_URL"

# cargo test runs one test binary at a time; tests/cassandra.rs relies on
# that when it stops the shared cluster.
step "tests"
cargo test --workspace --locked --no-fail-fast

step "done"

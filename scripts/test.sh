#!/usr/bin/env bash
# The test command: README's "run the tests", and what .ci/run calls.
#
# It checks formatting and lints, builds every binary (the end-to-end tests
# start them as real processes), then runs every test in the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

started=$SECONDS
step() { printf '\n==> %s (%ss)\n' "$1" "$((SECONDS - started))"; }

# System packages the tests use: Compose validates docker-compose.yml, the
# browser test drives Chromium through chromedriver, and the interop tests
# install Eureka clients with pip (in a venv) and npm.
need=()
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
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

step "the standard Eureka clients the interop tests run (PyPI, npm)"
./scripts/interop-clients.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "build the binaries the tests start"
cargo build --workspace --bins --locked
export RSS_TEST_PREBUILT=1

step "tests"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --locked --no-fail-fast
else
    cargo test --workspace --locked --no-fail-fast
fi

step "done"

#!/usr/bin/env bash
# The test command: README's "run the tests", and what .ci/run calls.
#
# It checks formatting and lints, builds every binary (the end-to-end tests
# start them as real processes), then runs every test in the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

started=$SECONDS
step() { printf '\n==> %s (%ss)\n' "$1" "$((SECONDS - started))"; }

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

#!/usr/bin/env bash
# Installs the standard Eureka clients that tests/interop.rs runs against
# our registry, and feedparser, the reference for tests/api/feed_corpus.rs,
# pinned, under target/interop/:
#
#   target/interop/python   a venv with py-eureka-client and feedparser (interop/python/requirements.txt)
#                           and google-reader (interop/python/requirements-greader.txt)
#   target/interop/node     eureka-js-client and axe-core (interop/node/package-lock.json, npm ci)
#
# Idempotent and quick when nothing changed (a stamp per lock file's hash);
# safe to run from several tests at once (flock). The test command runs it
# before the tests, and the interop tests run it again themselves, so
# `cargo test` alone works too. Needs python3 (with venv) and npm.
set -euo pipefail
cd "$(dirname "$0")/.."

dest=target/interop
mkdir -p "$dest"
exec 9>"$dest/.lock"
flock 9

stamp_of() { echo "$1/.installed-$(cat "${@:2}" | sha256sum | cut -c1-16)"; }

python_stamp=$(stamp_of "$dest/python" interop/python/requirements.txt interop/python/requirements-greader.txt)
if [ ! -f "$python_stamp" ]; then
    echo "interop: installing py-eureka-client into $dest/python" >&2
    rm -rf "$dest/python"
    python3 -m venv "$dest/python"
    "$dest/python/bin/pip" install --quiet --disable-pip-version-check \
        -r interop/python/requirements.txt
    # google-reader asks for Python 3.12 in its metadata only (see the file).
    "$dest/python/bin/pip" install --quiet --disable-pip-version-check \
        --ignore-requires-python -r interop/python/requirements-greader.txt
    touch "$python_stamp"
fi

node_stamp=$(stamp_of "$dest/node" interop/node/package.json interop/node/package-lock.json)
if [ ! -f "$node_stamp" ]; then
    echo "interop: installing eureka-js-client into $dest/node" >&2
    rm -rf "$dest/node"
    mkdir -p "$dest/node"
    cp interop/node/package.json interop/node/package-lock.json "$dest/node/"
    (cd "$dest/node" && npm ci --no-audit --no-fund --loglevel=error)
    touch "$node_stamp"
fi

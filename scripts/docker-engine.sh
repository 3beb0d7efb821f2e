#!/usr/bin/env bash
# A running Docker engine and Compose v2 (`docker compose`), for
# docker-compose.yml and the test command's container test:
#
#   scripts/docker-engine.sh     install and start what is missing; quick when all is there
#
# - The engine: Debian's docker.io when there is no dockerd, then started
#   (systemd when it runs, else dockerd in the background, logging to
#   /var/log/dockerd.log), and waited for.
# - Compose v2: when `docker compose` is missing (Debian 12 packages only
#   Compose v1), built from its Go module (github.com/docker/compose/v2,
#   pinned below) and installed as the CLI plugin
#   ~/.docker/cli-plugins/docker-compose. It is built in a copy of the
#   module, because `go install` refuses the module's `exclude` lines.
#   Needs Go; takes about 3 minutes once.
#
# On failure it exits non-zero and says what to do. Installing and starting
# the engine need root (sudo is used when not root).
set -euo pipefail
cd "$(dirname "$0")/.."
NAME=docker-engine.sh
COMPOSE_VERSION=v2.40.3

die() {
    echo "$NAME: $*" >&2
    exit 1
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

engine_answers() { docker info >/dev/null 2>&1; }

# Removes pid file $1 unless the process it names is a $2.
remove_stale_pid() {
    local pid
    pid=$(as_root cat "$1" 2>/dev/null) || return 0
    if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != "$2" ]; then
        echo "$NAME: removing $1: process $pid is not a running $2" >&2
        as_root rm -f "$1"
    fi
}

if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
    echo "$NAME: installing Docker (Debian's docker.io)" >&2
    { as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq docker.io; } >&2 ||
        die "installing docker.io failed; install a Docker engine (https://docs.docker.com/engine/install/) and try again"
fi

if ! engine_answers; then
    log=/var/log/dockerd.log
    if [ -d /run/systemd/system ]; then
        echo "$NAME: starting the Docker engine (systemctl start docker)" >&2
        as_root systemctl start docker || true
    elif ! pgrep -x dockerd >/dev/null 2>&1; then
        # A machine restarted without a clean stop leaves pid files behind.
        # When their pid now belongs to another process, dockerd believes
        # containerd (or itself) still runs and waits for it until it gives up.
        remove_stale_pid /var/run/docker/containerd/containerd.pid containerd
        remove_stale_pid /var/run/docker.pid dockerd
        echo "$NAME: starting the Docker engine (dockerd, logging to $log)" >&2
        as_root sh -c "nohup dockerd >>$log 2>&1 </dev/null &"
    fi
    for _ in $(seq 1 60); do
        engine_answers && break
        sleep 1
    done
    if ! engine_answers; then
        [ -r "$log" ] && { echo "--- last lines of $log ---" >&2; tail -n 20 "$log" >&2; }
        if [ -S /var/run/docker.sock ] && [ ! -w /var/run/docker.sock ]; then
            die "the Docker engine runs, but you may not use it: add yourself to the docker group (sudo usermod -aG docker $USER), log in again, and retry"
        fi
        die "the Docker engine did not start within 60 s; see the log above, or start it yourself (sudo systemctl start docker)"
    fi
fi

if ! docker compose version >/dev/null 2>&1; then
    command -v go >/dev/null 2>&1 ||
        die "Compose v2 (docker compose) is missing and there is no Go to build it; install the docker-compose-plugin package, or Go"
    echo "$NAME: building Compose $COMPOSE_VERSION from its Go module (once, about 3 minutes)" >&2
    work=$(mktemp -d)
    trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT
    module=$(cd "$work" && go mod download -json "github.com/docker/compose/v2@$COMPOSE_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
    [ -d "$module" ] || die "could not download github.com/docker/compose/v2@$COMPOSE_VERSION from the Go module proxy"
    cp -r "$module" "$work/src"
    chmod -R u+w "$work/src"
    plugins=${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins
    mkdir -p "$plugins"
    (cd "$work/src" && go build -trimpath \
        -ldflags "-s -w -X github.com/docker/compose/v2/internal.Version=$COMPOSE_VERSION" \
        -o "$plugins/docker-compose" ./cmd) >&2 ||
        die "building Compose failed (see above)"
    docker compose version >&2 || die "Compose was built into $plugins but docker does not find it"
fi

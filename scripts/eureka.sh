#!/usr/bin/env bash
# A real Netflix Eureka server (Spring Cloud Netflix, interop/eureka-server/)
# on this machine's Java 17, with no Docker, for our services to run
# against; and the Java Eureka client the tests run against our registry
# (interop/eureka-client/).
#
#   scripts/eureka.sh start [--port P] [--dir DIR]   build if needed, start, wait until it answers
#   scripts/eureka.sh stop [--dir DIR]               stop it
#   scripts/eureka.sh status [--dir DIR]             whether it runs and answers (exit 3 if not)
#   scripts/eureka.sh build                          build both jars (the tests run this)
#
# `start` returns once GET /eureka/apps answers, and its last line on
# stdout is EUREKA_URL=http://127.0.0.1:P/eureka/ (default port 8762): give
# that URL to our services as --registry-url / RSS_REGISTRY_URL, unchanged.
# Its log and pid live in DIR (default target/eureka). The jars are built
# by Maven (dependencies kept in ~/.m2) and rebuilt only when a pom or a
# source file changes. Java and Maven are installed from Debian's packages
# if they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
NAME=eureka.sh
JDK_PACKAGE=openjdk-17-jdk-headless
# shellcheck source=scripts/lib/jvm-peer.sh
. scripts/lib/jvm-peer.sh

command=${1:-}
[ -n "$command" ] || usage
shift
DIR=target/eureka
PORT=8762
while [ $# -gt 0 ]; do
    case "$1" in
        --dir) DIR=${2:?--dir needs a directory}; shift 2 ;;
        --port) PORT=${2:?--port needs a number}; shift 2 ;;
        -h|--help) usage ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
done
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
START_TIMEOUT=${EUREKA_START_TIMEOUT:-120}

# Builds interop/$1 into interop/$1/target/$1.jar unless it is up to date.
build_jar() {
    local project=interop/$1
    local jar=$project/target/$1.jar
    local stamp
    stamp="$project/target/.built-$(find "$project/pom.xml" "$project/src" -type f -print0 |
        sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)"
    if [ -f "$jar" ] && [ -f "$stamp" ]; then
        return 0
    fi
    echo "eureka.sh: building $project with Maven (dependencies kept in ~/.m2)" >&2
    if ! mvn -q -B -Dstyle.color=never -f "$project/pom.xml" package -DskipTests \
        >"$DIR/maven-$1.log" 2>&1; then
        tail -n 30 "$DIR/maven-$1.log" >&2
        die "Maven could not build $project: is Maven Central reachable from here? (Maven's last lines are above)"
    fi
    touch "$stamp"
}

# After a machine restart the pid may name another process: only a java counts.
pid_running() {
    [ -f "$DIR/pid" ] && [ "$(cat "/proc/$(cat "$DIR/pid")/comm" 2>/dev/null)" = java ]
}

answers() {
    python3 - "$1" <<'PY' 2>/dev/null
import sys, urllib.request
request = urllib.request.Request(sys.argv[1] + "apps", headers={"Accept": "application/json"})
try:
    with urllib.request.urlopen(request, timeout=2) as response:
        sys.exit(0 if response.status == 200 else 1)
except OSError:
    sys.exit(1)
PY
}

url() { echo "http://127.0.0.1:$PORT/eureka/"; }

case "$command" in
    build)
        ensure_java_and_maven
        build_jar eureka-server
        build_jar eureka-client
        ;;
    start)
        ensure_java_and_maven
        build_jar eureka-server
        if pid_running; then
            PORT=$(cat "$DIR/port")
        else
            if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
                die "port 127.0.0.1:$PORT is taken by another process; stop it, or choose another with --port"
            fi
            echo "eureka.sh: starting the Eureka server on 127.0.0.1:$PORT" >&2
            EUREKA_PORT=$PORT nohup java -Xmx256m -jar interop/eureka-server/target/eureka-server.jar \
                >"$DIR/eureka.log" 2>&1 </dev/null &
            echo $! >"$DIR/pid"
            echo "$PORT" >"$DIR/port"
        fi
        deadline=$((SECONDS + START_TIMEOUT))
        until answers "$(url)"; do
            if ! pid_running; then
                tail -n 30 "$DIR/eureka.log" >&2 || true
                die "the Eureka server stopped while starting; see its log above ($DIR/eureka.log)"
            fi
            if [ $SECONDS -ge $deadline ]; then
                tail -n 30 "$DIR/eureka.log" >&2 || true
                die "the Eureka server did not answer on $(url) within ${START_TIMEOUT}s; see its log above"
            fi
            sleep 1
        done
        echo "EUREKA_URL=$(url)"
        ;;
    stop)
        if pid_running; then
            pid=$(cat "$DIR/pid")
            kill -TERM "$pid"
            for _ in $(seq 1 60); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.5
            done
            kill -KILL "$pid" 2>/dev/null || true
        fi
        rm -f "$DIR/pid"
        ;;
    status)
        if pid_running; then
            PORT=$(cat "$DIR/port")
            if answers "$(url)"; then
                echo "eureka $(url) running (pid $(cat "$DIR/pid")), answers"
                exit 0
            fi
            echo "eureka $(url) running (pid $(cat "$DIR/pid")), not answering yet"
        else
            echo "eureka stopped"
        fi
        # LSB: 3 means "not running".
        exit 3
        ;;
    *) usage ;;
esac

#!/usr/bin/env bash
# A real Apache Cassandra 5.0 (the version docker-compose.yml runs), with no
# Docker: its jars from Maven Central, run on this machine's Java 17.
#
#   scripts/cassandra.sh start [--nodes N] [--dir DIR]   start N nodes (default 1)
#   scripts/cassandra.sh stop [--dir DIR]                stop them cleanly
#   scripts/cassandra.sh status [--dir DIR]              each node, and whether CQL answers (exit 3 if one does not)
#   scripts/cassandra.sh kill NODE [--dir DIR]           SIGKILL node NODE (1-based), for fault tests
#   scripts/cassandra.sh start-node NODE [--dir DIR]     start node NODE again
#
# Node i listens for CQL on 127.0.0.i:9042 (and gossips on 127.0.0.i:7000);
# Linux routes all of 127.0.0.0/8 to loopback, so no setup is needed.
# `start` returns once every node answers CQL, and its last line on stdout
# is the RSS_CASSANDRA_NODES=... to give the middletier; run again on a
# running DIR, it just prints that line. Data and logs live under DIR
# (default target/cassandra), one folder per node, so `start` after `stop`
# keeps the data. On failure it exits non-zero, says why, and prints the
# log's last lines.
#
# The jars are resolved by Maven from interop/cassandra/pom.xml into ~/.m2,
# which later runs reuse. Each node runs with the JVM options of
# Cassandra's own conf/jvm17-server.options (interop/cassandra/), a small
# heap (CASSANDRA_HEAP, default 512M) and a config made from
# interop/cassandra/cassandra.yaml.in (the local Cassandra image uses it too).
# Java and Maven are installed from Debian's packages if they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
NAME=cassandra.sh
JDK_PACKAGE=openjdk-17-jre-headless
# shellcheck source=scripts/lib/jvm-peer.sh
. scripts/lib/jvm-peer.sh

command=${1:-}
[ -n "$command" ] || usage
shift
DIR=target/cassandra
NODES=""
NODE=""
while [ $# -gt 0 ]; do
    case "$1" in
        --dir) DIR=${2:?--dir needs a directory}; shift 2 ;;
        --nodes) NODES=${2:?--nodes needs a number}; shift 2 ;;
        -h|--help) usage ;;
        [0-9]*) NODE=$1; shift ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
done
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
HEAP=${CASSANDRA_HEAP:-512M}
START_TIMEOUT=${CASSANDRA_START_TIMEOUT:-240}

node_dir() { echo "$DIR/node$1"; }
node_ip() { echo "127.0.0.$1"; }

# How many nodes DIR holds: what `start` was first given, else 1.
node_count() {
    if [ -f "$DIR/nodes" ]; then cat "$DIR/nodes"; else echo "${NODES:-1}"; fi
}

pid_of() {
    local file
    file="$(node_dir "$1")/pid"
    [ -f "$file" ] || return 1
    local pid
    pid=$(cat "$file")
    # After a machine restart the pid may name another process: only a java counts.
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = java ] || return 1
    echo "$pid"
}

# Whether something accepts connections on $1:$2.
port_open() {
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# Whether CQL answers on $1:9042: an OPTIONS request (protocol v4) must get
# a SUPPORTED answer, not merely an open port.
cql_answers() {
    python3 - "$1" <<'PY' 2>/dev/null
import socket, sys
try:
    s = socket.create_connection((sys.argv[1], 9042), timeout=2)
    s.sendall(bytes([0x04, 0, 0, 0, 0x05, 0, 0, 0, 0]))
    head = s.recv(9)
    sys.exit(0 if len(head) >= 5 and head[0] == 0x84 and head[4] == 0x06 else 1)
except OSError:
    sys.exit(1)
PY
}

last_log_lines() {
    local dir
    dir=$(node_dir "$1")
    for log in "$dir/logs/system.log" "$dir/logs/stdout.log"; do
        if [ -s "$log" ]; then
            echo "--- last lines of $log ---" >&2
            tail -n 30 "$log" >&2
        fi
    done
}

# The classpath, resolved once per pom (Maven keeps the jars in ~/.m2).
classpath() {
    local pom=interop/cassandra/pom.xml
    local stamp
    stamp="$DIR/classpath-$(sha256sum "$pom" | cut -c1-16).txt"
    if [ ! -s "$stamp" ]; then
        echo "cassandra.sh: resolving Cassandra's jars with Maven (once; kept in ~/.m2)" >&2
        if ! mvn -q -B -Dstyle.color=never -f "$pom" dependency:build-classpath \
            -Dmdep.outputFile="$stamp" >"$DIR/maven.log" 2>&1; then
            tail -n 30 "$DIR/maven.log" >&2
            rm -f "$stamp"
            die "Maven could not resolve org.apache.cassandra:cassandra-all from $pom: is Maven Central reachable from here? (Maven's last lines are above)"
        fi
    fi
    cat "$stamp"
}

write_config() {
    local i=$1 dir ip
    dir=$(node_dir "$i")
    ip=$(node_ip "$i")
    mkdir -p "$dir"/{data,commitlog,saved_caches,hints,cdc_raw,logs}
    sed -e "s|@CLUSTER_NAME@|rss-recipes|" -e "s|@NUM_TOKENS@|16|" \
        -e "s|@ENDPOINT_SNITCH@|SimpleSnitch|" -e "s|@SEEDS@|127.0.0.1:7000|" \
        -e "s|@LISTEN_ADDRESS@|$ip|; s|@BROADCAST_ADDRESS@|$ip|" \
        -e "s|@RPC_ADDRESS@|$ip|; s|@BROADCAST_RPC_ADDRESS@|$ip|" \
        -e "s|@DIR@|$dir|g" \
        interop/cassandra/cassandra.yaml.in >"$dir/cassandra.yaml"
}

start_node() {
    local i=$1 dir ip pid
    dir=$(node_dir "$i")
    ip=$(node_ip "$i")
    if pid=$(pid_of "$i"); then
        return 0
    fi
    for port in 9042 7000; do
        if port_open "$ip" "$port"; then
            die "port $ip:$port is taken by another process (another Cassandra?); stop it, or stop the nodes of its --dir"
        fi
    done
    write_config "$i"
    local opts=()
    while IFS= read -r line; do
        case "$line" in ''|'#'*) ;; *) opts+=("$line") ;; esac
    done <interop/cassandra/jvm17-server.options
    (
        cd "$dir"
        nohup java "${opts[@]}" \
            -Xms"$HEAP" -Xmx"$HEAP" \
            -XX:+HeapDumpOnOutOfMemoryError -XX:HeapDumpPath="$dir/logs" -XX:+ExitOnOutOfMemoryError \
            -Dcassandra.config="file://$dir/cassandra.yaml" \
            -Dcassandra.storagedir="$dir" \
            -Dcassandra.logdir="$dir/logs" \
            -Dlogback.configurationFile="$ROOT/interop/cassandra/logback.xml" \
            -Dcassandra.skip_wait_for_gossip_to_settle=0 \
            -Dcassandra-foreground=yes \
            -cp "$CLASSPATH" \
            org.apache.cassandra.service.CassandraDaemon \
            >"$dir/logs/stdout.log" 2>&1 </dev/null 9>&- &
        echo $! >"$dir/pid"
    )
}

wait_node() {
    local i=$1 ip deadline
    ip=$(node_ip "$i")
    deadline=$((SECONDS + START_TIMEOUT))
    while ! cql_answers "$ip"; do
        if ! pid_of "$i" >/dev/null; then
            last_log_lines "$i"
            die "node $i ($ip) stopped while starting; see its log above ($(node_dir "$i")/logs)"
        fi
        if [ $SECONDS -ge $deadline ]; then
            last_log_lines "$i"
            die "node $i did not answer CQL on $ip:9042 within ${START_TIMEOUT}s (CASSANDRA_START_TIMEOUT); see its log above"
        fi
        sleep 1
    done
}

nodes_line() {
    local n=$1 list="" i
    for i in $(seq 1 "$n"); do
        list="$list${list:+,}$(node_ip "$i"):9042"
    done
    echo "RSS_CASSANDRA_NODES=$list"
}

stop_node() {
    local i=$1 pid
    pid=$(pid_of "$i") || return 0
    kill -TERM "$pid"
    local deadline=$((SECONDS + 60))
    while kill -0 "$pid" 2>/dev/null; do
        if [ $SECONDS -ge $deadline ]; then
            echo "cassandra.sh: node $i did not stop within 60 s of SIGTERM; killing it" >&2
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.5
    done
    rm -f "$(node_dir "$i")/pid"
}

# One command at a time per DIR (tests may start it from several places).
# The nodes are started with this descriptor closed, so they do not hold
# the lock after the command ends.
exec 9>"$DIR/.lock"
flock 9

case "$command" in
    start)
        ensure_java_and_maven
        n=$(node_count)
        if [ -n "$NODES" ] && [ "$NODES" != "$n" ]; then
            die "$DIR already holds a cluster of $n node(s); stop it and remove $DIR, or use another --dir, to start $NODES"
        fi
        [ "$n" -ge 1 ] && [ "$n" -le 9 ] || die "--nodes must be between 1 and 9"
        echo "$n" >"$DIR/nodes"
        CLASSPATH=$(classpath)
        # One at a time: a node joins the ring through the first.
        for i in $(seq 1 "$n"); do
            if ! pid_of "$i" >/dev/null; then
                echo "cassandra.sh: starting node $i on $(node_ip "$i"):9042" >&2
                start_node "$i"
            fi
            wait_node "$i"
        done
        nodes_line "$n"
        ;;
    start-node)
        [ -n "$NODE" ] || die "start-node needs the node's number (1-based)"
        ensure_java_and_maven
        [ "$NODE" -le "$(node_count)" ] || die "$DIR has no node $NODE"
        CLASSPATH=$(classpath)
        start_node "$NODE"
        wait_node "$NODE"
        nodes_line "$(node_count)"
        ;;
    stop)
        for i in $(seq 1 "$(node_count)"); do
            stop_node "$i"
        done
        ;;
    kill)
        [ -n "$NODE" ] || die "kill needs the node's number (1-based)"
        pid=$(pid_of "$NODE") || die "node $NODE is not running"
        kill -KILL "$pid"
        rm -f "$(node_dir "$NODE")/pid"
        echo "cassandra.sh: node $NODE ($(node_ip "$NODE")) killed" >&2
        ;;
    status)
        all_up=0
        for i in $(seq 1 "$(node_count)"); do
            ip=$(node_ip "$i")
            if pid=$(pid_of "$i"); then
                if cql_answers "$ip"; then
                    echo "node $i $ip:9042 running (pid $pid), CQL answers"
                else
                    echo "node $i $ip:9042 running (pid $pid), CQL not answering yet"
                    all_up=1
                fi
            else
                echo "node $i $ip:9042 stopped"
                all_up=1
            fi
        done
        # LSB: 3 means "not running".
        [ $all_up -eq 0 ] || exit 3
        ;;
    *) usage ;;
esac

#!/bin/bash
# The local Cassandra image's entrypoint: what the official image's does,
# for the variables it documents. `cassandra -f` (the default command)
# writes /etc/cassandra/cassandra.yaml from the environment and runs the
# server in the foreground; any other command runs as given (e.g. cqlsh).
#
#   CASSANDRA_CLUSTER_NAME            default "Test Cluster"
#   CASSANDRA_LISTEN_ADDRESS          default: this container's address ("auto")
#   CASSANDRA_BROADCAST_ADDRESS       default: the listen address
#   CASSANDRA_RPC_ADDRESS             default 0.0.0.0
#   CASSANDRA_BROADCAST_RPC_ADDRESS   default: the broadcast address
#   CASSANDRA_SEEDS                   default: the broadcast address
#   CASSANDRA_NUM_TOKENS              default 16
#   CASSANDRA_ENDPOINT_SNITCH         default SimpleSnitch
#   CASSANDRA_DC, CASSANDRA_RACK      for GossipingPropertyFileSnitch
#   MAX_HEAP_SIZE                     default: half the memory, at most 1 GiB (as cassandra-env.sh)
#   HEAP_NEWSIZE                      read, unused: Cassandra 5.0 on Java 17 runs G1
#   JVM_EXTRA_OPTS                    more JVM options
set -euo pipefail

if [ "${1:-}" != cassandra ]; then
    exec "$@"
fi

conf=/opt/cassandra/conf
listen=${CASSANDRA_LISTEN_ADDRESS:-auto}
if [ "$listen" = auto ]; then
    listen=$(hostname -i | cut -d' ' -f1)
fi
broadcast=${CASSANDRA_BROADCAST_ADDRESS:-$listen}
rpc=${CASSANDRA_RPC_ADDRESS:-0.0.0.0}
broadcast_rpc=${CASSANDRA_BROADCAST_RPC_ADDRESS:-$broadcast}
seeds=${CASSANDRA_SEEDS:-$broadcast}

sed -e "s|@CLUSTER_NAME@|${CASSANDRA_CLUSTER_NAME:-Test Cluster}|" \
    -e "s|@NUM_TOKENS@|${CASSANDRA_NUM_TOKENS:-16}|" \
    -e "s|@ENDPOINT_SNITCH@|${CASSANDRA_ENDPOINT_SNITCH:-SimpleSnitch}|" \
    -e "s|@SEEDS@|$seeds|" \
    -e "s|@LISTEN_ADDRESS@|$listen|; s|@BROADCAST_ADDRESS@|$broadcast|" \
    -e "s|@RPC_ADDRESS@|$rpc|; s|@BROADCAST_RPC_ADDRESS@|$broadcast_rpc|" \
    -e "s|@DIR@|/var/lib/cassandra|g" \
    "$conf/cassandra.yaml.in" >/etc/cassandra/cassandra.yaml
printf 'dc=%s\nrack=%s\n' "${CASSANDRA_DC:-dc1}" "${CASSANDRA_RACK:-rack1}" >/etc/cassandra/cassandra-rackdc.properties

heap=${MAX_HEAP_SIZE:-}
if [ -z "$heap" ]; then
    memory_mb=$(($(sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo) / 1024))
    limit=$(cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null | head -n 1)
    if [[ "$limit" =~ ^[0-9]+$ ]] && [ $((limit / 1048576)) -lt "$memory_mb" ]; then
        memory_mb=$((limit / 1048576))
    fi
    half=$((memory_mb / 2))
    heap=$((half < 1024 ? half : 1024))M
fi

mapfile -t options < <(grep -v -e '^#' -e '^$' "$conf/jvm17-server.options")
echo "docker-entrypoint.sh: Cassandra on $listen (CQL on $rpc:9042), cluster '${CASSANDRA_CLUSTER_NAME:-Test Cluster}', heap $heap"
# shellcheck disable=SC2086 # JVM_EXTRA_OPTS is a list of options
exec java "${options[@]}" -Xms"$heap" -Xmx"$heap" ${JVM_EXTRA_OPTS:-} \
    -XX:+ExitOnOutOfMemoryError \
    -Dcassandra.config=file:///etc/cassandra/cassandra.yaml \
    -Dcassandra.storagedir=/var/lib/cassandra \
    -Dcassandra.logdir=/var/log/cassandra \
    -Dlogback.configurationFile=$conf/logback.xml \
    -Dcassandra-foreground=yes \
    -cp "/opt/cassandra/lib/*:/etc/cassandra" \
    org.apache.cassandra.service.CassandraDaemon

# What scripts/cassandra.sh and scripts/eureka.sh share: messages, usage
# from the script's own header, and Java 17 with Maven (installed from
# Debian's packages when missing). Sourced, not run; the script sets NAME
# (for messages) and JDK_PACKAGE (the Debian package it needs) first.

die() {
    echo "$NAME: $*" >&2
    exit 1
}

# The script's header comment is its help.
usage() {
    sed -n '2,/^[^#]/{/^#/p}' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

ensure_java_and_maven() {
    local need=()
    command -v java >/dev/null 2>&1 || need+=("$JDK_PACKAGE")
    command -v mvn >/dev/null 2>&1 || need+=(maven)
    command -v python3 >/dev/null 2>&1 || need+=(python3)
    if [ ${#need[@]} -gt 0 ]; then
        echo "$NAME: installing ${need[*]} (Debian packages)" >&2
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo=sudo
        { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}"; } >&2 ||
            die "no Java 17 or Maven here, and installing ${need[*]} failed; install them and try again"
    fi
    local major
    major=$(java -version 2>&1 | sed -n '1s/.*version "\([0-9]*\).*/\1/p')
    [ -n "$major" ] && [ "$major" -ge 17 ] ||
        die "this needs Java 17 or newer; 'java -version' says ${major:-nothing}. Put a JDK 17 first on PATH"
}

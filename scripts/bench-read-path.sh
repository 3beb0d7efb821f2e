#!/usr/bin/env bash
# The warm read path against this machine's limit: nginx serving the very
# bytes the middletier answers, measured in one run with one load generator
# (wrk), so the figures are ratios that hold from machine to machine.
#
#   ./scripts/bench-read-path.sh [seconds per target, default 10]
#   WORDS=3 ./scripts/bench-read-path.sh   # short descriptions (~200 KB answer)
#   PROFILE=1 ./scripts/bench-read-path.sh # and where the middletier and the
#                                          # edge spend their CPU (perf)
#
# Release binaries on 127.0.0.1: a registry, one middletier on the file
# store, an edge (`--auth none`), and python3's http.server serving 20
# generated RSS feeds of 50 items (HTML descriptions of two paragraphs of
# $WORDS words each: 30 by default, ~500 bytes, as in the comparison with
# Miniflux; 3 makes the ~200 KB answer the read-path issue measured). The
# default user is subscribed to all 20 (1,000 items). Then, each for the
# same time with `wrk -t2 -c8`:
#
#   nginx        the middletier's answer, saved to a file (one worker)
#   middletier   GET /middletier/rss/user/default
#   edge API     GET /api/subscriptions (its default limit, 50 a feed)
#   edge page    GET /  (the HTML reader)
#
# Installs Debian's nginx-light and wrk when missing (sudo when not root).
# Recorded in BENCHMARKS.md, "The read path against nginx".
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
words=${WORDS:-30}

need=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
if [ ${#need[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
nginx=$(command -v nginx || echo /usr/sbin/nginx)

cargo build --release --locked --quiet --workspace --bins

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() {
    for _ in $(seq 200); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.05; done
    echo "bench-read-path: $1 did not answer" >&2
    exit 1
}

# 20 feeds of 50 items, fixed content (seeded), dates within 30 days.
mkdir -p "$work/feeds" "$work/www" "$work/data"
python3 - "$work/feeds" "$words" <<'PY'
import random, sys, email.utils, time
random.seed(42)
n_words = int(sys.argv[2])
words = "reader feed circuit breaker registry latency cache item store edge tier retry lease".split()
for f in range(20):
    items = []
    for i in range(50):
        title = " ".join(random.choice(words) for _ in range(6)).capitalize()
        para = lambda: " ".join(random.choice(words) for _ in range(n_words))
        desc = f"<p>{para()} <em>{random.choice(words)}</em>.</p><p>{para()} <a href=\"https://example.com/{f}/{i}\">more</a>.</p>"
        date = email.utils.formatdate(time.time() - random.randint(0, 30 * 86400), usegmt=True)
        items.append(f"<item><title>{title}</title><link>https://example.com/{f}/{i}</link>"
                     f"<guid>https://example.com/{f}/{i}</guid><pubDate>{date}</pubDate>"
                     f"<description><![CDATA[{desc}]]></description></item>")
    with open(f"{sys.argv[1]}/feed-{f}.xml", "w") as out:
        out.write(f"<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Feed {f}</title>"
                  f"<link>https://example.com/{f}</link><description>bench</description>{''.join(items)}</channel></rss>")
PY

feeds_port=$(free_port); registry_port=$(free_port); middletier_port=$(free_port)
edge_port=$(free_port); nginx_port=$(free_port)
python3 -m http.server "$feeds_port" --bind 127.0.0.1 --directory "$work/feeds" >/dev/null 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$feeds_port/feed-0.xml"
registry_url="http://127.0.0.1:$registry_port/eureka/v2/"
RUST_LOG=warn target/release/registry --port "$registry_port" >/dev/null 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$registry_port/healthcheck"
RUST_LOG=warn target/release/middletier --port "$middletier_port" --registry-url "$registry_url" \
    --store file --data-dir "$work/data" --allow-private-feeds --user-write-rate 0 \
    --refresh-min-interval 1h >/dev/null 2>&1 &
pids+=($!)
middletier_pid=$!
RUST_LOG=warn target/release/edge --port "$edge_port" --registry-url "$registry_url" \
    --user-write-rate 0 >/dev/null 2>&1 &
pids+=($!)
edge_pid=$!
wait_for "http://127.0.0.1:$middletier_port/healthcheck"
wait_for "http://127.0.0.1:$edge_port/healthcheck"
for _ in $(seq 200); do
    curl -fsS "http://127.0.0.1:$edge_port/healthcheck" | grep -q '"middletier_instances":1' && break
    sleep 0.05
done
for f in $(seq 0 19); do
    curl -sS --fail-with-body -o "$work/subscribed.json" -H 'content-type: application/json' \
        -d "{\"url\": \"http://127.0.0.1:$feeds_port/feed-$f.xml\"}" \
        "http://127.0.0.1:$edge_port/api/subscriptions" || {
        echo "bench-read-path: subscribing to feed $f failed: $(cat "$work/subscribed.json")" >&2
        exit 1
    }
done

middletier="http://127.0.0.1:$middletier_port/middletier/rss/user/default"
curl -fsS "$middletier" > "$work/www/answer.json"
items=$(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(sum(len(s['items']) for s in d['subscriptions']))" "$work/www/answer.json")
bytes=$(wc -c < "$work/www/answer.json")
cat > "$work/nginx.conf" <<EOF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 1024; }
http {
    access_log off;
    default_type application/json;
    server {
        listen 127.0.0.1:$nginx_port;
        root $work/www;
    }
}
EOF
# nginx's worker drops to an unprivileged user: it must read the answer.
chmod a+rx "$work" "$work/www"
chmod a+r "$work/www/answer.json"
"$nginx" -c "$work/nginx.conf" -p "$work"
wait_for "http://127.0.0.1:$nginx_port/answer.json"

# wrk's summary → "requests/s p50_ms p99_ms".
measure() {
    wrk -t2 -c8 -d"${seconds}s" --latency "$1" | python3 -c '
import re, sys
text = sys.stdin.read()
rate = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
def ms(p):
    value, unit = re.search(p + r"%\s+([\d.]+)(us|ms|s)\b", text).groups()
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
print(rate, ms("50"), ms("99"), errors.group(1) if errors else 0)'
}

echo "The read path against nginx: $items items in 20 feeds, the middletier's answer $bytes bytes; wrk -t2 -c8, ${seconds} s each."
echo
echo "| target | requests/s | × nginx | p50 ms | p99 ms | non-2xx |"
echo "|---|---|---|---|---|---|"
read -r limit p50 p99 errors < <(measure "http://127.0.0.1:$nginx_port/answer.json")
printf '| nginx, the same bytes from a file | %.0f | 1 | %.2f | %.2f | %s |\n' "$limit" "$p50" "$p99" "$errors"
for target in "middletier direct|$middletier" \
              "edge API \`/api/subscriptions\`|http://127.0.0.1:$edge_port/api/subscriptions" \
              "edge page \`/\`|http://127.0.0.1:$edge_port/"; do
    label=${target%%|*}; url=${target#*|}
    read -r rate p50 p99 errors < <(measure "$url")
    printf '| %s | %.0f | %.3f | %.2f | %.2f | %s |\n' "$label" "$rate" "$(python3 -c "print($rate / $limit)")" "$p50" "$p99" "$errors"
done
echo
echo "middletier resident memory: $(awk '/VmRSS/ {printf "%.1f MiB", $2 / 1024}' "/proc/$middletier_pid/status")"

# Where the CPU goes: perf samples (call graphs) of one process while wrk
# loads it, the heaviest functions by their own time.
profile() {
    local name=$1 pid=$2 url=$3
    perf record -F 999 -g -p "$pid" -o "$work/$name.perf" -- sleep "$seconds" >/dev/null 2>&1 &
    local perf_pid=$!
    wrk -t2 -c8 -d"${seconds}s" "$url" >/dev/null
    wait "$perf_pid" || true
    echo
    echo "Profile of the $name under \`$url\` (self time, functions over 2%):"
    echo '```'
    perf report -i "$work/$name.perf" --no-children --percent-limit 2 --stdio --sort symbol 2>/dev/null |
        grep -E '^ +[0-9.]+%' | head -25
    echo '```'
}
if [ -n "${PROFILE:-}" ]; then
    command -v perf >/dev/null 2>&1 || {
        echo "bench-read-path: PROFILE needs perf (Debian's linux-perf)" >&2
        exit 1
    }
    profile middletier "$middletier_pid" "$middletier"
    profile edge "$edge_pid" "http://127.0.0.1:$edge_port/api/subscriptions"
fi

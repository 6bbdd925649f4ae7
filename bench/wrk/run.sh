#!/usr/bin/env bash
# run.sh: drives POST /api/event with wrk (C, keep-alive, lighter on the CPU
# than bench/load) against a turf built from this tree, with its managed
# ClickHouse in a temp dir, on loopback; prints requests/s and latency from
# wrk, the CPU seconds turf and ClickHouse used meanwhile (where the cores
# went), and the events turf accepted and inserted.
# Usage: bench/wrk/run.sh [DURATION] [CONNECTIONS] [turf serve flags...]
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x /usr/local/go/bin/go ] && export PATH=/usr/local/go/bin:$PATH
command -v wrk >/dev/null || { echo "wrk is not installed: apt-get install -y wrk" >&2; exit 1; }
dur=${1:-10s}
conns=${2:-32}
shift $(( $# < 2 ? $# : 2 ))
tmp=$(mktemp -d)
go build -o "$tmp/turf" ./cmd/turf
port=18091
"$tmp/turf" serve --listen 127.0.0.1:$port --data-dir "$tmp/data" --site example.com --trusted-proxy 127.0.0.1 "$@" > "$tmp/turf.log" 2>&1 &
pid=$!
cleanup() { kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
for _ in $(seq 1 100); do curl -sf http://127.0.0.1:$port/healthz >/dev/null 2>&1 && break; sleep 0.2; done
chpid=$(pgrep -f "clickhouse-server --config-file=$tmp/data" | head -1)
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }   # user+system, in ticks
hz=$(getconf CLK_TCK)
t0=$(cpu $pid); c0=$(cpu "$chpid")
wrk -t1 -c"$conns" -d"$dur" -s bench/wrk/post.lua "http://127.0.0.1:$port/api/event" --latency
t1=$(cpu $pid); c1=$(cpu "$chpid")
secs() { awk -v a="$1" -v b="$2" -v hz="$hz" 'BEGIN { printf "%.2f s", (b - a) / hz }'; }
echo "CPU during the run: turf $(secs "$t0" "$t1"), ClickHouse $(secs "$c0" "$c1")"
sleep 2 # the last batch
curl -s http://127.0.0.1:$port/metrics | grep -E '^turf_events_(accepted|inserted)_total|^turf_insert_errors_total'

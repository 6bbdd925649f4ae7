#!/usr/bin/env bash
# load.sh: starts turf (managed ClickHouse in a temp dir) on loopback, drives
# it with keep-alive and then with a new connection per request, prints
# events/s, p50/p99, rows landed, and turf's peak memory. Bounded: each run
# lasts DURATION (default 10s). Usage: bench/load.sh [DURATION] [CONCURRENCY]
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x /usr/local/go/bin/go ] && export PATH=/usr/local/go/bin:$PATH
dur=${1:-10s}
conc=${2:-64}
tmp=$(mktemp -d)
go build -o "$tmp/turf" ./cmd/turf
go build -o "$tmp/load" ./bench/load
port=18080
"$tmp/turf" serve --listen 127.0.0.1:$port --metrics-token bench --data-dir "$tmp/data" --site example.com --trusted-proxy 127.0.0.1 \
	--batch-size 10000 --flush-interval 1s > "$tmp/turf.log" 2>&1 &
pid=$!
cleanup() { kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
for _ in $(seq 1 100); do curl -sf http://127.0.0.1:$port/healthz >/dev/null 2>&1 && break; sleep 0.2; done
chport=$(grep -o 'managed ClickHouse is up on 127.0.0.1:[0-9]*' "$tmp/turf.log" | grep -o '[0-9]*$')
dsn="clickhouse://127.0.0.1:$chport/turf"
echo "== keep-alive"
"$tmp/load" --url http://127.0.0.1:$port/api/event --duration "$dur" --concurrency "$conc" --clickhouse "$dsn"
echo "turf peak RSS: $(grep VmHWM /proc/$pid/status | awk '{print $2, $3}')"
curl -s -H 'Authorization: Bearer bench' http://127.0.0.1:$port/metrics | grep -E '^turf_(events_(accepted|inserted|dropped)|insert_errors)' || true
echo "== new connection per request"
clickhouse-client --port "$chport" -q "TRUNCATE TABLE turf.events" 2>/dev/null || true
"$tmp/load" --url http://127.0.0.1:$port/api/event --duration "$dur" --concurrency "$conc" --new-conn --clickhouse "$dsn"
echo "turf peak RSS: $(grep VmHWM /proc/$pid/status | awk '{print $2, $3}')"

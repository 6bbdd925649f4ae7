#!/usr/bin/env bash
# run.sh: drives POST /api/event with wrk (C, keep-alive, lighter on the CPU
# than bench/load) on loopback, first against bench/wrk/noop (a fasthttp
# server set up like turf's that only answers 202: the most this machine
# serves through the same HTTP stack with the same generator), then against
# a turf built from this tree with its managed ClickHouse in a temp dir.
# Prints requests/s and latency from wrk for both, turf's share of the
# ceiling, the CPU seconds turf and ClickHouse used (where the cores went),
# and the events turf accepted and inserted.
# Usage: bench/wrk/run.sh [DURATION] [CONNECTIONS] [turf serve flags...]
# TURF=path runs that turf binary instead of building one (to compare builds).
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x /usr/local/go/bin/go ] && export PATH=/usr/local/go/bin:$PATH
command -v wrk >/dev/null || { echo "wrk is not installed: apt-get install -y wrk" >&2; exit 1; }
dur=${1:-10s}
conns=${2:-32}
shift $(( $# < 2 ? $# : 2 ))
tmp=$(mktemp -d)
pid= npid=
cleanup() {
	[ -n "$npid" ] && kill "$npid" 2>/dev/null
	[ -n "$pid" ] && { kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; }
	rm -rf "$tmp"
}
trap cleanup EXIT
if [ -n "${TURF:-}" ]; then cp "$TURF" "$tmp/turf"; else go build -o "$tmp/turf" ./cmd/turf; fi
go build -o "$tmp/noop" ./bench/wrk/noop
rps() { grep -o 'Requests/sec: *[0-9.]*' | grep -o '[0-9.]*$'; }
run_wrk() { wrk -t1 -c"$conns" -d"$dur" -s bench/wrk/post.lua "$1" --latency | tee "$tmp/wrk.out"; }

nport=18098
"$tmp/noop" --listen 127.0.0.1:$nport &
npid=$!
sleep 0.5
echo "== ceiling: bench/wrk/noop (answers 202, does nothing)"
run_wrk "http://127.0.0.1:$nport/api/event" | grep -E 'Requests/sec|99%'
ceiling=$(rps < "$tmp/wrk.out")
kill "$npid"; wait "$npid" 2>/dev/null || true; npid=

port=18091
"$tmp/turf" serve --listen 127.0.0.1:$port --metrics-token bench --data-dir "$tmp/data" --site example.com --trusted-proxy 127.0.0.1 "$@" > "$tmp/turf.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do curl -sf http://127.0.0.1:$port/healthz >/dev/null 2>&1 && break; sleep 0.2; done
chpid=$(pgrep -f "clickhouse-server --config-file=$tmp/data" | head -1)
accepted() { curl -s -H 'Authorization: Bearer bench' http://127.0.0.1:$port/metrics | awk '$1 == "turf_events_accepted_total" { print $2 }'; }
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }   # user+system, in ticks
hz=$(getconf CLK_TCK)
a0=$(accepted)
t0=$(cpu $pid); c0=$(cpu "$chpid")
echo "== turf"
# With perf at hand, also count turf's system calls and context switches:
# unlike events/s they hardly vary from run to run on a noisy machine.
if command -v perf >/dev/null && perf stat -e raw_syscalls:sys_enter -p $pid -- true >/dev/null 2>&1; then
	perf stat -x, -e raw_syscalls:sys_enter,context-switches -p $pid -o "$tmp/perf.out" &
	ppid=$!
fi
run_wrk "http://127.0.0.1:$port/api/event"
t1=$(cpu $pid); c1=$(cpu "$chpid")
a1=$(accepted)
if [ -n "${ppid:-}" ]; then
	kill -INT $ppid; wait $ppid 2>/dev/null || true
	awk -F, -v n=$((a1 - a0)) '$3 ~ /sys_enter/ { s = $1 } $3 ~ /context-switches/ { c = $1 }
		END { if (n > 0) printf "turf per event: %.2f system calls, %.2f context switches\n", s / n, c / n }' "$tmp/perf.out"
fi
got=$(rps < "$tmp/wrk.out")
secs() { awk -v a="$1" -v b="$2" -v hz="$hz" 'BEGIN { printf "%.2f s", (b - a) / hz }'; }
echo "CPU during the run: turf $(secs "$t0" "$t1"), ClickHouse $(secs "$c0" "$c1")"
awk -v t="$got" -v c="$ceiling" 'BEGIN { printf "turf %.0f events/s = %.1f%% of the ceiling %.0f requests/s\n", t, 100 * t / c, c }'
sleep 2 # the last batch
curl -s -H 'Authorization: Bearer bench' http://127.0.0.1:$port/metrics | grep -E '^turf_events_(accepted|inserted)_total|^turf_insert_errors_total|^turf_spool_write_duration_seconds_count'

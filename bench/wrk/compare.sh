#!/usr/bin/env bash
# compare.sh: issue 19's ingest figures for an older build and this tree,
# side by side, from one run on loopback. It builds turf at OLD (a temporary
# git worktree) and from this tree, plus two references from this tree:
# bench/wrk/noop (turf's HTTP server answering 202, the ceiling of run.sh)
# and bench/wrk/bare (a default fasthttp server with an encoding/json
# handler). Then, with wrk (post.lua, CONNECTIONS connections, one thread):
#
#   pinned      the server under test alone on CPU 0; wrk, and turf's managed
#               ClickHouse, on CPU 1: events/s and p99, keep-alive and with a
#               new connection per request, as shares of bare's figures;
#               and keep-alive again with ClickHouse paused (SIGSTOP), which
#               leaves the collector's own path, handler to spool
#   unpinned    everything free on both cores, as run.sh: turf's share of
#               noop's requests/s
#
# and for each turf build: events accepted and inserted (after the last
# flush), peak RSS (VmHWM) over all its runs, and, in the pinned keep-alive
# run, the server's CPU time per request (less sensitive than requests/s to
# what else the machine runs; turf's ClickHouse is counted apart) and system
# calls per event when perf can count them.
# Every server is a child of this script, bound to 127.0.0.1, stopped by PID.
# Usage: bench/wrk/compare.sh [OLD-COMMIT] [DURATION] [CONNECTIONS]
# (defaults fc42635, the build before issue 19's ingest work, 10s, 32;
# DURATION in seconds, e.g. 10s): 22 wrk runs of
# DURATION each, in two rounds.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x /usr/local/go/bin/go ] && export PATH=/usr/local/go/bin:$PATH
for c in wrk taskset curl; do
	command -v $c >/dev/null || { echo "$c is not installed (apt-get install -y wrk util-linux curl)" >&2; exit 1; }
done
old=${1:-fc42635}
dur=${2:-10s}
conns=${3:-32}
tmp=$(mktemp -d)
srv=
cleanup() {
	if [ -n "$srv" ]; then kill -TERM "$srv" 2>/dev/null; wait "$srv" 2>/dev/null || true; fi
	git worktree remove --force "$tmp/old-src" >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT

echo "building turf at $old and at $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . || echo '+changes'), noop and bare" >&2
git worktree add --detach "$tmp/old-src" "$old" >/dev/null 2>&1
(cd "$tmp/old-src" && go build -o "$tmp/turf-old" ./cmd/turf)
go build -o "$tmp/turf-new" ./cmd/turf
go build -o "$tmp/noop" ./bench/wrk/noop
go build -o "$tmp/bare" ./bench/wrk/bare

hz=$(getconf CLK_TCK)
cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; } # user+system ticks
# per_req TICKS REQUESTS/S: CPU microseconds per request over one run.
per_req() { awk -v t="$1" -v r="$2" -v hz="$hz" -v d="${dur%s}" 'BEGIN { printf "%.1f", t / hz / (r * d) * 1e6 }'; }

# run_wrk CPUS URL [close]: prints "requests/s p99-in-ms non-2xx".
run_wrk() {
	WRK_CLOSE=${3:-0} taskset -c "$1" wrk -t1 -c"$conns" -d"$dur" -s bench/wrk/post.lua "$2" --latency > "$tmp/wrk.out" 2>&1 || true
	awk '/Requests\/sec:/ { rps = $2 }
		$1 == "99%" { v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
			p99 = (u == "us") ? v / 1000 : (u == "s") ? v * 1000 : v }
		/Non-2xx/ { bad = $NF }
		END { printf "%.0f %.2f %d\n", rps, p99, bad }' "$tmp/wrk.out"
}

# reference BIN CPUS: starts a reference server; its PID in $srv.
reference() {
	taskset -c "$2" "$tmp/$1" --listen 127.0.0.1:18097 > "$tmp/$1.log" 2>&1 &
	srv=$!
	for _ in $(seq 1 50); do curl -s -o /dev/null http://127.0.0.1:18097/ && break; sleep 0.1; done
}
stop() { kill -TERM "$srv" 2>/dev/null; wait "$srv" 2>/dev/null || true; srv=; }

# references R: noop unpinned, bare pinned (keep-alive, new connections);
# sets noopR, bareR_* variables.
references() {
	local r=$1 c0 ka ka99 nc nc99 no
	reference noop 0,1
	read -r no _ _ < <(run_wrk 0,1 http://127.0.0.1:18097/api/event)
	stop
	reference bare 0
	c0=$(cpu "$srv")
	read -r ka ka99 _ < <(run_wrk 1 http://127.0.0.1:18097/api/event)
	eval "bare${r}_us=$(per_req $(($(cpu "$srv") - c0)) "$ka")"
	read -r nc nc99 _ < <(run_wrk 1 http://127.0.0.1:18097/api/event 1)
	stop
	eval "noop$r=$no bare${r}_ka=$ka bare${r}_ka99=$ka99 bare${r}_nc=$nc bare${r}_nc99=$nc99"
}

metric() { curl -s -H 'Authorization: Bearer bench' "http://127.0.0.1:18091/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
# measure BUILD NAME: runs turf-BUILD (fresh data) through the four runs;
# sets NAME_* variables.
measure() {
	local bin=$1 name=$2 ch
	taskset -c 0 "$tmp/turf-$bin" serve --listen 127.0.0.1:18091 --metrics-token bench --data-dir "$tmp/data-$name" \
		--site example.com --trusted-proxy 127.0.0.1 > "$tmp/turf-$name.log" 2>&1 &
	srv=$!
	for _ in $(seq 1 150); do curl -sf http://127.0.0.1:18091/healthz >/dev/null 2>&1 && break; sleep 0.2; done
	sleep 2 # let the fresh ClickHouse settle
	ch=$(pgrep -f "clickhouse-server --config-file=$tmp/data-$name" | head -1)
	taskset -a -p -c 1 "$ch" >/dev/null # the database is not the server under test
	local a0 ppid=
	a0=$(metric turf_events_accepted_total)
	if command -v perf >/dev/null && perf stat -e raw_syscalls:sys_enter -p "$srv" -- true >/dev/null 2>&1; then
		perf stat -x, -e raw_syscalls:sys_enter -p "$srv" -o "$tmp/perf.out" &
		ppid=$!
	fi
	local c0 h0
	c0=$(cpu "$srv") h0=$(cpu "$ch")
	read -r ka ka99 ka_bad < <(run_wrk 1 http://127.0.0.1:18091/api/event)
	local us chus
	us=$(per_req $(($(cpu "$srv") - c0)) "$ka") chus=$(per_req $(($(cpu "$ch") - h0)) "$ka")
	local sc=n/a
	if [ -n "$ppid" ]; then
		kill -INT "$ppid"; wait "$ppid" 2>/dev/null || true
		sc=$(awk -F, -v n=$(($(metric turf_events_accepted_total) - a0)) '$3 ~ /sys_enter/ && n > 0 { printf "%.2f", $1 / n }' "$tmp/perf.out")
	fi
	read -r nc nc99 nc_bad < <(run_wrk 1 http://127.0.0.1:18091/api/event 1)
	taskset -a -p -c 0,1 "$srv" >/dev/null
	taskset -a -p -c 0,1 "$ch" >/dev/null
	read -r un un99 un_bad < <(run_wrk 0,1 http://127.0.0.1:18091/api/event)
	# Last, pinned again: the keep-alive run with ClickHouse stopped
	# (SIGSTOP). The sink waits, events only reach the spool, and what is
	# measured is the collector's own path, handler to spool. They are
	# inserted after SIGCONT (awaited below, so the backlog disturbs no
	# other run) and counted like the others.
	taskset -a -p -c 0 "$srv" >/dev/null
	taskset -a -p -c 1 "$ch" >/dev/null
	kill -STOP "$ch"
	sleep 1
	read -r pa pa99 pa_bad < <(run_wrk 1 http://127.0.0.1:18091/api/event)
	kill -CONT "$ch"
	# The last batch (flush interval 1s by default), and the backlog of the
	# paused run: wait until inserted stops growing, at most 120 s.
	local acc ins prev=-1
	for _ in $(seq 1 60); do
		sleep 2
		acc=$(metric turf_events_accepted_total)
		ins=$(metric turf_events_inserted_total)
		{ [ "$ins" = "$acc" ] || [ "$ins" = "$prev" ]; } && break
		prev=$ins
	done
	local rss
	rss=$(awk '/VmHWM/ { printf "%.0f MB", $2 / 1024 }' "/proc/$srv/status")
	stop
	eval "${name}_ka=$ka ${name}_ka99=$ka99 ${name}_nc=$nc ${name}_nc99=$nc99 ${name}_un=$un ${name}_un99=$un99"
	eval "${name}_pa=$pa ${name}_pa99=$pa99"
	eval "${name}_bad=$((ka_bad + nc_bad + pa_bad + un_bad)) ${name}_acc=$acc ${name}_ins=$ins ${name}_rss='$rss' ${name}_sc=$sc"
	eval "${name}_us=$us ${name}_chus=$chus"
}
# Two rounds in mirrored order (references, old, new | new, old,
# references), so that drift in what else the machine runs, and going first
# or second, show instead of deciding the comparison. Each round's ratios
# are against its own references.
references 1
measure old old1
measure new new1
measure new new2
measure old old2
references 2

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f×", a / b }'; }
row() { printf '| %s | %s | %s | %s |\n' "$1" "$2" "$3" "$4"; }
v() { eval "echo \${$1}"; }
# cells WHAT: the old and new cells of one row, "round 1 / round 2".
cells() {
	local o="" n="" r b
	for r in 1 2; do
		for b in old new; do
			local c
			case $1 in
			ka) c="$(v ${b}${r}_ka) ($(ratio "$(v ${b}${r}_ka)" "$(v bare${r}_ka)")), $(v ${b}${r}_ka99) ms" ;;
			pa) c="$(v ${b}${r}_pa) ($(ratio "$(v ${b}${r}_pa)" "$(v bare${r}_ka)")), $(v ${b}${r}_pa99) ms" ;;
			nc) c="$(v ${b}${r}_nc) ($(ratio "$(v ${b}${r}_nc)" "$(v bare${r}_nc)")), $(v ${b}${r}_nc99) ms" ;;
			un) c="$(v ${b}${r}_un) ($(ratio "$(v ${b}${r}_un)" "$(v noop${r})")), $(v ${b}${r}_un99) ms" ;;
			us) c="$(v ${b}${r}_us) ($(ratio "$(v bare${r}_us)" "$(v ${b}${r}_us)")), $(v ${b}${r}_chus)" ;;
			sc) c="$(v ${b}${r}_sc)" ;;
			io) c="$(v ${b}${r}_acc) / $(v ${b}${r}_ins) ($(v ${b}${r}_bad))" ;;
			rss) c="$(v ${b}${r}_rss)" ;;
			esac
			if [ $b = old ]; then o="$o${o:+ ; }$c"; else n="$n${n:+ ; }$c"; fi
		done
	done
	printf '%s\t%s' "$o" "$n"
}
line() { local c; c=$(cells "$2"); row "$1" "${c%%$'\t'*}" "${c#*$'\t'}" "$3"; }
echo
echo "wrk -t1 -c$conns -d$dur, bench/wrk/post.lua; pinned: server on CPU 0, wrk and ClickHouse on CPU 1; each cell: round 1 ; round 2"
row "" "old ($old)" "new ($(git rev-parse --short HEAD))" "reference (round 1 / 2)"
row "---" "---" "---" "---"
line "keep-alive, pinned: events/s (share of bare), p99" ka "bare $bare1_ka / $bare2_ka, p99 $bare1_ka99 / $bare2_ka99 ms"
line "keep-alive, pinned, ClickHouse paused (handler to spool only): events/s (share of bare), p99" pa "bare keep-alive as above"
line "new connection per request, pinned: events/s (share of bare), p99" nc "bare $bare1_nc / $bare2_nc, p99 $bare1_nc99 / $bare2_nc99 ms"
line "keep-alive, unpinned: events/s (share of noop), p99" un "noop $noop1 / $noop2"
line "CPU per request, pinned keep-alive: server µs (bare's / it), ClickHouse µs" us "bare $bare1_us / $bare2_us µs"
line "system calls per event (pinned keep-alive)" sc ""
line "accepted / inserted (non-2xx answers)" io ""
line "peak RSS over the four runs" rss ""

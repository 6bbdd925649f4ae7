#!/usr/bin/env bash
# run.sh: the long fault-injection run. Starts its own ClickHouse and turf
# (built from this tree) on loopback, drives numbered events at them for
# several minutes while stopping ClickHouse, slowing it, kill -9ing turf
# mid-flush and filling the spool, then prints accepted / refused / stored /
# duplicates / lost, peak RSS and peak spool size. Exit status 0 only when
# every accepted event is stored exactly once.
#
# Usage: bench/faults/run.sh [flags of bench/faults, e.g. --kills 100 --outage 60s --fsync-interval 0]
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x /usr/local/go/bin/go ] && export PATH=/usr/local/go/bin:$PATH
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/faults" ./bench/faults
"$tmp/faults" "$@"

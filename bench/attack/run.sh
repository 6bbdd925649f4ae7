#!/usr/bin/env bash
# run.sh: issue 14's attacks against turf built from this tree and, given a
# commit, against turf built from that commit first (the figures before a
# fix), on loopback, with one ClickHouse of its own. Prints one block of
# figures per binary (see bench/attack/main.go for what each line means).
#
# Usage: bench/attack/run.sh [old-commit] [flags of bench/attack, e.g. -events 500000]
#   bench/attack/run.sh 6615f54      # before and after issue 14's fixes
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x /usr/local/go/bin/go ] && export PATH=/usr/local/go/bin:$PATH
tmp=$(mktemp -d)
old=""
cleanup() {
	[ -n "$old" ] && git worktree remove --force "$tmp/old-src" >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT
go build -o "$tmp/turf" ./cmd/turf
go build -o "$tmp/attack" ./bench/attack
args=(-turf "$tmp/turf" -data-dir "$tmp/data")
if [ $# -gt 0 ] && [[ "$1" != -* ]]; then
	old=$1
	shift
	git worktree add --detach "$tmp/old-src" "$old" >/dev/null
	(cd "$tmp/old-src" && go build -o "$tmp/turf-old" ./cmd/turf)
	args+=(-turf-old "$tmp/turf-old")
fi
"$tmp/attack" "${args[@]}" "$@"

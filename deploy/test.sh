#!/usr/bin/env bash
# test.sh: the README's second command, and what CI runs. Installs what is
# missing, then runs every test (unit, integration against a real ClickHouse
# started by the tests themselves, browser tests in headless Chromium), vet,
# and a short run of each fuzz target.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x /usr/local/go/bin/go ] && export PATH=/usr/local/go/bin:$PATH

deploy/install-deps.sh --test

echo "== go vet"
go vet ./...
echo "== go test"
# -p 2: this is a 2-core machine, and each test binary starts its own ClickHouse.
# Each storage test binary also writes what its modern leg (every statement
# again on ClickHouse 26.x, chDB) did; modernreport adds it up at the end.
TURF_MODERN_REPORT=$(mktemp -d)
export TURF_MODERN_REPORT
go test -count=1 -p 2 -timeout 25m ./...
echo "== ClickHouse 26.x leg"
go run ./internal/chtest/modernreport "$TURF_MODERN_REPORT"
rm -rf "$TURF_MODERN_REPORT"
echo "== fuzz (short)"
# A budget of executions, not seconds: with a duration, Go 1.26's fuzzing
# coordinator can report a spurious "context deadline exceeded" when the
# time runs out mid-call (golang/go#75804, fixed in Go 1.27).
for target in $(grep -rl --include='*_test.go' '^func Fuzz' . | sort); do
	dir=$(dirname "$target")
	for f in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$target" | sed 's/^func //'); do
		echo "-- $dir $f"
		go test -run '^$' -fuzz "^$f\$" -fuzztime 200000x "./$dir"
	done
done
echo "all tests passed"

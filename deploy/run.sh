#!/usr/bin/env bash
# run.sh: the README's first command. Installs what is missing (ClickHouse,
# Go modules, the free GeoIP database), builds turf and starts it on
# http://localhost:8080 with a managed local ClickHouse under ./data and a
# demo site. Extra arguments go to `turf serve`, e.g. --site example.com.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x /usr/local/go/bin/go ] && export PATH=/usr/local/go/bin:$PATH

deploy/install-deps.sh
deploy/fetch-geoip.sh data/geo/country.mmdb
echo "building turf"
go build -o bin/turf -ldflags "-X main.version=$(git describe --always --dirty 2>/dev/null || echo dev)" ./cmd/turf

sites=(--site localhost --site demo.turf.localhost)
exec bin/turf serve --data-dir ./data --geoip-db data/geo/country.mmdb "${sites[@]}" "$@"

#!/usr/bin/env bash
# install-deps.sh installs what turf and its tests need on Debian, skipping
# whatever is already there. Usage: deploy/install-deps.sh [--test]
#   --test  also the test-only tools (headless Chromium for browser tests,
#           ZooKeeper for the ClickHouse cluster test, and chDB, ClickHouse
#           26.x as a library, for the tests' modern leg)
set -euo pipefail

want_test=false
[ "${1:-}" = "--test" ] && want_test=true

sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi

pkgs=()
command -v clickhouse-server >/dev/null 2>&1 || [ -x /usr/sbin/clickhouse-server ] || pkgs+=(clickhouse-server clickhouse-client)
command -v npm >/dev/null 2>&1 || pkgs+=(npm)
if $want_test; then
	command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || pkgs+=(chromium)
	[ -f /usr/share/java/zookeeper.jar ] || pkgs+=(zookeeper)
fi
if [ ${#pkgs[@]} -gt 0 ]; then
	echo "installing Debian packages: ${pkgs[*]}"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
fi
# Debian's package starts a system-wide server on port 9000; turf runs its
# own managed one, so the system one is not needed (but is left alone).

# chDB (ClickHouse 26.5 as an in-process library) for the tests' modern leg:
# every statement the storage tests send to 18.16 also runs on it (see
# internal/chtest). Fetched once from npm into a cache outside the checkout;
# the turf binary never links it. Keep the version in step with
# internal/chdb.Version.
if $want_test; then
	chdb_version=26.5.3
	chdb_dir="${XDG_CACHE_HOME:-$HOME/.cache}/turf/chdb/$chdb_version"
	if [ ! -f "$chdb_dir/libchdb.so" ]; then
		echo "fetching chDB $chdb_version from npm (a 170 MB download, 560 MB unpacked) into $chdb_dir"
		tmp=$(mktemp -d)
		(cd "$tmp" && npm pack --silent "@chdb/lib-linux-x64-gnu@$chdb_version" >/dev/null)
		tar -xzf "$tmp/chdb-lib-linux-x64-gnu-$chdb_version.tgz" -C "$tmp" package/libchdb.so
		mkdir -p "$chdb_dir"
		mv "$tmp/package/libchdb.so" "$chdb_dir/libchdb.so.part"
		mv "$chdb_dir/libchdb.so.part" "$chdb_dir/libchdb.so"
		rm -rf "$tmp"
	fi
fi

if ! command -v go >/dev/null 2>&1; then
	if [ -x /usr/local/go/bin/go ]; then
		export PATH=/usr/local/go/bin:$PATH
	else
		echo "Go 1.26 is needed to build turf: see https://go.dev/doc/install" >&2
		exit 1
	fi
fi
go mod download

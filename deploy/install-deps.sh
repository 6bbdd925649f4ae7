#!/usr/bin/env bash
# install-deps.sh installs what turf and its tests need on Debian, skipping
# whatever is already there. Usage: deploy/install-deps.sh [--test]
#   --test  also the test-only tools (headless Chromium for browser tests,
#           ZooKeeper for the ClickHouse cluster test)
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

if ! command -v go >/dev/null 2>&1; then
	if [ -x /usr/local/go/bin/go ]; then
		export PATH=/usr/local/go/bin:$PATH
	else
		echo "Go 1.26 is needed to build turf: see https://go.dev/doc/install" >&2
		exit 1
	fi
fi
go mod download

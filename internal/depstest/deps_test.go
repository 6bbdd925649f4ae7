// Package depstest keeps turf's package map one-way: the collector and the
// query side never import each other (only cmd/turf and internal/app wire
// both), retention imports neither, and the classifier packages stay free of
// fasthttp and clickhouse-go.
package depstest

import (
	"os/exec"
	"strings"
	"testing"
)

func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

func TestImports(t *testing.T) {
	for _, c := range []struct {
		pkg       string
		forbidden []string
	}{
		{"turf/collector/...", []string{"turf/query"}},
		{"turf/query/...", []string{"turf/collector"}},
		{"turf/retention/...", []string{"turf/query", "turf/collector"}},
		{"turf/internal/clientip", []string{"github.com/valyala/fasthttp", "github.com/ClickHouse/clickhouse-go"}},
		{"turf/collector/beacon", []string{"github.com/valyala/fasthttp", "github.com/ClickHouse/clickhouse-go"}},
		{"turf/collector/referrer", []string{"github.com/valyala/fasthttp", "github.com/ClickHouse/clickhouse-go"}},
		{"turf/collector/useragent", []string{"github.com/valyala/fasthttp", "github.com/ClickHouse/clickhouse-go"}},
		{"turf/query/plan", []string{"github.com/valyala/fasthttp", "github.com/ClickHouse/clickhouse-go"}},
	} {
		for _, d := range deps(t, c.pkg) {
			for _, f := range c.forbidden {
				if d == f || strings.HasPrefix(d, f+"/") {
					t.Errorf("%s imports %s", c.pkg, d)
				}
			}
		}
	}
}

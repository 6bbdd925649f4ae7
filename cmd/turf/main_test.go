package main

import (
	"flag"
	"os"
	"strings"
	"testing"
)

// TestREADMEListsEveryServeFlag keeps the one place where configuration is
// documented in step with the flags.
func TestREADMEListsEveryServeFlag(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	fs := captureServeFlags(t)
	n := 0
	fs.VisitAll(func(f *flag.Flag) {
		n++
		if !strings.Contains(string(readme), "| `--"+f.Name+"` |") {
			t.Errorf("README's configuration table lacks --%s", f.Name)
		}
	})
	if n < 15 {
		t.Fatalf("only %d serve flags found", n)
	}
}

// captureServeFlags gets serve's flag set by asking for help.
func captureServeFlags(t *testing.T) *flag.FlagSet {
	var got *flag.FlagSet
	old := newFlagSetHook
	newFlagSetHook = func(fs *flag.FlagSet) { got = fs; fs.SetOutput(new(strings.Builder)) }
	defer func() { newFlagSetHook = old }()
	if _, err := serveFlags([]string{"-h"}); err != flag.ErrHelp {
		t.Fatalf("serve -h: %v", err)
	}
	return got
}

func TestEnvOverride(t *testing.T) {
	t.Setenv("TURF_BATCH_SIZE", "123")
	t.Setenv("TURF_SITE", "a.example, b.example")
	t.Setenv("TURF_LISTEN", "127.0.0.1:9999")
	cfg, err := serveFlags([]string{"--listen", "127.0.0.1:7777"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.batchSize != 123 {
		t.Errorf("batch size from env = %d", cfg.batchSize)
	}
	if cfg.listen != "127.0.0.1:7777" {
		t.Errorf("flag did not win over env: %s", cfg.listen)
	}
	if len(cfg.sites) != 2 || cfg.sites[1] != "b.example" {
		t.Errorf("sites from env = %q", cfg.sites)
	}
}

func TestServeFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--site", "a", "--ipv4-prefix", "8"}, // prefix
		{"--site", "a", "--batch-size", "0"},
		{"--site", "a", "--queue-size", "5", "--batch-size", "10"},
		{"--site", "a", "stray"},
		{"--site", "a", "--query-burst", "0"},
	} {
		if _, err := serveFlags(args); err == nil {
			t.Errorf("serveFlags(%q) accepted", args)
		}
	}
	t.Setenv("TURF_IPV6_PREFIX", "x")
	if _, err := serveFlags([]string{"--site", "a"}); err == nil || !strings.Contains(err.Error(), "TURF_IPV6_PREFIX") {
		t.Errorf("bad env value: %v", err)
	}
}

func TestSiteConfigs(t *testing.T) {
	cfg, err := serveFlags([]string{"--site", "a.example,b.example", "--site-timezone", "a.example=Europe/Amsterdam",
		"--goal", "a.example=Signup", "--goal", "A.example=Visit /thanks"})
	if err != nil {
		t.Fatal(err)
	}
	sites, err := siteConfigs(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a := sites["a.example"]
	if a.Timezone != "Europe/Amsterdam" || len(a.Goals) != 2 || a.Goals[1] != "Visit /thanks" {
		t.Errorf("a.example = %+v", a)
	}
	for _, bad := range [][]string{
		{"--site-timezone", "a.example=Mars/Olympus"},
		{"--site-timezone", "c.example=UTC"},
		{"--goal", "a.example"},
		{"--goal", "=Signup"},
	} {
		cfg, err := serveFlags(append([]string{"--site", "a.example"}, bad...))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := siteConfigs(cfg); err == nil {
			t.Errorf("siteConfigs accepted %q", bad)
		}
	}
}

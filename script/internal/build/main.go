// Command build writes dist/script.min.js from src/turf.js. It runs through
// `go generate ./script` (the working directory is then the script package),
// so that building turf never needs Node: the minified file is committed.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"turf/script/internal/minify"
)

func main() {
	if err := run("src/turf.js", "dist/script.min.js"); err != nil {
		fmt.Fprintln(os.Stderr, "build:", err)
		os.Exit(1)
	}
}

func run(srcPath, distPath string) error {
	src, err := os.ReadFile(srcPath)
	if err != nil {
		return fmt.Errorf("cannot read the tracker source: %w", err)
	}
	out, err := minify.Minify(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(distPath), 0o755); err != nil {
		return fmt.Errorf("cannot create %s: %w", filepath.Dir(distPath), err)
	}
	if err := os.WriteFile(distPath, out, 0o644); err != nil {
		return fmt.Errorf("cannot write %s: %w", distPath, err)
	}
	return nil
}

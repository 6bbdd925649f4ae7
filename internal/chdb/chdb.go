// Package chdb runs SQL on chDB, ClickHouse as an in-process library, so that
// tests can prove turf's statements on a modern ClickHouse (26.x) although
// the only server to be had here is Debian's 18.16.
//
// The library (libchdb.so, about 560 MB) is loaded with dlopen when a test
// first asks for it, never linked: the turf binary does not import this
// package, and a test binary without the library still builds and runs.
// deploy/install-deps.sh --test puts the library in a cache outside the
// checkout (see Find).
//
// chDB allows one connection per process, so Open hands out one shared Conn
// and every query on it is serialised.
package chdb

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>

typedef void **(*connect_fn)(int, char **);
typedef void *(*query_fn)(void *, const char *, const char *);
typedef char *(*buffer_fn)(void *);
typedef size_t (*length_fn)(void *);
typedef const char *(*error_fn)(void *);
typedef void (*destroy_fn)(void *);

static connect_fn f_connect;
static query_fn f_query;
static buffer_fn f_buffer;
static length_fn f_length;
static error_fn f_error;
static destroy_fn f_destroy;

// turf_chdb_load returns NULL on success, else what went wrong.
static const char *turf_chdb_load(const char *path) {
	void *lib = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
	if (!lib) return dlerror();
	f_connect = (connect_fn)dlsym(lib, "chdb_connect");
	f_query = (query_fn)dlsym(lib, "chdb_query");
	f_buffer = (buffer_fn)dlsym(lib, "chdb_result_buffer");
	f_length = (length_fn)dlsym(lib, "chdb_result_length");
	f_error = (error_fn)dlsym(lib, "chdb_result_error");
	f_destroy = (destroy_fn)dlsym(lib, "chdb_destroy_query_result");
	if (!f_connect || !f_query || !f_buffer || !f_length || !f_error || !f_destroy)
		return "libchdb.so lacks the chdb_connect/chdb_query C API";
	return NULL;
}

static void *turf_chdb_connect(int argc, char **argv) {
	void **c = f_connect(argc, argv);
	return c ? *c : NULL;
}
static void *turf_chdb_query(void *c, const char *q, const char *f) { return f_query(c, q, f); }
static char *turf_chdb_buffer(void *r) { return f_buffer(r); }
static size_t turf_chdb_length(void *r) { return f_length(r); }
static const char *turf_chdb_error(void *r) { return f_error(r); }
static void turf_chdb_destroy(void *r) { f_destroy(r); }
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"unsafe"
)

// Version is the chDB release deploy/install-deps.sh fetches; the cache path
// carries it, so a new release is a new file.
const Version = "26.5.3"

// Find returns the path of libchdb.so: $TURF_CHDB_LIB, else the cache that
// deploy/install-deps.sh --test fills.
func Find() (string, error) {
	if p := os.Getenv("TURF_CHDB_LIB"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("TURF_CHDB_LIB: %w", err)
		}
		return p, nil
	}
	p := CachePath()
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("no chDB library at %s; run deploy/install-deps.sh --test (or set TURF_CHDB_LIB)", p)
	}
	return p, nil
}

// CachePath is where deploy/install-deps.sh --test keeps the library:
// $XDG_CACHE_HOME/turf/chdb/<Version>/libchdb.so, ~/.cache when unset. Keep
// it in step with that script.
func CachePath() string {
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, _ := os.UserHomeDir()
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "turf", "chdb", Version, "libchdb.so")
}

// Conn is the process's chDB connection.
type Conn struct {
	mu sync.Mutex
	c  unsafe.Pointer
}

var (
	openOnce sync.Once
	shared   *Conn
	openErr  error
)

// Open loads the library at lib and connects with its data under dir. Only
// the first call does so; later calls return the same connection (or error)
// whatever their arguments.
func Open(lib, dir string) (*Conn, error) {
	openOnce.Do(func() { shared, openErr = open(lib, dir) })
	return shared, openErr
}

func open(lib, dir string) (*Conn, error) {
	cpath := C.CString(lib)
	defer C.free(unsafe.Pointer(cpath))
	if msg := C.turf_chdb_load(cpath); msg != nil {
		return nil, fmt.Errorf("cannot load %s: %s", lib, C.GoString(msg))
	}
	args := []string{"clickhouse", "--path=" + dir}
	argv := make([]*C.char, len(args))
	for i, a := range args {
		argv[i] = C.CString(a)
		defer C.free(unsafe.Pointer(argv[i]))
	}
	c := C.turf_chdb_connect(C.int(len(args)), &argv[0])
	if c == nil {
		return nil, errors.New("chdb_connect failed")
	}
	return &Conn{c: c}, nil
}

// Query runs one statement and returns its output in format (a ClickHouse
// output format name such as "TabSeparated"); the error is ClickHouse's
// message.
func (c *Conn) Query(sql, format string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.query(sql, format)
}

func (c *Conn) query(sql, format string) ([]byte, error) {
	cq, cf := C.CString(sql), C.CString(format)
	defer C.free(unsafe.Pointer(cq))
	defer C.free(unsafe.Pointer(cf))
	r := C.turf_chdb_query(c.c, cq, cf)
	if r == nil {
		return nil, errors.New("chdb_query returned no result")
	}
	defer C.turf_chdb_destroy(r)
	if e := C.turf_chdb_error(r); e != nil {
		return nil, errors.New(C.GoString(e))
	}
	n := C.turf_chdb_length(r)
	if n == 0 {
		return nil, nil
	}
	return C.GoBytes(unsafe.Pointer(C.turf_chdb_buffer(r)), C.int(n)), nil
}

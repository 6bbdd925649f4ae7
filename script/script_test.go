package script

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"regexp"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/valyala/fasthttp"

	"turf/script/internal/minify"
)

// maxGzipped is the tracker's size budget: every page of every site downloads it.
const maxGzipped = 1500

func TestDistIsFresh(t *testing.T) {
	src, err := os.ReadFile("src/turf.js")
	if err != nil {
		t.Fatal(err)
	}
	want, err := minify.Minify(src)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(JS, want) {
		t.Fatal("dist/script.min.js is stale: run go generate ./script")
	}
}

func TestSize(t *testing.T) {
	n := len(gzipBytes(JS))
	t.Logf("tracker: %d bytes minified, %d gzipped, %d brotli", len(JS), n, len(brotlied.body))
	if n > maxGzipped {
		t.Errorf("tracker is %d bytes gzipped, budget is %d", n, maxGzipped)
	}
}

// TestNoStorage guards the promise in docs/tracker.md by looking at the
// source: the tracker may read localStorage.turf_ignore and nothing else.
// The browser tests in e2e/ check the same from the outside.
func TestNoStorage(t *testing.T) {
	for _, s := range []string{"cookie", "sessionStorage", "indexedDB", "setItem", "caches"} {
		if bytes.Contains(JS, []byte(s)) {
			t.Errorf("minified tracker mentions %q", s)
		}
	}
	if uses := regexp.MustCompile(`localStorage[^=]*=([^=]|$)`).FindAll(JS, -1); len(uses) > 0 {
		t.Errorf("minified tracker assigns to localStorage: %q", uses)
	}
	if n := bytes.Count(JS, []byte("localStorage")); n != 1 {
		t.Errorf("minified tracker uses localStorage %d times, want only the turf_ignore read", n)
	}
}

func get(t *testing.T, method string, headers ...string) *fasthttp.Response {
	t.Helper()
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod(method)
	ctx.Request.SetRequestURI(Path)
	for i := 0; i+1 < len(headers); i += 2 {
		ctx.Request.Header.Set(headers[i], headers[i+1])
	}
	Serve(&ctx)
	var resp fasthttp.Response
	ctx.Response.CopyTo(&resp)
	return &resp
}

func decode(t *testing.T, encoding string, body []byte) []byte {
	t.Helper()
	var r io.Reader = bytes.NewReader(body)
	switch encoding {
	case "":
	case "gzip":
		zr, err := gzip.NewReader(r)
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	case "br":
		r = brotli.NewReader(r)
	default:
		t.Fatalf("unexpected Content-Encoding %q", encoding)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("cannot decode %s body: %v", encoding, err)
	}
	return b
}

func TestServe(t *testing.T) {
	tests := []struct {
		name           string
		acceptEncoding string
		wantEncoding   string
	}{
		{"no header", "", ""},
		{"gzip", "gzip, deflate", "gzip"},
		{"brotli preferred", "gzip, deflate, br, zstd", "br"},
		{"brotli only", "br", "br"},
		{"brotli refused", "br;q=0, gzip", "gzip"},
		{"all refused", "gzip;q=0.0, br; q=0", ""},
		{"star", "*", "br"},
		{"star but not br", "*, br;q=0", "gzip"},
		{"identity only", "identity", ""},
		{"upper case", "GZIP", "gzip"},
		{"q not zero", "gzip;q=0.5", "gzip"},
	}
	etags := map[string]string{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := get(t, "GET", "Accept-Encoding", tt.acceptEncoding)
			if resp.StatusCode() != 200 {
				t.Fatalf("status %d", resp.StatusCode())
			}
			h := &resp.Header
			for k, want := range map[string]string{
				"Content-Type":                "application/javascript; charset=utf-8",
				"Content-Encoding":            tt.wantEncoding,
				"Access-Control-Allow-Origin": "*",
				"Cache-Control":               cacheControl,
				"Vary":                        "Accept-Encoding",
			} {
				if got := string(h.Peek(k)); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			etag := string(h.Peek("ETag"))
			if len(etag) < 3 || etag[0] != '"' || etag[len(etag)-1] != '"' {
				t.Errorf("ETag %q is not a strong entity tag", etag)
			}
			if prev, ok := etags[tt.wantEncoding]; ok && prev != etag {
				t.Errorf("ETag %q differs from %q for the same encoding", etag, prev)
			}
			etags[tt.wantEncoding] = etag
			if got := decode(t, tt.wantEncoding, resp.Body()); !bytes.Equal(got, JS) {
				t.Errorf("decoded body differs from the tracker (%d bytes, want %d)", len(got), len(JS))
			}
		})
	}
	if len(etags) != 3 {
		t.Errorf("want one ETag per encoding, got %v", etags)
	}
	seen := map[string]bool{}
	for _, e := range etags {
		if seen[e] {
			t.Errorf("ETag %s is shared by two encodings", e)
		}
		seen[e] = true
	}
}

func TestServeNotModified(t *testing.T) {
	tests := []struct {
		name           string
		acceptEncoding string
		ifNoneMatch    string
		wantStatus     int
	}{
		{"same tag", "", identity.etag, 304},
		{"same gzip tag", "gzip", gzipped.etag, 304},
		{"weakened by a proxy", "br", "W/" + brotlied.etag, 304},
		{"in a list", "gzip", `"x", ` + gzipped.etag, 304},
		{"star", "", "*", 304},
		{"old release", "", `"0123"`, 200},
		{"other encoding's tag", "br", gzipped.etag, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := get(t, "GET", "Accept-Encoding", tt.acceptEncoding, "If-None-Match", tt.ifNoneMatch)
			if resp.StatusCode() != tt.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode(), tt.wantStatus)
			}
			if tt.wantStatus == 304 {
				if len(resp.Body()) != 0 {
					t.Errorf("304 with a %d byte body", len(resp.Body()))
				}
				if resp.Header.Peek("ETag") == nil || resp.Header.Peek("Cache-Control") == nil {
					t.Errorf("304 lacks ETag or Cache-Control: %s", &resp.Header)
				}
			}
		})
	}
}

func TestServeMethods(t *testing.T) {
	// fasthttp itself leaves the body out of a HEAD response.
	if resp := get(t, "HEAD"); resp.StatusCode() != 200 || resp.Header.Peek("ETag") == nil {
		t.Errorf("HEAD: status %d, headers %s", resp.StatusCode(), &resp.Header)
	}
	resp := get(t, "POST")
	if resp.StatusCode() != 405 || string(resp.Header.Peek("Allow")) != "GET, HEAD" {
		t.Errorf("POST: status %d, Allow %q", resp.StatusCode(), resp.Header.Peek("Allow"))
	}
}

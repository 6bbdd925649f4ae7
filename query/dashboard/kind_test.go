package dashboard

import (
	"context"
	"strings"
	"testing"
	"time"
)

// A share token is checked as a share token only: once cached, it must not
// pass as a session cookie (the auth cache is keyed by kind).
func TestShareTokenIsNoSession(t *testing.T) {
	e := newEnv(t, Config{AuthCacheTTL: time.Hour})
	tok, _, err := CreateShare(context.Background(), e.db.Conn, e.db.Name, "b.example", "press")
	if err != nil {
		t.Fatal(err)
	}
	b := strings.Replace(body, "a.example", "b.example", 1)
	if r, _ := e.do(req{method: "POST", uri: queryPath, body: b, hdr: map[string]string{shareHeader: tok}}); r.Response.StatusCode() != 200 {
		t.Fatalf("share link: %d", r.Response.StatusCode())
	}
	if r, _ := e.do(req{method: "POST", uri: queryPath, body: b, hdr: map[string]string{csrfHeader: csrfToken(tok)}, cookie: tok}); r.Response.StatusCode() != 401 {
		t.Errorf("share token as a session cookie: %d, want 401", r.Response.StatusCode())
	}
}

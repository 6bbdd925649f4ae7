package dashboard

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// loginFrom posts a log-in as if from addr (through a trusted proxy: a bare
// RequestCtx's peer is 0.0.0.0).
func (e *env) loginFrom(addr, name, password string) int {
	e.t.Helper()
	c, _ := e.do(req{method: "POST", uri: "/login", body: "username=" + name + "&password=" + strings.ReplaceAll(password, " ", "+"),
		hdr: map[string]string{"Origin": "http://turf.test", "X-Forwarded-For": addr}})
	return c.Response.StatusCode()
}

var viaProxy = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/32")}

// TestLoginThrottledByNetwork: many addresses of one network times many user
// names get no more attempts than one address. The attack of issue 14 was 6
// addresses x 10 names; an IPv6 /64 (and a /48) is an unlimited supply of
// addresses.
func TestLoginThrottledByNetwork(t *testing.T) {
	e := newEnv(t, Config{LoginRate: 1, LoginBurst: 3, TrustedProxies: viaProxy})
	e.addUser("alice")
	for _, c := range []struct {
		name  string
		addrs func(i int) string
	}{
		{"6 addresses of one /24", func(i int) string { return fmt.Sprintf("198.51.100.%d", 1+i%6) }},
		{"one /64", func(i int) string { return fmt.Sprintf("2001:db8:1:2:%x::%x", i, i*7+1) }},
		{"64 /64s of one /48", func(i int) string { return fmt.Sprintf("2001:db8:7:%x::1", i) }},
	} {
		tried := 0
		for i := range 60 {
			code := e.loginFrom(c.addrs(i), fmt.Sprintf("%s-user%d", c.name[:2], i%10), "wrong password")
			if code != 429 {
				tried++
			}
		}
		if tried > 3 {
			t.Errorf("%s: %d of 60 attempts were checked, want at most the burst of 3", c.name, tried)
		}
	}
	// Other networks are not affected.
	if code := e.loginFrom("192.0.2.1", "alice", "a good password"); code != 303 {
		t.Errorf("alice from another network: %d", code)
	}
}

// TestLoginNoRemoteLockout: failed attempts from elsewhere cannot keep a user
// out of the places she logged in from (issue 14: 14 wrong tries for carol
// from one address made her correct password answer 429 from another).
func TestLoginNoRemoteLockout(t *testing.T) {
	e := newEnv(t, Config{LoginRate: 1, LoginBurst: 3, TrustedProxies: viaProxy})
	e.addUser("carol")
	if code := e.loginFrom("203.0.113.7", "carol", "a good password"); code != 303 {
		t.Fatalf("carol's first log-in: %d", code)
	}
	// 14 wrong tries from one address, then more from many networks: the
	// attacker's networks and carol's bucket for unknown places run dry.
	checked := 0
	for i := range 14 {
		if e.loginFrom("198.51.100.9", "carol", fmt.Sprintf("guess %d", i)) != 429 {
			checked++
		}
	}
	for i := range 20 {
		if e.loginFrom(fmt.Sprintf("192.0.%d.9", i), "carol", fmt.Sprintf("guess %d", i)) != 429 {
			checked++
		}
	}
	// 3 from the one address, 3 spent from carol's bucket by the others (the
	// first address's 3 spent it too: at most 3 in all reach the password).
	if checked > 3 {
		t.Errorf("%d guesses for carol were checked, want at most 3", checked)
	}
	// Carol, from where she logged in before, and also from another
	// address of that network (a new DHCP lease), gets in.
	for _, a := range []string{"203.0.113.7", "203.0.113.99"} {
		if code := e.loginFrom(a, "carol", "a good password"); code != 303 {
			t.Errorf("carol from %s during the attack: %d, want 303", a, code)
		}
	}
	// The attacker, even with the right password, waits: guessing stays
	// bounded per user.
	if code := e.loginFrom("192.0.99.9", "carol", "a good password"); code != 429 {
		t.Errorf("right password from a new network with carol's bucket empty: %d, want 429", code)
	}
	e.skew += 2 * time.Minute
	if code := e.loginFrom("192.0.99.9", "carol", "a good password"); code != 303 {
		t.Errorf("after the wait: %d", code)
	}
}

// TestLoginBcryptCap: password checks beyond MaxConcurrentLogins wait their
// turn and then get 503 with Retry-After.
func TestLoginBcryptCap(t *testing.T) {
	e := newEnv(t, Config{MaxConcurrentLogins: 1, LoginWait: 50 * time.Millisecond, TrustedProxies: viaProxy})
	e.addUser("alice")
	e.d.bcrypt <- struct{}{} // a check in progress
	c, _ := e.do(req{method: "POST", uri: "/login", body: "username=alice&password=a+good+password",
		hdr: map[string]string{"Origin": "http://turf.test", "X-Forwarded-For": "198.51.100.1"}})
	if c.Response.StatusCode() != 503 || len(c.Response.Header.Peek("Retry-After")) == 0 {
		t.Errorf("log-in while the slot is taken: %d, Retry-After %q", c.Response.StatusCode(), c.Response.Header.Peek("Retry-After"))
	}
	<-e.d.bcrypt
	if code := e.loginFrom("198.51.100.1", "alice", "a good password"); code != 303 {
		t.Errorf("log-in with the slot free: %d", code)
	}
}

package app

import (
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"strings"
	"sync"

	"turf/internal/clientip"
)

// Logger is the one way turf writes log lines: turf's own, fasthttp's (it
// is the server's Logger) and, through Writer, those of the standard log
// package. The README promises that a full client address is never written
// anywhere, and a log line is built from whatever an error message happened
// to contain, so every line is scrubbed as it is written instead of trusting
// each caller:
//
//   - every IP address literal (IPv4, IPv6, with or without a port) is
//     replaced by its prefix at the bits turf stores (--ipv4-prefix,
//     --ipv6-prefix), e.g. 192.0.2.0/24. The server's own addresses are
//     shortened too: the scrubber cannot tell whose an address is, and on
//     loopback the client's address is the server's.
//   - API keys (turf_<id>_<secret>), Bearer credentials and session or share
//     cookies are replaced by a placeholder.
//
// fasthttp is also told (SecureErrorLogMessage, see HTTPServer) never to
// quote a request's headers or body in its errors; the redaction here is the
// second line of defence.
type Logger struct {
	mu     sync.Mutex
	out    io.Writer
	v4, v6 int
}

// NewLogger writes scrubbed lines to out, keeping v4Bits of IPv4 and v6Bits
// of IPv6 addresses.
func NewLogger(out io.Writer, v4Bits, v6Bits int) *Logger {
	return &Logger{out: out, v4: v4Bits, v6: v6Bits}
}

// Printf formats like log.Printf (a newline is added when missing) and
// writes the scrubbed line. It makes Logger a fasthttp.Logger.
func (l *Logger) Printf(format string, args ...any) {
	l.write(fmt.Sprintf(format, args...))
}

// Write scrubs p, one or more complete lines; log.SetOutput(l) sends the
// standard logger's lines (with their time stamps) through it.
func (l *Logger) Write(p []byte) (int, error) {
	l.write(string(p))
	return len(p), nil
}

func (l *Logger) write(s string) {
	s = Scrub(s, l.v4, l.v6)
	if !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	io.WriteString(l.out, s) //nolint:errcheck // nowhere to report a failing log
}

// Logf is a Printf-shaped function over l, for the Logf fields of turf's
// configs.
func (l *Logger) Logf(format string, args ...any) { l.Printf(format, args...) }

// scrubbed wraps a Printf-shaped function so that what it is given is
// scrubbed first; Start uses it so that a caller's own Logf (a test's t.Logf,
// log.Printf) cannot bypass the scrubbing.
func scrubbed(logf func(string, ...any), v4, v6 int) func(string, ...any) {
	return func(format string, args ...any) {
		logf("%s", Scrub(fmt.Sprintf(format, args...), v4, v6))
	}
}

// fasthttpLogger is the server's Logger. Even with SecureErrorLogMessage
// fasthttp quotes parts of a refused request in some errors (a header line
// without a colon, in full), so every quoted string in its lines that is not
// an address is replaced: a request's headers or body never reach the log.
type fasthttpLogger func(string, ...any)

func (f fasthttpLogger) Printf(format string, args ...any) {
	f("%s", quotedRequestData(fmt.Sprintf(format, args...)))
}

var quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

func quotedRequestData(s string) string {
	return quoted.ReplaceAllStringFunc(s, func(q string) string {
		if _, n, ok := parseAddr(q[1 : len(q)-1]); ok && n == len(q)-2 {
			return q
		}
		return `"[request data]"`
	})
}

// secrets are the credential shapes a line may never show, each with its
// replacement.
var secrets = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`turf_[0-9A-Fa-f]{8}_[0-9A-Za-z]+`), "turf_[redacted]"},                  // API key
	{regexp.MustCompile(`(?i)\b(bearer|basic)\s+[^\s"',;]+`), "$1 [redacted]"},                   // Authorization value
	{regexp.MustCompile(`(?i)\b(turf_session|x-turf-share)([=:]\s*)[^\s";]+`), "$1$2[redacted]"}, // session cookie, share token
	{regexp.MustCompile(`(?i)\b(cookie|authorization|x-turf-csrf):[^\r\n"]*`), "$1: [redacted]"}, // a quoted header
	{regexp.MustCompile(`/share/[^\s"?#]+`), "/share/[redacted]"},                                // a share link
}

// Scrub returns s with every IP address cut to its v4Bits or v6Bits prefix
// and every credential replaced; see Logger.
func Scrub(s string, v4Bits, v6Bits int) string {
	if v4Bits <= 0 || v4Bits > 32 {
		v4Bits = 24 // unconfigured: turf's defaults
	}
	if v6Bits <= 0 || v6Bits > 128 {
		v6Bits = 48
	}
	for _, sec := range secrets {
		s = sec.re.ReplaceAllString(s, sec.with)
	}
	return scrubAddrs(s, v4Bits, v6Bits)
}

func isAddrByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == ':' || c == '.'
}

// scrubAddrs replaces every run of address characters that parses as an
// address (or address:port) by its prefix. A bracketed IPv6 address loses
// its port with the brackets.
func scrubAddrs(s string, v4Bits, v6Bits int) string {
	var b strings.Builder
	last := 0
	for i := 0; i < len(s); {
		if !isAddrByte(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && isAddrByte(s[j]) {
			j++
		}
		// A zone (fe80::1%eth0) belongs to the address.
		end := j
		if end < len(s) && s[end] == '%' {
			end++
			for end < len(s) && (isAddrByte(s[end]) || s[end] >= 'g' && s[end] <= 'z' || s[end] >= 'G' && s[end] <= 'Z' || s[end] == '_' || s[end] == '-') {
				end++
			}
		}
		run := s[i:end]
		// Runs inside a word (a hex digest, an identifier) are no address.
		if i > 0 && isWordByte(s[i-1]) || end < len(s) && isWordByte(s[end]) {
			i = end
			continue
		}
		a, n, ok := parseAddr(run)
		if !ok {
			i = end
			continue
		}
		from, to := i, i+n
		v4, v6 := v4Bits, v6Bits
		// Already a prefix (a line scrubbed twice, a configured CIDR): keep
		// the shorter of the two.
		if to < len(s) && s[to] == '/' {
			k := to + 1
			for k < len(s) && s[k] >= '0' && s[k] <= '9' {
				k++
			}
			if p, err := netip.ParsePrefix(s[from:k]); err == nil {
				v4, v6 = min(v4, p.Bits()), min(v6, p.Bits())
				to = k
			}
		}
		// [addr]:port -> prefix
		if from > 0 && s[from-1] == '[' && to < len(s) && s[to] == ']' {
			from--
			to++
			if to < len(s) && s[to] == ':' {
				k := to + 1
				for k < len(s) && s[k] >= '0' && s[k] <= '9' {
					k++
				}
				if k > to+1 {
					to = k
				}
			}
		}
		b.WriteString(s[last:from])
		b.WriteString(clientip.Truncate(a, v4, v6).String())
		last = to
		i = to
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

func isWordByte(c byte) bool {
	return c >= 'g' && c <= 'z' || c >= 'G' && c <= 'Z' || c == '_'
}

// parseAddr accepts an address, or an IPv4 address with a port, at the
// start of run, and says how many bytes it took: the dots or colons that end
// a sentence or a list are not taken.
func parseAddr(run string) (netip.Addr, int, bool) {
	for _, r := range []string{run, strings.TrimRight(run, ".:")} {
		if !strings.ContainsAny(r, ".:") {
			continue
		}
		if a, err := netip.ParseAddr(r); err == nil {
			return a, len(r), true
		}
		if ap, err := netip.ParseAddrPort(r); err == nil {
			return ap.Addr(), len(r), true
		}
	}
	return netip.Addr{}, 0, false
}

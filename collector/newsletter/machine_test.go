package newsletter

import "testing"

// Real User-Agents and request shapes of mail proxies, link scanners and
// people, each with the detector that must name it ("" for a person).
func TestMachine(t *testing.T) {
	for _, c := range []struct {
		name string
		r    Request
		want string
	}{
		{"Apple Mail Privacy Protection", Request{Method: "GET", UserAgent: "Mozilla/5.0"}, "apple-mpp"},
		{"Gmail image proxy", Request{Method: "GET", UserAgent: "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"}, "gmail-proxy"},
		{"Yahoo mail proxy", Request{Method: "GET", UserAgent: "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html"}, "yahoo-proxy"},
		{"Microsoft Safe Links (BingPreview)", Request{Method: "GET", UserAgent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) BingPreview/1.0b"}, "microsoft-safelinks"},
		{"Office existence discovery", Request{Method: "GET", UserAgent: "Microsoft Office Existence Discovery"}, "microsoft-safelinks"},
		{"Proofpoint URL Defense", Request{Method: "GET", UserAgent: "Mozilla/5.0 (compatible; Proofpoint URL Defense)"}, "proofpoint"},
		{"Mimecast", Request{Method: "GET", UserAgent: "Mozilla/5.0 (compatible; Mimecast URL Protect)"}, "mimecast"},
		{"Barracuda", Request{Method: "GET", UserAgent: "Barracuda Sentinel (EE)"}, "barracuda"},
		{"Cisco IronPort", Request{Method: "GET", UserAgent: "Cisco Email Security Appliance IronPort"}, "scanner"},
		{"HEAD from a scanner with a browser UA", Request{Method: "HEAD", UserAgent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"}, "head"},
		{"Chrome prefetch", Request{Method: "GET", UserAgent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36", Purpose: "prefetch;prerender"}, "prefetch"},
		{"Firefox prefetch (X-Moz)", Request{Method: "GET", UserAgent: "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0", Purpose: "prefetch"}, "prefetch"},
		{"Slack unfurl", Request{Method: "GET", UserAgent: "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"}, "link-preview"},
		{"no User-Agent", Request{Method: "GET"}, "empty-user-agent"},

		{"person, Chrome", Request{Method: "GET", UserAgent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"}, ""},
		{"person, iPhone Safari", Request{Method: "GET", UserAgent: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"}, ""},
		{"person, Outlook for Windows loading images", Request{Method: "GET", UserAgent: "Mozilla/4.0 (compatible; ms-office; MSOffice 16)"}, ""},
		{"person, Thunderbird", Request{Method: "GET", UserAgent: "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Thunderbird/115.5.0"}, ""},
	} {
		if got := Machine(c.r); got != c.want {
			t.Errorf("%s: Machine = %q, want %q", c.name, got, c.want)
		}
	}
}

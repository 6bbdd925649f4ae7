package e2e

import (
	"html/template"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// site is the small website the tests browse. It listens on 127.0.0.1, a
// different port from turf, as a site's pages would be on another origin than
// its collector. The tracker skips local hosts, so its tag carries
// data-include-local, and data-include-webdriver because Chromium under
// chromedp sets navigator.webdriver.
type site struct {
	URL string // http://127.0.0.1:PORT
	// Elsewhere is the same server under another host name, the target of
	// "outbound" links: the tracker compares host names, not ports.
	Elsewhere string // http://localhost:PORT
}

// siteDomain is the data-domain of every test page, the site turf is told to accept.
const siteDomain = "e2e.turf.test"

// pageData is what the template of every tracked page needs.
type pageData struct {
	Script    string // the tracker's URL, on turf
	Domain    string
	Elsewhere string
	// HashRouting, Queue and NotFound switch on the parts of docs/tracker.md
	// that a page under /hash/, /queued/ or /missing/ exercises.
	HashRouting, Queue, NotFound, OptOut bool
}

// The snippets in this page are the ones docs/tracker.md tells sites to use.
var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>turf e2e</title>
{{- if or .Queue .NotFound}}
<script>
window.turf = window.turf || function () { (turf.q = turf.q || []).push(arguments) }
</script>
{{- end}}
{{- if .NotFound}}
<script>turf('404', {props: {path: location.pathname}})</script>
{{- end}}
<script defer data-domain="{{.Domain}}" data-include-local data-include-webdriver
	{{- if .HashRouting}} data-hash-routing{{end}} src="{{.Script}}"></script>
{{- if .Queue}}
<script>
turf('Queued', {props: {when: 'before load'}, callback: function () { window.queuedCallback = true }})
</script>
{{- end}}
</head>
<body>
<h1>turf e2e</h1>
<p><a id="outbound" href="{{.Elsewhere}}/elsewhere?token=secret#top">another site</a>
<p><a id="download" href="/files/report.pdf?token=secret">the report</a>
<p><a id="internal" href="/about">about us</a>
<p><a id="hash-about" href="#/about">about (hash route)</a>
<p><button id="tagged" class="big turf-event-name=Download+Brochure turf-event-format=pdf"><span id="tagged-inner">Brochure</span></button>
<form id="contact" class="turf-event-name=Contact" action="/thanks">
	<input name="q" value="hi"><button id="contact-submit">Send</button>
</form>
{{- if .OptOut}}
<p><label><input type="checkbox" id="turf-opt-out"> Do not count my visits</label>
<script>
// The opt-out switch from docs/tracker.md.
(function () {
	var box = document.getElementById('turf-opt-out')
	box.checked = localStorage.getItem('turf_ignore') === 'true'
	box.addEventListener('change', function () {
		if (box.checked) localStorage.setItem('turf_ignore', 'true')
		else localStorage.removeItem('turf_ignore')
	})
})()
</script>
{{- end}}
</body>
</html>
`))

// startSite serves the test site; pages load the tracker from scriptURL.
func startSite(t *testing.T, scriptURL string) *site {
	t.Helper()
	s := &site{}
	mux := http.NewServeMux()
	mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, r *http.Request) {
		// Another site, without the tracker.
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(`<!doctype html><title>elsewhere</title><h1 id="elsewhere">elsewhere</h1>`))
	})
	mux.HandleFunc("/files/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", "attachment")
		w.Write([]byte("%PDF-1.4 not really\n"))
	})
	mux.HandleFunc("/favicon.ico", http.NotFound)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		p := pageData{
			Script:      scriptURL,
			Domain:      siteDomain,
			Elsewhere:   s.Elsewhere,
			HashRouting: strings.HasPrefix(r.URL.Path, "/hash/"),
			Queue:       strings.HasPrefix(r.URL.Path, "/queued/"),
			NotFound:    strings.HasPrefix(r.URL.Path, "/missing/"),
			OptOut:      strings.HasPrefix(r.URL.Path, "/settings/"),
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if p.NotFound {
			w.WriteHeader(http.StatusNotFound)
		}
		if err := pageTemplate.Execute(w, p); err != nil {
			t.Errorf("cannot render %s: %v", r.URL, err)
		}
	})
	srv := httptest.NewServer(mux) // on 127.0.0.1
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	s.Elsewhere = strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	return s
}

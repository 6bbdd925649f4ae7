package beacon

import (
	"errors"
	"strings"
	"testing"
)

func TestParsePage(t *testing.T) {
	tests := []struct {
		url      string
		fragment bool
		want     Page
	}{
		{"https://example.com", false, Page{Host: "example.com", Path: "/"}},
		{"https://Example.COM:8443/A/b?x=1#top", false, Page{Host: "example.com", Path: "/A/b"}},
		{"https://example.com/app#/settings?tab=2", true, Page{Host: "example.com", Path: "/app#/settings?tab=2"}},
		{"https://example.com/app?x=1#", true, Page{Host: "example.com", Path: "/app"}},
		{"https://example.com/app#frag", false, Page{Host: "example.com", Path: "/app"}},
		{"https://example.com?utm_source=nl", false, Page{Host: "example.com", Path: "/", Campaign: Campaign{Source: "nl"}}},
		{"http://user:pw@example.com./p", false, Page{Host: "example.com", Path: "/p"}},
		{"http://[2001:DB8::1]:8080/p", false, Page{Host: "2001:db8::1", Path: "/p"}},
		{"https://example.com/caf%C3%A9%20bar", false, Page{Host: "example.com", Path: "/café bar"}},
		{"https://example.com/bad%zzescape", false, Page{Host: "example.com", Path: "/bad%zzescape"}},
		{"https://example.com/ctl%0Aline", false, Page{Host: "example.com", Path: "/ctl%0Aline"}},
		{"https://example.com/p?utm_source=news+letter&utm_medium=email&utm_campaign=spring%20sale&utm_content=a&utm_term=b%26c", false,
			Page{Host: "example.com", Path: "/p", Campaign: Campaign{"news letter", "email", "spring sale", "a", "b&c", ""}}},
		{"https://example.com/p?gclid=Cj0KCQsecret&utm_term=x", false,
			Page{Host: "example.com", Path: "/p", Campaign: Campaign{Term: "x", ClickID: "gclid"}}},
		{"https://example.com/p?msclkid=abc", false, Page{Host: "example.com", Path: "/p", Campaign: Campaign{ClickID: "msclkid"}}},
		{"https://example.com/p?utm_source=&utm_source=second&utm_source=third", false,
			Page{Host: "example.com", Path: "/p", Campaign: Campaign{Source: "second"}}},
		{"https://example.com/p?ref=producthunt&source=x", false,
			Page{Host: "example.com", Path: "/p", Campaign: Campaign{Source: "producthunt"}}},
		{"https://example.com/p?source=x", false, Page{Host: "example.com", Path: "/p", Campaign: Campaign{Source: "x"}}},
		{"https://example.com/p?ref=x&utm_source=y", false, Page{Host: "example.com", Path: "/p", Campaign: Campaign{Source: "y"}}},
		{"https://example.com/p?utm_source=%ZZ&utm_medium=%0A&utm_term=%20%20", false, Page{Host: "example.com", Path: "/p"}},
		{"https://example.com/p?utm_source=" + strings.Repeat("é", 150), false,
			Page{Host: "example.com", Path: "/p", Campaign: Campaign{Source: strings.Repeat("é", 100)}}},
		{"https://example.com/" + strings.Repeat("a", 2500), false, Page{Host: "example.com", Path: "/" + strings.Repeat("a", 1999)}},
	}
	for _, tt := range tests {
		got, err := ParsePage(tt.url, tt.fragment)
		if err != nil {
			t.Errorf("ParsePage(%.60q): %v", tt.url, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParsePage(%.60q, %v):\n got %+v\nwant %+v", tt.url, tt.fragment, got, tt.want)
		}
	}
}

func TestParsePageRejects(t *testing.T) {
	tests := []struct{ url, reason string }{
		{"", "bad_url"},
		{"example.com/a", "bad_url"},
		{"//example.com/a", "bad_url"},
		{"https:example.com", "bad_url"},
		{"https://", "bad_url"},
		{"https://:80/", "bad_url"},
		{"https://exa<mple.com/", "bad_url"},
		{"https://example.com:123456/", "bad_url"},
		{"https://[::1/", "bad_url"},
		{"https://[]/", "bad_url"},
		{"https://[::1]x/", "bad_url"},
		{"1http://example.com", "bad_url"},
		{"mailto:a@example.com", "url_scheme"},
		{"file:///etc/passwd", "url_scheme"},
		{"httpx://example.com", "url_scheme"},
	}
	for _, tt := range tests {
		_, err := ParsePage(tt.url, false)
		var e *Error
		if !errors.As(err, &e) || e.Reason != tt.reason {
			t.Errorf("ParsePage(%q) = %v, want reason %q", tt.url, err, tt.reason)
		}
	}
}

package referrer

import "testing"

func TestSocial(t *testing.T) {
	for _, c := range []struct {
		url            string
		network, share string
	}{
		{"https://www.facebook.com/woningcorporatie", "Facebook", ""},
		{"https://www.facebook.com/sharer/sharer.php?u=https%3A%2F%2Fexample.com%2Fhuren%3Fx%3D1", "Facebook", "example.com/huren"},
		{"https://x.com/intent/tweet?text=Kijk&url=https%3A%2F%2Fexample.com%2Fnieuws", "Twitter", "example.com/nieuws"},
		{"https://twitter.com/intent/tweet?url=https://www.example.com/a", "Twitter", "example.com/a"},
		{"https://twitter.com/woningcorp", "Twitter", ""},
		{"https://www.linkedin.com/sharing/share-offsite/?url=https%3A%2F%2Fexample.com%2Fvacatures", "LinkedIn", "example.com/vacatures"},
		{"https://www.linkedin.com/company/example", "LinkedIn", ""},
		{"https://www.instagram.com/example/", "Instagram", ""},
		{"https://www.youtube.com/watch?v=abc", "Youtube", ""},
		{"https://youtu.be/abc", "Youtube", ""},
		{"https://www.tiktok.com/@example", "TikTok", ""},
		{"https://mastodon.social/@example", "Mastodon", ""},
		{"https://mastodon.nl/@example", "Mastodon", ""},
		{"https://mastodon.nl/share?text=Lees%20dit%20https%3A%2F%2Fexample.com%2Fblog%20%23wonen", "Mastodon", "example.com/blog"},
		{"https://api.whatsapp.com/send?text=https%3A%2F%2Fexample.com%2Fhuren", "WhatsApp", "example.com/huren"},
		{"https://www.facebook.com/sharer.php", "Facebook", "(unknown)"},
		{"https://example.org/page", "", ""},
		{"https://www.google.com/search?q=x", "", ""},
		{"not a url", "", ""},
	} {
		got := Social(c.url)
		if got.Network != c.network || got.Share != c.share {
			t.Errorf("Social(%q) = %+v, want {%s %s}", c.url, got, c.network, c.share)
		}
	}
}

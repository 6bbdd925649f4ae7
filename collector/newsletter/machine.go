package newsletter

import "strings"

// Request is what Machine looks at: the method, the User-Agent and the
// prefetch headers. Plain values, so the rules test without HTTP.
type Request struct {
	Method    string
	UserAgent string
	Purpose   string // Purpose, Sec-Purpose or X-Purpose / X-Moz header, whichever is set
}

// Rule says how one kind of machine fetches newsletter links or images.
// A rule matches when every field it sets matches: UAEquals exactly,
// UAContains (any of them, case-insensitive) as a substring, Method exactly,
// PurposeContains as a substring of Request.Purpose.
type Rule struct {
	Name            string
	UAEquals        string
	UAContains      []string
	Method          string
	PurposeContains string
}

// Rules are the machine detectors in the order they are tried; the first
// match names the machine (the stored prop `machine`). They are data: add
// a line and a case in machine_test.go when a new scanner shows up.
//
// Apple Mail Privacy Protection fetches every image of every message
// through Apple's proxies with the User-Agent "Mozilla/5.0" and nothing
// more, at delivery time, whether or not anyone reads it. Gmail and Yahoo
// fetch images through their proxies once per message and cache them.
// Security gateways open every link of a message before (or instead of)
// the recipient; many use a browser's User-Agent and cannot be told apart
// by it, which docs/newsletters.md says. Outlook for Windows loads images
// itself ("ms-office; MSOffice 16") when a person opens the message, so it
// is not a rule.
var Rules = []Rule{
	{Name: "head", Method: "HEAD"},
	{Name: "prefetch", PurposeContains: "prefetch"},
	{Name: "prefetch", PurposeContains: "preview"},
	{Name: "apple-mpp", UAEquals: "Mozilla/5.0"},
	{Name: "gmail-proxy", UAContains: []string{"GoogleImageProxy", "via ggpht.com"}},
	{Name: "yahoo-proxy", UAContains: []string{"YahooMailProxy"}},
	{Name: "microsoft-safelinks", UAContains: []string{"BingPreview", "Safe Links", "SafeLinks", "Microsoft Office Existence Discovery"}},
	{Name: "proofpoint", UAContains: []string{"Proofpoint", "URLDefense"}},
	{Name: "mimecast", UAContains: []string{"Mimecast"}},
	{Name: "barracuda", UAContains: []string{"Barracuda"}},
	{Name: "scanner", UAContains: []string{"Cisco Email Security", "IronPort", "Trend Micro", "Sophos", "FortiGuard", "Symantec", "Forcepoint", "Zscaler", "Avanan", "Checkpoint", "Check Point"}},
	{Name: "link-preview", UAContains: []string{"Google-Safety", "Googlebot-Image", "SkypeUriPreview", "Slackbot-LinkExpanding", "WhatsApp/", "TelegramBot", "Discordbot", "Twitterbot", "facebookexternalhit", "LinkedInBot"}},
	{Name: "empty-user-agent", UAEquals: ""},
}

// Machine returns the name of the first rule r matches, or "" for a
// request that looks like a person's.
func Machine(r Request) string {
	for i := range Rules {
		if Rules[i].match(r) {
			return Rules[i].Name
		}
	}
	return ""
}

func (rule *Rule) match(r Request) bool {
	if rule.Method != "" && !strings.EqualFold(rule.Method, r.Method) {
		return false
	}
	if rule.PurposeContains != "" && !strings.Contains(strings.ToLower(r.Purpose), rule.PurposeContains) {
		return false
	}
	if rule.UAEquals != "" || (rule.Method == "" && rule.PurposeContains == "" && len(rule.UAContains) == 0) {
		if strings.TrimSpace(r.UserAgent) != rule.UAEquals {
			return false
		}
	}
	if len(rule.UAContains) > 0 {
		ua := strings.ToLower(r.UserAgent)
		found := false
		for _, s := range rule.UAContains {
			if strings.Contains(ua, strings.ToLower(s)) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

package referrer

import "strings"

// Channels. The names and the order in which channel() tries them are
// Plausible's (which adapts GA4's default channel group), so numbers can be
// compared with theirs.
const (
	Direct          = "Direct"
	CrossNetwork    = "Cross-network"
	PaidShopping    = "Paid Shopping"
	PaidSearch      = "Paid Search"
	PaidSocial      = "Paid Social"
	PaidVideo       = "Paid Video"
	Display         = "Display"
	PaidOther       = "Paid Other"
	OrganicShopping = "Organic Shopping"
	OrganicSocial   = "Organic Social"
	OrganicVideo    = "Organic Video"
	AIAssistants    = "AI Assistants"
	OrganicSearch   = "Organic Search"
	Email           = "Email"
	Affiliates      = "Affiliates"
	Audio           = "Audio"
	SMS             = "SMS"
	MobilePush      = "Mobile Push Notifications"
	Referral        = "Referral"
)

// Channels lists every value Result.Channel can take.
var Channels = []string{
	Direct, CrossNetwork, PaidShopping, PaidSearch, PaidSocial, PaidVideo,
	Display, PaidOther, OrganicShopping, OrganicSocial, OrganicVideo,
	AIAssistants, OrganicSearch, Email, Affiliates, Audio, SMS, MobilePush,
	Referral,
}

// channel applies the rules in order; the first that matches wins. src is
// the resolved source (from utm_source, else the Referer); paidSource says
// utm_source itself was a paid spelling such as "fb_ads".
func channel(src entry, paidSource bool, c Campaign) string {
	var mb, cb, sb [128]byte
	medium := lowerInto(mb[:], c.Medium)
	campaign := lowerInto(cb[:], c.Campaign)
	utmSource := lowerInto(sb[:], c.Source)

	paid := isPaidMedium(medium)
	paidOrTagged := paid || paidSource
	shoppingCampaign := isShoppingCampaign(campaign)

	switch {
	case contains(campaign, "cross-network"):
		return CrossNetwork
	case (src.cat == catShopping || shoppingCampaign) && paid:
		return PaidShopping
	case src.cat == catSearch && paidOrTagged,
		src.name == "Google" && c.ClickID == "gclid",
		src.name == "Bing" && c.ClickID == "msclkid":
		return PaidSearch
	case src.cat == catSocial && paidOrTagged:
		return PaidSocial
	case src.cat == catVideo && paidOrTagged:
		return PaidVideo
	case src.cat == catDisplay, isOneOf(medium, "display", "banner", "expandable", "interstitial", "cpm"):
		return Display
	case paid:
		return PaidOther
	case src.cat == catShopping || shoppingCampaign:
		return OrganicShopping
	case src.cat == catSocial, isOneOf(medium, "social", "social-network", "social-media", "sm", "social network", "social media"):
		return OrganicSocial
	case src.cat == catVideo || contains(medium, "video"):
		return OrganicVideo
	case src.cat == catAI:
		return AIAssistants
	case src.cat == catSearch:
		return OrganicSearch
	case src.cat == catEmail, hasEmailTag(utmSource), hasEmailTag(medium):
		return Email
	case string(medium) == "affiliate":
		return Affiliates
	case string(medium) == "audio":
		return Audio
	case string(utmSource) == "sms", string(medium) == "sms":
		return SMS
	case hasSuffix(medium, "push"), contains(medium, "mobile"), contains(medium, "notification"), src.name == "firebase":
		return MobilePush
	case isOneOf(medium, "referral", "app", "link"), src.name != "":
		return Referral
	}
	return Direct
}

// lowerInto lower-cases the ASCII letters of s into buf. Values longer than
// buf are cut: no rule needs more than their start to decide.
func lowerInto(buf []byte, s string) []byte {
	s = strings.TrimSpace(s)
	n := copy(buf, s)
	b := buf[:n]
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return b
}

// The helpers below work on byte slices so the lower-cased values need no
// string conversion (and no allocation).

func contains(b []byte, sub string) bool {
	for i := 0; i+len(sub) <= len(b); i++ {
		if string(b[i:i+len(sub)]) == sub {
			return true
		}
	}
	return false
}

func hasSuffix(b []byte, suffix string) bool {
	return len(b) >= len(suffix) && string(b[len(b)-len(suffix):]) == suffix
}

func isOneOf(b []byte, list ...string) bool {
	for _, s := range list {
		if string(b) == s {
			return true
		}
	}
	return false
}

func isPaidMedium(m []byte) bool {
	return contains(m, "cp") || string(m) == "ppc" || string(m) == "retargeting" ||
		(len(m) >= 4 && string(m[:4]) == "paid")
}

func hasEmailTag(b []byte) bool {
	return contains(b, "email") || contains(b, "e-mail") || contains(b, "e_mail") ||
		contains(b, "e mail") || contains(b, "newsletter")
}

// isShoppingCampaign matches "shopping" anywhere, or "shop" at the start of
// the campaign or after anything but a letter other than "e" (so "eshop"
// and "summer-shop" match, "workshop" does not), as GA4 does.
func isShoppingCampaign(c []byte) bool {
	if contains(c, "shopping") {
		return true
	}
	for i := 0; i+4 <= len(c); i++ {
		if string(c[i:i+4]) != "shop" {
			continue
		}
		if i == 0 {
			return true
		}
		if p := c[i-1]; p == 'e' || p < 'a' || p > 'z' {
			return true
		}
	}
	return false
}

package useragent

import (
	_ "embed"
	"regexp"
	"strings"
)

//go:generate go run ./internal/gen -out crawlers.txt -notice NOTICE

// crawlersTxt is the crawler list of the npm package crawler-user-agents (MIT,
// see NOTICE), its patterns already reduced to literals where possible.
//
//go:embed crawlers.txt
var crawlersTxt string

// hashBits sizes the trigram table: 1<<14 buckets keep the table in L1/L2
// and few buckets shared by more than one pattern.
const hashBits = 14

type literal struct {
	s          string
	begin, end bool // anchored at the start / end of the User-Agent
}

// crawlerSet matches a User-Agent against all crawler patterns in one pass.
// Every literal is filed under a hash of its first three bytes; the scan
// hashes each trigram of the User-Agent and compares only the few literals
// filed there. That costs a few nanoseconds per byte whatever the size of
// the list, where a loop of strings.Contains would cost over a microsecond
// per kilobyte of patterns.
type crawlerSet struct {
	lits   []literal
	bucket []uint16 // bucket[h]:bucket[h+1] indexes order for trigram hash h
	order  []uint16 // indexes into lits, grouped by bucket
	short  []literal
	res    []*regexp.Regexp
	resPre []string // literal prefix each regexp needs, checked first
}

func hash3(a, b, c byte) uint32 {
	return ((uint32(a) | uint32(b)<<8 | uint32(c)<<16) * 0x9E3779B1) >> (32 - hashBits)
}

func newCrawlerSet(table string) *crawlerSet {
	cs := &crawlerSet{}
	byHash := make([][]uint16, 1<<hashBits)
	for line := range strings.Lines(table) {
		if strings.HasPrefix(line, "#") {
			continue
		}
		kind, pat, ok := strings.Cut(strings.TrimSuffix(line, "\n"), "\t")
		if !ok || pat == "" {
			panic("BUG: malformed line in crawlers.txt: " + line)
		}
		if kind == "r" {
			re := regexp.MustCompile(pat)
			pre, _ := re.LiteralPrefix()
			cs.res = append(cs.res, re)
			cs.resPre = append(cs.resPre, pre)
			continue
		}
		l := literal{s: pat, begin: kind == "p" || kind == "e", end: kind == "s" || kind == "e"}
		if len(pat) < 3 {
			cs.short = append(cs.short, l)
			continue
		}
		if len(cs.lits) >= 1<<16 {
			panic("BUG: too many crawler patterns for uint16 indexes")
		}
		h := hash3(pat[0], pat[1], pat[2])
		byHash[h] = append(byHash[h], uint16(len(cs.lits)))
		cs.lits = append(cs.lits, l)
	}
	cs.bucket = make([]uint16, 1<<hashBits+1)
	for h, ids := range byHash {
		cs.bucket[h] = uint16(len(cs.order))
		cs.order = append(cs.order, ids...)
	}
	cs.bucket[1<<hashBits] = uint16(len(cs.order))
	return cs
}

func (l *literal) matchAt(ua string, i int) bool {
	return strings.HasPrefix(ua[i:], l.s) &&
		(!l.begin || i == 0) && (!l.end || i+len(l.s) == len(ua))
}

// match reports whether any pattern matches ua.
func (cs *crawlerSet) match(ua string) bool {
	for i := 0; i+2 < len(ua); i++ {
		h := hash3(ua[i], ua[i+1], ua[i+2])
		for _, id := range cs.order[cs.bucket[h]:cs.bucket[h+1]] {
			if cs.lits[id].matchAt(ua, i) {
				return true
			}
		}
	}
	for i := range cs.short {
		l := &cs.short[i]
		for j := strings.Index(ua, l.s); j >= 0; {
			if l.matchAt(ua, j) {
				return true
			}
			k := strings.Index(ua[j+1:], l.s)
			if k < 0 {
				break
			}
			j += 1 + k
		}
	}
	for i, re := range cs.res {
		if strings.Contains(ua, cs.resPre[i]) && re.MatchString(ua) {
			return true
		}
	}
	return false
}

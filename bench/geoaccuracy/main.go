// Command geoaccuracy measures what IP truncation costs in country accuracy:
// it samples addresses from a country database's own networks and reports
// the share whose country is the same when looked up, as the collector does,
// at the network address of the truncated prefix.
//
//	go run ./bench/geoaccuracy [-db ./data/geo/country.mmdb] [-n 200000] [-seed 1]
//
// Two samples are drawn per address family, because neither alone says how
// visitors fare: "by address" picks addresses uniformly from all the space
// the database covers (large allocations dominate), "by network" picks a
// network uniformly and then an address in it (small, fragmented
// allocations count as much as large ones). Real traffic lies in between.
// The seed is fixed so the figures in docs/privacy.md can be reproduced.
package main

import (
	"flag"
	"fmt"
	"log"
	"math"
	"math/rand/v2"
	"net/netip"
	"os"
	"sort"
	"time"

	"github.com/oschwald/maxminddb-golang/v2"

	"turf/collector/geo"
	"turf/internal/clientip"
)

func main() {
	path := flag.String("db", "./data/geo/country.mmdb", "country .mmdb to measure (deploy/fetch-geoip.sh installs the default)")
	n := flag.Int("n", 200000, "addresses sampled per family and weighting")
	seed := flag.Uint64("seed", 1, "random seed")
	flag.Parse()
	if err := run(*path, *n, *seed); err != nil {
		log.Fatal(err)
	}
}

type family struct {
	name     string
	prefixes []int
	nets     []netip.Prefix
	cum      []float64 // cumulative address counts, for sampling by address
}

func run(path string, n int, seed uint64) error {
	mm, err := maxminddb.Open(path)
	if err != nil {
		return fmt.Errorf("cannot open %s: %w", path, err)
	}
	defer mm.Close()
	db, err := geo.Open(path)
	if err != nil {
		return err
	}
	defer db.Close()

	v4 := &family{name: "IPv4", prefixes: []int{24, 16}}
	v6 := &family{name: "IPv6", prefixes: []int{64, 48, 32}}
	for res := range mm.Networks() {
		if err := res.Err(); err != nil {
			return fmt.Errorf("cannot read the networks of %s: %w", path, err)
		}
		p := res.Prefix()
		f := v6
		if p.Addr().Is4() {
			f = v4
		}
		if db.Country(p.Addr()) == "" {
			continue // no country to lose
		}
		f.nets = append(f.nets, p)
		size := math.Exp2(float64(p.Addr().BitLen() - p.Bits()))
		last := 0.0
		if len(f.cum) > 0 {
			last = f.cum[len(f.cum)-1]
		}
		f.cum = append(f.cum, last+size)
	}
	fmt.Printf("database %s (type %q, built %s): %d IPv4 and %d IPv6 networks with a country; %d addresses per sample, seed %d\n\n",
		path, mm.Metadata.DatabaseType, time.Unix(int64(mm.Metadata.BuildEpoch), 0).UTC().Format(time.DateOnly), len(v4.nets), len(v6.nets), n, seed)
	fmt.Println("| family | kept prefix | same country, by address | same country, by network |")
	fmt.Println("|---|---|---|---|")
	rng := rand.New(rand.NewPCG(seed, seed))
	for _, f := range []*family{v4, v6} {
		if len(f.nets) == 0 {
			continue
		}
		byAddr := sample(f, n, rng, true)
		byNet := sample(f, n, rng, false)
		for _, bits := range f.prefixes {
			fmt.Printf("| %s | /%d | %s | %s |\n", f.name, bits, share(db, byAddr, bits), share(db, byNet, bits))
		}
	}
	return nil
}

func sample(f *family, n int, rng *rand.Rand, byAddress bool) []netip.Addr {
	out := make([]netip.Addr, n)
	total := f.cum[len(f.cum)-1]
	for i := range out {
		var p netip.Prefix
		if byAddress {
			x := rng.Float64() * total
			p = f.nets[sort.SearchFloat64s(f.cum, x)]
		} else {
			p = f.nets[rng.IntN(len(f.nets))]
		}
		out[i] = randomIn(p, rng)
	}
	return out
}

// randomIn picks an address of p uniformly.
func randomIn(p netip.Prefix, rng *rand.Rand) netip.Addr {
	b := p.Addr().As16()
	off := 0
	if p.Addr().Is4() {
		off = 12
	}
	for i := off*8 + p.Bits(); i < 128; i++ {
		if rng.IntN(2) == 1 {
			b[i/8] |= 0x80 >> (i % 8)
		}
	}
	a := netip.AddrFrom16(b)
	if p.Addr().Is4() {
		a = a.Unmap()
	}
	return a
}

// share is the percentage of addrs whose country survives truncation to
// bits, with the lookup the collector makes: the truncated network address.
func share(db *geo.DB, addrs []netip.Addr, bits int) string {
	same := 0
	for _, a := range addrs {
		full := db.Country(a)
		p := clientip.Truncate(a, bits, bits)
		if db.Country(p.Addr()) == full {
			same++
		}
	}
	return fmt.Sprintf("%.2f%%", 100*float64(same)/float64(len(addrs)))
}

func init() { log.SetFlags(0); log.SetOutput(os.Stderr) }

// Command modernreport adds up the modern leg's reports (see
// internal/chtest): how many distinct statements ran on both ClickHouse
// versions, how many answers were compared and how many differed.
//
//	TURF_MODERN_REPORT=/tmp/m go test ./... && go run ./internal/chtest/modernreport /tmp/m
//
// It exits 1 when no report is there, when a statement failed on the modern
// server or an answer differed.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"turf/internal/chtest"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: modernreport DIR")
		os.Exit(2)
	}
	files, err := filepath.Glob(filepath.Join(os.Args[1], "*.json"))
	if err != nil || len(files) == 0 {
		fmt.Fprintf(os.Stderr, "modernreport: no reports in %s (was TURF_MODERN_REPORT set for go test?)\n", os.Args[1])
		os.Exit(1)
	}
	slices.Sort(files)
	statements, reads := map[string]bool{}, map[string]bool{}
	var total chtest.Report
	versions := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, "modernreport:", err)
			os.Exit(1)
		}
		var r chtest.Report
		if err := json.Unmarshal(b, &r); err != nil {
			fmt.Fprintf(os.Stderr, "modernreport: %s: %v\n", f, err)
			os.Exit(1)
		}
		fmt.Printf("%-24s %4d distinct statements, %5d runs, %5d answers compared, %d differed, %d failed, %d reordered ties; %v on 26.x, %v re-reading 18.16\n",
			r.Package, len(r.StatementList), r.Runs, r.Answers, r.Differed, r.Failed, r.Reordered,
			r.ModernTime.Round(time.Millisecond), r.HTTPTime.Round(time.Millisecond))
		for _, s := range r.StatementList {
			statements[s] = true
		}
		for _, s := range r.ReadList {
			reads[s] = true
		}
		versions[r.Version] = true
		total.Runs += r.Runs
		total.Answers += r.Answers
		total.Differed += r.Differed
		total.Failed += r.Failed
		total.Reordered += r.Reordered
		total.ModernTime += r.ModernTime
		total.HTTPTime += r.HTTPTime
	}
	vs := make([]string, 0, len(versions))
	for v := range versions {
		vs = append(vs, v)
	}
	slices.Sort(vs)
	fmt.Printf("modern leg (ClickHouse %v, chDB, beside 18.16): %d distinct statements ran on both (%d distinct reads compared), %d runs, %d answers compared, %d differed, %d failed (%d ordered answers had tied rows in another order); the leg took %v on 26.x and %v re-reading 18.16\n",
		vs, len(statements), len(reads), total.Runs, total.Answers, total.Differed, total.Failed, total.Reordered,
		total.ModernTime.Round(time.Millisecond), total.HTTPTime.Round(time.Millisecond))
	if total.Differed > 0 || total.Failed > 0 {
		os.Exit(1)
	}
}

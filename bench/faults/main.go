// Command faults is the long form of the fault-injection proof (the short
// form is internal/faulttest, run by go test): minutes of numbered load
// through a ClickHouse outage, slow inserts, many kill -9s of turf mid-flush
// and a full spool. It prints accepted, refused, stored, duplicates and lost,
// with turf's peak memory and spool size, and exits 1 unless every accepted
// event is stored exactly once.
//
// Run it through bench/faults/run.sh, or: go run ./bench/faults -h
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"time"

	"turf/internal/faulttest"
)

func main() {
	c := faulttest.Config{}
	flag.IntVar(&c.Rate, "rate", 3000, "events per second offered")
	flag.DurationVar(&c.Warmup, "warmup", 5*time.Second, "plain load before the first fault and after the last")
	flag.DurationVar(&c.Outage, "outage", 30*time.Second, "(1) how long ClickHouse is stopped")
	flag.DurationVar(&c.Slow, "slow", 20*time.Second, "(2) how long ClickHouse answers late")
	flag.DurationVar(&c.SlowDelay, "slow-delay", 1500*time.Millisecond, "(2) how late; above --insert-timeout so that inserts time out after the server took them")
	flag.DurationVar(&c.InsertTimeout, "insert-timeout", time.Second, "turf's --insert-timeout")
	flag.IntVar(&c.Kills, "kills", 40, "(3) kill -9s of turf mid-flush")
	flag.DurationVar(&c.FillFor, "fill-for", 10*time.Second, "(4) keep the load on this long after the spool first refuses")
	flag.Int64Var(&c.SpoolMaxBytes, "spool-max-bytes", 4<<20, "(4) turf's --spool-max-bytes while the spool fills")
	flag.DurationVar(&c.FsyncInterval, "fsync-interval", time.Second, "turf's --spool-fsync-interval")
	keep := flag.Bool("keep", false, "keep the scratch directory (turf's log, spool, ClickHouse data)")
	flag.Parse()

	dir, err := os.MkdirTemp("", "turf-faults-")
	if err != nil {
		log.Fatal(err)
	}
	if !*keep {
		defer os.RemoveAll(dir)
	}
	c.Dir = dir
	c.Logf = log.Printf
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	rep, err := faulttest.Run(ctx, c)
	if rep != nil {
		fmt.Println(rep)
	}
	if err != nil {
		log.Printf("the run failed: %v (turf's log: %s)", err, dir+"/turf.log")
		*keep = true
		os.Exit(2)
	}
	if !rep.OK() {
		log.Printf("turf broke its promise; turf's log: %s", rep.TurfLog)
		os.RemoveAll(dir + "/clickhouse")
		os.Exit(1)
	}
}

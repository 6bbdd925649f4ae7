package spool

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

func TestFrame(t *testing.T) {
	good := appendFrame(nil, []byte("hello"))
	flipped := bytes.Clone(good)
	flipped[frameSize+1] ^= 0x20
	badLen := bytes.Clone(good)
	badLen[0] = 200
	zero := appendFrame(nil, nil)
	huge := bytes.Clone(good)
	huge[3] = 0x40
	for _, tc := range []struct {
		name string
		b    []byte
		want string // payload; "" means not intact
	}{
		{"intact", good, "hello"},
		{"intact with more after it", append(bytes.Clone(good), 1, 2, 3), "hello"},
		{"torn header", good[:5], ""},
		{"torn payload", good[:len(good)-1], ""},
		{"flipped payload bit", flipped, ""},
		{"length beyond the data", badLen, ""},
		{"empty record", zero, ""},
		{"length beyond MaxRecord", huge, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, n := parseFrame(tc.b)
			if string(p) != tc.want || (n > 0) != (tc.want != "") {
				t.Fatalf("parseFrame = %q, %d; want %q", p, n, tc.want)
			}
		})
	}
}

func TestResync(t *testing.T) {
	var b []byte
	b = appendFrame(b, []byte("one"))
	second := len(b)
	b = appendFrame(b, []byte("two"))
	b[2] ^= 1 // damage the first record's length
	if got := resync(b); got != second {
		t.Fatalf("resync = %d, want %d", got, second)
	}
	if got := resync(b[second+1:]); got != len(b)-second-1 {
		t.Fatalf("resync with nothing intact = %d, want the end", got)
	}
}

func open(t *testing.T, dir string, o Options) (*Spool, *metrics.Set, *strings.Builder) {
	t.Helper()
	set := metrics.NewSet()
	var log strings.Builder
	var mu sync.Mutex
	o.Metrics = set
	o.Logf = func(f string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(&log, f+"\n", a...)
	}
	s, err := Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	return s, set, &log
}

func rec(i int) []byte { return fmt.Appendf(nil, "record %05d %s", i, strings.Repeat("x", i%50)) }

// readAll reads every available record and commits them when commit is set.
func readAll(t *testing.T, s *Spool, commit bool) []string {
	t.Helper()
	var out []string
	var last Pos
	for {
		r, _, end, ok, err := s.Next()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		out = append(out, string(r))
		last = end
	}
	if commit && len(out) > 0 {
		if err := s.Commit(last, len(out)); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func counter(set *metrics.Set, name string) uint64 {
	var b bytes.Buffer
	set.WritePrometheus(&b)
	for line := range strings.Lines(b.String()) {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var n uint64
			fmt.Sscan(v, &n)
			return n
		}
	}
	return 0
}

// TestConcurrentAppendsReplayAfterRestart: many writers at once (group
// commit), a partial commit, a restart: the rest comes back, in order per
// writer, each record once.
func TestConcurrentAppendsReplayAfterRestart(t *testing.T) {
	for _, every := range []time.Duration{0, time.Hour} {
		t.Run(fmt.Sprintf("fsync-interval=%s", every), func(t *testing.T) {
			dir := t.TempDir()
			s, _, _ := open(t, dir, Options{SyncInterval: every, SegmentBytes: 4096})
			var wg sync.WaitGroup
			for w := range 8 {
				wg.Go(func() {
					for i := range 200 {
						if err := s.Append(fmt.Appendf(nil, "w%d-%03d", w, i)); err != nil {
							t.Error(err)
						}
					}
				})
			}
			wg.Wait()
			if n := s.Unconsumed(); n != 1600 {
				t.Fatalf("unconsumed = %d, want 1600", n)
			}
			// Consume and commit the first 500.
			var last Pos
			for range 500 {
				_, _, end, ok, err := s.Next()
				if !ok || err != nil {
					t.Fatalf("Next: %v %v", ok, err)
				}
				last = end
			}
			if err := s.Commit(last, 500); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}

			s, _, log := open(t, dir, Options{SyncInterval: every, SegmentBytes: 4096})
			defer s.Close()
			if n := s.Unconsumed(); n != 1100 {
				t.Fatalf("after restart unconsumed = %d, want 1100; log:\n%s", n, log)
			}
			_, at, _, ok, _ := s.Next()
			if !ok || !s.Replayed(at) {
				t.Fatal("first record after restart is not marked as replayed")
			}
			got := readAll(t, s, true)
			if len(got) != 1099 {
				t.Fatalf("replayed %d records, want 1099", len(got))
			}
			seen := map[string]bool{}
			lastOf := map[byte]string{}
			for _, r := range got {
				if seen[r] {
					t.Fatalf("record %s twice", r)
				}
				seen[r] = true
				if r < lastOf[r[1]] {
					t.Fatalf("writer %c out of order: %s after %s", r[1], r, lastOf[r[1]])
				}
				lastOf[r[1]] = r
			}
			if err := s.Append([]byte("new")); err != nil {
				t.Fatal(err)
			}
			_, at, _, ok, _ = s.Next()
			if !ok || s.Replayed(at) {
				t.Fatal("a record of this run is marked as replayed")
			}
		})
	}
}

func TestSegmentsAreDeletedOnceCommitted(t *testing.T) {
	dir := t.TempDir()
	s, _, _ := open(t, dir, Options{SegmentBytes: 1024, SyncInterval: time.Hour})
	defer s.Close()
	for i := range 300 {
		if err := s.Append(rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) < 5 {
		t.Fatalf("only %d segments for 300 records of 1 KiB segments", len(segs))
	}
	if got := readAll(t, s, true); len(got) != 300 {
		t.Fatalf("read %d records", len(got))
	}
	segs, _ = filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) != 1 {
		t.Fatalf("%d segments left after everything was committed, want only the active one", len(segs))
	}
	if b := s.Bytes(); b > 1024+200 {
		t.Fatalf("spool bytes = %d after everything was committed", b)
	}
}

// TestFullRefusesThenRecovers: a full spool refuses with ErrFull (never
// blocks), and accepts again once the consumer has caught up.
func TestFullRefusesThenRecovers(t *testing.T) {
	s, set, _ := open(t, t.TempDir(), Options{MaxBytes: 8 << 10, SyncInterval: time.Hour}) // default segment size
	defer s.Close()
	accepted := 0
	var err error
	for i := 0; i < 1000; i++ {
		if err = s.Append(rec(i)); err != nil {
			break
		}
		accepted++
	}
	if !errors.Is(err, ErrFull) {
		t.Fatalf("Append on a full spool = %v, want ErrFull", err)
	}
	if s.Bytes() > 8<<10 {
		t.Fatalf("spool grew to %d bytes, beyond its 8 KiB", s.Bytes())
	}
	if counter(set, "turf_spool_refused_total") != 1 {
		t.Fatal("refusal not counted")
	}
	if got := readAll(t, s, true); len(got) != accepted {
		t.Fatalf("read %d records, %d accepted", len(got), accepted)
	}
	if err := s.Append(rec(1)); err != nil {
		t.Fatalf("Append after the consumer caught up: %v", err)
	}
}

// writeAndClose leaves a spool of n records in one closed segment and
// returns that segment's path and the offsets of the records.
func writeAndClose(t *testing.T, dir string, n int) (string, []int64) {
	t.Helper()
	s, _, _ := open(t, dir, Options{SyncInterval: time.Hour})
	var offs []int64
	for i := range n {
		if err := s.Append(rec(i)); err != nil {
			t.Fatal(err)
		}
		_, at, _, _, _ := s.Next()
		offs = append(offs, at.Off)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) != 1 {
		t.Fatalf("%d segments", len(segs))
	}
	return segs[0], offs
}

// TestDamageRecovery: a torn tail or a flipped byte costs exactly the
// records it touches; turf starts, keeps every intact record, reports the
// damaged bytes.
func TestDamageRecovery(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, path string, offs []int64)
		lost   []int // record numbers that must be gone
	}{
		{"torn mid-record at the end", func(t *testing.T, path string, offs []int64) {
			if err := os.Truncate(path, offs[49]+frameSize+3); err != nil {
				t.Fatal(err)
			}
		}, []int{49}},
		{"torn inside the last header", func(t *testing.T, path string, offs []int64) {
			if err := os.Truncate(path, offs[49]+3); err != nil {
				t.Fatal(err)
			}
		}, []int{49}},
		{"flipped payload byte in the middle", func(t *testing.T, path string, offs []int64) {
			flip(t, path, offs[20]+frameSize+2)
		}, []int{20}},
		{"flipped length byte in the middle", func(t *testing.T, path string, offs []int64) {
			flip(t, path, offs[30]+1)
		}, []int{30}},
		{"two damaged records", func(t *testing.T, path string, offs []int64) {
			flip(t, path, offs[3]+frameSize)
			flip(t, path, offs[40]+5)
		}, []int{3, 40}},
		{"damaged magic header", func(t *testing.T, path string, offs []int64) {
			flip(t, path, 2)
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path, offs := writeAndClose(t, dir, 50)
			tc.damage(t, path, offs)
			s, set, log := open(t, dir, Options{SyncInterval: time.Hour})
			defer s.Close()
			want := map[string]bool{}
			for i := range 50 {
				want[string(rec(i))] = true
			}
			for _, i := range tc.lost {
				delete(want, string(rec(i)))
			}
			if n := s.Unconsumed(); n != int64(len(want)) {
				t.Fatalf("recovered %d records, want %d; log:\n%s", n, len(want), log)
			}
			got := readAll(t, s, true)
			if len(got) != len(want) {
				t.Fatalf("read %d records, want %d", len(got), len(want))
			}
			for _, r := range got {
				if !want[r] {
					t.Fatalf("unexpected record %q", r)
				}
			}
			if len(tc.lost) > 0 {
				if counter(set, "turf_spool_corrupt_bytes_total") == 0 || !strings.Contains(log.String(), "bytes skipped") {
					t.Fatalf("damage not reported; log:\n%s", log)
				}
			}
		})
	}
}

func flip(t *testing.T, path string, off int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= 0x55
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
}

func TestDamagedCheckpointReplaysEverything(t *testing.T) {
	dir := t.TempDir()
	s, _, _ := open(t, dir, Options{})
	for i := range 10 {
		_ = s.Append(rec(i))
	}
	readAll(t, s, true)
	s.Close()
	flip(t, filepath.Join(dir, "checkpoint"), 3)
	s, _, log := open(t, dir, Options{})
	defer s.Close()
	if n := s.Unconsumed(); n != 10 {
		t.Fatalf("unconsumed = %d, want all 10 again", n)
	}
	if !strings.Contains(log.String(), "checkpoint is damaged") {
		t.Fatalf("damaged checkpoint not reported:\n%s", log)
	}
}

func TestOneProcessPerSpool(t *testing.T) {
	dir := t.TempDir()
	s, _, _ := open(t, dir, Options{})
	defer s.Close()
	if _, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second Open = %v, want an in-use error", err)
	}
}

func TestClosedRefuses(t *testing.T) {
	s, _, _ := open(t, t.TempDir(), Options{})
	s.CloseAppends()
	if err := s.Append([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after CloseAppends = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestDeadLetter(t *testing.T) {
	dir := t.TempDir()
	s, _, _ := open(t, dir, Options{})
	defer s.Close()
	if err := s.DeadLetter("abc-1-8", [][]byte{[]byte("a"), []byte("b")}, "no such column"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "dead", "abc-1-8.seg"))
	if err != nil {
		t.Fatal(err)
	}
	b = b[headerSize:]
	var got []string
	for len(b) > 0 {
		p, n := parseFrame(b)
		if n == 0 {
			t.Fatal("dead-letter file is not in segment framing")
		}
		got = append(got, string(p))
		b = b[n:]
	}
	if strings.Join(got, ",") != "a,b" {
		t.Fatalf("dead letters = %q", got)
	}
	note, _ := os.ReadFile(filepath.Join(dir, "dead", "abc-1-8.txt"))
	if !strings.Contains(string(note), "no such column") {
		t.Fatalf("reason missing: %q", note)
	}
	if err := s.DeadLetter("../x", nil, ""); err == nil {
		t.Fatal("a path escaping dead/ was accepted")
	}
}

func BenchmarkAppendParallel(b *testing.B) {
	for _, every := range []time.Duration{0, time.Second} {
		b.Run(fmt.Sprintf("fsync-interval=%s", every), func(b *testing.B) {
			s, err := Open(b.TempDir(), Options{SyncInterval: every, MaxBytes: 8 << 30})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			// Drain as a consumer would, so segments get deleted.
			stop := make(chan struct{})
			go func() {
				for {
					select {
					case <-stop:
						return
					case <-s.Written():
					}
					n, last := 0, Pos{}
					for {
						_, _, end, ok, _ := s.Next()
						if !ok {
							break
						}
						n, last = n+1, end
					}
					if n > 0 {
						_ = s.Commit(last, n)
					}
				}
			}()
			defer close(stop)
			r := bytes.Repeat([]byte("e"), 300)
			b.SetParallelism(32)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := s.Append(r); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

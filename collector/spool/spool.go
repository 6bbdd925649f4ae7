// Package spool is turf's write-ahead log: every accepted event is appended
// here before the request is answered, and one consumer reads the records
// back in order and acknowledges them (Commit) once ClickHouse has them.
//
// Records live in numbered, append-only segment files under one directory.
// Appends are group-committed: handlers queue their record and wait while a
// single writer goroutine writes everything queued with one write(2) and,
// depending on Options.SyncInterval, one fsync. What a 202 is worth follows
// from that:
//
//   - SyncInterval == 0: Append returns after write and fsync. Records
//     survive kill -9 and a power cut (as far as the disk honours fsync).
//   - SyncInterval > 0: Append returns after write(2); the data is in the
//     kernel's page cache. It survives kill -9 of turf, but a power cut or a
//     kernel crash can lose the records of the last SyncInterval (the torn
//     tail is detected by the checksums and skipped on the next start).
//
// The directory holds, besides the segments: "id" (random, names this spool
// in batch ids so that two spools never share one), "checkpoint" (the
// position up to which ClickHouse has the records; a stale checkpoint only
// costs a re-check, never a duplicate, because the consumer checks batch ids
// before replaying), "lock" (one process per spool) and "dead/" (records
// ClickHouse refused for good, with the reason).
//
// The checkpoint also holds the in-flight note (NoteInflight): the run of
// records the consumer is inserting, by first position and count, written
// before each insert and cleared by the Commit that passes it. A process
// started after a kill finds there how the earlier one cut the run whose
// outcome it never learnt (Inflight), so it can send exactly that run
// again; see package sink. The note is one small write per insert, not per
// record. Like the commit position it is renamed into place without fsync
// when SyncInterval > 0 (it survives kill -9, which is all that setting
// promises for records too); with SyncInterval == 0 it is fsynced, so it
// survives a power cut as the records do. A checkpoint without a note keeps
// the original 20-byte format.
//
// Memory is bounded by the append group (Options.MaxPending records) and one
// read buffer, whatever the outage length; disk by Options.MaxBytes.
package spool

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// ErrFull is returned by Append when the spool has reached Options.MaxBytes
// (or Options.MaxPending records wait for the writer).
var ErrFull = errors.New("spool is full")

// ErrLocked is returned by Open when another process holds the spool.
var ErrLocked = errors.New("spool is in use by another turf process")

// ErrClosed is returned by Append after CloseAppends.
var ErrClosed = errors.New("spool is closed")

// Options configure a spool; zero values get the defaults noted.
type Options struct {
	MaxBytes     int64         // segment files on disk; beyond it Append refuses. Default 1 GiB
	SegmentBytes int64         // a segment is closed once it is this big. Default MaxBytes/8, at most 64 MiB; never above MaxBytes/4
	SyncInterval time.Duration // 0: fsync before Append returns; otherwise fsync at most this often
	MaxPending   int           // records queued for the writer; beyond it Append refuses. Default 100000
	Metrics      *metrics.Set  // default: a private set
	// Label, when set (e.g. `table="engagements"`), is added to every
	// metric's name, so that two spools can share one set.
	Label string
	Logf  func(string, ...any)
}

// Pos is a position in the spool: a segment and a byte offset in it.
type Pos struct {
	Seg uint64
	Off int64
}

// Less orders positions as the records are written.
func (p Pos) Less(q Pos) bool { return p.Seg < q.Seg || p.Seg == q.Seg && p.Off < q.Off }

func (p Pos) String() string { return fmt.Sprintf("%d-%d", p.Seg, p.Off) }

type segment struct {
	num  uint64
	size int64 // of a closed segment; the active one's is Spool.written
}

// group is one write(2) worth of appends; done is set (and cond
// broadcast) when it is on disk as far as the sync policy promises. A group
// is reused once its last waiter has read err, so a group costs no
// allocation: under a serial load every event is a group of its own. All
// fields are guarded by Spool.mu, which is cond.L.
type group struct {
	cond    sync.Cond
	done    bool
	err     error
	waiters int
}

// Spool is an open spool directory.
type Spool struct {
	dir  string
	opts Options
	id   string
	lock *os.File

	mu          sync.Mutex
	closing     bool
	pending     []byte // framed records waiting for the writer
	pendingRecs int
	spare       []byte // the other buffer, reused
	inflight    int64  // bytes accepted but not yet on disk
	grp         *group
	freeGroups  []*group  // done, with no waiter left
	segs        []segment // oldest first; the last one is active once started
	started     bool      // the active segment exists (not yet during recovery)
	diskBytes   int64
	commit      Pos
	note        Inflight // the consumer's insert in flight; Len 0: none

	written    atomic.Int64 // bytes of the active segment the reader may read
	unconsumed atomic.Int64 // records written and not yet committed

	kick       chan struct{}
	quit       chan struct{}
	writerDone chan struct{}
	newData    chan struct{}

	// Owned by the writer goroutine.
	active *os.File
	dirty  bool

	// Owned by the consumer.
	rd       reader
	startEnd Pos      // where this run's first record goes: everything before was spooled by an earlier run
	left     Inflight // the note an earlier run left (Inflight)

	corruptBytes *metrics.Counter
	fsyncs       *metrics.Counter
	writeErrors  *metrics.Counter
	refused      *metrics.Counter
	writeSeconds *metrics.Histogram
}

// Open opens (creating it if need be) the spool in dir, recovers what an
// earlier run left, and starts the writer. Corrupt or torn records are
// skipped and reported through Logf and turf_spool_corrupt_bytes_total.
func Open(dir string, o Options) (*Spool, error) {
	if o.MaxBytes <= 0 {
		o.MaxBytes = 1 << 30
	}
	// Only closed segments can be deleted, so the active one must stay a
	// small part of MaxBytes: otherwise a full spool could not make room
	// even after ClickHouse took everything.
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = min(max(o.MaxBytes/8, 4<<10), 64<<20)
	}
	o.SegmentBytes = min(o.SegmentBytes, o.MaxBytes/4)
	if o.MaxPending <= 0 {
		o.MaxPending = 100000
	}
	if o.Metrics == nil {
		o.Metrics = metrics.NewSet()
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if err := os.MkdirAll(filepath.Join(dir, "dead"), 0o750); err != nil {
		return nil, fmt.Errorf("cannot create spool directory: %w", err)
	}
	s := &Spool{
		dir: dir, opts: o,
		kick:       make(chan struct{}, 1),
		quit:       make(chan struct{}),
		writerDone: make(chan struct{}),
		newData:    make(chan struct{}, 1),
	}
	s.grp = s.newGroup()
	var err error
	if s.lock, err = lockDir(dir); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			s.lock.Close()
		}
	}()
	if s.id, err = readOrCreateID(dir); err != nil {
		return nil, err
	}
	s.registerMetrics()
	if err := s.recover(); err != nil {
		return nil, err
	}
	if err := s.startSegment(); err != nil {
		return nil, err
	}
	s.startEnd = Pos{s.segs[len(s.segs)-1].num, headerSize}
	go s.writeLoop()
	ok = true
	return s, nil
}

// ID names this spool; it is random and kept for the spool's lifetime.
func (s *Spool) ID() string { return s.id }

// Dir is the spool directory.
func (s *Spool) Dir() string { return s.dir }

// recover lists the segments, drops those the checkpoint says are stored,
// and scans the rest so that damage is reported now rather than at replay.
func (s *Spool) recover() error {
	nums, err := listSegments(s.dir)
	if err != nil {
		return err
	}
	cp, note, err := readCheckpoint(s.dir)
	if err != nil {
		s.opts.Logf("spool: %v; replaying every segment (batch ids prevent duplicates)", err)
		cp, note = Pos{}, Inflight{}
	}
	for len(nums) > 0 && nums[0] < cp.Seg {
		// Stored before the last run ended; it died before deleting them.
		if err := os.Remove(segPath(s.dir, nums[0])); err != nil {
			return fmt.Errorf("cannot remove stored spool segment: %w", err)
		}
		nums = nums[1:]
	}
	for _, n := range nums {
		fi, err := os.Stat(segPath(s.dir, n))
		if err != nil {
			return fmt.Errorf("cannot read spool segment: %w", err)
		}
		s.segs = append(s.segs, segment{num: n, size: fi.Size()})
		s.diskBytes += fi.Size()
	}
	if len(nums) == 0 || cp.Seg < nums[0] {
		cp = Pos{}
		if len(nums) > 0 {
			cp.Seg = nums[0]
		}
	}
	cp.Off = max(cp.Off, headerSize)
	s.commit = cp
	if note.Len > 0 && !note.At.Less(cp) {
		s.note, s.left = note, note
	}
	s.rd = reader{s: s, seg: cp.Seg, off: cp.Off}
	if len(nums) == 0 {
		return nil
	}
	scan := reader{s: s, seg: cp.Seg, off: cp.Off, report: true}
	defer scan.close()
	var n, bytes int64
	for {
		rec, _, _, ok, err := scan.next()
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		n++
		bytes += int64(len(rec))
	}
	s.unconsumed.Store(n)
	if n > 0 {
		s.opts.Logf("spool: %d records (%d bytes) from an earlier run will be replayed", n, bytes)
	}
	return nil
}

// startSegment opens a fresh active segment. Every run starts one, so older
// segments are never appended to again and a torn tail stays a tail.
func (s *Spool) startSegment() error {
	var num uint64 = 1
	if len(s.segs) > 0 {
		num = s.segs[len(s.segs)-1].num + 1
	}
	f, err := os.OpenFile(segPath(s.dir, num), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("cannot create spool segment: %w", err)
	}
	if _, err := f.WriteAt([]byte(magic), 0); err != nil {
		f.Close()
		return fmt.Errorf("cannot write spool segment header: %w", err)
	}
	// The new name must survive a power cut before records go in it.
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("cannot fsync spool segment: %w", err)
	}
	if err := syncDir(s.dir); err != nil {
		f.Close()
		return err
	}
	old := s.active
	s.mu.Lock()
	if len(s.segs) > 0 && old != nil {
		s.segs[len(s.segs)-1].size = s.written.Load()
	}
	s.segs = append(s.segs, segment{num: num})
	s.started = true
	s.written.Store(headerSize)
	s.diskBytes += headerSize
	s.mu.Unlock()
	s.active = f
	if old != nil {
		if err := old.Sync(); err != nil {
			s.opts.Logf("spool: cannot fsync a full segment: %v", err)
		}
		s.fsyncs.Inc()
		old.Close()
	}
	return nil
}

// Append writes rec as one record and returns once it is written, and
// fsynced when SyncInterval is 0. rec is copied; the caller may reuse it.
// It never waits on anything but the local disk.
func (s *Spool) Append(rec []byte) error {
	if len(rec) == 0 || len(rec) > MaxRecord {
		return fmt.Errorf("cannot spool a record of %d bytes (1..%d)", len(rec), MaxRecord)
	}
	framed := int64(len(rec) + frameSize)
	sum := checksum(rec)
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return ErrClosed
	}
	if s.pendingRecs >= s.opts.MaxPending || s.diskBytes+s.inflight+framed > s.opts.MaxBytes {
		s.mu.Unlock()
		s.refused.Inc()
		return ErrFull
	}
	s.pending = appendFrameSum(s.pending, rec, sum)
	s.pendingRecs++
	s.inflight += framed
	g := s.grp
	g.waiters++
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
	s.mu.Lock()
	for !g.done {
		g.cond.Wait()
	}
	err := g.err
	if g.waiters--; g.waiters == 0 && len(s.freeGroups) < 4 {
		s.freeGroups = append(s.freeGroups, g)
	}
	s.mu.Unlock()
	return err
}

// newGroup returns an empty group, reusing a finished one. s.mu is held.
func (s *Spool) newGroup() *group {
	if n := len(s.freeGroups); n > 0 {
		g := s.freeGroups[n-1]
		s.freeGroups = s.freeGroups[:n-1]
		g.done, g.err = false, nil
		return g
	}
	g := &group{}
	g.cond.L = &s.mu
	return g
}

func (s *Spool) writeLoop() {
	defer close(s.writerDone)
	var tick <-chan time.Time
	if s.opts.SyncInterval > 0 {
		t := time.NewTicker(s.opts.SyncInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-s.kick:
			// Let the handlers that are ready to run reach Append first:
			// under load this turns one write(2) per event into one per
			// group, and with nothing else to run it returns at once.
			runtime.Gosched()
			s.writeGroup()
		case <-tick:
			s.syncActive()
		case <-s.quit:
			s.writeGroup()
			s.syncActive()
			if err := s.active.Close(); err != nil {
				s.opts.Logf("spool: closing the active segment: %v", err)
			}
			return
		}
	}
}

func (s *Spool) syncActive() {
	if !s.dirty {
		return
	}
	if err := s.active.Sync(); err != nil {
		// The records are already acknowledged; all that can be done is to
		// say so loudly. The next start's checksums will tell what survived.
		s.writeErrors.Inc()
		s.opts.Logf("spool: fsync failed, a power cut now could lose acknowledged events: %v", err)
		return
	}
	s.fsyncs.Inc()
	s.dirty = false
}

// writeGroup writes everything queued with one write(2).
func (s *Spool) writeGroup() {
	s.mu.Lock()
	buf, recs, g := s.pending, s.pendingRecs, s.grp
	if len(buf) == 0 {
		s.mu.Unlock()
		return
	}
	s.pending, s.spare, s.pendingRecs = s.spare[:0], nil, 0
	s.grp = s.newGroup()
	s.mu.Unlock()

	// Counted before the records become readable, so that Unconsumed() == 0
	// never hides records already visible at End().
	s.unconsumed.Add(int64(recs))
	start := time.Now()
	err := s.write(buf)
	s.writeSeconds.UpdateDuration(start)
	if err != nil {
		s.unconsumed.Add(-int64(recs))
	}

	s.mu.Lock()
	g.done, g.err = true, err
	g.cond.Broadcast()
	s.inflight -= int64(len(buf))
	if err == nil {
		s.diskBytes += int64(len(buf))
	}
	s.spare = buf[:0]
	s.mu.Unlock()
	if err == nil {
		select {
		case s.newData <- struct{}{}:
		default:
		}
	}
}

func (s *Spool) write(buf []byte) error {
	size := s.written.Load()
	if size > headerSize && size+int64(len(buf)) > s.opts.SegmentBytes {
		if err := s.startSegment(); err != nil {
			s.writeErrors.Inc()
			return err
		}
		size = headerSize
	}
	if _, err := s.active.WriteAt(buf, size); err != nil {
		s.writeErrors.Inc()
		// Take back a partial write: these events are refused, so they
		// must not turn up at the next start.
		if terr := s.active.Truncate(size); terr != nil {
			s.opts.Logf("spool: cannot take back a failed write (%v); the next start may find a torn record", terr)
		}
		return fmt.Errorf("cannot write to the spool: %w", err)
	}
	if s.opts.SyncInterval == 0 {
		if err := s.active.Sync(); err != nil {
			s.writeErrors.Inc()
			if terr := s.active.Truncate(size); terr != nil {
				s.opts.Logf("spool: cannot take back an unsynced write (%v)", terr)
			}
			return fmt.Errorf("cannot fsync the spool: %w", err)
		}
		s.fsyncs.Inc()
	} else {
		s.dirty = true
	}
	s.written.Store(size + int64(len(buf)))
	return nil
}

// Written is signalled after new records become readable.
func (s *Spool) Written() <-chan struct{} { return s.newData }

// End is the position after the last written record.
func (s *Spool) End() Pos {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Pos{s.segs[len(s.segs)-1].num, s.written.Load()}
}

// Replayed reports whether the record at p was spooled by an earlier run.
func (s *Spool) Replayed(p Pos) bool { return p.Less(s.startEnd) }

// Inflight is a run of records the consumer is inserting: Len records from
// the one at At.
type Inflight struct {
	At  Pos
	Len int
}

// maxNote bounds the run length a checkpoint may name: far beyond any batch
// size, it only keeps a damaged-but-plausible file from asking for more.
const maxNote = 1 << 24

// Inflight returns the note the earlier run left in the checkpoint: the
// insert it had in flight when it stopped, whose outcome it never learnt
// (ok is false when there is none). The note names a position from before
// this run's first record.
func (s *Spool) Inflight() (Inflight, bool) { return s.left, s.left.Len > 0 }

// NoteInflight records, next to the commit position, that the consumer is
// about to insert the n records from at; the Commit that passes at clears
// the note. Only the consumer may call it. It writes a small file (see the
// package comment for when it is fsynced).
func (s *Spool) NoteInflight(at Pos, n int) error {
	if n <= 0 || n > maxNote {
		return fmt.Errorf("BUG: in-flight run of %d records", n)
	}
	s.mu.Lock()
	s.note = Inflight{at, n}
	cp := s.commit
	s.mu.Unlock()
	return writeCheckpoint(s.dir, cp, Inflight{at, n}, s.opts.SyncInterval == 0)
}

// Next returns the next record after the read cursor and advances it, or
// ok == false when there is none yet. rec is valid until the next call. Only
// one goroutine (the consumer) may call Next and Commit.
func (s *Spool) Next() (rec []byte, at, end Pos, ok bool, err error) { return s.rd.next() }

// Commit records that every record before p is stored (or set aside), n of
// them since the last Commit, and deletes the segments that are done with.
func (s *Spool) Commit(p Pos, n int) error {
	s.unconsumed.Add(-int64(n))
	s.mu.Lock()
	s.commit = p
	if s.note.At.Less(p) {
		s.note = Inflight{} // its run is stored (or set aside)
	}
	note := s.note
	var done []segment
	for len(s.segs) > 1 && s.segs[0].num < p.Seg {
		done = append(done, s.segs[0])
		s.segs = s.segs[1:]
	}
	s.mu.Unlock()
	// The checkpoint first: a crash between the two leaves segments that
	// the next start recognises as stored.
	if err := writeCheckpoint(s.dir, p, note, false); err != nil {
		return err
	}
	for _, seg := range done {
		if err := os.Remove(segPath(s.dir, seg.num)); err != nil {
			return fmt.Errorf("cannot remove a stored spool segment: %w", err)
		}
		s.mu.Lock()
		s.diskBytes -= seg.size
		s.mu.Unlock()
	}
	return nil
}

// Unconsumed is the number of records written and not yet committed.
func (s *Spool) Unconsumed() int64 { return s.unconsumed.Load() }

// Bytes is the size of the segment files on disk.
func (s *Spool) Bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.diskBytes
}

// MaxBytes is the configured bound on Bytes.
func (s *Spool) MaxBytes() int64 { return s.opts.MaxBytes }

// DeadLetter sets records aside in dead/NAME.seg (same framing as segments)
// with the reason in dead/NAME.txt. name must be a plain file name; writing
// the same name again replaces the files, so a retry after a crash does not
// double them.
func (s *Spool) DeadLetter(name string, recs [][]byte, reason string) error {
	if name == "" || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") {
		return fmt.Errorf("BUG: dead-letter name %q", name)
	}
	buf := []byte(magic)
	for _, r := range recs {
		buf = appendFrame(buf, r)
	}
	base := filepath.Join(s.dir, "dead", name)
	if err := writeFileSync(base+".seg", buf); err != nil {
		return fmt.Errorf("cannot write dead-letter file: %w", err)
	}
	note := fmt.Sprintf("%s\n%d records set aside: %s\n", time.Now().UTC().Format(time.RFC3339), len(recs), reason)
	if err := writeFileSync(base+".txt", []byte(note)); err != nil {
		return fmt.Errorf("cannot write dead-letter file: %w", err)
	}
	return syncDir(filepath.Join(s.dir, "dead"))
}

// CloseAppends refuses further appends and waits until every accepted record
// is written and fsynced. The consumer may go on reading.
func (s *Spool) CloseAppends() {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		<-s.writerDone
		return
	}
	s.closing = true
	s.mu.Unlock()
	close(s.quit)
	<-s.writerDone
}

// Close stops the writer (see CloseAppends), saves the checkpoint durably
// and releases the directory.
func (s *Spool) Close() error {
	s.CloseAppends()
	s.rd.close()
	s.mu.Lock()
	cp, note := s.commit, s.note
	s.mu.Unlock()
	err := writeCheckpoint(s.dir, cp, note, true)
	if cerr := s.lock.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("cannot release the spool lock: %w", cerr)
	}
	return err
}

func (s *Spool) registerMetrics() {
	set := s.opts.Metrics
	name := func(n string) string {
		if s.opts.Label == "" {
			return n
		}
		return n + "{" + s.opts.Label + "}"
	}
	s.corruptBytes = set.NewCounter(name("turf_spool_corrupt_bytes_total"))
	s.fsyncs = set.NewCounter(name("turf_spool_fsyncs_total"))
	s.writeErrors = set.NewCounter(name("turf_spool_write_errors_total"))
	s.refused = set.NewCounter(name("turf_spool_refused_total"))
	s.writeSeconds = set.NewHistogram(name("turf_spool_write_duration_seconds"))
	set.NewGauge(name("turf_spool_bytes"), func() float64 { return float64(s.Bytes()) })
	set.NewGauge(name("turf_spool_max_bytes"), func() float64 { return float64(s.opts.MaxBytes) })
	set.NewGauge(name("turf_spool_pending_events"), func() float64 { return float64(s.Unconsumed()) })
	set.NewGauge(name("turf_spool_segments"), func() float64 {
		s.mu.Lock()
		defer s.mu.Unlock()
		return float64(len(s.segs))
	})
}

// limit tells the reader how far segment num may be read, whether it is
// closed (will not grow) and which segment follows it, if any.
func (s *Spool) limit(num uint64) (limit int64, closed bool, next uint64, hasNext bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, found := slices.BinarySearchFunc(s.segs, num, func(a segment, n uint64) int {
		switch {
		case a.num < n:
			return -1
		case a.num > n:
			return 1
		}
		return 0
	})
	if !found {
		// Gone (or never there): nothing to read, move on.
		if i < len(s.segs) {
			return 0, true, s.segs[i].num, true
		}
		return 0, true, 0, false
	}
	if i == len(s.segs)-1 {
		if s.started {
			return s.written.Load(), false, 0, false
		}
		return s.segs[i].size, true, 0, false // recovery scan: no active segment yet
	}
	return s.segs[i].size, true, s.segs[i+1].num, true
}

// reader reads records sequentially through a buffer; it never reads past
// what the writer has published, so it sees no half-written record of its
// own process.
type reader struct {
	s      *Spool
	seg    uint64
	off    int64 // of the next record
	f      *os.File
	buf    []byte
	bufAt  int64 // file offset of buf[0]
	report bool  // report damage even in segments of earlier runs
	// known is how far seg was published at the last look (Spool.limit,
	// which takes the lock the handlers append under). A segment only
	// grows, so records inside known are read without looking again: one
	// look each time the reader catches up instead of one per record.
	known int64
}

func (r *reader) next() (rec []byte, at, end Pos, ok bool, err error) {
	for {
		limit, closed, next, hasNext, fresh := r.known, false, uint64(0), false, false
		if r.off+frameSize > limit {
			limit, closed, next, hasNext = r.s.limit(r.seg)
			r.known, fresh = limit, true
		}
		if r.off+frameSize > limit {
			if closed && r.off < limit {
				r.damaged(limit-r.off, "torn record at the end")
				r.off = limit
			}
			if !closed || !hasNext {
				return nil, at, end, false, nil
			}
			r.move(next)
			continue
		}
		hdr, err := r.read(r.off, frameSize)
		if err != nil {
			return nil, at, end, false, err
		}
		if size := int64(binary.LittleEndian.Uint32(hdr)); size > 0 && size <= MaxRecord && r.off+frameSize+size <= limit {
			b, err := r.read(r.off, frameSize+size)
			if err != nil {
				return nil, at, end, false, err
			}
			if payload, n := parseFrame(b); n > 0 {
				at = Pos{r.seg, r.off}
				r.off += int64(n)
				return payload, at, Pos{r.seg, r.off}, true, nil
			}
		}
		if !fresh {
			// The record may reach past the last look, or the segment
			// may be closed since: look again before calling it damaged.
			r.known = 0
			continue
		}
		// Damaged: skip to the next intact record in this segment. Reading
		// the rest of one segment is bounded by SegmentBytes.
		rest, err := r.read(r.off, limit-r.off)
		if err != nil {
			return nil, at, end, false, err
		}
		skip := int64(resync(rest))
		if r.off+skip >= limit && closed {
			r.damaged(skip, "damaged records up to the end")
		} else {
			r.damaged(skip, "damaged record(s)")
		}
		r.off += skip
	}
}

func (r *reader) damaged(n int64, what string) {
	if !r.report && r.seg < r.s.startEnd.Seg {
		return // reported by the recovery scan
	}
	r.s.corruptBytes.Add(int(n))
	r.s.opts.Logf("spool: %s in segment %d at offset %d: %d bytes skipped (checksum or length wrong); intact records around them are kept",
		what, r.seg, r.off, n)
}

func (r *reader) move(next uint64) {
	r.close()
	r.seg, r.off, r.known = next, headerSize, 0
}

func (r *reader) close() {
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
	r.buf, r.bufAt = r.buf[:0], 0
}

// read returns n bytes at off, from the buffer when it holds them.
func (r *reader) read(off, n int64) ([]byte, error) {
	if off >= r.bufAt && off+n <= r.bufAt+int64(len(r.buf)) {
		return r.buf[off-r.bufAt : off-r.bufAt+n], nil
	}
	if r.f == nil {
		f, err := os.Open(segPath(r.s.dir, r.seg))
		if err != nil {
			return nil, fmt.Errorf("cannot open spool segment: %w", err)
		}
		r.f = f
	}
	limit, _, _, _ := r.s.limit(r.seg)
	want := max(n, min(256<<10, limit-off))
	if int64(cap(r.buf)) < want {
		r.buf = make([]byte, want)
	}
	r.buf = r.buf[:want]
	got, err := r.f.ReadAt(r.buf, off)
	if int64(got) < n {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("cannot read spool segment %d: %w", r.seg, err)
	}
	r.buf, r.bufAt = r.buf[:got], off
	return r.buf[:n], nil
}

func segPath(dir string, num uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%020d.seg", num))
}

func listSegments(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("cannot list the spool: %w", err)
	}
	var nums []uint64
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".seg")
		if !ok || e.IsDir() {
			continue
		}
		n, err := strconv.ParseUint(name, 10, 64)
		if err != nil {
			continue
		}
		nums = append(nums, n)
	}
	slices.Sort(nums)
	return nums, nil
}

// The checkpoint is 8 bytes segment, 8 bytes offset of the commit position
// and, when an insert is in flight, 8 bytes segment, 8 bytes offset and 4
// bytes record count of its run; then 4 bytes CRC-32C of what precedes. So
// it is 20 bytes without a note (the format before notes existed, still
// read and written) and 40 with one.
const (
	checkpointSize     = 20
	checkpointNoteSize = 40
)

func encodeCheckpoint(p Pos, note Inflight) []byte {
	b := make([]byte, 0, checkpointNoteSize)
	b = binary.LittleEndian.AppendUint64(b, p.Seg)
	b = binary.LittleEndian.AppendUint64(b, uint64(p.Off))
	if note.Len > 0 {
		b = binary.LittleEndian.AppendUint64(b, note.At.Seg)
		b = binary.LittleEndian.AppendUint64(b, uint64(note.At.Off))
		b = binary.LittleEndian.AppendUint32(b, uint32(note.Len))
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func decodeCheckpoint(b []byte) (Pos, Inflight, error) {
	if len(b) != checkpointSize && len(b) != checkpointNoteSize ||
		crc32.Checksum(b[:len(b)-4], castagnoli) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return Pos{}, Inflight{}, errors.New("the spool checkpoint is damaged")
	}
	p := Pos{binary.LittleEndian.Uint64(b), int64(binary.LittleEndian.Uint64(b[8:]))}
	if len(b) == checkpointSize {
		return p, Inflight{}, nil
	}
	note := Inflight{Pos{binary.LittleEndian.Uint64(b[16:]), int64(binary.LittleEndian.Uint64(b[24:]))}, int(binary.LittleEndian.Uint32(b[32:]))}
	if note.Len <= 0 || note.Len > maxNote {
		return Pos{}, Inflight{}, fmt.Errorf("the spool checkpoint is damaged (an in-flight run of %d records)", note.Len)
	}
	return p, note, nil
}

// writeCheckpoint replaces the checkpoint by renaming a new file over it,
// so a reader finds the old one or the new one whole; durable also fsyncs
// the file and the directory.
func writeCheckpoint(dir string, p Pos, note Inflight, durable bool) error {
	b := encodeCheckpoint(p, note)
	tmp := filepath.Join(dir, "checkpoint.tmp")
	var err error
	if durable {
		err = writeFileSync(tmp, b)
	} else {
		err = os.WriteFile(tmp, b, 0o640)
	}
	if err != nil {
		return fmt.Errorf("cannot write the spool checkpoint: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "checkpoint")); err != nil {
		return fmt.Errorf("cannot write the spool checkpoint: %w", err)
	}
	if durable {
		return syncDir(dir)
	}
	return nil
}

func readCheckpoint(dir string) (Pos, Inflight, error) {
	b, err := os.ReadFile(filepath.Join(dir, "checkpoint"))
	if errors.Is(err, os.ErrNotExist) {
		return Pos{}, Inflight{}, nil
	}
	if err != nil {
		return Pos{}, Inflight{}, fmt.Errorf("cannot read the spool checkpoint: %w", err)
	}
	return decodeCheckpoint(b)
}

func readOrCreateID(dir string) (string, error) {
	path := filepath.Join(dir, "id")
	b, err := os.ReadFile(path)
	if err == nil {
		id := strings.TrimSpace(string(b))
		if len(id) == 16 {
			if _, err := hex.DecodeString(id); err == nil {
				return id, nil
			}
		}
		return "", fmt.Errorf("spool id file %s is damaged; if the spool holds nothing you need, remove the directory", path)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("cannot read spool id: %w", err)
	}
	var r [8]byte
	_, _ = rand.Read(r[:])
	id := hex.EncodeToString(r[:])
	if err := writeFileSync(path, []byte(id+"\n")); err != nil {
		return "", fmt.Errorf("cannot write spool id: %w", err)
	}
	return id, syncDir(dir)
}

func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, fmt.Errorf("cannot open the spool lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("spool %s: %w (%v); give each instance its own --data-dir", dir, ErrLocked, err)
	}
	return f, nil
}

func writeFileSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("cannot open %s to fsync it: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("cannot fsync %s: %w", dir, err)
	}
	return nil
}

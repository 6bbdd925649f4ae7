package spool

import (
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestCheckpointFormat(t *testing.T) {
	// The 20-byte format written before in-flight notes existed, built by
	// hand so that a change to encodeCheckpoint cannot hide a break.
	old := binary.LittleEndian.AppendUint64(nil, 7)
	old = binary.LittleEndian.AppendUint64(old, 4096)
	old = binary.LittleEndian.AppendUint32(old, crc32.Checksum(old, castagnoli))
	for _, tc := range []struct {
		name    string
		b       []byte
		commit  Pos
		note    Inflight
		damaged bool
	}{
		{name: "old format", b: old, commit: Pos{7, 4096}},
		{name: "no note", b: encodeCheckpoint(Pos{7, 4096}, Inflight{}), commit: Pos{7, 4096}},
		{name: "note", b: encodeCheckpoint(Pos{3, 8}, Inflight{Pos{3, 120}, 250}), commit: Pos{3, 8}, note: Inflight{Pos{3, 120}, 250}},
		{name: "note in a later segment", b: encodeCheckpoint(Pos{3, 1 << 40}, Inflight{Pos{4, 8}, 1}), commit: Pos{3, 1 << 40}, note: Inflight{Pos{4, 8}, 1}},
		{name: "cut to the old size", b: encodeCheckpoint(Pos{3, 8}, Inflight{Pos{3, 8}, 9})[:20], damaged: true},
		{name: "one byte more", b: append(encodeCheckpoint(Pos{3, 8}, Inflight{}), 0), damaged: true},
		{name: "empty", b: nil, damaged: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, note, err := decodeCheckpoint(tc.b)
			if tc.damaged {
				if err == nil {
					t.Fatalf("decoded %v %v, want an error", p, note)
				}
				return
			}
			if err != nil || p != tc.commit || note != tc.note {
				t.Fatalf("decode = %v %v %v, want %v %v", p, note, err, tc.commit, tc.note)
			}
		})
	}
	if n := len(encodeCheckpoint(Pos{1, 2}, Inflight{})); n != checkpointSize {
		t.Fatalf("a checkpoint without a note is %d bytes, want the old %d", n, checkpointSize)
	}
	// Every flipped bit of a note is noticed.
	good := encodeCheckpoint(Pos{3, 8}, Inflight{Pos{3, 120}, 250})
	for i := range len(good) * 8 {
		b := append([]byte(nil), good...)
		b[i/8] ^= 1 << (i % 8)
		if p, note, err := decodeCheckpoint(b); err == nil {
			t.Fatalf("bit %d flipped: decoded %v %v", i, p, note)
		}
	}
}

// TestInflightNote: a note written before an insert is what the next Open
// finds after a kill (nothing closed), survives Commits of records before
// it and a clean Close, and is gone after the Commit that passes it.
func TestInflightNote(t *testing.T) {
	dir := t.TempDir()
	s, _, _ := open(t, dir, Options{SyncInterval: 50e6})
	for i := range 10 {
		if err := s.Append(rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	var ats, ends []Pos
	for {
		_, at, end, ok, err := s.Next()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		ats, ends = append(ats, at), append(ends, end)
	}
	if err := s.Commit(ends[1], 2); err != nil {
		t.Fatal(err)
	}
	if err := s.NoteInflight(ats[3], 4); err != nil {
		t.Fatal(err)
	}
	// A kill -9 now: the files as they are, read by a fresh Open (the lock
	// is the process's, so the copy stands for the same directory).
	killed := copyDir(t, dir)
	k, _, _ := open(t, killed, Options{})
	if note, ok := k.Inflight(); !ok || note != (Inflight{ats[3], 4}) {
		t.Fatalf("after a kill: Inflight = %v %v, want 4 records from %v", note, ok, ats[3])
	}
	if n := k.Unconsumed(); n != 8 {
		t.Fatalf("after a kill: %d records to replay, want 8", n)
	}
	// Still there after a Commit short of the run and a clean Close, for
	// a second restart.
	_, _, end, _, _ := k.Next()
	if err := k.Commit(end, 1); err != nil {
		t.Fatal(err)
	}
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	k, _, _ = open(t, killed, Options{})
	if note, ok := k.Inflight(); !ok || note != (Inflight{ats[3], 4}) {
		t.Fatalf("after a close: Inflight = %v %v, want 4 records from %v", note, ok, ats[3])
	}
	k.Close()

	// The Commit of the run clears the note, in the file too.
	if err := s.Commit(ends[6], 5); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "checkpoint")); err != nil || len(b) != checkpointSize {
		t.Fatalf("checkpoint after the run's commit: %d bytes (%v), want %d", len(b), err, checkpointSize)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, _, _ = open(t, dir, Options{})
	defer s.Close()
	if note, ok := s.Inflight(); ok {
		t.Fatalf("after the run's commit: Inflight = %v", note)
	}
	if n := s.Unconsumed(); n != 3 {
		t.Fatalf("%d records to replay, want 3", n)
	}
}

// copyDir copies the regular files of dir (a spool: no subdirectory but
// the empty dead/) to a new directory.
func copyDir(t *testing.T, dir string) string {
	t.Helper()
	to := t.TempDir()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	return to
}

// BenchmarkBatchCheckpoint is the spool's own cost of one insert: its
// Commit, as before the note, and the note written before it (in both
// fsync settings, since the note is fsynced when the records are).
func BenchmarkBatchCheckpoint(b *testing.B) {
	for _, tc := range []struct {
		name string
		sync time.Duration
		note bool
	}{
		{"commit only", 50 * time.Millisecond, false},
		{"note and commit", 50 * time.Millisecond, true},
		{"note and commit, fsync", 0, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s, err := Open(b.TempDir(), Options{SyncInterval: tc.sync})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			if err := s.Append(rec(1)); err != nil {
				b.Fatal(err)
			}
			_, at, end, ok, err := s.Next()
			if err != nil || !ok {
				b.Fatal(ok, err)
			}
			b.ResetTimer()
			for range b.N {
				if tc.note {
					if err := s.NoteInflight(at, 10000); err != nil {
						b.Fatal(err)
					}
				}
				if err := s.Commit(end, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

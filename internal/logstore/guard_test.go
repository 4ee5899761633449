// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package logstore

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reconciled/reconciled/test/fixtures/waitfor"
)

// dirBytes is the size of every file in dir.
func dirBytes(dir string) int64 {
	var n int64
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if fi, err := e.Info(); err == nil {
			n += fi.Size()
		}
	}
	return n
}

func startGuard(t *testing.T, s *Store, check func(string)) *Guard {
	t.Helper()
	g, err := NewGuard(s, "process", check)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { g.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done // Run returns once ctx is done
	})
	return g
}

// openWatched opens the log of name for appending, as a program's stdout,
// and has g watch it.
func openWatched(t *testing.T, s *Store, g *Guard, name string) *os.File {
	t.Helper()
	f, err := s.Open("process", name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if err := g.Watch(name); err != nil {
		t.Fatal(err)
	}
	return f
}

// A program flooding its log at 100 MB/s: the guard keeps the store near
// (Keep+1) * MaxBytes all along, where the 30-second sweep alone would let
// the whole flood reach the disk.
func TestGuardBoundsAFlood(t *testing.T) {
	s := &Store{Root: t.TempDir(), MaxBytes: 2 << 20, Keep: 2}
	var checks atomic.Int64
	var rotations atomic.Int64
	g := startGuard(t, s, func(name string) {
		checks.Add(1)
		if ok, err := s.Rotate("process", name); err != nil {
			t.Error(err)
		} else if ok {
			rotations.Add(1)
		}
	})
	f := openWatched(t, s, g, "flood")

	dir := filepath.Dir(s.Path("process", "flood"))
	var peak atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // samples the store's size
		defer wg.Done()
		for {
			if n := dirBytes(dir); n > peak.Load() {
				peak.Store(n)
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()

	// 256 MiB at 100 MB/s, in 1 MiB writes.
	const total, rate = 256 << 20, 100e6
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = 'x'
	}
	start := time.Now()
	// One chunk per interval, never more to catch up: a stalled machine
	// slows the writer down with the guard instead of bursting.
	interval := time.Duration(float64(len(chunk)) / rate * float64(time.Second))
	next := start
	for written := 0; written < total; written += len(chunk) {
		time.Sleep(time.Until(next)) // pacing the writer, not waiting for a result
		next = time.Now().Add(interval)
		if _, err := f.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	took := time.Since(start)
	close(stop)
	wg.Wait()

	bound := (int64(s.Keep) + 1) * s.MaxBytes
	t.Logf("wrote %d MiB in %v (%.0f MB/s): store peak %.1f MiB (bound (Keep+1)*MaxBytes = %d MiB), %d checks, %d rotations",
		total>>20, took.Round(time.Millisecond), total/took.Seconds()/1e6, float64(peak.Load())/(1<<20), bound>>20, checks.Load(), rotations.Load())
	if rotations.Load() == 0 {
		t.Fatal("the guard never rotated the flooded file")
	}
	// Each file may run one check interval (up to 50 ms, 5 MB here) past
	// MaxBytes, and a rotation briefly holds its copy beside it; with room
	// for a loaded machine that is six times the bound. Without the guard
	// the whole 256 MiB would be there.
	if limit := 6 * bound; peak.Load() > limit {
		t.Fatalf("store peaked at %d MiB of the %d MiB flood, over %d MiB", peak.Load()>>20, total>>20, limit>>20)
	}
}

// A written file is checked; a file nobody writes and a forgotten file are
// not.
func TestGuardChecksWrittenFilesOnly(t *testing.T) {
	s := &Store{Root: t.TempDir()}
	var mu sync.Mutex
	checked := map[string]int{}
	g := startGuard(t, s, func(name string) {
		mu.Lock()
		checked[name]++
		mu.Unlock()
	})
	count := func(name string) int {
		mu.Lock()
		defer mu.Unlock()
		return checked[name]
	}
	open := map[string]*os.File{}
	for _, name := range []string{"busy", "quiet", "gone"} {
		f, err := s.Open("process", name)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		open[name] = f
		if err := g.Watch(name); err != nil {
			t.Fatal(err)
		}
		if err := g.Watch(name); err != nil { // again: harmless
			t.Fatal(err)
		}
	}
	if n := g.Watched(); n != 3 {
		t.Fatalf("Watched() = %d, want 3", n)
	}
	g.Forget("gone")
	open["gone"].WriteString("after forget\n")
	open["busy"].WriteString("one\n")
	waitfor.Within(t, waitTimeout, "busy checked", func() bool { return count("busy") == 1 })
	// Re-armed after the check: the next write is seen too.
	waitfor.Within(t, waitTimeout, "busy checked again", func() bool {
		open["busy"].WriteString("two\n")
		return count("busy") >= 2
	})
	if count("quiet") != 0 || count("gone") != 0 {
		t.Fatalf("checks %v: only the written, watched file is checked", checked)
	}
	if err := g.Watch("missing"); err == nil {
		t.Fatal("Watch of a file that does not exist succeeded")
	}
}

func TestNextDelay(t *testing.T) {
	for _, tc := range []struct {
		grew    int64
		elapsed time.Duration
		room    int64
		want    time.Duration
	}{
		{0, time.Second, 1 << 20, MaxCheckDelay},             // not growing
		{-5, time.Second, 1 << 20, MaxCheckDelay},            // rotated by someone else
		{100, time.Second, 1 << 20, MaxCheckDelay},           // slow
		{10 << 20, 100 * time.Millisecond, 0, MinCheckDelay}, // already over
		{10 << 20, 100 * time.Millisecond, 5 << 20, 50 * time.Millisecond},
		{100 << 20, 100 * time.Millisecond, 1 << 20, MinCheckDelay},
	} {
		if got := nextDelay(tc.grew, tc.elapsed, tc.room); got != tc.want {
			t.Errorf("nextDelay(%d, %v, %d) = %v, want %v", tc.grew, tc.elapsed, tc.room, got, tc.want)
		}
	}
}

// After an inotify queue overflow (events lost, one-shot watches among
// them) every file is watched again.
func TestGuardRearmsAfterOverflow(t *testing.T) {
	s := &Store{Root: t.TempDir()}
	var checks atomic.Int64
	g := startGuard(t, s, func(string) { checks.Add(1) })
	f := openWatched(t, s, g, "p")
	// The kernel fired and removed the one-shot watch, but the event was
	// lost in an overflow.
	g.mu.Lock()
	wd := g.byName["p"].wd
	unix.InotifyRmWatch(g.fd, uint32(wd))
	g.mu.Unlock()
	waitfor.Within(t, waitTimeout, "the removal seen", func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.byName["p"].wd == -1
	})
	g.event(-1, unix.IN_Q_OVERFLOW)
	f.WriteString("after the overflow\n")
	waitfor.Within(t, waitTimeout, "the write after the overflow checked", func() bool { return checks.Load() == 1 })
}

// Watching a file again after its one-shot watch fired, before the event
// was read, checks the file: that event is lost with the old watch.
func TestGuardWatchAgainAfterUnreadEvent(t *testing.T) {
	s := &Store{Root: t.TempDir()}
	var checks atomic.Int64
	g, err := NewGuard(s, "process", func(string) { checks.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close() // no Run: the events stay unread
	f := openWatched(t, s, g, "p")
	f.WriteString("fires the one-shot watch\n")
	if err := g.Watch("p"); err != nil { // as on a restart of the program
		t.Fatal(err)
	}
	waitfor.Within(t, waitTimeout, "the file checked", func() bool { return checks.Load() == 1 })
}

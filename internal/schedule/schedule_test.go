// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package schedule

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reconciled/reconciled/test/fixtures/waitfor"
)

// counter counts runs per name.
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func newCounter() *counter { return &counter{n: make(map[string]int)} }

func (c *counter) inc(name string) {
	c.mu.Lock()
	c.n[name]++
	c.mu.Unlock()
}

func (c *counter) get(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[name]
}

// start runs s until the test ends and checks that Start returns.
func start(t testing.TB, s *Scheduler) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Start(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Start did not return after its context was cancelled")
		}
	})
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	waitfor.Within(t, timeout, what, cond)
}

// waitTicks waits until the 10ms "clock" name has run n more times; it
// measures time in scheduler runs, so a loaded machine slows both sides.
func waitTicks(t *testing.T, c *counter, n int) {
	t.Helper()
	target := c.get("clock") + n
	eventually(t, 20*time.Second, fmt.Sprintf("%d clock ticks", n), func() bool { return c.get("clock") >= target })
}

func TestRates(t *testing.T) {
	c := newCounter()
	s := New(4, c.inc)
	intervals := map[string]time.Duration{"a": 20 * time.Millisecond, "b": 30 * time.Millisecond, "c": 50 * time.Millisecond}
	for name, iv := range intervals {
		s.Set(name, iv)
	}
	begin := time.Now()
	start(t, s)
	eventually(t, 20*time.Second, "50 runs of a", func() bool { return c.get("a") >= 50 })
	elapsed := time.Since(begin)
	for name, iv := range intervals {
		got := c.get(name)
		want := float64(elapsed) / float64(iv)
		t.Logf("%s every %v: %d runs in %v (ideal %.1f)", name, iv, got, elapsed.Round(time.Millisecond), want)
		if float64(got) < 0.5*want-2 || float64(got) > want+2 {
			t.Errorf("%s: %d runs in %v, want about %.1f", name, got, elapsed, want)
		}
	}
}

func TestRemoveStopsRuns(t *testing.T) {
	c := newCounter()
	s := New(4, c.inc)
	s.Set("clock", 10*time.Millisecond)
	s.Set("gone", 10*time.Millisecond)
	start(t, s)
	eventually(t, 20*time.Second, "3 runs of gone", func() bool { return c.get("gone") >= 3 })
	s.Remove("gone")
	s.Remove("never-registered")
	if n := s.Len(); n != 1 {
		t.Errorf("Len = %d after Remove, want 1", n)
	}
	waitTicks(t, c, 3) // a run in progress at Remove has finished
	after := c.get("gone")
	waitTicks(t, c, 15)
	if got := c.get("gone"); got != after {
		t.Errorf("gone ran %d times after Remove", got-after)
	}
}

func TestSetUpdatesInterval(t *testing.T) {
	c := newCounter()
	s := New(4, c.inc)
	s.Set("clock", 10*time.Millisecond)
	s.Set("a", time.Hour)
	s.Set("a", 10*time.Millisecond) // not run yet: first run re-drawn within 10ms
	start(t, s)
	eventually(t, 20*time.Second, "10 runs of a", func() bool { return c.get("a") >= 10 })

	s.Set("a", time.Hour) // next run an hour after the last due time
	waitTicks(t, c, 2)
	slowed := c.get("a")
	waitTicks(t, c, 15)
	if got := c.get("a"); got != slowed {
		t.Errorf("a ran %d times after its interval became 1h", got-slowed)
	}

	s.Set("a", 20*time.Millisecond) // previous due + 20ms is past: run at once
	eventually(t, 20*time.Second, "a to run again", func() bool { return c.get("a") >= slowed+3 })
}

func TestSetSameIntervalKeepsSchedule(t *testing.T) {
	s := New(1, func(string) {})
	s.Set("b", time.Hour)
	due := func() time.Time {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.entries["b"].due
	}
	first := due()
	for range 10 {
		s.Set("b", time.Hour)
	}
	if got := due(); !got.Equal(first) {
		t.Errorf("Set with the same interval moved the due time from %v to %v", first, got)
	}
	if s.Len() != 1 {
		t.Errorf("Len = %d, want 1", s.Len())
	}
}

func TestConcurrencyBound(t *testing.T) {
	const limit = 3
	var inflight, peak, total atomic.Int64
	s := New(limit, func(string) {
		n := inflight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(2 * time.Millisecond) // the work itself
		inflight.Add(-1)
		total.Add(1)
	})
	for i := range 50 {
		s.Set(fmt.Sprintf("n%d", i), 5*time.Millisecond)
	}
	start(t, s)
	eventually(t, 30*time.Second, "300 runs", func() bool { return total.Load() >= 300 })
	if p := peak.Load(); p != limit {
		t.Errorf("at most %d runs at a time, want exactly %d (saturated pool)", p, limit)
	}
}

func TestSkipWhenBusy(t *testing.T) {
	c := newCounter()
	var busyInflight, busyPeak atomic.Int64
	started := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	s := New(4, func(name string) {
		c.inc(name)
		if name != "busy" {
			return
		}
		if n := busyInflight.Add(1); n > busyPeak.Load() {
			busyPeak.Store(n)
		}
		defer busyInflight.Add(-1)
		first := false
		once.Do(func() { first = true; close(started) })
		if first {
			<-release
		}
	})
	s.Set("clock", 10*time.Millisecond)
	s.Set("busy", 10*time.Millisecond)
	start(t, s)
	select {
	case <-started:
	case <-time.After(20 * time.Second):
		t.Fatal("busy never ran")
	}
	waitTicks(t, c, 30) // some 30 occurrences of busy come due meanwhile
	if got := c.get("busy"); got != 1 {
		t.Errorf("busy ran %d times while its first run was in progress, want 1", got)
	}
	s.mu.Lock()
	skipped := s.skipped
	s.mu.Unlock()
	if skipped < 10 {
		t.Errorf("skipped %d occurrences, want about 30", skipped)
	}

	close(release)
	busy0, clock0 := c.get("busy"), c.get("clock")
	waitTicks(t, c, 10)
	// Skipped occurrences were not queued: busy runs at the clock's pace
	// instead of catching up ~30 runs.
	if db, dc := c.get("busy")-busy0, c.get("clock")-clock0; db > dc+3 {
		t.Errorf("after release busy ran %d times while clock ran %d: skipped runs were queued", db, dc)
	}
	if p := busyPeak.Load(); p != 1 {
		t.Errorf("busy ran %d times concurrently", p)
	}
}

func TestGoroutinesDoNotGrowWithNames(t *testing.T) {
	const concurrency = 4
	base := runtime.NumGoroutine()
	var busy atomic.Bool
	s := New(concurrency, func(string) {
		if busy.Load() {
			time.Sleep(time.Millisecond)
		}
	})
	start(t, s)
	for i := range 10000 {
		s.Set(fmt.Sprintf("link-%d", i), time.Hour)
	}
	if n := s.Len(); n != 10000 {
		t.Fatalf("Len = %d, want 10000", n)
	}
	// Nothing due yet: no workers, only Start's goroutine.
	if n := runtime.NumGoroutine(); n >= base+5 {
		t.Errorf("%d goroutines with 10,000 names and nothing due, base %d, want < %d", n, base, base+5)
	}
	// Everything due often and slow to run: the pool grows to its bound
	// and no further.
	busy.Store(true)
	for i := range 10000 {
		s.Set(fmt.Sprintf("link-%d", i), 50*time.Millisecond)
	}
	eventually(t, 10*time.Second, "workers to start", func() bool { return runtime.NumGoroutine() >= base+concurrency })
	if n := runtime.NumGoroutine(); n >= base+concurrency+5 {
		t.Errorf("%d goroutines with 10,000 busy names, base %d, want < %d", n, base, base+concurrency+5)
	}
}

func TestFirstRunJitter(t *testing.T) {
	const names = 1000
	var mu sync.Mutex
	first := make(map[string]time.Time, names)
	s := New(8, func(name string) {
		now := time.Now()
		mu.Lock()
		if _, ok := first[name]; !ok {
			first[name] = now
		}
		mu.Unlock()
	})
	start(t, s)
	t0 := time.Now()
	for i := range names {
		s.Set(fmt.Sprintf("link-%d", i), time.Second)
	}
	eventually(t, 20*time.Second, "every name's first run", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(first) == names
	})

	mu.Lock()
	offsets := make([]time.Duration, 0, names)
	for _, at := range first {
		offsets = append(offsets, at.Sub(t0))
	}
	mu.Unlock()
	slices.Sort(offsets)
	peak, j := 0, 0
	for i := range offsets {
		for offsets[j] < offsets[i]-100*time.Millisecond {
			j++
		}
		peak = max(peak, i-j+1)
	}
	span := offsets[len(offsets)-1] - offsets[0]
	t.Logf("first runs over %v; busiest 100ms window holds %d of %d", span.Round(time.Millisecond), peak, names)
	// Uniform over 1s puts ~100 (10%) in a 100ms window; allow for a
	// loaded machine delaying runs.
	if peak > names/4 {
		t.Errorf("%d of %d first runs within 100ms, want them spread over the interval", peak, names)
	}
	if span < 600*time.Millisecond {
		t.Errorf("first runs span only %v of the 1s interval", span)
	}
}

func TestLateness(t *testing.T) {
	var calls atomic.Int64
	var negative atomic.Bool
	s := New(2, func(string) {})
	s.OnLateness(func(late time.Duration) {
		if late < 0 {
			negative.Store(true)
		}
		calls.Add(1)
	})
	s.Set("a", 10*time.Millisecond)
	start(t, s)
	eventually(t, 20*time.Second, "lateness reports", func() bool { return calls.Load() >= 5 })
	if negative.Load() {
		t.Error("a run started before it was due")
	}
}

func TestStartWaitsForRuns(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	var finished atomic.Bool
	var once sync.Once
	s := New(2, func(string) {
		once.Do(func() {
			close(entered)
			<-release
			finished.Store(true)
		})
	})
	s.Set("a", time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	var finishedAtReturn atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Start(ctx)
		finishedAtReturn.Store(finished.Load())
	}()
	<-entered
	cancel()
	// Give a Start that does not wait a chance to return early.
	select {
	case <-done:
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Start did not return")
	}
	if !finishedAtReturn.Load() {
		t.Error("Start returned while a run was in progress")
	}
}

func TestNextDue(t *testing.T) {
	base := time.Unix(1000, 0)
	iv := 10 * time.Second
	for _, tc := range []struct {
		late time.Duration
		want time.Duration // after base
	}{
		{0, 10 * time.Second},
		{3 * time.Second, 10 * time.Second},
		{10 * time.Second, 20 * time.Second},
		{25 * time.Second, 30 * time.Second},
	} {
		if got := nextDue(base, iv, base.Add(tc.late)).Sub(base); got != tc.want {
			t.Errorf("late %v: next due +%v, want +%v", tc.late, got, tc.want)
		}
	}
}

// BenchmarkSchedule10k runs 10,000 names every 10ms for one second per
// iteration and reports the run rate and the 99th percentile lateness.
func BenchmarkSchedule10k(b *testing.B) {
	const names = 10000
	var runs atomic.Int64
	samples := make([]time.Duration, 8<<20)
	var nSamples atomic.Int64
	var elapsed time.Duration
	for i := 0; i < b.N; i++ {
		s := New(4*runtime.GOMAXPROCS(0), func(string) { runs.Add(1) })
		s.OnLateness(func(late time.Duration) {
			if k := nSamples.Add(1) - 1; k < int64(len(samples)) {
				samples[k] = late
			}
		})
		for n := range names {
			s.Set(fmt.Sprintf("link-%d", n), 10*time.Millisecond)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		begin := time.Now()
		s.Start(ctx)
		elapsed += time.Since(begin)
		cancel()
	}
	got := samples[:min(nSamples.Load(), int64(len(samples)))]
	slices.Sort(got)
	var p99 time.Duration
	if len(got) > 0 {
		p99 = got[len(got)*99/100]
	}
	b.ReportMetric(float64(runs.Load())/elapsed.Seconds(), "runs/s")
	b.ReportMetric(float64(p99)/float64(time.Millisecond), "p99-late-ms")
}

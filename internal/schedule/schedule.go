// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package schedule runs a function for many names, each at its own
// interval, from one goroutine and one timer.
//
// The Scheduler keeps a min-heap of due times. Its loop pops what is due and
// hands it to a pool of worker goroutines that grows on demand up to
// `concurrency` and shrinks when idle, so the number of goroutines does not
// grow with the number of names and at most `concurrency` runs are in
// progress. A new name first runs after a random delay within its interval,
// so thousands of names added at once spread over the interval instead of
// running in a burst. An occurrence that comes due while the previous run of
// the same name is still in progress is skipped, not queued.
//
// The loop wakes at most once per Resolution: everything due by then runs
// together. With 10,000 names every 10 s that is 100 wake-ups a second
// instead of 1,000, and each run starts at most Resolution late.
package schedule

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reconciled/reconciled/internal/timerheap"
)

// maxBatch is how many due runs the loop takes per lock acquisition.
const maxBatch = 64

// workerIdle is how long a worker waits for a run before it leaves.
const workerIdle = 30 * time.Second

// Resolution is the shortest time between two wake-ups of the loop.
const Resolution = 10 * time.Millisecond

// Scheduler runs fn(name) for every registered name once per its interval.
// Set, Remove, Len and OnLateness are safe for concurrent use, also while
// Start runs.
type Scheduler struct {
	run         func(name string)
	concurrency int

	mu      sync.Mutex
	entries map[string]*entry
	queue   *timerheap.Heap[*entry] // by due time
	skipped int64                   // occurrences skipped because the name was still running

	wake    chan struct{} // the earliest due time moved earlier
	spawn   func()        // starts a worker if runs wait (set by Start)
	onLate  atomic.Pointer[func(time.Duration)]
	started atomic.Bool
}

// entry is one registered name.
type entry struct {
	name     string
	interval time.Duration
	due      time.Time // next occurrence
	index    int       // position in the heap
	hadDue   bool      // an occurrence came due already (run or skipped)
	running  atomic.Bool
	removed  atomic.Bool
}

// job is one run handed to a worker.
type job struct {
	e   *entry
	due time.Time
}

// New returns a scheduler that calls run at most concurrency at a time, each
// call on a worker goroutine from a fixed pool; a concurrency below 1 means 1.
// run must not be nil.
func New(concurrency int, run func(name string)) *Scheduler {
	if run == nil {
		panic("schedule: nil run function")
	}
	return &Scheduler{
		run:         run,
		concurrency: max(concurrency, 1),
		entries:     make(map[string]*entry),
		queue:       timerheap.New(func(a, b *entry) bool { return a.due.Before(b.due) }, func(e *entry) *int { return &e.index }),
		wake:        make(chan struct{}, 1),
	}
}

// Set registers or updates name with interval, which must be positive (Set
// panics otherwise, like time.NewTicker).
//
// A new name first runs after a random delay in [0, interval). Set with the
// same interval is a no-op and does not reset the schedule. An updated
// interval takes effect from the next run: the next run is due one new
// interval after the previous due time (or at once if that has passed); for a
// name that has not run yet, the first run is re-drawn within the new
// interval if it was due later than that.
func (s *Scheduler) Set(name string, interval time.Duration) {
	if interval <= 0 {
		panic("schedule: non-positive interval for " + name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	e, ok := s.entries[name]
	switch {
	case !ok:
		e = &entry{name: name, interval: interval, due: now.Add(jitter(interval)), index: -1}
		s.entries[name] = e
		s.queue.Set(e)
	case e.interval == interval:
		return
	default:
		old := e.interval
		e.interval = interval
		switch {
		case e.hadDue:
			// e.due - old is the previous due time.
			e.due = e.due.Add(interval - old)
			if e.due.Before(now) {
				e.due = now
			}
		case e.due.Sub(now) > interval:
			e.due = now.Add(jitter(interval))
		}
		s.queue.Set(e)
	}
	if e.index == 0 {
		s.signal()
	}
}

// Remove unregisters name; a run in progress finishes, no new one starts.
// Removing an unknown name does nothing.
func (s *Scheduler) Remove(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[name]
	if !ok {
		return
	}
	delete(s.entries, name)
	e.removed.Store(true)
	s.queue.Remove(e)
}

// Len returns the number of registered names.
func (s *Scheduler) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}

// OnLateness sets fn to be called for every run, on the worker just before
// the run, with how late it started versus its due time (actual start -
// due); it feeds the jitter metric. fn must be fast and safe for concurrent
// use; nil removes it.
func (s *Scheduler) OnLateness(fn func(late time.Duration)) {
	if fn == nil {
		s.onLate.Store(nil)
		return
	}
	s.onLate.Store(&fn)
}

// Start runs the scheduler until ctx is done. It blocks, and returns after
// the runs in progress have finished. Names may be set before Start. Start
// must not be called again while it runs (it panics); it may be called again
// after it returned.
func (s *Scheduler) Start(ctx context.Context) {
	if !s.started.CompareAndSwap(false, true) {
		panic("schedule: Start called while running")
	}
	defer s.started.Store(false)

	// Buffered, so the loop drops a batch and goes back to sleep instead of
	// waiting for a worker to take each run.
	work := make(chan job, s.concurrency)
	var wg sync.WaitGroup
	// Workers start when runs wait and none is idle, up to concurrency,
	// and leave after a while without work: no Links, no goroutines.
	var workers, idle atomic.Int32
	spawn := func() {
		workers.Add(1)
		wg.Go(func() {
			defer workers.Add(-1)
			t := time.NewTimer(workerIdle)
			defer t.Stop()
			for {
				idle.Add(1)
				select {
				case j, ok := <-work:
					idle.Add(-1)
					if !ok {
						return
					}
					s.execute(j)
					t.Reset(workerIdle)
				case <-t.C:
					idle.Add(-1)
					// Leave only if nothing is waiting (the loop saw us idle).
					if len(work) > 0 {
						t.Reset(workerIdle)
						continue
					}
					return
				}
			}
		})
	}
	// After each hand-off: more runs waiting than idle workers to take
	// them means another worker (the idle count may be a moment stale;
	// erring means one worker too many, never a run left waiting).
	s.spawn = func() {
		if len(work) > int(idle.Load()) && int(workers.Load()) < s.concurrency {
			spawn()
		}
	}
	s.loop(ctx, work)
	close(work)
	wg.Wait()
}

// loop hands due runs to the workers until ctx is done.
func (s *Scheduler) loop(ctx context.Context, work chan<- job) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	batch := make([]job, 0, maxBatch)
	for {
		var wait time.Duration
		woke := time.Now()
		batch, wait = s.collect(batch[:0], woke)
		for i, j := range batch {
			select {
			case work <- j:
				s.spawn()
			case <-ctx.Done():
				for _, j := range batch[i:] {
					j.e.running.Store(false)
				}
				return
			}
		}
		if len(batch) > 0 {
			continue // more may have come due meanwhile
		}
		if wait >= 0 {
			timer.Reset(max(wait, Resolution-time.Since(woke)))
		} else {
			timer.Stop()
		}
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-s.wake:
		}
	}
}

// collect appends up to cap(batch) runs due at now, marking them running and
// moving each name to its next due time. It returns how long until the next
// due time, or -1 when no name is registered.
func (s *Scheduler) collect(batch []job, now time.Time) ([]job, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(batch) < cap(batch) {
		e, ok := s.queue.Peek()
		if !ok {
			break
		}
		if e.due.After(now) {
			return batch, e.due.Sub(now)
		}
		due := e.due
		e.hadDue = true
		e.due = nextDue(due, e.interval, now)
		s.queue.Set(e)
		if e.running.Load() {
			s.skipped++ // do not queue up behind a run in progress
			continue
		}
		e.running.Store(true)
		batch = append(batch, job{e: e, due: due})
	}
	if s.queue.Len() == 0 {
		return batch, -1
	}
	return batch, 0
}

// execute performs one run on a worker.
func (s *Scheduler) execute(j job) {
	defer j.e.running.Store(false)
	if j.e.removed.Load() {
		return
	}
	if fn := s.onLate.Load(); fn != nil {
		(*fn)(time.Since(j.due))
	}
	s.run(j.e.name)
}

// signal wakes the loop without blocking.
func (s *Scheduler) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// nextDue is due+interval, skipped ahead by whole intervals so that it is
// after now; it keeps the phase of due so runs do not drift.
func nextDue(due time.Time, interval time.Duration, now time.Time) time.Time {
	next := due.Add(interval)
	if next.After(now) {
		return next
	}
	return due.Add((now.Sub(due)/interval + 1) * interval)
}

// jitter returns a random delay in [0, interval).
func jitter(interval time.Duration) time.Duration {
	return rand.N(interval)
}

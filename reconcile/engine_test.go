// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package reconcile_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/google/go-cmp/cmp"

	"github.com/reconciled/reconciled/reconcile"
)

// TestDedup: a name enqueued many times while it waits is reconciled once;
// enqueued while it is being reconciled, it is reconciled exactly once more.
func TestDedup(t *testing.T) {
	tests := map[string]struct {
		blocker   string   // name whose first reconcile blocks the only worker
		hammered  string   // name enqueued 100 times while blocker blocks
		wantLen   int      // queue length after the 100 enqueues
		wantCalls []string // every reconcile, in order, up to the sentinel
	}{
		"while another name is being reconciled": {
			blocker: "blocker", hammered: "x", wantLen: 1,
			wantCalls: []string{"blocker", "x", "end"},
		},
		"while the same name is being reconciled": {
			blocker: "x", hammered: "x", wantLen: 0,
			wantCalls: []string{"x", "x", "end"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			entered, release := make(chan struct{}), make(chan struct{})
			f := &fakeReconciler{fn: func(ctx context.Context, req reconcile.Request, n int) (reconcile.Result, error) {
				if req.Name == tc.blocker && n == 1 {
					close(entered)
					select {
					case <-release:
					case <-ctx.Done():
					}
				}
				return reconcile.Result{}, nil
			}}
			e, _ := newEngine(t, reconcile.Options{})
			// One worker: the queue is FIFO, so the order of calls is exact.
			c := mustRegister(t, e, "K", f, reconcile.ControllerOptions{MaxConcurrentReconciles: 1})
			startEngine(t, e)

			c.Enqueue(tc.blocker)
			recv(t, "blocker to start", entered)
			for range 100 {
				c.Enqueue(tc.hammered)
			}
			if got := c.Len(); got != tc.wantLen {
				t.Errorf("Len() after 100 enqueues = %d, want %d", got, tc.wantLen)
			}
			close(release)
			f.waitFinished(t, tc.hammered, countOf(tc.wantCalls, tc.hammered))
			// A sentinel enqueued after the expected calls: with one FIFO
			// worker, once it has run, any surplus reconcile of the
			// hammered name queued before it has run too.
			c.Enqueue("end")
			f.waitFinished(t, "end", 1)
			if diff := cmp.Diff(tc.wantCalls, f.names()); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
		})
	}
}

// TestNoConcurrentReconcileOfOneKey hammers Enqueue of a few hot keys from
// many goroutines and checks that no key is ever reconciled by two workers
// at once, while different keys do run in parallel.
//
// Why it catches a broken queue: with W workers and K < W hot keys kept
// permanently queued by the hammering goroutines, a queue that did not
// exclude keys being processed would keep all W workers busy, and W busy
// workers over K keys means two share a key (pigeonhole) for the 1ms each
// reconcile lasts, so the per-key maximum would reach 2. The "keys==1" and
// "more keys than workers" cases bound the global maximum too.
func TestNoConcurrentReconcileOfOneKey(t *testing.T) {
	tests := map[string]struct {
		workers, keys int
	}{
		"8 workers, 4 hot keys":        {workers: 8, keys: 4},
		"8 workers, 1 hot key":         {workers: 8, keys: 1},
		"3 workers, more keys (6) hot": {workers: 3, keys: 6},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			keys := make([]string, tc.keys)
			inflight := map[string]*atomic.Int32{}
			maxPerKey := map[string]*atomic.Int32{}
			firstSeen := map[string]*atomic.Bool{}
			for i := range keys {
				keys[i] = fmt.Sprintf("key-%d", i)
				inflight[keys[i]], maxPerKey[keys[i]], firstSeen[keys[i]] = new(atomic.Int32), new(atomic.Int32), new(atomic.Bool)
			}
			var global, maxGlobal atomic.Int32
			var draining atomic.Bool
			drained := make(map[string]chan struct{}, len(keys))
			for _, k := range keys {
				drained[k] = make(chan struct{})
			}
			drainedOnce := map[string]*sync.Once{}
			for _, k := range keys {
				drainedOnce[k] = new(sync.Once)
			}
			wantParallel := tc.keys > 1 && tc.workers > 1
			barrierDeadline := time.Now().Add(waitTimeout)

			f := &fakeReconciler{fn: func(ctx context.Context, req reconcile.Request, n int) (reconcile.Result, error) {
				k := req.Name
				if draining.Load() {
					drainedOnce[k].Do(func() { close(drained[k]) })
				}
				storeMax(maxPerKey[k], inflight[k].Add(1))
				storeMax(&maxGlobal, global.Add(1))
				defer inflight[k].Add(-1)
				defer global.Add(-1)
				// The first reconcile of each key waits (bounded) until
				// some other key is in flight too, so that "keys run in
				// parallel" does not depend on lucky scheduling. A serial
				// engine never gets there and fails the check below.
				if wantParallel && firstSeen[k].CompareAndSwap(false, true) {
					for maxGlobal.Load() < 2 && time.Now().Before(barrierDeadline) && ctx.Err() == nil {
						time.Sleep(100 * time.Microsecond)
					}
				}
				time.Sleep(time.Millisecond) // simulated work, widens any overlap
				return reconcile.Result{}, nil
			}}
			e, _ := newEngine(t, reconcile.Options{})
			c := mustRegister(t, e, "K", f, reconcile.ControllerOptions{MaxConcurrentReconciles: tc.workers})
			stop := startEngine(t, e)

			var wg sync.WaitGroup
			for g := range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range 200 {
						c.Enqueue(keys[(g+i)%len(keys)])
					}
				}()
			}
			wg.Wait()
			// Every reconcile that starts after this Enqueue sees
			// draining; the queue guarantees one such reconcile per key.
			draining.Store(true)
			for _, k := range keys {
				c.Enqueue(k)
			}
			for _, k := range keys {
				recv(t, "final reconcile of "+k, drained[k])
			}
			stop() // waits for every running reconcile

			gotPerKey := map[string]int32{}
			wantPerKey := map[string]int32{}
			for _, k := range keys {
				gotPerKey[k], wantPerKey[k] = maxPerKey[k].Load(), 1
			}
			if diff := cmp.Diff(wantPerKey, gotPerKey); diff != "" {
				t.Errorf("max concurrent reconciles per key (-want +got):\n%s", diff)
			}
			if got, limit := maxGlobal.Load(), int32(min(tc.keys, tc.workers)); got > limit {
				t.Errorf("max concurrent reconciles = %d, want <= %d (min(keys, workers))", got, limit)
			}
			if got := maxGlobal.Load(); wantParallel && got < 2 {
				t.Errorf("max concurrent reconciles across keys = %d, want >= 2", got)
			}
		})
	}
}

func storeMax(m *atomic.Int32, v int32) {
	for {
		cur := m.Load()
		if v <= cur || m.CompareAndSwap(cur, v) {
			return
		}
	}
}

// TestErrorBackoff: an error requeues with the per-item exponential rate
// limiter, and a success forgets the item so its next error starts again
// from the base delay.
func TestErrorBackoff(t *testing.T) {
	boom := errors.New("boom")
	tests := map[string]struct {
		failures int
		err      error
	}{
		"plain error, 6 failures":   {failures: 6, err: boom},
		"wrapped error, 5 failures": {failures: 5, err: fmt.Errorf("reading: %w", boom)},
	}
	const base = 10 * time.Millisecond
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			// Calls 1..failures fail, failures+1 succeeds; after a fresh
			// Enqueue, call failures+2 fails once more and failures+3
			// succeeds.
			f := &fakeReconciler{fn: func(ctx context.Context, req reconcile.Request, n int) (reconcile.Result, error) {
				if n <= tc.failures || n == tc.failures+2 {
					return reconcile.Result{}, tc.err
				}
				return reconcile.Result{}, nil
			}}
			rl := newRecordingLimiter(base, time.Second)
			e, reg := newEngine(t, reconcile.Options{})
			c := mustRegister(t, e, "K", f, reconcile.ControllerOptions{MaxConcurrentReconciles: 1, RateLimiter: rl})
			stop := startEngine(t, e)

			c.Enqueue("obj")
			f.waitFinished(t, "obj", tc.failures+1)
			eventually(t, "success to forget the item", func() bool { return strings.HasSuffix(strings.Join(rl.snapshot(), " "), "obj:forget") })
			c.Enqueue("obj")
			f.waitFinished(t, "obj", tc.failures+3)
			eventually(t, "second success to forget the item", func() bool { return len(rl.snapshot()) == tc.failures+3 })
			stop()

			var want []string
			for i := range tc.failures {
				want = append(want, fmt.Sprintf("obj:when=%v", base<<i))
			}
			// After the success the item starts again from the base delay.
			want = append(want, "obj:forget", fmt.Sprintf("obj:when=%v", base), "obj:forget")
			if diff := cmp.Diff(want, rl.snapshot()); diff != "" {
				t.Errorf("rate limiter use (-want +got):\n%s", diff)
			}

			// Wall clock: the gap after failure i is at least the delay
			// the limiter chose, base*2^i, so the gaps' floor doubles.
			// This is the lenient form of "each gap >= previous*1.5":
			// comparing with the observed previous gap would flake,
			// since scheduling delay only ever lengthens a gap.
			calls := f.snapshot()
			var gaps []time.Duration
			for i := 1; i <= tc.failures; i++ {
				gap := calls[i].Start.Sub(calls[i-1].End)
				gaps = append(gaps, gap)
				if floor := base << (i - 1); gap < floor {
					t.Errorf("gap before call %d = %v, want >= %v", i+1, gap, floor)
				}
			}
			if last := gaps[len(gaps)-1]; last < 3*gaps[0]/2 {
				t.Errorf("gaps %v do not grow: last %v < 1.5 * first %v", gaps, last, gaps[0])
			}
			if gap, floor := calls[tc.failures+2].Start.Sub(calls[tc.failures+1].End), base; gap < floor {
				t.Errorf("gap after the re-enqueued failure = %v, want >= %v", gap, floor)
			}
			checkTotals(t, reg, map[string]map[string]float64{"K": {reconcile.ResultError: float64(tc.failures + 1), reconcile.ResultSuccess: 2}})
		})
	}
}

// TestErrorIgnoresResult: with a non-nil error the Result is ignored and
// the item is retried with backoff, not after RequeueAfter.
func TestErrorIgnoresResult(t *testing.T) {
	f := &fakeReconciler{fn: func(ctx context.Context, req reconcile.Request, n int) (reconcile.Result, error) {
		if n == 1 {
			return reconcile.Result{RequeueAfter: time.Hour}, errors.New("boom")
		}
		return reconcile.Result{}, nil
	}}
	rl := newRecordingLimiter(time.Millisecond, time.Second)
	e, reg := newEngine(t, reconcile.Options{})
	c := mustRegister(t, e, "K", f, reconcile.ControllerOptions{RateLimiter: rl})
	stop := startEngine(t, e)
	c.Enqueue("obj")
	f.waitFinished(t, "obj", 2)
	stop()
	if diff := cmp.Diff([]string{"obj:when=1ms", "obj:forget"}, rl.snapshot()); diff != "" {
		t.Errorf("rate limiter use (-want +got):\n%s", diff)
	}
	checkTotals(t, reg, map[string]map[string]float64{"K": {reconcile.ResultError: 1, reconcile.ResultSuccess: 1}})
}

// TestTerminalError: a TerminalError is counted and logged but not retried;
// a later Enqueue reconciles the object again.
func TestTerminalError(t *testing.T) {
	tests := map[string]struct {
		err error
	}{
		"Terminal":         {err: reconcile.Terminal(errors.New("bad spec"))},
		"wrapped Terminal": {err: fmt.Errorf("validating: %w", reconcile.Terminal(errors.New("bad spec")))},
		"TerminalError":    {err: &reconcile.TerminalError{Err: errors.New("bad spec")}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			again := make(chan int, 10)
			f := &fakeReconciler{fn: func(ctx context.Context, req reconcile.Request, n int) (reconcile.Result, error) {
				if req.Name != "obj" {
					return reconcile.Result{}, nil
				}
				if n > 1 {
					again <- n
				}
				return reconcile.Result{}, tc.err
			}}
			// A 1ms base: a regression that retried would do so at once.
			rl := newRecordingLimiter(time.Millisecond, time.Second)
			e, reg := newEngine(t, reconcile.Options{})
			c := mustRegister(t, e, "K", f, reconcile.ControllerOptions{MaxConcurrentReconciles: 1, RateLimiter: rl})
			startEngine(t, e)

			c.Enqueue("obj")
			f.waitFinished(t, "obj", 1)
			// One FIFO worker: once the sentinel has run, the engine has
			// finished handling obj's result, so the limiter shows any
			// immediate requeue (AddRateLimited) deterministically.
			c.Enqueue("sentinel")
			f.waitFinished(t, "sentinel", 1)
			if diff := cmp.Diff([]string{"obj:forget", "sentinel:forget"}, rl.snapshot()); diff != "" {
				t.Errorf("rate limiter use (-want +got):\n%s", diff)
			}
			// The one fixed observation window in this package: "never
			// called again" is an absence, with no event to wait for, and
			// a regression could requeue with a delay (AddAfter) that the
			// limiter does not see. 300ms is 300x the backoff base.
			select {
			case n := <-again:
				t.Fatalf("terminal error was retried (call %d)", n)
			case <-time.After(300 * time.Millisecond):
			}
			if got := f.finished("obj"); got != 1 {
				t.Errorf("obj reconciled %d times, want 1", got)
			}
			checkTotals(t, reg, map[string]map[string]float64{"K": {reconcile.ResultError: 1, reconcile.ResultSuccess: 1}})

			// Not retried does not mean ignored: a new event reconciles it.
			c.Enqueue("obj")
			if n := recv(t, "reconcile after a new Enqueue", again); n != 2 {
				t.Errorf("call number after re-enqueue = %d, want 2", n)
			}
		})
	}
}

// TestRequeueAfter: Result.RequeueAfter reconciles again no sooner than
// asked, counted as "requeue", without touching the error backoff.
func TestRequeueAfter(t *testing.T) {
	tests := map[string]struct {
		after time.Duration
	}{
		"50ms":  {after: 50 * time.Millisecond},
		"250ms": {after: 250 * time.Millisecond},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := &fakeReconciler{fn: func(ctx context.Context, req reconcile.Request, n int) (reconcile.Result, error) {
				if n == 1 {
					return reconcile.Result{RequeueAfter: tc.after}, nil
				}
				return reconcile.Result{}, nil
			}}
			rl := newRecordingLimiter(time.Millisecond, time.Second)
			e, reg := newEngine(t, reconcile.Options{})
			c := mustRegister(t, e, "K", f, reconcile.ControllerOptions{RateLimiter: rl})
			stop := startEngine(t, e)

			c.Enqueue("obj")
			f.waitFinished(t, "obj", 2)
			stop()
			calls := f.snapshot()
			if len(calls) != 2 {
				t.Fatalf("got %d calls, want 2: %+v", len(calls), calls)
			}
			// Only a lower bound: the upper one is the machine's load.
			if gap := calls[1].Start.Sub(calls[0].End); gap < tc.after {
				t.Errorf("requeued after %v, want >= %v", gap, tc.after)
			}
			if diff := cmp.Diff([]string{"obj:forget", "obj:forget"}, rl.snapshot()); diff != "" {
				t.Errorf("rate limiter use (-want +got):\n%s", diff)
			}
			checkTotals(t, reg, map[string]map[string]float64{"K": {reconcile.ResultRequeue: 1, reconcile.ResultSuccess: 1}})
		})
	}
}

// TestPanic: a panicking Reconcile becomes an error: logged, counted as
// "panic" and "error", retried with backoff, and the engine keeps going.
func TestPanic(t *testing.T) {
	tests := map[string]struct {
		value   any
		wantMsg string
	}{
		"string":    {value: "kaboom", wantMsg: "panic in reconcile: kaboom"},
		"error":     {value: errors.New("kaboom"), wantMsg: "panic in reconcile: kaboom"},
		"nil value": {value: nil, wantMsg: "panic in reconcile: panic called with nil argument"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			logs := &logSink{}
			f := &fakeReconciler{fn: func(ctx context.Context, req reconcile.Request, n int) (reconcile.Result, error) {
				if req.Name == "obj" && n == 1 {
					panic(tc.value)
				}
				return reconcile.Result{}, nil
			}}
			rl := newRecordingLimiter(time.Millisecond, time.Second)
			e, reg := newEngine(t, reconcile.Options{Log: logs.logger()})
			c := mustRegister(t, e, "K", f, reconcile.ControllerOptions{MaxConcurrentReconciles: 1, RateLimiter: rl})
			stop := startEngine(t, e)

			c.Enqueue("obj")
			f.waitFinished(t, "obj", 2)
			c.Enqueue("other")
			f.waitFinished(t, "other", 1)
			stop()

			if diff := cmp.Diff([]string{"obj", "obj", "other"}, f.names()); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"obj:when=1ms", "obj:forget", "other:forget"}, rl.snapshot()); diff != "" {
				t.Errorf("rate limiter use (-want +got):\n%s", diff)
			}
			checkTotals(t, reg, map[string]map[string]float64{"K": {reconcile.ResultPanic: 1, reconcile.ResultSuccess: 2}})
			var errs []string
			for _, l := range logs.lines(t) {
				if l["msg"] == "reconcile failed; retrying with backoff" {
					errs = append(errs, fmt.Sprint(l["error"]))
				}
			}
			if len(errs) != 1 || !strings.HasPrefix(errs[0], tc.wantMsg) {
				t.Errorf("error logs = %q, want one starting with %q", errs, tc.wantMsg)
			}
		})
	}
}

// TestMetrics: reconciled_reconcile_total counts one result per reconcile
// (two for a panic), and the duration histogram one sample per reconcile.
func TestMetrics(t *testing.T) {
	boom := errors.New("boom")
	type outcome struct {
		res   reconcile.Result
		err   error
		panic bool
	}
	tests := map[string]struct {
		// script[name] is what successive reconciles of name return;
		// past its end, a reconcile succeeds.
		script    map[string][]outcome
		want      map[string]float64
		wantCalls int
	}{
		"1 success": {
			script: map[string][]outcome{"a": nil},
			want:   map[string]float64{reconcile.ResultSuccess: 1}, wantCalls: 1,
		},
		"50 successes": {
			script: func() map[string][]outcome {
				m := map[string][]outcome{}
				for i := range 50 {
					m[fmt.Sprintf("obj-%d", i)] = nil
				}
				return m
			}(),
			want: map[string]float64{reconcile.ResultSuccess: 50}, wantCalls: 50,
		},
		"every result": {
			script: map[string][]outcome{
				"ok":       nil,
				"requeue":  {{res: reconcile.Result{RequeueAfter: time.Millisecond}}},
				"error":    {{err: boom}, {err: boom}},
				"terminal": {{err: reconcile.Terminal(boom)}},
				"panic":    {{panic: true}},
			},
			want: map[string]float64{
				reconcile.ResultSuccess: 4, // ok, requeue, error, panic
				reconcile.ResultRequeue: 1,
				reconcile.ResultError:   3, // 2 errors, terminal (a panic counts only as panic)
				reconcile.ResultPanic:   1,
			},
			wantCalls: 1 + 2 + 3 + 1 + 2,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := &fakeReconciler{fn: func(ctx context.Context, req reconcile.Request, n int) (reconcile.Result, error) {
				s := tc.script[req.Name]
				if n > len(s) {
					return reconcile.Result{}, nil
				}
				o := s[n-1]
				if o.panic {
					panic("scripted")
				}
				return o.res, o.err
			}}
			e, reg := newEngine(t, reconcile.Options{})
			c := mustRegister(t, e, "K", f, reconcile.ControllerOptions{
				MaxConcurrentReconciles: 4, RateLimiter: newRecordingLimiter(time.Millisecond, time.Second),
			})
			// Another kind, to check the labels keep kinds apart.
			mustRegister(t, e, "Other", &fakeReconciler{}, reconcile.ControllerOptions{})
			stop := startEngine(t, e)

			for n := range tc.script {
				c.Enqueue(n)
			}
			// Counters move after Reconcile returns: poll them, then stop
			// the engine (which waits for workers) and check for extras.
			eventually(t, "counters to reach their final values", func() bool {
				return cmp.Equal(withZeros(tc.want), totals(t, reg, "K"))
			})
			stop()
			checkTotals(t, reg, map[string]map[string]float64{"K": tc.want, "Other": nil})
			if got := gaugeOrCount(t, reg, "reconciled_reconcile_duration_seconds", "K"); got != float64(tc.wantCalls) {
				t.Errorf("duration samples = %v, want %d", got, tc.wantCalls)
			}
			if got := len(f.snapshot()); got != tc.wantCalls {
				t.Errorf("reconciles = %d, want %d", got, tc.wantCalls)
			}
		})
	}
}

func withZeros(m map[string]float64) map[string]float64 {
	out := map[string]float64{reconcile.ResultSuccess: 0, reconcile.ResultRequeue: 0, reconcile.ResultError: 0, reconcile.ResultPanic: 0}
	for k, v := range m {
		out[k] = v
	}
	return out
}

// TestDepthGauge: reconciled_workqueue_depth follows the waiting objects.
func TestDepthGauge(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	f := &fakeReconciler{fn: func(ctx context.Context, req reconcile.Request, n int) (reconcile.Result, error) {
		if req.Name == "blocker" {
			close(entered)
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return reconcile.Result{}, nil
	}}
	e, reg := newEngine(t, reconcile.Options{})
	c := mustRegister(t, e, "K", f, reconcile.ControllerOptions{MaxConcurrentReconciles: 1})
	startEngine(t, e)
	c.Enqueue("blocker")
	recv(t, "blocker to start", entered)
	for _, n := range []string{"a", "b", "c", "a"} {
		c.Enqueue(n)
	}
	if got := gaugeOrCount(t, reg, "reconciled_workqueue_depth", "K"); got != 3 {
		t.Errorf("depth with 3 waiting = %v, want 3", got)
	}
	close(release)
	f.waitFinished(t, "c", 1)
	eventually(t, "depth to drop to 0", func() bool { return gaugeOrCount(t, reg, "reconciled_workqueue_depth", "K") == 0 })
}

// TestRegister covers Register's errors and kind separation.
func TestRegister(t *testing.T) {
	tests := map[string]struct {
		setup   func(t *testing.T, e *reconcile.Engine)
		kind    string
		wantErr string
	}{
		"new kind": {
			setup: func(t *testing.T, e *reconcile.Engine) {
				mustRegister(t, e, "A", &fakeReconciler{}, reconcile.ControllerOptions{})
			},
			kind: "B",
		},
		"duplicate kind": {
			setup: func(t *testing.T, e *reconcile.Engine) {
				mustRegister(t, e, "A", &fakeReconciler{}, reconcile.ControllerOptions{})
			},
			kind:    "A",
			wantErr: "register A: already registered",
		},
		"after Start returned": {
			setup: func(t *testing.T, e *reconcile.Engine) {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				if err := e.Start(ctx); err != nil {
					t.Fatalf("Start: %v", err)
				}
			},
			kind:    "B",
			wantErr: "register B: engine already started",
		},
		"while running": {
			setup: func(t *testing.T, e *reconcile.Engine) {
				ran := make(chan struct{})
				c := mustRegister(t, e, "A", reconcile.Func(func(context.Context, reconcile.Request) (reconcile.Result, error) {
					close(ran)
					return reconcile.Result{}, nil
				}), reconcile.ControllerOptions{})
				c.Enqueue("x")
				startEngine(t, e)
				// A reconcile ran, so Start has marked the engine started.
				recv(t, "first reconcile", ran)
			},
			kind:    "B",
			wantErr: "register B: engine already started",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e, _ := newEngine(t, reconcile.Options{})
			tc.setup(t, e)
			c, err := e.Register(tc.kind, &fakeReconciler{}, reconcile.ControllerOptions{})
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if gotErr != tc.wantErr {
				t.Fatalf("Register(%q) error = %q, want %q", tc.kind, gotErr, tc.wantErr)
			}
			switch {
			case err != nil && c != nil:
				t.Errorf("Register(%q) returned a controller with an error", tc.kind)
			case err == nil && (c == nil || c.Kind() != tc.kind):
				t.Errorf("Register(%q) = %v, want a controller of that kind", tc.kind, c)
			}
		})
	}
}

// TestKindsAreSeparate: each kind's requests go to its own reconciler.
func TestKindsAreSeparate(t *testing.T) {
	e, _ := newEngine(t, reconcile.Options{})
	fa, fb := &fakeReconciler{}, &fakeReconciler{}
	ca := mustRegister(t, e, "A", fa, reconcile.ControllerOptions{MaxConcurrentReconciles: 1})
	cb := mustRegister(t, e, "B", fb, reconcile.ControllerOptions{MaxConcurrentReconciles: 1})
	startEngine(t, e)
	ca.Enqueue("x")
	ca.Enqueue("y")
	cb.Enqueue("x")
	fa.waitFinished(t, "y", 1)
	fb.waitFinished(t, "x", 1)
	ca.Enqueue("end")
	cb.Enqueue("end")
	fa.waitFinished(t, "end", 1)
	fb.waitFinished(t, "end", 1)
	got := map[string][]string{"A": fa.names(), "B": fb.names()}
	want := map[string][]string{"A": {"x", "y", "end"}, "B": {"x", "end"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("calls by kind (-want +got):\n%s", diff)
	}
}

// TestStartShutdown: Start returns once ctx is cancelled, after the
// reconciles running at that moment have returned, without starting the
// ones still waiting.
func TestStartShutdown(t *testing.T) {
	tests := map[string]struct {
		workers int
		queued  []string // enqueued after "running" has started
	}{
		"one in flight":                 {workers: 2},
		"one in flight, others waiting": {workers: 1, queued: []string{"b", "c", "d"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			entered := make(chan struct{})
			var completed atomic.Bool
			var sawErr atomic.Value
			f := &fakeReconciler{fn: func(ctx context.Context, req reconcile.Request, n int) (reconcile.Result, error) {
				if req.Name != "running" {
					return reconcile.Result{}, nil
				}
				close(entered)
				select {
				case <-ctx.Done():
					sawErr.Store(ctx.Err())
				case <-time.After(waitTimeout):
					return reconcile.Result{}, errors.New("ctx never cancelled")
				}
				// Simulated slow cleanup after cancel: an engine that
				// did not wait for it would return from Start first.
				time.Sleep(50 * time.Millisecond)
				completed.Store(true)
				return reconcile.Result{}, nil
			}}
			e, _ := newEngine(t, reconcile.Options{})
			c := mustRegister(t, e, "K", f, reconcile.ControllerOptions{MaxConcurrentReconciles: tc.workers})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- e.Start(ctx) }()

			c.Enqueue("running")
			recv(t, "reconcile to start", entered)
			for _, n := range tc.queued {
				c.Enqueue(n)
			}
			cancel()
			if err := recv(t, "Start to return after cancel", done); err != nil {
				t.Errorf("Start = %v, want nil", err)
			}
			if !completed.Load() {
				t.Error("Start returned before the in-flight reconcile completed")
			}
			if got, _ := sawErr.Load().(error); !errors.Is(got, context.Canceled) {
				t.Errorf("reconcile saw ctx.Err() = %v, want context.Canceled", got)
			}
			if diff := cmp.Diff([]string{"running"}, f.names()); diff != "" {
				t.Errorf("reconciles (-want +got):\n%s", diff)
			}
			// The queues are shut down: enqueueing is a harmless no-op.
			c.Enqueue("late")
			c.EnqueueAfter("late", time.Millisecond)
		})
	}
}

// TestStartNoControllers: Start with nothing registered still blocks until
// ctx is done.
func TestStartNoControllers(t *testing.T) {
	e, _ := newEngine(t, reconcile.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Start(ctx) }()
	cancel()
	if err := recv(t, "Start to return", done); err != nil {
		t.Errorf("Start = %v, want nil", err)
	}
}

// TestEnqueueAfter: EnqueueAfter reconciles no sooner than asked.
func TestEnqueueAfter(t *testing.T) {
	f := &fakeReconciler{}
	e, _ := newEngine(t, reconcile.Options{})
	c := mustRegister(t, e, "K", f, reconcile.ControllerOptions{})
	startEngine(t, e)
	const d = 100 * time.Millisecond
	start := time.Now()
	c.EnqueueAfter("obj", d)
	f.waitFinished(t, "obj", 1)
	if got := f.snapshot()[0].Start.Sub(start); got < d {
		t.Errorf("reconciled after %v, want >= %v", got, d)
	}
}

// logSink captures JSON log lines from a funcr logger.
type logSink struct {
	mu  sync.Mutex
	raw []string
}

func (s *logSink) logger() logr.Logger {
	return funcr.NewJSON(func(obj string) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.raw = append(s.raw, obj)
	}, funcr.Options{})
}

func (s *logSink) lines(t testing.TB) []map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, r := range s.raw {
		var m map[string]any
		if err := json.Unmarshal([]byte(r), &m); err != nil {
			t.Fatalf("log line %q: %v", r, err)
		}
		out = append(out, m)
	}
	return out
}

// TestContextLogger: the ctx given to Reconcile carries the engine's logger
// with kind, name and a distinct reconcileID.
func TestContextLogger(t *testing.T) {
	tests := map[string]struct {
		kind  string
		names []string
	}{
		"one object":   {kind: "Process", names: []string{"web"}},
		"two objects":  {kind: "Widget", names: []string{"a", "b/c"}},
		"same name x2": {kind: "Widget", names: []string{"a", "a"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			logs := &logSink{}
			discard := make(chan bool, len(tc.names))
			f := &fakeReconciler{fn: func(ctx context.Context, req reconcile.Request, n int) (reconcile.Result, error) {
				l := logr.FromContextOrDiscard(ctx)
				discard <- l.GetSink() == nil
				l.Info("inside", "call", n)
				return reconcile.Result{}, nil
			}}
			e, _ := newEngine(t, reconcile.Options{Log: logs.logger().WithName("controller")})
			c := mustRegister(t, e, tc.kind, f, reconcile.ControllerOptions{MaxConcurrentReconciles: 1})
			stop := startEngine(t, e)
			seen := map[string]int{}
			for _, n := range tc.names {
				c.Enqueue(n)
				// One at a time, so a repeated name is not deduplicated.
				seen[n]++
				f.waitFinished(t, n, seen[n])
			}
			stop()
			for range tc.names {
				if recv(t, "reconcile", discard) {
					t.Error("logr.FromContextOrDiscard(ctx) is the discard logger")
				}
			}

			type entry struct{ Logger, Kind, Name string }
			var got []entry
			ids := map[string]bool{}
			for _, l := range logs.lines(t) {
				if l["msg"] != "inside" {
					continue
				}
				got = append(got, entry{Logger: fmt.Sprint(l["logger"]), Kind: fmt.Sprint(l["kind"]), Name: fmt.Sprint(l["name"])})
				id, _ := l["reconcileID"].(string)
				if id == "" || ids[id] {
					t.Errorf("reconcileID %q missing or repeated", id)
				}
				ids[id] = true
			}
			var want []entry
			for _, n := range tc.names {
				want = append(want, entry{Logger: "controller", Kind: tc.kind, Name: n})
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("log entries from Reconcile (-want +got):\n%s", diff)
			}
		})
	}
}

func countOf(s []string, v string) int {
	n := 0
	for _, x := range s {
		if x == v {
			n++
		}
	}
	return n
}

// BenchmarkEngineThroughput enqueues b.N distinct keys for 4 workers with a
// trivial reconciler and measures until all have been reconciled.
func BenchmarkEngineThroughput(b *testing.B) {
	keys := make([]string, b.N)
	for i := range keys {
		keys[i] = fmt.Sprintf("obj-%d", i)
	}
	var n atomic.Int64
	all := make(chan struct{})
	r := reconcile.Func(func(context.Context, reconcile.Request) (reconcile.Result, error) {
		if n.Add(1) == int64(b.N) {
			close(all)
		}
		return reconcile.Result{}, nil
	})
	e, _ := newEngine(b, reconcile.Options{})
	c := mustRegister(b, e, "K", r, reconcile.ControllerOptions{MaxConcurrentReconciles: 4})
	startEngine(b, e)
	b.ReportAllocs()
	b.ResetTimer()
	for _, k := range keys {
		c.Enqueue(k)
	}
	select {
	case <-all:
	case <-time.After(time.Minute):
		b.Fatalf("only %d of %d reconciled", n.Load(), b.N)
	}
	b.StopTimer()
}

// TestStuckReportsLongReconciles: a reconcile that does not return shows
// in Stuck once it runs past the limit, and no longer once it returns
// (the liveness check of /healthz).
func TestStuckReportsLongReconciles(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	f := &fakeReconciler{fn: func(ctx context.Context, req reconcile.Request, n int) (reconcile.Result, error) {
		if req.Name == "hung" {
			close(entered)
			<-release
		}
		return reconcile.Result{}, nil
	}}
	e, _ := newEngine(t, reconcile.Options{})
	c := mustRegister(t, e, "K", f, reconcile.ControllerOptions{MaxConcurrentReconciles: 1})
	startEngine(t, e)
	c.Enqueue("hung")
	recv(t, "the reconcile to start", entered)
	if err := e.Stuck(time.Hour); err != nil {
		t.Errorf("Stuck(1h) right away: %v", err)
	}
	time.Sleep(20 * time.Millisecond) // past the limit below
	if err := e.Stuck(10 * time.Millisecond); err == nil || !strings.Contains(err.Error(), "K/hung") {
		t.Errorf("Stuck(10ms) = %v, want K/hung", err)
	}
	close(release)
	f.waitFinished(t, "hung", 1)
	if err := e.Stuck(10 * time.Millisecond); err != nil {
		t.Errorf("Stuck after it returned: %v", err)
	}
}

// typedKey is a key that is not a name, as the alert source's kind and
// name.
type typedKey struct{ Kind, Name string }

func (k typedKey) String() string { return k.Kind + "/" + k.Name }

// A controller with its own key type runs beside the kinds' controllers:
// same queue semantics (a key added while waiting runs once), metrics under
// its name, and its keys in Stuck.
func TestTypedController(t *testing.T) {
	var mu sync.Mutex
	got := map[typedKey]int{}
	block := make(chan struct{})
	e, reg := newEngine(t, reconcile.Options{})
	c, err := reconcile.Register(e, "alerts", reconcile.TypedFunc[typedKey](func(ctx context.Context, k typedKey) (reconcile.Result, error) {
		if k.Name == "slow" {
			<-block
		}
		mu.Lock()
		got[k]++
		mu.Unlock()
		return reconcile.Result{}, nil
	}), reconcile.TypedControllerOptions[typedKey]{MaxConcurrentReconciles: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reconcile.Register(e, "alerts", reconcile.TypedFunc[typedKey](nil), reconcile.TypedControllerOptions[typedKey]{}); err == nil {
		t.Fatal("a second controller named alerts was registered")
	}
	startEngine(t, e)
	c.Add(typedKey{"Link", "slow"})
	a := typedKey{"Link", "a"}
	c.Add(a)
	c.Add(a) // waiting already: runs once
	eventually(t, "the slow reconcile to be stuck", func() bool {
		err := e.Stuck(0)
		return err != nil && strings.Contains(err.Error(), "alerts/Link/slow")
	})
	close(block)
	eventually(t, "both keys reconciled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return got[a] == 1 && got[typedKey{"Link", "slow"}] == 1
	})
	if n := totals(t, reg, "alerts")[reconcile.ResultSuccess]; n != 2 {
		t.Errorf("reconciled_reconcile_total{kind=alerts,result=success} = %v, want 2", n)
	}
}

// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package reconcile_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reconciled/reconciled/test/fixtures/waitfor"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/client-go/util/workqueue"

	"github.com/reconciled/reconciled/reconcile"
)

// waitTimeout bounds every wait for something that must happen. It is
// generous on purpose: a correct engine gets there in milliseconds, and a
// slow, loaded CI machine must not turn that into a flake.
const waitTimeout = 10 * time.Second

// eventually polls cond until it is true or waitTimeout passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	waitfor.Within(t, waitTimeout, what, cond)
}

// recv waits for a value on ch for at most waitTimeout.
func recv[T any](t testing.TB, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitTimeout):
		t.Fatalf("timed out after %v waiting for %s", waitTimeout, what)
		panic("unreachable")
	}
}

// call is one Reconcile as seen by fakeReconciler.
type call struct {
	Name  string
	N     int // 1-based count of calls for Name
	Start time.Time
	End   time.Time
}

// fakeReconciler records every call and delegates behaviour to fn, which
// gets the per-name 1-based call number. A nil fn succeeds.
type fakeReconciler struct {
	fn func(ctx context.Context, req reconcile.Request, n int) (reconcile.Result, error)

	mu     sync.Mutex
	calls  []call
	counts map[string]int
}

func (f *fakeReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	f.mu.Lock()
	if f.counts == nil {
		f.counts = map[string]int{}
	}
	f.counts[req.Name]++
	n := f.counts[req.Name]
	idx := len(f.calls)
	f.calls = append(f.calls, call{Name: req.Name, N: n, Start: time.Now()})
	f.mu.Unlock()
	// Runs on panic too, before the engine decides what to do next.
	defer func() {
		f.mu.Lock()
		f.calls[idx].End = time.Now()
		f.mu.Unlock()
	}()
	if f.fn == nil {
		return reconcile.Result{}, nil
	}
	return f.fn(ctx, req, n)
}

// snapshot returns a copy of the calls so far.
func (f *fakeReconciler) snapshot() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// names returns the names of the calls so far, in call order.
func (f *fakeReconciler) names() []string {
	var out []string
	for _, c := range f.snapshot() {
		out = append(out, c.Name)
	}
	return out
}

// finished reports how many calls for name have returned.
func (f *fakeReconciler) finished(name string) int {
	n := 0
	for _, c := range f.snapshot() {
		if c.Name == name && !c.End.IsZero() {
			n++
		}
	}
	return n
}

// waitFinished waits until n calls for name have returned.
func (f *fakeReconciler) waitFinished(t testing.TB, name string, n int) {
	t.Helper()
	eventually(t, fmt.Sprintf("%d finished reconciles of %q", n, name), func() bool { return f.finished(name) >= n })
}

// recordingLimiter wraps a rate limiter and records how the engine uses it,
// as "name:when=<delay>" and "name:forget" events.
type recordingLimiter struct {
	inner workqueue.TypedRateLimiter[reconcile.Request]

	mu     sync.Mutex
	events []string
}

func newRecordingLimiter(base, max time.Duration) *recordingLimiter {
	return &recordingLimiter{inner: workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](base, max)}
}

func (r *recordingLimiter) When(item reconcile.Request) time.Duration {
	d := r.inner.When(item)
	r.record(fmt.Sprintf("%s:when=%v", item.Name, d))
	return d
}

func (r *recordingLimiter) Forget(item reconcile.Request) {
	r.inner.Forget(item)
	r.record(item.Name + ":forget")
}

func (r *recordingLimiter) NumRequeues(item reconcile.Request) int { return r.inner.NumRequeues(item) }

func (r *recordingLimiter) record(ev string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
}

func (r *recordingLimiter) snapshot() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// startEngine runs e.Start in the background. The returned stop cancels the
// context and waits (bounded) for Start to return; it is idempotent and
// also registered as a cleanup, so a failing test never leaks workers.
func startEngine(t testing.TB, e *reconcile.Engine) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Start(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Start returned %v, want nil", err)
				}
			case <-time.After(waitTimeout):
				t.Errorf("Start did not return within %v of cancel", waitTimeout)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// newEngine returns an engine registered on a fresh registry.
func newEngine(t testing.TB, opts reconcile.Options) (*reconcile.Engine, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	opts.Registerer = reg
	return reconcile.NewEngine(opts), reg
}

// mustRegister registers r for kind or fails the test.
func mustRegister(t testing.TB, e *reconcile.Engine, kind string, r reconcile.Reconciler, opts reconcile.ControllerOptions) *reconcile.Controller {
	t.Helper()
	c, err := e.Register(kind, r, opts)
	if err != nil {
		t.Fatalf("Register(%q): %v", kind, err)
	}
	return c
}

// totals returns reconciled_reconcile_total for kind by result.
func totals(t testing.TB, reg prometheus.Gatherer, kind string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "reconciled_reconcile_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			if labels["kind"] == kind {
				out[labels["result"]] = m.GetCounter().GetValue()
			}
		}
	}
	return out
}

// gaugeOrCount returns the value of a gauge, or the sample count of a
// histogram, named name with label kind.
func gaugeOrCount(t testing.TB, reg prometheus.Gatherer, name, kind string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "kind" && lp.GetValue() == kind {
					if h := m.GetHistogram(); h != nil {
						return float64(h.GetSampleCount())
					}
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return -1
}

// wantTotals is the exposition text of reconciled_reconcile_total: for
// each kind every result is pre-initialised to 0 except those in want.
func wantTotals(want map[string]map[string]float64) string {
	var b strings.Builder
	b.WriteString("# HELP reconciled_reconcile_total Reconciles by kind and result (success, requeue, error, panic).\n")
	b.WriteString("# TYPE reconciled_reconcile_total counter\n")
	kinds := slices.Sorted(maps.Keys(want))
	for _, kind := range kinds {
		for _, res := range []string{reconcile.ResultError, reconcile.ResultPanic, reconcile.ResultRequeue, reconcile.ResultSuccess} {
			fmt.Fprintf(&b, "reconciled_reconcile_total{kind=%q,result=%q} %v\n", kind, res, want[kind][res])
		}
	}
	return b.String()
}

// checkTotals compares the whole of reconciled_reconcile_total, in
// exposition form, with want (kind -> result -> count) through testutil.
func checkTotals(t testing.TB, reg prometheus.Gatherer, want map[string]map[string]float64) {
	t.Helper()
	if err := testutil.GatherAndCompare(reg, strings.NewReader(wantTotals(want)), "reconciled_reconcile_total"); err != nil {
		t.Error(err)
	}
}

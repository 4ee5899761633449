// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package module

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/internal/systemd"
	"github.com/reconciled/reconciled/resources"
)

// errStoppedModule is the outcome of a restart asked of a Module whose
// spec says state: Stopped.
var errStoppedModule = errors.New("state: Stopped (restart starts nothing; set state: Running)")

// RestartAndWait restarts a Module's unit, through the same path as
// RequestRestart, and waits for the outcome: nil once the unit is active
// again after the restart (a oneshot: finished successfully), or why not
// (the systemd job failed, the unit failed, the Module was deleted, ctx
// ended first). A Module with state: Stopped is not restarted; its error
// wraps resources.ErrConflict.
func (r *Reconciler) RestartAndWait(ctx context.Context, name string) error {
	obj, ok := r.store.Get(v1alpha1.KindModule, name)
	if !ok {
		return fmt.Errorf("module %q: %w", name, resources.ErrNotFound)
	}
	if obj.(*v1alpha1.Module).Spec.State == "Stopped" {
		return fmt.Errorf("%w: %w", errStoppedModule, resources.ErrConflict)
	}
	done := make(chan error, 1)
	m := r.state(name)
	m.mu.Lock()
	m.restartRequested = true
	m.waiters = append(m.waiters, done)
	m.mu.Unlock()
	r.enqueue(name)
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		m.mu.Lock()
		m.waiters = slices.DeleteFunc(m.waiters, func(c chan error) bool { return c == done })
		m.mu.Unlock()
		state := "unknown"
		if o, ok := r.store.Get(v1alpha1.KindModule, name); ok {
			state = o.(*v1alpha1.Module).Status.ActiveState
		}
		return fmt.Errorf("no outcome yet (%v; the unit is %s)", context.Cause(ctx), state)
	}
}

// RestartAll restarts every Module that sel matches, all at once, and
// waits up to timeout for each outcome (see RestartAndWait).
func (r *Reconciler) RestartAll(ctx context.Context, sel labels.Selector, timeout time.Duration) v1alpha1.RestartReport {
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("waited %s", timeout))
	defer cancel()
	var names []string
	for _, name := range r.store.Names(v1alpha1.KindModule) {
		if o, ok := r.store.Get(v1alpha1.KindModule, name); ok && sel.Matches(labels.Set(o.GetObjectMeta().Labels)) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = r.RestartAndWait(ctx, name)
		}()
	}
	wg.Wait()
	rep := v1alpha1.RestartReport{Restarted: []string{}, Failed: []v1alpha1.RestartFailure{}, Skipped: []v1alpha1.RestartFailure{}}
	for i, name := range names {
		switch err := errs[i]; {
		case err == nil:
			rep.Restarted = append(rep.Restarted, name)
		case errors.Is(err, resources.ErrConflict):
			rep.Skipped = append(rep.Skipped, v1alpha1.RestartFailure{Name: name, Error: strings.TrimSuffix(err.Error(), ": "+resources.ErrConflict.Error())})
		default:
			rep.Failed = append(rep.Failed, v1alpha1.RestartFailure{Name: name, Error: err.Error()})
		}
	}
	return rep
}

// finishRestart tells the waiters of m's restart its outcome. Called with
// m.mu held.
func (m *moduleState) finishRestart(err error) {
	for _, c := range m.waiters {
		c <- err
	}
	m.waiters, m.restartQueued, m.settleFrom = nil, false, time.Time{}
}

// restartSettle is how long a unit must stay active after a restart a
// caller waits for before the restart counts as done: a Type=simple unit
// is "active" as soon as its program is forked, also when it exits a
// moment later.
const restartSettle = 2 * time.Second

// observeRestart settles the restart queued for waiters once the unit has
// no job pending: active for restartSettle without a systemd restart (or a
// oneshot that succeeded) is done, anything else failed. It returns when to
// look again while the unit settles. Called with m.mu held, with the unit's
// state read before converge.
func (m *moduleState) observeRestart(unitName string, us systemd.UnitState, oneshot bool, now time.Time) time.Duration {
	if !m.restartQueued || us.JobPending {
		m.settleFrom = time.Time{}
		return 0
	}
	switch us.ActiveState {
	case "active", "reloading":
		if m.settleFrom.IsZero() || us.NRestarts != m.settleRestarts {
			m.settleFrom, m.settleRestarts = now, us.NRestarts
		}
		if d := restartSettle - now.Sub(m.settleFrom); d > 0 {
			return d
		}
		m.finishRestart(nil)
	case "activating", "deactivating":
		m.settleFrom = time.Time{} // still on its way
	case "inactive":
		if oneshot && us.Result == "success" {
			m.finishRestart(nil)
			return 0
		}
		m.finishRestart(fmt.Errorf("%s is inactive after the restart (result %s)", unitName, us.Result))
	default:
		m.finishRestart(fmt.Errorf("%s is %s after the restart (result %s)", unitName, us.ActiveState, us.Result))
	}
	return 0
}

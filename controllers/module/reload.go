// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package module

import (
	"context"
	"sync"
	"time"

	"k8s.io/client-go/util/workqueue"

	"github.com/go-logr/logr"

	"github.com/reconciled/reconciled/reconcile"
)

// reloader batches daemon-reloads: the units written for one systemd since
// its last reload share the next one, so 200 new units cost a couple of
// reloads, not 200. It is a controller of the engine keyed by scope
// ("module-reload"): a reload asked for while one runs is done once more
// after it, and a failed reload is retried with the engine's backoff
// (1 s, doubling up to 30 s) while its units wait.
type reloader struct {
	r    *Reconciler
	ctrl *reconcile.TypedController[string]

	mu      sync.Mutex
	pending map[string]map[string]bool // scope -> Modules waiting for its reload
	lastErr map[string]error           // scope -> the last reload's error, for the status
}

// reloadRetry is the backoff of a failed daemon-reload.
func reloadRetry() workqueue.TypedRateLimiter[string] {
	return workqueue.NewTypedItemExponentialFailureRateLimiter[string](time.Second, 30*time.Second)
}

func (l *reloader) setup(e *reconcile.Engine) error {
	c, err := reconcile.Register(e, "module-reload", reconcile.TypedReconciler[string](l),
		reconcile.TypedControllerOptions[string]{MaxConcurrentReconciles: 1, RateLimiter: reloadRetry()})
	l.ctrl = c
	return err
}

// request asks for a daemon-reload of scope, after which the Module name is
// reconciled again.
func (l *reloader) request(scope, name string) {
	l.mu.Lock()
	if l.pending[scope] == nil {
		l.pending[scope] = map[string]bool{}
	}
	l.pending[scope][name] = true
	l.mu.Unlock()
	if l.ctrl != nil {
		l.ctrl.Add(scope)
	}
}

// err returns the error of the last reload of scope, if it failed.
func (l *reloader) err(scope string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastErr[scope]
}

// Reconcile reloads one systemd for the Modules waiting for it.
func (l *reloader) Reconcile(ctx context.Context, scope string) (reconcile.Result, error) {
	log := logr.FromContextOrDiscard(ctx)
	mgr := l.r.opts.Systemd[scope]
	l.mu.Lock()
	names := l.pending[scope]
	delete(l.pending, scope)
	l.mu.Unlock()
	if mgr == nil || len(names) == 0 {
		return reconcile.Result{}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, dbusTimeout)
	defer cancel()
	err := mgr.Reload(ctx)
	result := "success"
	l.mu.Lock()
	l.lastErr[scope] = err
	if err != nil {
		result = "error"
		// The units keep waiting for this manager's next reload.
		if l.pending[scope] == nil {
			l.pending[scope] = map[string]bool{}
		}
		for n := range names {
			l.pending[scope][n] = true
		}
	}
	l.mu.Unlock()
	l.r.reloads.WithLabelValues(scope, result).Inc()
	log.V(1).Info("daemon-reload", "scope", scope, "units", len(names), "error", err)
	for n := range names {
		if err == nil {
			if m := l.r.existing(n); m != nil {
				m.mu.Lock()
				m.reloadPending = false
				m.mu.Unlock()
			}
		}
		l.r.enqueue(n) // to converge, or to show the failed reload
	}
	return reconcile.Result{}, err // an error: retried with backoff
}

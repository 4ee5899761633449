// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package controllers holds what every kind's controller uses; the
// controllers themselves are its subpackages, one per kind (process, link,
// module, pinode, alertroute), and the alert source that turns unhealthy
// statuses of every kind into alerts (alertsource).
//
// A controller is a reconcile.Reconciler registered with the engine for
// one kind: the store enqueues the names of resources that changed, and
// the controller makes the world match the spec and writes the status.
package controllers

import (
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/go-logr/logr"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/events"
	"github.com/reconciled/reconciled/history"
	"github.com/reconciled/reconciled/kvlog"
	"github.com/reconciled/reconciled/reconcile"
	"github.com/reconciled/reconciled/resources"
)

// ResourceStore is what controllers need from the resource store.
type ResourceStore interface {
	Get(kind, name string) (v1alpha1.Object, bool)
	Names(kind string) []string
	Known(kind, name string) bool
	Settled() bool
	UpdateStatus(kind, name string, status any) error
	UpdateTransientStatus(kind, name string, status any, settle time.Duration) error
	// Subscribe calls fn with every change of kind (see
	// resources.Store.Subscribe).
	Subscribe(kind string, specOnly bool, fn func(*resources.Change)) (cancel func())
}

var _ ResourceStore = (*resources.Store)(nil)

// WatchKind registers r as the controller of kind, subscribes it to every
// change of that kind in the store, and enqueues what the store holds.
func WatchKind(e *reconcile.Engine, store ResourceStore, kind string, r reconcile.Reconciler, opts reconcile.ControllerOptions) (*reconcile.Controller, error) {
	c, err := e.Register(kind, r, opts)
	if err != nil {
		return nil, err
	}
	store.Subscribe(kind, true, func(ch *resources.Change) { c.Enqueue(ch.Key.Name) })
	for _, n := range store.Names(kind) {
		c.Enqueue(n)
	}
	return c, nil
}

// StatusFor starts the new status of obj: the generation it reflects and
// the conditions it has now. Every controller builds its status from it and
// sets its conditions on top, so that a condition set again with the same
// status keeps its lastTransitionTime and an unchanged status is not
// written again. The stored object is shared with readers: the conditions
// are a copy.
func StatusFor(obj v1alpha1.Object) v1alpha1.CommonStatus {
	return v1alpha1.CommonStatus{ObservedGeneration: obj.GetObjectMeta().Generation, Conditions: slices.Clone(obj.GetCommonStatus().Conditions)}
}

// TransientSettle is how long a passing status (Stopping, a reload under
// way) must last before it is written to the resource file; the API shows
// it at once (resources.Store.UpdateTransientStatus).
const TransientSettle = 100 * time.Millisecond

// OpenRecords opens a controller's durable records; a corrupt file is set
// aside with an error in the log and a Warning event, and the controller
// starts without its records (as after a lost state dir).
func OpenRecords[V any](path string, log logr.Logger, rec events.Recorder) (*kvlog.Map[V], error) {
	m, err := kvlog.OpenOrSetAside[V](path, func(err error) {
		log.Error(err, "state file was corrupt; set aside")
		rec.Eventf("Daemon", "state", events.TypeWarning, events.ReasonStateSetAside, "%v", err)
	})
	if err != nil {
		return nil, err
	}
	m.OnError = func(err error) { log.Error(err, "records") }
	return m, nil
}

// OpenHistory opens the rolled-up history of one resource in dir
// (<dir>/<name>.json); a corrupt file is set aside with an error in the
// log and a Warning event, and the resource starts a new history. It
// returns nil (logged) when the history cannot be opened: the resource
// runs without one.
func OpenHistory(dir, kind, name string, log logr.Logger, rec events.Recorder) *history.Series {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		log.Error(err, "history folder")
		return nil
	}
	s, err := history.OpenOrSetAside(filepath.Join(dir, name+".json"), func(err error) {
		log.Error(err, "history was corrupt; set aside", "kind", kind, "name", name)
		rec.Eventf(kind, name, events.TypeWarning, events.ReasonStateSetAside, "%v", err)
	})
	if err != nil {
		log.Error(err, "opening the history", "kind", kind, "name", name)
		return nil
	}
	s.OnError = func(err error) { log.Error(err, "history", "kind", kind, "name", name) }
	return s
}

// DiscardRecorder drops events (for tests and callers without an event
// store).
type DiscardRecorder struct{}

// Eventf implements events.Recorder.
func (DiscardRecorder) Eventf(string, string, string, string, string, ...any) {}

// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package resources

import (
	"fmt"

	"github.com/reconciled/reconciled/apis/v1alpha1"
)

// StatusSink is where the store writes the statuses that controllers
// report (--status): into the resource's own document (inline), beside it
// in the state dir (sidecar), or nowhere (none). The store's status writer
// does what every sink needs: it coalesces changes, batches commits (one
// sync for many writes), retries failures with backoff and reports them as
// the StatusWritten condition. A sink says which resources are written
// together (a group: one file for inline, one resource for sidecar) and
// does one group's write in two steps: prepare renders it into a temp file
// (several groups concurrently), commit puts it in place after one sync of
// every prepared temp file.
//
// A sink reads the store's own entries, so sinks live in this package; the
// interface is sealed (unexported methods). The fleet's Kubernetes status
// sink is meant to be the fourth, with no change to the engine or the
// controllers, which see only Store.UpdateStatus.
type StatusSink interface {
	// Mode names the sink as --status does.
	Mode() StatusMode
	// group returns the write group of an entry; "" writes nothing.
	group(e *entry) string
	// initialStatus is the status a resource starts with when the daemon
	// first sees it (doc is its document), so counters survive restarts.
	initialStatus(k Key, doc v1alpha1.Object) any
	// prepare renders the statuses of a group that changed; nil when
	// nothing needs writing, errConflict when it rescheduled the group.
	prepare(w *statusWriter, group string) (*pendingWrite, error)
	// commit puts one prepared write in place (its temp file is synced);
	// errConflict when it rescheduled the group.
	commit(w *statusWriter, p *pendingWrite) error
	// forget drops what the sink holds for a deleted resource.
	forget(k Key)
}

// newStatusSink returns the sink of a --status mode.
func newStatusSink(mode StatusMode, stateDir string) (StatusSink, error) {
	switch mode {
	case StatusInline, "":
		return inlineSink{}, nil
	case StatusSidecar:
		if stateDir == "" {
			return nil, fmt.Errorf("--status sidecar needs a state dir")
		}
		return sidecarSink{stateDir: stateDir}, nil
	case StatusNone:
		return noneSink{}, nil
	}
	return nil, fmt.Errorf("unknown status mode %q (want inline, sidecar or none)", mode)
}

// documentStatus is the status a resource's document holds.
func documentStatus(_ Key, doc v1alpha1.Object) any { return reflectStatus(doc) }

// empty is the zero status of a kind.
func empty(k Key) any {
	ki, _ := v1alpha1.LookupKind(k.Kind)
	return reflectStatus(ki.New())
}

// noneSink writes nothing (--status none); statuses live in memory and in
// the API.
type noneSink struct{}

func (noneSink) Mode() StatusMode                                     { return StatusNone }
func (noneSink) group(*entry) string                                  { return "" }
func (noneSink) initialStatus(k Key, doc v1alpha1.Object) any         { return documentStatus(k, doc) }
func (noneSink) prepare(*statusWriter, string) (*pendingWrite, error) { return nil, nil }
func (noneSink) commit(*statusWriter, *pendingWrite) error            { return nil }
func (noneSink) forget(Key)                                           {}

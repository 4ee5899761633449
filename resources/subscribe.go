// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package resources

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/reconciled/reconciled/apis/v1alpha1"
)

// Change is one change of a resource, as a subscriber sees it.
type Change struct {
	// Type is Added, Modified or Deleted.
	Type EventType
	// Key names the resource.
	Key Key
	// Spec is true when the spec, the metadata or the validity changed (or
	// the resource came or went), false for a change of the status alone.
	Spec bool

	view *v1alpha1.Object // the API view, built at most once per change
	e    *entry
}

// Object returns the resource's API view (see Store.View) after the
// change; for Deleted, the last one. Call it only inside the subscriber's
// function.
func (c *Change) Object() v1alpha1.Object {
	if *c.view == nil {
		*c.view = c.e.view(true)
	}
	return *c.view
}

// subscription is one Subscribe call.
type subscription struct {
	kind     string
	specOnly bool
	fn       func(*Change)
}

// Subscribe calls fn for every change of a resource of kind ("" for every
// kind); with specOnly, changes of the status alone are left out (a
// controller need not hear of the statuses it writes). It is the store's one
// way to tell of changes: controllers enqueue names, the alert source keys,
// and Watch streams objects through it.
//
// fn runs with the store's lock held, in the order of the changes: it must
// not block nor call the store (it typically adds to a deduplicating work
// queue, the consumer reading the current state with View). cancel ends the
// subscription.
func (s *Store) Subscribe(kind string, specOnly bool, fn func(*Change)) (cancel func()) {
	sub := &subscription{kind: kind, specOnly: specOnly, fn: fn}
	s.mu.Lock()
	s.subs[sub] = struct{}{}
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		delete(s.subs, sub)
		s.mu.Unlock()
	}
}

// notifyLocked tells the subscribers of a change of e; spec as in
// Change.Spec.
func (s *Store) notifyLocked(t EventType, e *entry, spec bool) {
	s.rv++
	e.rv = s.rv
	if t == Deleted {
		s.tombstones.add(tombstone{key: e.key, rv: s.rv, obj: e.view(true)})
	}
	var view v1alpha1.Object
	c := &Change{Type: t, Key: e.key, Spec: spec, view: &view, e: e}
	for sub := range s.subs {
		if (sub.kind != "" && sub.kind != e.key.Kind) || (sub.specOnly && !spec) {
			continue
		}
		sub.fn(c)
	}
}

// Watch streams changes of a kind ("" for all) until stop is called. The
// channel is closed when the watcher falls too far behind (1024 events);
// clients list and watch again, as with Kubernetes.
func (s *Store) Watch(kind string) (events <-chan Event, stop func()) {
	ch := make(chan Event, 1024)
	var sub *subscription
	closed := false
	end := func() { // with s.mu held
		if !closed {
			closed = true
			delete(s.subs, sub)
			close(ch)
		}
	}
	sub = &subscription{kind: kind, fn: func(c *Change) {
		select {
		case ch <- Event{Type: c.Type, Object: c.Object()}:
		default:
			end()
		}
	}}
	s.mu.Lock()
	s.subs[sub] = struct{}{}
	s.mu.Unlock()
	return ch, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		end()
	}
}

// firstVersion is where a store's resourceVersions start: the clock in
// microseconds, so that a version from before a restart is older than any
// of this run (and Since says Gone: the client lists again).
func firstVersion() uint64 { return uint64(time.Now().UnixMicro()) }

// maxTombstones bounds the deletions kept for watches that resume.
const maxTombstones = 4096

// tombstone is a deleted resource as it was, at the version of its deletion.
type tombstone struct {
	key Key
	rv  uint64
	obj v1alpha1.Object
}

// tombstones are the recent deletions, oldest first; dropped is the
// newest version of a deletion no longer kept.
type tombstones struct {
	list    []tombstone
	dropped uint64
}

func (t *tombstones) add(ts tombstone) {
	if len(t.list) >= maxTombstones {
		t.dropped = t.list[0].rv
		t.list = t.list[1:]
	}
	t.list = append(t.list, ts)
}

// ErrGone is returned by Since for a version older than the changes the
// store remembers: the client lists again (HTTP 410, as Kubernetes).
var ErrGone = errors.New("too old resource version")

// Since returns what changed in kind after resourceVersion rv, as watch
// events: every resource changed since as Modified (its latest state; a
// watch sees states, not every step) and every deletion since as Deleted,
// in the order of their versions; and the store's current version. An rv
// older than the deletions the store remembers is ErrGone.
func (s *Store) Since(kind, rv string) ([]Event, string, error) {
	from, err := strconv.ParseUint(rv, 10, 64)
	if err != nil {
		return nil, "", fmt.Errorf("resourceVersion %q: %w", rv, err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if from < s.tombstones.dropped || from < s.firstRV || from > s.rv {
		return nil, "", ErrGone
	}
	type change struct {
		rv uint64
		ev Event
	}
	var changes []change
	for k, e := range s.entries {
		if k.Kind == kind && e.rv > from && e.obj != nil {
			changes = append(changes, change{e.rv, Event{Type: Modified, Object: e.view(true)}})
		}
	}
	for _, ts := range s.tombstones.list {
		if ts.key.Kind == kind && ts.rv > from && s.entries[ts.key] == nil {
			changes = append(changes, change{ts.rv, Event{Type: Deleted, Object: ts.obj}})
		}
	}
	sort.Slice(changes, func(i, j int) bool { return changes[i].rv < changes[j].rv })
	out := make([]Event, len(changes))
	for i, c := range changes {
		out[i] = c.ev
	}
	return out, strconv.FormatUint(s.rv, 10), nil
}

// Version is the store's current resourceVersion.
func (s *Store) Version() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return strconv.FormatUint(s.rv, 10)
}

// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package controllerstest has what the controllers' unit tests share: an
// in-memory resource store serving every kind.
package controllerstest

import (
	"slices"
	"sync"
	"time"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/controllers"
	"github.com/reconciled/reconciled/resources"
)

// Store is an in-memory controllers.ResourceStore for every kind: Put and
// Delete stand in for files, UpdateStatus is kept and Status reads it back.
// Subscribers hear of Put and Delete (spec changes), not of statuses.
type Store struct {
	mu       sync.Mutex
	objs     map[resources.Key]v1alpha1.Object
	statuses map[resources.Key]any
	subs     []sub
	writes   map[resources.Key]int
}

type sub struct {
	kind string
	fn   func(*resources.Change)
}

var _ controllers.ResourceStore = (*Store)(nil)

// NewStore returns an empty store.
func NewStore() *Store {
	return &Store{objs: map[resources.Key]v1alpha1.Object{}, statuses: map[resources.Key]any{}, writes: map[resources.Key]int{}}
}

func keyOf(o v1alpha1.Object) resources.Key {
	return resources.Key{Kind: o.GetTypeMeta().Kind, Name: o.GetObjectMeta().Name}
}

// Put adds or replaces a resource (defaulted), as a file change would.
func (s *Store) Put(o v1alpha1.Object) {
	o.Default()
	k := keyOf(o)
	s.mu.Lock()
	_, had := s.objs[k]
	s.objs[k] = o
	subs := slices.Clone(s.subs)
	s.mu.Unlock()
	t := resources.Added
	if had {
		t = resources.Modified
	}
	s.notify(subs, &resources.Change{Type: t, Key: k, Spec: true})
}

// Delete removes a resource.
func (s *Store) Delete(kind, name string) {
	k := resources.Key{Kind: kind, Name: name}
	s.mu.Lock()
	delete(s.objs, k)
	subs := slices.Clone(s.subs)
	s.mu.Unlock()
	s.notify(subs, &resources.Change{Type: resources.Deleted, Key: k, Spec: true})
}

func (s *Store) notify(subs []sub, c *resources.Change) {
	for _, sb := range subs {
		if sb.kind == "" || sb.kind == c.Key.Kind {
			sb.fn(c)
		}
	}
}

// Get returns the resource with its current status.
func (s *Store) Get(kind, name string) (v1alpha1.Object, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := resources.Key{Kind: kind, Name: name}
	o, ok := s.objs[k]
	if !ok {
		return nil, false
	}
	if st, ok := s.statuses[k]; ok {
		return o.WithStatus(st), true
	}
	return o, true
}

// Names lists the resources of kind.
func (s *Store) Names(kind string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k := range s.objs {
		if k.Kind == kind {
			out = append(out, k.Name)
		}
	}
	slices.Sort(out)
	return out
}

// Known reports whether the resource is there.
func (s *Store) Known(kind, name string) bool {
	_, ok := s.Get(kind, name)
	return ok
}

// Settled is always true: every file is read.
func (s *Store) Settled() bool { return true }

// UpdateStatus keeps the status.
func (s *Store) UpdateStatus(kind, name string, status any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := resources.Key{Kind: kind, Name: name}
	s.statuses[k] = status
	s.writes[k]++
	return nil
}

// UpdateTransientStatus is UpdateStatus.
func (s *Store) UpdateTransientStatus(kind, name string, status any, _ time.Duration) error {
	return s.UpdateStatus(kind, name, status)
}

// Subscribe calls fn on every Put and Delete of kind.
func (s *Store) Subscribe(kind string, _ bool, fn func(*resources.Change)) func() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subs = append(s.subs, sub{kind, fn})
	return func() {}
}

// Status returns the last status written for the resource.
func (s *Store) Status(kind, name string) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.statuses[resources.Key{Kind: kind, Name: name}]
}

// Writes counts the statuses written for the resource.
func (s *Store) Writes(kind, name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes[resources.Key{Kind: kind, Name: name}]
}

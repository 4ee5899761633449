// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package resources

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/reconciled/reconciled/apis/v1alpha1"
)

// memSource is a Source in memory, as a git or Kubernetes source is: its
// origins are names, not files, and it can become unreachable.
type memSource struct {
	mu      sync.Mutex
	docs    map[string]string
	down    bool
	changed func(string)
}

func (m *memSource) Name() string { return "mem" }

func (m *memSource) List() ([]string, []Problem, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return nil, nil, errors.New("remote unreachable")
	}
	var out []string
	for o := range m.docs {
		out = append(out, o)
	}
	slices.Sort(out)
	return out, nil, nil
}

func (m *memSource) Read(origin string) ([]byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.docs[origin]
	return []byte(d), ok, nil
}

func (m *memSource) Watch(ctx context.Context, changed func(string), relist func()) error {
	m.mu.Lock()
	m.changed = changed
	m.mu.Unlock()
	relist()
	<-ctx.Done()
	return nil
}

// set changes (or with doc "" removes) an origin and tells the store.
func (m *memSource) set(origin, doc string) {
	m.mu.Lock()
	if doc == "" {
		delete(m.docs, origin)
	} else {
		m.docs[origin] = doc
	}
	changed := m.changed
	m.mu.Unlock()
	if changed != nil {
		changed(origin)
	}
}

// The store runs on any Source: documents come and go by origin, an
// invalid origin keeps the last good version, and a source that cannot be
// listed deletes nothing.
func TestStoreOnAnotherSource(t *testing.T) {
	src := &memSource{docs: map[string]string{"commit1:web.yaml": processFile("web", "/bin/web")}}
	s, err := NewStore(Options{Dir: t.TempDir(), Source: src, Status: StatusNone, DeleteGrace: 50 * time.Millisecond, RelistInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Load(); err != nil {
		t.Fatal(err)
	}
	command := func(name string) string {
		o, ok := s.Get(v1alpha1.KindProcess, name)
		if !ok {
			return ""
		}
		return o.(*v1alpha1.Process).Spec.Command[0]
	}
	if command("web") != "/bin/web" {
		t.Fatal("not loaded from the source")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Start(ctx) }()
	defer func() { cancel(); <-done }()

	eventually(t, "the source watched", func() bool { src.mu.Lock(); defer src.mu.Unlock(); return src.changed != nil })
	src.set("commit1:db.yaml", processFile("db", "/bin/db"))
	eventually(t, "db added", func() bool { return command("db") == "/bin/db" })
	src.set("commit1:web.yaml", "kind: [")
	eventually(t, "web's origin reported invalid", func() bool { _, invalid := s.Counts(); return invalid > 0 })
	if command("web") != "/bin/web" {
		t.Fatal("an invalid origin lost the last good version")
	}
	// Unreachable: relists fail, nothing is deleted.
	src.mu.Lock()
	src.down = true
	src.mu.Unlock()
	consistently(t, "everything kept while the source is down", 200*time.Millisecond, func() bool {
		return command("web") == "/bin/web" && command("db") == "/bin/db"
	})
	src.mu.Lock()
	src.down = false
	src.mu.Unlock()
	src.set("commit1:db.yaml", "")
	eventually(t, "db deleted when its origin is gone", func() bool { return command("db") == "" })
}

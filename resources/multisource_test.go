// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package resources

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/reconciled/reconciled/apis/v1alpha1"
)

// A folder beside a remote source: both are read, a name defined in both
// is the duplicate rule (the one seen first keeps running, the other is
// reported), and while the remote cannot be listed its resources stay and
// the folder goes on.
func TestMultiSource(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "local.yaml"), []byte(processFile("local", "/bin/local")), 0o600); err != nil {
		t.Fatal(err)
	}
	remote := &memSource{docs: map[string]string{"common/web.yaml": processFile("web", "/bin/web")}}
	other := &memSource{docs: map[string]string{"common/web.yaml": processFile("db", "/bin/db")}}
	multi, err := NewMultiSource(Mount{Source: NewDirSource(dir, false, logr.Discard())}, Mount{Source: remote}, Mount{Prefix: "other:", Source: other})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewMultiSource(Mount{Source: remote}, Mount{Source: other}); err == nil {
		t.Error("two unprefixed remote sources were accepted")
	}
	for origin, want := range map[string]int{filepath.Join(dir, "local.yaml"): 0, "common/web.yaml": 1, "other:common/web.yaml": 2, "/elsewhere/x.yaml": -1} {
		if got := multi.MountOf(origin); got != want {
			t.Errorf("MountOf(%q) = %d, want %d", origin, got, want)
		}
	}
	s, err := NewStore(Options{Dir: dir, Source: multi, Status: StatusNone, DeleteGrace: 50 * time.Millisecond, RelistInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Load(); err != nil {
		t.Fatal(err)
	}
	has := func(name string) bool { _, ok := s.Get(v1alpha1.KindProcess, name); return ok }
	for _, n := range []string{"local", "web", "db"} {
		if !has(n) {
			t.Fatalf("%s not loaded", n)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Start(ctx) }()
	defer func() { cancel(); <-done }()
	eventually(t, "both remotes watched", func() bool {
		remote.mu.Lock()
		other.mu.Lock()
		defer remote.mu.Unlock()
		defer other.mu.Unlock()
		return remote.changed != nil && other.changed != nil
	})

	// The same name in the folder: the duplicate rule across sources.
	if err := os.WriteFile(filepath.Join(dir, "dup.yaml"), []byte(processFile("web", "/bin/other")), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the duplicate reported", func() bool {
		for _, p := range s.Problems() {
			if p.Reason == v1alpha1.ReasonDuplicateName && p.Name == "web" {
				return true
			}
		}
		return false
	})
	if o, _ := s.Get(v1alpha1.KindProcess, "web"); o.(*v1alpha1.Process).Spec.Command[0] != "/bin/web" {
		t.Error("the duplicate replaced the resource seen first")
	}

	// The remote is down: its resources stay, the folder goes on.
	remote.mu.Lock()
	remote.down = true
	remote.mu.Unlock()
	if err := os.WriteFile(filepath.Join(dir, "new.yaml"), []byte(processFile("new", "/bin/new")), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the folder's new file applied", func() bool { return has("new") })
	consistently(t, "the remote's resources kept while it is down", 200*time.Millisecond, func() bool { return has("web") && has("db") })
	remote.mu.Lock()
	remote.down = false
	remote.mu.Unlock()
	other.set("common/web.yaml", "")
	eventually(t, "db deleted when its origin is gone", func() bool { return !has("db") })
	if !has("web") || !has("local") {
		t.Error("a deletion in one source removed another's resources")
	}
}

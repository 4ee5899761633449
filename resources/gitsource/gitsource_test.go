// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package gitsource

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/go-logr/logr"

	"github.com/reconciled/reconciled/test/fixtures/gittest"
)

func proc(name string) string {
	return "apiVersion: reconciled.dev/v1alpha1\nkind: Process\nmetadata: {name: " + name + "}\nspec: {command: [/bin/true]}\n"
}

func TestGitSource(t *testing.T) {
	r := gittest.New(t)
	first := r.Commit("change", map[string]string{
		"common/a.yaml":     proc("a"),
		"hosts/web1/b.yaml": proc("b"),
		"hosts/web2/c.yaml": proc("c"),
		"README.md":         "not a resource",
	})
	dir := filepath.Join(t.TempDir(), "repo")
	s, err := New(Options{URL: r.Bare, Paths: []string{"common", "hosts/web1"}, Dir: dir, Log: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	if files, _, _ := s.List(); len(files) != 0 {
		t.Fatalf("files before the first fetch: %q", files)
	}
	ctx := context.Background()
	changed, err := s.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"common/a.yaml", "hosts/web1/b.yaml"}; !slices.Equal(changed, want) {
		t.Fatalf("first sync reported %q, want %q", changed, want)
	}
	if commit, _, _ := s.Applied(); commit != first {
		t.Fatalf("applied %s, want %s", commit, first)
	}
	data, ok, err := s.Read("hosts/web1/b.yaml")
	if err != nil || !ok || string(data) != proc("b") {
		t.Fatalf("read: %q %v %v", data, ok, err)
	}
	if _, ok, _ := s.Read("hosts/web2/c.yaml"); ok {
		t.Fatal("read a file of another host")
	}

	// Nothing new: the cheap check, no change.
	if changed, err := s.Sync(ctx); err != nil || len(changed) != 0 {
		t.Fatalf("idle sync: %q %v", changed, err)
	}

	// A commit that changes one file and deletes another.
	second := r.Commit("change", map[string]string{"common/a.yaml": proc("a2"), "hosts/web1/b.yaml": "", "hosts/web2/c.yaml": proc("c2")})
	changed, err = s.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"common/a.yaml", "hosts/web1/b.yaml"}; !slices.Equal(changed, want) {
		t.Fatalf("second sync reported %q, want %q", changed, want)
	}
	if _, ok, _ := s.Read("hosts/web1/b.yaml"); ok {
		t.Fatal("a deleted file is still read")
	}
	if files, _, _ := s.List(); !slices.Equal(files, []string{"common/a.yaml"}) {
		t.Fatalf("files %q", files)
	}

	// The remote goes away: a fetch fails and nothing changes.
	if err := os.Rename(r.Bare, r.Bare+".gone"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Sync(ctx); err == nil {
		t.Fatal("a fetch from a missing remote succeeded")
	}
	if commit, _, ferr := s.Applied(); commit != second || ferr == nil {
		t.Fatalf("after a failed fetch: applied %s (want %s), error %v", commit, second, ferr)
	}
	// A restarted daemon starts from the commit it applied, offline.
	again, err := New(Options{URL: r.Bare, Paths: []string{"common", "hosts/web1"}, Dir: dir, Log: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	if commit, _, _ := again.Applied(); commit != second {
		t.Fatalf("restarted with %s, want %s", commit, second)
	}
	if data, ok, _ := again.Read("common/a.yaml"); !ok || string(data) != proc("a2") {
		t.Fatalf("restarted offline read %q %v", data, ok)
	}
	if err := os.Rename(r.Bare+".gone", r.Bare); err != nil {
		t.Fatal(err)
	}

	// History rewritten (force-push of an unrelated commit): applied as
	// any other new head.
	r.Git(r.Work, "checkout", "--quiet", "--orphan", "rewritten")
	r.Git(r.Work, "rm", "-r", "--quiet", "--cached", ".")
	third := r.Commit("change", map[string]string{"common/z.yaml": proc("z")})
	changed, err = again.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if commit, _, _ := again.Applied(); commit != third || !slices.Contains(changed, "common/z.yaml") {
		t.Fatalf("after a force-push: applied %s (want %s), changed %q", commit, third, changed)
	}
}

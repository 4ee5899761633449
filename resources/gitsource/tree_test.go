// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package gitsource

import (
	"bytes"
	"context"
	"encoding/hex"
	"path/filepath"
	"slices"
	"testing"

	"github.com/go-logr/logr"

	"github.com/reconciled/reconciled/test/fixtures/gittest"
)

// The changed files of a commit are found by walking the two trees through
// cat-file: a file that becomes a folder (and back), a folder deleted, and
// folders outside Paths not entered.
func TestGitSourceDiffTrees(t *testing.T) {
	r := gittest.New(t)
	r.Commit("change", map[string]string{
		"common/sub.yaml":    proc("sub"),
		"common/gone/a.yaml": proc("a"),
		"hosts/web1/b.yaml":  proc("b"),
		"hosts/web10/c.yaml": proc("c"),
	})
	s, err := New(Options{URL: r.Bare, Paths: []string{"common", "hosts/web1"}, Dir: filepath.Join(t.TempDir(), "repo"), Log: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if changed, err := s.Sync(ctx); err != nil || !slices.Equal(changed, []string{"common/gone/a.yaml", "common/sub.yaml", "hosts/web1/b.yaml"}) {
		t.Fatalf("first sync: %q %v", changed, err)
	}
	r.Commit("change", map[string]string{
		"common/sub.yaml":    "",
		"common/sub/d.yaml":  proc("d"),
		"common/gone/a.yaml": "",
		"hosts/web10/c.yaml": proc("c2"),
	})
	if changed, err := s.Sync(ctx); err != nil || !slices.Equal(changed, []string{"common/gone/a.yaml", "common/sub.yaml", "common/sub/d.yaml"}) {
		t.Fatalf("file to folder: %q %v", changed, err)
	}
	r.Commit("change", map[string]string{"common/sub/d.yaml": "", "common/sub.yaml": proc("sub2")})
	if changed, err := s.Sync(ctx); err != nil || !slices.Equal(changed, []string{"common/sub.yaml", "common/sub/d.yaml"}) {
		t.Fatalf("folder to file: %q %v", changed, err)
	}
	if files, _, err := s.List(); err != nil || !slices.Equal(files, []string{"common/sub.yaml", "hosts/web1/b.yaml"}) {
		t.Fatalf("list: %q %v", files, err)
	}
	// A push announced by the webhook is fetched without asking the
	// remote's head first; with nothing new, nothing changes.
	r.Commit("change", map[string]string{"common/sub.yaml": proc("sub3")})
	s.Trigger()
	if changed, err := s.Sync(ctx); err != nil || !slices.Equal(changed, []string{"common/sub.yaml"}) {
		t.Fatalf("pushed: %q %v", changed, err)
	}
	s.Trigger()
	if changed, err := s.Sync(ctx); err != nil || len(changed) != 0 {
		t.Fatalf("pushed, nothing new: %q %v", changed, err)
	}
}

func FuzzParseTree(f *testing.F) {
	id := bytes.Repeat([]byte{0xab}, 20)
	f.Add(append(append([]byte("100644 a.yaml\x00"), id...), append([]byte("40000 dir\x00"), id...)...))
	f.Add([]byte("100644 a.yaml\x00short"))
	f.Add([]byte(""))
	f.Add([]byte(" \x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := parseTree(data, 20)
		if err != nil {
			return
		}
		for _, e := range entries {
			if e.name == "" || len(e.id) != 40 {
				t.Fatalf("entry %+v", e)
			}
			if _, err := hex.DecodeString(e.id); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package kvlog

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

type rec struct {
	N int    `json:"n"`
	S string `json:"s"`
}

func snapshotOf(m *Map[rec]) map[string]rec {
	out := map[string]rec{}
	m.Range(func(k string, v rec) { out[k] = v })
	return out
}

func TestPersistsWithoutClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "m.json")
	m, err := Open[rec](path)
	if err != nil {
		t.Fatal(err)
	}
	m.Put("a", rec{1, "x"})
	m.Put("b", rec{2, "y"})
	m.Put("a", rec{3, "z"})
	m.Delete("b")
	m.Delete("missing")
	// No Close: as after kill -9, only the appends are on disk.
	m2, err := Open[rec](path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]rec{"a": {3, "z"}}, snapshotOf(m2)); diff != "" {
		t.Fatalf("reopened map (-want +got):\n%s", diff)
	}
	// Open compacted: the log is empty and the snapshot holds everything.
	if fi, _ := os.Stat(path + ".log"); fi.Size() != 0 {
		t.Fatalf("log not compacted: %d bytes", fi.Size())
	}
	m2.Close()
}

func TestTornLastLineIsSkipped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.json")
	m, _ := Open[rec](path)
	m.Put("a", rec{1, "x"})
	f, _ := os.OpenFile(path+".log", os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"k":"b","v":{"n":`) // a write cut short
	f.Close()
	m2, err := Open[rec](path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]rec{"a": {1, "x"}}, snapshotOf(m2)); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
}

func TestCorruptSnapshotIsAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.json")
	os.WriteFile(path, []byte("{not json"), 0o640)
	if _, err := Open[rec](path); err == nil {
		t.Fatal("corrupt snapshot accepted")
	}
}

func TestBackgroundCompaction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.json")
	m, _ := Open[rec](path)
	for i := 0; i < 3*compactMargin; i++ {
		m.Put("k", rec{N: i})
	}
	m.Close()
	m2, _ := Open[rec](path)
	if v, _ := m2.Get("k"); v.N != 3*compactMargin-1 {
		t.Fatalf("got %d", v.N)
	}
}

func BenchmarkPut(b *testing.B) {
	m, _ := Open[rec](filepath.Join(b.TempDir(), "m.json"))
	defer m.Close()
	for i := 0; i < b.N; i++ {
		m.Put("key", rec{N: i, S: "some value"})
	}
}

// OpenOrSetAside renames a corrupt snapshot (and its log) out of the way,
// says so once, and starts empty; a healthy file is opened as it is.
func TestOpenOrSetAside(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.json")
	os.WriteFile(path, []byte("{not json"), 0o640)
	os.WriteFile(path+".log", []byte(`{"k":"a","v":1}`+"\n"), 0o640)
	var told []error
	m, err := OpenOrSetAside[int](path, func(err error) { told = append(told, err) })
	if err != nil {
		t.Fatal(err)
	}
	if m.Len() != 0 || len(told) != 1 || !errors.Is(told[0], ErrCorrupt) || !strings.Contains(told[0].Error(), "set aside as "+path+".corrupt") {
		t.Fatalf("len %d, told %v", m.Len(), told)
	}
	if b, _ := os.ReadFile(path + ".corrupt"); string(b) != "{not json" {
		t.Fatalf("the corrupt file was not kept: %q", b)
	}
	if _, err := os.Stat(path + ".corrupt.log"); err != nil {
		t.Fatalf("its log was not kept: %v", err)
	}
	m.Put("b", 2)
	m.Close()
	m, err = OpenOrSetAside[int](path, func(err error) { told = append(told, err) })
	if err != nil || len(told) != 1 {
		t.Fatalf("healthy reopen: %v, told %v", err, told)
	}
	if v, ok := m.Get("b"); !ok || v != 2 {
		t.Fatalf("b = %v %v", v, ok)
	}
	m.Close()
}

// Apply commits a batch in order with one append and, when asked, one
// fsync; the batch survives a reopen.
func TestApply(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.json")
	m, err := Open[int](path)
	if err != nil {
		t.Fatal(err)
	}
	one, two := 1, 2
	if err := m.Apply([]Change[int]{{"a", &one}, {"b", &two}, {"a", nil}, {"c", &one}}, true); err != nil {
		t.Fatal(err)
	}
	if err := m.Apply([]Change[int]{{"b", &one}}, false); err != nil {
		t.Fatal(err)
	}
	if m.Syncs() != 1 {
		t.Fatalf("Syncs %d, want 1", m.Syncs())
	}
	b, _ := os.ReadFile(path + ".log")
	if n := strings.Count(string(b), "\n"); n != 5 {
		t.Fatalf("log has %d lines, want 5", n)
	}
	m2, err := Open[int](path) // without Close: what a kill leaves
	if err != nil {
		t.Fatal(err)
	}
	_, hasA := m2.Get("a")
	vb, _ := m2.Get("b")
	vc, _ := m2.Get("c")
	if hasA || vb != 1 || vc != 1 || m2.Len() != 2 {
		t.Fatalf("after reopen: a %v, b %d, c %d, len %d", hasA, vb, vc, m2.Len())
	}
	m.Close()
	m2.Close()
}

// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package resources

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/reconciled/reconciled/apis/v1alpha1"
)

func hostFile(name, role string) string {
	return "apiVersion: reconciled.dev/v1alpha1\nkind: Host\nmetadata:\n  name: " + name + "\n  labels: {role: " + role + "}\nspec: {address: \"" + name + ":9470\"}\n"
}

func selectedProcess(name, selector string) string {
	return "apiVersion: reconciled.dev/v1alpha1\nkind: Process\nmetadata:\n  name: " + name + "\n  annotations: {reconciled.dev/hosts: \"" + selector + "\"}\nspec: {command: [/bin/true]}\n"
}

// A resource with a reconciled.dev/hosts selector applies only on hosts
// whose labels (their Host resource's, and reconciled.dev/hostname) match;
// a Host that changes role moves resources off and onto it.
func TestHostSelection(t *testing.T) {
	src := &memSource{docs: map[string]string{
		"hosts.yaml": hostFile("web1", "web") + "---\n" + hostFile("db1", "db"),
		"web.yaml":   selectedProcess("web", "role=web"),
		"db.yaml":    selectedProcess("db", "role in (db)"),
		"mine.yaml":  selectedProcess("mine", "reconciled.dev/hostname=web1"),
		"all.yaml":   processFile("all", "/bin/all"),
		"bad.yaml":   selectedProcess("bad", "role in ("),
	}}
	s, err := NewStore(Options{Dir: t.TempDir(), Source: src, Host: "web1", Status: StatusNone, DeleteGrace: 50 * time.Millisecond, RelistInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Load(); err != nil {
		t.Fatal(err)
	}
	has := func(kind, name string) bool { _, ok := s.Get(kind, name); return ok }
	for name, want := range map[string]bool{"web": true, "db": false, "mine": true, "all": true} {
		if has(v1alpha1.KindProcess, name) != want {
			t.Errorf("after load: %s present %v, want %v", name, !want, want)
		}
	}
	if !has(v1alpha1.KindHost, "db1") || !has(v1alpha1.KindHost, "web1") {
		t.Error("every Host applies on every host")
	}
	if _, invalid := s.Counts(); invalid != 1 {
		t.Errorf("%d invalid, want 1 (the selector that does not parse)", invalid)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Start(ctx) }()
	defer func() { cancel(); <-done }()
	eventually(t, "the source watched", func() bool { src.mu.Lock(); defer src.mu.Unlock(); return src.changed != nil })

	src.set("hosts.yaml", hostFile("web1", "db")+"---\n"+hostFile("db1", "db"))
	eventually(t, "web1 now runs db, not web", func() bool {
		return has(v1alpha1.KindProcess, "db") && !has(v1alpha1.KindProcess, "web")
	})
	if !has(v1alpha1.KindProcess, "mine") || !has(v1alpha1.KindProcess, "all") {
		t.Fatal("a role change removed resources that still apply")
	}
	// Without its Host resource, the host has only its hostname label.
	src.set("hosts.yaml", hostFile("db1", "db"))
	eventually(t, "db gone with web1's Host", func() bool { return !has(v1alpha1.KindProcess, "db") && has(v1alpha1.KindProcess, "mine") })
}

// FuzzHostsSelector: any reconciled.dev/hosts value decodes without a
// panic; a document is valid only when its selector parses, and selection
// never panics.
func FuzzHostsSelector(f *testing.F) {
	for _, s := range []string{"role=web", "role in (web,db),site!=lab", "!legacy", "role in (", "", "a=b,,", "reconciled.dev/hostname=web1", "x notin (a)"} {
		f.Add(s, "web")
	}
	f.Fuzz(func(t *testing.T, selector, role string) {
		quoted, _ := json.Marshal(selector)
		doc := "apiVersion: reconciled.dev/v1alpha1\nkind: Process\nmetadata:\n  name: p\n  annotations: {reconciled.dev/hosts: " + string(quoted) + "}\nspec: {command: [/bin/true]}\n"
		docs, err := DecodeFile("f.yaml", []byte(doc))
		if err != nil || len(docs) != 1 {
			return // not a YAML string (control characters): the decoder says so
		}
		d := docs[0]
		_, perr := labels.Parse(selector)
		if (d.Object != nil) != (perr == nil) {
			t.Fatalf("selector %q: valid %v, parse error %v", selector, d.Object != nil, perr)
		}
		s := &Store{opts: Options{Host: "h"}, hostLabels: labels.Set{"role": role, v1alpha1.LabelHostname: "h"}}
		s.selectsLocked(d)
	})
}

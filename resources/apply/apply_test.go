// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package apply

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/resources"
)

func newWriter(t *testing.T) (*Writer, *resources.Store) {
	t.Helper()
	dir := t.TempDir()
	s, err := resources.NewStore(resources.Options{Dir: dir, StateDir: t.TempDir(), Status: resources.StatusNone})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Load(); err != nil {
		t.Fatal(err)
	}
	return New(s), s
}

const sleeper = `# my sleeper
apiVersion: reconciled.dev/v1alpha1
kind: Process
metadata:
  name: web
spec:
  command: [/bin/sleep, "100"]
`

func TestApplyCreateUpdateUnchanged(t *testing.T) {
	w, s := newWriter(t)
	res, err := w.Apply("process", "web", []byte(sleeper))
	if err != nil || res != Created {
		t.Fatalf("first Apply = %q, %v; want created", res, err)
	}
	data, err := os.ReadFile(w.Path(v1alpha1.KindProcess, "web"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "# Written by reconciled") || !strings.Contains(string(data), "# my sleeper") {
		t.Errorf("file lacks the header or the user's comment:\n%s", data)
	}
	if filepath.Dir(w.Path("Process", "web")) != filepath.Join(s.Dir(), Folder) {
		t.Errorf("Path = %s, want it under %s/%s", w.Path("Process", "web"), s.Dir(), Folder)
	}
	o, ok := s.Get(v1alpha1.KindProcess, "web")
	if !ok {
		t.Fatal("the store does not have the applied resource")
	}
	if got := o.(*v1alpha1.Process).Spec.Command; len(got) != 2 || got[1] != "100" {
		t.Errorf("stored command = %q", got)
	}

	if res, err := w.Apply("processes", "web", []byte(sleeper)); err != nil || res != Unchanged {
		t.Errorf("same Apply again = %q, %v; want unchanged", res, err)
	}
	changed := strings.Replace(sleeper, `"100"`, `"200"`, 1)
	if res, err := w.Apply("proc", "web", []byte(changed)); err != nil || res != Configured {
		t.Errorf("changed Apply = %q, %v; want configured", res, err)
	}
	o, _ = s.Get(v1alpha1.KindProcess, "web")
	if got := o.(*v1alpha1.Process).Spec.Command[1]; got != "200" {
		t.Errorf("stored command after update = %q, want 200", got)
	}
}

// What `get -o yaml` or `-o json` prints can be applied again: the fields
// the daemon owns are dropped.
func TestApplyDropsDaemonFields(t *testing.T) {
	w, _ := newWriter(t)
	in := `{"apiVersion":"reconciled.dev/v1alpha1","kind":"Process",
"metadata":{"name":"web","generation":3,"creationTimestamp":"2026-01-01T00:00:00Z",
"annotations":{"reconciled.dev/source":"/x/y.yaml:1","team":"ops"}},
"spec":{"command":["/bin/true"]},"status":{"phase":"Running","pid":42}}`
	if _, err := w.Apply("process", "web", []byte(in)); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(w.Path("Process", "web"))
	for _, gone := range []string{"status", "generation", "creationTimestamp", "reconciled.dev/source", "{"} {
		if strings.Contains(string(data), gone) {
			t.Errorf("written file contains %q:\n%s", gone, data)
		}
	}
	if !strings.Contains(string(data), "team: ops") {
		t.Errorf("written file lost the user's annotation:\n%s", data)
	}
}

func TestApplyRefusals(t *testing.T) {
	w, s := newWriter(t)
	// A resource from a git-managed file.
	if err := os.WriteFile(filepath.Join(s.Dir(), "git.yaml"), []byte(strings.Replace(sleeper, "name: web", "name: fromgit", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	s.Reload(filepath.Join(s.Dir(), "git.yaml"))

	var invalid *InvalidError
	_, err := w.Apply("process", "web", []byte(strings.Replace(sleeper, "command: [/bin/sleep, \"100\"]", "command: []\n  restartPolicy: Sometimes", 1)))
	if !errors.As(err, &invalid) {
		t.Fatalf("invalid spec: error %v, want *InvalidError", err)
	}
	fields := map[string]bool{}
	for _, c := range invalid.Causes {
		fields[c.Field] = true
		if c.Line == 0 {
			t.Errorf("cause %v has no line", c)
		}
	}
	if !fields["spec.command"] || !fields["spec.restartPolicy"] {
		t.Errorf("causes %v, want spec.command and spec.restartPolicy", invalid.Causes)
	}

	var bad *BadRequestError
	for name, tc := range map[string]struct{ kind, name, body string }{
		"wrong kind":    {"link", "web", sleeper},
		"wrong name":    {"process", "other", sleeper},
		"two documents": {"process", "web", sleeper + "---\n" + sleeper},
		"no document":   {"process", "web", "# nothing\n"},
		"not YAML":      {"process", "web", "kind: [unclosed\n"},
		"not a mapping": {"process", "web", "- a\n- b\n"},
		"unknown kind":  {"gizmo", "web", sleeper},
	} {
		if _, err := w.Apply(tc.kind, tc.name, []byte(tc.body)); !errors.As(err, &bad) {
			t.Errorf("%s: error %v, want *BadRequestError", name, err)
		}
	}

	var conflict *ConflictError
	_, err = w.Apply("process", "fromgit", []byte(strings.Replace(sleeper, "name: web", "name: fromgit", 1)))
	if !errors.As(err, &conflict) || !strings.Contains(err.Error(), "git.yaml") {
		t.Errorf("apply over a git-managed resource: error %v, want a conflict naming git.yaml", err)
	}
	if _, err := w.Delete("process", "fromgit"); !errors.As(err, &conflict) {
		t.Errorf("delete of a git-managed resource: error %v, want a conflict", err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), "git.yaml")); err != nil {
		t.Errorf("the git-managed file is gone: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), Folder)); err == nil {
		entries, _ := os.ReadDir(filepath.Join(s.Dir(), Folder))
		if len(entries) != 0 {
			t.Errorf("refused requests left files behind: %v", entries)
		}
	}
}

func TestDelete(t *testing.T) {
	w, _ := newWriter(t)
	if _, err := w.Delete("process", "web"); !errors.Is(err, ErrNotFound) {
		t.Errorf("delete of an unknown resource: %v, want ErrNotFound", err)
	}
	if _, err := w.Apply("process", "web", []byte(sleeper)); err != nil {
		t.Fatal(err)
	}
	if res, err := w.Delete("processes", "web"); err != nil || res != Deleted {
		t.Fatalf("Delete = %q, %v", res, err)
	}
	if _, err := os.Stat(w.Path("Process", "web")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("file still there after Delete: %v", err)
	}
}

// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package apply

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
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

const sensor = `# the sensor reader
apiVersion: reconciled.dev/v1alpha1
kind: Module
metadata:
  name: sensor
spec:
  # what runs
  exec: [/usr/bin/python3, main.py]
  state: Running # wanted state
`

func moduleSpec(t *testing.T, s *resources.Store, name string) v1alpha1.ModuleSpec {
	t.Helper()
	o, ok := s.Get(v1alpha1.KindModule, name)
	if !ok {
		t.Fatalf("the store has no module %q", name)
	}
	return o.(*v1alpha1.Module).Spec
}

func TestSetSpecField(t *testing.T) {
	w, s := newWriter(t)
	if _, err := w.Apply("module", "sensor", []byte(sensor)); err != nil {
		t.Fatal(err)
	}
	// The daemon wrote status into the file (--status inline).
	path := w.Path(v1alpha1.KindModule, "sensor")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(data, "status:\n  phase: Active\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	s.Reload(path)

	res, err := w.SetSpecField("mod", "sensor", "state", "Stopped")
	if err != nil || res != Configured {
		t.Fatalf("SetSpecField(state, Stopped) = %q, %v; want configured", res, err)
	}
	if got := moduleSpec(t, s, "sensor").State; got != "Stopped" {
		t.Errorf("stored spec.state = %q, want Stopped", got)
	}
	data, _ = os.ReadFile(path)
	text := string(data)
	for _, want := range []string{"# the sensor reader", "# what runs", "state: Stopped # wanted state", "exec: [/usr/bin/python3, main.py]"} {
		if !strings.Contains(text, want) {
			t.Errorf("file lacks %q:\n%s", want, text)
		}
	}
	if n := strings.Count(text, "# Written by reconciled"); n != 1 {
		t.Errorf("file has the writer's header %d times, want once:\n%s", n, text)
	}
	if strings.Contains(text, "status:") {
		t.Errorf("file still has the status block:\n%s", text)
	}

	if res, err := w.SetSpecField("module", "sensor", "state", "Stopped"); err != nil || res != Unchanged {
		t.Errorf("same SetSpecField again = %q, %v; want unchanged", res, err)
	}

	// A field the document does not have yet is added; a value that
	// looks like a boolean stays a string.
	if res, err := w.SetSpecField("module", "sensor", "description", "true"); err != nil || res != Configured {
		t.Fatalf("SetSpecField(description, true) = %q, %v; want configured", res, err)
	}
	if got := moduleSpec(t, s, "sensor").Description; got != "true" {
		t.Errorf("stored spec.description = %q, want the string true", got)
	}
}

// A resource applied without a spec block gets one.
func TestSetSpecFieldAddsSpec(t *testing.T) {
	got, err := setSpecField([]byte("kind: Module\nmetadata: {name: a}\n"), "state", "Stopped")
	if err != nil {
		t.Fatal(err)
	}
	if want := "kind: Module\nmetadata: {name: a}\nspec:\n  state: Stopped\n"; string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	got, err = setSpecField([]byte("kind: Module\nspec: # empty\n"), "state", "Running")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(got), "state: Running") || !strings.Contains(string(got), "# empty") {
		t.Errorf("null spec: got\n%s", got)
	}
}

func TestSetSpecFieldRefusals(t *testing.T) {
	w, s := newWriter(t)
	if _, err := w.Apply("module", "sensor", []byte(sensor)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Apply("process", "web", []byte(sleeper)); err != nil {
		t.Fatal(err)
	}
	git := filepath.Join(s.Dir(), "git.yaml")
	if err := os.WriteFile(git, []byte(strings.Replace(sensor, "name: sensor", "name: fromgit", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	s.Reload(git)
	before := map[string][]byte{}
	for _, p := range []string{git, w.Path("Module", "sensor"), w.Path("Process", "web")} {
		before[p], _ = os.ReadFile(p)
	}

	var (
		invalid  *InvalidError
		bad      *BadRequestError
		conflict *ConflictError
	)
	for name, tc := range map[string]struct {
		kind, name, field, value string
		check                    func(error) bool
		invalidField             string // the field an InvalidError must name
	}{
		"value not allowed":  {"module", "sensor", "state", "Paused", func(err error) bool { return errors.As(err, &invalid) }, "spec.state"},
		"kind has no field":  {"process", "web", "state", "Stopped", func(err error) bool { return errors.As(err, &invalid) }, "spec.state"},
		"defined in git":     {"module", "fromgit", "state", "Stopped", func(err error) bool { return errors.As(err, &conflict) }, ""},
		"unknown resource":   {"module", "nosuch", "state", "Stopped", func(err error) bool { return errors.Is(err, ErrNotFound) }, ""},
		"unknown kind":       {"gizmo", "sensor", "state", "Stopped", func(err error) bool { return errors.As(err, &bad) }, ""},
		"field is a path":    {"module", "sensor", "extra.Service", "x", func(err error) bool { return errors.As(err, &bad) }, ""},
		"field name missing": {"module", "sensor", "", "x", func(err error) bool { return errors.As(err, &bad) }, ""},
	} {
		t.Run(name, func(t *testing.T) {
			invalid = nil
			_, err := w.SetSpecField(tc.kind, tc.name, tc.field, tc.value)
			if err == nil || !tc.check(err) {
				t.Fatalf("error %v (%T), not the expected kind", err, err)
			}
			if tc.invalidField != "" {
				found := false
				for _, c := range invalid.Causes {
					found = found || c.Field == tc.invalidField
				}
				if !found {
					t.Errorf("causes %v do not name %s", invalid.Causes, tc.invalidField)
				}
			}
		})
	}
	for p, b := range before {
		if now, _ := os.ReadFile(p); string(now) != string(b) {
			t.Errorf("refused requests changed %s:\n%s", p, now)
		}
	}
	if got := moduleSpec(t, s, "sensor").State; got != "Running" {
		t.Errorf("stored spec.state = %q after refusals, want Running", got)
	}
}

// Names that would lead out of the API folder are refused by every write,
// and nothing outside it is created or removed.
func TestPathTraversalRefused(t *testing.T) {
	w, s := newWriter(t)
	outside := filepath.Join(filepath.Dir(s.Dir()), "victim.yaml")
	if err := os.WriteFile(outside, []byte("keep me\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := filesOutside(filepath.Dir(s.Dir()), s.Dir())
	for _, name := range []string{"../victim", "../../victim", "a/b", "..", ".", "/etc/passwd", "x\x00y", ""} {
		body := strings.Replace(sleeper, "name: web", fmt.Sprintf("name: %q", name), 1)
		if _, err := w.Apply("process", name, []byte(body)); err == nil {
			t.Errorf("Apply of %q succeeded", name)
		}
		if _, err := w.Delete("process", name); err == nil {
			t.Errorf("Delete of %q succeeded", name)
		}
		if _, err := w.SetSpecField("process", name, "state", "Stopped"); err == nil {
			t.Errorf("SetSpecField of %q succeeded", name)
		}
	}
	if b, err := os.ReadFile(outside); err != nil || string(b) != "keep me\n" {
		t.Fatalf("the file outside --dir changed: %q, %v", b, err)
	}
	if after := filesOutside(filepath.Dir(s.Dir()), s.Dir()); !slices.Equal(after, before) {
		t.Fatalf("files outside --dir changed: before %v, after %v", before, after)
	}
}

// filesOutside lists the files below root that are not below dir.
func filesOutside(root, dir string) []string {
	var out []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasPrefix(p, dir+string(filepath.Separator)) {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// TestSymlinkedFolderRefused: with <dir>/api a symlink out of --dir, an
// apply is refused instead of writing outside --dir, where the store does
// not read (issue 11: the resource vanished at the next start).
func TestSymlinkedFolderRefused(t *testing.T) {
	w, s := newWriter(t)
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(s.Dir(), Folder)); err != nil {
		t.Fatal(err)
	}
	_, err := w.Apply("process", "web", []byte(sleeper))
	if !errors.Is(err, ErrSymlink) || !strings.Contains(err.Error(), outside) {
		t.Errorf("Apply through a symlinked folder: %v", err)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("files written outside --dir: %v", entries)
	}
	// A symlinked file in a real folder is refused too.
	os.Remove(filepath.Join(s.Dir(), Folder))
	os.Mkdir(filepath.Join(s.Dir(), Folder), 0o755)
	os.Symlink(filepath.Join(outside, "x.yaml"), w.Path("Process", "web"))
	if _, err := w.Apply("process", "web", []byte(sleeper)); !errors.Is(err, ErrSymlink) {
		t.Errorf("Apply onto a symlinked file: %v", err)
	}
}

// A dry run answers as the write would (the result, the object, the same
// errors) and writes nothing.
func TestDryRun(t *testing.T) {
	w, s := newWriter(t)
	res, obj, err := w.DryRun("process", "web", []byte(sleeper))
	if err != nil || res != Created || obj.(*v1alpha1.Process).Spec.Command[1] != "100" {
		t.Fatalf("DryRun of a new resource = %q, %v, %v", res, obj, err)
	}
	if _, err := os.Stat(w.Path("Process", "web")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a dry run wrote the file: %v", err)
	}
	if _, ok := s.Get(v1alpha1.KindProcess, "web"); ok {
		t.Fatal("a dry run reached the store")
	}
	if _, err := w.Apply("process", "web", []byte(sleeper)); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(w.Path("Process", "web"))
	if res, _, err := w.DryRun("process", "web", []byte(sleeper)); err != nil || res != Unchanged {
		t.Errorf("DryRun of the same = %q, %v", res, err)
	}
	changed := strings.Replace(sleeper, `"100"`, `"200"`, 1)
	if res, obj, err := w.DryRun("process", "web", []byte(changed)); err != nil || res != Configured || obj.(*v1alpha1.Process).Spec.Command[1] != "200" {
		t.Errorf("DryRun of a change = %q, %v, %v", res, obj, err)
	}
	var invalid *InvalidError
	if _, _, err := w.DryRun("process", "web", []byte(strings.Replace(sleeper, "command:", "comand:", 1))); !errors.As(err, &invalid) {
		t.Errorf("DryRun of an invalid resource: %v, want an InvalidError", err)
	}
	if res, err := w.DryRunDelete("process", "web"); err != nil || res != Deleted {
		t.Errorf("DryRunDelete = %q, %v", res, err)
	}
	if after, _ := os.ReadFile(w.Path("Process", "web")); string(after) != string(before) {
		t.Errorf("dry runs changed the file:\n%s\nwas\n%s", after, before)
	}
	if _, err := w.DryRunDelete("process", "nothere"); !errors.Is(err, ErrNotFound) {
		t.Errorf("DryRunDelete of an unknown resource: %v", err)
	}
}

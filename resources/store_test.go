// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package resources

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reconciled/reconciled/test/fixtures/waitfor"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/reconciled/reconciled/apis/v1alpha1"
)

const pollTimeout = 10 * time.Second

// eventually polls cond until it holds, failing the test after 10s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitfor.Within(t, pollTimeout, what, cond)
}

// consistently checks that cond holds throughout d.
func consistently(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	waitfor.Steady(t, d, what, cond)
}

// harness is a resource directory, a state directory and a real Store.
type harness struct {
	t          *testing.T
	dir, state string
	s          *Store
	// deleteGrace is the stores' Options.DeleteGrace (0: the default).
	deleteGrace time.Duration

	mu    sync.Mutex
	calls map[string]int // handler calls by "Kind/name"
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	root := t.TempDir()
	h := &harness{t: t, dir: filepath.Join(root, "resources"), state: filepath.Join(root, "state"), calls: map[string]int{}}
	if err := os.MkdirAll(h.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) path(name string) string { return filepath.Join(h.dir, name) }

// newStore makes and loads a store over the harness directories.
func (h *harness) newStore(mode StatusMode) *Store {
	h.t.Helper()
	s, err := NewStore(Options{Dir: h.dir, StateDir: h.state, Status: mode, DeleteGrace: h.deleteGrace})
	if err != nil {
		h.t.Fatalf("NewStore: %v", err)
	}
	s.Subscribe("", true, func(c *Change) {
		h.mu.Lock()
		h.calls[c.Key.Kind+"/"+c.Key.Name]++
		h.mu.Unlock()
	})
	if err := s.Load(); err != nil {
		h.t.Fatalf("Load: %v", err)
	}
	h.s = s
	return s
}

// start makes, loads and runs a store; it is stopped at the end of the
// test, or earlier by calling the returned function.
func (h *harness) start(mode StatusMode) (*Store, func()) {
	h.t.Helper()
	s := h.newStore(mode)
	return s, h.run(s)
}

// run runs s until the returned function (also registered as cleanup) is
// called; that function waits for Run to return.
func (h *harness) run(s *Store) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Start(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					h.t.Errorf("Run: %v", err)
				}
			case <-time.After(pollTimeout):
				h.t.Errorf("Run did not return within %v of cancel", pollTimeout)
			}
		})
	}
	h.t.Cleanup(stop)
	return stop
}

func (h *harness) handlerCalls(kind, name string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls[kind+"/"+name]
}

// write replaces a file atomically (temp file + rename), as editors and
// git do.
func (h *harness) write(name, content string) {
	h.t.Helper()
	h.writeWith(name, content, func(string) error { return nil })
}

// writeWith is write that calls prepare on the temporary file before the
// rename (to set its owner or mode before the file appears).
func (h *harness) writeWith(name, content string, prepare func(path string) error) {
	h.t.Helper()
	tmp := filepath.Join(h.dir, ".test-tmp-"+strings.ReplaceAll(name, "/", "_"))
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		h.t.Fatal(err)
	}
	if err := prepare(tmp); err != nil {
		h.t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(h.path(name)), 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := os.Rename(tmp, h.path(name)); err != nil {
		h.t.Fatal(err)
	}
}

// writeInPlace truncates and rewrites a file, passing through an empty file.
func (h *harness) writeInPlace(name, content string) {
	h.t.Helper()
	if err := os.WriteFile(h.path(name), []byte(content), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) read(name string) string {
	h.t.Helper()
	b, err := os.ReadFile(h.path(name))
	if err != nil {
		h.t.Fatal(err)
	}
	return string(b)
}

func (h *harness) remove(name string) {
	h.t.Helper()
	if err := os.Remove(h.path(name)); err != nil {
		h.t.Fatal(err)
	}
}

// waitApplied waits until the store has applied exactly this content of
// a file (useful when the content changes nothing observable).
func (h *harness) waitApplied(s *Store, name, content string) {
	h.t.Helper()
	want := hashBytes([]byte(content))
	eventually(h.t, "store to apply "+name, func() bool {
		s.mu.RLock()
		defer s.mu.RUnlock()
		f := s.files[h.path(name)]
		return f != nil && f.hash == want
	})
}

// processFile returns a one-document Process file.
func processFile(name string, command ...string) string {
	return lines(
		"# "+name+": a test process",
		"apiVersion: reconciled.dev/v1alpha1",
		"kind: Process",
		"metadata:",
		"  name: "+name,
		"spec:",
		"  command: ["+quoteAll(command)+"]",
	)
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

func linkFile(name, address string) string {
	return lines(
		"apiVersion: reconciled.dev/v1alpha1",
		"kind: Link",
		"metadata: {name: "+name+"}",
		"spec:",
		"  tcp: {address: \""+address+"\"}   # the far end",
	)
}

func getProcess(t *testing.T, s *Store, name string) *v1alpha1.Process {
	t.Helper()
	obj, ok := s.Get(v1alpha1.KindProcess, name)
	if !ok {
		t.Fatalf("Get(Process, %s): not found", name)
	}
	return obj.(*v1alpha1.Process)
}

func generation(s *Store, kind, name string) int64 {
	obj, ok := s.Get(kind, name)
	if !ok {
		return -1
	}
	return obj.GetObjectMeta().Generation
}

func command(s *Store, name string) string {
	obj, ok := s.Get(v1alpha1.KindProcess, name)
	if !ok {
		return "<none>"
	}
	return strings.Join(obj.(*v1alpha1.Process).Spec.Command, " ")
}

func TestIgnored(t *testing.T) {
	tests := map[string]bool{
		"a.yaml":                 false,
		"a.yml":                  false,
		"sub/dir/a.yaml":         false,
		"a.json":                 true,
		"README.md":              true,
		"a.yaml.bak":             true,
		"a.YAML":                 true,
		"a.yaml~":                true,
		"a.yml~":                 true,
		".a.yaml.swp":            true,
		"a.yaml.swp":             true,
		"a.yaml.swx":             true,
		".#a.yaml":               true,
		"#a.yaml#":               true,
		"sub/#a.yaml#":           true,
		"4913":                   true,
		"sub/4913":               true,
		".hidden.yaml":           true,
		".git/config.yaml":       true,
		"sub/.hidden/a.yaml":     true,
		".a.yaml.tmp-123":        true,
		"./a.yaml":               false,
		"dir.yaml/a.txt":         true,
		"4913.yaml":              false,
		"#notbackup.yaml":        false,
		"k8s/overlays/prod.yaml": false,
	}
	for rel, want := range tests {
		t.Run(rel, func(t *testing.T) {
			if got := Ignored(rel); got != want {
				t.Errorf("Ignored(%q) = %v, want %v", rel, got, want)
			}
		})
	}
}

func TestNewStoreOptions(t *testing.T) {
	dir := t.TempDir()
	tests := map[string]struct {
		opts    Options
		wantErr bool
	}{
		"defaults":                 {opts: Options{Dir: dir}},
		"inline without state dir": {opts: Options{Dir: dir, Status: StatusInline}},
		"none":                     {opts: Options{Dir: dir, Status: StatusNone}},
		"sidecar with state dir":   {opts: Options{Dir: dir, StateDir: t.TempDir(), Status: StatusSidecar}},
		"sidecar without state":    {opts: Options{Dir: dir, Status: StatusSidecar}, wantErr: true},
		"unknown mode":             {opts: Options{Dir: dir, Status: "files"}, wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s, err := NewStore(tc.opts)
			if (err != nil) != tc.wantErr {
				t.Fatalf("NewStore error = %v, wantErr %v", err, tc.wantErr)
			}
			if err == nil && !filepath.IsAbs(s.Dir()) {
				t.Errorf("Dir() = %q, not absolute", s.Dir())
			}
		})
	}
	s, err := NewStore(Options{Dir: filepath.Join(dir, "missing")})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Load(); err == nil {
		t.Error("Load of a missing directory succeeded")
	}
}

// TestLoad checks a directory with subfolders, ignored files and problems.
func TestLoad(t *testing.T) {
	h := newHarness(t)
	h.write("a.yaml", processFile("a", "/bin/a"))
	h.write("sub/deeper/b.yml", processFile("b", "/bin/b")+"---\n"+linkFile("l", "127.0.0.1:1"))
	h.write("c.yaml~", processFile("backup", "/bin/c"))
	h.write(".hidden/d.yaml", processFile("hidden", "/bin/d"))
	h.write("notes.txt", processFile("notes", "/bin/e"))
	h.write("bad.yaml", "kind: [\n")
	h.write("noname.yaml", lines("apiVersion: reconciled.dev/v1alpha1", "kind: Process", "spec: {command: [x]}"))
	s := h.newStore(StatusNone)

	if diff := cmp.Diff([]string{"a", "b"}, s.Names(v1alpha1.KindProcess)); diff != "" {
		t.Errorf("Names(Process) mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"l"}, s.Names(v1alpha1.KindLink)); diff != "" {
		t.Errorf("Names(Link) mismatch (-want +got):\n%s", diff)
	}
	var got []string
	for _, p := range s.Problems() {
		got = append(got, fmt.Sprintf("%s:%d %s", filepath.Base(p.File), p.Line, p.Reason))
	}
	if diff := cmp.Diff([]string{"bad.yaml:1 InvalidSpec", "noname.yaml:1 InvalidSpec"}, got); diff != "" {
		t.Errorf("Problems mismatch (-want +got):\n%s", diff)
	}
	v, ok := s.View(v1alpha1.KindLink, "l")
	if !ok {
		t.Fatal("View(Link, l) not found")
	}
	if src := v.GetObjectMeta().Annotations[AnnotationSource]; src != h.path("sub/deeper/b.yml")+":9" {
		t.Errorf("source annotation = %q", src)
	}
	if obj, _ := s.Get(v1alpha1.KindLink, "l"); obj.GetObjectMeta().Annotations[AnnotationSource] != "" {
		t.Error("Get returned an object carrying the source annotation; only views have it")
	}
	if _, ok := s.Get(v1alpha1.KindProcess, "nope"); ok {
		t.Error("Get of a missing resource succeeded")
	}
	if err := s.UpdateStatus(v1alpha1.KindProcess, "nope", v1alpha1.ProcessStatus{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("UpdateStatus of a missing resource = %v, want ErrNotFound", err)
	}
	counts, invalid := s.Counts()
	if counts[Key{v1alpha1.KindProcess, ""}] != 2 || invalid != 2 {
		t.Errorf("Counts() = %v, %d", counts, invalid)
	}
}

// TestGenerations checks that the generation starts at 1 and goes up by
// exactly one per change of the spec's content, not for formatting,
// comments, spelled-out defaults or metadata.
func TestGenerations(t *testing.T) {
	h := newHarness(t)
	v1 := processFile("gen", "/bin/sleep", "1")
	h.write("gen.yaml", v1)
	s, _ := h.start(StatusNone)
	if g := generation(s, v1alpha1.KindProcess, "gen"); g != 1 {
		t.Fatalf("first generation = %d, want 1", g)
	}
	calls := h.handlerCalls(v1alpha1.KindProcess, "gen")

	steps := []struct {
		name    string
		content string
		gen     int64
		handler bool // the handler must be called
	}{
		{"comment and formatting", lines(
			"# a new comment",
			"apiVersion: reconciled.dev/v1alpha1",
			"kind:    Process",
			"metadata: {name: gen}   # flow style now",
			"spec:",
			"  command:",
			"  - /bin/sleep",
			"  - '1'",
		), 1, false},
		{"spelled-out defaults", processFile("gen", "/bin/sleep", "1") + "  restartPolicy: Always\n  stopTimeout: 10s\n", 1, false},
		{"content change", processFile("gen", "/bin/sleep", "2"), 2, true},
		{"same content again, other formatting", processFile("gen", "/bin/sleep", "2") + "# trailing comment\n", 2, false},
		{"another content change", processFile("gen", "/bin/sleep", "3") + "  restartPolicy: Never\n", 3, true},
		{"label change bumps nothing", strings.Replace(processFile("gen", "/bin/sleep", "3")+"  restartPolicy: Never\n", "  name: gen\n", "  name: gen\n  labels: {app: x}\n", 1), 3, true},
		{"generation in the file is ignored", strings.Replace(processFile("gen", "/bin/sleep", "3")+"  restartPolicy: Never\n", "  name: gen\n", "  name: gen\n  generation: 42\n  labels: {app: x}\n", 1), 3, false},
		{"back to an earlier spec is a change", v1, 4, true},
	}
	for _, st := range steps {
		h.write("gen.yaml", st.content)
		h.waitApplied(s, "gen.yaml", st.content)
		if g := generation(s, v1alpha1.KindProcess, "gen"); g != st.gen {
			t.Fatalf("%s: generation = %d, want %d", st.name, g, st.gen)
		}
		c := h.handlerCalls(v1alpha1.KindProcess, "gen")
		if st.handler && c == calls {
			t.Errorf("%s: handler not called", st.name)
		}
		if !st.handler && c != calls {
			t.Errorf("%s: handler called %d times for a change that changes nothing", st.name, c-calls)
		}
		calls = c
	}
}

// TestGenerationsSurviveRestart checks that generations are kept in the
// state dir across daemon restarts, and bump for a spec edited while the
// daemon was down.
func TestGenerationsSurviveRestart(t *testing.T) {
	h := newHarness(t)
	h.write("p.yaml", processFile("p", "/bin/a"))
	s, stop := h.start(StatusNone)
	h.write("p.yaml", processFile("p", "/bin/b"))
	eventually(t, "generation 2", func() bool { return generation(s, v1alpha1.KindProcess, "p") == 2 })
	stop()
	if _, err := os.Stat(filepath.Join(h.state, "generations.json")); err != nil {
		t.Fatalf("generation records not saved: %v", err)
	}

	// Same spec: same generation, and the creation time survives too.
	created := getProcess(t, s, "p").CreationTimestamp
	s2 := h.newStore(StatusNone)
	if g := generation(s2, v1alpha1.KindProcess, "p"); g != 2 {
		t.Errorf("after restart: generation = %d, want 2", g)
	}
	if c := getProcess(t, s2, "p").CreationTimestamp; c == nil || !c.Equal(created) {
		t.Errorf("creationTimestamp %v, want %v", c, created)
	}

	// Edited while down: one more.
	h.write("p.yaml", processFile("p", "/bin/c"))
	s3 := h.newStore(StatusNone)
	if g := generation(s3, v1alpha1.KindProcess, "p"); g != 3 {
		t.Errorf("after an edit while down: generation = %d, want 3", g)
	}
	s3.Flush() // saves the records
	s4 := h.newStore(StatusNone)
	if g := generation(s4, v1alpha1.KindProcess, "p"); g != 3 {
		t.Errorf("after a second restart: generation = %d, want 3", g)
	}

	// A corrupt record file costs continuity, nothing else.
	if err := os.WriteFile(filepath.Join(h.state, "generations.json"), []byte("{garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	s5 := h.newStore(StatusNone)
	if g := generation(s5, v1alpha1.KindProcess, "p"); g != 1 {
		t.Errorf("with corrupt records: generation = %d, want 1", g)
	}
}

// TestGenerationFromFile checks that without records (no state dir) the
// generation the daemon wrote into the file is taken up again.
func TestGenerationFromFile(t *testing.T) {
	h := newHarness(t)
	h.write("p.yaml", strings.Replace(processFile("p", "/bin/a"), "  name: p\n", "  name: p\n  generation: 5\n", 1))
	s, err := NewStore(Options{Dir: h.dir, Status: StatusNone})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Load(); err != nil {
		t.Fatal(err)
	}
	if g := generation(s, v1alpha1.KindProcess, "p"); g != 5 {
		t.Errorf("generation = %d, want 5 from the file", g)
	}
}

func runningStatus(gen int64, pid int) v1alpha1.ProcessStatus {
	st := v1alpha1.ProcessStatus{Pid: pid}
	st.ObservedGeneration = gen
	st.Phase = v1alpha1.ProcessRunning
	st.SetCondition(v1alpha1.Condition{
		Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Running",
		LastTransitionTime: metav1.NewTime(time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)), ObservedGeneration: gen,
	})
	return st
}

// TestStatusInline checks that status is written into the resource's own
// document, changing no other byte, only when it changes, and that the
// daemon's own write is not taken for an edit.
func TestStatusInline(t *testing.T) {
	h := newHarness(t)
	src := lines(
		"# Two resources; comments and formatting must survive.",
		"apiVersion: reconciled.dev/v1alpha1",
		"kind: Process",
		"metadata:",
		"  name: web     # the web server",
		"  labels: {app: web}",
		"spec:",
		`  command: ["/usr/bin/python3", "-m", "http.server"]   # no shell`,
		"  env: {PYTHONUNBUFFERED: \"1\"}",
		"---",
		"# the link",
		"apiVersion: reconciled.dev/v1alpha1",
		"kind: Link",
		"metadata: {name: far}",
		"spec:",
		"  tcp: {address: \"far.example.net:700\"}",
	)
	h.write("web.yaml", src)
	if err := os.Chmod(h.path("web.yaml"), 0o640); err != nil {
		t.Fatal(err)
	}
	s, _ := h.start(StatusInline)
	calls := h.handlerCalls(v1alpha1.KindProcess, "web")

	if err := s.UpdateStatus(v1alpha1.KindProcess, "web", runningStatus(1, 4242)); err != nil {
		t.Fatal(err)
	}
	want := lines(
		"# Two resources; comments and formatting must survive.",
		"apiVersion: reconciled.dev/v1alpha1",
		"kind: Process",
		"metadata:",
		"  generation: 1",
		"  name: web     # the web server",
		"  labels: {app: web}",
		"spec:",
		`  command: ["/usr/bin/python3", "-m", "http.server"]   # no shell`,
		"  env: {PYTHONUNBUFFERED: \"1\"}",
		"status:",
		"  conditions:",
		"  - lastTransitionTime: \"2026-11-21T10:00:00Z\"",
		"    message: \"\"",
		"    observedGeneration: 1",
		"    reason: Running",
		"    status: \"True\"",
		"    type: Ready",
		"  observedGeneration: 1",
		"  phase: Running",
		"  pid: 4242",
		"---",
		"# the link",
		"apiVersion: reconciled.dev/v1alpha1",
		"kind: Link",
		"metadata: {name: far}",
		"spec:",
		"  tcp: {address: \"far.example.net:700\"}",
	)
	eventually(t, "status written into the file", func() bool { return h.read("web.yaml") == want })
	eventually(t, "one write counted", func() bool { return s.Writes() == 1 })
	if fi, err := os.Stat(h.path("web.yaml")); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("file mode not kept: %v %v", fi.Mode(), err)
	}
	// The write comes back as an inotify event; it is our own and must not
	// look like an edit.
	consistently(t, "no handler call for the daemon's own write", 300*time.Millisecond, func() bool {
		return h.handlerCalls(v1alpha1.KindProcess, "web") == calls
	})
	if diff := cmp.Diff(runningStatus(1, 4242), getProcess(t, s, "web").Status); diff != "" {
		t.Errorf("status mismatch (-want +got):\n%s", diff)
	}

	// Unchanged status: nothing is written.
	if err := s.UpdateStatus(v1alpha1.KindProcess, "web", runningStatus(1, 4242)); err != nil {
		t.Fatal(err)
	}
	s.Flush()
	if n := s.Writes(); n != 1 {
		t.Errorf("after an unchanged status: Writes() = %d, want 1", n)
	}

	// A formatting edit by the user that keeps the status: nothing written.
	edited := strings.Replace(want, "# the link\n", "# the link to the far end\n", 1)
	h.write("web.yaml", edited)
	h.waitApplied(s, "web.yaml", edited)
	s.Flush()
	if n := s.Writes(); n != 1 {
		t.Errorf("after a formatting edit: Writes() = %d, want 1", n)
	}
	if got := h.read("web.yaml"); got != edited {
		t.Errorf("file rewritten after a formatting edit:\n%s", got)
	}

	// The user (or a checkout) drops the status block: it comes back.
	noStatus := strings.Replace(src, "# the link\n", "# the link to the far end\n", 1)
	h.write("web.yaml", noStatus)
	eventually(t, "status written back", func() bool { return h.read("web.yaml") == edited })
	eventually(t, "two writes counted", func() bool { return s.Writes() == 2 })

	// A new status replaces the old one in place.
	if err := s.UpdateStatus(v1alpha1.KindProcess, "web", runningStatus(1, 4343)); err != nil {
		t.Fatal(err)
	}
	want2 := strings.Replace(edited, "pid: 4242", "pid: 4343", 1)
	eventually(t, "new status written", func() bool { return h.read("web.yaml") == want2 })

	// No temp files are left behind. (Right after the exchange the old
	// content is briefly at the temp path while it is compared: wait for
	// the writer to finish rather than look at that instant.)
	eventually(t, "only web.yaml in the resource directory", func() bool {
		ents, _ := os.ReadDir(h.dir)
		return len(ents) == 1 && ents[0].Name() == "web.yaml"
	})
	if g := generation(s, v1alpha1.KindProcess, "web"); g != 1 {
		t.Errorf("generation = %d after status writes, want 1", g)
	}
}

// TestStatusWriteNeverOverwritesAnEdit edits the file between the writer
// preparing its change and committing it: the edit must win, and the
// status must follow once the edit is loaded.
func TestStatusWriteNeverOverwritesAnEdit(t *testing.T) {
	h := newHarness(t)
	h.write("p.yaml", processFile("p", "/bin/old"))
	s := h.newStore(StatusInline)
	if err := s.UpdateStatus(v1alpha1.KindProcess, "p", runningStatus(1, 1)); err != nil {
		t.Fatal(err)
	}
	p, err := inlineSink{}.prepare(s.writer, h.path("p.yaml"))
	if err != nil || p == nil {
		t.Fatal("the inline sink prepared nothing")
	}
	userEdit := processFile("p", "/bin/new") + "  user: nobody\n"
	h.writeInPlace("p.yaml", userEdit)
	s.writer.inflight[p.key] = true // as dispatch does
	if n := s.writer.commit([]*pendingWrite{p}); n != 0 {
		t.Errorf("commit wrote %d files over a concurrent edit", n)
	}
	if got := h.read("p.yaml"); got != userEdit {
		t.Fatalf("the user's edit was overwritten:\n%s", got)
	}
	if _, err := os.Stat(p.tmp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temp file %s left behind: %v", p.tmp, err)
	}

	// The same with the writer's own flush, before the store saw the edit.
	userEdit2 := processFile("p", "/bin/newer") + "  user: nobody\n"
	h.writeInPlace("p.yaml", userEdit2)
	s.Flush()
	if got := h.read("p.yaml"); got != userEdit2 {
		t.Fatalf("Flush overwrote the user's edit:\n%s", got)
	}

	// Once running, the store loads the edit and then writes the status.
	h.run(s)
	eventually(t, "the edit loaded and the status written", func() bool {
		got := h.read("p.yaml")
		if !strings.Contains(got, `command: ["/bin/newer"]`) || !strings.Contains(got, "  user: nobody\n") {
			t.Fatalf("the user's edit was lost:\n%s", got)
		}
		return strings.Contains(got, "phase: Running") && strings.Contains(got, "generation: 2")
	})
	if c := command(s, "p"); c != "/bin/newer" {
		t.Errorf("command = %q", c)
	}

	// Racing edits against status updates: every edit survives.
	for i := range 10 {
		if err := s.UpdateStatus(v1alpha1.KindProcess, "p", runningStatus(int64(i), 100+i)); err != nil {
			t.Fatal(err)
		}
		arg := fmt.Sprintf("/bin/edit-%d", i)
		h.writeInPlace("p.yaml", processFile("p", arg))
		eventually(t, fmt.Sprintf("edit %d loaded and status %d written", i, i), func() bool {
			got := h.read("p.yaml")
			if got == "" {
				return false // our own in-place write, half done
			}
			if !strings.Contains(got, arg) {
				t.Fatalf("edit %d was overwritten:\n%s", i, got)
			}
			return strings.Contains(got, fmt.Sprintf("pid: %d", 100+i)) && command(s, "p") == arg
		})
	}
}

// TestInvalidEditKeepsLastValid checks that a bad edit keeps the last
// valid object and reports the problem with file, line and field.
func TestInvalidEditKeepsLastValid(t *testing.T) {
	h := newHarness(t)
	h.write("p.yaml", processFile("p", "/bin/good"))
	s, _ := h.start(StatusNone)
	events, stopWatch := s.Watch(v1alpha1.KindProcess)
	defer stopWatch()

	readyCond := func() *metav1.Condition {
		v, ok := s.View(v1alpha1.KindProcess, "p")
		if !ok {
			return nil
		}
		return v.GetCommonStatus().Condition(v1alpha1.ConditionReady)
	}
	tests := []struct {
		name    string
		content string
		message string // regexp, after the file name
	}{
		{"wrong type", processFile("p", "/bin/good") + "  restartPolicy: 3\n", `^:8: spec\.restartPolicy: must be a string`},
		{"validation", strings.Replace(processFile("p", "/bin/good"), `["/bin/good"]`, `[""]`, 1), `^:7: spec\.command: Required value`},
		{"syntax", processFile("p", "/bin/good") + "  env: {A: b\n", `^:8: invalid YAML: did not find expected ',' or '}'`},
		{"unknown field", processFile("p", "/bin/other") + "  stopTimout: 5s\n", `^:8: spec\.stopTimout: unknown field \(did you mean "stopTimeout"\?\)`},
	}
	for _, tc := range tests {
		h.write("p.yaml", tc.content)
		re := regexp.MustCompile(tc.message)
		eventually(t, tc.name+": InvalidSpec condition", func() bool {
			c := readyCond()
			return c != nil && c.Reason == v1alpha1.ReasonInvalidSpec && strings.HasPrefix(c.Message, h.path("p.yaml")) &&
				re.MatchString(strings.TrimPrefix(c.Message, h.path("p.yaml")))
		})
		c := readyCond()
		if c.Status != metav1.ConditionFalse || c.LastTransitionTime.IsZero() {
			t.Errorf("%s: condition %+v", tc.name, c)
		}
		if got := command(s, "p"); got != "/bin/good" {
			t.Fatalf("%s: Get returned %q, want the last valid object", tc.name, got)
		}
		if g := generation(s, v1alpha1.KindProcess, "p"); g != 1 {
			t.Errorf("%s: generation = %d, want 1", tc.name, g)
		}
		counts, invalid := s.Counts()
		if invalid != 1 || counts[Key{v1alpha1.KindProcess, "Invalid"}] != 1 {
			t.Errorf("%s: Counts() = %v, %d", tc.name, counts, invalid)
		}
	}

	// Fixing it clears the condition and takes the new spec.
	h.write("p.yaml", processFile("p", "/bin/fixed"))
	eventually(t, "the fix to be loaded", func() bool { return command(s, "p") == "/bin/fixed" })
	if c := readyCond(); c != nil {
		t.Errorf("Ready condition after the fix: %+v", c)
	}
	if g := generation(s, v1alpha1.KindProcess, "p"); g != 2 {
		t.Errorf("generation = %d, want 2", g)
	}
	// No deletion was ever seen.
	for {
		select {
		case ev := <-events:
			if ev.Type == Deleted {
				t.Fatalf("DELETED event for an invalid edit")
			}
			continue
		default:
		}
		break
	}
}

// TestInvalidFromTheStart checks a resource that never decoded: it is
// listed as invalid, Get does not return it, and it becomes valid when
// fixed.
func TestInvalidFromTheStart(t *testing.T) {
	h := newHarness(t)
	h.write("p.yaml", processFile("p", "/bin/x")+"  restartPolicy: Sometimes\n")
	s, _ := h.start(StatusNone)
	if _, ok := s.Get(v1alpha1.KindProcess, "p"); ok {
		t.Error("Get returned a resource that never was valid")
	}
	v, ok := s.View(v1alpha1.KindProcess, "p")
	if !ok {
		t.Fatal("View of an invalid resource: not found")
	}
	c := v.GetCommonStatus().Condition(v1alpha1.ConditionReady)
	if c == nil || c.Reason != v1alpha1.ReasonInvalidSpec || !strings.Contains(c.Message, "p.yaml:8: spec.restartPolicy") {
		t.Errorf("condition = %+v", c)
	}
	if l := s.List(v1alpha1.KindProcess); len(l) != 1 {
		t.Errorf("List = %d objects, want 1", len(l))
	}
	h.write("p.yaml", processFile("p", "/bin/x"))
	eventually(t, "the fix to be loaded", func() bool { _, ok := s.Get(v1alpha1.KindProcess, "p"); return ok })
	if g := generation(s, v1alpha1.KindProcess, "p"); g != 1 {
		t.Errorf("generation = %d, want 1", g)
	}
}

// TestDuplicateName checks that the first definition of a name stays,
// the second is reported, and takes over when the first goes away.
func TestDuplicateName(t *testing.T) {
	h := newHarness(t)
	h.deleteGrace = 50 * time.Millisecond
	h.write("a.yaml", processFile("dup", "/bin/first"))
	h.write("b.yaml", linkFile("other", "127.0.0.1:1")+"---\n"+processFile("dup", "/bin/second"))
	s, _ := h.start(StatusNone)

	if got := command(s, "dup"); got != "/bin/first" {
		t.Fatalf("command = %q, want the first definition", got)
	}
	if _, ok := s.Get(v1alpha1.KindLink, "other"); !ok {
		t.Error("the other resource of the second file is missing")
	}
	probs := s.Problems()
	if len(probs) != 1 {
		t.Fatalf("Problems() = %+v, want one", probs)
	}
	p := probs[0]
	if p.File != h.path("b.yaml") || p.Line != 8 || p.Kind != v1alpha1.KindProcess || p.Name != "dup" || p.Reason != v1alpha1.ReasonDuplicateName ||
		!strings.Contains(p.Message, h.path("a.yaml")) || !strings.Contains(p.Message, h.path("b.yaml")) {
		t.Errorf("problem = %+v", p)
	}
	if _, invalid := s.Counts(); invalid != 1 {
		t.Errorf("Counts() invalid = %d, want 1", invalid)
	}

	// Editing the second file changes nothing for the first.
	h.write("b.yaml", linkFile("other", "127.0.0.1:2")+"---\n"+processFile("dup", "/bin/second-edited"))
	eventually(t, "the edit of the second file", func() bool {
		obj, _ := s.Get(v1alpha1.KindLink, "other")
		return obj != nil && obj.(*v1alpha1.Link).Spec.TCP.Address == "127.0.0.1:2"
	})
	if got := command(s, "dup"); got != "/bin/first" {
		t.Fatalf("command = %q after editing the duplicate", got)
	}

	// Removing the first lets the second take over.
	h.remove("a.yaml")
	eventually(t, "the second definition to take over", func() bool { return command(s, "dup") == "/bin/second-edited" })
	eventually(t, "the problem to clear", func() bool { return len(s.Problems()) == 0 })
	if v, _ := s.View(v1alpha1.KindProcess, "dup"); v.GetObjectMeta().Annotations[AnnotationSource] != h.path("b.yaml")+":8" {
		t.Errorf("source = %q", v.GetObjectMeta().Annotations[AnnotationSource])
	}
}

// TestDuplicateNameInOneFile checks two definitions in the same file.
func TestDuplicateNameInOneFile(t *testing.T) {
	h := newHarness(t)
	h.write("a.yaml", processFile("dup", "/bin/first")+"---\n"+processFile("dup", "/bin/second"))
	s := h.newStore(StatusNone)
	if got := command(s, "dup"); got != "/bin/first" {
		t.Errorf("command = %q, want the first definition", got)
	}
	probs := s.Problems()
	if len(probs) != 1 || probs[0].Reason != v1alpha1.ReasonDuplicateName || probs[0].Line != 10 {
		t.Errorf("Problems() = %+v", probs)
	}
}

// nextEvent returns the next event of a watch, failing after 10s.
func nextEvent(t *testing.T, events <-chan Event) Event {
	t.Helper()
	select {
	case ev, ok := <-events:
		if !ok {
			t.Fatal("watch channel closed")
		}
		return ev
	case <-time.After(pollTimeout):
		t.Fatal("no watch event within 10s")
	}
	return Event{}
}

// waitEvent skips events until one of the type for the name arrives.
func waitEvent(t *testing.T, events <-chan Event, typ EventType, name string) Event {
	t.Helper()
	for {
		ev := nextEvent(t, events)
		if ev.Type == typ && ev.Object.GetObjectMeta().Name == name {
			return ev
		}
	}
}

// TestDeletion checks that a resource removed from a file that parses is
// deleted after DeleteGrace, as is everything of a deleted file.
func TestDeletion(t *testing.T) {
	h := newHarness(t)
	h.deleteGrace = 50 * time.Millisecond
	h.write("two.yaml", processFile("x", "/bin/x")+"---\n"+processFile("y", "/bin/y"))
	h.write("three.yaml", linkFile("l", "127.0.0.1:1"))
	s, _ := h.start(StatusNone)
	events, stopWatch := s.Watch("")
	defer stopWatch()

	start := time.Now()
	h.write("two.yaml", processFile("x", "/bin/x"))
	waitEvent(t, events, Deleted, "y")
	if d := time.Since(start); d < h.deleteGrace {
		t.Errorf("deleted after %v, before the grace of %v", d, h.deleteGrace)
	}
	if _, ok := s.Get(v1alpha1.KindProcess, "y"); ok {
		t.Error("y still there after its DELETED event")
	}
	if _, ok := s.Get(v1alpha1.KindProcess, "x"); !ok {
		t.Error("x was deleted with y")
	}
	if c := h.handlerCalls(v1alpha1.KindProcess, "y"); c < 2 {
		t.Errorf("handler called %d times for y, want the add and the deletion", c)
	}

	// A resource whose document can no longer be identified is kept.
	h.write("two.yaml", "apiVersion: reconciled.dev/v1alpha1\nkind: Process\nmetadata: {name: [x]}\nspec: {command: [/bin/x]}\n")
	eventually(t, "the problem to be reported", func() bool { return len(s.Problems()) == 1 })
	consistently(t, "x kept while its document has no name", 4*h.deleteGrace, func() bool {
		_, ok := s.Get(v1alpha1.KindProcess, "x")
		return ok
	})
	// The same for a kind spelled in the wrong case: that is an invalid
	// document, not another resource that replaces x.
	h.write("two.yaml", strings.Replace(processFile("x", "/bin/x"), "kind: Process", "kind: process", 1))
	eventually(t, "the misspelled kind to be reported", func() bool {
		p := s.Problems()
		return len(p) == 1 && p[0].Kind == "process" && strings.Contains(p[0].Message, `unknown kind "process"`)
	})
	consistently(t, "x kept while its kind is misspelled", 4*h.deleteGrace, func() bool {
		_, ok := s.Get(v1alpha1.KindProcess, "x")
		return ok
	})
	if _, ok := s.View("process", "x"); ok {
		t.Error("a resource of kind \"process\" was created")
	}

	// Deleting the file deletes what it defined.
	h.remove("three.yaml")
	waitEvent(t, events, Deleted, "l")
	if _, ok := s.Get(v1alpha1.KindLink, "l"); ok {
		t.Error("l still there after its file was removed")
	}
	if _, ok := s.Get(v1alpha1.KindProcess, "x"); !ok {
		t.Error("x was deleted with another file")
	}
}

// TestTruncatedFileDoesNotDelete writes a file in place (passing through
// an empty and a half-written file) over and over: no resource may ever
// disappear.
func TestTruncatedFileDoesNotDelete(t *testing.T) {
	h := newHarness(t)
	h.deleteGrace = 300 * time.Millisecond
	full := processFile("x", "/bin/x") + "---\n" + processFile("y", "/bin/y")
	h.write("f.yaml", full)
	s, _ := h.start(StatusNone)
	events, stopWatch := s.Watch("")
	defer stopWatch()

	stop := make(chan struct{})
	missing := make(chan string, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, n := range []string{"x", "y"} {
				if _, ok := s.Get(v1alpha1.KindProcess, n); !ok {
					select {
					case missing <- n:
					default:
					}
				}
			}
			time.Sleep(time.Millisecond)
		}
	}()
	for i := range 20 {
		h.writeInPlace("f.yaml", "")
		if i%2 == 0 {
			h.writeInPlace("f.yaml", processFile("x", "/bin/x"))
		}
		h.writeInPlace("f.yaml", full)
	}
	h.waitApplied(s, "f.yaml", full)
	// Past the grace of the last truncation, nothing may have gone.
	consistently(t, "both resources present", 2*h.deleteGrace, func() bool {
		_, okx := s.Get(v1alpha1.KindProcess, "x")
		_, oky := s.Get(v1alpha1.KindProcess, "y")
		return okx && oky
	})
	close(stop)
	wg.Wait()
	select {
	case n := <-missing:
		t.Fatalf("%s was missing for a moment", n)
	default:
	}
	for {
		select {
		case ev := <-events:
			if ev.Type == Deleted {
				t.Fatalf("DELETED event for %s", ev.Object.GetObjectMeta().Name)
			}
			continue
		default:
		}
		break
	}

	// Truncated for good: deleted after the grace.
	h.writeInPlace("f.yaml", "")
	eventually(t, "both resources deleted", func() bool { return len(s.Names(v1alpha1.KindProcess)) == 0 })
}

// TestStatusSidecar checks that sidecar mode writes status beside the
// state and leaves the resource file alone.
func TestStatusSidecar(t *testing.T) {
	h := newHarness(t)
	h.deleteGrace = 50 * time.Millisecond
	src := processFile("side", "/bin/side")
	h.write("side.yaml", src)
	s, stop := h.start(StatusSidecar)
	if err := s.UpdateStatus(v1alpha1.KindProcess, "side", runningStatus(1, 77)); err != nil {
		t.Fatal(err)
	}
	sidecar := filepath.Join(h.state, "status", "process", "side.yaml")
	eventually(t, "sidecar status written", func() bool {
		b, _ := os.ReadFile(sidecar)
		return strings.Contains(string(b), "pid: 77")
	})
	b, _ := os.ReadFile(sidecar)
	sc := lines(
		"apiVersion: reconciled.dev/v1alpha1",
		"kind: Process",
		"metadata:",
		"  generation: 1",
		"  name: side",
		"status:",
		"  conditions:",
		"  - lastTransitionTime: \"2026-11-21T10:00:00Z\"",
		"    message: \"\"",
		"    observedGeneration: 1",
		"    reason: Running",
		"    status: \"True\"",
		"    type: Ready",
		"  observedGeneration: 1",
		"  phase: Running",
		"  pid: 77",
	)
	if diff := cmp.Diff(sc, string(b)); diff != "" {
		t.Errorf("sidecar content mismatch (-want +got):\n%s", diff)
	}
	if got := h.read("side.yaml"); got != src {
		t.Errorf("resource file changed in sidecar mode:\n%s", got)
	}
	// The file shows the status a moment before the writer counts it.
	eventually(t, "the write counted", func() bool { return s.Writes() == 1 })
	if err := s.UpdateStatus(v1alpha1.KindProcess, "side", runningStatus(1, 77)); err != nil {
		t.Fatal(err)
	}
	s.Flush()
	if n := s.Writes(); n != 1 {
		t.Errorf("Writes() = %d after an unchanged status, want 1", n)
	}
	stop()

	// A restarted daemon starts from the sidecar's status.
	s2, _ := h.start(StatusSidecar)
	if diff := cmp.Diff(runningStatus(1, 77), getProcess(t, s2, "side").Status); diff != "" {
		t.Errorf("status after restart (-want +got):\n%s", diff)
	}
	// Deleting the resource removes its sidecar.
	h.remove("side.yaml")
	eventually(t, "sidecar removed", func() bool {
		_, err := os.Stat(sidecar)
		return errors.Is(err, os.ErrNotExist)
	})
}

// TestStatusNone checks that --status none writes nothing.
func TestStatusNone(t *testing.T) {
	h := newHarness(t)
	src := processFile("p", "/bin/p")
	h.write("p.yaml", src)
	s, stop := h.start(StatusNone)
	if err := s.UpdateStatus(v1alpha1.KindProcess, "p", runningStatus(1, 1)); err != nil {
		t.Fatal(err)
	}
	stop()
	if got := h.read("p.yaml"); got != src {
		t.Errorf("file changed with --status none:\n%s", got)
	}
	if n := s.Writes(); n != 0 {
		t.Errorf("Writes() = %d", n)
	}
	if _, err := os.Stat(filepath.Join(h.state, "status")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("status dir created: %v", err)
	}
}

// TestWatch checks the event stream: ADDED, MODIFIED and DELETED, filtered
// by kind, and closing.
func TestWatch(t *testing.T) {
	h := newHarness(t)
	h.deleteGrace = 50 * time.Millisecond
	s, _ := h.start(StatusNone)
	procs, stopProcs := s.Watch(v1alpha1.KindProcess)
	all, stopAll := s.Watch("")
	links, stopLinks := s.Watch(v1alpha1.KindLink)
	defer stopAll()
	defer stopLinks()

	h.write("w.yaml", processFile("w", "/bin/w"))
	ev := nextEvent(t, procs)
	if ev.Type != Added || ev.Object.GetObjectMeta().Name != "w" || ev.Object.GetTypeMeta().Kind != v1alpha1.KindProcess {
		t.Fatalf("first event = %s %s", ev.Type, ev.Object.GetObjectMeta().Name)
	}
	if ev.Object.GetObjectMeta().Annotations[AnnotationSource] != h.path("w.yaml")+":2" {
		t.Errorf("event object source = %q", ev.Object.GetObjectMeta().Annotations[AnnotationSource])
	}
	if ev := nextEvent(t, all); ev.Type != Added {
		t.Errorf("all-kinds watch: first event %s", ev.Type)
	}

	h.write("w.yaml", processFile("w", "/bin/w2"))
	ev = nextEvent(t, procs)
	if ev.Type != Modified || ev.Object.(*v1alpha1.Process).Spec.Command[0] != "/bin/w2" || ev.Object.GetObjectMeta().Generation != 2 {
		t.Errorf("edit event = %s %+v", ev.Type, ev.Object)
	}

	if err := s.UpdateStatus(v1alpha1.KindProcess, "w", runningStatus(2, 5)); err != nil {
		t.Fatal(err)
	}
	ev = nextEvent(t, procs)
	if ev.Type != Modified || ev.Object.(*v1alpha1.Process).Status.Pid != 5 {
		t.Errorf("status event = %s %+v", ev.Type, ev.Object.(*v1alpha1.Process).Status)
	}

	h.write("l.yaml", linkFile("l", "127.0.0.1:1"))
	if ev := nextEvent(t, links); ev.Type != Added || ev.Object.GetObjectMeta().Name != "l" {
		t.Errorf("link event = %s %s", ev.Type, ev.Object.GetObjectMeta().Name)
	}

	h.remove("w.yaml")
	ev = nextEvent(t, procs)
	if ev.Type != Deleted || ev.Object.GetObjectMeta().Name != "w" {
		t.Errorf("delete event = %s %s", ev.Type, ev.Object.GetObjectMeta().Name)
	}
	// The all-kinds watch saw all of it, in order.
	var got []string
	for range 4 {
		ev := nextEvent(t, all)
		got = append(got, string(ev.Type)+" "+ev.Object.GetTypeMeta().Kind+"/"+ev.Object.GetObjectMeta().Name)
	}
	if diff := cmp.Diff([]string{"MODIFIED Process/w", "MODIFIED Process/w", "ADDED Link/l", "DELETED Process/w"}, got); diff != "" {
		t.Errorf("all-kinds watch mismatch (-want +got):\n%s", diff)
	}

	stopProcs()
	if _, ok := <-procs; ok {
		t.Error("watch channel not closed after stop")
	}
	stopProcs() // twice is fine
	// No event arrives for a Process on the Link watch.
	select {
	case ev := <-links:
		t.Errorf("Link watch got %s %s/%s", ev.Type, ev.Object.GetTypeMeta().Kind, ev.Object.GetObjectMeta().Name)
	default:
	}
}

// TestRunStopsCleanly checks that nothing is applied after Run returns.
func TestRunStopsCleanly(t *testing.T) {
	h := newHarness(t)
	for i := range 30 {
		h.write(fmt.Sprintf("p%d.yaml", i), processFile(fmt.Sprintf("p%d", i), "/bin/a"))
	}
	s, stop := h.start(StatusNone)
	for i := range 30 {
		h.write(fmt.Sprintf("p%d.yaml", i), processFile(fmt.Sprintf("p%d", i), "/bin/b"))
	}
	stop()
	snapshot := func() string {
		var b strings.Builder
		for i := range 30 {
			fmt.Fprintf(&b, "%s;", command(s, fmt.Sprintf("p%d", i)))
		}
		return b.String()
	}
	before := snapshot()
	consistently(t, "no change after Run returned", 200*time.Millisecond, func() bool { return snapshot() == before })
}

// Subscribe is the store's one way to tell of changes: a spec-only
// subscriber hears of spec changes, not of status updates; another hears
// of both; Watch streams objects and is closed when it falls behind.
func TestSubscribe(t *testing.T) {
	h := newHarness(t)
	h.write("p.yaml", processFile("p", "/bin/true"))
	s := h.newStore(StatusNone)
	var specOnly, all []string
	s.Subscribe(v1alpha1.KindProcess, true, func(c *Change) { specOnly = append(specOnly, string(c.Type)) })
	cancel := s.Subscribe("", false, func(c *Change) {
		all = append(all, fmt.Sprintf("%s %v %s", c.Type, c.Spec, c.Object().GetObjectMeta().Name))
	})
	events, stop := s.Watch(v1alpha1.KindProcess)
	defer stop()
	if err := s.UpdateStatus(v1alpha1.KindProcess, "p", runningStatus(1, 42)); err != nil {
		t.Fatal(err)
	}
	if len(specOnly) != 0 || len(all) != 1 || all[0] != "MODIFIED false p" {
		t.Fatalf("after a status update: spec-only %v, all %v", specOnly, all)
	}
	if ev := <-events; ev.Type != Modified || ev.Object.GetObjectMeta().Name != "p" {
		t.Fatalf("watch event %+v", ev)
	}
	h.write("p.yaml", processFile("p", "/bin/false"))
	s.Reload(h.path("p.yaml"))
	if len(specOnly) != 1 || len(all) != 2 || all[1] != "MODIFIED true p" {
		t.Fatalf("after a spec change: spec-only %v, all %v", specOnly, all)
	}
	cancel()
	// A watcher that does not read is dropped after 1024 events.
	for i := range 1100 {
		s.UpdateStatus(v1alpha1.KindProcess, "p", runningStatus(1, 100+i))
	}
	if len(all) != 2 {
		t.Fatalf("a cancelled subscription still hears: %d", len(all))
	}
	n := 0
	for range events {
		n++
	}
	if n != 1024 {
		t.Fatalf("watcher got %d events before its channel closed, want 1024 (1 read before)", n)
	}
}

// Every change raises the resourceVersion; Since gives what changed after
// a version (latest states and deletions, in order) and is Gone for a
// version older than the deletions it remembers.
func TestResourceVersionSince(t *testing.T) {
	h := newHarness(t)
	proc := func(name string) string {
		return "apiVersion: reconciled.dev/v1alpha1\nkind: Process\nmetadata: {name: " + name + "}\nspec: {command: [/bin/true]}\n"
	}
	h.write("a.yaml", proc("a"))
	h.write("b.yaml", proc("b"))
	s, _ := h.start(StatusNone)
	list, rv := s.ListVersion(v1alpha1.KindProcess)
	num := func(v string) int { n, _ := strconv.Atoi(v); return n }
	if len(list) != 2 || num(list[0].GetObjectMeta().ResourceVersion) == 0 || num(rv) < num(list[0].GetObjectMeta().ResourceVersion) {
		t.Fatalf("list %d at %s, a at %s", len(list), rv, list[0].GetObjectMeta().ResourceVersion)
	}
	if evs, _, err := s.Since(v1alpha1.KindProcess, rv); err != nil || len(evs) != 0 {
		t.Fatalf("since now: %v %v", evs, err)
	}
	if err := s.UpdateStatus(v1alpha1.KindProcess, "a", v1alpha1.ProcessStatus{CommonStatus: v1alpha1.CommonStatus{Phase: "Running"}}); err != nil {
		t.Fatal(err)
	}
	os.Remove(h.path("b.yaml"))
	waitfor.Within(t, 10*time.Second, "b deleted", func() bool { _, ok := s.Get(v1alpha1.KindProcess, "b"); return !ok })
	evs, now, err := s.Since(v1alpha1.KindProcess, rv)
	if err != nil || len(evs) != 2 || evs[0].Type != Modified || evs[0].Object.GetObjectMeta().Name != "a" ||
		evs[1].Type != Deleted || evs[1].Object.GetObjectMeta().Name != "b" || num(now) <= num(rv) {
		t.Fatalf("since %s: %+v (now %s) %v", rv, evs, now, err)
	}
	if _, _, err := s.Since(v1alpha1.KindProcess, "999999"); !errors.Is(err, ErrGone) {
		t.Fatalf("a version from the future: %v", err)
	}
	s.tombstones.dropped = 5 // as after 4,096 later deletions
	if _, _, err := s.Since(v1alpha1.KindProcess, "4"); !errors.Is(err, ErrGone) {
		t.Fatalf("a version older than the remembered deletions: %v", err)
	}
}

// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package resources

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"golang.org/x/sys/unix"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/test/fixtures"
	"github.com/reconciled/reconciled/test/fixtures/waitfor"
)

// manyProcesses returns a file of n Process documents named prefix-N.
func manyProcesses(prefix string, n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "---\napiVersion: reconciled.dev/v1alpha1\nkind: Process\nmetadata:\n  name: %s-%d\nspec:\n  command: [/bin/sleep, infinity]\n", prefix, i)
	}
	return b.String()
}

// TestLargeFileDoesNotHoldUpOthers writes the statuses of every document
// of a 5,000-document file while a one-document file changes status: the
// small file's status lands while the large one is still being written
// (issue 11: one big file stalled write-back for every other file).
func TestLargeFileDoesNotHoldUpOthers(t *testing.T) {
	h := newHarness(t)
	const n = 5000
	h.write("big.yaml", manyProcesses("big", n))
	h.write("small.yaml", processFile("small", "/bin/true"))
	s, _ := h.start(StatusInline)
	for i := range n {
		if err := s.UpdateStatus(v1alpha1.KindProcess, fmt.Sprintf("big-%d", i), runningStatus(1, 1000+i)); err != nil {
			t.Fatal(err)
		}
	}
	// The small file changes while the big one is being prepared.
	eventually(t, "big.yaml in flight", func() bool {
		s.writer.mu.Lock()
		defer s.writer.mu.Unlock()
		return s.writer.inflight[h.path("big.yaml")] && s.writer.busy > 0
	})
	if err := s.UpdateStatus(v1alpha1.KindProcess, "small", runningStatus(1, 7)); err != nil {
		t.Fatal(err)
	}
	var bigDone bool
	eventually(t, "small.yaml to get its status", func() bool {
		if !strings.Contains(h.read("small.yaml"), "pid: 7") {
			return false
		}
		bigDone = strings.Contains(h.read("big.yaml"), "pid: 1000\n")
		return true
	})
	if bigDone {
		t.Error("small.yaml got its status only after the 5,000 statuses of big.yaml were written")
	}
	eventually(t, "big.yaml to get every status", func() bool {
		return strings.Count(h.read("big.yaml"), "phase: Running") == n
	})
	// One write for the whole file, not one per document.
	if w := s.Writes(); w > 3 {
		t.Errorf("%d file writes for two files", w)
	}
}

// logCounter counts log lines containing a text.
type logCounter struct {
	mu    sync.Mutex
	lines []string
}

func (c *logCounter) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		c.mu.Lock()
		c.lines = append(c.lines, args)
		c.mu.Unlock()
	}, funcr.Options{})
}

func (c *logCounter) count(substr string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, l := range c.lines {
		if strings.Contains(l, substr) {
			n++
		}
	}
	return n
}

// startLogged runs a store over the harness whose log goes to logs.
func (h *harness) startLogged(mode StatusMode, logs *logCounter) *Store {
	h.t.Helper()
	s, err := NewStore(Options{Dir: h.dir, StateDir: h.state, Status: mode, Log: logs.logger()})
	if err != nil {
		h.t.Fatal(err)
	}
	if err := s.Load(); err != nil {
		h.t.Fatal(err)
	}
	h.run(s)
	return s
}

// writeCondition returns the message of a resource's StatusWritten
// condition, or "".
func writeCondition(s *Store, kind, name string) string {
	v, _ := s.View(kind, name)
	if c := v.GetCommonStatus().Condition(ConditionStatusWritten); c != nil {
		return c.Message
	}
	return ""
}

// TestWriteFailureBacksOff makes a status write fail for good (a flow-style
// document cannot be edited in place): it is retried with backoff, not
// every 50 ms, logged once, shown as the StatusWritten condition, and
// written once the file allows it again (issue 11: 90 ERROR lines in 5 s).
func TestWriteFailureBacksOff(t *testing.T) {
	h := newHarness(t)
	h.write("p.yaml", "{apiVersion: reconciled.dev/v1alpha1, kind: Process, metadata: {name: p}, spec: {command: [/bin/true]}}\n")
	var logs logCounter
	s := h.startLogged(StatusInline, &logs)
	if err := s.UpdateStatus(v1alpha1.KindProcess, "p", runningStatus(1, 42)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the StatusWritten condition", func() bool { return writeCondition(s, v1alpha1.KindProcess, "p") != "" })
	if msg := writeCondition(s, v1alpha1.KindProcess, "p"); !strings.Contains(msg, "flow style") || !strings.Contains(msg, "sidecar") {
		t.Errorf("condition message %q does not say why and what to do", msg)
	}
	// A retry every 50 ms would be 20 attempts in a second; with the
	// backoff (5 ms doubling) there are about 8, whatever the machine.
	time.Sleep(time.Second) // observing a rate over a fixed time, not waiting for a state
	attempts := func() int {
		s.writer.mu.Lock()
		defer s.writer.mu.Unlock()
		if f := s.writer.failing[h.path("p.yaml")]; f != nil {
			return f.attempts
		}
		return 0
	}
	if a := attempts(); a > 10 {
		t.Errorf("%d attempts in about a second: no backoff", a)
	}
	// New statuses do not hurry the retries either.
	before := attempts()
	for i := range 20 {
		s.UpdateStatus(v1alpha1.KindProcess, "p", runningStatus(1, 100+i))
	}
	if a := attempts(); a > before+1 {
		t.Errorf("%d attempts after 20 status changes, %d before: they bypass the backoff", a, before)
	}
	if n := logs.count("cannot write status"); n != 1 {
		t.Errorf("the failure was logged %d times, want once", n)
	}
	// The file becomes editable: the next retry writes it and clears the
	// condition.
	h.write("p.yaml", processFile("p", "/bin/true"))
	eventually(t, "the status to be written after the fix", func() bool {
		return strings.Contains(h.read("p.yaml"), "pid: 119") && writeCondition(s, v1alpha1.KindProcess, "p") == ""
	})
	if n := logs.count("status written again"); n != 1 {
		t.Errorf("the recovery was logged %d times, want once", n)
	}
}

// TestStatusNeverGrowsAFileOverTheLimit: a status that would push a file
// over MaxFileSize is not written (the daemon would refuse its own file),
// and the StatusWritten condition says so.
func TestStatusNeverGrowsAFileOverTheLimit(t *testing.T) {
	h := newHarness(t)
	pad := "# " + strings.Repeat("x", MaxFileSize-200) + "\n"
	h.write("p.yaml", pad+processFile("p", "/bin/true"))
	var logs logCounter
	s := h.startLogged(StatusInline, &logs)
	if err := s.UpdateStatus(v1alpha1.KindProcess, "p", runningStatus(1, 42)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the StatusWritten condition", func() bool { return writeCondition(s, v1alpha1.KindProcess, "p") != "" })
	if msg := writeCondition(s, v1alpha1.KindProcess, "p"); !strings.Contains(msg, "MiB limit") {
		t.Errorf("condition message %q does not name the limit", msg)
	}
	if got := h.read("p.yaml"); strings.Contains(got, "pid: 42") {
		t.Error("the status was written over the size limit")
	}
}

// TestCRLFFileGetsStatus: a file with Windows line endings gets its status
// like any other and keeps its line endings (issue 11: it never got one).
func TestCRLFFileGetsStatus(t *testing.T) {
	h := newHarness(t)
	content := strings.ReplaceAll(processFile("p", "/bin/true"), "\n", "\r\n")
	h.write("p.yaml", content)
	s, _ := h.start(StatusInline)
	if err := s.UpdateStatus(v1alpha1.KindProcess, "p", runningStatus(1, 42)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "status in the CRLF file", func() bool { return strings.Contains(h.read("p.yaml"), "pid: 42\r\n") })
	got := h.read("p.yaml")
	if strings.Count(got, "\n") != strings.Count(got, "\r\n") {
		t.Errorf("line endings mixed after the write:\n%q", got)
	}
	if !strings.HasPrefix(strings.Replace(got, "  generation: 1\r\n", "", 1), content) {
		t.Errorf("the file's own lines changed:\n%q", got)
	}
}

// TestHostileFilesAreRefused drops non-regular, oversized and untrusted
// files into a live directory: none stalls or bloats the store, each is a
// problem naming the file, and a program defined in a file that turns
// world-writable keeps its last valid definition (issue 11).
func TestHostileFilesAreRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		fixtures.SkipOrFail(t, "needs root to chown a file to another user")
	}
	h := newHarness(t)
	h.write("ok.yaml", processFile("ok", "/bin/true"))
	s, _ := h.start(StatusNone)
	if err := unix.Mkfifo(h.path("fifo.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/zero", h.path("zero.yaml")); err != nil {
		t.Fatal(err)
	}
	h.write("big.yaml", "# "+strings.Repeat("x", MaxFileSize)+"\n")
	// Owner and mode are set before the files appear (a file that is
	// trusted for a moment is accepted, and then kept: see ok.yaml below).
	h.writeWith("theirs.yaml", processFile("theirs", "/bin/true"), func(p string) error { return os.Chown(p, 65534, 65534) })
	h.writeWith("open.yaml", processFile("open", "/bin/true"), func(p string) error { return os.Chmod(p, 0o666) })
	want := map[string]string{
		"fifo.yaml":   "a FIFO",
		"zero.yaml":   "a character device",
		"big.yaml":    "over the limit",
		"theirs.yaml": "owned by uid 65534",
		"open.yaml":   "writable by its group or others (mode 0666)",
	}
	var got map[string]string
	ok := waitfor.Until(10*time.Second, func() bool {
		got = map[string]string{}
		for _, p := range s.Problems() {
			got[filepath.Base(p.File)] = p.Message
		}
		for f, msg := range want {
			if !strings.Contains(got[f], msg) {
				return false
			}
		}
		return true
	})
	if !ok {
		t.Fatalf("not a problem for every hostile file after 10s; problems by file: %v", got)
	}
	for _, name := range []string{"theirs", "open"} {
		if _, ok := s.Get(v1alpha1.KindProcess, name); ok {
			t.Errorf("process %s from an untrusted file was accepted", name)
		}
	}
	// A trusted file that turns world-writable keeps its last valid
	// definition, marked invalid.
	if err := os.Chmod(h.path("ok.yaml"), 0o646); err != nil {
		t.Fatal(err)
	}
	eventually(t, "ok to be invalid after chmod o+w", func() bool {
		v, _ := s.View(v1alpha1.KindProcess, "ok")
		c := v.GetCommonStatus().Condition(v1alpha1.ConditionReady)
		return c != nil && c.Reason == v1alpha1.ReasonInvalidSpec && strings.Contains(c.Message, "writable by its group or others")
	})
	if _, ok := s.Get(v1alpha1.KindProcess, "ok"); !ok {
		t.Error("the last valid definition of ok was dropped")
	}
}

// TestAllowInsecureFiles reads a world-writable file when told to.
func TestAllowInsecureFiles(t *testing.T) {
	h := newHarness(t)
	h.write("open.yaml", processFile("open", "/bin/true"))
	if err := os.Chmod(h.path("open.yaml"), 0o666); err != nil {
		t.Fatal(err)
	}
	s, err := NewStore(Options{Dir: h.dir, Status: StatusNone, AllowInsecureFiles: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Load(); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Get(v1alpha1.KindProcess, "open"); !ok {
		t.Errorf("not loaded with AllowInsecureFiles: %v", s.Problems())
	}
}

// TestProblemsLoggedOncePerChange: a problem is logged when it appears,
// not again on every rescan or forced reload of the same content.
func TestProblemsLoggedOncePerChange(t *testing.T) {
	h := newHarness(t)
	h.write("bad.yaml", "apiVersion: reconciled.dev/v1alpha1\nkind: Proces\nmetadata: {name: x}\nspec: {}\n")
	var logs logCounter
	s := h.startLogged(StatusNone, &logs)
	eventually(t, "the problem", func() bool { return len(s.Problems()) == 1 })
	for range 3 {
		s.mu.Lock()
		s.files[h.path("bad.yaml")].hash = [32]byte{} // as a forced reload does
		s.mu.Unlock()
		s.Reload(h.path("bad.yaml"))
		s.relist(s.Reload)
	}
	if n := logs.count(`unknown kind \"Proces\"`); n != 1 {
		t.Errorf("the problem was logged %d times, want once", n)
	}
	h.write("bad.yaml", "apiVersion: reconciled.dev/v1alpha1\nkind: Proccess\nmetadata: {name: x}\nspec: {}\n")
	eventually(t, "the new problem to be logged", func() bool { return logs.count(`unknown kind \"Proccess\"`) == 1 })
}

// TestStuckNamesLongLoads: a file load past the limit shows in Stuck.
func TestStuckNamesLongLoads(t *testing.T) {
	h := newHarness(t)
	s := h.newStore(StatusNone)
	s.busy.begin(h.path("slow.yaml"))
	time.Sleep(20 * time.Millisecond) // past the limit below
	if err := s.Stuck(10 * time.Millisecond); err == nil || !strings.Contains(err.Error(), "slow.yaml") {
		t.Errorf("Stuck = %v", err)
	}
	s.busy.end(h.path("slow.yaml"))
	if err := s.Stuck(10 * time.Millisecond); err != nil {
		t.Errorf("Stuck after the load ended: %v", err)
	}
}

// TestSymlinkedFolderIsAProblem: a symlinked folder inside --dir is not
// followed, and says so (the scan and the API's writer agree).
func TestSymlinkedFolderIsAProblem(t *testing.T) {
	h := newHarness(t)
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "p.yaml"), []byte(processFile("p", "/bin/true")), 0o644)
	if err := os.Symlink(outside, h.path("api")); err != nil {
		t.Fatal(err)
	}
	s := h.newStore(StatusNone)
	if _, ok := s.Get(v1alpha1.KindProcess, "p"); ok {
		t.Error("a resource was read through a symlinked folder")
	}
	probs := s.Problems()
	if len(probs) != 1 || probs[0].Reason != ReasonSymlinkedFolder || !strings.Contains(probs[0].Message, outside) {
		t.Errorf("problems %+v", probs)
	}
}

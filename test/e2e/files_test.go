// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// A bad edit (syntax error, unknown field, half-written file) leaves the
// running program running and shows Invalid with file:line; fixing the
// file makes it valid again.
func TestBadEditKeepsProgramRunning(t *testing.T) {
	e := newEnv(t)
	e.start()
	good := sleeper(e, "keep", "")
	path := e.write("keep.yaml", good)
	p := e.waitProcess("keep", "Running", func(p process) bool { return p.Status.Phase == "Running" })
	pid := p.Status.Pid

	cases := map[string]string{
		"syntax error":  strings.Replace(good, "spec:", "spec: [unclosed", 1),
		"unknown field": strings.Replace(good, "spec:", "spec:\n  comand: [oops]", 1),
		"half written":  good[:len(good)/2],
		"bad value":     strings.Replace(good, "spec:", "spec:\n  restartPolicy: Sometimes", 1),
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			os.WriteFile(path, []byte(content), 0o644)
			e.eventually("Invalid shown", func() bool {
				out, _, _ := e.ctlQuiet("get", "processes")
				return strings.Contains(out, "Invalid")
			})
			q, _ := e.getProcess("keep")
			if q.Status.Pid != pid || !alive(pid) {
				t.Fatalf("program was touched by a bad edit: pid %d -> %d alive=%v", pid, q.Status.Pid, alive(pid))
			}
			_, reason, msg := q.ready()
			if reason != "InvalidSpec" || !regexp.MustCompile(regexp.QuoteMeta(path)+`:\d+: `).MatchString(msg) {
				t.Fatalf("Ready reason %q message %q, want InvalidSpec with %s:LINE", reason, msg, path)
			}
			// validate agrees, offline, with exit 1.
			out, _, code := e.ctlQuiet("validate", path)
			if code != 1 || !strings.Contains(out, path+":") {
				t.Fatalf("validate exit %d:\n%s", code, out)
			}
			// Fix it again.
			os.WriteFile(path, []byte(good), 0o644)
			e.eventually("valid again", func() bool {
				out, _, _ := e.ctlQuiet("get", "processes")
				return strings.Contains(out, "Running") && !strings.Contains(out, "Invalid")
			})
			q, _ = e.getProcess("keep")
			if q.Status.Pid != pid {
				t.Fatalf("restoring the same spec restarted the program")
			}
		})
	}
	// unknown field error names the line of the field.
	// (on a copy outside the watched folder: the daemon writes status into
	// documents that parse, which moves lines)
	bad := strings.Replace(good, "spec:", "spec:\n  comand: [oops]", 1)
	path = filepath.Join(t.TempDir(), "copy.yaml")
	os.WriteFile(path, []byte(bad), 0o644)
	line := strings.Count(bad[:strings.Index(bad, "comand")], "\n") + 1
	out, _, _ := e.ctlQuiet("validate", path)
	if !strings.Contains(out, fmt.Sprintf("%s:%d: spec.comand: unknown field", path, line)) {
		t.Fatalf("validate output lacks the line of the unknown field:\n%s", out)
	}
}

// Status writes keep every other byte: comments, key order, other documents.
func TestStatusWriteKeepsComments(t *testing.T) {
	e := newEnv(t)
	e.start()
	original := `# Top comment: keep me
apiVersion: reconciled.dev/v1alpha1   # trailing comment
kind: Process
metadata:
  # inside metadata
  name: commented
  labels: {team: "ops"}
spec:
  # the program
  command: ["/bin/sh", "-c", "exec sleep 1000"]
  env: {E2E_DIR: "` + e.dir + `"}
  stopTimeout: 2s   # short
---
# A second document that is not ours to touch.
apiVersion: reconciled.dev/v1alpha1
kind: Link
metadata: {name: other}
spec:
  tcp: {address: "127.0.0.1:7"}   # keep
`
	e.write("commented.yaml", original)
	e.waitProcess("commented", "Running", func(p process) bool { return p.Status.Phase == "Running" })
	e.eventually("status in file", func() bool { return strings.Contains(e.read("commented.yaml"), "phase: Running") })
	got := e.read("commented.yaml")
	// Every original line is still there, in order, except that
	// metadata gained generation.
	idx := 0
	for _, line := range strings.Split(original[:strings.Index(original, "---")], "\n") {
		i := strings.Index(got[idx:], line+"\n")
		if line == "" {
			continue
		}
		if i < 0 {
			t.Fatalf("line %q lost or reordered; file now:\n%s", line, got)
		}
		idx += i + len(line)
	}
	// The second document (a Link, reconciled too) kept every byte but its
	// status and generation.
	secondOrig := original[strings.Index(original, "---"):]
	secondWant := strings.Replace(secondOrig, "metadata: {name: other}", "metadata: {generation: 1, name: other}", 1)
	e.eventually("the Link's status written", func() bool {
		return strings.Contains(e.read("commented.yaml"), "metadata: {generation: 1, name: other}")
	})
	got = e.read("commented.yaml")
	second := got[strings.Index(got, "---"):]
	if i := strings.Index(second, "status:"); i >= 0 {
		second = second[:i]
	}
	if second != secondWant {
		t.Fatalf("second document changed beyond status and generation:\n%s\nwant:\n%s", second, secondWant)
	}
	if !strings.Contains(got, "  generation: 1\n") {
		t.Fatalf("metadata.generation not written:\n%s", got)
	}
	// Mode is kept.
	os.Chmod(filepath.Join(e.dir, "commented.yaml"), 0o600)
	e.write("touch.yaml", sleeper(e, "toucher", ""))
	p, _ := e.getProcess("commented")
	e.ctl("restart", "process/commented")
	e.waitProcess("commented", "restarted", func(q process) bool { return q.Status.Pid != p.Status.Pid && q.Status.Phase == "Running" })
	e.eventually("status rewritten", func() bool { return strings.Contains(e.read("commented.yaml"), "restarts: 1") })
	fi, _ := os.Stat(filepath.Join(e.dir, "commented.yaml"))
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode changed to %v", fi.Mode().Perm())
	}
}

// Editor leftovers and hidden files are never read.
func TestEditorLeftoversIgnored(t *testing.T) {
	e := newEnv(t)
	e.start()
	for _, name := range []string{".web.yaml.swp", "web.yaml~", "4913", ".#web.yaml", "#web.yaml#", ".hidden/web.yaml", "web.yaml.swx", "notes.txt"} {
		e.write(name, sleeper(e, "ghost", ""))
	}
	e.write("sentinel.yaml", sleeper(e, "sentinel", ""))
	e.waitProcess("sentinel", "Running", func(p process) bool { return p.Status.Phase == "Running" })
	if _, ok := e.getProcess("ghost"); ok {
		t.Fatal("a resource from an editor leftover was loaded")
	}
	// Subfolders are watched.
	e.write("team/a/deep.yaml", sleeper(e, "deep", ""))
	e.waitProcess("deep", "Running", func(p process) bool { return p.Status.Phase == "Running" })
}

// A second definition of a name is rejected; the first keeps running and
// takes over nothing; removing the first lets the second in.
func TestDuplicateName(t *testing.T) {
	e := newEnv(t)
	e.start()
	e.write("a.yaml", sleeper(e, "dup", ""))
	p := e.waitProcess("dup", "Running", func(p process) bool { return p.Status.Phase == "Running" })
	e.write("b.yaml", strings.Replace(sleeper(e, "dup", ""), "sleep 1000", "sleep 1002", 1))
	e.eventually("duplicate reported", func() bool {
		_, errs, _ := e.ctlQuiet("get", "processes")
		return strings.Contains(errs, "DuplicateName") && strings.Contains(errs, "a.yaml") && strings.Contains(errs, "b.yaml")
	})
	if q, _ := e.getProcess("dup"); q.Status.Pid != p.Status.Pid {
		t.Fatal("the running definition was replaced by a duplicate")
	}
	os.Remove(filepath.Join(e.dir, "a.yaml"))
	e.waitProcess("dup", "second definition takes over", func(q process) bool {
		b, _ := os.ReadFile("/proc/" + itoa(q.Status.Pid) + "/cmdline")
		return q.Status.Phase == "Running" && strings.Contains(string(b), "1002")
	})
}

// validate: whole folders, multi-document files, exit codes.
func TestValidate(t *testing.T) {
	e := newEnv(t)
	e.write("ok.yaml", sleeper(e, "a", "")+"---\n"+sleeper(e, "b", ""))
	out := e.ctl("validate", e.dir)
	if !strings.Contains(out, "2 resources in 1 files are valid") {
		t.Fatalf("validate: %s", out)
	}
	e.write("bad.yaml", "apiVersion: reconciled.dev/v1alpha1\nkind: Widget\nmetadata: {name: x}\nspec: {}\n")
	out, _, code := e.ctlQuiet("validate", e.dir)
	if code != 1 || !strings.Contains(out, "bad.yaml:2: kind: unknown kind \"Widget\"") {
		t.Fatalf("validate exit %d:\n%s", code, out)
	}
	if _, _, code := e.ctlQuiet("validate"); code != 2 {
		t.Fatalf("validate without arguments: exit %d, want 2 (usage)", code)
	}
}

// --status sidecar leaves the resource files alone.
func TestSidecarStatus(t *testing.T) {
	e := newEnv(t, "--status", "sidecar")
	e.start()
	content := sleeper(e, "side", "")
	e.write("side.yaml", content)
	e.waitProcess("side", "Running", func(p process) bool { return p.Status.Phase == "Running" })
	side := filepath.Join(e.state, "status", "process", "side.yaml")
	e.eventually("sidecar written", func() bool {
		b, _ := os.ReadFile(side)
		return strings.Contains(string(b), "phase: Running")
	})
	if e.read("side.yaml") != content {
		t.Fatalf("resource file changed in sidecar mode:\n%s", e.read("side.yaml"))
	}
}

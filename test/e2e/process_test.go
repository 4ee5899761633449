// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/reconciled/reconciled/test/fixtures"
)

// A Process file starts a program; an edit restarts it with the new spec;
// deleting the file stops it.
func TestProcessCreateEditDelete(t *testing.T) {
	e := newEnv(t)
	e.start()
	e.write("web.yaml", sleeper(e, "web", ""))
	p := e.waitProcess("web", "Running", func(p process) bool { return p.Status.Phase == "Running" && alive(p.Status.Pid) })
	if p.Metadata.Generation != 1 || p.Status.ObservedGeneration != 1 {
		t.Fatalf("generation %d observed %d, want 1 and 1", p.Metadata.Generation, p.Status.ObservedGeneration)
	}
	out := e.ctl("get", "processes")
	if !strings.Contains(out, "web") || !strings.Contains(out, "Running") {
		t.Fatalf("get processes:\n%s", out)
	}
	first := p.Status.Pid

	e.write("web.yaml", strings.Replace(sleeper(e, "web", ""), "sleep 1000", "sleep 1001", 1))
	p = e.waitProcess("web", "restarted with the new spec", func(p process) bool {
		return p.Status.Pid != first && p.Status.Phase == "Running" && p.Status.ObservedGeneration == 2
	})
	if p.Metadata.Generation != 2 {
		t.Fatalf("generation %d after a spec edit, want 2", p.Metadata.Generation)
	}
	e.eventually("old program gone", func() bool { return !alive(first) })
	if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.Status.Pid)); !strings.Contains(string(b), "1001") {
		t.Fatalf("new program runs %q", b)
	}
	// A formatting-only edit does not bump the generation or restart.
	second := p.Status.Pid
	e.write("web.yaml", "# just a comment\n"+strings.Replace(e.read("web.yaml"), "kind: Process", "kind:   Process", 1))
	e.eventually("comment edit seen", func() bool { return strings.HasPrefix(e.read("web.yaml"), "# just a comment") })
	p, _ = e.getProcess("web")
	if p.Status.Pid != second || p.Metadata.Generation != 2 {
		t.Fatalf("formatting edit restarted (pid %d->%d) or bumped generation (%d)", second, p.Status.Pid, p.Metadata.Generation)
	}

	os.Remove(filepath.Join(e.dir, "web.yaml"))
	e.eventually("program stopped after delete", func() bool { return !alive(second) })
	e.eventually("resource gone", func() bool {
		_, _, code := e.ctlQuiet("get", "process/web")
		return code == 1
	})
}

// kill -9 of a program: restarted at once, counted, last exit recorded.
func TestCrashIsRestartedAndCounted(t *testing.T) {
	e := newEnv(t)
	e.start()
	e.write("crashy.yaml", sleeper(e, "crashy", ""))
	p := e.waitProcess("crashy", "Running", func(p process) bool { return p.Status.Phase == "Running" })
	syscall.Kill(p.Status.Pid, syscall.SIGKILL)
	p = e.waitProcess("crashy", "restarted", func(q process) bool {
		return q.Status.Pid != p.Status.Pid && q.Status.Phase == "Running" && q.Status.Restarts == 1
	})
	if p.Status.LastExit == nil || p.Status.LastExit.Signal != "SIGKILL" {
		t.Fatalf("lastExit = %+v, want signal SIGKILL", p.Status.LastExit)
	}
	// The count reaches the file too. The API answers from memory and the
	// file write follows it, so wait for it rather than read once.
	e.eventually("file status has restarts: 1", func() bool { return strings.Contains(e.read("crashy.yaml"), "restarts: 1") })
	// A second crash right away goes into a (short) backoff, then runs again.
	syscall.Kill(p.Status.Pid, syscall.SIGKILL)
	e.waitProcess("crashy", "second restart", func(q process) bool { return q.Status.Restarts == 2 && q.Status.Phase == "Running" })
}

// restartPolicy Never and OnFailure.
func TestRestartPolicies(t *testing.T) {
	e := newEnv(t)
	e.start()
	e.write("jobs.yaml", `apiVersion: reconciled.dev/v1alpha1
kind: Process
metadata: {name: ok-once}
spec:
  command: ["/bin/true"]
  restartPolicy: Never
---
apiVersion: reconciled.dev/v1alpha1
kind: Process
metadata: {name: fail-once}
spec:
  command: ["/bin/sh", "-c", "exit 7"]
  restartPolicy: Never
---
apiVersion: reconciled.dev/v1alpha1
kind: Process
metadata: {name: retry}
spec:
  command: ["/bin/sh", "-c", "exit 3"]
  restartPolicy: OnFailure
  backoff: {initial: 100ms, max: 200ms}
`)
	e.waitProcess("ok-once", "Completed", func(p process) bool { return p.Status.Phase == "Completed" })
	p := e.waitProcess("fail-once", "Failed", func(p process) bool { return p.Status.Phase == "Failed" })
	if p.Status.LastExit == nil || p.Status.LastExit.ExitCode != 7 {
		t.Fatalf("lastExit %+v, want code 7", p.Status.LastExit)
	}
	e.waitProcess("retry", "retried several times", func(p process) bool { return p.Status.Restarts >= 3 })
}

// Readiness over sd_notify with go-systemd's SdNotify, and the watchdog.
func TestNotifyReadyAndWatchdog(t *testing.T) {
	e := newEnv(t)
	e.start()
	e.write("svc.yaml", fmt.Sprintf(`apiVersion: reconciled.dev/v1alpha1
kind: Process
metadata: {name: svc}
spec:
  command: [%q, "ready"]
  env: {E2E_DIR: %q}
  readiness: {notify: true}
  watchdog: 600ms
---
apiVersion: reconciled.dev/v1alpha1
kind: Process
metadata: {name: hung}
spec:
  command: [%q, "lapse"]
  env: {E2E_DIR: %q}
  readiness: {notify: true}
  watchdog: 300ms
  backoff: {initial: 1s}
---
apiVersion: reconciled.dev/v1alpha1
kind: Process
metadata: {name: never}
spec:
  command: [%q, "never"]
  env: {E2E_DIR: %q}
  readiness: {notify: true}
`, notifyProg, e.dir, notifyProg, e.dir, notifyProg, e.dir))
	p := e.waitProcess("svc", "ready via sd_notify", func(p process) bool {
		st, _, _ := p.ready()
		return p.Status.Phase == "Running" && st == "True"
	})
	if p.Status.Message != "serving requests" {
		t.Fatalf("STATUS= not shown: message %q", p.Status.Message)
	}
	h := e.waitProcess("hung", "restarted by the watchdog", func(p process) bool {
		return p.Status.Restarts >= 1 && p.Status.LastExit != nil && p.Status.LastExit.Reason == "WatchdogTimeout"
	})
	if h.Status.LastExit.Signal == "" {
		t.Fatalf("watchdog restart should stop the program with a signal: %+v", h.Status.LastExit)
	}
	n, _ := e.getProcess("never")
	if st, _, _ := n.ready(); n.Status.Phase != "Starting" || st != "False" {
		t.Fatalf("a program that never sends READY=1 is %s/ready=%s, want Starting/False", n.Status.Phase, st)
	}
	// svc kept pinging the watchdog the whole time: never restarted.
	if p, _ := e.getProcess("svc"); p.Status.Restarts != 0 {
		t.Fatalf("svc restarted %d times although it pings the watchdog", p.Status.Restarts)
	}
}

// systemPython is the python3 a supervised program gets: the first in the
// PATH the daemon gives programs, not the one first in the test's PATH (on
// these machines a separate Python without Debian's packages).
func systemPython(t *testing.T) string {
	t.Helper()
	for _, d := range strings.Split("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", ":") {
		if p := filepath.Join(d, "python3"); exec.Command(p, "-c", "").Run() == nil {
			return p
		}
	}
	fixtures.SkipOrFail(t, "no python3 in the PATH programs get (Debian package python3)")
	return ""
}

// pystemdPython returns the system python3 after checking that it
// imports pystemd (seed 003).
func pystemdPython(t *testing.T) string {
	t.Helper()
	py := systemPython(t)
	if out, err := exec.Command(py, "-c", "import pystemd.daemon").CombinedOutput(); err != nil {
		fixtures.SkipOrFail(t, fmt.Sprintf("%s cannot import pystemd (Debian package python3-pystemd; make test installs it): %v %s", py, err, out))
	}
	return py
}

// A program written against pystemd (seed 003) works unchanged.
func TestPystemdNotify(t *testing.T) {
	pystemdPython(t)
	e := newEnv(t)
	e.start()
	script := filepath.Join(t.TempDir(), "svc.py")
	os.WriteFile(script, []byte(`import time, pystemd.daemon
time.sleep(0.2)
pystemd.daemon.notify(False, ready=1, status="pystemd says hi")
while True:
    time.sleep(0.2)
    pystemd.daemon.notify(False, watchdog=1)
`), 0o644)
	e.write("py.yaml", fmt.Sprintf(`apiVersion: reconciled.dev/v1alpha1
kind: Process
metadata: {name: py}
spec:
  command: ["python3", %q]
  env: {E2E_DIR: %q}
  readiness: {notify: true}
  watchdog: 2s
`, script, e.dir))
	p := e.waitProcess("py", "ready via pystemd", func(p process) bool {
		st, _, _ := p.ready()
		return p.Status.Phase == "Running" && st == "True"
	})
	if p.Status.Message != "pystemd says hi" {
		t.Fatalf("message %q", p.Status.Message)
	}
}

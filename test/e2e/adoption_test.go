// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/coreos/go-systemd/v22/daemon"
)

// A daemon restart while a resource file is invalid keeps the program
// running (and its logs): bad input never tears anything down.
func TestRestartWithInvalidFileKeepsProgram(t *testing.T) {
	e := newEnv(t)
	e.start()
	good := sleeper(e, "keep", "")
	e.write("keep.yaml", good)
	p := e.waitProcess("keep", "Running", func(p process) bool { return p.Status.Phase == "Running" })
	e.stop(syscall.SIGKILL)
	for name, bad := range map[string]string{
		"unknown field": strings.Replace(good, "command:", "comand:", 1),
		"syntax error":  strings.Replace(good, "spec:", "spec: [", 1),
	} {
		t.Run(name, func(t *testing.T) {
			e.write("keep.yaml", bad)
			e.log.Reset()
			e.start()
			// The controller has looked at the adopted program once it
			// says it keeps it; with the old behaviour it stopped it here.
			e.eventually("adopted program reported as kept", func() bool {
				return strings.Contains(e.log.String(), "keeping adopted program whose resource is currently invalid")
			})
			if !alive(p.Status.Pid) {
				t.Fatal("the program was stopped because its file was invalid at start")
			}
			e.stop(syscall.SIGKILL)
		})
	}
	e.write("keep.yaml", good)
	e.start()
	q := e.waitProcess("keep", "adopted once the file is fixed", func(q process) bool { return q.Status.Phase == "Running" })
	if q.Status.Pid != p.Status.Pid {
		t.Fatalf("pid %d -> %d", p.Status.Pid, q.Status.Pid)
	}
}

// A record whose program is gone (here: from another boot) never leads the
// daemon to signal the process group its pid now names; and a child that a
// program moved into its own session is not killed as a "duplicate".
func TestAdoptionNeverKillsStrangers(t *testing.T) {
	e := newEnv(t)
	e.start()
	e.write("s.yaml", fmt.Sprintf(`apiVersion: reconciled.dev/v1alpha1
kind: Process
metadata: {name: s}
spec:
  command: ["/bin/sh", "-c", "setsid sleep 1001 & exec sleep 1000"]
  env: {E2E_DIR: %q}
`, e.dir))
	e.waitProcess("s", "Running", func(p process) bool { return p.Status.Phase == "Running" })
	e.stop(syscall.SIGKILL)
	// An unrelated process group, and a record that points at it as if it
	// were left over from before a reboot.
	stranger := exec.Command("setsid", "sleep", "1002")
	if err := stranger.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stranger.Process.Kill(); stranger.Wait() }()
	// Append it to the records' log (kvlog: one JSON line per change).
	line, _ := json.Marshal(map[string]any{"k": "ghost", "v": map[string]any{
		"name": "ghost", "pid": stranger.Process.Pid, "pgid": stranger.Process.Pid, "startTime": 1, "bootID": "another-boot"}})
	f, err := os.OpenFile(filepath.Join(e.state, "processes.json.log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(append(line, '\n'))
	f.Close()
	e.start()
	e.waitProcess("s", "adopted", func(p process) bool { return p.Status.Phase == "Running" })
	e.eventually("ghost record processed", func() bool { return strings.Contains(e.log.String(), "adopted=1 exitedWhileDown=1") })
	if !alive(stranger.Process.Pid) {
		t.Fatal("the daemon killed an unrelated process group named by a stale record")
	}
	if p, _ := e.getProcess("s"); !strings.Contains(e.log.String(), "resources loaded") || hasCondition(p, "Duplicate") {
		t.Fatalf("the program's own setsid child taken for a duplicate; daemon log:\n%s", e.log.String())
	}
	if n := e.copies(); n != 2 {
		t.Fatalf("%d marked process groups, want 2 (the program and its setsid child)", n)
	}
}

// restartOnChange keeps working for an adopted program, also for a change
// made while no daemon was watching.
func TestRestartOnChangeAfterAdoption(t *testing.T) {
	e := newEnv(t)
	e.start()
	conf := filepath.Join(t.TempDir(), "app.conf")
	os.WriteFile(conf, []byte("v1"), 0o644)
	e.write("c.yaml", sleeper(e, "c", fmt.Sprintf("  restartOnChange: [%q]\n", conf)))
	p := e.waitProcess("c", "Running", func(p process) bool { return p.Status.Phase == "Running" })
	e.stop(syscall.SIGKILL)
	os.WriteFile(conf, []byte("v2 written while the daemon was down"), 0o644)
	e.start()
	q := e.waitProcess("c", "restarted for the change made while down", func(q process) bool {
		return q.Status.Pid != p.Status.Pid && q.Status.Phase == "Running"
	})
	os.WriteFile(conf, []byte("v3"), 0o644)
	e.waitProcess("c", "restarted for a change after adoption", func(r process) bool {
		return r.Status.Pid != q.Status.Pid && r.Status.Phase == "Running"
	})
}

// Deleting a resource stops its program with the stop signal it was
// started with (SIGINT here; it ignores SIGTERM and has a 60 s timeout, so
// the old SIGTERM behaviour would outlast the wait).
func TestDeleteUsesStopSignal(t *testing.T) {
	e := newEnv(t)
	e.start()
	e.write("i.yaml", fmt.Sprintf(`apiVersion: reconciled.dev/v1alpha1
kind: Process
metadata: {name: i}
spec:
  command: ["/bin/sh", "-c", "trap 'exit 0' INT; trap '' TERM; while :; do sleep 0.1; done"]
  env: {E2E_DIR: %q}
  stopSignal: SIGINT
  stopTimeout: 60s
`, e.dir))
	p := e.waitProcess("i", "Running", func(p process) bool { return p.Status.Phase == "Running" })
	os.Remove(filepath.Join(e.dir, "i.yaml"))
	e.eventually("stopped by SIGINT", func() bool { return !alive(p.Status.Pid) })
}

// sd_notify messages from outside the program are ignored.
func TestNotifyFromStrangerIgnored(t *testing.T) {
	e := newEnv(t)
	e.start()
	e.write("n.yaml", fmt.Sprintf(`apiVersion: reconciled.dev/v1alpha1
kind: Process
metadata: {name: n}
spec:
  command: [%q, "never"]
  env: {E2E_DIR: %q}
  readiness: {notify: true}
`, notifyProg, e.dir))
	p := e.waitProcess("n", "Starting", func(p process) bool { return p.Status.Phase == "Starting" && p.Status.Pid > 0 })
	env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", p.Status.Pid))
	addr := ""
	for _, kv := range strings.Split(string(env), "\x00") {
		if v, ok := strings.CutPrefix(kv, "NOTIFY_SOCKET="); ok {
			addr = v
		}
	}
	if addr == "" {
		t.Fatal("program has no NOTIFY_SOCKET")
	}
	t.Setenv("NOTIFY_SOCKET", addr)
	if ok, err := daemon.SdNotify(false, "READY=1\nSTATUS=forged"); !ok || err != nil {
		t.Fatalf("send: %v %v", ok, err)
	}
	e.eventually("forged message ignored", func() bool {
		return strings.Contains(e.log.String(), "ignoring sd_notify message from a process outside the program")
	})
	if q, _ := e.getProcess("n"); q.Status.Phase != "Starting" || q.Status.Message == "forged" {
		t.Fatalf("a stranger's READY=1 was accepted: %+v", q.Status)
	}
}

// Readiness probes keep running when a check takes longer than its period.
func TestSlowReadinessProbeKeepsProbing(t *testing.T) {
	e := newEnv(t)
	e.start()
	flag := filepath.Join(t.TempDir(), "ready")
	e.write("slow.yaml", sleeper(e, "slow", fmt.Sprintf(`  readiness:
    exec: {command: ["/bin/sh", "-c", "sleep 0.3; test -e %s"]}
    period: 100ms
    timeout: 2s
`, flag)))
	e.waitProcess("slow", "probed and not ready", func(p process) bool {
		_, reason, _ := p.ready()
		return reason == "ReadinessProbeFailed"
	})
	os.WriteFile(flag, nil, 0o644)
	e.waitProcess("slow", "ready once the check passes", func(p process) bool {
		st, _, _ := p.ready()
		return st == "True" && p.Status.Phase == "Running"
	})
}

// A symlinked resource file stays a symlink; status goes into its target.
func TestSymlinkedResourceFile(t *testing.T) {
	e := newEnv(t)
	e.start()
	target := filepath.Join(t.TempDir(), "real.yaml")
	os.WriteFile(target, []byte(sleeper(e, "linked", "")), 0o644)
	if err := os.Symlink(target, filepath.Join(e.dir, "linked.yaml")); err != nil {
		t.Fatal(err)
	}
	e.waitProcess("linked", "Running", func(p process) bool { return p.Status.Phase == "Running" })
	e.eventually("status in the target", func() bool {
		b, _ := os.ReadFile(target)
		return strings.Contains(string(b), "phase: Running")
	})
	if fi, err := os.Lstat(filepath.Join(e.dir, "linked.yaml")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link was replaced by a regular file (%v)", err)
	}
}

// After a restart, a duplicate name stays with the file that had it.
func TestDuplicateWinnerSurvivesRestart(t *testing.T) {
	e := newEnv(t)
	e.start()
	e.write("b.yaml", strings.Replace(sleeper(e, "dup", ""), "sleep 1000", "sleep 1002", 1))
	p := e.waitProcess("dup", "Running", func(p process) bool { return p.Status.Phase == "Running" })
	e.write("a.yaml", sleeper(e, "dup", "")) // sorts first, but came second
	e.eventually("duplicate reported", func() bool {
		_, errs, _ := e.ctlQuiet("get", "processes")
		return strings.Contains(errs, "DuplicateName")
	})
	e.stop(syscall.SIGKILL)
	e.start()
	q := e.waitProcess("dup", "adopted", func(q process) bool { return q.Status.Phase == "Running" })
	if q.Status.Pid != p.Status.Pid || q.Metadata.Annotations["reconciled.dev/source"] != filepath.Join(e.dir, "b.yaml")+":1" {
		t.Fatalf("after restart pid %d (was %d), source %q: the newcomer took over", q.Status.Pid, p.Status.Pid, q.Metadata.Annotations["reconciled.dev/source"])
	}
}

// hasCondition reports whether a Process has the condition type with
// status True.
func hasCondition(p process, condType string) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == condType && c.Status == "True" {
			return true
		}
	}
	return false
}

// A second copy of an adopted program, started by an earlier daemon that
// lost track of it (here: by the test, with the program's marker), is
// reported loudly, not killed: an error in the log, a Warning event, the
// Duplicate condition and the ProcessDuplicate alert, until it is gone
// (issue 12: the README said duplicates were killed; nothing did either).
func TestAdoptionReportsDuplicates(t *testing.T) {
	e := newEnv(t)
	alerts := filepath.Join(t.TempDir(), "alerts.jsonl")
	e.start()
	e.write("p.yaml", sleeper(e, "p", ""))
	e.write("alerts.yaml", fmt.Sprintf(`apiVersion: reconciled.dev/v1alpha1
kind: AlertRoute
metadata: {name: all}
spec:
  groupWait: 100ms
  receivers:
  - exec: {command: ["/bin/sh", "-c", "cat >> %s; echo >> %s"]}
`, alerts, alerts))
	p := e.waitProcess("p", "Running", func(p process) bool { return p.Status.Phase == "Running" })
	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", p.Status.Pid))
	if err != nil {
		t.Fatal(err)
	}
	var marker string
	for _, kv := range strings.Split(string(environ), "\x00") {
		if strings.HasPrefix(kv, "RECONCILED_PROCESS=") {
			marker = kv
		}
	}
	e.stop(syscall.SIGKILL)
	dup := exec.Command("setsid", "sleep", "1003")
	dup.Env = []string{marker, "E2E_DIR=" + e.dir}
	if err := dup.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { dup.Process.Kill(); dup.Wait() }()
	e.start()
	q := e.waitProcess("p", "adopted, with the duplicate reported", func(q process) bool { return hasCondition(q, "Duplicate") })
	if q.Status.Pid != p.Status.Pid {
		t.Errorf("adopted pid %d, want %d", q.Status.Pid, p.Status.Pid)
	}
	if !alive(dup.Process.Pid) {
		t.Error("the duplicate was killed")
	}
	if out := e.ctl("events", "process/p"); !strings.Contains(out, "DuplicateProgram") || !strings.Contains(out, strconv.Itoa(dup.Process.Pid)) {
		t.Errorf("no DuplicateProgram event naming pid %d:\n%s", dup.Process.Pid, out)
	}
	e.eventually("the ProcessDuplicate alert", func() bool {
		b, _ := os.ReadFile(alerts)
		return strings.Contains(string(b), "ProcessDuplicate")
	})
	// Gone: the condition clears.
	dup.Process.Kill()
	dup.Wait()
	e.waitProcess("p", "the Duplicate condition cleared", func(q process) bool { return !hasCondition(q, "Duplicate") })
}

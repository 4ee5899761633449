// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func itoa(n int) string { return strconv.Itoa(n) }

// kill -9 of the daemon: programs keep running, the new daemon adopts them
// (same pid, no second copy, no restart), and still notices their exit.
func TestDaemonKill9Adopts(t *testing.T) {
	e := newEnv(t)
	e.start()
	e.write("adopt.yaml", sleeper(e, "adopt", "  readiness: {notify: false, exec: {command: [/bin/true]}}\n"))
	p := e.waitProcess("adopt", "Running", func(p process) bool { return p.Status.Phase == "Running" })
	if n := e.copies(); n != 1 {
		t.Fatalf("%d copies before the daemon restart", n)
	}
	e.stop(syscall.SIGKILL)
	if !alive(p.Status.Pid) {
		t.Fatal("program died with the daemon")
	}
	e.start()
	q := e.waitProcess("adopt", "adopted", func(q process) bool { return q.Status.Phase == "Running" })
	if q.Status.Pid != p.Status.Pid || q.Status.Restarts != p.Status.Restarts {
		t.Fatalf("after restart pid %d restarts %d, want pid %d restarts %d", q.Status.Pid, q.Status.Restarts, p.Status.Pid, p.Status.Restarts)
	}
	if n := e.copies(); n != 1 {
		t.Fatalf("%d copies after the daemon restart, want 1", n)
	}
	// The exit of an adopted program (not our child any more) is noticed.
	syscall.Kill(q.Status.Pid, syscall.SIGKILL)
	r := e.waitProcess("adopt", "restarted after adoption", func(r process) bool {
		return r.Status.Pid != q.Status.Pid && r.Status.Phase == "Running"
	})
	if r.Status.Restarts != q.Status.Restarts+1 {
		t.Fatalf("restarts %d, want %d", r.Status.Restarts, q.Status.Restarts+1)
	}
	// And a spec edit made while the daemon was down is applied on start.
	e.stop(syscall.SIGKILL)
	e.write("adopt.yaml", strings.Replace(e.read("adopt.yaml"), "sleep 1000", "sleep 1003", 1))
	e.start()
	e.waitProcess("adopt", "restarted for the spec edited while down", func(s process) bool {
		return s.Status.Pid != r.Status.Pid && s.Status.Phase == "Running" && s.Status.ObservedGeneration == 2
	})
	e.eventually("one copy", func() bool { return e.copies() == 1 })
}

// SIGTERM leaves programs running by default (like kubelet);
// --stop-on-exit stops them and records Stopped.
func TestSIGTERMPolicy(t *testing.T) {
	e := newEnv(t)
	e.start()
	e.write("stay.yaml", sleeper(e, "stay", ""))
	p := e.waitProcess("stay", "Running", func(p process) bool { return p.Status.Phase == "Running" })
	e.stop(syscall.SIGTERM)
	if !alive(p.Status.Pid) {
		t.Fatal("SIGTERM to the daemon stopped a program")
	}
	e.args = []string{"--stop-on-exit"}
	e.start()
	q := e.waitProcess("stay", "adopted", func(q process) bool { return q.Status.Phase == "Running" })
	if q.Status.Pid != p.Status.Pid {
		t.Fatalf("not adopted: pid %d -> %d", p.Status.Pid, q.Status.Pid)
	}
	e.stop(syscall.SIGTERM)
	e.eventually("program stopped with the daemon", func() bool { return !alive(p.Status.Pid) })
	e.eventually("Stopped in the file", func() bool { return strings.Contains(e.read("stay.yaml"), "phase: Stopped") })
}

// restart: the CLI command and the reconciled.dev/restartedAt annotation.
func TestManualRestart(t *testing.T) {
	e := newEnv(t)
	e.start()
	e.write("r.yaml", sleeper(e, "r", ""))
	p := e.waitProcess("r", "Running", func(p process) bool { return p.Status.Phase == "Running" })
	if out := e.ctl("restart", "process/r"); !strings.Contains(out, "restarted") {
		t.Fatalf("restart said %q", out)
	}
	q := e.waitProcess("r", "restarted", func(q process) bool { return q.Status.Pid != p.Status.Pid && q.Status.Phase == "Running" })
	// describe shows the live figures: uptime with the pid, restarts, and
	// how the last run ended.
	e.eventually("describe with live figures", func() bool {
		out := e.ctl("describe", "process/r")
		return strings.Contains(out, fmt.Sprintf("(pid %d,", q.Status.Pid)) && strings.Contains(out, "Restarts:     1") &&
			strings.Contains(out, "Last exit:    killed by SIGTERM (RestartRequested)")
	})
	e.write("r.yaml", strings.Replace(e.read("r.yaml"), "  name: r\n", "  name: r\n  annotations: {reconciled.dev/restartedAt: \"2026-11-21T10:00:00Z\"}\n", 1))
	e.waitProcess("r", "restarted by annotation", func(s process) bool { return s.Status.Pid != q.Status.Pid && s.Status.Phase == "Running" })
	if _, errs, code := e.ctlQuiet("restart", "process/nope"); code != 1 || !strings.Contains(errs, "not found") {
		t.Fatalf("restart of a missing process: exit %d %s", code, errs)
	}
}

// restartOnChange and removeBeforeStart.
func TestRestartOnChangeAndRemoveBeforeStart(t *testing.T) {
	e := newEnv(t)
	e.start()
	conf := filepath.Join(t.TempDir(), "app.conf")
	stale := filepath.Join(t.TempDir(), "app.sock")
	os.WriteFile(conf, []byte("v1"), 0o644)
	os.WriteFile(stale, []byte("stale"), 0o644)
	e.write("c.yaml", sleeper(e, "c", fmt.Sprintf("  restartOnChange: [%q]\n  removeBeforeStart: [%q]\n", conf, stale)))
	p := e.waitProcess("c", "Running", func(p process) bool { return p.Status.Phase == "Running" })
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatal("removeBeforeStart file still there")
	}
	// Replace by rename, as editors and config management do.
	tmp := conf + ".new"
	os.WriteFile(tmp, []byte("v2"), 0o644)
	os.Rename(tmp, conf)
	e.waitProcess("c", "restarted on config change", func(q process) bool {
		return q.Status.Pid != p.Status.Pid && q.Status.Phase == "Running" && q.Status.LastExit != nil && q.Status.LastExit.Reason == "FilesChanged"
	})
}

// logs: the log store, --tail and -f.
func TestLogs(t *testing.T) {
	e := newEnv(t)
	e.start()
	e.write("talker.yaml", `apiVersion: reconciled.dev/v1alpha1
kind: Process
metadata: {name: talker}
spec:
  command: ["/bin/sh", "-c", "for i in 1 2 3 4 5; do echo line $i; done; echo oops >&2; exec sleep 1000"]
  env: {E2E_DIR: "`+e.dir+`"}
`)
	e.eventually("output in the log store", func() bool {
		out, _, _ := e.ctlQuiet("logs", "process/talker")
		return strings.Contains(out, "oops")
	})
	out := e.ctl("logs", "process/talker", "--tail", "2")
	if out != "line 5\noops\n" {
		t.Fatalf("--tail 2 gave %q", out)
	}
	if _, errs, code := e.ctlQuiet("logs", "process/talker", "--previous"); code != 1 || !strings.Contains(errs, "previous run") {
		t.Fatalf("--previous before any restart: exit %d %q", code, errs)
	}
	cmd := exec.Command(ctlBin, "--socket", filepath.Join(e.state, "reconciled.sock"), "logs", "-f", "process/talker", "--tail", "1")
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	// Restarting appends a new run's output to the same log; restart only
	// once the follow is running (it has printed the tail).
	deadline := time.After(waitTimeout)
	seen := []string{}
	select {
	case l := <-lines:
		seen = append(seen, l)
	case <-deadline:
		t.Fatal("logs -f printed nothing")
	}
	e.ctl("restart", "process/talker")
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("logs -f ended early: %v", seen)
			}
			seen = append(seen, l)
			if l == "line 1" {
				// --previous: exactly the first run's output.
				e.eventually("the second run's output", func() bool {
					out, _, _ := e.ctlQuiet("logs", "process/talker")
					return strings.Count(out, "oops") == 2
				})
				if out := e.ctl("logs", "process/talker", "--previous"); out != "line 1\nline 2\nline 3\nline 4\nline 5\noops\n" {
					t.Fatalf("logs --previous: %q", out)
				}
				if out := e.ctl("logs", "process/talker", "--previous", "--tail", "1"); out != "oops\n" {
					t.Fatalf("logs --previous --tail 1: %q", out)
				}
				return
			}
		case <-deadline:
			t.Fatalf("logs -f did not show the new run: %v", seen)
		}
	}
}

// get: output formats, label selectors, watch.
func TestGetFormats(t *testing.T) {
	e := newEnv(t)
	e.start()
	e.write("g.yaml", strings.Replace(sleeper(e, "g1", ""), "  name: g1\n", "  name: g1\n  labels: {tier: web}\n", 1)+"---\n"+
		strings.Replace(sleeper(e, "g2", ""), "  name: g2\n", "  name: g2\n  labels: {tier: db}\n", 1))
	e.waitProcess("g2", "Running", func(p process) bool { return p.Status.Phase == "Running" })
	if out := e.ctl("get", "proc", "-l", "tier=web", "-o", "name"); out != "process/g1\n" {
		t.Fatalf("-l tier=web -o name: %q", out)
	}
	if out := e.ctl("get", "processes", "-l", "tier in (web,db)", "-o", "name"); out != "process/g1\nprocess/g2\n" {
		t.Fatalf("-l in: %q", out)
	}
	if out := e.ctl("get", "process", "g1", "-o", "yaml"); !strings.Contains(out, "kind: Process") || !strings.Contains(out, "phase: Running") {
		t.Fatalf("-o yaml: %s", out)
	}
	if out := e.ctl("get", "all", "--dir", e.dir); !strings.Contains(out, "process/g1") {
		t.Fatalf("get all --dir: %s", out)
	}
	if _, errs, code := e.ctlQuiet("get", "process/none"); code != 1 || !strings.Contains(errs, `process "none" not found`) {
		t.Fatalf("missing: exit %d %q", code, errs)
	}
	if _, _, code := e.ctlQuiet("get", "process", "-o", "toml"); code != 2 {
		t.Fatalf("bad -o: exit %d, want 2", code)
	}
	if out := e.ctl("get", "processes", "--absolute-times"); !regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`).MatchString(out) {
		t.Fatalf("--absolute-times: %s", out)
	}
	if out := e.ctl("get", "processes", "-o", "jsonpath={.items[*].metadata.name}", "--sort-by", ".metadata.name"); out != "g1 g2" {
		t.Fatalf("-o jsonpath: %q", out)
	}
	// -w prints the current row, then a row for each change, here with
	// the event type in front.
	cmd := exec.Command(ctlBin, "--socket", filepath.Join(e.state, "reconciled.sock"), "get", "process/g1", "-w", "--output-watch-events")
	stdout, _ := cmd.StdoutPipe()
	cmd.Start()
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(stdout)
	rows := make(chan string, 64)
	go func() {
		for sc.Scan() {
			rows <- sc.Text()
		}
	}()
	deadline := time.After(waitTimeout)
	for _, want := range []string{"EVENT", "ADDED"} { // the watch is established once the current row is printed
		select {
		case r := <-rows:
			if !strings.HasPrefix(r, want) {
				t.Fatalf("get -w --output-watch-events: %q, want it to start with %s", r, want)
			}
		case <-deadline:
			t.Fatal("get -w printed nothing")
		}
	}
	e.ctl("restart", "process/g1")
	for phases := map[string]bool{}; !(phases["Running"] && phases["Stopping"]); {
		select {
		case r := <-rows:
			for _, ph := range []string{"Running", "Stopping", "Starting"} {
				if strings.Contains(r, " "+ph+" ") {
					phases[ph] = true
				}
			}
		case <-deadline:
			t.Fatal("get -w did not show Stopping then Running")
		}
	}
}

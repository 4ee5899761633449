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
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reconciled/reconciled/test/fixtures"
)

// writeCalls are the system calls that create, change or remove a name in
// the file system.
const writeCalls = "open,openat,openat2,creat,mkdir,mkdirat,mknod,mknodat,rename,renameat,renameat2," +
	"unlink,unlinkat,rmdir,symlink,symlinkat,link,linkat,truncate,chmod,fchmodat,chown,fchownat,lchown,utimensat,bind,execve"

var (
	// A quoted path argument, after the directory descriptor it is
	// relative to when there is one: strace -y shows that descriptor's
	// path in <>, AT_FDCWD's too (openat(AT_FDCWD</cwd>, "name", ...)).
	tracePathArg = regexp.MustCompile(`(?:(?:AT_FDCWD|\d+)<([^>]*)>, )?"((?:[^"\\]|\\.)*)"`)
	traceSun     = regexp.MustCompile(`sun_path="((?:[^"\\]|\\.)*)"`)
	traceCall    = regexp.MustCompile(`^(\w+)\(`)
)

// tracedWrite is one system call of the daemon that writes a name.
type tracedWrite struct{ call, path, line string }

// daemonWrites reads the per-process traces of strace -ff -y and returns
// the calls that write a name, made by the daemon itself: by its threads,
// and by the children it forks before they exec their program (what a
// program does is its own business).
func daemonWrites(t *testing.T, prefix string) []tracedWrite {
	t.Helper()
	files, err := filepath.Glob(prefix + ".*")
	if err != nil || len(files) == 0 {
		t.Fatalf("no strace output at %s.*: %v", prefix, err)
	}
	var out []tracedWrite
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		execs := 0
		for sc.Scan() {
			line := sc.Text()
			m := traceCall.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			if m[1] == "execve" {
				if strings.HasSuffix(line, "= 0") {
					execs++
				}
				// The first process execs the daemon; any other exec is a
				// program taking over a child.
				if execs == 1 && strings.Contains(line, `execve("`+reconciled+`"`) {
					continue
				}
				if execs > 0 {
					break
				}
				continue
			}
			if m[1] == "open" || m[1] == "openat" || m[1] == "openat2" {
				if !strings.Contains(line, "O_WRONLY") && !strings.Contains(line, "O_RDWR") && !strings.Contains(line, "O_CREAT") && !strings.Contains(line, "O_TRUNC") {
					continue // a read
				}
			}
			var paths []string
			if m[1] == "bind" {
				sm := traceSun.FindStringSubmatch(line)
				if sm == nil || strings.HasPrefix(sm[1], "@") {
					continue // not a unix socket, or an abstract one
				}
				paths = append(paths, sm[1])
			} else {
				args, _, _ := strings.Cut(line, ") = ") // not the result's <path>
				for _, pm := range tracePathArg.FindAllStringSubmatch(args, -1) {
					p := pm[2]
					if !filepath.IsAbs(p) && pm[1] != "" {
						p = filepath.Join(pm[1], p)
					}
					paths = append(paths, p)
				}
			}
			for _, p := range paths {
				if !filepath.IsAbs(p) {
					wd, _ := os.Getwd() // the daemon's, inherited
					p = filepath.Join(wd, p)
				}
				out = append(out, tracedWrite{m[1], filepath.Clean(p), line})
			}
		}
		fh.Close()
	}
	return out
}

// No resource file, and nothing done through the API, makes the daemon
// write outside --dir and --state-dir, except where a kind says so: the log
// files a Process names and the unit folder of Modules. Every system call
// of the daemon that creates, changes or removes a name is traced with
// strace while every kind is created, edited, restarted, applied through
// the API, deleted and alerted on, with labels and annotations that look
// like paths.
func TestWritesStayInTheirFolders(t *testing.T) {
	if _, err := exec.LookPath("strace"); err != nil {
		fixtures.SkipOrFail(t, "strace is not installed (make test installs it)")
	}
	if out, err := exec.Command("strace", "-f", "-qq", "-o", "/dev/null", "true").CombinedOutput(); err != nil {
		// A container without ptrace (seccomp, no CAP_SYS_PTRACE).
		fixtures.SkipOrFail(t, fmt.Sprintf("strace cannot trace here: %v %s", err, out))
	}
	base := t.TempDir()
	if d := os.Getenv("FOOTPRINT_KEEP"); d != "" {
		base = d // keep the traces there, to read them
	}
	userLogs, units, traceDir := filepath.Join(base, "userlogs"), filepath.Join(base, "units"), filepath.Join(base, "trace")
	for _, d := range []string{userLogs, units, traceDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	e := newEnv(t, "--systemd-unit-dir", units)
	prefix := filepath.Join(traceDir, "t")
	e.wrap = []string{"strace", "-f", "-ff", "-y", "-qq", "-s", "4096", "-o", prefix, "-e", "trace=" + writeCalls}
	e.start()
	daemonPid := straceChild(t, e.daemon.Process.Pid)
	t.Cleanup(func() {
		// Before the harness kills strace: a tracee outlives its tracer.
		if e.daemon != nil {
			syscall.Kill(daemonPid, syscall.SIGKILL)
		}
	})

	e.write("all.yaml", fmt.Sprintf(`apiVersion: reconciled.dev/v1alpha1
kind: Process
metadata:
  name: writer
  labels: {app: "etc.passwd"}
  annotations: {note: "../../../etc/passwd"}
spec:
  command: ["/bin/sh", "-c", "echo out; echo err >&2; exec sleep 1000"]
  stdout: %[1]q
  stderr: %[2]q
  env: {E2E_DIR: %[4]q}
---
apiVersion: reconciled.dev/v1alpha1
kind: Process
metadata: {name: notified}
spec:
  command: [%[3]q, "ready"]
  readiness: {notify: true}
  env: {E2E_DIR: %[4]q}
---
apiVersion: reconciled.dev/v1alpha1
kind: Process
metadata: {name: job}
spec:
  command: ["/bin/sh", "-c", "echo done"]
  restartPolicy: Never
  env: {E2E_DIR: %[4]q}
---
apiVersion: reconciled.dev/v1alpha1
kind: Link
metadata: {name: closed}
spec:
  tcp: {address: "127.0.0.1:1"}
  interval: 100ms
  timeout: 100ms
  failureThreshold: 1
---
apiVersion: reconciled.dev/v1alpha1
kind: Link
metadata: {name: probed}
spec:
  exec: {command: ["/bin/true"]}
  interval: 100ms
---
apiVersion: reconciled.dev/v1alpha1
kind: AlertRoute
metadata: {name: everywhere}
spec:
  match: {kinds: [Link, Process]}
  groupWait: 100ms
  receivers:
  - log: {}
  - webhook: {url: "http://127.0.0.1:1/hook"}
  - exec: {command: ["/bin/sh", "-c", "cat > /dev/null"]}
---
apiVersion: reconciled.dev/v1alpha1
kind: Module
metadata: {name: mod}
spec:
  exec: ["/bin/sleep", "1000"]
`, filepath.Join(userLogs, "writer.out"), filepath.Join(userLogs, "writer.err"), notifyProg, e.dir))
	e.waitProcess("writer", "Running", func(p process) bool { return p.Status.Phase == "Running" })
	e.waitProcess("notified", "ready", func(p process) bool { st, _, _ := p.ready(); return st == "True" })
	e.waitProcess("job", "Completed", func(p process) bool { return p.Status.Phase == "Completed" })
	e.waitLink("closed", "Down")
	e.eventually("a notification in the outbox", func() bool { return e.getRoute("everywhere").Status.Pending >= 1 })

	// Through the API: apply, restart, logs, delete.
	applied := filepath.Join(base, "applied.yaml")
	writeFile(t, applied, "apiVersion: reconciled.dev/v1alpha1\nkind: Process\nmetadata: {name: via-api}\nspec:\n  command: [\"/bin/sleep\", \"1000\"]\n  env: {E2E_DIR: \""+e.dir+"\"}\n")
	e.ctl("apply", "-f", applied)
	e.waitProcess("via-api", "Running", func(p process) bool { return p.Status.Phase == "Running" })
	e.ctl("restart", "process/writer")
	e.ctl("logs", "process/job")
	e.ctl("delete", "process/via-api")
	e.eventually("via-api gone", func() bool { _, ok := e.getProcess("via-api"); return !ok })
	// An edit and a removal from the folder.
	e.write("all.yaml", strings.Replace(e.read("all.yaml"), "exec sleep 1000", "exec sleep 1001", 1))
	e.waitProcess("writer", "restarted for the edit", func(p process) bool { return p.Status.ObservedGeneration == 2 && p.Status.Phase == "Running" })

	// A graceful stop: the daemon's last writes are traced too. strace
	// ends when the programs it also traces are gone.
	syscall.Kill(daemonPid, syscall.SIGTERM)
	e.eventually("the daemon stopped", func() bool { return !alive(daemonPid) })
	e.killPrograms()
	done := make(chan struct{})
	go func() { e.daemon.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(waitTimeout):
		out, _ := exec.Command("sh", "-c", fmt.Sprintf("grep -l 'TracerPid:\t%d$' /proc/[0-9]*/status | while read f; do d=${f%%/status}; echo $d $(tr '\\0' ' ' < $d/cmdline); done", e.daemon.Process.Pid)).CombinedOutput()
		t.Fatalf("strace did not end within 30s of the daemon and its programs; still traced:\n%s", out)
	}
	e.daemon = nil

	allowed := []string{e.dir, e.state, userLogs, units, "/dev/null"}
	inside := func(p string) bool {
		for _, a := range allowed {
			if p == a || strings.HasPrefix(p, a+string(filepath.Separator)) {
				return true
			}
		}
		return false
	}
	writes := daemonWrites(t, prefix)
	var outside []string
	counts := map[string]int{}
	for _, w := range writes {
		counts[w.call]++
		if !inside(w.path) {
			outside = append(outside, w.line)
		}
	}
	t.Logf("%d writing system calls by the daemon traced (%v); outside --dir, --state-dir, the Process log files and the unit folder: %d",
		len(writes), counts, len(outside))
	if len(writes) < 10 {
		t.Fatalf("only %d writes traced: the trace does not see the daemon", len(writes))
	}
	if len(outside) > 0 {
		t.Fatalf("the daemon wrote outside its folders:\n%s", strings.Join(outside, "\n"))
	}
}

// straceChild returns the pid of the process strace (pid) started.
func straceChild(t *testing.T, pid int) int {
	t.Helper()
	var child int
	e := time.Now().Add(waitTimeout)
	for child == 0 {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
		fmt.Sscan(string(b), &child)
		if child == 0 {
			if time.Now().After(e) {
				t.Fatal("strace has no child")
			}
			time.Sleep(time.Millisecond) // polling /proc
		}
	}
	return child
}

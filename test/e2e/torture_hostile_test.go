// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// rssKiB returns the resident set size of a process in KiB.
func rssKiB(pid int) int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return n
		}
	}
	return 0
}

// fdCount returns how many descriptors a process has open.
func fdCount(pid int) int {
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(ents)
}

// TestTortureHostileDirectory drops what an attacker or an accident puts in
// a resource folder: FIFOs (one blocked open(2) stalled a worker for ever),
// a symlink to /dev/zero (RSS grew to 3 GB in 26 s), a unix socket, a
// folder named x.yaml, a 0-mode file, a world-writable file, a file of
// 10,000 documents (statuses took hours, quadratic), and a Process whose
// restartOnChange and stdout are FIFOs. The daemon keeps answering, stays
// small, reports each file, keeps /healthz ok, and still restarts a
// program that is killed (issue 11, item 10).
func TestTortureHostileDirectory(t *testing.T) {
	docs := 1000
	if os.Getenv("RECONCILED_TORTURE") == "1" {
		docs = 10000
	}
	port := freePort(t)
	e := newEnv(t, "--listen", fmt.Sprintf("127.0.0.1:%d", port))
	e.start()
	e.write("healthy.yaml", sleeper(e, "healthy", ""))
	healthy := e.waitProcess("healthy", "Running", func(p process) bool { return p.Status.Phase == "Running" })
	pid := e.daemon.Process.Pid
	rssBefore := rssKiB(pid)

	fifo := func(name string) string {
		p := filepath.Join(e.dir, name)
		if err := syscall.Mkfifo(p, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	fifo("f1.yaml")
	fifo("f2.yaml")
	os.Symlink("/dev/zero", filepath.Join(e.dir, "zero.yaml"))
	sock, err := net.Listen("unix", filepath.Join(e.dir, "sock.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	os.MkdirAll(filepath.Join(e.dir, "x.yaml"), 0o755)
	e.write("x.yaml/inside.yaml", sleeper(e, "inside", ""))
	e.write("nomode.yaml", sleeper(e, "nomode", ""))
	os.Chmod(filepath.Join(e.dir, "nomode.yaml"), 0)
	// Appears world-writable (a chmod after the fact is the test below).
	tmp := filepath.Join(t.TempDir(), "open.yaml")
	writeFile(t, tmp, sleeper(e, "open", ""))
	os.Chmod(tmp, 0o666)
	if err := os.Rename(tmp, filepath.Join(e.dir, "open.yaml")); err != nil {
		t.Fatal(err)
	}
	// restartOnChange and stdout naming FIFOs outside --dir.
	side := t.TempDir()
	var rocs []string
	for i := range 4 {
		p := filepath.Join(side, fmt.Sprintf("conf%d", i))
		syscall.Mkfifo(p, 0o644)
		rocs = append(rocs, fmt.Sprintf("%q", p))
	}
	syscall.Mkfifo(filepath.Join(side, "out"), 0o644)
	e.write("watching.yaml", sleeper(e, "watching", fmt.Sprintf("  restartOnChange: [%s]\n", strings.Join(rocs, ", "))))
	e.write("fifo-out.yaml", sleeper(e, "fifoout", fmt.Sprintf("  stdout: %q\n", filepath.Join(side, "out"))))
	var big strings.Builder
	for i := range docs {
		fmt.Fprintf(&big, "---\napiVersion: reconciled.dev/v1alpha1\nkind: Link\nmetadata: {name: big-%05d}\nspec:\n  tcp: {address: \"127.0.0.1:1\"}\n  interval: 1h\n", i)
	}
	bigStart := time.Now()
	e.write("big.yaml", big.String())

	for _, want := range []struct{ file, msg string }{
		{"f1.yaml", "a FIFO"}, {"f2.yaml", "a FIFO"}, {"zero.yaml", "a character device"},
		{"sock.yaml", "cannot read"}, {"open.yaml", "writable by its group or others"},
	} {
		e.eventually(want.file+" reported", func() bool {
			out := fetchPage(t, fmt.Sprintf("http://127.0.0.1:%d/apis/reconciled.dev/v1alpha1/problems", port))
			return strings.Contains(out, filepath.Join(e.dir, want.file)) && strings.Contains(out, want.msg)
		})
	}
	e.waitProcess("inside", "a file in a folder named x.yaml runs", func(p process) bool { return p.Status.Phase == "Running" })
	e.waitProcess("nomode", "a 0-mode file of root's is read", func(p process) bool { return p.Status.Phase == "Running" })
	e.waitProcess("watching", "restartOnChange FIFOs do not block it", func(p process) bool { return p.Status.Phase == "Running" })
	e.waitProcess("fifoout", "a FIFO stdout refused", func(p process) bool {
		_, reason, msg := p.ready()
		return reason == "StartFailed" && strings.Contains(msg, "FIFO")
	})
	e.eventually(fmt.Sprintf("the statuses of the %d documents written", docs), func() bool {
		return strings.Count(e.read("big.yaml"), "\nstatus:\n") == docs
	})
	bigTook := time.Since(bigStart)

	// Workers are free: a killed program comes back at once.
	syscall.Kill(healthy.Status.Pid, syscall.SIGKILL)
	e.waitProcess("healthy", "restarted after kill -9", func(p process) bool {
		return p.Status.Phase == "Running" && p.Status.Pid != healthy.Status.Pid
	})
	if resp := fetchPage(t, fmt.Sprintf("http://127.0.0.1:%d/healthz", port)); !strings.Contains(resp, "ok") {
		t.Errorf("/healthz: %s", resp)
	}
	rss := rssKiB(pid)
	// /dev/zero grew it by gigabytes; the documents cost some megabytes.
	if rss > 300<<10 {
		t.Errorf("daemon RSS %d MiB (was %d MiB before the drop)", rss>>10, rssBefore>>10)
	}
	figure(t, "TORTURE hostile directory: 2 FIFOs, /dev/zero, a socket, a folder x.yaml, a 0-mode file, a world-writable file, "+
		"4 FIFO restartOnChange targets, a FIFO stdout: all reported or refused, daemon answering; %d-document file loaded and "+
		"every status written in %v; RSS %d -> %d MiB", docs, bigTook.Round(time.Millisecond), rssBefore>>10, rss>>10)
}

// TestTortureAPIFlood opens 2,000 TCP connections that never send a
// request while reconcilectl get all runs over the unix socket: it stays
// fast, the daemon's descriptors stay bounded, and the server closes the
// silent connections (issue 11, item 13: 1,200 half-open connections
// exhausted the descriptors and get all took 33 s).
func TestTortureAPIFlood(t *testing.T) {
	port := freePort(t)
	e := newEnv(t, "--listen", fmt.Sprintf("127.0.0.1:%d", port))
	e.start()
	e.write("p.yaml", sleeper(e, "p", ""))
	e.waitProcess("p", "Running", func(p process) bool { return p.Status.Phase == "Running" })
	timeGetAll := func() time.Duration {
		start := time.Now()
		e.ctl("get", "all")
		return time.Since(start)
	}
	var calm time.Duration
	for range 5 {
		calm = max(calm, timeGetAll())
	}
	const flood = 2000
	var conns []net.Conn
	for range flood {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v", len(conns), err)
		}
		conns = append(conns, c)
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var worst time.Duration
	for range 10 {
		worst = max(worst, timeGetAll())
	}
	fds := fdCount(e.daemon.Process.Pid)
	if worst > time.Second {
		t.Errorf("get all over the unix socket took %v during the flood (%v before)", worst, calm)
	}
	if fds > 1000 {
		t.Errorf("the daemon holds %d descriptors during a flood of %d connections", fds, flood)
	}
	// The silent connections are closed by the server (read header timeout).
	buf := make([]byte, 1)
	conns[0].SetReadDeadline(time.Now().Add(time.Minute))
	if _, err := conns[0].Read(buf); err == nil || os.IsTimeout(err) {
		t.Errorf("a silent connection was not closed by the server: %v", err)
	}
	figure(t, "TORTURE API flood: %d silent TCP connections; get all over the unix socket worst %v (calm %v); daemon descriptors %d",
		flood, worst.Round(time.Millisecond), calm.Round(time.Millisecond), fds)
}

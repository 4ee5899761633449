// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reconciled/reconciled/test/fixtures/connloop"
)

// killLoop runs `listenprog client`: one connection after another to addr
// while the server that answers is killed with SIGKILL, kills times.
func killLoop(t *testing.T, addr string, kills int) connloop.Result {
	t.Helper()
	cmd := exec.Command(listenProg, "client", "-addr", addr, "-kills", strconv.Itoa(kills), "-timeout", "4m")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	var r connloop.Result
	if jerr := json.Unmarshal(out, &r); jerr != nil || err != nil {
		t.Fatalf("listenprog client: %v %v: %s", err, jerr, out)
	}
	return r
}

// noneRefused checks that a kill loop of kills saw no connection refused
// and an answer from every program.
func noneRefused(t *testing.T, r connloop.Result, kills int) {
	t.Helper()
	t.Logf("%d kill -9: %s", kills, r)
	if r.Refused != 0 {
		t.Errorf("%d connections refused while the program restarted (last error %s)", r.Refused, r.LastError)
	}
	if r.Pids < kills+1 {
		t.Errorf("%d programs answered, want %d", r.Pids, kills+1)
	}
}

// socketProcess writes a Process with one socket and restarts without
// waiting (backoff 100ms, the floor), and returns the address it got.
func (e *env) socketProcess(name, listen string, command ...string) string {
	e.t.Helper()
	q := make([]string, len(command))
	for i, c := range command {
		q[i] = strconv.Quote(c)
	}
	e.write(name+".yaml", fmt.Sprintf(`apiVersion: reconciled.dev/v1alpha1
kind: Process
metadata: {name: %s}
spec:
  command: [%s]
  backoff: {initial: 100ms, max: 100ms}
  sockets:
  - {name: api, listen: %q}
`, name, strings.Join(q, ", "), listen))
	p := e.waitProcess(name, "running with its socket", func(p process) bool {
		return p.Status.Phase == "Running" && len(p.Status.Sockets) == 1
	})
	s := p.Status.Sockets[0]
	if s.Name != "api" || s.Listen != listen {
		e.t.Fatalf("status.sockets %+v", p.Status.Sockets)
	}
	network, _, _ := strings.Cut(listen, "://")
	return network + "://" + s.Address
}

// The socket outlives every restart of the program: a client that keeps
// connecting while the program is killed 100 times is never refused. Both
// programs get their socket through their own library, unchanged: a Go
// program through go-systemd's activation.Listeners() and a Python program
// through pystemd's listen_fds() (seed 003).
func TestSocketActivationNoRefusedConnections(t *testing.T) {
	const kills = 100
	t.Run("go-systemd", func(t *testing.T) {
		e := newEnv(t)
		e.start()
		addr := e.socketProcess("gosvc", "tcp://127.0.0.1:0", listenProg, "serve")
		r := killLoop(t, addr, kills)
		figure(t, "socket activation (go-systemd program), %d kill -9 restarts: %s", kills, r)
		noneRefused(t, r, kills)
		p := e.waitProcess("gosvc", "counted the restarts", func(p process) bool { return p.Status.Restarts >= kills })
		if got := "tcp://" + p.Status.Sockets[0].Address; got != addr {
			t.Errorf("address changed from %s to %s", addr, got)
		}
	})
	t.Run("pystemd", func(t *testing.T) {
		py := pystemdPython(t)
		e := newEnv(t)
		e.start()
		script := filepath.Join(t.TempDir(), "svc.py")
		// The seed's API: listen_fds() checks LISTEN_PID against its own
		// pid; LISTEN_FDS_START is 3.
		os.WriteFile(script, []byte(`import os, socket, pystemd.daemon
n = pystemd.daemon.listen_fds()
assert n == 1, "listen_fds() = %d" % n
s = socket.socket(fileno=pystemd.daemon.LISTEN_FDS_START)
reply = ("%d %s\n" % (os.getpid(), os.environ.get("LISTEN_FDNAMES", ""))).encode()
while True:
    c, _ = s.accept()
    c.settimeout(10)
    try:
        if c.makefile("rb").readline():
            c.sendall(reply)
    finally:
        c.close()
`), 0o644)
		addr := e.socketProcess("pysvc", "tcp://127.0.0.1:0", py, script)
		r := killLoop(t, addr, kills)
		figure(t, "socket activation (pystemd program), %d kill -9 restarts: %s", kills, r)
		noneRefused(t, r, kills)
	})
}

// A unix socket: the file is made with the mode asked, survives restarts,
// and goes with the Process.
func TestSocketActivationUnixSocket(t *testing.T) {
	e := newEnv(t)
	e.start()
	path := filepath.Join(t.TempDir(), "run", "svc.sock")
	e.write("unixsvc.yaml", fmt.Sprintf(`apiVersion: reconciled.dev/v1alpha1
kind: Process
metadata: {name: unixsvc}
spec:
  command: [%q, serve]
  backoff: {initial: 100ms, max: 100ms}
  sockets:
  - {listen: "unix://%s", mode: "0660", backlog: 64}
  - {name: dns, listen: "udp://127.0.0.1:0"}
`, listenProg, path))
	p := e.waitProcess("unixsvc", "running with its sockets", func(p process) bool {
		return p.Status.Phase == "Running" && len(p.Status.Sockets) == 2
	})
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o660 {
		t.Fatalf("socket file: %v %v, want a socket of mode 0660", fi, err)
	}
	noneRefused(t, killLoop(t, "unix://"+path, 10), 10)
	// LISTEN_FDNAMES names both, in order (listenprog answers with it).
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("x\n"))
	buf := make([]byte, 128)
	c.SetReadDeadline(time.Now().Add(waitTimeout))
	n, _ := c.Read(buf)
	c.Close()
	if f := strings.Fields(string(buf[:n])); len(f) != 2 || f[1] != "unixsvc:dns" {
		t.Errorf("answer %q, want PID unixsvc:dns", buf[:n])
	}
	udp := p.Status.Sockets[1].Address
	// Deleting the Process closes the sockets and removes the file.
	os.Remove(filepath.Join(e.dir, "unixsvc.yaml"))
	e.eventually("socket file removed", func() bool {
		_, err := os.Lstat(path)
		return errors.Is(err, os.ErrNotExist)
	})
	e.eventually("udp port released", func() bool {
		c, err := net.ListenPacket("udp", udp)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// A socket that cannot be bound stops only its own Process, says why, and
// the Process starts once the port is free.
func TestSocketBindFailure(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	e := newEnv(t)
	e.start()
	e.write("blocked.yaml", fmt.Sprintf(`apiVersion: reconciled.dev/v1alpha1
kind: Process
metadata: {name: blocked}
spec:
  command: [%q, serve]
  backoff: {initial: 100ms, max: 200ms}
  sockets: [{listen: "tcp://%s"}]
`, listenProg, taken.Addr()))
	e.socketProcess("fine", "tcp://127.0.0.1:0", listenProg, "serve")
	p := e.waitProcess("blocked", "SocketBindFailed", func(p process) bool {
		_, reason, _ := p.ready()
		return reason == "SocketBindFailed"
	})
	_, _, msg := p.ready()
	if !strings.Contains(msg, "tcp://"+taken.Addr().String()) || !strings.Contains(msg, "address already in use") {
		t.Errorf("message %q, want the socket and the kernel's reason", msg)
	}
	if p.Status.Phase != "BackOff" {
		t.Errorf("phase %s, want BackOff", p.Status.Phase)
	}
	if f, _ := e.getProcess("fine"); f.Status.Phase != "Running" {
		t.Errorf("the other Process is %s", f.Status.Phase)
	}
	if out := e.ctl("describe", "process/blocked"); !strings.Contains(out, "SocketBindFailed") {
		t.Errorf("describe does not show the failure:\n%s", out)
	}
	taken.Close()
	e.waitProcess("blocked", "running once the port is free", func(p process) bool {
		return p.Status.Phase == "Running" && len(p.Status.Sockets) == 1
	})
}

// The daemon restarts (kill -9) while the program runs: the new daemon
// adopts the program and takes its socket back from it, so the next
// restarts of the program refuse nothing either.
func TestSocketSurvivesDaemonRestart(t *testing.T) {
	e := newEnv(t)
	e.start()
	addr := e.socketProcess("svc", "tcp://127.0.0.1:0", listenProg, "serve")
	before, _ := e.getProcess("svc")
	e.stop(syscall.SIGKILL)
	e.start()
	p := e.waitProcess("svc", "adopted", func(p process) bool { return p.Status.Pid == before.Status.Pid && len(p.Status.Sockets) == 1 })
	if p.Status.Restarts != before.Status.Restarts {
		t.Fatalf("the program restarted at adoption: restarts %d -> %d", before.Status.Restarts, p.Status.Restarts)
	}
	if strings.Contains(e.log.String(), "cannot take back a socket") {
		t.Fatalf("the daemon did not take the socket back:\n%s", e.log.String())
	}
	noneRefused(t, killLoop(t, addr, 10), 10)
}

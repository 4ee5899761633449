// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reconciled/reconciled/test/fixtures"
	"github.com/reconciled/reconciled/test/fixtures/syncbuf"
)

// The daemon speaks sd_notify for itself: READY=1 with STATUS= resource
// counts, WATCHDOG=1 at half of WATCHDOG_USEC, STOPPING=1 on SIGTERM.
func TestDaemonNotifiesSystemd(t *testing.T) {
	e := newEnv(t)
	e.write("a.yaml", sleeper(e, "a", ""))
	sockPath := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msgs := make(chan string, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	cmd := exec.Command(reconciled, "--dir", e.dir, "--state-dir", e.state, "--listen", "")
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sockPath, "WATCHDOG_USEC=400000")
	startCmd(t, cmd)
	want := map[string]bool{"READY=1": false, "STATUS=1 processes": false, "WATCHDOG=1": false}
	deadline := time.After(waitTimeout)
	var pings []time.Time
	for !(want["READY=1"] && want["STATUS=1 processes"] && len(pings) >= 11) {
		select {
		case m := <-msgs:
			for _, line := range strings.Split(m, "\n") {
				if _, ok := want[line]; ok {
					want[line] = true
				}
				if line == "WATCHDOG=1" {
					pings = append(pings, time.Now())
				}
			}
		case <-deadline:
			t.Fatalf("notifications seen: %v, %d watchdog pings", want, len(pings))
		}
	}
	// WATCHDOG_USEC is 400 ms: pings at half of it, as sd_watchdog_enabled(3)
	// advises, are 200 ms apart on average; systemd kills past 400 ms. The
	// average over 10 gaps is checked, so a loaded machine's late tick does
	// not make it fail, but a daemon pinging every 400 ms (or never) does.
	avg := pings[len(pings)-1].Sub(pings[len(pings)-11]) / 10
	if avg < 100*time.Millisecond || avg > 300*time.Millisecond {
		t.Errorf("WATCHDOG=1 every %v on average, want about 200ms (half of WATCHDOG_USEC=400ms)", avg)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	for {
		select {
		case m := <-msgs:
			if strings.Contains(m, "STOPPING=1") {
				return
			}
		case <-deadline:
			t.Fatal("no STOPPING=1 on SIGTERM")
		}
	}
}

// A socket-activated listener (LISTEN_FDS) is used for the API instead of
// --listen, as under a systemd .socket unit.
func TestSocketActivation(t *testing.T) {
	if _, err := exec.LookPath("systemd-socket-activate"); err != nil {
		fixtures.SkipOrFail(t, "systemd-socket-activate not installed")
	}
	e := newEnv(t)
	port := freePort(t)
	cmd := exec.Command("systemd-socket-activate", "-l", fmt.Sprintf("127.0.0.1:%d", port),
		reconciled, "--dir", e.dir, "--state-dir", e.state)
	log := startCmd(t, cmd)
	// The first connection starts the daemon, which takes the listener over.
	var body string
	e.eventually("healthz over the activated socket", func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", port))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return resp.StatusCode == 200
	})
	if strings.TrimSpace(body) != "ok" {
		t.Fatalf("healthz said %q", body)
	}
	e.eventually("activated listener logged", func() bool { return strings.Contains(log.String(), "using socket-activated listener") })
}

// user, workingDir, and the SIGKILL that follows stopTimeout for a program
// that ignores its stop signal.
func TestUserWorkingDirAndStopEscalation(t *testing.T) {
	if os.Geteuid() != 0 {
		fixtures.SkipOrFail(t, "running as another user needs root")
	}
	e := newEnv(t)
	e.start()
	// t.TempDir's parents are private to root; nobody needs a path it can reach.
	wd, err := os.MkdirTemp("/tmp", "reconciled-e2e-wd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(wd) })
	os.Chmod(wd, 0o777)
	e.write("u.yaml", fmt.Sprintf(`apiVersion: reconciled.dev/v1alpha1
kind: Process
metadata: {name: u}
spec:
  command: ["/bin/sh", "-c", "id -u > uid; pwd > cwd; trap '' TERM; while :; do sleep 1; done"]
  env: {E2E_DIR: %q}
  user: nobody
  workingDir: %q
  stopSignal: SIGTERM
  stopTimeout: 1s
`, e.dir, wd))
	p := e.waitProcess("u", "Running", func(p process) bool { return p.Status.Phase == "Running" })
	e.eventually("program wrote its files", func() bool {
		b, _ := os.ReadFile(filepath.Join(wd, "cwd"))
		return len(b) > 0
	})
	if b, _ := os.ReadFile(filepath.Join(wd, "uid")); strings.TrimSpace(string(b)) != "65534" {
		t.Fatalf("ran as uid %q, want 65534 (nobody)", b)
	}
	if b, _ := os.ReadFile(filepath.Join(wd, "cwd")); strings.TrimSpace(string(b)) != wd {
		t.Fatalf("ran in %q, want %q", b, wd)
	}
	// It ignores SIGTERM: the restart must escalate to SIGKILL after 1s.
	e.ctl("restart", "process/u")
	q := e.waitProcess("u", "restarted after SIGKILL", func(q process) bool {
		return q.Status.Pid != p.Status.Pid && q.Status.Phase == "Running"
	})
	if q.Status.LastExit == nil || q.Status.LastExit.Signal != "SIGKILL" {
		t.Fatalf("lastExit %+v, want SIGKILL after the stop timeout", q.Status.LastExit)
	}
	e.eventually("old group gone", func() bool { return !alive(p.Status.Pid) })
}

// The shipped examples are valid, version answers, completion works.
func TestExamplesValidateAndVersion(t *testing.T) {
	e := newEnv(t)
	out := e.ctl("validate", "../../examples")
	if !strings.Contains(out, "are valid") {
		t.Fatalf("validate examples: %s", out)
	}
	e.start()
	if out := e.ctl("version"); !strings.Contains(out, "Client Version:") || !strings.Contains(out, "Server Version:") {
		t.Fatalf("version: %s", out)
	}
	// Shell completion (cobra's) for the three shells.
	for shell, want := range map[string]string{"bash": "__start_reconcilectl", "zsh": "#compdef reconcilectl", "fish": "complete -c reconcilectl"} {
		if out := e.ctl("completion", shell); !strings.Contains(out, want) {
			t.Fatalf("completion %s lacks %q", shell, want)
		}
	}
}

// systemd may hand over the daemon's own unix socket (--socket): the daemon
// serves it as the trusted socket instead of taking it for another
// reconciled, and leaves the file, which is systemd's, in place at exit.
func TestSocketActivationOwnUnixSocket(t *testing.T) {
	if _, err := exec.LookPath("systemd-socket-activate"); err != nil {
		fixtures.SkipOrFail(t, "systemd-socket-activate not installed")
	}
	e := newEnv(t)
	os.MkdirAll(e.state, 0o750)
	sock := filepath.Join(e.state, "reconciled.sock")
	cmd := exec.Command("systemd-socket-activate", "-l", sock, reconciled, "--dir", e.dir, "--state-dir", e.state, "--listen", "")
	log := startCmd(t, cmd)
	e.write("a.yaml", sleeper(e, "a", ""))
	e.eventually("the daemon serves its handed-over socket", func() bool {
		out, _, code := e.ctlQuiet("get", "process/a")
		return code == 0 && strings.Contains(out, "a")
	})
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	if strings.Contains(log.String(), "another reconciled") {
		t.Fatalf("the daemon took its own socket for another one:\n%s", log.String())
	}
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("the daemon removed systemd's socket file: %v", err)
	}
	e.killPrograms()
}

// startCmd starts a daemon command that the harness does not (under
// systemd-socket-activate or with its own environment), kills it when the
// test ends, and returns its output, logged if the test failed.
func startCmd(t *testing.T, cmd *exec.Cmd) *syncbuf.Buffer {
	t.Helper()
	log := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("daemon log:\n%s", log.String())
		}
	})
	return log
}

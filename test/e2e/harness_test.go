// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package e2e builds reconciled and reconcilectl and drives them against
// real programs, only through resource files and the CLI.
package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/reconciled/reconciled/test/fixtures/syncbuf"
	"github.com/reconciled/reconciled/test/fixtures/waitfor"
)

var (
	binDir     string
	reconciled string
	ctlBin     string
	notifyProg string
	listenProg string
	demoBin    string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "reconciled-e2e-bin-")
	if err != nil {
		panic(err)
	}
	binDir = dir
	reconciled = filepath.Join(dir, "reconciled")
	ctlBin = filepath.Join(dir, "reconcilectl")
	notifyProg = filepath.Join(dir, "notifyprog")
	demoBin = filepath.Join(dir, "demo")
	listenProg = filepath.Join(dir, "listenprog")
	for out, pkg := range map[string]string{reconciled: "../../cmd/reconciled", ctlBin: "../../cmd/reconcilectl", notifyProg: "./testdata/notifyprog",
		listenProg: "./testdata/listenprog", demoBin: "../../hack/demo"} {
		cmd := exec.Command("go", "build", "-o", out, pkg)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build", pkg, err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is one test's resource dir, state dir and daemon.
type env struct {
	t      *testing.T
	dir    string
	state  string
	daemon *exec.Cmd
	log    *syncbuf.Buffer
	args   []string
	env    []string // extra environment for the daemon
	netns  string   // run the daemon inside this network namespace
	wrap   []string // run the daemon under this command (such as strace)
	// noDir starts the daemon without --dir (a host that reads only git:
	// one inotify instance less, which 50 daemons of one user need).
	noDir bool
}

func newEnv(t *testing.T, args ...string) *env {
	t.Helper()
	base := t.TempDir()
	e := &env{t: t, dir: filepath.Join(base, "resources"), state: filepath.Join(base, "state"), args: args}
	os.MkdirAll(e.dir, 0o755)
	t.Cleanup(func() {
		e.stop(syscall.SIGKILL)
		e.killPrograms()
		if t.Failed() && e.log != nil {
			t.Logf("daemon log:\n%s", e.log.String())
		}
	})
	return e
}

// start runs the daemon and waits until its socket answers.
func (e *env) start() {
	e.t.Helper()
	args := append([]string{"--state-dir", e.state, "--listen", "", "-v", "1"}, e.args...)
	if !e.noDir {
		args = append([]string{"--dir", e.dir}, args...)
	}
	cmd := exec.Command(reconciled, args...)
	if len(e.wrap) > 0 {
		cmd = exec.Command(e.wrap[0], append(append(e.wrap[1:len(e.wrap):len(e.wrap)], reconciled), args...)...)
	}
	if e.netns != "" {
		// ip netns exec execs the daemon: signals still reach it.
		cmd = exec.Command("ip", append([]string{"netns", "exec", e.netns, reconciled}, args...)...)
	}
	cmd.Env = append(os.Environ(), e.env...)
	if e.log == nil {
		e.log = &syncbuf.Buffer{}
	}
	cmd.Stdout, cmd.Stderr = e.log, e.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.daemon = cmd
	e.eventually("daemon answers", func() bool {
		_, _, code := e.ctlQuiet("get", "processes")
		return code == 0
	})
}

// stop signals the daemon (only the daemon, not its programs) and waits.
func (e *env) stop(sig syscall.Signal) {
	if e.daemon == nil || e.daemon.Process == nil {
		return
	}
	e.daemon.Process.Signal(sig)
	e.daemon.Wait()
	e.daemon = nil
}

// killPrograms kills every program this test's daemon started (found by
// the state dir's marker), so tests never leak processes.
func (e *env) killPrograms() {
	for _, pid := range e.markedPids() {
		syscall.Kill(-pid, syscall.SIGKILL)
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// markedPids lists the process-group leaders started by this env's daemon.
func (e *env) markedPids() []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, de := range ents {
		pid, err := strconv.Atoi(de.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + de.Name() + "/environ")
		if err != nil || !bytes.Contains(b, []byte("RECONCILED_PROCESS=")) {
			continue
		}
		cmdline, _ := os.ReadFile("/proc/" + de.Name() + "/cmdline")
		if !bytes.Contains(cmdline, []byte(e.dir)) && !bytes.Contains(b, []byte("E2E_DIR="+e.dir)) {
			continue
		}
		if pgid, _ := syscall.Getpgid(pid); pgid == pid {
			out = append(out, pid)
		}
	}
	return out
}

func (e *env) ctlQuiet(args ...string) (string, string, int) {
	all := append([]string{"--socket", filepath.Join(e.state, "reconciled.sock")}, args...)
	cmd := exec.Command(ctlBin, all...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// ctl runs reconcilectl and fails the test on a non-zero exit.
func (e *env) ctl(args ...string) string {
	e.t.Helper()
	out, errs, code := e.ctlQuiet(args...)
	if code != 0 {
		e.t.Fatalf("reconcilectl %s: exit %d: %s%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// process is the subset of a Process object the tests read.
type process struct {
	Metadata struct {
		Name        string            `json:"name"`
		Generation  int64             `json:"generation"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Status struct {
		ObservedGeneration int64  `json:"observedGeneration"`
		Phase              string `json:"phase"`
		Pid                int    `json:"pid"`
		Restarts           int64  `json:"restarts"`
		Message            string `json:"message"`
		LastExit           *struct {
			ExitCode int    `json:"exitCode"`
			Signal   string `json:"signal"`
			Reason   string `json:"reason"`
		} `json:"lastExit"`
		Conditions []struct {
			Type, Status, Reason, Message string
		} `json:"conditions"`
		Sockets []struct {
			Name    string `json:"name"`
			Listen  string `json:"listen"`
			Address string `json:"address"`
		} `json:"sockets"`
	} `json:"status"`
}

func (p process) ready() (status, reason, message string) {
	for _, c := range p.Status.Conditions {
		if c.Type == "Ready" {
			return c.Status, c.Reason, c.Message
		}
	}
	return "", "", ""
}

// getProcess reads one Process through `reconcilectl get -o json`.
func (e *env) getProcess(name string) (process, bool) {
	out, _, code := e.ctlQuiet("get", "process/"+name, "-o", "json")
	var p process
	if code != 0 || json.Unmarshal([]byte(out), &p) != nil {
		return p, false
	}
	return p, true
}

// waitProcess polls until cond holds for the named Process.
func (e *env) waitProcess(name, what string, cond func(p process) bool) process {
	e.t.Helper()
	var last process
	e.eventually(name+": "+what, func() bool {
		p, ok := e.getProcess(name)
		last = p
		return ok && cond(p)
	})
	return last
}

const waitTimeout = 30 * time.Second

// eventually polls cond until it holds or a generous timeout passes.
func (e *env) eventually(what string, cond func() bool) {
	e.t.Helper()
	waitfor.Within(e.t, waitTimeout, what, cond)
}

func (e *env) write(name, content string) string {
	e.t.Helper()
	p := filepath.Join(e.dir, name)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return p
}

func (e *env) read(name string) string {
	b, _ := os.ReadFile(filepath.Join(e.dir, name))
	return string(b)
}

// sleeper is a Process spec for a long-running shell loop that names the
// test dir in its command line, so leaks are traceable.
func sleeper(e *env, name, extra string) string {
	return fmt.Sprintf(`apiVersion: reconciled.dev/v1alpha1
kind: Process
metadata:
  name: %s
spec:
  command: ["/bin/sh", "-c", "echo started; exec sleep 1000"]
  env: {E2E_DIR: %q}
%s`, name, e.dir, extra)
}

func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// A zombie is not alive.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && len(s) > i+2 && s[i+2] != 'Z'
}

// copies counts the live programs this env's daemon started.
func (e *env) copies() int {
	n := 0
	for _, pid := range e.markedPids() {
		if alive(pid) {
			n++
		}
	}
	return n
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeTemp writes a file in a folder of its own, outside any watched one.
func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	writeFile(t, p, content)
	return p
}

// figures is where torture figures go: bench/torture-<start>-<host>.txt,
// written only under RECONCILED_TORTURE=1 (make torture), so the README's
// torture figures have their raw output in the repository.
var figures struct {
	sync.Mutex
	path string
}

// figure logs a measured figure and, under make torture, appends it to
// the run's file in bench/.
func figure(t *testing.T, format string, args ...any) {
	t.Helper()
	line := fmt.Sprintf(format, args...)
	t.Log(line)
	if os.Getenv("RECONCILED_TORTURE") != "1" {
		return
	}
	figures.Lock()
	defer figures.Unlock()
	if figures.path == "" {
		host, _ := os.Hostname()
		figures.path = filepath.Join("..", "..", "bench", fmt.Sprintf("torture-%s-%s.txt", time.Now().UTC().Format("2006-01-02T150405"), host))
	}
	f, err := os.OpenFile(figures.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Logf("cannot record the figure in %s: %v", figures.path, err)
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "%s %s: %s\n", time.Now().UTC().Format(time.RFC3339), t.Name(), line)
}

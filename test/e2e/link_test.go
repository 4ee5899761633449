// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type link struct {
	Status struct {
		Phase       string `json:"phase"`
		Transitions int64  `json:"transitions"`
		LastError   string `json:"lastError"`
	} `json:"status"`
}

func (e *env) getLink(name string) (link, bool) {
	out, _, code := e.ctlQuiet("get", "link/"+name, "-o", "json")
	var l link
	if code != 0 || json.Unmarshal([]byte(out), &l) != nil {
		return l, false
	}
	return l, true
}

func (e *env) waitLink(name, phase string) link {
	e.t.Helper()
	var l link
	e.eventually("link "+name+" "+phase, func() bool {
		var ok bool
		l, ok = e.getLink(name)
		return ok && l.Status.Phase == phase
	})
	return l
}

// A TCP link follows its listener: Up, Down after failureThreshold
// refused connections, Up again; the file's status changes only on
// transitions, and events say what happened.
func TestLinkTCPUpDownUp(t *testing.T) {
	e := newEnv(t)
	e.start()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	go acceptAll(l)
	e.write("a2rtr.yaml", fmt.Sprintf(`apiVersion: reconciled.dev/v1alpha1
kind: Link
metadata: {name: a2rtr}
spec:
  tcp: {address: %q}
  interval: 100ms
  timeout: 100ms
  failureThreshold: 3
  successThreshold: 2
`, addr))
	e.waitLink("a2rtr", "Up")
	e.eventually("Up in the file", func() bool { return strings.Contains(e.read("a2rtr.yaml"), "phase: Up") })
	writes := e.read("a2rtr.yaml")

	l.Close() // the remote end goes away: connection refused
	down := e.waitLink("a2rtr", "Down")
	if down.Status.Transitions != 1 || !strings.Contains(down.Status.LastError, "ConnectionRefused") || !strings.Contains(down.Status.LastError, "3 consecutive failures") {
		t.Fatalf("down status %+v", down.Status)
	}
	e.eventually("Down in the file", func() bool { return strings.Contains(e.read("a2rtr.yaml"), "phase: Down") })
	if writes == e.read("a2rtr.yaml") {
		t.Fatal("file not rewritten on a transition")
	}
	// While it stays down, the file does not change with every probe:
	// let at least five more probes fail, then compare.
	still := e.read("a2rtr.yaml")
	out := e.ctl("describe", "link/a2rtr")
	if !strings.Contains(out, "Probes:") || !strings.Contains(out, "ConnectionRefused") || !strings.Contains(out, "LinkDown") {
		t.Fatalf("describe lacks probes or events:\n%s", out)
	}
	before := e.consecutiveFailures("a2rtr")
	e.eventually("five more failed probes", func() bool { return e.consecutiveFailures("a2rtr") >= before+5 })
	if e.read("a2rtr.yaml") != still {
		t.Fatalf("the file changed without a transition:\n%s", e.read("a2rtr.yaml"))
	}

	l2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	go acceptAll(l2)
	up := e.waitLink("a2rtr", "Up")
	if up.Status.Transitions != 2 {
		t.Fatalf("transitions %d, want 2", up.Status.Transitions)
	}
	evs := e.ctl("events", "link/a2rtr")
	if !strings.Contains(evs, "LinkDown") || !strings.Contains(evs, "LinkUp") {
		t.Fatalf("events:\n%s", evs)
	}
	metrics := e.ctl("get", "link", "a2rtr", "-o", "wide")
	if !strings.Contains(metrics, "tcp://"+addr) {
		t.Fatalf("get -o wide:\n%s", metrics)
	}
}

// A slow answer is Degraded; http over a unix socket with a body check;
// exec probes.
func TestLinkHTTPDegradedUnixExec(t *testing.T) {
	e := newEnv(t)
	e.start()
	slow := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(60 * time.Millisecond) // the slow peer being measured
		fmt.Fprintln(w, "ok")
	})}
	sl, _ := net.Listen("tcp", "127.0.0.1:0")
	go slow.Serve(sl)
	defer slow.Close()
	sock := filepath.Join(t.TempDir(), "decnetapi.sock")
	ul, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	api := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, `{"circuits": [{"name": "A2RTR", "state": "up"}]}`)
	})}
	go api.Serve(ul)
	defer api.Close()
	flag := filepath.Join(t.TempDir(), "up")
	os.WriteFile(flag, nil, 0o644)
	e.write("links.yaml", fmt.Sprintf(`apiVersion: reconciled.dev/v1alpha1
kind: Link
metadata: {name: slow}
spec:
  http: {url: "http://%s/"}
  interval: 200ms
  timeout: 150ms
  degradedLatency: 20ms
---
apiVersion: reconciled.dev/v1alpha1
kind: Link
metadata: {name: decnet}
spec:
  http: {url: "http://localhost/api/circuits", unixSocket: %q, expectStatus: [200], expectBody: "A2RTR.*up"}
  interval: 100ms
  timeout: 100ms
---
apiVersion: reconciled.dev/v1alpha1
kind: Link
metadata: {name: check}
spec:
  exec: {command: ["/bin/sh", "-c", "test -e %s && echo fine"]}
  interval: 100ms
  timeout: 100ms
  failureThreshold: 1
`, sl.Addr(), sock, flag))
	e.waitLink("slow", "Degraded")
	e.waitLink("decnet", "Up")
	e.waitLink("check", "Up")
	os.Remove(flag)
	l := e.waitLink("check", "Down")
	if !strings.Contains(l.Status.LastError, "ExecFailed") {
		t.Fatalf("exec lastError %q", l.Status.LastError)
	}
}

// consecutiveFailures reads "N consecutive failures" from describe.
func (e *env) consecutiveFailures(name string) int {
	_, failures := e.probes(name)
	return failures
}

// probes returns how many recent probes `describe link/NAME` shows and how
// many of the last failed in a row; -1, -1 when it shows none.
func (e *env) probes(name string) (recent, failures int) {
	out, _, _ := e.ctlQuiet("describe", "link/"+name)
	for _, line := range strings.Split(out, "\n") {
		if _, err := fmt.Sscanf(strings.TrimSpace(line), "Probes: %d recent, %d consecutive failures", &recent, &failures); err == nil {
			return recent, failures
		}
	}
	return -1, -1
}

func acceptAll(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}

// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/reconciled/reconciled/test/fixtures"
)

// freePort asks the kernel for an unused loopback port.
func freePort(t *testing.T) int { return fixtures.FreePort(t) }

// tcp and http readiness against a real HTTP server.
func TestTCPAndHTTPReadiness(t *testing.T) {
	e := newEnv(t)
	e.start()
	port := freePort(t)
	serve := filepath.Join(t.TempDir(), "www")
	os.MkdirAll(serve, 0o755)
	os.WriteFile(filepath.Join(serve, "health"), []byte("ok"), 0o644)
	e.write("web.yaml", fmt.Sprintf(`apiVersion: reconciled.dev/v1alpha1
kind: Process
metadata: {name: web}
spec:
  command: ["python3", "-m", "http.server", "%d", "--bind", "127.0.0.1", "--directory", %q]
  env: {E2E_DIR: %q}
  readiness:
    http: {url: "http://127.0.0.1:%d/health", expectStatus: [200]}
    period: 100ms
---
apiVersion: reconciled.dev/v1alpha1
kind: Process
metadata: {name: waiter}
spec:
  command: ["/bin/sleep", "1000"]
  env: {E2E_DIR: %q}
  readiness:
    tcp: {address: "127.0.0.1:%d"}
    period: 100ms
---
apiVersion: reconciled.dev/v1alpha1
kind: Process
metadata: {name: lonely}
spec:
  command: ["/bin/sleep", "1000"]
  env: {E2E_DIR: %q}
  readiness:
    http: {url: "http://127.0.0.1:%d/missing", expectStatus: [200]}
    period: 100ms
`, port, serve, e.dir, port, e.dir, port, e.dir, port))
	e.waitProcess("web", "ready over http", func(p process) bool { st, _, _ := p.ready(); return st == "True" })
	e.waitProcess("waiter", "ready over tcp", func(p process) bool { st, _, _ := p.ready(); return st == "True" })
	p := e.waitProcess("lonely", "probe failure reported", func(p process) bool {
		_, reason, _ := p.ready()
		return reason == "ReadinessProbeFailed" && strings.Contains(p.Status.Message, "404")
	})
	if p.Status.Phase != "Starting" {
		t.Fatalf("a failing http check: phase %s message %q", p.Status.Phase, p.Status.Message)
	}
}

// The TCP API: health, readiness, metrics, reads; writes need a token.
func TestHTTPAPI(t *testing.T) {
	port := freePort(t)
	tokenFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600)
	e := newEnv(t, "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--api-token-file", tokenFile)
	e.start()
	e.write("a.yaml", sleeper(e, "a", ""))
	e.waitProcess("a", "Running", func(p process) bool { return p.Status.Phase == "Running" })
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, body := get(p); code != 200 || strings.TrimSpace(body) != "ok" {
			t.Fatalf("%s: %d %q", p, code, body)
		}
	}
	code, body := get("/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, re := range []string{
		`reconciled_process_up\{name="a"\} 1`,
		`reconciled_resources\{kind="Process",phase="Running"\} 1`,
		`reconciled_reconcile_total\{kind="Process",result="success"\} \d+`,
		`reconciled_workqueue_depth\{kind="Process"\} 0`,
		`reconciled_invalid_resources 0`,
	} {
		if !regexp.MustCompile(re).MatchString(body) {
			t.Fatalf("/metrics lacks %s", re)
		}
	}
	// link_up is exported again after a restart, although no transition
	// happens then.
	e.write("l.yaml", fmt.Sprintf("apiVersion: reconciled.dev/v1alpha1\nkind: Link\nmetadata: {name: self}\nspec:\n  tcp: {address: \"127.0.0.1:%d\"}\n  interval: 100ms\n  timeout: 100ms\n", port))
	e.waitLink("self", "Up")
	e.stop(syscall.SIGKILL)
	e.start()
	e.eventually("link_up after a restart", func() bool {
		_, body := get("/metrics")
		return strings.Contains(body, `reconciled_link_up{name="self"} 1`)
	})
	if code, body := get("/apis/reconciled.dev/v1alpha1/processes/a"); code != 200 || !strings.Contains(body, `"phase": "Running"`) {
		t.Fatalf("get: %d %s", code, body)
	}
	if code, _ := get("/apis/reconciled.dev/v1alpha1/widgets"); code != 404 {
		t.Fatalf("unknown kind: %d", code)
	}
	call := func(method, path, token string) int {
		req, _ := http.NewRequest(method, base+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	post := func(token string) int {
		return call(http.MethodPost, "/apis/reconciled.dev/v1alpha1/processes/a/restart", token)
	}
	if c := post(""); c != http.StatusUnauthorized {
		t.Fatalf("write without token: %d, want 401", c)
	}
	if c := post("wrong"); c != http.StatusUnauthorized {
		t.Fatalf("write with a wrong token: %d, want 401", c)
	}
	// Program output may hold secrets: reading it over TCP needs the token too.
	logReq := func(token string) int {
		return call(http.MethodGet, "/apis/reconciled.dev/v1alpha1/processes/a/log", token)
	}
	if c := logReq(""); c != http.StatusUnauthorized {
		t.Fatalf("log without token: %d, want 401", c)
	}
	if c := logReq("s3cret"); c != http.StatusOK {
		t.Fatalf("log with the token: %d, want 200", c)
	}
	if c := post("s3cret"); c != http.StatusAccepted {
		t.Fatalf("write with the token: %d, want 202", c)
	}
	// reconcilectl over TCP with the token.
	out, errs, code2 := e.ctlQuiet("--server", base, "--token-file", tokenFile, "restart", "process/a")
	if code2 != 0 {
		t.Fatalf("restart over TCP: %d %s %s", code2, out, errs)
	}
	e.waitProcess("a", "restarted twice", func(p process) bool { return p.Status.Restarts >= 2 && p.Status.Phase == "Running" })
}

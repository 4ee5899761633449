// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package apiserver

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/resources"
)

// envStore holds one Process with a password in spec.env.
func envStore(t *testing.T) *resources.Store {
	t.Helper()
	dir := t.TempDir()
	doc := "apiVersion: reconciled.dev/v1alpha1\nkind: Process\nmetadata: {name: db}\nspec:\n  command: [/bin/true]\n  env: {DB_PASSWORD: hunter2}\n"
	if err := os.WriteFile(filepath.Join(dir, "db.yaml"), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	store, err := resources.NewStore(resources.Options{Dir: dir, Status: resources.StatusNone, Log: testr.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Load(); err != nil {
		t.Fatal(err)
	}
	return store
}

// serve runs srv on a TCP listener and a unix socket until the test ends.
func serve(t *testing.T, srv *Server) (tcpURL string, unixClient *http.Client) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "api.sock")
	ul, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ctx, l, false)
	go srv.Serve(ctx, ul, true)
	unixClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	return "http://" + l.Addr().String(), unixClient
}

func get(t *testing.T, c *http.Client, url, host, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if host != "" {
		req.Host = host
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestEnvIsSecretWithoutToken: spec.env values are shown over the unix
// socket and with the token, and redacted otherwise (issue 11: a curl
// read a password).
func TestEnvIsSecretWithoutToken(t *testing.T) {
	srv := New(Options{Store: envStore(t), Token: "tok", Log: testr.New(t)})
	tcp, unix := serve(t, srv)
	for _, path := range []string{BasePath + "/processes/db", BasePath + "/processes", "/ui/processes/db"} {
		if _, body := get(t, http.DefaultClient, tcp+path, "", ""); strings.Contains(body, "hunter2") || (!strings.Contains(body, v1alpha1.Redacted) && !strings.HasPrefix(path, "/ui")) {
			t.Errorf("GET %s without the token: %s", path, body)
		}
		if strings.HasPrefix(path, "/ui") {
			continue // the page never shows values
		}
		if _, body := get(t, http.DefaultClient, tcp+path, "", "tok"); !strings.Contains(body, "hunter2") {
			t.Errorf("GET %s with the token hides the value: %s", path, body)
		}
		if _, body := get(t, unix, "http://reconciled"+path, "", ""); !strings.Contains(body, "hunter2") {
			t.Errorf("GET %s over the unix socket hides the value: %s", path, body)
		}
	}
	// The stored object is untouched.
	obj, _ := srv.opts.Store.Get(v1alpha1.KindProcess, "db")
	if obj.(*v1alpha1.Process).Spec.Env["DB_PASSWORD"] != "hunter2" {
		t.Error("redaction changed the stored object")
	}
}

// TestHostHeader: the API answers to localhost, IP addresses, the
// hostname and configured names, not to any name a web page points at
// 127.0.0.1 (DNS rebinding); /metrics and /healthz answer to any.
func TestHostHeader(t *testing.T) {
	srv := New(Options{Store: envStore(t), AllowedHosts: []string{"web1.example.net"}, Log: testr.New(t)})
	tcp, unix := serve(t, srv)
	hostname, _ := os.Hostname()
	for host, want := range map[string]int{
		"":                        200,
		"localhost:9470":          200,
		"127.0.0.1:9470":          200,
		"[::1]:9470":              200,
		"10.1.2.3":                200,
		hostname + ":9470":        200,
		"WEB1.example.net:9470":   200,
		"attacker.example":        http.StatusMisdirectedRequest,
		"attacker.example:9470":   http.StatusMisdirectedRequest,
		"127.0.0.1.attacker.test": http.StatusMisdirectedRequest,
	} {
		if code, body := get(t, http.DefaultClient, tcp+BasePath+"/processes/db", host, ""); code != want {
			t.Errorf("Host %q: %d %s, want %d", host, code, body, want)
		}
	}
	if code, _ := get(t, http.DefaultClient, tcp+"/healthz", "attacker.example", ""); code != 200 {
		t.Errorf("/healthz under another name: %d", code)
	}
	if code, _ := get(t, unix, "http://reconciled"+BasePath+"/processes/db", "attacker.example", ""); code != 200 {
		t.Errorf("unix socket with any Host: %d", code)
	}
}

// TestHealthzFailsWhenStuck: /healthz reports the liveness check.
func TestHealthzFailsWhenStuck(t *testing.T) {
	var stuck error
	srv := New(Options{Store: envStore(t), Health: func() error { return stuck }, Log: testr.New(t)})
	tcp, _ := serve(t, srv)
	if code, _ := get(t, http.DefaultClient, tcp+"/healthz", "", ""); code != 200 {
		t.Fatalf("healthy: %d", code)
	}
	stuck = errors.New("Process/p: reconcile running for 3m0s")
	if code, body := get(t, http.DefaultClient, tcp+"/healthz", "", ""); code != 503 || !strings.Contains(body, "Process/p") {
		t.Errorf("stuck: %d %s", code, body)
	}
}

// TestTCPFloodLeavesUnixSocket: connections that send nothing fill the TCP
// listener's bound but never the unix socket's, and are closed after the
// header timeout (issue 11: 1,200 half-open connections locked
// reconcilectl out for 33 s).
func TestTCPFloodLeavesUnixSocket(t *testing.T) {
	srv := New(Options{Store: envStore(t), MaxConnections: 20, ReadHeaderTimeout: time.Second, Log: testr.New(t)})
	tcp, unix := serve(t, srv)
	addr := strings.TrimPrefix(tcp, "http://")
	var conns []net.Conn
	for range 100 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	// The TCP listener is full: a request on a connection past the cap is
	// not served (it waits in the kernel's backlog, holding no descriptor)
	// while the silent ones hold their slots...
	late := conns[len(conns)-1]
	late.Write([]byte("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"))
	late.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := late.Read(make([]byte, 64)); err == nil || n > 0 {
		t.Errorf("a connection past the cap of 20 was served during the flood (%d bytes): no cap", n)
	}
	// ... and the unix socket answers at once.
	if code, _ := get(t, unix, "http://reconciled"+BasePath+"/processes", "", ""); code != 200 {
		t.Errorf("unix socket during the flood: %d", code)
	}
	// A silent connection is closed by the server.
	buf := make([]byte, 1)
	conns[0].SetReadDeadline(time.Now().Add(time.Minute))
	if _, err := conns[0].Read(buf); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("a silent connection was not closed by the server: %v", err)
	}
}

// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reconciled/reconciled/test/fixtures"
)

// The token-over-TCP checks (writes and program output need the bearer
// token; a wrong token is refused) are in TestHTTPAPI.

// A secret planted as the SMTP password, a webhook HMAC key and the API
// token shows nowhere the daemon writes or answers, even after deliveries
// using them failed: not in its log, resource files, reconcilectl output,
// the API, /metrics or the state dir.
func TestSecretsNeverShown(t *testing.T) {
	rb := make([]byte, 12)
	rand.Read(rb)
	secret := "s3cr3t-" + hex.EncodeToString(rb)
	const smtpUser = "alerts@example.net"
	// The SMTP server wants another password: every delivery fails at AUTH.
	s := newSink(t, smtpUser, "the-right-password")
	s.start(t)
	tmp := t.TempDir()
	pwFile := filepath.Join(tmp, "smtp-password")
	hookFile := filepath.Join(tmp, "webhook-secret")
	tokenFile := filepath.Join(tmp, "api-token")
	for _, p := range []string{pwFile, hookFile, tokenFile} {
		if err := os.WriteFile(p, []byte(secret+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Encodings a raw protocol trace would show: AUTH PLAIN and the
	// Authorization header.
	needles := map[string]string{
		"secret":            secret,
		"AUTH PLAIN base64": base64.StdEncoding.EncodeToString([]byte("\x00" + smtpUser + "\x00" + secret)),
		"base64":            base64.StdEncoding.EncodeToString([]byte(secret)),
	}
	closedPort := freePort(t)
	apiPort := freePort(t)
	e := newEnv(t, "--listen", fmt.Sprintf("127.0.0.1:%d", apiPort), "--api-token-file", tokenFile)
	e.env = []string{"SSL_CERT_FILE=" + s.caFile}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go acceptAll(l)
	e.write("alerts.yaml", fmt.Sprintf(`apiVersion: reconciled.dev/v1alpha1
kind: AlertRoute
metadata: {name: sec-email}
spec:
  match: {kinds: [Link]}
  groupWait: 100ms
  repeatInterval: 1h
  receivers:
  - email:
      smarthost: %q
      starttls: true
      username: %s
      passwordFile: %q
      from: alerts@example.net
      to: [ops@example.net]
---
apiVersion: reconciled.dev/v1alpha1
kind: AlertRoute
metadata: {name: sec-hook}
spec:
  match: {kinds: [Link]}
  groupWait: 100ms
  repeatInterval: 1h
  receivers:
  - webhook:
      url: "http://127.0.0.1:%d/hook"
      secretFile: %q
---
apiVersion: reconciled.dev/v1alpha1
kind: Link
metadata: {name: seclink}
spec:
  tcp: {address: %q}
  interval: 100ms
  timeout: 100ms
  failureThreshold: 2
`, s.Addr(), smtpUser, pwFile, closedPort, hookFile, l.Addr().String()))
	e.start()
	e.waitLink("seclink", "Up")
	l.Close()
	e.waitLink("seclink", "Down")
	for _, route := range []string{"sec-email", "sec-hook"} {
		e.eventually(route+" reports failed deliveries", func() bool {
			return e.getRoute(route).Status.Failed > 0
		})
	}
	if n := len(s.Messages()); n != 0 {
		t.Fatalf("%d mails got through with a wrong password", n)
	}

	places := map[string]string{} // place -> content
	places["daemon log"] = e.log.String()
	filepath.WalkDir(e.dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			b, _ := os.ReadFile(p)
			places["resource file "+p] = string(b)
		}
		return nil
	})
	places["reconcilectl get all -o yaml"] = e.ctl("get", "all", "-o", "yaml")
	places["reconcilectl get alertroutes"] = e.ctl("get", "alertroutes")
	places["reconcilectl describe alertroute/sec-email"] = e.ctl("describe", "alertroute/sec-email")
	places["reconcilectl describe alertroute/sec-hook"] = e.ctl("describe", "alertroute/sec-hook")
	places["reconcilectl describe link/seclink"] = e.ctl("describe", "link/seclink")
	places["reconcilectl events"] = e.ctl("events")
	base := fmt.Sprintf("http://127.0.0.1:%d", apiPort)
	for _, path := range []string{
		"/apis/reconciled.dev/v1alpha1/alertroutes",
		"/apis/reconciled.dev/v1alpha1/alertroutes/sec-email",
		"/apis/reconciled.dev/v1alpha1/alertroutes/sec-hook",
		"/apis/reconciled.dev/v1alpha1/events",
		"/apis/reconciled.dev/v1alpha1/problems",
		"/metrics",
		"/",
		"/ui/alertroutes/sec-email",
		"/ui/alertroutes/sec-hook",
	} {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		req.Header.Set("Authorization", "Bearer "+secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		places["API GET "+path] = string(b)
	}
	stateFiles := 0
	filepath.WalkDir(e.state, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			b, _ := os.ReadFile(p)
			places["state file "+p] = string(b)
			stateFiles++
		}
		return nil
	})
	if stateFiles == 0 {
		t.Fatalf("no files in the state dir %s", e.state)
	}
	// The checks must not be vacuous: each place has content, and the
	// failures were reported where the secret could have leaked.
	for place, content := range places {
		if strings.TrimSpace(content) == "" && !strings.HasPrefix(place, "state file ") {
			t.Fatalf("%s is empty", place)
		}
	}
	for place, want := range map[string]string{
		"reconcilectl get all -o yaml":                      "sec-hook",
		"reconcilectl describe alertroute/sec-email":        "sec-email",
		"reconcilectl events":                               "seclink",
		"API GET /apis/reconciled.dev/v1alpha1/events":      "seclink",
		"API GET /apis/reconciled.dev/v1alpha1/alertroutes": "sec-email",
		"API GET /metrics":                                  "reconciled_",
	} {
		if !strings.Contains(places[place], want) {
			t.Fatalf("%s lacks %q:\n%s", place, want, places[place])
		}
	}
	if r := e.getRoute("sec-email"); !strings.Contains(strings.ToLower(fmt.Sprint(r.Status.Conditions)), "auth") {
		t.Fatalf("sec-email should report the authentication failure: %+v", r.Status)
	}
	var leaks []string
	for place, content := range places {
		for what, needle := range needles {
			if strings.Contains(content, needle) {
				leaks = append(leaks, fmt.Sprintf("%s (%s)", place, what))
			}
		}
	}
	slices.Sort(leaks)
	t.Logf("checked %d places (%d state-dir files) for the planted secret in %d encodings", len(places), stateFiles, len(needles))
	if len(leaks) > 0 {
		t.Fatalf("the secret shows in %d places:\n  %s", len(leaks), strings.Join(leaks, "\n  "))
	}
}

// The unix socket is 0660, owned by --socket-group; an unknown group stops
// the daemon with a message naming it.
func TestSocketPermissions(t *testing.T) {
	g, err := user.LookupGroup("nogroup")
	if err != nil {
		if g, err = user.LookupGroup("daemon"); err != nil {
			fixtures.SkipOrFail(t, "neither nogroup nor daemon exists")
		}
	}
	gid, _ := strconv.Atoi(g.Gid)
	statSock := func(e *env) (os.FileMode, int) {
		t.Helper()
		fi, err := os.Lstat(filepath.Join(e.state, "reconciled.sock"))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Type() != os.ModeSocket {
			t.Fatalf("%s is not a socket: %v", fi.Name(), fi.Mode())
		}
		return fi.Mode().Perm(), int(fi.Sys().(*syscall.Stat_t).Gid)
	}

	plain := newEnv(t)
	plain.start()
	if perm, sgid := statSock(plain); perm != 0o660 || sgid != os.Getegid() {
		t.Fatalf("default socket: mode %o gid %d, want 660 and the daemon's gid %d", perm, sgid, os.Getegid())
	}

	e := newEnv(t, "--socket-group", g.Name)
	e.start()
	if perm, sgid := statSock(e); perm != 0o660 || sgid != gid {
		t.Fatalf("--socket-group %s: mode %o gid %d, want 660 and gid %d", g.Name, perm, sgid, gid)
	}
	e.stop(syscall.SIGTERM)

	const unknown = "no-such-group-e2e"
	bad := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, reconciled, "--dir", bad.dir, "--state-dir", bad.state, "--listen", "", "--socket-group", unknown)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("the daemon kept running with an unknown --socket-group: %s", out.String())
	}
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() == 0 {
		t.Fatalf("unknown --socket-group: err %v, want a non-zero exit; output: %s", err, out.String())
	}
	if !strings.Contains(out.String(), unknown) || !strings.Contains(out.String(), "socket-group") {
		t.Fatalf("the error does not name the group: %s", out.String())
	}
	if _, err := os.Lstat(filepath.Join(bad.state, "reconciled.sock")); err == nil {
		t.Fatal("a socket was created although the group is unknown")
	}
}

// A Process with user: nobody runs with nobody's uid, gid and groups only,
// no capabilities, and cannot become root again.
func TestProcessUserDropsPrivileges(t *testing.T) {
	if os.Geteuid() != 0 {
		fixtures.SkipOrFail(t, "needs a root daemon")
	}
	if _, err := exec.LookPath("python3"); err != nil {
		fixtures.SkipOrFail(t, "needs python3")
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		fixtures.SkipOrFail(t, "no user nobody")
	}
	gids, err := u.GroupIds()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(gids)
	e := newEnv(t)
	e.start()
	script := `id -u; id -g; echo "groups $(id -G)"; grep CapEff /proc/self/status;
python3 -c '
import os
for name, f in (("setuid", lambda: os.setuid(0)), ("setgid", lambda: os.setgid(0)), ("setgroups", lambda: os.setgroups([0])), ("seteuid", lambda: os.seteuid(0))):
    try:
        f()
        print(name, "SUCCEEDED")
    except PermissionError:
        print(name, "PermissionError")
'
echo "uid-after $(id -u)"; echo done; exec sleep 1000`
	e.write("priv.yaml", fmt.Sprintf(`apiVersion: reconciled.dev/v1alpha1
kind: Process
metadata: {name: priv}
spec:
  command: ["/bin/sh", "-c", %q]
  user: nobody
  env: {E2E_DIR: %q}
`, script, e.dir))
	var out string
	e.eventually("the program's output", func() bool {
		o, _, code := e.ctlQuiet("logs", "process/priv")
		out = o
		return code == 0 && strings.Contains(o, "done")
	})
	t.Logf("output of the program running as nobody:\n%s", out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 10 {
		t.Fatalf("short output:\n%s", out)
	}
	// Log lines may carry a prefix: compare the line ends.
	want := []string{
		u.Uid,
		u.Gid,
		"", // groups: checked below
		"CapEff:\t0000000000000000",
		"setuid PermissionError",
		"setgid PermissionError",
		"setgroups PermissionError",
		"seteuid PermissionError",
		"uid-after " + u.Uid,
	}
	for i, w := range want {
		if !strings.HasSuffix(lines[i], w) {
			t.Fatalf("line %d: %q, want %q\nfull output:\n%s", i+1, lines[i], w, out)
		}
	}
	// id -G prints the effective gid first; the set must be exactly nobody's.
	_, groups, ok := strings.Cut(lines[2], "groups ")
	if !ok {
		t.Fatalf("line 3: %q, want the groups", lines[2])
	}
	got := strings.Fields(groups)
	slices.Sort(got)
	got = slices.Compact(got)
	if !slices.Equal(got, gids) || slices.Contains(got, "0") {
		t.Fatalf("supplementary groups %v, want exactly nobody's %v", got, gids)
	}
}

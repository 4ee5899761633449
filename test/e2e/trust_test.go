// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reconciled/reconciled/test/fixtures"
	"github.com/reconciled/reconciled/test/fixtures/systemdtest"
)

// The defects a new user and an attacker found (issue 11), each driven
// through the real daemon and CLI.

// A Process stuck in BackOff (a user that does not exist, a 10-minute
// backoff) starts at once when the line is removed, and its Ready
// condition describes the new spec (issue 11, item 1; issue 12, item 3).
func TestFixedSpecEndsBackOff(t *testing.T) {
	e := newEnv(t)
	e.start()
	backoff := "  restartPolicy: Always\n  backoff: {initial: 10m, max: 10m}\n"
	e.write("p.yaml", sleeper(e, "p", backoff+"  user: nosuchuser\n"))
	p := e.waitProcess("p", "BackOff with StartFailed", func(p process) bool {
		_, reason, _ := p.ready()
		return p.Status.Phase == "BackOff" && reason == "StartFailed"
	})
	_, _, oldMsg := p.ready()
	if !strings.Contains(oldMsg, "nosuchuser") {
		t.Fatalf("the condition does not name the user: %q", oldMsg)
	}
	// A start failure goes into the streak: the next try is 10 minutes
	// away. The fixed spec must not wait for it.
	e.write("p.yaml", sleeper(e, "p", backoff))
	p = e.waitProcess("p", "Running at once after the fix", func(p process) bool { return p.Status.Phase == "Running" })
	if status, reason, msg := p.ready(); status != "True" || strings.Contains(msg, "nosuchuser") || reason != "Running" {
		t.Errorf("Ready after the fix: %s %s %q", status, reason, msg)
	}
	if p.Status.ObservedGeneration != p.Metadata.Generation {
		t.Errorf("observedGeneration %d, generation %d", p.Status.ObservedGeneration, p.Metadata.Generation)
	}
}

// A unit with Restart= that fails at start (status=217/USER), restarted by
// systemd every 3 s (under its start limit), is a crash loop: Failed with
// reason CrashLoop, a Warning event with the journal's last line, and the
// ModuleFailed alert (issue 11, item 2: it cycled 14 times in 90 s as
// Ready, with no event and no alert).
func TestModuleCrashLoopAlerts(t *testing.T) {
	sb := systemdtest.Start(t)
	alertFile := filepath.Join(t.TempDir(), "alerts.jsonl")
	e := newEnv(t, "--systemd-root", sb.Root)
	e.start()
	e.write("alerts.yaml", fmt.Sprintf(`apiVersion: reconciled.dev/v1alpha1
kind: AlertRoute
metadata: {name: modules}
spec:
  match: {kinds: [Module]}
  groupWait: 100ms
  receivers:
  - exec: {command: ["/bin/sh", "-c", "cat >> %s; echo >> %s"]}
`, alertFile, alertFile))
	e.write("bad.yaml", moduleYAML("bad", `["/bin/sleep", "1000"]`, "  user: nosuchuser\n  restart: always\n  restartSec: 3s\n"))
	m := e.waitModule("bad", "Failed as a crash loop", func(m module) bool {
		_, reason, _ := m.ready()
		return m.Status.Phase == "Failed" && reason == "CrashLoop"
	})
	if _, _, msg := m.ready(); !strings.Contains(msg, "last journal line") {
		t.Errorf("the CrashLoop condition lacks the journal line: %q", msg)
	}
	if s := systemctl(sb, "show", "-p", "ActiveState", "bad.service"); strings.Contains(s, "failed") {
		t.Fatalf("systemd gave up by itself (%s): this tests nothing of reconciled's", s)
	}
	if out := e.ctl("events", "module/bad"); !strings.Contains(out, "CrashLoop") || !strings.Contains(out, "Warning") {
		t.Errorf("no CrashLoop warning event:\n%s", out)
	}
	e.eventually("ModuleFailed alert", func() bool {
		b, _ := os.ReadFile(alertFile)
		return strings.Contains(string(b), "ModuleFailed")
	})
	// It stays Failed through systemd's cycles (Ready never flips back).
	for range 3 {
		if m, _ := e.getModule("bad"); m.Status.Phase != "Failed" {
			t.Fatalf("left Failed while still looping: %+v", m.Status)
		}
		e.eventually("another systemd restart", func() bool {
			n, _ := e.getModule("bad")
			return n.Status.NRestarts > m.Status.NRestarts
		})
		m, _ = e.getModule("bad")
	}
	// Fixed: it runs, and the crash loop is over.
	e.write("bad.yaml", moduleYAML("bad", `["/bin/sleep", "1000"]`, "  restart: always\n  restartSec: 3s\n"))
	e.waitModule("bad", "Active after the fix", func(m module) bool { return m.Status.Phase == "Active" })
}

// Deleting a Link that is Down resolves its alert with a notification that
// says it was deleted, never "is Up", and records a Deleted event (issue
// 11, item 3).
func TestDeletionIsNotRecovery(t *testing.T) {
	e, s, l, _ := alertSetup(t, "s3cret")
	s.start(t)
	e.start()
	e.waitLink("a2rtr", "Up")
	l.Close()
	e.waitLink("a2rtr", "Down")
	e.eventually("FIRING mail", func() bool { return len(s.Messages()) >= 1 })
	// Keep the route, drop the Link.
	routeOnly := strings.SplitN(e.read("alerts.yaml"), "\n---\n", 2)[0] + "\n"
	e.write("alerts.yaml", routeOnly)
	e.eventually("the resolution mail", func() bool { return len(s.Messages()) >= 2 })
	m := s.Messages()[1]
	if subj := m.Header("Subject"); subj != "[RESOLVED] Link a2rtr was deleted" {
		t.Errorf("resolution subject %q, want [RESOLVED] Link a2rtr was deleted", subj)
	}
	if strings.Contains(m.Body(), "is Up") {
		t.Errorf("the resolution claims a recovery:\n%s", m.Body())
	}
	if out := e.ctl("events", "link/a2rtr"); !strings.Contains(out, "Deleted") {
		t.Errorf("no Deleted event:\n%s", out)
	}
}

// reconcilectl as kubectl users type it (issue 11, item 7; the problems of
// item 4).
func TestKubectlHabits(t *testing.T) {
	e := newEnv(t)
	e.start()
	e.write("a.yaml", sleeper(e, "a", "")+"---\n"+sleeper(e, "b", "")+"---\n"+`apiVersion: reconciled.dev/v1alpha1
kind: Link
metadata: {name: l}
spec: {tcp: {address: "127.0.0.1:1"}, interval: 1s}
`)
	e.write("typo.yaml", "apiVersion: reconciled.dev/v1alpha1\nkind: Proces\nmetadata: {name: x}\nspec: {}\n")
	e.waitProcess("a", "Running", func(p process) bool { return p.Status.Phase == "Running" })
	e.waitProcess("b", "Running", func(p process) bool { return p.Status.Phase == "Running" })
	sock := filepath.Join(e.state, "reconciled.sock")
	ctl := func(args ...string) (string, int) {
		cmd := exec.Command(ctlBin, args...)
		cmd.Env = append(os.Environ(), "RECONCILED_SOCKET="+sock) // no --socket: the variable is enough
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return string(out), code
	}
	for _, c := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"describe", "processes"}, 0, []string{"Name:         a", "Name:         b"}},
		{[]string{"describe", "process", "a", "b"}, 0, []string{"Name:         a", "Name:         b"}},
		{[]string{"get", "process/a", "link/l"}, 0, []string{"process/a", "link/l"}},
		{[]string{"get", "process/a", "process/nope"}, 1, []string{"a ", `process "nope" not found`}},
		{[]string{"logs", "a"}, 0, []string{"started"}},
		{[]string{"get", "processes", "--sort-by", ".spec.nothing"}, 2, []string{"couldn't find any field"}},
		{[]string{"bogus"}, 2, []string{`unknown command "bogus"`}},
		{[]string{"get", "all"}, 0, []string{"PROBLEM", "typo.yaml:2", `unknown kind "Proces"`}},
		{[]string{"validate", "/nonexistent"}, 1, []string{"/nonexistent: no such file or folder"}},
		{[]string{"__complete", "get", "proc"}, 0, []string{"processes", "process"}},
		{[]string{"__complete", "get", "processes", ""}, 0, []string{"a", "b"}},
		{[]string{"__complete", "get", "-o", ""}, 0, []string{"wide", "yaml", "jsonpath="}},
	} {
		out, code := ctl(c.args...)
		if code != c.code {
			t.Errorf("reconcilectl %s: exit %d, want %d\n%s", strings.Join(c.args, " "), code, c.code, out)
		}
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("reconcilectl %s lacks %q:\n%s", strings.Join(c.args, " "), w, out)
			}
		}
	}
}

// Secrets: spec.env values need the token over TCP, envFrom keeps them out
// of resource files, and a web page's DNS rebinding gets nothing (issue
// 11, item 14).
func TestSecretsOverTCP(t *testing.T) {
	port := freePort(t)
	tok := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tok, []byte("t0ken\n"), 0o600)
	e := newEnv(t, "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--api-token-file", tok)
	envFile := filepath.Join(t.TempDir(), "db.env")
	os.WriteFile(envFile, []byte("# the database\nexport DB_PASSWORD='from the file'\n"), 0o600)
	out := filepath.Join(t.TempDir(), "env.out")
	e.start()
	e.write("p.yaml", fmt.Sprintf(`apiVersion: reconciled.dev/v1alpha1
kind: Process
metadata: {name: p}
spec:
  command: ["/bin/sh", "-c", "echo \"$DB_PASSWORD|$API_KEY\" > %s; exec sleep 1000"]
  env: {API_KEY: hunter2, E2E_DIR: %q}
  envFrom: [{file: %q}, {file: /nonexistent.env, optional: true}]
`, out, e.dir, envFile))
	e.waitProcess("p", "Running", func(p process) bool { return p.Status.Phase == "Running" })
	e.eventually("the program's environment", func() bool {
		b, _ := os.ReadFile(out)
		return string(b) == "from the file|hunter2\n"
	})
	get := func(host, token string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/apis/reconciled.dev/v1alpha1/processes/p", port), nil)
		if host != "" {
			req.Host = host
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("", ""); code != 200 || strings.Contains(body, "hunter2") || !strings.Contains(body, "(redacted)") {
		t.Errorf("without the token: %d %s", code, body)
	}
	if _, body := get("", "t0ken"); !strings.Contains(body, "hunter2") {
		t.Errorf("with the token the value is hidden: %s", body)
	}
	if code, body := get("attacker.example", "t0ken"); code != http.StatusMisdirectedRequest || strings.Contains(body, "hunter2") {
		t.Errorf("DNS rebinding: %d %s", code, body)
	}
	if page := fetchPage(t, fmt.Sprintf("http://127.0.0.1:%d/ui/processes/p", port)); strings.Contains(page, "hunter2") {
		t.Error("the status page shows an env value")
	}
	if b, _ := os.ReadFile(filepath.Join(e.dir, "p.yaml")); strings.Contains(string(b), "from the file") {
		t.Error("the envFrom value reached the resource file")
	}
}

func fetchPage(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// Whoever may write --dir may run anything as the daemon's user: a file
// another user drops into a world-writable folder is refused, not run as
// root (issue 11, item 15).
func TestUntrustedFileNotRun(t *testing.T) {
	if os.Geteuid() != 0 {
		fixtures.SkipOrFail(t, "needs a root daemon and another user")
	}
	e := newEnv(t)
	e.start()
	// Let nobody reach --dir (t.TempDir's folders are root's, 0700).
	for d := e.dir; d != filepath.Dir(os.TempDir()) && d != "/"; d = filepath.Dir(d) {
		if strings.HasPrefix(d, os.TempDir()+"/") {
			os.Chmod(d, 0o755)
		}
	}
	open := filepath.Join(e.dir, "incoming")
	os.Mkdir(open, 0o777)
	os.Chmod(open, 0o777)
	marker := filepath.Join(t.TempDir(), "ran")
	src := filepath.Join(e.state, "evil.yaml.src") // not below --dir
	os.WriteFile(src, []byte(strings.Replace(sleeper(e, "evil", "  restartPolicy: Never\n"), `"echo started; exec sleep 1000"`, fmt.Sprintf(`"touch %s"`, marker), 1)), 0o644)
	os.Chmod(e.state, 0o755)
	// Copied in by nobody, as any local user could.
	if out, err := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "cp", src, filepath.Join(open, "evil.yaml")).CombinedOutput(); err != nil {
		t.Fatalf("setpriv cp: %v %s", err, out)
	}
	e.eventually("the file refused as a problem", func() bool {
		out := e.ctl("get", "all")
		return strings.Contains(out, "evil.yaml") && strings.Contains(out, "owned by uid 65534")
	})
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("a file written by nobody ran a program as root")
	}
	if _, ok := e.getProcess("evil"); ok {
		t.Error("the untrusted resource is known")
	}
}

// With <dir>/api a symlink out of --dir, reconcilectl apply is refused and
// nothing is written outside --dir (issue 11, item 18).
func TestApplyThroughSymlinkRefused(t *testing.T) {
	e := newEnv(t)
	outside := t.TempDir()
	os.Symlink(outside, filepath.Join(e.dir, "api"))
	e.start()
	f := filepath.Join(t.TempDir(), "p.yaml")
	os.WriteFile(f, []byte(sleeper(e, "p", "")), 0o644)
	out, errs, code := e.ctlQuiet("apply", "-f", f)
	if code == 0 || !strings.Contains(out+errs, "symbolic link") {
		t.Errorf("apply through a symlinked folder: exit %d %s%s", code, out, errs)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("written outside --dir: %v", ents)
	}
	if out := e.ctl("get", "all"); !strings.Contains(out, "SymlinkedFolder") {
		t.Errorf("the symlinked folder is not reported:\n%s", out)
	}
}

// An AlertRoute whose password file is missing is Degraded at once, not
// Ready until its first delivery fails (issue 11, item 19).
func TestRouteWithMissingSecretIsDegraded(t *testing.T) {
	e := newEnv(t)
	e.start()
	e.write("r.yaml", `apiVersion: reconciled.dev/v1alpha1
kind: AlertRoute
metadata: {name: mail}
spec:
  receivers:
  - email: {smarthost: "127.0.0.1:1", username: u, passwordFile: /nonexistent/smtp-password, from: a@example.net, to: [b@example.net]}
`)
	e.eventually("Degraded naming the file", func() bool {
		r := e.getRoute("mail")
		for _, c := range r.Status.Conditions {
			if c.Type == "Ready" && c.Status == "False" && c.Reason == "SecretUnreadable" && strings.Contains(c.Message, "/nonexistent/smtp-password") {
				return r.Status.Phase == "Degraded"
			}
		}
		return false
	})
}

// A resource folder on a read-only mount: the status write fails for good.
// It is retried with backoff and logged once, not 90 times in 5 s, the
// API shows the StatusWritten condition, and the program runs (issue 11,
// item 12).
func TestReadOnlyFolderBacksOff(t *testing.T) {
	if os.Geteuid() != 0 {
		fixtures.SkipOrFail(t, "a read-only bind mount needs root")
	}
	e := newEnv(t)
	e.write("p.yaml", sleeper(e, "p", ""))
	// The daemon in its own mount namespace, where --dir is read-only.
	e.wrap = []string{"unshare", "-m", "--propagation", "private", "sh", "-c",
		fmt.Sprintf(`mount --bind -o ro %[1]s %[1]s && exec "$0" "$@"`, e.dir)}
	e.start()
	p := e.waitProcess("p", "Running", func(p process) bool { return p.Status.Phase == "Running" })
	e.eventually("the StatusWritten condition", func() bool {
		out, _, _ := e.ctlQuiet("get", "process/p", "-o", "json")
		return strings.Contains(out, `"StatusWritten"`) && strings.Contains(out, "read-only file system")
	})
	time.Sleep(5 * time.Second) // observing how often it retries, as the report did
	if n := strings.Count(e.log.String(), "cannot write status"); n > 1 {
		t.Errorf("the failure was logged %d times in 5 s, want once", n)
	}
	if q, _ := e.getProcess("p"); q.Status.Pid != p.Status.Pid || !alive(p.Status.Pid) {
		t.Errorf("the program did not keep running: %+v", q.Status)
	}
}

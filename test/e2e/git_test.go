// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/reconciled/reconciled/test/fixtures/gittest"
)

// A host reads its part of a git repository: a commit starts and changes
// its programs, status goes to the sidecar (never into the repository),
// the API refuses writes, a remote that is gone stops nothing — not even
// across a restart of the daemon — and a file removed from the repository
// is pruned.
func TestGitSourceHost(t *testing.T) {
	g := gittest.New(t)
	e := newEnv(t, "--git", g.Bare, "--git-path", "common", "--git-path", "hosts/${HOST}", "--host", "web1", "--git-interval", "100ms")
	web := func(arg string) string {
		return strings.Replace(sleeper(e, "web", ""), "exec sleep 1000", "exec sleep "+arg, 1)
	}
	firstCommit := g.Commit("web on web1", map[string]string{
		"hosts/web1/web.yaml":   web("1000"),
		"hosts/web2/other.yaml": sleeper(e, "other", ""),
		"common/shared.yaml":    sleeper(e, "shared", ""),
	})
	e.start()
	first := e.waitProcess("web", "Running from the first commit", func(p process) bool { return p.Status.Phase == "Running" })
	e.waitProcess("shared", "Running", func(p process) bool { return p.Status.Phase == "Running" })
	if _, ok := e.getProcess("other"); ok {
		t.Fatal("web1 runs a resource of hosts/web2")
	}
	if src, want := first.Metadata.Annotations["reconciled.dev/source"], firstCommit+":hosts/web1/web.yaml:1"; src != want {
		t.Fatalf("source annotation %q, want %q", src, want)
	}
	if _, err := os.Stat(filepath.Join(e.state, "status", "process", "web.yaml")); err != nil {
		t.Fatalf("no sidecar status: %v", err)
	}
	if out := g.Git(g.Bare, "--git-dir", g.Bare, "log", "--oneline"); strings.Count(out, "\n") != 0 {
		t.Fatalf("the daemon changed the repository:\n%s", out)
	}
	if _, stderr, code := e.ctlQuiet("apply", "-f", writeTemp(t, "x.yaml", sleeper(e, "x", ""))); code == 0 || !strings.Contains(stderr, "does not accept") {
		t.Fatalf("apply with a git source: exit %d, %s", code, stderr)
	}

	g.Commit("web: new command", map[string]string{"hosts/web1/web.yaml": web("1001")})
	second := e.waitProcess("web", "restarted by the second commit", func(p process) bool {
		return p.Status.Phase == "Running" && p.Status.ObservedGeneration == 2 && p.Status.Pid != first.Status.Pid
	})

	// A bad commit keeps the last good version running and says where the
	// problem is; reverting it changes nothing that runs.
	bad := g.Commit("typo", map[string]string{"hosts/web1/web.yaml": strings.Replace(web("1001"), "command:", "comand:", 1)})
	e.waitProcess("web", "InvalidSpec from the bad commit", func(p process) bool {
		_, reason, msg := p.ready()
		return reason == "InvalidSpec" && strings.Contains(msg, "hosts/web1/web.yaml:") && p.Status.Pid == second.Status.Pid
	})
	if out := e.ctl("get", "sources"); !regexp.MustCompile(`(?m)^git .*false.*hosts/web1/web.yaml:\d+`).MatchString(out) {
		t.Fatalf("get sources does not name the bad file:\n%s", out)
	}
	g.Git(g.Work, "revert", "--no-edit", bad)
	g.Git(g.Work, "push", "--quiet", g.Bare, "HEAD:main")
	e.waitProcess("web", "valid again after the revert", func(p process) bool {
		_, reason, _ := p.ready()
		return reason != "InvalidSpec" && p.Status.Phase == "Running"
	})
	if p, _ := e.getProcess("web"); p.Status.Pid != second.Status.Pid {
		t.Fatalf("the bad commit and its revert restarted the program: pid %d, was %d", p.Status.Pid, second.Status.Pid)
	}

	if out := e.ctl("get", "sources"); !regexp.MustCompile(`(?m)^git +`+regexp.QuoteMeta(g.Bare)+` +main .* true `).MatchString(out) || !strings.Contains(out, e.dir) {
		t.Fatalf("get sources:\n%s", out)
	}
	// The local folder beside the repository (the harness passes --dir).
	writeFile(t, filepath.Join(e.dir, "local.yaml"), sleeper(e, "local", ""))
	e.waitProcess("local", "Running from the folder beside git", func(p process) bool { return p.Status.Phase == "Running" })

	// The remote goes away: nothing stops, also across a restart.
	if err := os.Rename(g.Bare, g.Bare+".gone"); err != nil {
		t.Fatal(err)
	}
	e.eventually("the source not Ready while the remote is gone", func() bool {
		out := e.ctl("get", "sources")
		return strings.Contains(out, "false") && strings.Contains(out, "the applied commit keeps running")
	})
	e.stop(syscall.SIGTERM)
	e.start()
	again := e.waitProcess("web", "adopted after a restart with the remote gone", func(p process) bool { return p.Status.Phase == "Running" })
	if again.Status.Pid != second.Status.Pid || again.Metadata.Generation != 2 {
		t.Fatalf("after the restart: pid %d generation %d, want pid %d generation 2", again.Status.Pid, again.Metadata.Generation, second.Status.Pid)
	}
	if _, ok := e.getProcess("shared"); !ok {
		t.Fatal("a resource vanished while the remote was gone")
	}

	// Back, with a commit that removes a file: pruned.
	if err := os.Rename(g.Bare+".gone", g.Bare); err != nil {
		t.Fatal(err)
	}
	g.Commit("drop shared", map[string]string{"common/shared.yaml": ""})
	e.eventually("shared pruned", func() bool { _, ok := e.getProcess("shared"); return !ok })
	if p, ok := e.getProcess("web"); !ok || p.Status.Pid != second.Status.Pid {
		t.Fatalf("web changed when another file was removed: %+v", p.Status)
	}
}

// A push webhook signed as GitHub and Gitea sign it makes the host fetch at
// once (the poll interval is an hour); an unsigned or wrongly signed one is
// refused and changes nothing.
func TestGitWebhook(t *testing.T) {
	g := gittest.New(t)
	secretFile := filepath.Join(t.TempDir(), "hook-secret")
	if err := os.WriteFile(secretFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	e := newEnv(t, "--git", g.Bare, "--git-interval", "1h", "--git-webhook-secret-file", secretFile, "--listen", fmt.Sprintf("127.0.0.1:%d", port))
	web := func(arg string) string {
		return strings.Replace(sleeper(e, "web", ""), "exec sleep 1000", "exec sleep "+arg, 1)
	}
	g.Commit("web", map[string]string{"web.yaml": web("1000")})
	e.start()
	e.waitProcess("web", "Running", func(p process) bool { return p.Status.Phase == "Running" })
	g.Commit("web: new command", map[string]string{"web.yaml": web("1001")})

	body := []byte(`{"ref":"refs/heads/main"}`)
	post := func(sig string) int {
		req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://reconciled.example.com:%d/hooks/git", port), bytes.NewReader(body))
		req.URL.Host = fmt.Sprintf("127.0.0.1:%d", port)
		req.Host = "ci.example.com" // a git host calls the daemon by its public name
		if sig != "" {
			req.Header.Set("X-Hub-Signature-256", sig)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	mac := hmac.New(sha256.New, []byte("s3cret"))
	mac.Write(body)
	good := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	if code := post(""); code != http.StatusUnauthorized {
		t.Fatalf("unsigned hook: %d", code)
	}
	if code := post("sha256=" + strings.Repeat("00", 32)); code != http.StatusUnauthorized {
		t.Fatalf("wrongly signed hook: %d", code)
	}
	if code := post(good); code != http.StatusAccepted {
		t.Fatalf("signed hook: %d", code)
	}
	e.waitProcess("web", "the pushed commit applied", func(p process) bool {
		return p.Status.Phase == "Running" && p.Status.ObservedGeneration == 2
	})
}

// One repository for several hosts: a host runs what its Host resource's
// labels select (reconciled.dev/hosts), and a commit that moves it from one
// role to another stops the old role's programs and starts the new one's.
func TestGitHostRoles(t *testing.T) {
	g := gittest.New(t)
	e := newEnv(t, "--git", g.Bare, "--host", "web1", "--git-interval", "100ms")
	host := func(name, role string) string {
		return fmt.Sprintf("apiVersion: reconciled.dev/v1alpha1\nkind: Host\nmetadata:\n  name: %s\n  labels: {role: %s, site: lab}\nspec: {address: \"%s:9470\"}\n", name, role, name)
	}
	forRole := func(name, selector string) string {
		return strings.Replace(sleeper(e, name, ""), "metadata:\n  name: "+name+"\n", "metadata:\n  name: "+name+"\n  annotations: {reconciled.dev/hosts: \""+selector+"\"}\n", 1)
	}
	g.Commit("fleet", map[string]string{
		"hosts.yaml":        host("web1", "web") + "---\n" + host("db1", "db"),
		"common/nginx.yaml": forRole("nginx", "role=web"),
		"common/pg.yaml":    forRole("pg", "role=db,site=lab"),
		"common/agent.yaml": sleeper(e, "agent", ""),
		"common/mine.yaml":  forRole("mine", "reconciled.dev/hostname=web1"),
		"common/other.yaml": forRole("other", "reconciled.dev/hostname=db1"),
	})
	e.start()
	for _, name := range []string{"nginx", "agent", "mine"} {
		e.waitProcess(name, "Running on web1", func(p process) bool { return p.Status.Phase == "Running" })
	}
	for _, name := range []string{"pg", "other"} {
		if _, ok := e.getProcess(name); ok {
			t.Fatalf("%s runs on web1", name)
		}
	}
	if out := e.ctl("get", "hosts"); !strings.Contains(out, "web1:9470") || !strings.Contains(out, "db1:9470") {
		t.Fatalf("get hosts:\n%s", out)
	}
	agent, _ := e.getProcess("agent")

	g.Commit("web1 becomes a database host", map[string]string{"hosts.yaml": host("web1", "db") + "---\n" + host("db1", "db")})
	e.waitProcess("pg", "Running after the role change", func(p process) bool { return p.Status.Phase == "Running" })
	e.eventually("nginx stopped after the role change", func() bool { _, ok := e.getProcess("nginx"); return !ok })
	if p, _ := e.getProcess("agent"); p.Status.Pid != agent.Status.Pid {
		t.Fatalf("a resource for every host was restarted by the role change: pid %d, was %d", p.Status.Pid, agent.Status.Pid)
	}
}

// The example fleet repository works as its README says: web1 reads
// hosts.yaml, common, roles and its own folder, and runs the common
// program, the web role and its canary, not the db role.
func TestFleetExample(t *testing.T) {
	g := gittest.New(t)
	files := map[string]string{}
	root := "../../examples/fleet"
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yaml") {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(root, p)
		// No traffic leaves loopback: the Alertmanagers are local ports
		// nobody listens on.
		files[rel] = regexp.MustCompile(`am[12]\.example\.org`).ReplaceAllString(string(b), "127.0.0.1")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	g.Commit("the example fleet", files)
	e := newEnv(t, "--git", g.Bare, "--host", "web1", "--git-path", "hosts.yaml", "--git-path", "common", "--git-path", "roles", "--git-path", "hosts/${HOST}", "--stop-on-exit")
	e.start()
	// The example's programs do not name the test's folder: the daemon
	// stops them (before the harness's SIGKILL).
	defer e.stop(syscall.SIGTERM)
	for _, name := range []string{"heartbeat", "web", "web-canary"} {
		e.waitProcess(name, "Running on web1", func(p process) bool { return p.Status.Phase == "Running" })
	}
	if _, ok := e.getProcess("db"); ok {
		t.Fatal("web1 runs the db role")
	}
	if out := e.ctl("get", "hosts"); strings.Count(out, "example.org:9470") != 3 {
		t.Fatalf("get hosts:\n%s", out)
	}
}

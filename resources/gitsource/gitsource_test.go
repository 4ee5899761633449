// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package gitsource

import (
	"context"
	"errors"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/reconciled/reconciled/test/fixtures"
	"github.com/reconciled/reconciled/test/fixtures/gittest"
	"github.com/reconciled/reconciled/test/fixtures/waitfor"
)

func proc(name string) string {
	return "apiVersion: reconciled.dev/v1alpha1\nkind: Process\nmetadata: {name: " + name + "}\nspec: {command: [/bin/true]}\n"
}

func TestGitSource(t *testing.T) {
	r := gittest.New(t)
	first := r.Commit("change", map[string]string{
		"common/a.yaml":     proc("a"),
		"hosts/web1/b.yaml": proc("b"),
		"hosts/web2/c.yaml": proc("c"),
		"README.md":         "not a resource",
	})
	dir := filepath.Join(t.TempDir(), "repo")
	s, err := New(Options{URL: r.Bare, Paths: []string{"common", "hosts/web1"}, Dir: dir, Log: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	if files, _, _ := s.List(); len(files) != 0 {
		t.Fatalf("files before the first fetch: %q", files)
	}
	ctx := context.Background()
	changed, err := s.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"common/a.yaml", "hosts/web1/b.yaml"}; !slices.Equal(changed, want) {
		t.Fatalf("first sync reported %q, want %q", changed, want)
	}
	if commit, _, _ := s.Applied(); commit != first {
		t.Fatalf("applied %s, want %s", commit, first)
	}
	data, ok, err := s.Read("hosts/web1/b.yaml")
	if err != nil || !ok || string(data) != proc("b") {
		t.Fatalf("read: %q %v %v", data, ok, err)
	}
	if _, ok, _ := s.Read("hosts/web2/c.yaml"); ok {
		t.Fatal("read a file of another host")
	}

	// Nothing new: the cheap check, no change.
	if changed, err := s.Sync(ctx); err != nil || len(changed) != 0 {
		t.Fatalf("idle sync: %q %v", changed, err)
	}

	// A commit that changes one file and deletes another.
	second := r.Commit("change", map[string]string{"common/a.yaml": proc("a2"), "hosts/web1/b.yaml": "", "hosts/web2/c.yaml": proc("c2")})
	changed, err = s.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"common/a.yaml", "hosts/web1/b.yaml"}; !slices.Equal(changed, want) {
		t.Fatalf("second sync reported %q, want %q", changed, want)
	}
	if _, ok, _ := s.Read("hosts/web1/b.yaml"); ok {
		t.Fatal("a deleted file is still read")
	}
	if files, _, _ := s.List(); !slices.Equal(files, []string{"common/a.yaml"}) {
		t.Fatalf("files %q", files)
	}

	// The remote goes away: a fetch fails and nothing changes.
	if err := os.Rename(r.Bare, r.Bare+".gone"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Sync(ctx); err == nil {
		t.Fatal("a fetch from a missing remote succeeded")
	}
	if commit, _, ferr := s.Applied(); commit != second || ferr == nil {
		t.Fatalf("after a failed fetch: applied %s (want %s), error %v", commit, second, ferr)
	}
	// A restarted daemon starts from the commit it applied, offline.
	again, err := New(Options{URL: r.Bare, Paths: []string{"common", "hosts/web1"}, Dir: dir, Log: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	if commit, _, _ := again.Applied(); commit != second {
		t.Fatalf("restarted with %s, want %s", commit, second)
	}
	if data, ok, _ := again.Read("common/a.yaml"); !ok || string(data) != proc("a2") {
		t.Fatalf("restarted offline read %q %v", data, ok)
	}
	if err := os.Rename(r.Bare+".gone", r.Bare); err != nil {
		t.Fatal(err)
	}

	// History rewritten (force-push of an unrelated commit): applied as
	// any other new head.
	r.Git(r.Work, "checkout", "--quiet", "--orphan", "rewritten")
	r.Git(r.Work, "rm", "-r", "--quiet", "--cached", ".")
	third := r.Commit("change", map[string]string{"common/z.yaml": proc("z")})
	changed, err = again.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if commit, _, _ := again.Applied(); commit != third || !slices.Contains(changed, "common/z.yaml") {
		t.Fatalf("after a force-push: applied %s (want %s), changed %q", commit, third, changed)
	}
}

// With allowed signers, only a head signed by one of them is applied; an
// unsigned head or one signed by another key is refused and the applied
// commit stays.
func TestGitSourceVerify(t *testing.T) {
	r := gittest.New(t)
	keys := t.TempDir()
	keygen := func(name string) string {
		key := filepath.Join(keys, name)
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", key).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v\n%s", err, out)
		}
		return key
	}
	ops, intruder := keygen("ops"), keygen("intruder")
	pub, err := os.ReadFile(ops + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	signers := filepath.Join(keys, "allowed_signers")
	if err := os.WriteFile(signers, []byte("ops@example.com "+string(pub)), 0o644); err != nil {
		t.Fatal(err)
	}
	signWith := func(key string) {
		r.Git(r.Work, "config", "gpg.format", "ssh")
		r.Git(r.Work, "config", "user.signingkey", key)
		r.Git(r.Work, "config", "commit.gpgsign", "true")
	}
	signWith(ops)
	good := r.Commit("signed", map[string]string{"a.yaml": proc("a")})
	s, err := New(Options{URL: r.Bare, Dir: filepath.Join(t.TempDir(), "repo"), AllowedSigners: signers, Log: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.Sync(ctx); err != nil {
		t.Fatalf("a commit signed by an allowed signer: %v", err)
	}
	for name, sign := range map[string]func(){
		"unsigned":       func() { r.Git(r.Work, "config", "commit.gpgsign", "false") },
		"another signer": func() { signWith(intruder) },
	} {
		sign()
		bad := r.Commit(name, map[string]string{"a.yaml": proc("evil-" + strings.ReplaceAll(name, " ", "-"))})
		for range 2 { // the second look does not fetch again
			if _, err := s.Sync(ctx); !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), bad) {
				t.Fatalf("%s head: %v", name, err)
			}
		}
		if commit, _, _ := s.Applied(); commit != good {
			t.Fatalf("%s head: applied %s, want the signed %s", name, commit, good)
		}
		if data, _, _ := s.Read("a.yaml"); string(data) != proc("a") {
			t.Fatalf("%s head: read %q", name, data)
		}
	}
	signWith(ops)
	again := r.Commit("signed again", map[string]string{"a.yaml": proc("a2")})
	if _, err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if commit, _, _ := s.Applied(); commit != again {
		t.Fatalf("applied %s, want %s", commit, again)
	}
}

// Over smart HTTP (git http-backend) behind basic authentication: without
// the token the fetch fails and changes nothing; with --git-auth-file's
// token it is applied.
func TestGitSourceHTTPToken(t *testing.T) {
	r := gittest.New(t)
	backend := "/usr/lib/git-core/git-http-backend"
	if _, err := os.Stat(backend); err != nil {
		fixtures.SkipOrFail(t, "git http-backend is not installed")
	}
	first := r.Commit("a", map[string]string{"a.yaml": proc("a")})
	const token = "t0ken-for-fleet"
	cgiHandler := &cgi.Handler{Path: backend, Env: []string{"GIT_PROJECT_ROOT=" + filepath.Dir(r.Bare), "GIT_HTTP_EXPORT_ALL=1"}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if user, pass, ok := req.BasicAuth(); !ok || user != "x-access-token" || pass != token {
			w.Header().Set("WWW-Authenticate", `Basic realm="fleet"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		cgiHandler.ServeHTTP(w, req)
	}))
	defer srv.Close()
	url := srv.URL + "/" + filepath.Base(r.Bare)
	ctx := context.Background()

	anon, err := New(Options{URL: url, Dir: filepath.Join(t.TempDir(), "repo"), Log: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := anon.Sync(ctx); err == nil {
		t.Fatal("fetched without the token")
	}
	if commit, _, _ := anon.Applied(); commit != "" {
		t.Fatalf("applied %s without the token", commit)
	}

	authFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(authFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{URL: url, Dir: filepath.Join(t.TempDir(), "repo"), AuthFile: authFile, Log: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if commit, _, _ := s.Applied(); commit != first {
		t.Fatalf("applied %s, want %s", commit, first)
	}
	for _, bad := range []string{"", "two\nlines"} {
		f := filepath.Join(t.TempDir(), "bad")
		os.WriteFile(f, []byte(bad), 0o600)
		if _, err := New(Options{URL: url, Dir: filepath.Join(t.TempDir(), "repo"), AuthFile: f, Log: logr.Discard()}); err == nil {
			t.Errorf("auth file %q accepted", bad)
		}
	}
}

// A fetch that fails (the server busy or down when a webhook came) is
// tried again within seconds, not at the next poll an interval later.
func TestGitSourceRetriesFailedFetch(t *testing.T) {
	r := gittest.New(t)
	r.Commit("one", map[string]string{"common/a.yaml": proc("a")})
	s, err := New(Options{URL: r.Bare, Dir: filepath.Join(t.TempDir(), "repo"), Interval: time.Hour, Log: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changed := make(chan string, 16)
	go s.Watch(ctx, func(p string) { changed <- p }, func() {})
	waitfor.Within(t, 30*time.Second, "the first commit", func() bool { c, _, _ := s.Applied(); return c != "" })
	if err := os.Rename(r.Bare, r.Bare+".away"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r.Work, "common", "b.yaml"), []byte(proc("b")), 0o644); err != nil {
		t.Fatal(err)
	}
	r.Git(r.Work, "add", "-A")
	r.Git(r.Work, "commit", "--quiet", "-m", "two")
	s.Trigger() // the webhook of a push the server cannot serve yet
	waitfor.Within(t, 30*time.Second, "the failed fetch", func() bool { _, _, err := s.Applied(); return err != nil })
	if err := os.Rename(r.Bare+".away", r.Bare); err != nil {
		t.Fatal(err)
	}
	r.Git(r.Work, "push", "--quiet", r.Bare, "HEAD:main")
	// The interval is an hour: only the retry can fetch it.
	waitfor.Within(t, 30*time.Second, "the commit fetched by the retry", func() bool {
		c, _, err := s.Applied()
		return err == nil && c == r.Git(r.Work, "rev-parse", "HEAD")
	})
}

// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package gitsource is a resources.Source over one branch of a git
// repository: the fleet's desired state, pulled by every host.
//
// It drives the git command line rather than a Go implementation: every
// host has git, and git brings what operators already use and trust —
// shallow fetches of one branch, ssh keys and agents, credential helpers,
// proxies, and commit signature checks (`git verify-commit` with ssh or
// gpg) — with the behaviour they know from using it by hand. The cost is a
// process per fetch (one `ls-remote` per idle poll) and one long-lived
// `git cat-file --batch` that reads every file of a commit.
//
// The repository is kept under Options.Dir (bare, fetched with depth 1).
// The commit in use is the ref refs/reconciled/applied: it survives a
// daemon restart, so a host whose remote is unreachable starts from what it
// last applied. A fetch that fails changes nothing.
package gitsource

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"

	"github.com/reconciled/reconciled/internal/atomicfile"
	"github.com/reconciled/reconciled/internal/backoff"
	"github.com/reconciled/reconciled/resources"
)

// appliedRef is the ref of the commit in use.
const appliedRef = "refs/reconciled/applied"

// ErrUntrusted is the fetch error of a head commit that is not signed by
// an allowed signer (Options.AllowedSigners).
var ErrUntrusted = errors.New("not signed by an allowed signer; not applied")

// Options configures a Source.
type Options struct {
	// Name names the source in its status (default "git").
	Name string
	// URL is the remote (https://, ssh://, git://, file://, or a path).
	URL string
	// Branch is the branch followed (default: the remote's HEAD, looked
	// up at each fetch).
	Branch string
	// Paths are the folders of the repository this host reads (default:
	// all of it).
	Paths []string
	// Dir is where the repository is kept (created when missing).
	Dir string
	// Interval is the poll period (default 30 s), jittered by ±10 %.
	Interval time.Duration
	// Git is the git program (default "git" from PATH).
	Git string
	// AuthFile, when set, holds how to reach the remote: an ssh private
	// key (used with ssh:// and scp-style URLs), or a token sent to an
	// https remote as the password of HTTP basic authentication (user
	// x-access-token, as GitHub documents it; Gitea and GitLab accept it
	// too). The token goes to git through its environment, never on a
	// command line other users can read.
	AuthFile string
	// AllowedSigners, when set, is an ssh allowed-signers file (as for
	// `ssh-keygen -Y verify`): a head commit is applied only when it is
	// signed by one of them (git's ssh commit signing); otherwise it is
	// refused and the applied commit keeps running.
	AllowedSigners string
	// Log receives fetch failures and new commits.
	Log logr.Logger
}

// Source is one branch of one repository. Create it with New.
type Source struct {
	o   Options
	env []string

	mu      sync.Mutex
	applied string // the commit in use, "" before the first fetch
	refused string // a head refused as untrusted: not fetched again
	branch  string // the branch last looked at
	batch   *catFile
	lastErr error
	fetched time.Time

	trigger chan struct{}
	// refs is the cheap poll of an http(s) remote, nil for others.
	refs *refsCheck
	// pushed is set by Trigger: the next sync asks the remote itself.
	pushed atomic.Bool
}

var _ resources.Source = (*Source)(nil)

// New opens (or creates) the repository in o.Dir without touching the
// network: the commit applied before a restart is in use at once.
func New(o Options) (*Source, error) {
	if o.URL == "" {
		return nil, errors.New("git source: no URL")
	}
	if o.Interval <= 0 {
		o.Interval = 30 * time.Second
	}
	if o.Name == "" {
		o.Name = "git"
	}
	if o.Git == "" {
		o.Git = "git"
	}
	for i, p := range o.Paths {
		o.Paths[i] = strings.Trim(path.Clean("/"+p), "/")
	}
	s := &Source{o: o, trigger: make(chan struct{}, 1),
		env: append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_DIR="+o.Dir, "LC_ALL=C")}
	authHeader := ""
	if o.AuthFile != "" {
		auth, header, err := authEnv(o.AuthFile)
		if err != nil {
			return nil, err
		}
		s.env, authHeader = append(s.env, auth...), header
	}
	s.refs = newRefsCheck(o.URL, authHeader)
	if _, err := os.Stat(path.Join(o.Dir, "HEAD")); err != nil {
		if err := os.MkdirAll(o.Dir, 0o750); err != nil {
			return nil, fmt.Errorf("git source: %w", err)
		}
		// Not through s.git: GIT_DIR would name the repository to create.
		cmd := exec.Command(o.Git, "init", "--bare", "--quiet", o.Dir)
		cmd.Env = append(os.Environ(), "LC_ALL=C")
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("git init: %v: %s", err, bytes.TrimSpace(out))
		}
	}
	if _, err := s.git(context.Background(), "config", "remote.origin.url", o.URL); err != nil {
		return nil, err
	}
	if out, err := s.git(context.Background(), "rev-parse", "--verify", "--quiet", appliedRef+"^{commit}"); err == nil {
		s.applied = strings.TrimSpace(out)
	}
	return s, nil
}

// authEnv is the environment that gives git the credential in file, and
// for a token the Authorization header it sends over https.
func authEnv(file string) (env []string, header string, err error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, "", fmt.Errorf("git auth file: %w", err)
	}
	if bytes.Contains(b, []byte("PRIVATE KEY-----")) {
		return []string{"GIT_SSH_COMMAND=ssh -i " + shellQuote(file) + " -o IdentitiesOnly=yes -o BatchMode=yes"}, "", nil
	}
	token := strings.TrimSpace(string(b))
	if token == "" || strings.ContainsAny(token, "\r\n") {
		return nil, "", fmt.Errorf("git auth file %s: want an ssh private key or a token on one line", file)
	}
	header = "Basic " + base64.StdEncoding.EncodeToString([]byte("x-access-token:"+token))
	return []string{"GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=http.extraHeader", "GIT_CONFIG_VALUE_0=Authorization: " + header}, header, nil
}

// shellQuote quotes s for the shell that runs GIT_SSH_COMMAND.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// git runs git with the repository's environment and returns its output.
func (s *Source) git(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, s.o.Git, args...)
	cmd.Env = s.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(errb.String())
		if msg == "" {
			msg = err.Error()
		}
		return out.String(), fmt.Errorf("git %s: %s", args[0], msg)
	}
	return out.String(), nil
}

// Name is the URL and the branch, if one was named.
func (s *Source) Name() string {
	if s.o.Branch == "" {
		return s.o.URL
	}
	return s.o.URL + "#" + s.o.Branch
}

// remoteHead asks the remote for the head of the branch followed, in one
// round trip: Options.Branch, or the branch the remote's HEAD names (with
// --symref, HEAD's commit is that branch's).
func (s *Source) remoteHead(ctx context.Context) (branch, head string, err error) {
	if s.o.Branch != "" {
		out, err := s.git(ctx, "ls-remote", "origin", "refs/heads/"+s.o.Branch)
		if err != nil {
			return "", "", err
		}
		head, _, _ = strings.Cut(strings.TrimSpace(out), "\t")
		if head == "" {
			return "", "", fmt.Errorf("the remote has no branch %s", s.o.Branch)
		}
		return s.o.Branch, head, nil
	}
	out, err := s.git(ctx, "ls-remote", "--symref", "origin", "HEAD")
	if err != nil {
		return "", "", err
	}
	for _, line := range strings.Split(out, "\n") {
		if ref, ok := strings.CutPrefix(line, "ref: refs/heads/"); ok {
			branch, _, _ = strings.Cut(ref, "\t")
		} else if sha, name, ok := strings.Cut(line, "\t"); ok && name == "HEAD" {
			head = sha
		}
	}
	if branch == "" || head == "" {
		return "", "", errors.New("the remote's HEAD names no branch (use --git-branch)")
	}
	return branch, head, nil
}

var _ resources.Revisioner = (*Source)(nil)

// Revision is the applied commit: resources read from it carry
// reconciled.dev/source: <commit>:<path>:<line>.
func (s *Source) Revision(string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applied
}

// Status reports the source's state.
func (s *Source) Status() resources.SourceStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := resources.SourceStatus{Name: s.o.Name, Type: "git", URL: s.o.URL, Branch: s.branch, Commit: s.applied, Ready: s.lastErr == nil && s.applied != ""}
	if !s.fetched.IsZero() {
		t := s.fetched
		st.Fetched = &t
	}
	switch {
	case s.lastErr != nil:
		st.Message = s.lastErr.Error() + "; the applied commit keeps running"
	case s.applied == "":
		st.Message = "no commit fetched yet"
	default:
		st.Message = "applied"
	}
	return st
}

// Applied returns the commit in use ("" before the first fetch), when it
// was last fetched, and the last fetch's error.
func (s *Source) Applied() (commit string, fetched time.Time, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applied, s.fetched, s.lastErr
}

// selected reports whether a repository path is in Paths and a resource
// file.
func (s *Source) selected(p string) bool {
	if resources.Ignored(p) {
		return false
	}
	if len(s.o.Paths) == 0 {
		return true
	}
	for _, prefix := range s.o.Paths {
		if prefix == "" || p == prefix || strings.HasPrefix(p, prefix+"/") {
			return true
		}
	}
	return false
}

// List returns the resource files of the applied commit below Paths;
// nothing before the first fetch.
func (s *Source) List() ([]string, []resources.Problem, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.applied == "" {
		return nil, nil, nil
	}
	files, err := s.diff("", s.applied)
	return files, nil, err
}

// Read returns a file of the applied commit; ok=false when the commit does
// not have it.
func (s *Source) Read(p string) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.applied == "" || !s.selected(p) {
		return nil, false, nil
	}
	var data []byte
	var ok bool
	err := s.withCatFile(func(c *catFile) (err error) {
		data, ok, err = c.read(s.applied + ":" + p)
		return err
	})
	if err != nil {
		return nil, true, fmt.Errorf("%s: %w", p, err)
	}
	if len(data) > resources.MaxFileSize {
		return nil, true, &resources.Error{File: p, Message: fmt.Sprintf("%d bytes; resource files may be at most %d MiB (split it)", len(data), resources.MaxFileSize>>20)}
	}
	return data, ok, nil
}

// withCatFile runs f with the running cat-file, started if needed and
// stopped when f fails (the next call starts a fresh one). s.mu is held.
func (s *Source) withCatFile(f func(*catFile) error) error {
	if s.batch == nil {
		b, err := startCatFile(s.o.Git, s.env)
		if err != nil {
			return err
		}
		s.batch = b
	}
	err := f(s.batch)
	if err != nil {
		s.batch.close()
		s.batch = nil
	}
	return err
}

// diff returns the selected files that differ between the commits from and
// to, sorted; with from "", every selected file of to. s.mu is held.
func (s *Source) diff(from, to string) ([]string, error) {
	var files []string
	err := s.withCatFile(func(c *catFile) (err error) {
		files, err = c.diffTrees("", from, to, s.enters, nil)
		return err
	})
	if err != nil {
		return nil, err
	}
	files = slices.DeleteFunc(files, func(p string) bool { return !s.selected(p) })
	slices.Sort(files)
	return files, nil
}

// enters reports whether a folder of the repository may hold selected
// files: it is below one of Paths or above one.
func (s *Source) enters(dir string) bool {
	if len(s.o.Paths) == 0 {
		return true
	}
	for _, p := range s.o.Paths {
		if p == "" || dir == p || strings.HasPrefix(dir, p+"/") || strings.HasPrefix(p, dir+"/") {
			return true
		}
	}
	return false
}

// Trigger asks for a fetch now (a webhook).
func (s *Source) Trigger() {
	s.pushed.Store(true)
	select {
	case s.trigger <- struct{}{}:
	default:
	}
}

// Watch fetches every Interval (jittered) and on Trigger, and reports the
// files a new commit changed, until ctx is done.
func (s *Source) Watch(ctx context.Context, changed func(string), relist func()) error {
	defer func() {
		s.mu.Lock()
		if s.batch != nil {
			s.batch.close()
			s.batch = nil
		}
		s.mu.Unlock()
	}()
	relist()
	// A failed fetch is tried again sooner than the next poll (a push
	// announced by a webhook must not wait an interval because the server
	// was busy): 1 s, doubling, jittered, at most the interval.
	retry := backoff.Policy{Initial: time.Second, Max: s.o.Interval, Jitter: 0.2}
	failures := 0
	for {
		wait := s.o.Interval + time.Duration((rand.Float64()*0.2-0.1)*float64(s.o.Interval))
		if paths, err := s.Sync(ctx); err == nil {
			failures = 0
			for _, p := range paths {
				changed(p)
			}
		} else {
			failures++
			wait = min(wait, retry.Delay(failures))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.trigger:
		case <-time.After(wait):
		}
	}
}

// Sync looks at the remote branch and, when it moved, fetches it and makes
// its head the applied commit. It returns the selected files that differ
// between the two commits. An error leaves everything as it was.
func (s *Source) Sync(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	forced := s.pushed.Swap(false)
	paths, err := s.sync(ctx, forced)
	if err != nil && forced {
		s.pushed.Store(true) // the retry asks the remote too
	}
	s.mu.Lock()
	s.lastErr = err
	if err == nil {
		s.fetched = time.Now()
	}
	s.mu.Unlock()
	if err != nil {
		s.o.Log.Info("git fetch failed; keeping the applied commit", "url", s.o.URL, "branch", s.o.Branch, "error", err.Error())
	}
	return paths, err
}

func (s *Source) sync(ctx context.Context, forced bool) ([]string, error) {
	s.mu.Lock()
	branch, old, refused := s.branch, s.applied, s.refused
	s.mu.Unlock()
	if s.o.Branch != "" {
		branch = s.o.Branch
	}
	if s.refs != nil && !forced && s.refs.unchanged(ctx, branch, old) {
		return nil, nil // the cheap check: a 304 from the server
	}
	// A push announced by a webhook is fetched at once; a poll asks the
	// remote first (one round trip, no pack), and only fetches when the
	// head moved. The remote's HEAD is asked for until a branch is known.
	if !forced || branch == "" {
		b, head, err := s.remoteHead(ctx)
		if err != nil {
			return nil, err
		}
		if s.refs != nil {
			if why := s.refs.confirm(ctx, b, head); why != "" {
				s.o.Log.Info("polling with git ls-remote: the cheap check of info/refs is off", "url", s.o.URL, "reason", why)
			}
		}
		branch = b
		s.mu.Lock()
		s.branch = branch
		s.mu.Unlock()
		if head == old {
			return nil, nil // the cheap check: nothing new
		}
		if head == refused {
			return nil, fmt.Errorf("%w: head %s of %s", ErrUntrusted, head, branch)
		}
	}
	tracking := "refs/remotes/origin/" + branch
	if _, err := s.git(ctx, "-c", "maintenance.auto=false", "-c", "gc.auto=0", "fetch", "--quiet", "--no-tags", "--no-auto-gc", "--no-write-fetch-head", "--no-recurse-submodules", "--depth", "1", "origin", "+refs/heads/"+branch+":"+tracking); err != nil {
		return nil, err
	}
	commit, err := s.ref(ctx, tracking)
	if err != nil {
		return nil, err
	}
	if commit == old {
		return nil, nil
	}
	if s.o.AllowedSigners != "" {
		if commit == refused {
			return nil, fmt.Errorf("%w: head %s of %s", ErrUntrusted, commit, branch)
		}
		if _, err := s.git(ctx, "-c", "gpg.ssh.allowedSignersFile="+s.o.AllowedSigners, "verify-commit", commit); err != nil {
			s.mu.Lock()
			s.refused = commit
			s.mu.Unlock()
			return nil, fmt.Errorf("%w: head %s of %s: %v", ErrUntrusted, commit, branch, err)
		}
	}
	s.mu.Lock()
	changed, err := s.diff(old, commit)
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	// The applied commit, kept for a restart while the remote is away: a
	// loose ref, written as git writes one.
	if err := atomicfile.Write(filepath.Join(s.o.Dir, filepath.FromSlash(appliedRef)), []byte(commit+"\n"), 0o644); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.applied = commit
	s.mu.Unlock()
	s.o.Log.Info("applying commit", "url", s.o.URL, "branch", branch, "commit", commit, "files", len(changed))
	return changed, nil
}

// ref returns the commit a ref names: its loose ref file, as fetch writes
// it, or git rev-parse when that is not there.
func (s *Source) ref(ctx context.Context, name string) (string, error) {
	if b, err := os.ReadFile(filepath.Join(s.o.Dir, filepath.FromSlash(name))); err == nil {
		if id := strings.TrimSpace(string(b)); (len(id) == 40 || len(id) == 64) && strings.Trim(id, "0123456789abcdef") == "" {
			return id, nil
		}
	}
	out, err := s.git(ctx, "rev-parse", "--verify", name+"^{commit}")
	return strings.TrimSpace(out), err
}

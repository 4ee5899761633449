// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"

	"github.com/reconciled/reconciled/fleet"
	"github.com/reconciled/reconciled/resources/gitsource"
)

// gitRepo is a bare repository served by a real git daemon on loopback,
// and a work tree to commit from.
type gitRepo struct {
	url, bare, work string
	daemon          *exec.Cmd
}

// gitRun runs git in dir with an author and returns its output.
func gitRun(dir string, args ...string) string {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=b", "GIT_AUTHOR_EMAIL=b@example.com", "GIT_COMMITTER_NAME=b", "GIT_COMMITTER_EMAIL=b@example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		fatalf("git %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// commit writes files into the work tree, commits and pushes them.
func (g *gitRepo) commit(files map[string]string) {
	for name, content := range files {
		p := filepath.Join(g.work, name)
		check(os.MkdirAll(filepath.Dir(p), 0o755))
		check(os.WriteFile(p, []byte(content), 0o644))
	}
	gitRun(g.work, "add", "-A")
	gitRun(g.work, "commit", "--quiet", "-m", "change")
	gitRun(g.work, "push", "--quiet", g.bare, "HEAD:main")
}

// gitRemote makes a bare repository with one commit and serves it with a
// real git daemon on loopback; it returns the git:// URL and the daemon.
func (b *bench) gitRemote() (url string, daemon *exec.Cmd) {
	g := b.gitRepo(map[string]string{"common/p.yaml": "apiVersion: reconciled.dev/v1alpha1\nkind: Process\nmetadata: {name: p}\nspec: {command: [/bin/true]}\n"})
	return g.url, g.daemon
}

// gitRepo makes and serves a repository whose first commit holds files.
func (b *bench) gitRepo(files map[string]string) *gitRepo {
	base, err := os.MkdirTemp(b.work, "git-")
	check(err)
	work := filepath.Join(base, "work")
	g := &gitRepo{bare: filepath.Join(base, "fleet.git"), work: work}
	gitRun("", "init", "--quiet", "--bare", "--initial-branch=main", g.bare)
	gitRun("", "init", "--quiet", "--initial-branch=main", work)
	g.commit(files)
	execPath := strings.TrimSpace(gitRun("", "--exec-path"))
	port := freePort()
	// git-daemon itself (not through the git wrapper), so that its CPU and
	// that of the upload-pack children it reaps are in its /proc stat; as
	// many connections at once as a fleet makes (git daemon refuses more
	// than 32 by default; a forge serves more).
	daemon := exec.Command(filepath.Join(execPath, "git-daemon"), "--reuseaddr", "--export-all", "--max-connections=0", "--listen=127.0.0.1", "--port="+strconv.Itoa(port), "--base-path="+base, base)
	check(daemon.Start())
	g.url, g.daemon = fmt.Sprintf("git://127.0.0.1:%d/fleet.git", port), daemon
	for deadline := time.Now().Add(10 * time.Second); exec.Command("git", "ls-remote", g.url).Run() != nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			fatalf("git daemon on port %d does not answer", port)
		}
	}
	return g
}

// childrenCPU is the CPU time of this process's waited-for children.
func childrenCPU() time.Duration {
	var ru syscall.Rusage
	check(syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// selfCPU is this process's own CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	check(syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU is a process's CPU time including its reaped children.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	check(err)
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	var ticks int64
	for _, i := range []int{11, 12, 13, 14} { // utime stime cutime cstime
		v, _ := strconv.ParseInt(fields[i], 10, 64)
		ticks += v
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ
}

// fleetPolling measures what polling costs: the CPU of one idle poll of
// the git source (it found nothing new) against a bare `git ls-remote`
// (the floor), and the git server's CPU while 1,000 simulated hosts poll
// it every 30 s (33 ls-remotes a second), extrapolated to 10,000.
func (b *bench) fleetPolling() []row {
	url, daemon := b.gitRemote()
	defer func() { daemon.Process.Kill(); daemon.Wait() }()

	n := scale(200)
	c0 := childrenCPU()
	for range n {
		check(exec.Command("git", "ls-remote", url, "refs/heads/main").Run())
	}
	floor := (childrenCPU() - c0) / time.Duration(n)

	src, err := gitsource.New(gitsource.Options{URL: url, Paths: []string{"common"}, Dir: filepath.Join(b.work, "poll-repo"), Log: logr.Discard()})
	check(err)
	_, err = src.Sync(context.Background())
	check(err)
	s0, c0 := selfCPU(), childrenCPU()
	for range n {
		paths, err := src.Sync(context.Background())
		check(err)
		if len(paths) != 0 {
			fatalf("an idle poll found changes: %v", paths)
		}
	}
	perPoll := (selfCPU() - s0 + childrenCPU() - c0) / time.Duration(n)
	logf("fleet polling: idle poll %s CPU (git ls-remote alone %s), %d polls", ms(perPoll), ms(floor), n)

	// 1,000 hosts every 30 s: a poll every 30 ms, each one ls-remote.
	hosts, every := 1000, 30*time.Second
	polls, wall, server := simulatePolls(daemon.Process.Pid, hosts, every, func(int) {
		exec.Command("git", "ls-remote", url, "refs/heads/main").Run()
	})
	logf("fleet polling: git daemon served %d ls-remotes in %s: %.1f%% of one core", polls, wall.Round(time.Millisecond), 100*server)
	return []row{
		{what: "fleet: CPU of one idle git poll (host side)", ours: ms(perPoll), peer: ms(floor) + " git ls-remote", ratio: fmt.Sprintf("%.1fx floor", float64(perPoll)/float64(max(floor, time.Microsecond)))},
		{what: fmt.Sprintf("fleet: git daemon CPU, %d hosts polling every %s", hosts, every), ours: fmt.Sprintf("%.1f%% of a core", 100*server), target: "<= 10% of a core"},
		{what: "fleet: the same extrapolated to 10,000 hosts", ours: fmt.Sprintf("%.0f%% of a core", 1000*server)},
	}
}

// fleetPage measures the /fleet page of a daemon whose hosts.yaml lists
// hosts fake hosts (one listener each in this process, answering the
// summary as a daemon would): the daemon's CPU per page and its RSS
// before and after, for 50 and 1,000 hosts.
func (b *bench) fleetPage() []row {
	var rows []row
	for _, hosts := range []int{50, scale(1000)} {
		summary, err := json.Marshal(fleet.Summary{Host: "fake", Counts: []fleet.KindCount{{Kind: "Process", Plural: "processes", Phases: map[string]int{"Running": 10}, Total: 10}},
			Unhealthy: []fleet.Resource{{Kind: "Process", Plural: "processes", Name: "web", Phase: "BackOff", Message: "exited 1"}}})
		check(err)
		var docs strings.Builder
		var servers []*http.Server
		for i := range hosts {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			check(err)
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.Write(summary)
			})}
			go srv.Serve(l)
			servers = append(servers, srv)
			fmt.Fprintf(&docs, "---\napiVersion: reconciled.dev/v1alpha1\nkind: Host\nmetadata: {name: h%04d, labels: {role: web}}\nspec: {address: %q}\n", i, l.Addr().String())
		}
		dir, state := b.newDirs("fleet")
		check(os.WriteFile(filepath.Join(dir, "hosts.yaml"), []byte(docs.String()), 0o600))
		port := freePort()
		d := b.startDaemon(dir, state, "--listen", fmt.Sprintf("127.0.0.1:%d", port))
		base := fmt.Sprintf("http://127.0.0.1:%d", port)
		d.waitReady()
		rss0 := d.rssMiB()
		pages := 10
		var took []time.Duration
		c0 := d.cpuSeconds()
		for range pages {
			t0 := time.Now()
			resp, err := http.Get(base + "/fleet")
			check(err)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if got := strings.Count(string(body), `data-host="h`); got < hosts {
				fatalf("the fleet page lists %d of %d hosts", got, hosts)
			}
			took = append(took, time.Since(t0))
			time.Sleep(5100 * time.Millisecond / time.Duration(max(1, pages/2))) // past the cache now and then
		}
		cpu := (d.cpuSeconds() - c0) / float64(pages)
		rss1 := d.rssMiB()
		d.stop()
		for _, s := range servers {
			s.Close()
		}
		logf("fleet page, %d hosts: %.1f ms CPU per page, page p50 %s, RSS %.1f -> %.1f MiB", hosts, 1000*cpu, ms(percentile(took, 0.5)), rss0, rss1)
		rows = append(rows,
			row{what: fmt.Sprintf("fleet: /fleet with %d hosts, daemon CPU per page", hosts), ours: fmt.Sprintf("%.1f ms", 1000*cpu)},
			row{what: fmt.Sprintf("fleet: /fleet with %d hosts, page time p50", hosts), ours: ms(percentile(took, 0.5))},
			row{what: fmt.Sprintf("fleet: /fleet with %d hosts, daemon RSS before -> after", hosts), ours: fmt.Sprintf("%.1f -> %.1f MiB", rss0, rss1)})
	}
	return rows
}

// appYAML is the Process of version v.
func appYAML(v int) string {
	return fmt.Sprintf("apiVersion: reconciled.dev/v1alpha1\nkind: Process\nmetadata: {name: app}\nspec:\n  command: [/bin/sleep, \"%d\"]\n", 100000+v)
}

// appFiles are the repository files of version v of one program, for
// reconciled (a Process) and for the ansible-pull peer (a playbook that
// starts the same program).
func appFiles(v int) map[string]string {
	return map[string]string{
		"hosts/h1/app.yaml": appYAML(v),
		"local.yml": fmt.Sprintf(`- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
  - name: stop the old version
    shell: pkill -x -f 'sleep 1[0-9]{5}' || true
  - name: start version %d
    shell: nohup /bin/sleep %d >/dev/null 2>&1 &
`, v, 100000+v),
	}
}

// cmdlineOf is a process's command line, space-separated.
func cmdlineOf(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}

// fleetConverge measures one host applying a commit: reconciled told by
// the webhook (push -> the program of the new version runs and its status
// is written), against ansible-pull (Debian's ansible-core) applying the
// same change from the same repository with a playbook that starts the
// program, run the way ansible-pull runs from cron. Flux's documented
// default (flux create source git --interval) is 1m0s, on paper.
func (b *bench) fleetConverge() []row {
	g := b.gitRepo(appFiles(1))
	defer func() { g.daemon.Process.Kill(); g.daemon.Wait() }()
	dir, state := b.newDirs("converge")
	secret := filepath.Join(filepath.Dir(state), "hook-secret")
	check(os.WriteFile(secret, []byte("s"), 0o600))
	port := freePort()
	d := b.startDaemon(dir, state, "--git", g.url, "--host", "h1", "--git-path", "hosts/${HOST}", "--git-interval", "1h",
		"--git-webhook-secret-file", secret, "--listen", fmt.Sprintf("127.0.0.1:%d", port))
	defer d.stop()
	running := func(v int) bool { _, ok := appConverged(state, v); return ok }
	wait := func(what string, cond func() bool) {
		for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				fatalf("%s: not within a minute", what)
			}
		}
	}
	wait("first commit applied", func() bool { return running(1) })
	body, sig := pushHook("s")
	n := scale(20)
	var ours []time.Duration
	c0 := d.cpuSeconds()
	for v := 2; v < 2+n; v++ {
		g.commit(appFiles(v))
		t0 := time.Now()
		req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/hooks/git", port), bytes.NewReader(body))
		req.Header.Set("X-Hub-Signature-256", sig)
		resp, err := http.DefaultClient.Do(req)
		check(err)
		resp.Body.Close()
		wait("webhook commit applied", func() bool { return running(v) })
		ours = append(ours, time.Since(t0))
	}
	cpu := (d.cpuSeconds() - c0) / float64(n)
	rows := []row{{what: "fleet: commit -> 1 host applied, webhook (p50)", ours: ms(percentile(ours, 0.5)), target: "p99 <= 2 s (50 hosts)"},
		{what: "fleet: daemon CPU per applied commit (with its git processes)", ours: fmt.Sprintf("%.1f ms", 1000*cpu)}}
	logf("fleet converge: webhook p50 %s p99 %s, %.1f ms CPU per commit", ms(percentile(ours, 0.5)), ms(percentile(ours, 0.99)), 1000*cpu)

	ansible, err := exec.LookPath("ansible-pull")
	if err != nil {
		logf("fleet converge: ansible-pull not installed (Debian ansible-core): no peer")
		return rows
	}
	checkout := filepath.Join(filepath.Dir(state), "ansible-checkout")
	var peer []time.Duration
	var peerCPU time.Duration
	m := max(2, scale(5))
	for v := 100; v < 100+m; v++ {
		g.commit(appFiles(v))
		t0, c0 := time.Now(), childrenCPU()
		out, err := exec.Command(ansible, "-U", g.url, "-C", "main", "-d", checkout, "-i", "localhost,", "local.yml").CombinedOutput()
		if err != nil {
			fatalf("ansible-pull: %v\n%s", err, out)
		}
		peer = append(peer, time.Since(t0))
		peerCPU += childrenCPU() - c0
		if exec.Command("pgrep", "-x", "-f", fmt.Sprintf("/bin/sleep %d", 100000+v)).Run() != nil {
			fatalf("ansible-pull did not start version %d:\n%s", v, out)
		}
	}
	exec.Command("pkill", "-x", "-f", "/bin/sleep 1[0-9]{5}").Run()
	p50, peer50 := percentile(ours, 0.5), percentile(peer, 0.5)
	logf("fleet converge: ansible-pull p50 %s, %.0f ms CPU per run", ms(peer50), float64(peerCPU)/float64(m)/1e6)
	rows[0].peer = ms(peer50) + " ansible-pull"
	rows[0].ratio = fmt.Sprintf("%.2fx peer", float64(p50)/float64(peer50))
	rows[1].peer = fmt.Sprintf("%.0f ms ansible-pull", float64(peerCPU)/float64(m)/1e6)
	return rows
}

// serveGitHTTP serves the repositories below root the way a web server in
// front of git does: the static info/refs file (kept by the post-update
// hook) directly, with Last-Modified, and everything else through `git
// http-backend`. It runs as a child process of the bench (-serve-git), so
// its CPU and that of the git processes it starts can be measured.
func serveGitHTTP(root, addr string) {
	gitPath, err := exec.LookPath("git")
	check(err)
	backend := &cgi.Handler{Path: gitPath, Args: []string{"http-backend"}, Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"}}
	check(http.ListenAndServe(addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/info/refs") && r.URL.RawQuery == "" {
			http.ServeFile(w, r, filepath.Join(root, filepath.Clean(r.URL.Path)))
			return
		}
		backend.ServeHTTP(w, r)
	})))
}

// fleetPollingHTTP is fleetPolling for a smart-HTTP remote with a static
// info/refs: the host's idle poll is a conditional GET answered 304 (a
// real ls-remote every 30th poll), and the server's cost for 1,000 hosts
// polling every 30 s.
func (b *bench) fleetPollingHTTP() []row {
	g := b.gitRepo(map[string]string{"common/p.yaml": "apiVersion: reconciled.dev/v1alpha1\nkind: Process\nmetadata: {name: p}\nspec: {command: [/bin/true]}\n"})
	defer func() { g.daemon.Process.Kill(); g.daemon.Wait() }()
	hook := filepath.Join(g.bare, "hooks", "post-update")
	check(os.WriteFile(hook, []byte("#!/bin/sh\nexec git update-server-info\n"), 0o755))
	gitRun(g.bare, "update-server-info")
	self, err := os.Executable()
	check(err)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort())
	srv := exec.Command(self, "-serve-git", filepath.Dir(g.bare), "-serve-addr", addr)
	check(srv.Start())
	defer func() { srv.Process.Kill(); srv.Wait() }()
	url := "http://" + addr + "/" + filepath.Base(g.bare)
	for deadline := time.Now().Add(10 * time.Second); exec.Command("git", "ls-remote", url).Run() != nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			fatalf("the git HTTP server does not answer")
		}
	}
	src, err := gitsource.New(gitsource.Options{URL: url, Paths: []string{"common"}, Dir: filepath.Join(b.work, "poll-http-repo"), Log: logr.Discard()})
	check(err)
	_, err = src.Sync(context.Background())
	check(err)
	n := scale(200)
	s0, c0 := selfCPU(), childrenCPU()
	for range n {
		paths, err := src.Sync(context.Background())
		check(err)
		if len(paths) != 0 {
			fatalf("an idle poll found changes: %v", paths)
		}
	}
	perPoll := (selfCPU() - s0 + childrenCPU() - c0) / time.Duration(n)

	// 1,000 hosts every 30 s, as the source polls: 29 conditional GETs
	// answered 304, then a real ls-remote and a GET.
	hosts, every := 1000, 30*time.Second
	lastMod := ""
	if resp, err := http.Get(url + "/info/refs"); err == nil {
		lastMod = resp.Header.Get("Last-Modified")
		resp.Body.Close()
	}
	polls, wall, server := simulatePolls(srv.Process.Pid, hosts, every, func(i int) {
		full := i%30 == 0
		if full {
			exec.Command("git", "ls-remote", url, "refs/heads/main").Run()
		}
		req, _ := http.NewRequest(http.MethodGet, url+"/info/refs", nil)
		if !full {
			req.Header.Set("If-Modified-Since", lastMod)
		}
		if resp, err := http.DefaultClient.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
	logf("fleet polling over HTTP: idle poll %s CPU; the server answered %d polls in %s with %.1f%% of one core", ms(perPoll), polls, wall.Round(time.Millisecond), 100*server)
	return []row{
		{what: "fleet: CPU of one idle poll over HTTP, static info/refs (host side)", ours: ms(perPoll)},
		{what: fmt.Sprintf("fleet: HTTP git server CPU, %d hosts polling every %s", hosts, every), ours: fmt.Sprintf("%.1f%% of a core", 100*server), target: "<= 10% of a core"},
		{what: "fleet: the same extrapolated to 10,000 hosts", ours: fmt.Sprintf("%.0f%% of a core", 1000*server)},
	}
}

// appConverged reports whether the daemon with state dir state runs version v of the program with its
// status written, and when the status was written (the sidecar's
// modification time).
func appConverged(state string, v int) (time.Time, bool) {
	// The status file alone, not the API: 50 daemons asked twice a second
	// would spend the CPU the measurement is about.
	sidecar := filepath.Join(state, "status", "process", "app.yaml")
	side, err := os.ReadFile(sidecar)
	fi, serr := os.Stat(sidecar)
	if err != nil || serr != nil {
		return time.Time{}, false
	}
	m := pidLine.FindSubmatch(side)
	if m == nil {
		return time.Time{}, false
	}
	pid, _ := strconv.Atoi(string(m[1]))
	if cmdlineOf(pid) != fmt.Sprintf("/bin/sleep %d", 100000+v) {
		return time.Time{}, false
	}
	return fi.ModTime(), true
}

// pidLine finds the pid in a Process status file.
var pidLine = regexp.MustCompile(`(?m)^  pid: (\d+)$`)

// pushHook is the body and X-Hub-Signature-256 of a push webhook signed
// with secret.
func pushHook(secret string) ([]byte, string) {
	body := []byte(`{"ref":"refs/heads/main"}`)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return body, "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// fleetConvergeMany measures commit -> every host converged (the program
// of the new version running, its status written) for hosts daemons on
// this machine reading one repository over git://: with a webhook sent to
// every host at once, then with polling every 3 s. The daemons, the git
// server and this bench share the machine's cores.
func (b *bench) fleetConvergeMany(hosts int) []row {
	files := map[string]string{}
	for i := range hosts {
		files[fmt.Sprintf("hosts/h%02d/app.yaml", i)] = appYAML(1)
	}
	g := b.gitRepo(files)
	defer func() { g.daemon.Process.Kill(); g.daemon.Wait() }()
	secret := filepath.Join(b.work, "fleet-hook-secret")
	check(os.WriteFile(secret, []byte("s"), 0o600))
	states := make([]string, hosts)
	for i := range states {
		_, states[i] = b.newDirs("fleet-host")
	}
	start := func(interval string) []*daemon {
		ds := make([]*daemon, hosts)
		for i := range ds {
			ds[i] = b.startDaemon("", states[i], "--git", g.url, "--host", fmt.Sprintf("h%02d", i), "--git-path", "hosts/${HOST}",
				"--git-interval", interval, "--git-webhook-secret-file", secret)
		}
		return ds
	}
	converge := func(ds []*daemon, v int, t0 time.Time) []time.Duration {
		lat := make([]time.Duration, len(ds))
		done, left := make([]bool, len(ds)), len(ds)
		for deadline := time.Now().Add(3 * time.Minute); left > 0; time.Sleep(500 * time.Millisecond) { // rounds over the fleet
			if time.Now().After(deadline) {
				fatalf("fleet: %d of %d hosts not converged to v%d within 3 minutes", left, len(ds), v)
			}
			for i := range ds {
				if done[i] {
					continue
				}
				if at, ok := appConverged(states[i], v); ok {
					done[i], lat[i] = true, at.Sub(t0)
					left--
				}
			}
		}
		return lat
	}
	stopAll := func(ds []*daemon) {
		for _, d := range ds {
			d.stop()
		}
	}
	ds := start("1h")
	converge(ds, 1, time.Now())
	for i := range hosts {
		files[fmt.Sprintf("hosts/h%02d/app.yaml", i)] = appYAML(2)
	}
	g.commit(files)
	t0 := time.Now()
	body, sig := pushHook("s")
	var wg sync.WaitGroup
	for _, d := range ds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPost, "http://d/hooks/git", bytes.NewReader(body))
			req.Header.Set("X-Hub-Signature-256", sig)
			if resp, err := d.http.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	hook := converge(ds, 2, t0)
	stopAll(ds)

	const interval = 3 * time.Second
	ds = start(interval.String())
	converge(ds, 2, time.Now())
	for i := range hosts {
		files[fmt.Sprintf("hosts/h%02d/app.yaml", i)] = appYAML(3)
	}
	g.commit(files)
	poll := converge(ds, 3, time.Now())
	stopAll(ds)

	for i := range hosts {
		files[fmt.Sprintf("hosts/h%02d/app.yaml", i)] = appYAML(4)
	}
	floor := b.gitFetchFloor(g, hosts, files)
	h50, h99 := percentile(hook, 0.5), percentile(hook, 0.99)
	p50, p99 := percentile(poll, 0.5), percentile(poll, 0.99)
	f50, f99 := percentile(floor, 0.5), percentile(floor, 0.99)
	logf("fleet converge, %d hosts: webhook p50 %s p99 %s; polling every %s p50 %s p99 %s; floor: %d bare git fetches at once p50 %s p99 %s",
		hosts, ms(h50), ms(h99), interval, ms(p50), ms(p99), hosts, ms(f50), ms(f99))
	peer := fmt.Sprintf("%s / %s git fetch x%d", ms(f50), ms(f99), hosts)
	return []row{
		{what: fmt.Sprintf("fleet: commit -> %d hosts converged, webhook (p50 / p99)", hosts), ours: ms(h50) + " / " + ms(h99), peer: peer,
			ratio: fmt.Sprintf("%.1fx floor", float64(h99)/float64(f99)), target: "p99 <= 2 s"},
		{what: fmt.Sprintf("fleet: commit -> %d hosts converged, polling every %s (p50 / p99)", hosts, interval), ours: ms(p50) + " / " + ms(p99), peer: peer,
			ratio: fmt.Sprintf("%.1fx floor+interval", float64(p99)/float64(f99+interval)), target: "p99 <= interval + 2 s"},
	}
}

// gitFetchFloor is the floor under a fleet's convergence on this machine:
// hosts bare `git fetch --depth 1` of one new commit (files) at once from
// the same server, each into a repository that holds the previous commit,
// as the daemons' repositories do. It returns when each fetch ended after
// the push.
func (b *bench) gitFetchFloor(g *gitRepo, hosts int, files map[string]string) []time.Duration {
	repos := make([]string, hosts)
	fetch := func(repo string) *exec.Cmd {
		cmd := exec.Command("git", "-c", "gc.auto=0", "-c", "maintenance.auto=false", "fetch", "--quiet", "--no-tags", "--depth", "1", g.url, "+refs/heads/main:refs/remotes/origin/main")
		cmd.Env = append(os.Environ(), "GIT_DIR="+repo)
		return cmd
	}
	for i := range repos {
		repos[i] = filepath.Join(b.work, fmt.Sprintf("floor-%02d.git", i))
		gitRun("", "init", "--quiet", "--bare", repos[i])
		if out, err := fetch(repos[i]).CombinedOutput(); err != nil {
			fatalf("git fetch: %v\n%s", err, out)
		}
	}
	g.commit(files)
	t0 := time.Now()
	took := make([]time.Duration, hosts)
	var wg sync.WaitGroup
	for i, repo := range repos {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if out, err := fetch(repo).CombinedOutput(); err != nil {
				fatalf("git fetch: %v\n%s", err, out)
			}
			took[i] = time.Since(t0)
		}()
	}
	wg.Wait()
	return took
}

// simulatePolls runs poll(i) on the schedule of hosts hosts polling every
// every (16 at most at once) for 20 s (5 s with -quick), and returns how
// many polls ran, for how long, and the share of one core the server
// process (with the children it reaped) used meanwhile.
func simulatePolls(server, hosts int, every time.Duration, poll func(i int)) (polls int, wall time.Duration, share float64) {
	window := 20 * time.Second
	if *quick {
		window = 5 * time.Second
	}
	gap := every / time.Duration(hosts)
	d0, w0 := procCPU(server), time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for next := time.Now(); time.Since(w0) < window; next = next.Add(gap) {
		time.Sleep(time.Until(next)) // the simulated hosts' schedule
		sem <- struct{}{}
		wg.Add(1)
		polls++
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			poll(i)
		}(polls)
	}
	wg.Wait()
	wall = time.Since(w0)
	return polls, wall, float64(procCPU(server)-d0) / float64(wall)
}

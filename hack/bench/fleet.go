// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"

	"github.com/reconciled/reconciled/fleet"
	"github.com/reconciled/reconciled/resources/gitsource"
)

// gitRemote makes a bare repository with one commit and serves it with a
// real git daemon on loopback; it returns the git:// URL and the daemon.
func (b *bench) gitRemote() (url string, daemon *exec.Cmd) {
	base, err := os.MkdirTemp(b.work, "git-")
	check(err)
	work := filepath.Join(base, "work")
	run := func(dir string, args ...string) string {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=b", "GIT_AUTHOR_EMAIL=b@example.com", "GIT_COMMITTER_NAME=b", "GIT_COMMITTER_EMAIL=b@example.com")
		out, err := cmd.CombinedOutput()
		if err != nil {
			fatalf("git %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	run("", "init", "--quiet", "--bare", "--initial-branch=main", filepath.Join(base, "fleet.git"))
	run("", "init", "--quiet", "--initial-branch=main", work)
	check(os.MkdirAll(filepath.Join(work, "common"), 0o755))
	check(os.WriteFile(filepath.Join(work, "common", "p.yaml"), []byte("apiVersion: reconciled.dev/v1alpha1\nkind: Process\nmetadata: {name: p}\nspec: {command: [/bin/true]}\n"), 0o644))
	run(work, "add", "-A")
	run(work, "commit", "--quiet", "-m", "one")
	run(work, "push", "--quiet", filepath.Join(base, "fleet.git"), "HEAD:main")
	execPath := strings.TrimSpace(run("", "--exec-path"))
	port := freePort()
	// git-daemon itself (not through the git wrapper), so that its CPU and
	// that of the upload-pack children it reaps are in its /proc stat.
	daemon = exec.Command(filepath.Join(execPath, "git-daemon"), "--reuseaddr", "--export-all", "--listen=127.0.0.1", "--port="+strconv.Itoa(port), "--base-path="+base, base)
	check(daemon.Start())
	url = fmt.Sprintf("git://127.0.0.1:%d/fleet.git", port)
	for deadline := time.Now().Add(10 * time.Second); exec.Command("git", "ls-remote", url).Run() != nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			fatalf("git daemon on port %d does not answer", port)
		}
	}
	return url, daemon
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
	window := 20 * time.Second
	if *quick {
		window = 5 * time.Second
	}
	gap := every / time.Duration(hosts)
	d0, w0 := procCPU(daemon.Process.Pid), time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	polls := 0
	for next := time.Now(); time.Since(w0) < window; next = next.Add(gap) {
		time.Sleep(time.Until(next)) // the simulated hosts' schedule
		sem <- struct{}{}
		wg.Add(1)
		polls++
		go func() {
			defer func() { <-sem; wg.Done() }()
			exec.Command("git", "ls-remote", url, "refs/heads/main").Run()
		}()
	}
	wg.Wait()
	wall := time.Since(w0)
	server := float64(procCPU(daemon.Process.Pid)-d0) / float64(wall)
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
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if resp, err := http.Get(base + "/readyz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					break
				}
			}
			if time.Now().After(deadline) {
				fatalf("the fleet page daemon is not ready")
			}
		}
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

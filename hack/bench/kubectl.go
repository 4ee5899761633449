// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// kubectlGet measures listing 1,000 and 10,000 resources (Hosts: they
// cost nothing to reconcile, so the listing is all there is) with the real
// kubectl, as a Table (its default output) and as JSON, against
// reconcilectl get in the same run, over the daemon's unix socket for
// reconcilectl and plain-HTTP TCP for kubectl (reads need no token): wall
// time per listing (p50 of 10) and the daemon's CPU per listing.
func (b *bench) kubectlGet() []row {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		logf("kubectl: not installed, no rows")
		return nil
	}
	ctl := filepath.Join(filepath.Dir(b.bin), "reconcilectl")
	var rows []row
	for _, n := range []int{scale(1000), scale(10000)} {
		dir, state := b.newDirs("kubectl")
		var sb strings.Builder
		for i := range n {
			fmt.Fprintf(&sb, "---\napiVersion: reconciled.dev/v1alpha1\nkind: Host\nmetadata: {name: h%05d, labels: {site: s%d}}\nspec: {address: \"127.0.0.1:%d\"}\n", i, i%10, 10000+i%50000)
		}
		check(os.WriteFile(filepath.Join(dir, "hosts.yaml"), []byte(sb.String()), 0o644))
		port := freePort()
		d := b.startDaemon(dir, state, "--listen", fmt.Sprintf("127.0.0.1:%d", port))
		server := fmt.Sprintf("http://127.0.0.1:%d", port)
		d.waitReady()
		cache := filepath.Join(b.work, "kubecache")
		run := func(name string, cmd func() *exec.Cmd) (time.Duration, float64) {
			var took []time.Duration
			cpu0 := d.cpuSeconds()
			for range 10 {
				c := cmd()
				c.Env = append(os.Environ(), "KUBECACHEDIR="+cache)
				start := time.Now()
				out, err := c.CombinedOutput()
				if err != nil || !strings.Contains(string(out), "h00000") {
					fatalf("%s: %v\n%.300s", name, err, out)
				}
				took = append(took, time.Since(start))
			}
			return percentile(took, 0.5), (d.cpuSeconds() - cpu0) / 10
		}
		kt, kcpu := run("kubectl get hosts", func() *exec.Cmd { return exec.Command(kubectl, "--server", server, "get", "hosts") })
		kj, kjcpu := run("kubectl get hosts -o json", func() *exec.Cmd { return exec.Command(kubectl, "--server", server, "get", "hosts", "-o", "json") })
		rt, rcpu := run("reconcilectl get hosts", func() *exec.Cmd {
			return exec.Command(ctl, "--socket", filepath.Join(state, "reconciled.sock"), "get", "hosts")
		})
		d.stop()
		logf("kubectl, %d hosts: get (Table) %s / %.1f ms daemon CPU, -o json %s / %.1f ms; reconcilectl get %s / %.1f ms",
			n, ms(kt), 1000*kcpu, ms(kj), 1000*kjcpu, ms(rt), 1000*rcpu)
		rows = append(rows,
			row{what: fmt.Sprintf("kubectl get hosts, %d (Table), p50 / daemon CPU", n), ours: fmt.Sprintf("%s / %.1f ms", ms(kt), 1000*kcpu),
				peer: fmt.Sprintf("%s / %.1f ms reconcilectl", ms(rt), 1000*rcpu), ratio: fmt.Sprintf("%.1fx", float64(kt)/float64(rt))},
			row{what: fmt.Sprintf("kubectl get hosts -o json, %d, p50 / daemon CPU", n), ours: fmt.Sprintf("%s / %.1f ms", ms(kj), 1000*kjcpu)})
	}
	return rows
}

// kubectlWatch measures 100 `kubectl get -w` watchers while 10,000
// resources change at once (one file rewritten): the time until every
// watcher has seen every change, whether any watcher listed again (a
// relist prints every resource a second time), whether each saw the
// changes in the order they were made (rising resourceVersions), and the
// daemon's CPU for it; beside it, the time the same watchers took for
// their initial list of as many objects (the same bytes through the same
// kubectls: the floor of the delivery).
func (b *bench) kubectlWatch() []row {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		logf("kubectl: not installed, no rows")
		return nil
	}
	n, watchers := scale(10000), scale(100)
	dir, state := b.newDirs("kubectl-watch")
	write := func(gen int) {
		var sb strings.Builder
		for i := range n {
			fmt.Fprintf(&sb, "---\napiVersion: reconciled.dev/v1alpha1\nkind: Host\nmetadata: {name: h%05d, labels: {gen: g%d}}\nspec: {address: \"127.0.0.1:%d\"}\n", i, gen, 10000+i%50000)
		}
		check(os.WriteFile(filepath.Join(dir, "hosts.yaml.tmp"), []byte(sb.String()), 0o644))
		check(os.Rename(filepath.Join(dir, "hosts.yaml.tmp"), filepath.Join(dir, "hosts.yaml")))
	}
	write(0)
	port := freePort()
	d := b.startDaemon(dir, state, "--listen", fmt.Sprintf("127.0.0.1:%d", port))
	defer d.stop()
	server := fmt.Sprintf("http://127.0.0.1:%d", port)
	d.waitReady()
	type watcher struct {
		cmd *exec.Cmd
		out *lineCounter
	}
	ws := make([]watcher, watchers)
	start := time.Now()
	for i := range ws {
		c := exec.Command(kubectl, "--server", server, "get", "hosts", "-w", "-o", `jsonpath={.metadata.resourceVersion}{"\n"}`)
		c.Env = append(os.Environ(), "KUBECACHEDIR="+filepath.Join(b.work, "kubecache"))
		lc := &lineCounter{}
		c.Stdout = lc
		check(c.Start())
		onFatal.Cleanup(func() { c.Process.Kill() })
		ws[i] = watcher{c, lc}
	}
	defer func() {
		for _, w := range ws {
			w.cmd.Process.Kill()
			w.cmd.Wait()
		}
	}()
	waitAll := func(what string, lines int) time.Time {
		for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
			done := true
			for _, w := range ws {
				if w.out.lines() < lines {
					done = false
					break
				}
			}
			if done {
				return time.Now()
			}
			if time.Now().After(deadline) {
				fatalf("kubectl watch: %s: not every watcher got %d lines within 5 minutes", what, lines)
			}
		}
	}
	listed := waitAll("the initial list", n).Sub(start)
	cpu0, t0 := d.cpuSeconds(), time.Now()
	write(1)
	t1 := waitAll("the churn", 2*n)
	cpu := d.cpuSeconds() - cpu0
	relists, disorder := 0, 0
	for _, w := range ws {
		if w.out.lines() > 2*n {
			relists++
		}
		if !w.out.ordered(n) {
			disorder++
		}
	}
	took := t1.Sub(t0)
	logf("kubectl watch: %d watchers saw %d changes in %s (daemon CPU %.2f s); %d listed again, %d out of order; the initial list of as many took %s", watchers, n, took.Round(time.Millisecond), cpu, relists, disorder, listed.Round(time.Millisecond))
	return []row{
		{what: fmt.Sprintf("kubectl get -w x%d, %d resources changed at once: all seen", watchers, n), ours: ms(took),
			peer: ms(listed) + " their initial list", ratio: fmt.Sprintf("%.1fx", float64(took)/float64(listed)), target: "no relist, in order"},
		{what: "the same: daemon CPU / watchers that listed again / out of order", ours: fmt.Sprintf("%.2f s / %d / %d", cpu, relists, disorder)},
	}
}

// lineCounter counts the lines a watcher prints (one resourceVersion per
// object) and keeps them, to check the order.
type lineCounter struct {
	mu   sync.Mutex
	part []byte
	rvs  []uint64
}

func (l *lineCounter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.part = append(l.part, p...)
	for {
		i := bytes.IndexByte(l.part, '\n')
		if i < 0 {
			break
		}
		rv, _ := strconv.ParseUint(strings.TrimSpace(string(l.part[:i])), 10, 64)
		l.part = l.part[i+1:]
		l.rvs = append(l.rvs, rv)
	}
	return len(p), nil
}

func (l *lineCounter) lines() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.rvs)
}

// ordered reports whether the last n events came in the order the daemon
// made them (rising resourceVersions), all after the initial list.
func (l *lineCounter) ordered(n int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.rvs) < 2*n {
		return false
	}
	first, changes := l.rvs[:len(l.rvs)-n], l.rvs[len(l.rvs)-n:]
	return slices.IsSorted(changes) && changes[0] > slices.Max(first) && changes[0] != 0
}

// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
		for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
			if resp, err := d.http.Get("http://d/readyz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					break
				}
			}
			if time.Now().After(deadline) {
				fatalf("kubectl: the daemon with %d hosts is not ready", n)
			}
		}
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

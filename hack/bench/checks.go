// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// checks measures 1,000 Checks evaluated every minute (disk usage, uptime,
// load: the cheap in-process sources; a command per Check would measure
// fork/exec, which the floors row already gives): the daemon's CPU and RSS
// over two minutes, the history's size on disk per Check, and the latency
// of GET .../history?range=year.
func (b *bench) checks() []row {
	n := scale(1000)
	dir, state := b.newDirs("checks")
	var sb strings.Builder
	sources := []string{"diskUsage: {path: /}", "uptime: {}", "load: {window: 5m}", "memory: {}"}
	for i := range n {
		fmt.Fprintf(&sb, "---\napiVersion: reconciled.dev/v1alpha1\nkind: Check\nmetadata: {name: c%04d}\nspec:\n  %s\n  interval: 1m\n  levels: [{level: sick, above: 95}, {level: soso, above: 90}]\n", i, sources[i%len(sources)])
	}
	check(os.WriteFile(filepath.Join(dir, "checks.yaml"), []byte(sb.String()), 0o644))
	d := b.startDaemon(dir, state)
	defer d.stop()
	// Every Check is evaluated once at start; then the minute schedule.
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		if evaluated(d) >= n {
			break
		}
		if time.Now().After(deadline) {
			fatalf("checks: %d Checks not all evaluated within 2 minutes", n)
		}
	}
	window := 2 * time.Minute
	if *quick {
		window = 20 * time.Second
	}
	cpu0, t0 := d.cpuSeconds(), time.Now()
	time.Sleep(window)
	cpu := (d.cpuSeconds() - cpu0) / time.Since(t0).Seconds()
	rss := d.rssMiB()
	var took []time.Duration
	for i := range 200 {
		start := time.Now()
		resp, err := d.http.Get(fmt.Sprintf("http://d/apis/reconciled.dev/v1alpha1/checks/c%04d/history?range=year", i%n))
		check(err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		took = append(took, time.Since(start))
	}
	d.stop()
	var size int64
	files, _ := filepath.Glob(filepath.Join(state, "history", "checks", "*"))
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil {
			size += fi.Size()
		}
	}
	perCheck := float64(size) / float64(n) / 1024
	// A year of one sample a minute, rolled up, for the size at its
	// largest: history's own test measures it (TestRollUp logs it); here
	// the folder after the run.
	logf("checks: %d Checks every 1m: %.2f%% of a core over %s, RSS %.1f MiB, history %.1f KiB per Check after the run, year p99 %s",
		n, 100*cpu, window, rss, perCheck, ms(percentile(took, 0.99)))
	return []row{
		{what: fmt.Sprintf("checks: %d Checks every 1m, daemon CPU", n), ours: fmt.Sprintf("%.2f%% of a core", 100*cpu), target: "< 1% of a core"},
		{what: fmt.Sprintf("checks: %d Checks, daemon RSS", n), ours: fmt.Sprintf("%.1f MiB", rss), target: "< 100 MB"},
		{what: "checks: history on disk per Check (after the run)", ours: fmt.Sprintf("%.1f KiB", perCheck), target: "a few hundred KB at most"},
		{what: "checks: GET history?range=year (p50 / p99)", ours: ms(percentile(took, 0.5)) + " / " + ms(percentile(took, 0.99)), target: "p99 <= 20 ms"},
	}
}

// evaluated counts the Checks of d that have a value.
func evaluated(d *daemon) int {
	resp, err := d.http.Get("http://d/apis/reconciled.dev/v1alpha1/checks")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return strings.Count(string(body), `"lastEvaluated"`)
}

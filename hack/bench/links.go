// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// links: n Links probing loopback TCP listeners every interval. Reports
// daemon CPU and RSS, scheduling lateness p99 (from the daemon's own
// histogram) and probes per CPU-second, the figure blackbox_exporter's
// maintainers give as about 1,000 per core per second.
func (b *bench) links(n int) []row {
	const listeners = 8
	var addrs []string
	for i := 0; i < listeners; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		check(err)
		defer l.Close()
		addrs = append(addrs, l.Addr().String())
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	}
	dir, state := b.newDirs(fmt.Sprintf("links%d", n))
	for i := 0; i < n; i++ {
		content := fmt.Sprintf("apiVersion: reconciled.dev/v1alpha1\nkind: Link\nmetadata:\n  name: l%05d\nspec:\n  tcp: {address: %q}\n  interval: 10s\n  timeout: 2s\n", i, addrs[i%listeners])
		check(os.WriteFile(filepath.Join(dir, fmt.Sprintf("l%05d.yaml", i)), []byte(content), 0o644))
	}
	d := b.startDaemon(dir, state)
	defer d.stop()
	if _, err := waitFiles(dir, "phase: Up", 5*time.Minute); err != nil {
		fatalf("links: %v", err)
	}
	logf("links %d: all Up after %s", n, time.Since(d.start).Round(time.Millisecond))
	time.Sleep(5 * time.Second) // let start-up work settle before measuring
	window := 60 * time.Second
	if *quick {
		window = 15 * time.Second
	}
	p0, _ := d.metric("reconciled_link_probe_duration_seconds_count")
	c0 := d.cpuSeconds()
	time.Sleep(window) // the measurement window
	cpu := d.cpuSeconds() - c0
	p1, _ := d.metric("reconciled_link_probe_duration_seconds_count")
	probes := p1 - p0
	late := d.histogramQuantile("reconciled_link_probe_lateness_seconds", 0.99)
	rss := d.rssMiB()
	perCPU := probes / max(cpu, 0.001)
	logf("links %d: %.0f probes in %s, CPU %.1f%% of a core, %.0f probes per CPU-second, lateness p99 <= %s, RSS %.0f MiB",
		n, probes, window, cpu/window.Seconds()*100, perCPU, late, rss)
	return []row{
		{what: fmt.Sprintf("%d Links every 10 s: daemon CPU / RSS", n), ours: fmt.Sprintf("%.1f %% / %.0f MiB", cpu/window.Seconds()*100, rss), target: "<= 15 % / <= 120 MB"},
		{what: fmt.Sprintf("%d Links: probe start lateness p99", n), ours: "<= " + late.String(), target: "<= 50 ms"},
		{what: "probes per CPU-second", ours: fmt.Sprintf("%.0f", perCPU), peer: "~1000 (blackbox_exporter, maintainers' figure)", ratio: fmt.Sprintf("%.1fx", perCPU/1000)},
	}
}

// histogramQuantile returns the upper bound of the first bucket holding
// the q quantile of a histogram from /metrics (an upper estimate).
func (d *daemon) histogramQuantile(name string, q float64) time.Duration {
	resp, err := d.http.Get("http://d/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	type bucket struct{ le, n float64 }
	var bs []bucket
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, name+"_bucket{") {
			continue
		}
		i := strings.Index(l, `le="`)
		j := strings.Index(l[i+4:], `"`)
		leS := l[i+4 : i+4+j]
		f := strings.Fields(l)
		n, _ := strconv.ParseFloat(f[len(f)-1], 64)
		le, err := strconv.ParseFloat(leS, 64)
		if leS == "+Inf" || err != nil {
			le = 1e9
		}
		bs = append(bs, bucket{le, n})
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].le < bs[j].le })
	if len(bs) == 0 || bs[len(bs)-1].n == 0 {
		return 0
	}
	total := bs[len(bs)-1].n
	for _, b := range bs {
		if b.n >= q*total {
			return time.Duration(b.le * float64(time.Second))
		}
	}
	return 0
}

// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// links: n Links probing loopback TCP listeners every interval. Reports
// daemon CPU and RSS, scheduling lateness p99 (from the daemon's own
// histogram) and probes per CPU-second, beside blackbox_exporter (Debian's
// prometheus-blackbox-exporter) probing the same targets at the same rate
// in the same run.
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
	late, ok := d.histogramQuantile("reconciled_link_probe_lateness_seconds", 0.99)
	if !ok {
		fatalf("links: reconciled_link_probe_lateness_seconds is missing from /metrics")
	}
	if probes <= 0 {
		fatalf("links: no probes counted (reconciled_link_probe_duration_seconds_count)")
	}
	rss := d.rssMiB()
	perCPU := probes / max(cpu, 0.001)
	logf("links %d: %.0f probes in %s, CPU %.1f%% of a core, %.0f probes per CPU-second, lateness p99 <= %s, RSS %.0f MiB",
		n, probes, window, cpu/window.Seconds()*100, perCPU, late, rss)
	d.stop()
	rate := float64(n) / 10 // probes per second, as ours
	bbProbes, bbCPU := blackboxPeer(addrs, rate, window)
	bbPerCPU := bbProbes / max(bbCPU, 0.001)
	logf("links %d: blackbox_exporter, driven at %.0f probes/s over the same %s: %.0f probes, CPU %.1f%% of a core, %.0f probes per CPU-second",
		n, rate, window, bbProbes, bbCPU/window.Seconds()*100, bbPerCPU)
	return []row{
		{what: fmt.Sprintf("%d Links every 10 s: daemon CPU / RSS", n), ours: fmt.Sprintf("%.1f %% / %.0f MiB", cpu/window.Seconds()*100, rss),
			peer: fmt.Sprintf("blackbox_exporter %.1f %%", bbCPU/window.Seconds()*100), ratio: fmt.Sprintf("%.2fx", cpu/max(bbCPU, 0.001)), target: "<= 15 % / <= 120 MB"},
		{what: fmt.Sprintf("%d Links: probe start lateness p99", n), ours: "<= " + late.String(), target: "<= 50 ms"},
		{what: "probes per CPU-second", ours: fmt.Sprintf("%.0f", perCPU), peer: fmt.Sprintf("blackbox_exporter %.0f (same targets and rate)", bbPerCPU), ratio: fmt.Sprintf("%.1fx", perCPU/max(bbPerCPU, 1))},
	}
}

// blackboxPeer runs blackbox_exporter and asks it for TCP probes of addrs,
// rate per second for window, as Prometheus would scrape /probe. It
// returns the successful probes and the exporter's own CPU seconds (the
// driver's are not counted).
func blackboxPeer(addrs []string, rate float64, window time.Duration) (probes, cpu float64) {
	bin, err := exec.LookPath("prometheus-blackbox-exporter")
	if err != nil {
		fatalf("links: prometheus-blackbox-exporter is not installed (apt-get install prometheus-blackbox-exporter)")
	}
	dir, err := os.MkdirTemp("", "bench-blackbox-")
	check(err)
	defer os.RemoveAll(dir)
	cfg := filepath.Join(dir, "blackbox.yml")
	check(os.WriteFile(cfg, []byte("modules:\n  tcp_connect:\n    prober: tcp\n    timeout: 2s\n"), 0o644))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, "--config.file="+cfg, "--web.listen-address="+addr, "--log.level=error")
	check(cmd.Start())
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 128}}
	for deadline := time.Now().Add(10 * time.Second); ; {
		if resp, err := client.Get("http://" + addr + "/-/healthy"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			fatalf("links: blackbox_exporter did not start")
		}
		time.Sleep(50 * time.Millisecond) // waiting for it to listen
	}
	var ok atomic.Int64
	jobs := make(chan string, 1024)
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for target := range jobs {
				resp, err := client.Get("http://" + addr + "/probe?module=tcp_connect&target=" + target)
				if err != nil {
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if strings.Contains(string(body), "\nprobe_success 1") {
					ok.Add(1)
				}
			}
		}()
	}
	c0 := cpuSecondsOf(cmd.Process.Pid)
	start := time.Now()
	sent := 0
	for time.Since(start) < window {
		due := int(time.Since(start).Seconds() * rate)
		for ; sent < due; sent++ {
			jobs <- addrs[sent%len(addrs)]
		}
		time.Sleep(5 * time.Millisecond) // pacing the driver
	}
	close(jobs)
	wg.Wait()
	return float64(ok.Load()), cpuSecondsOf(cmd.Process.Pid) - c0
}

// histogramQuantile returns the upper bound of the first bucket holding
// the q quantile of a histogram from /metrics (an upper estimate).
func (d *daemon) histogramQuantile(name string, q float64) (time.Duration, bool) {
	resp, err := d.http.Get("http://d/metrics")
	if err != nil {
		return 0, false
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
		return 0, false // missing or empty: no figure, not a perfect one
	}
	total := bs[len(bs)-1].n
	for _, b := range bs {
		if b.n >= q*total {
			return time.Duration(b.le * float64(time.Second)), true
		}
	}
	return 0, false
}

// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/go-logr/logr"

	"github.com/reconciled/reconciled/internal/systemd"
)

// sandbox is a real systemd booted by hack/systemd-sandbox.sh.
type sandbox struct {
	env  []string
	vars map[string]string
}

func (b *bench) startSandbox() *sandbox {
	dir, err := os.MkdirTemp("", "bench-sdtest-")
	check(err)
	sb := &sandbox{env: append(os.Environ(), "MODE=system", "SDTEST_DIR="+dir, "SDTEST_CGROUP="+filepath.Base(dir),
		"SDTEST_SHARE=", "SDTEST_OWNER_PID="+strconv.Itoa(os.Getpid()))}
	if out, err := sb.script("start"); err != nil {
		fatalf("systemd sandbox: %v\n%s", err, out)
	}
	out, err := sb.script("env")
	if err != nil {
		fatalf("systemd sandbox env: %v\n%s", err, out)
	}
	sb.vars = map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "="); ok {
			sb.vars[k] = v
		}
	}
	return sb
}

func (sb *sandbox) script(args ...string) (string, error) {
	cmd := exec.Command("hack/systemd-sandbox.sh", args...)
	cmd.Env = sb.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (sb *sandbox) stop() { sb.script("stop") }

var mainPIDRE = regexp.MustCompile(`(?m)^  mainPID: (\d+)$`)

// modules: 200 Modules created at once against a real systemd (all
// active with status written, and how many daemon-reloads that took), then
// spec edits of one Module until its unit runs the new ExecStart and the
// status is written. systemd's own daemon-reload is timed in the same run,
// to show what share of an edit is ours.
func (b *bench) modules() []row {
	sb := b.startSandbox()
	defer sb.stop()
	root := sb.vars["SDTEST_ROOT"]
	dir, state := b.newDirs("modules")
	d := b.startDaemon(dir, state, "--systemd-root", root)
	defer d.stop()
	// Let the daemon connect before the clock starts.
	time.Sleep(500 * time.Millisecond)

	// Edits of one Module while it is the only one.
	check(os.WriteFile(filepath.Join(dir, "m000.yaml"), []byte(moduleSpec("m000", 0)), 0o644))
	if _, err := waitFiles(dir, "phase: Active", time.Minute); err != nil {
		fatalf("modules: %v", err)
	}
	w, err := fsnotify.NewWatcher()
	check(err)
	defer w.Close()
	check(w.Add(dir))
	samples := 40
	if *quick {
		samples = 10
	}
	path := filepath.Join(dir, "m000.yaml")
	var lat []time.Duration
	for i := 1; i <= samples; i++ {
		before, _ := os.ReadFile(path)
		m := mainPIDRE.FindSubmatch(before)
		if m == nil {
			fatalf("modules: no mainPID in %s:\n%s", path, before)
		}
		oldPID := string(m[1])
		check(os.WriteFile(filepath.Join(dir, ".m000.tmp"), []byte(moduleSpec("m000", i)), 0o644))
		drain(w)
		start := time.Now()
		check(os.Rename(filepath.Join(dir, ".m000.tmp"), path))
		deadline := time.After(60 * time.Second)
	wait:
		for {
			select {
			case ev := <-w.Events:
				if ev.Name != path {
					continue
				}
				b, _ := os.ReadFile(path)
				s := string(b)
				if pm := mainPIDRE.FindStringSubmatch(s); pm != nil && pm[1] != oldPID && strings.Contains(s, "phase: Active") &&
					strings.Contains(s, fmt.Sprintf("observedGeneration: %d\n", i+1)) {
					lat = append(lat, time.Since(start))
					break wait
				}
			case <-deadline:
				b, _ := os.ReadFile(path)
				fatalf("modules: edit %d did not converge:\n%s", i, b)
			}
		}
	}
	// systemd's own daemon-reload, through the same bus.
	mgr, err := systemd.New(systemd.Options{Root: root, Log: logr.Discard()})
	check(err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go mgr.Run(ctx, func(string) {}, func() {})
	check(mgr.Wait(ctx))
	var reload []time.Duration
	for range 10 {
		t := time.Now()
		check(mgr.Reload(ctx))
		reload = append(reload, time.Since(t))
	}
	p50, p99, r50 := percentile(lat, 0.5), percentile(lat, 0.99), percentile(reload, 0.5)
	logf("modules: %d edits p50 %s p99 %s; systemd daemon-reload alone p50 %s", len(lat), ms(p50), ms(p99), ms(r50))

	n := 200
	if *quick {
		n = 20
	}
	t0 := time.Now()
	r0, _ := d.metric("reconciled_systemd_reloads_total")
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("m%03d", i)
		check(os.WriteFile(filepath.Join(dir, name+".yaml"), []byte(moduleSpec(name, 0)), 0o644))
	}
	done, err := waitFiles(dir, "phase: Active", 5*time.Minute)
	if err != nil {
		fatalf("modules: %v", err)
	}
	all := done.Sub(t0)
	r1, _ := d.metric("reconciled_systemd_reloads_total")
	reloads := r1 - r0
	logf("modules %d: all Active with status in %s, %.0f daemon-reloads", n, all.Round(time.Millisecond), reloads)

	return []row{
		{what: fmt.Sprintf("%d Modules at once: all active + status written / daemon-reloads", n), ours: fmt.Sprintf("%.2f s / %.0f", all.Seconds(), reloads), target: "batched reloads"},
		{what: "Module edit -> unit restarted + status written, p50 / p99", ours: ms(p50) + " / " + ms(p99), peer: "floor: systemd daemon-reload alone, p50 " + ms(r50), ratio: fmt.Sprintf("%.1fx floor", float64(p50)/float64(r50)), target: "p50 <= 150 ms"},
	}
}

func moduleSpec(name string, gen int) string {
	return fmt.Sprintf("apiVersion: reconciled.dev/v1alpha1\nkind: Module\nmetadata:\n  name: %s\nspec:\n  exec: [\"/bin/sleep\", \"%d\"]\n", name, 100000+gen)
}

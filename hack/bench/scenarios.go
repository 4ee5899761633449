// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
)

var (
	pidRE = regexp.MustCompile(`(?m)^  pid: (\d+)$`)
	genRE = regexp.MustCompile(`(?m)^  generation: (\d+)$`)
)

// editLatency: N long-running programs; edit one file's spec (atomic
// rename, as a git checkout does) and time until the program runs with
// the new spec and its status is in the file.
func (b *bench) editLatency(n int) []row {
	dir, state := b.newDirs(fmt.Sprintf("edit%d", n))
	for i := 0; i < n; i++ {
		writeProcess(dir, fmt.Sprintf("p%05d", i), `["/bin/sleep", "infinity"]`, "")
	}
	d := b.startDaemon(dir, state)
	defer d.stop()
	if _, err := waitFiles(dir, "phase: Running", 10*time.Minute); err != nil {
		fatalf("edit%d: %v", n, err)
	}
	logf("edit%d: %d programs running after %s, daemon RSS %.0f MiB", n, n, time.Since(d.start).Round(time.Millisecond), d.rssMiB())
	w, err := fsnotify.NewWatcher()
	check(err)
	defer w.Close()
	check(w.Add(dir))
	samples := 200
	if *quick {
		samples = 30
	}
	var lat []time.Duration
	for i := 0; i < samples; i++ {
		lat = append(lat, editAndWait(w, dir, fmt.Sprintf("p%05d", (i*7919)%n), i))
	}
	p50, p99 := percentile(lat, 0.5), percentile(lat, 0.99)
	logf("edit%d: %d edits p50 %s p90 %s p99 %s max %s", n, len(lat), ms(p50), ms(percentile(lat, 0.9)), ms(p99), ms(percentile(lat, 1)))
	floor := b.floors.editFloor()
	rows := []row{{what: fmt.Sprintf("edit -> restarted + status written, %d resources, p50", n), ours: ms(p50),
		peer: "floor (fsnotify + exec + atomic write) " + ms(floor), ratio: ofFloor(p50, floor), target: "<= 2x floor"}}
	p99Row := row{what: fmt.Sprintf("edit -> restarted + status written, %d resources, p99", n), ours: ms(p99),
		peer: "floor " + ms(floor), ratio: ofFloor(p99, floor)}
	if b.editP99 != nil && b.editP99[1000] > 0 && n > 1000 {
		// Cost must not grow with the number of resources.
		p99Row.peer = "p99 at 1000 resources " + ms(b.editP99[1000])
		p99Row.ratio = fmt.Sprintf("%.2fx", float64(p99)/float64(b.editP99[1000]))
		p99Row.target = "<= 1.5x"
	}
	if b.editP99 == nil {
		b.editP99 = map[int]time.Duration{}
	}
	b.editP99[n] = p99
	return append(rows, p99Row)
}

// editAndWait changes the command of the Process in dir/name.yaml (atomic
// rename, as a git checkout does) and returns how long it took until the
// file shows a new pid, the new generation observed and Running; w watches
// dir.
func editAndWait(w *fsnotify.Watcher, dir, name string, i int) time.Duration {
	path := filepath.Join(dir, name+".yaml")
	before, _ := os.ReadFile(path)
	m := pidRE.FindSubmatch(before)
	if m == nil {
		fatalf("edit: no pid in %s", path)
	}
	oldPid := string(m[1])
	gen := int64(1)
	if gm := genRE.FindSubmatch(before); gm != nil {
		gen, _ = strconv.ParseInt(string(gm[1]), 10, 64)
	}
	// A new command each time, so every edit is a new generation.
	content := fmt.Sprintf("# edit %d\napiVersion: reconciled.dev/v1alpha1\nkind: Process\nmetadata:\n  name: %s\nspec:\n  command: [\"/bin/sleep\", \"%d\"]\n", i, name, 1000000+i)
	tmp := filepath.Join(dir, "."+name+".tmp")
	check(os.WriteFile(tmp, []byte(content), 0o644))
	drain(w)
	t0 := time.Now()
	check(os.Rename(tmp, path))
	wantGen := fmt.Sprintf("observedGeneration: %d\n", gen+1)
	deadline := time.After(30 * time.Second)
	for {
		select {
		case ev := <-w.Events:
			if ev.Name != path {
				continue
			}
			b, _ := os.ReadFile(path)
			s := string(b)
			if pm := pidRE.FindStringSubmatch(s); pm != nil && pm[1] != oldPid && strings.Contains(s, wantGen) && strings.Contains(s, "phase: Running") {
				return time.Since(t0)
			}
		case <-deadline:
			b, _ := os.ReadFile(path)
			fatalf("edit: %s did not converge:\n%s", name, b)
		}
	}
}

func drain(w *fsnotify.Watcher) {
	for {
		select {
		case <-w.Events:
		default:
			return
		}
	}
}

// crashRestart runs the same crashing program (blip: logs its start and
// exit times) under reconciled, supervisord and runit at the same time,
// then compares the gaps between an exit and the next start.
func (b *bench) crashRestart() []row {
	window := 60 * time.Second
	if *quick {
		window = 8 * time.Second
	}
	const liveMS = "1100" // longer than runit's 1 s minimum run, so none of them waits on purpose
	// reconciled: resetAfter below the run time makes every crash a first crash.
	dir, state := b.newDirs("crash")
	ourLog := filepath.Join(filepath.Dir(state), "blip.log")
	writeProcess(dir, "blip", fmt.Sprintf("[%q, %q, \"1\", %q]", b.blip, ourLog, liveMS), "  backoff: {resetAfter: 1s}\n")
	d := b.startDaemon(dir, state)

	var peers []*exec.Cmd
	supLog, supCmd, supErr := b.startSupervisord(liveMS)
	if supErr == nil {
		peers = append(peers, supCmd)
	} else {
		logf("supervisord: %v", supErr)
	}
	runitLog, runitCmd, runitErr := b.startRunit(liveMS)
	if runitErr == nil {
		peers = append(peers, runitCmd)
	} else {
		logf("runit: %v", runitErr)
	}
	time.Sleep(window) // the measurement window: all three crash-loop side by side
	d.stop()
	for _, p := range peers {
		p.Process.Signal(syscall.SIGTERM)
		p.Wait()
	}
	if runitErr == nil {
		exec.Command("pkill", "-f", b.blip).Run()
	}
	ours := gaps(ourLog)
	rows := []row{}
	addRows := func(peerName, peerLog string, peerErr error) {
		var pg []time.Duration
		if peerErr == nil {
			pg = gaps(peerLog)
		}
		for _, q := range []struct {
			name string
			p    float64
		}{{"p50", 0.5}, {"p99", 0.99}} {
			r := row{what: fmt.Sprintf("crash -> running again (first restart) %s, vs %s", q.name, peerName), ours: ms(percentile(ours, q.p)), target: "p99 <= 10 ms"}
			if len(pg) > 0 {
				r.peer = ms(percentile(pg, q.p))
				r.ratio = speedRatio(percentile(pg, q.p), percentile(ours, q.p))
			}
			rows = append(rows, r)
		}
		logf("crash: %s %d restarts, gaps p50 %s p99 %s", peerName, len(pg), ms(percentile(pg, 0.5)), ms(percentile(pg, 0.99)))
	}
	logf("crash: reconciled %d restarts, gaps p50 %s p99 %s max %s", len(ours), ms(percentile(ours, 0.5)), ms(percentile(ours, 0.99)), ms(percentile(ours, 1)))
	addRows("supervisord", supLog, supErr)
	addRows("runit", runitLog, runitErr)

	// The backoff sequence with the defaults, for a program that dies at once.
	dir, state = b.newDirs("backoff")
	seqLog := filepath.Join(filepath.Dir(state), "blip.log")
	writeProcess(dir, "blip", fmt.Sprintf("[%q, %q, \"1\", \"0\"]", b.blip, seqLog), "")
	d = b.startDaemon(dir, state)
	time.Sleep(8 * time.Second) // long enough for ~7 restarts of the default backoff
	d.stop()
	seq := gaps(seqLog)
	var parts []string
	for i, g := range seq {
		if i == 8 {
			break
		}
		parts = append(parts, fmt.Sprintf("%.0f", float64(g)/1e6))
	}
	logf("backoff sequence (ms): %s", strings.Join(parts, ", "))
	rows = append(rows, row{what: "backoff after repeated crashes (ms, defaults)", ours: strings.Join(parts, ", "), target: "0, then 100ms x2^n jittered"})
	return rows
}

// gaps reads a blip log: next start minus previous exit.
func gaps(path string) []time.Duration {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []time.Duration
	var lastE int64 = -1
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		t, _ := strconv.ParseInt(v, 10, 64)
		switch k {
		case "S":
			if lastE >= 0 {
				out = append(out, time.Duration(t-lastE))
			}
		case "E":
			lastE = t
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func (b *bench) startSupervisord(liveMS string) (string, *exec.Cmd, error) {
	logPath := filepath.Join(b.work, "supervisord-blip.log")
	cmd, err := b.supervisord("blip", fmt.Sprintf("%s %s 1 %s", b.blip, logPath, liveMS))
	return logPath, cmd, err
}

// supervisord runs supervisord (in the foreground) with one program that
// restarts at once whenever it exits.
func (b *bench) supervisord(name, command string) (*exec.Cmd, error) {
	if _, err := exec.LookPath("supervisord"); err != nil {
		return nil, fmt.Errorf("not installed (apt-get install supervisor)")
	}
	dir, err := os.MkdirTemp(b.work, "supervisord-")
	check(err)
	conf := fmt.Sprintf(`[unix_http_server]
file=%[1]s/s.sock
[supervisord]
logfile=%[1]s/supervisord.log
pidfile=%[1]s/supervisord.pid
childlogdir=%[1]s
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[program:%[2]s]
command=%[3]s
startsecs=0
autorestart=true
startretries=1000000
`, dir, name, command)
	check(os.WriteFile(filepath.Join(dir, "s.conf"), []byte(conf), 0o644))
	cmd := exec.Command("supervisord", "-n", "-c", filepath.Join(dir, "s.conf"))
	return cmd, cmd.Start()
}

func (b *bench) startRunit(liveMS string) (string, *exec.Cmd, error) {
	if _, err := exec.LookPath("runsv"); err != nil {
		return "", nil, fmt.Errorf("not installed (apt-get install runit)")
	}
	dir, err := os.MkdirTemp(b.work, "runit-")
	check(err)
	svc := filepath.Join(dir, "svc")
	check(os.MkdirAll(svc, 0o755))
	logPath := filepath.Join(dir, "blip.log")
	check(os.WriteFile(filepath.Join(svc, "run"), []byte(fmt.Sprintf("#!/bin/sh\nexec %s %s 1 %s\n", b.blip, logPath, liveMS)), 0o755))
	cmd := exec.Command("runsv", svc)
	return logPath, cmd, cmd.Start()
}

// coldStartSleepers: N long-running programs from a cold daemon start until
// all run with status written.
func (b *bench) coldStartSleepers(n int) row {
	floor := execFloor(n)
	dir, state := b.newDirs(fmt.Sprintf("cold%d", n))
	for i := 0; i < n; i++ {
		writeProcess(dir, fmt.Sprintf("s%05d", i), `["/bin/sleep", "infinity"]`, "")
	}
	d := b.startDaemon(dir, state)
	defer d.stop()
	end, err := waitFiles(dir, "phase: Running", 10*time.Minute)
	check(err)
	took := end.Sub(d.start)
	rss := d.rssMiB()
	logf("cold start %d sleepers: all Running with status in %s, RSS %.0f MiB", n, took.Round(time.Millisecond), rss)
	return row{what: fmt.Sprintf("cold start %d x sleep infinity: all Running + status / RSS", n), ours: fmt.Sprintf("%.2f s / %.0f MiB", took.Seconds(), rss),
		peer: fmt.Sprintf("floor: %d bare execs, 4 parallel, %.2f s", n, floor.Seconds()), ratio: fmt.Sprintf("%.2fx floor", took.Seconds()/floor.Seconds()), target: "<= 1.3x floor / <= 100 MB"}
}

// execFloor is what this machine needs, right now, to fork and exec n
// /bin/true four at a time from Go and wait for them: the floor under the
// cold-start figure, measured in the same run because shared machines
// drift.
func execFloor(n int) time.Duration {
	start := time.Now()
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			exec.Command("/bin/true").Run()
			<-sem
		}()
	}
	wg.Wait()
	return time.Since(start)
}

// coldStartTrue: N /bin/true with restartPolicy Never until all Completed.
func (b *bench) coldStartTrue(n int) row {
	floor := execFloor(n)
	dir, state := b.newDirs(fmt.Sprintf("true%d", n))
	for i := 0; i < n; i++ {
		writeProcess(dir, fmt.Sprintf("t%05d", i), `["/bin/true"]`, "  restartPolicy: Never\n")
	}
	d := b.startDaemon(dir, state)
	defer d.stop()
	end, err := waitFiles(dir, "phase: Completed", 10*time.Minute)
	check(err)
	took := end.Sub(d.start)
	rss := d.rssMiB()
	logf("cold start %d x /bin/true: all Completed with status in %s, RSS %.0f MiB; floor (Go exec, 4 parallel) %s", n, took.Round(time.Millisecond), rss, floor.Round(time.Millisecond))
	return row{what: fmt.Sprintf("cold start %d x /bin/true (Never): all Completed + status / RSS", n), ours: fmt.Sprintf("%.2f s / %.0f MiB", took.Seconds(), rss),
		peer: fmt.Sprintf("floor: %d bare execs, 4 parallel, %.2f s", n, floor.Seconds()), ratio: fmt.Sprintf("%.2fx floor", took.Seconds()/floor.Seconds()), target: "<= 1.3x floor / <= 150 MB"}
}

// idle: N programs running, nothing changing: daemon CPU and goroutines.
func (b *bench) idle(n int) []row {
	dir, state := b.newDirs(fmt.Sprintf("idle%d", n))
	for i := 0; i < n; i++ {
		writeProcess(dir, fmt.Sprintf("i%05d", i), `["/bin/sleep", "infinity"]`, "")
	}
	d := b.startDaemon(dir, state)
	defer d.stop()
	_, err := waitFiles(dir, "phase: Running", 10*time.Minute)
	check(err)
	time.Sleep(5 * time.Second) // let start-up work settle before measuring idle
	window := 60 * time.Second
	if *quick {
		window = 5 * time.Second
	}
	c0 := d.cpuSeconds()
	time.Sleep(window) // the idle measurement window
	cpu := (d.cpuSeconds() - c0) / window.Seconds() * 100
	g, _ := d.metric("go_goroutines")
	logf("idle %d: CPU %.3f%% of a core over %s, %0.f goroutines, RSS %.0f MiB", n, cpu, window, g, d.rssMiB())
	return []row{
		{what: fmt.Sprintf("idle, %d programs: daemon CPU", n), ours: fmt.Sprintf("%.3f %% of a core", cpu), target: "<= 0.1 %"},
		{what: fmt.Sprintf("idle, %d programs: goroutines", n), ours: fmt.Sprintf("%.0f", g), target: "no goroutine per resource"},
	}
}

// speedRatio says how much faster (or slower) ours took than peer.
func speedRatio(peer, ours time.Duration) string {
	r := float64(peer) / float64(max(ours, time.Microsecond))
	if r >= 1 {
		return fmt.Sprintf("%.1fx faster", r)
	}
	return fmt.Sprintf("%.2fx slower", 1/r)
}

// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// raw collects per-scenario details for the raw output file.
var raw bytes.Buffer

func logf(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	fmt.Fprintln(os.Stderr, s)
	raw.WriteString(s + "\n")
}

type bench struct {
	bin, work, blip string
	// floors are this machine's, measured at the start of the run.
	floors floors
	// editP99 is the edit p99 by number of resources, for the ratio of
	// the larger size to the smaller.
	editP99 map[int]time.Duration
}

// daemon is one running reconciled.
type daemon struct {
	cmd     *exec.Cmd
	dir     string
	state   string
	http    *http.Client
	start   time.Time
	stopped bool
}

func (b *bench) newDirs(name string) (dir, state string) {
	base, err := os.MkdirTemp(b.work, name+"-")
	check(err)
	dir, state = filepath.Join(base, "res"), filepath.Join(base, "state")
	check(os.MkdirAll(dir, 0o755))
	return dir, state
}

// startDaemon runs reconciled on dir (none when dir is "": a host that
// reads only git) with its state in state.
func (b *bench) startDaemon(dir, state string, extra ...string) *daemon {
	args := append([]string{"--state-dir", state, "--listen", "", "--stop-on-exit"}, extra...)
	if dir != "" {
		args = append([]string{"--dir", dir}, args...)
	}
	cmd := exec.Command(b.bin, args...)
	logFile, err := os.OpenFile(filepath.Join(filepath.Dir(state), "daemon.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	check(err)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	d := &daemon{cmd: cmd, dir: dir, state: state, start: time.Now()}
	check(cmd.Start())
	onFatal.Cleanup(func() { cmd.Process.Kill() }) // a failed bench leaves no daemon behind
	sock := filepath.Join(state, "reconciled.sock")
	d.http = &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dd net.Dialer
		return dd.DialContext(ctx, "unix", sock)
	}}}
	return d
}

// waitReady waits (2 minutes at most) until the daemon answers /readyz:
// every file loaded.
func (d *daemon) waitReady() {
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		if resp, err := d.http.Get("http://d/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			fatalf("the daemon in %s is not ready after 2 minutes", d.state)
		}
	}
}

// stop stops the daemon and its programs (--stop-on-exit) and waits; a
// second call does nothing.
func (d *daemon) stop() {
	if d.stopped {
		return
	}
	d.stopped = true
	d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		d.cmd.Process.Kill()
		<-done
	}
}

// metric returns the sum of a metric's samples whose labels contain all
// the given label pairs, from /metrics over the unix socket.
func (d *daemon) metric(name string, labels ...string) (float64, bool) {
	resp, err := d.http.Get("http://d/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sum, found := 0.0, false
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, name) || (len(l) > len(name) && l[len(name)] != '{' && l[len(name)] != ' ') {
			continue
		}
		ok := true
		for _, lb := range labels {
			if !strings.Contains(l, lb) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		f := strings.Fields(l)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
			found = true
		}
	}
	return sum, found
}

// rssMiB is the daemon's resident memory.
func (d *daemon) rssMiB() float64 { return rssMiBOf(d.cmd.Process.Pid) }

// cpuSeconds is the daemon's user+system CPU time so far.
func (d *daemon) cpuSeconds() float64 { return cpuSecondsOf(d.cmd.Process.Pid) }

// cpuSecondsOf is a process's user+system CPU time so far.
func cpuSecondsOf(pid int) float64 {
	// The run time of every thread in nanoseconds (schedstat), where
	// /proc/PID/stat counts 10 ms ticks: an idle daemon uses a few ticks
	// a minute, too coarse to compare.
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	var ns float64
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
			v, _ := strconv.ParseFloat(f[0], 64)
			ns += v
		}
	}
	if ns > 0 {
		return ns / 1e9
	}
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}

// waitFiles polls until every resource file under dir contains want,
// returning when that first held. Files that already showed it are not
// read again, so the poll itself costs little CPU beside the daemon.
func waitFiles(dir, want string, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	var pending []string
	filepath.WalkDir(dir, func(p string, de os.DirEntry, err error) error {
		if err == nil && !de.IsDir() && strings.HasSuffix(p, ".yaml") && !strings.HasPrefix(de.Name(), ".") {
			pending = append(pending, p)
		}
		return nil
	})
	for {
		var still []string
		for i, p := range pending {
			b, _ := os.ReadFile(p)
			if !bytes.Contains(b, []byte(want)) {
				still = pending[i:] // the rest is checked next round
				break
			}
		}
		pending = still
		if len(pending) == 0 {
			return time.Now(), nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("%d files do not show %q after %s", len(pending), want, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(p * float64(len(s)-1))
	return s[i]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }

func writeProcess(dir, name, cmd, extra string) {
	content := fmt.Sprintf("apiVersion: reconciled.dev/v1alpha1\nkind: Process\nmetadata:\n  name: %s\nspec:\n  command: %s\n%s", name, cmd, extra)
	check(os.WriteFile(filepath.Join(dir, name+".yaml"), []byte(content), 0o644))
}

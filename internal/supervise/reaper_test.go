// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

//go:build linux

package supervise

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestReaperKilledBySignal(t *testing.T) {
	r := newReaper(t)
	p := start(t, r, SpawnOptions{Argv: []string{"sleep", "30"}})
	if err := SignalGroup(p.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	st := p.wait(t)
	want := ExitStatus{Known: true, ExitCode: -1, Signal: syscall.SIGKILL, At: st.At}
	if st != want {
		t.Errorf("exit status = %+v, want %+v", st, want)
	}
	if got, want := st.String(), "signal: killed (SIGKILL)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if GroupAlive(p.Pid) {
		t.Errorf("GroupAlive(%d) = true after the only member was reaped", p.Pid)
	}
	// The group is gone: not an error.
	if err := SignalGroup(p.Pid, syscall.SIGTERM); err != nil {
		t.Errorf("SignalGroup on a gone group: %v", err)
	}
}

func TestSignalGroupKillsWholeGroup(t *testing.T) {
	r := newReaper(t)
	p := start(t, r, SpawnOptions{Argv: []string{"/bin/sh", "-c", "sleep 30 & sleep 30"}})
	var members []int
	eventually(t, "two sleeps in the process group", func() bool {
		members = groupMembers(t, p.Pid)
		n := 0
		for _, pid := range members {
			if exe, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe"); filepath.Base(exe) == "sleep" {
				n++
			}
		}
		return n == 2
	})
	if !GroupAlive(p.Pid) {
		t.Fatal("GroupAlive = false for a running group")
	}
	if err := SignalGroup(p.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if st := p.wait(t); st.Signal != syscall.SIGKILL {
		t.Errorf("leader's exit status = %v, want killed by SIGKILL", st)
	}
	// The background sleep was orphaned; init reaps it in its own time.
	eventually(t, "the process group to disappear", func() bool { return !GroupAlive(p.Pid) })
	for _, pid := range members {
		if s := procState(pid); s != 0 && s != 'Z' {
			t.Errorf("group member %d still running (state %c)", pid, s)
		}
	}
}

func TestSignalGroupRefusesDangerousGroups(t *testing.T) {
	for _, pgid := range []int{-5, 0, 1, syscall.Getpgrp()} {
		if err := SignalGroup(pgid, syscall.Signal(0)); err == nil {
			t.Errorf("SignalGroup(%d) succeeded, want error", pgid)
		}
	}
	for _, pgid := range []int{-5, 0, 1} {
		if GroupAlive(pgid) {
			t.Errorf("GroupAlive(%d) = true", pgid)
		}
	}
}

func TestReaperManyChildren(t *testing.T) {
	const (
		n       = 200
		workers = 8
	)
	r := newReaper(t)
	// Every child blocks reading the pipe on fd 3 until the write end is
	// closed, so that all of them are alive at once.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	defer pr.Close()

	type result struct {
		i  int
		st ExitStatus
	}
	results := make(chan result, n)
	before := runtime.NumGoroutine()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	pids := make([]int, n)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				c, err := Spawn(SpawnOptions{
					Argv:       []string{"/bin/sh", "-c", `read x <&3; exit "$1"`, "sh", strconv.Itoa(i)},
					ExtraFiles: []*os.File{pr},
				})
				if err != nil {
					errs <- err
					continue
				}
				pids[i] = c.Pid
				if err := r.WatchChild(c.Pid, func(st ExitStatus) { results <- result{i, st} }); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, pid := range pids {
			if pid != 0 && GroupAlive(pid) {
				_ = SignalGroup(pid, syscall.SIGKILL)
			}
		}
	})
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := r.Len(); got != n {
		t.Errorf("Len() = %d, want %d", got, n)
	}
	if during := runtime.NumGoroutine(); during > before+10 {
		t.Errorf("goroutines grew from %d to %d while watching %d children", before, during, n)
	}

	pw.Close() // EOF: every child exits with its index
	deadline := time.After(3 * timeout)
	seen := make([]bool, n)
	for range n {
		select {
		case res := <-results:
			if seen[res.i] {
				t.Errorf("child %d reported twice", res.i)
			}
			seen[res.i] = true
			if !res.st.Known || res.st.Signal != 0 || res.st.ExitCode != res.i {
				t.Errorf("child %d: exit status %v, want exit status %d", res.i, res.st, res.i)
			}
		case <-deadline:
			t.Fatalf("not all children were reaped in time; Len() = %d", r.Len())
		}
	}
	if got := r.Len(); got != 0 {
		t.Errorf("Len() = %d after all exits, want 0", got)
	}
	for _, pid := range pids {
		if procState(pid) == 'Z' {
			t.Errorf("child %d left as a zombie", pid)
		}
	}
}

func TestReaperAlreadyExited(t *testing.T) {
	r := newReaper(t)
	c, err := Spawn(SpawnOptions{Argv: []string{"/bin/sh", "-c", "exit 7"}})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the child to become a zombie", func() bool { return procState(c.Pid) == 'Z' })
	exited := make(chan ExitStatus, 1)
	if err := r.WatchChild(c.Pid, func(st ExitStatus) { exited <- st }); err != nil {
		t.Fatal(err)
	}
	select {
	case st := <-exited:
		if !st.Known || st.ExitCode != 7 {
			t.Errorf("exit status = %v, want exit status 7", st)
		}
	case <-time.After(timeout):
		t.Fatal("no callback for a child that had already exited")
	}
	if s := procState(c.Pid); s == 'Z' {
		t.Error("child not reaped")
	}
}

func TestReaperAdoptedProcess(t *testing.T) {
	r := newReaper(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	// The shell starts a background sleep and exits: the sleep is then not
	// our child, as after a daemon restart.
	sh := start(t, r, SpawnOptions{Argv: []string{"/bin/sh", "-c", `sleep 30 & echo $! > "$1"`, "sh", pidFile}})
	if st := sh.wait(t); !st.Success() {
		t.Fatalf("shell exit status = %v", st)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(readFile(t, pidFile)))
	if err != nil {
		t.Fatal(err)
	}
	startTime, err := ProcStartTime(pid)
	if err != nil {
		t.Fatal(err)
	}

	if fd, err := OpenPidFD(pid, startTime+1); !errors.Is(err, ErrProcessGone) {
		if err == nil {
			syscall.Close(fd)
		}
		t.Errorf("OpenPidFD with a wrong start time: error %v, want ErrProcessGone", err)
	}

	fd, err := OpenPidFD(pid, startTime)
	if err != nil {
		t.Fatal(err)
	}
	exited := make(chan ExitStatus, 1)
	if err := r.Watch(pid, fd, func(st ExitStatus) { exited <- st }); err != nil {
		t.Fatal(err)
	}
	if !GroupAlive(sh.Pid) {
		t.Fatal("GroupAlive = false while the adopted sleep runs")
	}
	if err := SignalGroup(sh.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case st := <-exited:
		want := ExitStatus{Known: false, ExitCode: -1, At: st.At}
		if st != want {
			t.Errorf("exit status = %+v, want %+v", st, want)
		}
		if got, want := st.String(), "exited (status unknown: adopted process)"; got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
	case <-time.After(timeout):
		t.Fatal("no callback for the adopted process")
	}
	if got := r.Len(); got != 0 {
		t.Errorf("Len() = %d, want 0", got)
	}
}

func TestOpenPidFDGone(t *testing.T) {
	r := newReaper(t)
	p := start(t, r, SpawnOptions{Argv: []string{"/bin/true"}})
	p.wait(t)
	if fd, err := OpenPidFD(p.Pid, p.StartTime); !errors.Is(err, ErrProcessGone) {
		if err == nil {
			syscall.Close(fd)
		}
		t.Errorf("OpenPidFD of a reaped child: error %v, want ErrProcessGone", err)
	}
	if _, err := ProcStartTime(p.Pid); !errors.Is(err, ErrProcessGone) {
		t.Errorf("ProcStartTime of a reaped child: error %v, want ErrProcessGone", err)
	}
}

func TestReaperWatchFromCallback(t *testing.T) {
	r := newReaper(t)
	restarted := make(chan ExitStatus, 1)
	errs := make(chan error, 1)
	// Start another program from the callback, as a supervisor restarting
	// a program does.
	first, err := Spawn(SpawnOptions{Argv: []string{"/bin/true"}})
	if err != nil {
		t.Fatal(err)
	}
	err = r.WatchChild(first.Pid, func(ExitStatus) {
		c, err := Spawn(SpawnOptions{Argv: []string{"/bin/sh", "-c", "exit 5"}})
		if err != nil {
			errs <- err
			return
		}
		if err := r.WatchChild(c.Pid, func(st ExitStatus) { restarted <- st }); err != nil {
			errs <- err
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case st := <-restarted:
		if st.ExitCode != 5 {
			t.Errorf("restarted program: exit status %v, want exit status 5", st)
		}
	case err := <-errs:
		t.Fatal(err)
	case <-time.After(timeout):
		t.Fatal("restarted program not reaped")
	}
}

func TestReaperClose(t *testing.T) {
	r, err := NewReaper()
	if err != nil {
		t.Fatal(err)
	}
	c, err := Spawn(SpawnOptions{Argv: []string{"sleep", "30"}})
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	if err := r.WatchChild(c.Pid, func(ExitStatus) { calls.Add(1) }); err != nil {
		t.Fatal(err)
	}
	if got := r.Len(); got != 1 {
		t.Errorf("Len() = %d, want 1", got)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if got := r.Len(); got != 0 {
		t.Errorf("Len() after Close = %d, want 0", got)
	}

	// The process outlives the reaper and is not reaped by it.
	if err := SignalGroup(c.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the child to become a zombie", func() bool { return procState(c.Pid) == 'Z' })
	if n := calls.Load(); n != 0 {
		t.Errorf("callback ran %d times after Close", n)
	}
	if _, err := syscall.Wait4(c.Pid, nil, 0, nil); err != nil {
		t.Errorf("reap child: %v", err)
	}

	fd, err := OpenPidFD(os.Getpid(), mustStartTime(t, os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Watch(os.Getpid(), fd, func(ExitStatus) {}); !errors.Is(err, ErrReaperClosed) {
		t.Errorf("Watch after Close: error %v, want ErrReaperClosed", err)
	}
}

func TestReaperCloseWaitsForCallback(t *testing.T) {
	r, err := NewReaper()
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	var finished atomic.Bool
	c, err := Spawn(SpawnOptions{Argv: []string{"/bin/true"}})
	if err != nil {
		t.Fatal(err)
	}
	err = r.WatchChild(c.Pid, func(ExitStatus) {
		close(entered)
		<-release
		finished.Store(true)
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-entered:
	case <-time.After(timeout):
		t.Fatal("callback did not run")
	}
	closed := make(chan error)
	go func() { closed <- r.Close() }()
	close(release)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if !finished.Load() {
		t.Error("Close returned while a callback was running")
	}
}

func TestReaperWatchErrors(t *testing.T) {
	r := newReaper(t)
	if err := r.Watch(1, -1, func(ExitStatus) {}); err == nil {
		t.Error("Watch with pidfd -1 succeeded")
	}
	fd, err := OpenPidFD(os.Getpid(), mustStartTime(t, os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Watch(os.Getpid(), fd, nil); err == nil {
		t.Error("Watch with a nil callback succeeded")
	}

	p := start(t, r, SpawnOptions{Argv: []string{"sleep", "30"}})
	if err := r.WatchChild(p.Pid, func(ExitStatus) {}); err == nil {
		t.Error("WatchChild of an already watched child succeeded")
	}
	if err := r.WatchChild(0, func(ExitStatus) {}); err == nil {
		t.Error("WatchChild of pid 0 succeeded")
	}
	// The first watch is intact.
	if err := SignalGroup(p.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if st := p.wait(t); st.Signal != syscall.SIGKILL {
		t.Errorf("exit status = %v, want killed by SIGKILL", st)
	}
}

func mustStartTime(t testing.TB, pid int) uint64 {
	t.Helper()
	st, err := ProcStartTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestReaperLeavesOtherChildrenAlone runs os/exec commands, which wait for
// their own children, while the reaper reaps its own: each side gets its
// own exit statuses, including when someone else's zombie is first in line.
func TestReaperLeavesOtherChildrenAlone(t *testing.T) {
	r := newReaper(t)
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		wg.Go(func() {
			cmd := exec.Command("/bin/sh", "-c", "exit "+strconv.Itoa(i%3))
			err := cmd.Run()
			if got := cmd.ProcessState.ExitCode(); got != i%3 {
				errs <- fmt.Errorf("os/exec command %d: exit code %d (%v), want %d", i, got, err, i%3)
			}
		})
	}
	procs := make([]*testProc, n)
	for i := range n {
		procs[i] = start(t, r, SpawnOptions{Argv: []string{"/bin/sh", "-c", "exit " + strconv.Itoa(10+i)}})
	}
	for i, p := range procs {
		if st := p.wait(t); !st.Known || st.ExitCode != 10+i {
			t.Errorf("supervised child %d: %v, want exit status %d", i, st, 10+i)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := r.Len(); got != 0 {
		t.Errorf("Len() = %d after every child was reaped, want 0", got)
	}
}

// TestSpawnHoldsNoDescriptor: the daemon keeps no descriptor per running
// program, so starting a program does not get slower with the number of
// programs running.
func TestSpawnHoldsNoDescriptor(t *testing.T) {
	r := newReaper(t)
	before := openFDs(t)
	for range 10 {
		start(t, r, SpawnOptions{Argv: []string{"sleep", "30"}})
	}
	if after := openFDs(t); after != before {
		t.Errorf("open descriptors: %d before starting 10 programs, %d after", before, after)
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	des, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(des)
}

// A child asked to exit (ExpectExit) is reaped by pid; a child that exits
// on its own at the same moment, its SIGCHLD merged with the other's, is
// still reported (by the deferred scan of every child).
func TestReaperExpectedExit(t *testing.T) {
	r := newReaper(t)
	r.ExpectExit(1)       // not a child: ignored
	r.ExpectExit(1 << 22) // no such process: ignored
	for round := range 20 {
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		expected := start(t, r, SpawnOptions{Argv: []string{"sleep", "30"}})
		crashing := start(t, r, SpawnOptions{Argv: []string{"/bin/sh", "-c", `read x <&3; exit 7`}, ExtraFiles: []*os.File{pr}})
		pr.Close()
		r.ExpectExit(expected.Pid)
		// Both exit together: the crash (its pipe closed) and the stop.
		pw.Close()
		if err := SignalGroup(expected.Pid, syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if st := expected.wait(t); st.Signal != syscall.SIGTERM {
			t.Fatalf("round %d: expected exit reported as %+v", round, st)
		}
		if st := crashing.wait(t); st.ExitCode != 7 {
			t.Fatalf("round %d: the exit on its own reported as %+v", round, st)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.expected) != 0 || len(r.children) != 0 {
		t.Fatalf("left behind: %d expected, %d children", len(r.expected), len(r.children))
	}
}

// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

//go:build linux

package supervise

import (
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/reconciled/reconciled/test/fixtures/waitfor"
)

// TestMain lets the test binary act as the socket activation shim of
// SpawnOptions.SetListenPID, as the daemon's binary does.
func TestMain(m *testing.M) {
	RunListenShim()
	os.Exit(m.Run())
}

// timeout bounds every wait in these tests; it is generous because the
// machine may be slow and busy (race detector, two cores).
const timeout = 10 * time.Second

// newReaper returns a Reaper closed when the test ends.
func newReaper(t testing.TB) *Reaper {
	t.Helper()
	r, err := NewReaper()
	if err != nil {
		t.Fatalf("NewReaper: %v", err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return r
}

// testProc is a spawned child watched by a Reaper.
type testProc struct {
	Child
	exit chan ExitStatus
}

// start spawns o, watches the child with r and kills its process group when
// the test ends.
func start(t testing.TB, r *Reaper, o SpawnOptions) *testProc {
	t.Helper()
	c, err := Spawn(o)
	if err != nil {
		t.Fatalf("Spawn(%q): %v", o.Argv, err)
	}
	t.Cleanup(func() {
		if GroupAlive(c.Pid) {
			_ = SignalGroup(c.Pid, syscall.SIGKILL)
		}
	})
	p := &testProc{Child: c, exit: make(chan ExitStatus, 1)}
	if err := r.WatchChild(c.Pid, func(st ExitStatus) { p.exit <- st }); err != nil {
		t.Fatalf("Watch(%d): %v", c.Pid, err)
	}
	return p
}

// wait returns the exit status of p, failing the test after timeout.
func (p *testProc) wait(t testing.TB) ExitStatus {
	t.Helper()
	select {
	case st := <-p.exit:
		return st
	case <-time.After(timeout):
		t.Fatalf("pid %d did not exit within %v", p.Pid, timeout)
		return ExitStatus{}
	}
}

// eventually polls cond until it returns true, failing the test after
// timeout.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	waitfor.Within(t, timeout, what, cond)
}

// procState returns the state letter of pid from /proc/<pid>/stat, or 0 when
// the process does not exist.
func procState(pid int) byte {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	for i := len(data) - 1; i >= 0; i-- {
		if data[i] == ')' && i+2 < len(data) {
			return data[i+2]
		}
	}
	return 0
}

// groupMembers returns the pids of the live (not zombie) processes in
// process group pgid.
func groupMembers(t testing.TB, pgid int) []int {
	t.Helper()
	names, err := readDirNames("/proc")
	if err != nil {
		t.Fatalf("read /proc: %v", err)
	}
	var pids []int
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil {
			continue
		}
		info, err := readStat(pid)
		if err != nil || info.Pgid != pgid {
			continue
		}
		if s := procState(pid); s != 0 && s != 'Z' {
			pids = append(pids, pid)
		}
	}
	return pids
}

func readDirNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

// readFile returns the contents of path, failing the test on error.
func readFile(t testing.TB, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

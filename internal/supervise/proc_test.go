// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

//go:build linux

package supervise

import (
	"errors"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	const tail = " S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654321 8192 100"
	tests := []struct {
		name      string
		stat      string
		wantStart uint64
		wantPgid  int
		wantErr   bool
	}{
		{name: "plain", stat: "123 (sleep)" + tail + "\n", wantStart: 987654321, wantPgid: 4242},
		{name: "spaces and parentheses in comm", stat: "123 (a b) c) (d)" + tail, wantStart: 987654321, wantPgid: 4242},
		{name: "empty comm", stat: "123 ()" + tail, wantStart: 987654321, wantPgid: 4242},
		{name: "no comm", stat: "123 sleep S 1", wantErr: true},
		{name: "truncated", stat: "123 (sleep) S 1 4242 4242", wantErr: true},
		{name: "bad start time", stat: "123 (x) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 nope 1 2", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start, pgid, _, err := parseStat([]byte(tt.stat))
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseStat error = %v, want error %v", err, tt.wantErr)
			}
			if start != tt.wantStart || pgid != tt.wantPgid {
				t.Errorf("parseStat = (%d, %d), want (%d, %d)", start, pgid, tt.wantStart, tt.wantPgid)
			}
		})
	}
}

func TestProcStartTime(t *testing.T) {
	st, err := ProcStartTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st == 0 {
		t.Error("start time of this process is 0")
	}
	if again := mustStartTime(t, os.Getpid()); again != st {
		t.Errorf("start time changed from %d to %d", st, again)
	}
	for _, pid := range []int{0, -1} {
		if _, err := ProcStartTime(pid); err == nil {
			t.Errorf("ProcStartTime(%d) succeeded", pid)
		}
	}
}

func TestOpenPidFDSelf(t *testing.T) {
	fd, err := OpenPidFD(os.Getpid(), mustStartTime(t, os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	flags, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_GETFD, 0)
	if errno != 0 {
		t.Fatal(errno)
	}
	if flags&syscall.FD_CLOEXEC == 0 {
		t.Error("pidfd is not close-on-exec")
	}
	if _, err := OpenPidFD(0, 1); err == nil || errors.Is(err, ErrProcessGone) {
		t.Errorf("OpenPidFD(0) error = %v, want an invalid pid error", err)
	}
}

func TestFindByEnvPrefix(t *testing.T) {
	r := newReaper(t)
	marker := "supervise-test-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	const key = "RECONCILED_SUPERVISE_TEST"
	p := start(t, r, SpawnOptions{Argv: []string{"sleep", "30"}, Env: []string{key + "=" + marker, "OTHER=x"}})
	// Near misses must not match.
	for _, env := range [][]string{{key + "=" + marker + "x"}, {"X" + key + "=" + marker}, {key + "=pre" + marker}} {
		start(t, r, SpawnOptions{Argv: []string{"sleep", "30"}, Env: env})
	}
	// The environment is readable once the child has exec'd.
	eventually(t, "the marked child to exec", func() bool {
		exe, _ := os.Readlink("/proc/" + strconv.Itoa(p.Pid) + "/exe")
		return exe != "" && exe != mustExecutable(t)
	})

	got, err := FindByEnvPrefix(key, marker)
	if err != nil {
		t.Fatal(err)
	}
	want := []ProcInfo{{Pid: p.Pid, StartTime: p.StartTime, Pgid: p.Pid, Ppid: os.Getpid()}}
	if len(got[""]) != 1 || got[""][0] != want[0] {
		t.Errorf("FindByEnvPrefix exact = %+v, want %+v", got[""], want)
	}
	// key=marker+"x" matches the prefix with rest "x"; the other near
	// misses (another key, another value prefix) do not match.
	if len(got) != 2 || len(got["x"]) != 1 {
		t.Errorf("FindByEnvPrefix = %+v, want entries for \"\" and \"x\" only", got)
	}
	if got, err := FindByEnvPrefix(key, "no-such-"+marker); err != nil || len(got) != 0 {
		t.Errorf("FindByEnvPrefix of an unused value = %v, %v; want nothing", got, err)
	}
	for _, bad := range []string{"", "A=B", "A\x00"} {
		if _, err := FindByEnvPrefix(bad, "v"); err == nil {
			t.Errorf("FindByEnvPrefix(%q) succeeded", bad)
		}
	}
}

func mustExecutable(t testing.TB) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

func TestRaiseFDLimit(t *testing.T) {
	var before syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &before); err != nil {
		t.Fatal(err)
	}
	got, err := RaiseFDLimit()
	if err != nil {
		t.Fatal(err)
	}
	var after syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &after); err != nil {
		t.Fatal(err)
	}
	if got != after.Cur {
		t.Errorf("RaiseFDLimit = %d, but the soft limit is %d", got, after.Cur)
	}
	if got < before.Cur || got+1 < after.Max {
		t.Errorf("RaiseFDLimit = %d; soft limit was %d, hard limit is %d", got, before.Cur, after.Max)
	}
}

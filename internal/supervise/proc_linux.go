// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package supervise

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrProcessGone is returned (wrapped) when a process no longer exists, or
// when its pid now belongs to a different process.
var ErrProcessGone = errors.New("process gone")

// ProcInfo identifies a running process.
type ProcInfo struct {
	// Pid is the process id.
	Pid int
	// StartTime is field 22 of /proc/<pid>/stat: when the process started,
	// in clock ticks since boot. Pid and StartTime together identify a
	// process across pid reuse.
	StartTime uint64
	// Pgid is the process group id.
	Pgid int
	// Ppid is the parent process id.
	Ppid int
}

// ProcStartTime reads the start time of process pid (field 22 of
// /proc/<pid>/stat, in clock ticks since boot). The error wraps ErrProcessGone
// when the process does not exist.
func ProcStartTime(pid int) (uint64, error) {
	info, err := readStat(pid)
	if err != nil {
		return 0, err
	}
	return info.StartTime, nil
}

// readStat reads the start time and process group of pid from /proc.
func readStat(pid int) (ProcInfo, error) {
	if pid <= 0 {
		return ProcInfo{}, fmt.Errorf("read /proc stat of pid %d: invalid pid", pid)
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			return ProcInfo{}, fmt.Errorf("pid %d: %w", pid, ErrProcessGone)
		}
		return ProcInfo{}, fmt.Errorf("read /proc stat of pid %d: %w", pid, err)
	}
	st, pgid, ppid, err := parseStat(data)
	if err != nil {
		return ProcInfo{}, fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
	}
	return ProcInfo{Pid: pid, StartTime: st, Pgid: pgid, Ppid: ppid}, nil
}

// ParentPid returns the parent of pid, from /proc/<pid>/stat.
func ParentPid(pid int) (int, error) {
	info, err := readStat(pid)
	return info.Ppid, err
}

// IsDescendant reports whether pid is ancestor or one of its descendants,
// following parents in /proc (at most 64 levels).
func IsDescendant(pid, ancestor int) bool {
	for range 64 {
		if pid == ancestor {
			return true
		}
		if pid <= 1 {
			return false
		}
		ppid, err := ParentPid(pid)
		if err != nil {
			return false
		}
		pid = ppid
	}
	return false
}

// parseStat extracts the parent (field 4), process group (field 5) and
// start time (field 22)
// from the contents of a /proc/<pid>/stat file. Field 2, the command name in
// parentheses, may itself contain spaces and parentheses, so fields are
// counted from the last ')'.
func parseStat(data []byte) (startTime uint64, pgid, ppid int, err error) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, 0, 0, errors.New("no command name")
	}
	// fields[0] is field 3 (state), so field N is fields[N-3].
	fields := strings.Fields(string(data[i+1:]))
	if len(fields) < 22-2 {
		return 0, 0, 0, fmt.Errorf("only %d fields after the command name", len(fields))
	}
	ppid, err = strconv.Atoi(fields[4-3])
	if err != nil {
		return 0, 0, 0, fmt.Errorf("parent: %w", err)
	}
	pgid, err = strconv.Atoi(fields[5-3])
	if err != nil {
		return 0, 0, 0, fmt.Errorf("process group: %w", err)
	}
	startTime, err = strconv.ParseUint(fields[22-3], 10, 64)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("start time: %w", err)
	}
	return startTime, pgid, ppid, nil
}

// OpenPidFD returns a pidfd (close-on-exec) for process pid, provided that
// the process still has start time startTime, which protects against the pid
// having been reused by another process. The error wraps ErrProcessGone when
// the process does not exist or its start time differs.
//
// The pidfd is opened before the start time is checked: if the check passes,
// the process that had pid when the pidfd was opened is still alive (or a
// zombie) with that pid, so the pidfd refers to it.
func OpenPidFD(pid int, startTime uint64) (int, error) {
	if pid <= 0 {
		return -1, fmt.Errorf("open pidfd for pid %d: invalid pid", pid)
	}
	fd, err := pidfdOpen(pid)
	if err != nil {
		if err == syscall.ESRCH {
			return -1, fmt.Errorf("open pidfd for pid %d: %w", pid, ErrProcessGone)
		}
		return -1, fmt.Errorf("open pidfd for pid %d: %w", pid, err)
	}
	st, err := ProcStartTime(pid)
	if err != nil {
		syscall.Close(fd)
		return -1, fmt.Errorf("open pidfd: %w", err)
	}
	if st != startTime {
		syscall.Close(fd)
		return -1, fmt.Errorf("open pidfd for pid %d: start time is %d, not %d (pid reused): %w",
			pid, st, startTime, ErrProcessGone)
	}
	return fd, nil
}

// FindByEnvPrefix scans /proc/*/environ (skipping unreadable entries) for
// processes with an environment entry key=VALUE where VALUE starts with
// prefix, and returns them keyed by the rest of VALUE, each list sorted by
// pid. The daemon uses it on start to find programs it started whose
// adoption record was never written.
//
// The scan reads one file per process on the machine, so it is meant for
// start-up, not for polling.
func FindByEnvPrefix(key, prefix string) (map[string][]ProcInfo, error) {
	if key == "" || strings.ContainsAny(key, "=\x00") || strings.ContainsRune(prefix, 0) {
		return nil, fmt.Errorf("find by environment: invalid key %q or prefix %q", key, prefix)
	}
	dir, err := os.Open("/proc")
	if err != nil {
		return nil, fmt.Errorf("find by environment: %w", err)
	}
	names, err := dir.Readdirnames(-1)
	dir.Close()
	if err != nil {
		return nil, fmt.Errorf("find by environment: read /proc: %w", err)
	}
	needle := []byte("\x00" + key + "=" + prefix)
	var hay []byte
	found := map[string][]ProcInfo{}
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil || pid <= 0 {
			continue
		}
		env, err := os.ReadFile("/proc/" + name + "/environ")
		if err != nil || len(env) == 0 {
			continue
		}
		// Delimit every entry with NULs on both sides so only whole
		// entries match.
		hay = append(append(append(hay[:0], 0), env...), 0)
		at := bytes.Index(hay, needle)
		if at < 0 {
			continue
		}
		rest := hay[at+len(needle):]
		rest = rest[:bytes.IndexByte(rest, 0)]
		info, err := readStat(pid)
		if err != nil {
			continue // exited meanwhile
		}
		found[string(rest)] = append(found[string(rest)], info)
	}
	for _, l := range found {
		slices.SortFunc(l, func(a, b ProcInfo) int { return a.Pid - b.Pid })
	}
	return found, nil
}

// RaiseFDLimit raises the soft RLIMIT_NOFILE limit of the daemon to the hard
// limit and returns the new soft limit.
//
// The Go runtime already raises the soft limit to one below the hard limit at
// start-up, and remembers to restore the original soft limit in the children
// that syscall.ForkExec starts, but only while the limit stays at that value.
// When RaiseFDLimit finds the soft limit already at hard-1 it therefore leaves
// it alone and returns hard-1, so that supervised programs keep starting with
// the system's default soft limit (old programs misbehave with a huge one).
func RaiseFDLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("get RLIMIT_NOFILE: %w", err)
	}
	if lim.Max == 0 || lim.Cur >= lim.Max-1 {
		return lim.Cur, nil
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("set RLIMIT_NOFILE soft limit to %d: %w", lim.Max, err)
	}
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("get RLIMIT_NOFILE: %w", err)
	}
	return lim.Cur, nil
}

// CopyFD returns a copy, in the daemon, of file descriptor fd of the process
// pidfd refers to (pidfd_getfd(2), Linux 5.6; close-on-exec): how a
// restarted daemon takes back the sockets an adopted program holds.
func CopyFD(pidfd, fd int) (*os.File, error) {
	nfd, err := unix.PidfdGetfd(pidfd, fd, 0)
	if err != nil {
		return nil, fmt.Errorf("copy descriptor %d of the program (pidfd_getfd): %w", fd, err)
	}
	return os.NewFile(uintptr(nfd), fmt.Sprintf("fd %d of the program", fd)), nil
}

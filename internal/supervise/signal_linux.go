// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package supervise

import (
	"fmt"
	"strconv"
	"syscall"
)

// signalNames maps signals to their canonical names, without aliases.
var signalNames = map[syscall.Signal]string{
	syscall.SIGHUP:    "SIGHUP",
	syscall.SIGINT:    "SIGINT",
	syscall.SIGQUIT:   "SIGQUIT",
	syscall.SIGILL:    "SIGILL",
	syscall.SIGTRAP:   "SIGTRAP",
	syscall.SIGABRT:   "SIGABRT",
	syscall.SIGBUS:    "SIGBUS",
	syscall.SIGFPE:    "SIGFPE",
	syscall.SIGKILL:   "SIGKILL",
	syscall.SIGUSR1:   "SIGUSR1",
	syscall.SIGSEGV:   "SIGSEGV",
	syscall.SIGUSR2:   "SIGUSR2",
	syscall.SIGPIPE:   "SIGPIPE",
	syscall.SIGALRM:   "SIGALRM",
	syscall.SIGTERM:   "SIGTERM",
	syscall.SIGCHLD:   "SIGCHLD",
	syscall.SIGCONT:   "SIGCONT",
	syscall.SIGSTOP:   "SIGSTOP",
	syscall.SIGTSTP:   "SIGTSTP",
	syscall.SIGTTIN:   "SIGTTIN",
	syscall.SIGTTOU:   "SIGTTOU",
	syscall.SIGURG:    "SIGURG",
	syscall.SIGXCPU:   "SIGXCPU",
	syscall.SIGXFSZ:   "SIGXFSZ",
	syscall.SIGVTALRM: "SIGVTALRM",
	syscall.SIGPROF:   "SIGPROF",
	syscall.SIGWINCH:  "SIGWINCH",
	syscall.SIGIO:     "SIGIO",
	syscall.SIGPWR:    "SIGPWR",
	syscall.SIGSYS:    "SIGSYS",
}

// SignalName returns the name of sig in "SIGTERM" style, "" for 0, and the
// decimal number for signals without a name (such as real-time signals), so
// that v1alpha1.ParseSignalName accepts every result.
func SignalName(sig syscall.Signal) string {
	if sig == 0 {
		return ""
	}
	if name, ok := signalNames[sig]; ok {
		return name
	}
	return strconv.Itoa(int(sig))
}

// SignalGroup sends sig to every process in process group pgid
// (kill(-pgid, sig)). A group that no longer exists (ESRCH) is not an error.
// It refuses pgid values below 2, for which kill(2) would signal the daemon's
// own group or every process, and the daemon's own process group.
func SignalGroup(pgid int, sig syscall.Signal) error {
	if pgid <= 1 {
		return fmt.Errorf("signal process group %d: invalid process group", pgid)
	}
	if pgid == syscall.Getpgrp() {
		return fmt.Errorf("signal process group %d: refusing to signal the daemon's own process group", pgid)
	}
	if err := syscall.Kill(-pgid, sig); err != nil && err != syscall.ESRCH {
		return fmt.Errorf("signal process group %d with %s: %w", pgid, SignalName(sig), err)
	}
	return nil
}

// GroupAlive reports whether any process in group pgid still exists
// (kill(-pgid, 0)). Zombies count until their parent reaps them; members
// orphaned by the group leader's exit are reaped by init or a subreaper.
func GroupAlive(pgid int) bool {
	if pgid <= 1 {
		return false
	}
	err := syscall.Kill(-pgid, 0)
	return err == nil || err == syscall.EPERM
}

// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package supervise is the low-level operating-system layer of the process
// supervisor: it starts programs (Spawn), learns when they end (Reaper), finds
// and re-adopts programs left running by a previous daemon instance
// (OpenPidFD, ProcStartTime, FindByEnv) and signals their process groups
// (SignalGroup, GroupAlive).
//
// The package is built for supervising thousands of programs from one daemon
// without a goroutine or OS thread per program: programs are started with
// syscall.ForkExec rather than os/exec (which needs a blocked Wait per child),
// and a single Reaper goroutine learns of every exit: SIGCHLD and waitid for
// our own children (no descriptor per child, which would make every fork and
// exec slower), pidfds in one epoll set for adopted processes.
//
// Supervised programs are deliberately not tied to the daemon: they run in
// their own process group, their standard input is /dev/null and their
// standard output and error go straight to files, so they survive the daemon
// exiting or being killed, and a restarted daemon can adopt them again by pid
// and start time.
//
// Everything except this documentation is Linux-only (it needs pidfd_open,
// CLONE_PIDFD, waitid(P_PIDFD) and epoll, i.e. Linux 5.4 or newer).
package supervise

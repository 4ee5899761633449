// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package supervise

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// listenShimArg0 is the argv[0] under which a binary calling RunListenShim
// acts as the shim of SpawnOptions.SetListenPID.
const listenShimArg0 = "reconciled-listen-pid"

// selfExe is the daemon's own binary as the child sees it between fork and
// exec: the magic link reaches the file even when its folder is closed to
// the program's user, or when the file was replaced on disk since.
const selfExe = "/proc/self/exe"

// RunListenShim must be the first call in main of every binary that spawns
// programs with SetListenPID. In a process started as such a shim it adds
// LISTEN_PID (its own pid, which exec keeps) to the environment and execs
// the program, never returning; everywhere else it returns at once.
//
// systemd sets LISTEN_PID between fork and exec, where Go cannot run code;
// sd_listen_fds(3), pystemd and go-systemd ignore the sockets unless
// LISTEN_PID equals their pid, so the program is reached through this
// second exec instead.
func RunListenShim() {
	if len(os.Args) < 3 || os.Args[0] != listenShimArg0 {
		return
	}
	env := append(os.Environ(), "LISTEN_PID="+strconv.Itoa(os.Getpid()))
	err := syscall.Exec(os.Args[1], os.Args[2:], env)
	// Only the program's log sees this; the daemon sees exit status 127,
	// as from a shell that could not run a command.
	fmt.Fprintf(os.Stderr, "reconciled: socket activation: exec %s: %v\n", os.Args[1], err)
	os.Exit(127)
}

// listenShimArgv returns the argv of the shim that runs the program at path
// with argv.
func listenShimArgv(path string, argv []string) []string {
	return append([]string{listenShimArg0, path}, argv...)
}

// withoutListenPID drops LISTEN_PID entries from env: the shim appends the
// right one, and getenv(3) would find an earlier one first.
func withoutListenPID(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "LISTEN_PID=") {
			out = append(out, kv)
		}
	}
	return out
}

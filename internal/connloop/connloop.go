// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package connloop is a client that keeps connecting to a server while it
// kills the server again and again, and counts what a user of the server
// would have seen: answers, refused connections, broken ones. The tests of
// socket activation and hack/bench's sockets scenario measure with it (run
// as `listenprog client`, in the server's pid namespace).
package connloop

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Result is what a Run saw; it is printed as JSON by `listenprog client`.
type Result struct {
	// OK counts answered requests.
	OK int `json:"ok"`
	// Refused counts connections refused (ECONNREFUSED, or ENOENT for a
	// unix socket whose file is gone): nobody held the socket. The client
	// tries again every RetryInterval.
	Refused int `json:"refused"`
	// Broken counts connections that were accepted and then lost (reset,
	// closed without an answer): a server killed while it served one.
	Broken int `json:"broken"`
	// Kills is how many servers were killed.
	Kills int `json:"kills"`
	// Pids counts the distinct servers that answered.
	Pids int `json:"pids"`
	// MaxWaitMS is the longest request (connect to answer), which spans a
	// restart when the socket is held.
	MaxWaitMS float64 `json:"maxWaitMs"`
	// ElapsedMS is the whole run.
	ElapsedMS float64 `json:"elapsedMs"`
	// LastError is the last error seen, if any.
	LastError string `json:"lastError,omitempty"`
}

// String summarizes r for a log line.
func (r Result) String() string {
	return fmt.Sprintf("%d refused, %d broken, %d answered by %d servers, longest request %.0f ms, %.1f s",
		r.Refused, r.Broken, r.OK, r.Pids, r.MaxWaitMS, r.ElapsedMS/1000)
}

// RetryInterval is how soon the client tries again after a failed
// request, as a client that retries at once would see every gap.
const RetryInterval = 10 * time.Millisecond

// Run connects to address (network "tcp" or "unix") one connection after
// another, sends a line and reads the answer, whose first field is the
// server's pid. After each answer from a server not killed yet it kills
// that server with SIGKILL, kills times in all, and it stops at the first
// answer after the last kill, or after timeout.
func Run(network, address string, kills int, timeout time.Duration) Result {
	var r Result
	start := time.Now()
	killed := map[int]bool{}
	seen := map[int]bool{}
	for time.Since(start) < timeout {
		t0 := time.Now()
		pid, err := request(network, address)
		if err != nil {
			r.LastError = err.Error()
			if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
				r.Refused++
			} else {
				r.Broken++
			}
			time.Sleep(RetryInterval)
			continue
		}
		r.OK++
		r.MaxWaitMS = max(r.MaxWaitMS, float64(time.Since(t0).Microseconds())/1000)
		if !seen[pid] {
			seen[pid] = true
			r.Pids++
		}
		if killed[pid] {
			continue // answered from its queue before it died
		}
		if r.Kills == kills {
			break // the first answer after the last kill
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			r.LastError = fmt.Sprintf("kill %d: %v", pid, err)
			break
		}
		killed[pid] = true
		r.Kills++
	}
	r.ElapsedMS = float64(time.Since(start).Microseconds()) / 1000
	return r
}

// request makes one connection and returns the pid that answered.
func request(network, address string) (int, error) {
	c, err := net.DialTimeout(network, address, 30*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return 0, err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("answer: %w", err)
	}
	f := strings.Fields(line)
	if len(f) == 0 {
		return 0, fmt.Errorf("answer %q", line)
	}
	return strconv.Atoi(f[0])
}

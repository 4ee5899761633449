// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package probe

import (
	"context"
	"errors"
	"io"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/reconciled/reconciled/apis/v1alpha1"
)

// waitDelay bounds how long an exec probe waits for its output pipe after
// the command exited or was killed (a detached grandchild may hold it).
const waitDelay = time.Second

// keepOutput is how much command output is kept before trimming.
const keepOutput = 4096

// probeExec runs the command in its own process group; exit status 0 is OK.
// On timeout the whole group is killed. The combined output is the Message.
func (p *Prober) probeExec(ctx context.Context, c *v1alpha1.ExecCheck, start time.Time) Result {
	if len(c.Command) == 0 {
		return Result{Reason: ReasonError, Message: "empty command"}
	}
	out := &LimitedBuffer{Max: keepOutput}
	err := Run(ctx, c.Command, out, out)
	r := Result{Latency: time.Since(start), Message: out.String()}
	switch {
	case err == nil:
		r.OK = true
		return r
	case ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		r.Reason = ReasonTimeout
		if r.Message == "" {
			r.Message = "killed after timeout: " + err.Error()
		}
	case ctx.Err() != nil:
		r.Reason = ReasonError
		if r.Message == "" {
			r.Message = "canceled: " + err.Error()
		}
	default:
		r.Reason = ReasonExecFailed
		if r.Message == "" {
			r.Message = err.Error()
		}
	}
	return r
}

// Run runs argv in its own process group until it exits or ctx is done,
// when the whole group is killed (a shell's children too). A detached
// grandchild holding the output open is waited for at most a second.
func Run(ctx context.Context, argv []string, stdout, stderr io.Writer) error {
	if len(argv) == 0 {
		return errors.New("empty command")
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// The child leads its own group (pgid == pid): kill all of it.
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = waitDelay
	cmd.Stdout, cmd.Stderr = stdout, stderr
	return cmd.Run()
}

// LimitedBuffer keeps the first Max bytes written and discards the rest.
type LimitedBuffer struct {
	mu  sync.Mutex
	Max int
	buf []byte
}

// Write implements io.Writer: it never fails, it drops what does not fit.
func (b *LimitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.Max - len(b.buf); room > 0 {
		b.buf = append(b.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// String returns what was kept.
func (b *LimitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

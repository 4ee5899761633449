// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package probe

import (
	"context"
	"errors"
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
	cmd := exec.CommandContext(ctx, c.Command[0], c.Command[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// The child leads its own group (pgid == pid): kill all of it.
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = waitDelay
	out := &limitedBuffer{max: keepOutput}
	cmd.Stdout = out
	cmd.Stderr = out

	err := cmd.Run()
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

// limitedBuffer keeps the first max bytes written and discards the rest.
type limitedBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - len(b.buf); room > 0 {
		b.buf = append(b.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

//go:build unix

package receivers

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestExecLeftoverChild: a command that exits 0 but leaves a child holding
// stderr is still accepted, after execWaitDelay. The child waits on a FIFO
// the test then writes to, so that it ends with the test.
func TestExecLeftoverChild(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "release")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	r := newReceiver(t, execSpec("sh", "-c", `cat >/dev/null; (read x < "$0") & exit 0`, fifo), 0, Options{Timeout: 20 * time.Second})
	if err := r.Send(context.Background(), notification("n-1")); err != nil {
		t.Errorf("Send = %v, want nil", err)
	}
	f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("done\n"); err != nil {
		t.Fatal(err)
	}
}

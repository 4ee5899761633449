// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/reconciled/reconciled/test/fixtures"
)

// --state-dir on a full filesystem (a 2 MiB tmpfs filled up): the daemon
// keeps running and serving, programs keep being supervised, the writes
// that fail are reported in its log; when space comes back it carries on,
// and a restart reads its state back (adopting the same program): nothing
// on disk was left corrupt.
func TestStateDirFull(t *testing.T) {
	if os.Geteuid() != 0 {
		fixtures.SkipOrFail(t, "mounting a tmpfs needs root")
	}
	e := newEnv(t)
	if err := os.MkdirAll(e.state, 0o750); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", e.state).CombinedOutput(); err != nil {
		fixtures.SkipOrFail(t, fmt.Sprintf("cannot mount a tmpfs: %v %s", err, out))
	}
	t.Cleanup(func() {
		e.stop(syscall.SIGKILL)
		e.killPrograms()
		exec.Command("umount", "-l", e.state).Run()
	})
	e.start()
	e.write("a.yaml", sleeper(e, "a", ""))
	a := e.waitProcess("a", "Running", func(p process) bool { return p.Status.Phase == "Running" })

	// Fill the state dir to the last byte.
	filler := filepath.Join(e.state, "filler")
	exec.Command("dd", "if=/dev/zero", "of="+filler, "bs=64k").Run()

	// Work that writes state: a program that crashes (events, records)
	// and restarts, and a new program.
	e.write("b.yaml", strings.Replace(sleeper(e, "b", ""), "exec sleep 1000", "sleep 0.2; exit 1", 1))
	e.waitProcess("b", "restarted a few times on a full disk", func(p process) bool { return p.Status.Restarts >= 3 })
	if out := e.ctl("get", "process/a", "-o", "json"); !strings.Contains(out, `"phase": "Running"`) {
		t.Fatalf("a after the disk filled: %s", out)
	}
	if !strings.Contains(e.log.String(), "no space left on device") {
		t.Fatalf("the failed writes are not reported in the log:\n%s", e.log.String())
	}

	// Space comes back; the daemon carries on and a restart reads its
	// state back and adopts the same program.
	os.Remove(filler)
	e.write("c.yaml", sleeper(e, "c", ""))
	e.waitProcess("c", "Running after space came back", func(p process) bool { return p.Status.Phase == "Running" })
	e.stop(syscall.SIGKILL)
	e.start()
	e.waitProcess("a", "adopted after the restart", func(p process) bool { return p.Status.Phase == "Running" && p.Status.Pid == a.Status.Pid })
	if strings.Contains(e.log.String(), "corrupt") {
		t.Fatalf("state read back as corrupt:\n%s", e.log.String())
	}
}

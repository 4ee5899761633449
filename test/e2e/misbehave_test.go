// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Programs that misbehave: one that forks a child and exits (the child
// goes with it, so a restart never runs beside a leftover), and one that
// closes its stdout and stderr (it keeps running and is supervised as
// usual).
func TestMisbehavingPrograms(t *testing.T) {
	e := newEnv(t)
	e.start()
	childFile := filepath.Join(t.TempDir(), "child.pid")
	e.write("forker.yaml", `apiVersion: reconciled.dev/v1alpha1
kind: Process
metadata: {name: forker}
spec:
  command: ["/bin/sh", "-c", "sleep 1000 & echo $! > `+childFile+`; exit 3"]
  restartPolicy: Never
  env: {E2E_DIR: "`+e.dir+`"}
`)
	e.write("mute.yaml", `apiVersion: reconciled.dev/v1alpha1
kind: Process
metadata: {name: mute}
spec:
  command: ["/bin/sh", "-c", "exec >&- 2>&-; exec sleep 1000"]
  env: {E2E_DIR: "`+e.dir+`"}
`)
	e.waitProcess("forker", "Failed after its exit", func(p process) bool {
		return p.Status.LastExit != nil && p.Status.LastExit.ExitCode == 3
	})
	var child int
	e.eventually("the child's pid", func() bool {
		b, err := os.ReadFile(childFile)
		child, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && child > 0
	})
	e.eventually("the forked child killed with its group", func() bool { return !alive(child) })

	m := e.waitProcess("mute", "Running", func(p process) bool { return p.Status.Phase == "Running" })
	e.ctl("restart", "process/mute")
	e.waitProcess("mute", "restarted", func(p process) bool { return p.Status.Phase == "Running" && p.Status.Pid != m.Status.Pid })
	if alive(m.Status.Pid) {
		t.Fatalf("the first mute run (pid %d) is still alive", m.Status.Pid)
	}
}

// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reconciled/reconciled/resources"
	"github.com/reconciled/reconciled/test/fixtures/waitfor"
)

// kill -9 of the daemon in the middle of file churn (creates and edits of
// n Process files while it starts them and writes their status), then a
// restart: one copy of every program, every file still parses (no
// half-written status), and every status converges. n is 300 in make test,
// 10,000 with RECONCILED_TORTURE=1.
func TestTortureKill9DuringChurn(t *testing.T) {
	n, timeout := 300, waitTimeout
	if os.Getenv("RECONCILED_TORTURE") != "" {
		n, timeout = 10000, 10*time.Minute
	}
	e := newEnv(t)
	e.start()
	write := func(i, gen int) {
		name := fmt.Sprintf("c%05d", i)
		e.write(name+".yaml", strings.Replace(sleeper(e, name, ""), "exec sleep 1000", fmt.Sprintf("exec sleep %d", 1000+gen), 1))
	}
	for i := range n {
		write(i, 0)
	}
	// Edit half of them again while the daemon is busy, and kill it in
	// the middle.
	for i := 0; i < n; i += 2 {
		write(i, 1)
		if i == n/2 {
			e.stop(syscall.SIGKILL)
		}
	}
	e.start()
	start := time.Now()
	waitfor.Within(t, timeout, fmt.Sprintf("all %d Running with the latest spec and status written", n), func() bool {
		for i := range n {
			b, _ := os.ReadFile(filepath.Join(e.dir, fmt.Sprintf("c%05d.yaml", i)))
			s := string(b)
			want := "sleep 1000"
			if i%2 == 0 {
				want = "sleep 1001"
			}
			if !strings.Contains(s, "phase: Running") || !strings.Contains(s, want) {
				return false
			}
		}
		return true
	})
	// One copy of every program, however many times it was started.
	waitfor.Within(t, timeout, "one copy of each", func() bool { return e.copies() == n })
	// No half-written file: each parses and validates.
	for i := range n {
		path := filepath.Join(e.dir, fmt.Sprintf("c%05d.yaml", i))
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		docs, err := resources.DecodeFile(path, b)
		if err != nil || len(docs) != 1 || docs[0].Err() != nil {
			t.Fatalf("%s does not parse after the kill: %v %v\n%s", path, err, docs, b)
		}
	}
	figure(t, "TORTURE kill -9 during churn of %d files: converged %v after the restart, %d copies, all files parse",
		n, time.Since(start).Round(time.Millisecond), e.copies())
}

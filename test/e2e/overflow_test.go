// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Creating more files at once than the kernel's inotify queue holds: the
// daemon notices the overflow, rescans, and ends up with every resource.
// 20,000 files in make test, 50,000 with RECONCILED_TORTURE=1 (the queue
// holds 16,384 events by default).
func TestTortureInotifyOverflow(t *testing.T) {
	n := 20000
	if os.Getenv("RECONCILED_TORTURE") != "" {
		n = 50000
	}
	if b, err := os.ReadFile("/proc/sys/fs/inotify/max_queued_events"); err == nil {
		var q int
		fmt.Sscan(strings.TrimSpace(string(b)), &q)
		if q >= n {
			t.Skipf("the inotify queue holds %d events, more than the %d files", q, n)
		}
	}
	e := newEnv(t, "--status", "none") // no status writes: only the watch is under test
	e.start()
	sub := filepath.Join(e.dir, "nodes")
	os.MkdirAll(sub, 0o755)
	e.eventually("the new folder watched", func() bool {
		e.write("nodes/probe.yaml", "apiVersion: reconciled.dev/v1alpha1\nkind: PiNode\nmetadata: {name: probe}\nspec:\n  mac: \"dc:a6:32:ff:ff:ff\"\n  ip: 10.99.0.1\n  switch: {address: \"10.0.0.1:161\", port: 1, community: private}\n")
		_, _, code := e.ctlQuiet("get", "pinode/probe")
		return code == 0
	})
	// Stop the daemon while the files appear, so the kernel queues every
	// event and overflows, as when a daemon is slow under a burst.
	e.daemon.Process.Signal(syscall.SIGSTOP)
	start := time.Now()
	for i := range n {
		content := fmt.Sprintf("apiVersion: reconciled.dev/v1alpha1\nkind: PiNode\nmetadata: {name: n%05d}\nspec:\n  mac: \"dc:a6:32:%02x:%02x:%02x\"\n  ip: 10.%d.%d.%d\n  switch: {address: \"10.0.0.1:161\", port: 1, community: private}\n  installGeneration: 0\n",
			i, i>>16&0xff, i>>8&0xff, i&0xff, 100+i>>16, i>>8&0xff, i&0xff)
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("n%05d.yaml", i)), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	wrote := time.Since(start)
	e.daemon.Process.Signal(syscall.SIGCONT)
	total := n + 1 // and the probe
	var count int
	deadline := time.Now().Add(3 * time.Minute)
	for {
		out, _, code := e.ctlQuiet("get", "pinodes", "-o", "json")
		var l struct{ Items []json.RawMessage }
		if code == 0 && json.Unmarshal([]byte(out), &l) == nil {
			count = len(l.Items)
		}
		if count == total {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d resources after 3 minutes", count, total)
		}
		time.Sleep(500 * time.Millisecond)
	}
	overflowed := strings.Contains(e.log.String(), "inotify queue overflowed")
	if !overflowed {
		t.Fatalf("the inotify queue did not overflow: the test did not test the rescan")
	}
	figure(t, "TORTURE inotify: %d files written (daemon stopped) in %v, queue overflowed, all %d resources known %v after the first write",
		n, wrote.Round(time.Millisecond), total, time.Since(start).Round(time.Millisecond))
}

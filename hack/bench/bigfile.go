// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/reconciled/reconciled/internal/atomicfile"
)

// bigFile: one file of n documents gets its n statuses written, while a
// Process in another file is edited again and again. Rows: the time to
// write every status, beside the floor of one fsync'd atomic rewrite of a
// file that size; and the other file's edit latency during it, beside the
// same edit latency measured calm, in the same run (issue 11: 1,000
// documents took 88 s, and one big file held up every other).
func (b *bench) bigFile(n int) []row {
	dir, state := b.newDirs(fmt.Sprintf("bigfile%d", n))
	writeProcess(dir, "p", `["/bin/sleep", "infinity"]`, "")
	d := b.startDaemon(dir, state)
	defer d.stop()
	if _, err := waitFiles(dir, "phase: Running", time.Minute); err != nil {
		fatalf("bigfile: %v", err)
	}
	w, err := fsnotify.NewWatcher()
	check(err)
	defer w.Close()
	check(w.Add(dir))
	samples := 20
	var calm []time.Duration
	for i := range samples {
		calm = append(calm, editAndWait(w, dir, "p", i))
	}

	var big strings.Builder
	for i := range n {
		fmt.Fprintf(&big, "---\napiVersion: reconciled.dev/v1alpha1\nkind: Link\nmetadata: {name: big-%05d}\nspec:\n  tcp: {address: \"127.0.0.1:1\"}\n  interval: 1h\n", i)
	}
	// The floor: one durable atomic rewrite of a file the size the big
	// file has once it holds every status (about 3x).
	floorFile := filepath.Join(b.work, "floor.yaml")
	sized := []byte(strings.Repeat(big.String(), 3))
	t0 := time.Now()
	check(atomicfile.Write(floorFile, sized, 0o644))
	floor := time.Since(t0)

	tmp := filepath.Join(dir, ".big.tmp")
	check(os.WriteFile(tmp, []byte(big.String()), 0o644))
	start := time.Now()
	check(os.Rename(tmp, filepath.Join(dir, "big.yaml")))
	done := make(chan time.Duration, 1)
	go func() {
		for {
			bb, _ := os.ReadFile(filepath.Join(dir, "big.yaml"))
			if strings.Count(string(bb), "\nstatus:\n") == n {
				done <- time.Since(start)
				return
			}
			time.Sleep(20 * time.Millisecond) // polling the file, beside the daemon
		}
	}()
	var during []time.Duration
	var all time.Duration
	for i := samples; all == 0; i++ {
		select {
		case all = <-done:
		default:
			during = append(during, editAndWait(w, dir, "p", i))
		}
	}
	logf("bigfile%d: every status written %s after the file appeared (floor: one fsync'd atomic write of %d MiB %s); %d edits of another file meanwhile: p50 %s p99 %s (calm p50 %s p99 %s)",
		n, ms(all), len(sized)>>20, ms(floor), len(during), ms(percentile(during, 0.5)), ms(percentile(during, 0.99)), ms(percentile(calm, 0.5)), ms(percentile(calm, 0.99)))
	r := []row{{
		what: fmt.Sprintf("%d documents in one file: every status written", n), ours: ms(all),
		peer: "floor: one atomic write " + ms(floor), ratio: fmt.Sprintf("%.0fx floor", float64(all)/float64(floor)), target: "<= 5 s",
	}}
	if len(during) > 0 {
		r = append(r, row{
			what: "  meanwhile, edit of another file -> converged, p50 / p99", ours: ms(percentile(during, 0.5)) + " / " + ms(percentile(during, 0.99)),
			peer:   "calm " + ms(percentile(calm, 0.5)) + " / " + ms(percentile(calm, 0.99)),
			ratio:  fmt.Sprintf("%.1fx / %.1fx", float64(percentile(during, 0.5))/float64(percentile(calm, 0.5)), float64(percentile(during, 0.99))/float64(percentile(calm, 0.99))),
			target: "about calm",
		})
	}
	return r
}

// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reconciled/reconciled/test/fixtures/waitfor"
)

// TestTortureChurnLoad keeps 10,000 Process resources and churns 100
// files a second (create, edit, delete) for RECONCILED_TORTURE_MINUTES
// (default 5): the heap in use at the end is no more than at minute 1 plus
// a margin (no leak), and the work queue drains to 0. Only with
// RECONCILED_TORTURE=1 (make torture): it runs for minutes.
func TestTortureChurnLoad(t *testing.T) {
	if os.Getenv("RECONCILED_TORTURE") == "" {
		t.Skip("runs for minutes; make torture")
	}
	minutes := 5.0
	if v, err := strconv.ParseFloat(os.Getenv("RECONCILED_TORTURE_MINUTES"), 64); err == nil && v > 0 {
		minutes = v
	}
	const n = 10000
	port := freePort(t)
	e := newEnv(t, "--listen", fmt.Sprintf("127.0.0.1:%d", port))
	e.start()
	metric := func(name string) float64 {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
		if err != nil {
			return -1
		}
		defer resp.Body.Close()
		sum := 0.0
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if l := sc.Text(); strings.HasPrefix(l, name+" ") || strings.HasPrefix(l, name+"{") {
				f := strings.Fields(l)
				v, _ := strconv.ParseFloat(f[len(f)-1], 64)
				sum += v
			}
		}
		return sum
	}
	spec := func(i, gen int) string {
		name := fmt.Sprintf("l%05d", i)
		return strings.Replace(sleeper(e, name, ""), "exec sleep 1000", fmt.Sprintf("exec sleep %d", 1000+gen), 1)
	}
	for i := range n {
		e.write(fmt.Sprintf("l%05d.yaml", i), spec(i, 0))
	}
	e.eventually("the first programs running", func() bool { return metric("reconciled_process_up") > 1000 })
	start := time.Now()
	end := start.Add(time.Duration(minutes * float64(time.Minute)))
	// The heap in use is sampled every second. Between two collections it
	// also holds garbage, so the minimum over a window stands for what is
	// live: minute 1 to 1.5 against the last half minute, both under the
	// same churn.
	type sample struct {
		at   time.Duration
		heap float64
	}
	var samples []sample // read once the sampler has ended
	sampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() { // beside the churn, so that it keeps its pace
		defer close(sampled)
		for {
			select {
			case <-sampling:
				return
			case <-time.After(time.Second):
			}
			h := metric("go_memstats_heap_inuse_bytes")
			samples = append(samples, sample{time.Since(start), h})
		}
	}()
	next, gen := 0, 1
	tick := time.NewTicker(10 * time.Millisecond) // 100 files a second
	defer tick.Stop()
	for now := range tick.C {
		if now.After(end) {
			break
		}
		i := next % n
		switch next % 3 {
		case 0: // edit
			e.write(fmt.Sprintf("l%05d.yaml", i), spec(i, gen))
		case 1: // delete
			os.Remove(e.dir + fmt.Sprintf("/l%05d.yaml", i))
		case 2: // create again
			e.write(fmt.Sprintf("l%05d.yaml", (next-1)%n), spec((next-1)%n, gen))
		}
		next++
		if next%n == 0 {
			gen++
		}
	}
	close(sampling)
	<-sampled
	// After 5 minutes of churn of 10,000 programs the last burst of
	// restarts may take a while on a busy 2-core machine: the figure is
	// that it drains, not how fast.
	drainStart := time.Now()
	waitfor.Within(t, 5*time.Minute, "the work queue drained", func() bool { return metric("reconciled_workqueue_depth") == 0 })
	drained := time.Since(drainStart)
	minHeap := func(from, to time.Duration) float64 {
		m := 0.0
		for _, s := range samples {
			if s.at >= from && s.at < to && s.heap > 0 && (m == 0 || s.heap < m) {
				m = s.heap
			}
		}
		return m
	}
	total := time.Duration(minutes * float64(time.Minute))
	heap1 := minHeap(time.Minute, 90*time.Second)
	heapEnd := minHeap(total-30*time.Second, total)
	rss := metric("process_resident_memory_bytes")
	figure(t, "TORTURE churn: %d resources, %d file operations in %.1f min; heap in use (lowest sample) in minute 1-1.5 %.0f MiB, in the last 30 s %.0f MiB; RSS %.0f MiB; queue depth 0 %s after the churn ended",
		n, next, minutes, heap1/(1<<20), heapEnd/(1<<20), rss/(1<<20), drained.Round(time.Millisecond))
	if heap1 == 0 || heapEnd == 0 {
		t.Fatalf("no heap samples in minute 1-1.5 or the last 30 s (%d samples in all; RECONCILED_TORTURE_MINUTES must be 2 or more)", len(samples))
	}
	if heapEnd > heap1*1.25+32<<20 {
		t.Fatalf("heap grew from %.0f to %.0f MiB under steady churn", heap1/(1<<20), heapEnd/(1<<20))
	}
}

// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package apiserver

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/resources"
	"github.com/reconciled/reconciled/test/fixtures/waitfor"
)

// gatedWriter is a ResponseWriter whose writes block until the gate opens
// (a client that stopped reading) and whose output counts only once
// flushed (what a client would see through the server's buffer).
type gatedWriter struct {
	gate    chan struct{}
	writing chan struct{} // closed at the first write
	once    sync.Once
	header  http.Header
	mu      sync.Mutex
	buf     bytes.Buffer
	flushed int
}

func (g *gatedWriter) Header() http.Header { return g.header }
func (g *gatedWriter) WriteHeader(int)     {}
func (g *gatedWriter) Write(p []byte) (int, error) {
	g.once.Do(func() { close(g.writing) })
	<-g.gate
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.buf.Write(p)
}
func (g *gatedWriter) Flush() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.flushed = g.buf.Len()
}

// seen returns the watch events flushed so far.
func (g *gatedWriter) seen(t *testing.T) []map[string]any {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(g.buf.Bytes()[:g.flushed]))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var ev map[string]any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("flushed a torn event %q: %v", sc.Text(), err)
		}
		out = append(out, ev)
	}
	return out
}

// TestWatchCatchesUpAfterBurst: a watcher that stops reading while more
// changes come than the store buffers for it loses its subscription; the
// watch catches up from the last version it sent, sends each resource's
// latest state once, in order, and flushes it, then goes on with the
// changes after it, with no relist.
func TestWatchCatchesUpAfterBurst(t *testing.T) {
	dir := t.TempDir()
	store, err := resources.NewStore(resources.Options{Dir: dir, StateDir: t.TempDir(), Status: resources.StatusNone, Log: testr.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	var docs bytes.Buffer
	const n = 50
	for i := range n {
		docs.WriteString("---\napiVersion: reconciled.dev/v1alpha1\nkind: Process\nmetadata: {name: p" + strconv.Itoa(i) + "}\nspec: {command: [/bin/true]}\n")
	}
	if err := os.WriteFile(filepath.Join(dir, "p.yaml"), docs.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := store.Load(); err != nil {
		t.Fatal(err)
	}
	srv := New(Options{Store: store, Log: testr.New(t)})
	w := &gatedWriter{gate: make(chan struct{}), writing: make(chan struct{}), header: http.Header{}}
	r := httptest.NewRequest("GET", "/apis/reconciled.dev/v1alpha1/processes?watch=1&resourceVersion="+store.Version(), nil)
	r.Host = "127.0.0.1"
	done := make(chan struct{})
	go func() { defer close(done); srv.ServeHTTP(w, r) }()
	t.Cleanup(func() {
		select {
		case <-w.gate:
		default:
			close(w.gate)
		}
	})
	restarts := 0
	update := func(name string) {
		t.Helper()
		restarts++
		if err := store.UpdateStatus(v1alpha1.KindProcess, name, v1alpha1.ProcessStatus{CommonStatus: v1alpha1.CommonStatus{Phase: "Running"}, Restarts: int64(restarts)}); err != nil {
			t.Fatal(err)
		}
	}
	// A first change reaches the watch, which blocks writing it.
	update("p0")
	waitfor.Within(t, waitForWatch, "the watch to write its first event", func() bool {
		select {
		case <-w.writing:
			return true
		default:
			return false
		}
	})
	// 3,000 changes (the store buffers 1,024 per watcher) while the
	// writer is blocked.
	for i := range 3000 {
		update("p" + strconv.Itoa(i%n))
	}
	close(w.gate)
	want := store.Version()
	waitfor.Within(t, waitForWatch, "the watcher to get the latest version "+want, func() bool {
		evs := w.seen(t)
		return len(evs) > 0 && evs[len(evs)-1]["object"].(map[string]any)["metadata"].(map[string]any)["resourceVersion"] == want
	})
	// Every event after the first is newer than the one before: the
	// catch-up does not repeat what the new subscription brings.
	evs := w.seen(t)
	var last uint64
	for i, ev := range evs {
		if ev["type"] != "MODIFIED" {
			t.Fatalf("event %d is %v, want MODIFIED (no relist)", i, ev["type"])
		}
		rv, _ := strconv.ParseUint(ev["object"].(map[string]any)["metadata"].(map[string]any)["resourceVersion"].(string), 10, 64)
		if rv <= last {
			t.Fatalf("event %d has version %d after %d", i, rv, last)
		}
		last = rv
	}
	if len(evs) >= 3001 {
		t.Errorf("%d events: the watcher did not fall behind, so the test tested nothing", len(evs))
	}
	// The watch goes on after the catch-up.
	update("p7")
	want = store.Version()
	waitfor.Within(t, waitForWatch, "a change after the catch-up", func() bool {
		evs := w.seen(t)
		return evs[len(evs)-1]["object"].(map[string]any)["metadata"].(map[string]any)["resourceVersion"] == want
	})
}

// waitForWatch bounds the waits of the watch tests.
const waitForWatch = time.Minute

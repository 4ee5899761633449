// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package runner

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/reconciled/reconciled/test/fixtures/waitfor"
)

// recorder logs "start X" and "stop X" in order; a part stops only after
// every part of a later stage has stopped, which the runner must ensure.
type recorder struct {
	mu  sync.Mutex
	log []string
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = append(r.log, s)
}

func (r *recorder) part(name string, fail error) Runnable {
	return Func(func(ctx context.Context) error {
		r.add("start " + name)
		if fail != nil {
			return fail
		}
		<-ctx.Done()
		time.Sleep(5 * time.Millisecond) // a slow stop: the next stage must wait for it
		r.add("stop " + name)
		return nil
	})
}

func TestStagesStartInOrderAndStopInReverse(t *testing.T) {
	rec := &recorder{}
	g := New(logr.Discard())
	g.Add(Servers, "api", rec.part("api", nil))
	g.Add(Store, "store", rec.part("store", nil))
	g.Add(Controllers, "engine", rec.part("engine", nil))
	g.Add(Controllers, "nil", nil) // optional parts may be absent
	g.AfterStop(Controllers, func() { rec.add("close engine") })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		done <- g.Run(ctx, func() {
			// Started parts may still be on their way; wait for them.
			for {
				rec.mu.Lock()
				n := len(rec.log)
				rec.mu.Unlock()
				if n == 3 {
					break
				}
				time.Sleep(time.Millisecond)
			}
			cancel()
		})
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	stops := slices.DeleteFunc(slices.Clone(rec.log), func(s string) bool { return strings.HasPrefix(s, "start") })
	if want := []string{"stop api", "stop engine", "close engine", "stop store"}; !slices.Equal(stops, want) {
		t.Fatalf("stopped %q, want %q", stops, want)
	}
}

// A part that fails stops the daemon: every other part is stopped and the
// error is returned with the part's name.
func TestFailingPartStopsEverything(t *testing.T) {
	rec := &recorder{}
	g := New(logr.Discard())
	g.Add(Store, "store", rec.part("store", nil))
	g.Add(Servers, "api", rec.part("api", errors.New("address in use")))
	err := g.Run(context.Background(), nil)
	if err == nil || err.Error() != "api: address in use" {
		t.Fatalf("error %v", err)
	}
	if !slices.Contains(rec.log, "stop store") {
		t.Fatalf("the store was not stopped: %q", rec.log)
	}
}

// A part that returns nil early has finished; the others keep running.
func TestFinishedPartDoesNotStop(t *testing.T) {
	g := New(logr.Discard())
	finished := make(chan struct{})
	var storeStopped atomic.Bool
	g.Add(Controllers, "oneshot", Func(func(context.Context) error { close(finished); return nil }))
	g.Add(Store, "store", Func(func(ctx context.Context) error {
		<-ctx.Done()
		storeStopped.Store(true)
		return nil
	}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- g.Run(ctx, nil) }()
	<-finished
	waitfor.Steady(t, 100*time.Millisecond, "the store running after another part finished", func() bool { return !storeStopped.Load() })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !storeStopped.Load() {
		t.Fatal("the store was not stopped at the end")
	}
}

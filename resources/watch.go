// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package resources

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/util/workqueue"
)

// Start follows the source and applies every change until ctx is done. It
// also runs the status writer. Call Load first. Start returns when ctx is
// done and pending status has been written.
func (s *Store) Start(ctx context.Context) error {
	queue := workqueue.NewTypedWithConfig(workqueue.TypedQueueConfig[string]{Name: "files"})
	defer queue.ShutDown()
	s.mu.Lock()
	s.reload = func(p string) { queue.Add(p) }
	s.mu.Unlock()
	relist := func() { queue.Add("") } // "" = relist everything

	writerDone := make(chan struct{})
	wctx, cancelWriter := context.WithCancel(context.Background())
	go func() { s.writer.run(wctx); close(writerDone) }()
	// Stop the origin workers before the writer's final flush, so that no
	// origin is applied after Start returns and what they applied is
	// written.
	var workers sync.WaitGroup
	defer func() { queue.ShutDown(); workers.Wait(); cancelWriter(); <-writerDone; s.gens.close() }()

	for i := 0; i < 2; i++ {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for {
				p, shutdown := queue.Get()
				if shutdown {
					return
				}
				s.busy.begin(p)
				if p == "" {
					s.relist(queue.Add)
				} else {
					s.reloadFile(p)
				}
				s.busy.end(p)
				queue.Done(p)
			}
		}()
	}

	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	watchErr := make(chan error, 1)
	go func() { watchErr <- s.opts.Source.Watch(watchCtx, queue.Add, relist) }()
	ticker := time.NewTicker(s.opts.RelistInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			if watchErr != nil {
				<-watchErr
			}
			return nil
		case <-ticker.C:
			relist()
		case err := <-watchErr:
			if err != nil {
				return fmt.Errorf("watching %s: %w", s.opts.Source.Name(), err)
			}
			// The source has nothing more to report; the periodic
			// relist still applies what changes.
			watchErr = nil
		}
	}
}

// inProgress tracks the files being loaded, for Stuck.
type inProgress struct {
	mu    sync.Mutex
	since map[string]time.Time
}

func (b *inProgress) begin(p string) {
	b.mu.Lock()
	if b.since == nil {
		b.since = map[string]time.Time{}
	}
	b.since[p] = time.Now()
	b.mu.Unlock()
}

func (b *inProgress) end(p string) {
	b.mu.Lock()
	delete(b.since, p)
	b.mu.Unlock()
}

// Stuck returns an error naming every file whose loading has taken longer
// than limit, or nil (the liveness check of /healthz: a file worker that
// never returns stops every change from being seen).
func (s *Store) Stuck(limit time.Duration) error {
	s.busy.mu.Lock()
	defer s.busy.mu.Unlock()
	now := time.Now()
	var stuck []string
	for p, since := range s.busy.since {
		if d := now.Sub(since); d > limit {
			what := "loading " + p
			if p == "" {
				what = "relisting " + s.opts.Source.Name()
			}
			stuck = append(stuck, fmt.Sprintf("%s for %s", what, d.Round(time.Second)))
		}
	}
	if len(stuck) == 0 {
		return nil
	}
	sort.Strings(stuck)
	return errors.New(strings.Join(stuck, "; "))
}

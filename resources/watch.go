// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package resources

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"k8s.io/client-go/util/workqueue"
)

// Start watches the directory and applies every change until ctx is done.
// It also runs the status writer. Call Load first. Start returns when ctx is
// done and pending status has been written.
func (s *Store) Start(ctx context.Context) error {
	w, err := fsnotify.NewBufferedWatcher(4096)
	if err != nil {
		return err
	}
	defer w.Close()
	queue := workqueue.NewTypedWithConfig(workqueue.TypedQueueConfig[string]{Name: "files"})
	defer queue.ShutDown()
	s.mu.Lock()
	s.reload = func(p string) { queue.Add(p) }
	s.mu.Unlock()
	relist := func() { queue.Add("") } // "" = relist everything

	if err := s.addWatches(w, s.opts.Dir); err != nil {
		return err
	}
	writerDone := make(chan struct{})
	wctx, cancelWriter := context.WithCancel(context.Background())
	go func() { s.writer.run(wctx); close(writerDone) }()
	// Stop the file workers before the writer's final flush, so that no
	// file is applied after Run returns and what they applied is written.
	var workers sync.WaitGroup
	defer func() { queue.ShutDown(); workers.Wait(); cancelWriter(); <-writerDone; s.gens.close() }()

	// Files changed between Load and the watches being in place.
	relist()
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

	ticker := time.NewTicker(s.opts.RelistInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
			relist()
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				s.log.Info("inotify queue overflowed; rescanning the resource directory")
			} else {
				s.log.Error(err, "watch error; rescanning the resource directory")
			}
			relist()
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			s.handleEvent(w, ev, queue, relist)
		}
	}
}

func (s *Store) handleEvent(w *fsnotify.Watcher, ev fsnotify.Event, queue workqueue.TypedInterface[string], relist func()) {
	rel, err := filepath.Rel(s.opts.Dir, ev.Name)
	if err != nil || strings.HasPrefix(rel, "..") {
		return
	}
	if ev.Has(fsnotify.Create) {
		if fi, err := os.Stat(ev.Name); err == nil && fi.IsDir() {
			if !strings.HasPrefix(filepath.Base(ev.Name), ".") {
				// A new folder (mkdir -p, git checkout): watch it and read
				// what is already in it.
				if err := s.addWatches(w, ev.Name); err != nil {
					s.log.Error(err, "cannot watch new folder", "path", ev.Name)
				}
				relist()
			}
			return
		}
	}
	if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
		// A watched folder that went away takes its files with it. (Only
		// folders: scanning on every file rename would make each status
		// write cost as much as the directory is large.)
		s.mu.Lock()
		wasDir := s.dirs[ev.Name]
		delete(s.dirs, ev.Name)
		var gone []string
		if wasDir {
			prefix := ev.Name + string(filepath.Separator)
			for p := range s.files {
				if strings.HasPrefix(p, prefix) {
					gone = append(gone, p)
				}
			}
		}
		s.mu.Unlock()
		for _, p := range gone {
			queue.Add(p)
		}
	}
	if Ignored(rel) {
		return
	}
	// A chmod or chown may make a file untrusted (or trusted again): it is
	// read again like a write; an unchanged file costs a read and a hash.
	queue.Add(ev.Name)
}

// addWatches watches root and every non-hidden folder below it.
func (s *Store) addWatches(w *fsnotify.Watcher, root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == root {
				return err
			}
			return nil
		}
		if !d.IsDir() {
			return nil
		}
		if p != root && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if err := w.Add(p); err != nil {
			s.log.Error(err, "cannot watch folder", "path", p)
			return nil
		}
		s.mu.Lock()
		s.dirs[p] = true
		s.mu.Unlock()
		return nil
	})
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
				what = "rescanning " + s.opts.Dir
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

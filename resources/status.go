// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package resources

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/reconciled/reconciled/internal/atomicfile"

	"golang.org/x/sys/unix"

	"github.com/reconciled/reconciled/internal/backoff"
)

// writeBackoff spaces the retries of a failing status write.
var writeBackoff = backoff.Policy{Initial: 5 * time.Millisecond, Max: 5 * time.Minute}

// statusWriter writes status out of the request path. Dirty keys (file
// paths with --status inline, kind/name with sidecar) are prepared by a few
// workers, each file on its own, and the prepared files are committed in
// groups (one sync for many files), so a burst of status changes costs a
// few syncs, not thousands, and one large file being prepared never holds
// up the others. A key whose write fails is retried with backoff (5 ms,
// doubling up to 5 minutes) and reported once per change of its error, in
// the log and as a StatusWritten condition of its resources.
type statusWriter struct {
	s      *Store
	sink   StatusSink
	writes atomic.Int64 // files written (counted at each rename), for tests and metrics
	kick   chan struct{}

	mu        sync.Mutex
	dirty     map[string]time.Time // key -> when due
	queue     []string             // due keys waiting for a worker
	inflight  map[string]bool      // keys queued or being prepared or committed
	workers   int                  // running workers
	busy      int                  // workers preparing or committing
	ready     []*pendingWrite      // prepared, waiting for a commit
	committer bool                 // a worker is committing
	failing   map[string]*writeFailure
	idle      *sync.Cond // signalled when nothing is in flight
	// cost is how long the last prepare of a key took: a key that is
	// expensive to write (a file of thousands of documents) waits that
	// long (at most maxCoalesce) after a change before it is written, so a
	// burst of status changes costs one write, not one per change.
	cost map[string]time.Duration
}

// writeFailure is the state of a key whose writes fail.
type writeFailure struct {
	err      string
	attempts int
}

// Bounds of the status writer.
const (
	// writeWorkers prepare files concurrently: enough that a large file
	// leaves others room, few enough not to contend for a folder's lock.
	writeWorkers = 3
	// conflictRetry is the pause after a concurrent edit: the reload that
	// picks it up usually lands first.
	conflictRetry = 50 * time.Millisecond
	// coalesceFrom and maxCoalesce bound the wait of expensive keys (see
	// statusWriter.cost): cheaper ones are written at once.
	coalesceFrom = 20 * time.Millisecond
	maxCoalesce  = time.Second
)

func newStatusWriter(s *Store, sink StatusSink) *statusWriter {
	w := &statusWriter{s: s, sink: sink, dirty: map[string]time.Time{}, inflight: map[string]bool{}, failing: map[string]*writeFailure{},
		cost: map[string]time.Duration{}, kick: make(chan struct{}, 1)}
	w.idle = sync.NewCond(&w.mu)
	return w
}

// key returns the writer's key of an entry ("" when nothing is written).
func (w *statusWriter) key(e *entry) string {
	return w.sink.group(e)
}

// markDirty schedules an entry's status to be written now if it differs
// from what its file holds. Called with the store lock held.
func (w *statusWriter) markDirty(e *entry) { w.markDirtyAt(e, time.Time{}) }

// markDirtyAt schedules the write for due (zero: now); an earlier due time
// already pending wins, and a failing key keeps its backoff. Called with
// the store lock held.
func (w *statusWriter) markDirtyAt(e *entry, due time.Time) {
	if !e.statusSet && len(e.invalid) == 0 {
		return // nothing of ours to write yet
	}
	key := w.key(e)
	if key == "" {
		return
	}
	if f := w.s.files[e.file]; f != nil && len(f.keys) > 1 && key == e.file {
		// Until a write of the file is measured, guess its cost from its
		// documents (about 50 µs each), so the first burst of statuses
		// of a large file is written once, not once for the first status
		// and again for the rest.
		w.mu.Lock()
		if _, measured := w.cost[key]; !measured {
			w.cost[key] = time.Duration(len(f.keys)) * 50 * time.Microsecond
		}
		w.mu.Unlock()
	}
	w.schedule(key, due, false)
}

// schedule marks key due at the given time and wakes the writer then.
// override replaces an earlier due time (a retry's backoff).
func (w *statusWriter) schedule(key string, due time.Time, override bool) {
	w.mu.Lock()
	if c := w.cost[key]; c >= coalesceFrom && !override {
		due = later(due, time.Now().Add(min(c, maxCoalesce)))
	}
	cur, ok := w.dirty[key]
	switch {
	case override, !ok:
		w.dirty[key] = due
	case w.failing[key] != nil:
		// Backing off: a new status does not hurry the retry.
	case due.Before(cur):
		w.dirty[key] = due
	}
	due = w.dirty[key]
	w.mu.Unlock()
	if d := time.Until(due); d > 0 {
		time.AfterFunc(d, w.wake)
		return
	}
	w.wake()
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (w *statusWriter) wake() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// forget drops a deleted entry's sidecar status.
func (w *statusWriter) forget(e *entry) {
	w.mu.Lock()
	delete(w.cost, w.key(e))
	w.mu.Unlock()
	w.sink.forget(e.key)
}

// run writes what is due until ctx is done, then flushes once more.
func (w *statusWriter) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			w.flush()
			return
		case <-w.kick:
			w.dispatch()
		}
	}
}

// Flush writes every pending status that is due now and waits for it. It
// is for shutdown and tests.
func (s *Store) Flush() { s.writer.flush() }

// Writes returns how many files the status writer has written.
func (s *Store) Writes() int64 { return s.writer.writes.Load() }

// flush dispatches what is due and waits until nothing is in flight.
func (w *statusWriter) flush() {
	w.dispatch()
	w.mu.Lock()
	for len(w.inflight) > 0 {
		w.idle.Wait()
	}
	w.mu.Unlock()
}

// dispatch queues the keys that are due and not in flight, and starts
// workers for them.
func (w *statusWriter) dispatch() {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	for k, due := range w.dirty {
		if !due.After(now) && !w.inflight[k] {
			delete(w.dirty, k)
			w.inflight[k] = true
			w.queue = append(w.queue, k)
		}
	}
	for w.workers < writeWorkers && w.workers-w.busy < len(w.queue) {
		w.workers++
		go w.work()
	}
}

// work prepares queued keys one by one, and commits what is ready when no
// other worker is committing.
func (w *statusWriter) work() {
	for {
		w.mu.Lock()
		if len(w.queue) == 0 {
			w.workers--
			w.mu.Unlock()
			return
		}
		key := w.queue[0]
		w.queue = w.queue[1:]
		w.busy++
		w.mu.Unlock()
		w.prepareAndCommit(key)
		w.mu.Lock()
		w.busy--
		w.mu.Unlock()
	}
}

// prepareAndCommit prepares one key and commits it, with whatever else is
// ready, unless another worker is committing (it takes it along).
func (w *statusWriter) prepareAndCommit(key string) {
	start := time.Now()
	p, err := w.prepare(key)
	took := time.Since(start)
	w.mu.Lock()
	w.cost[key] = took
	w.mu.Unlock()
	if p != nil {
		w.s.log.V(2).Info("status prepared", "key", key, "statuses", len(p.done), "took", took.String())
	}
	if err == errConflict {
		return // retryAfterConflict ended its flight
	}
	if err != nil || p == nil {
		w.finish(key, err)
		return
	}
	w.mu.Lock()
	w.ready = append(w.ready, p)
	if w.committer {
		w.mu.Unlock()
		return // the worker committing takes it with its next group
	}
	w.committer = true
	for len(w.ready) > 0 {
		batch := w.ready
		w.ready = nil
		w.mu.Unlock()
		w.commit(batch)
		w.mu.Lock()
	}
	w.committer = false
	w.mu.Unlock()
}

// finish ends a key's flight: on error it is retried with backoff (and the
// failure reported when it is new or different); on success a failure it
// had is cleared.
func (w *statusWriter) finish(key string, err error) {
	w.mu.Lock()
	f := w.failing[key]
	var changed bool
	if err != nil {
		if f == nil {
			f = &writeFailure{}
			w.failing[key] = f
		}
		changed = f.err != err.Error()
		f.err = err.Error()
		f.attempts++
		delay := writeBackoff.Delay(f.attempts)
		w.dirty[key] = time.Now().Add(delay)
		time.AfterFunc(delay, w.wake)
	} else if f != nil {
		changed = true
		delete(w.failing, key)
	}
	delete(w.inflight, key)
	if len(w.inflight) == 0 {
		w.idle.Broadcast()
	}
	if _, again := w.dirty[key]; again && err == nil {
		defer w.wake() // changed again while in flight
	}
	w.mu.Unlock()
	if !changed {
		return
	}
	if err != nil {
		w.s.log.Error(err, "cannot write status; retrying with backoff (logged again only if the error changes)", "key", key)
	} else {
		w.s.log.Info("status written again after failures", "key", key)
	}
	w.s.setWriteError(key, err)
}

// retryAfterConflict ends a key's flight after a concurrent edit: the
// edit is loaded and the status written after it.
func (w *statusWriter) retryAfterConflict(key string) {
	if w.s.reload != nil {
		w.s.reload(key) // only inline writes conflict: key is the file
	}
	w.mu.Lock()
	delete(w.inflight, key)
	if len(w.inflight) == 0 {
		w.idle.Broadcast()
	}
	w.mu.Unlock()
	w.schedule(key, time.Now().Add(conflictRetry), false)
}

// prepare computes a key's new file content and writes it to a temp file
// beside the target. It returns nil when nothing needs writing.
func (w *statusWriter) prepare(key string) (*pendingWrite, error) {
	return w.sink.prepare(w, key)
}

// pendingWrite is one file prepared for the rename step.
type pendingWrite struct {
	key       string // the writer's key
	path, tmp string
	target    string   // path with symlinks resolved: what the rename replaces
	expect    [32]byte // inline: hash of the content the edit was based on
	out       []byte
	done      []*entry
	statuses  [][]byte
	gens      []int64
}

// errConflict ends a prepare whose file changed under it; it is not a
// failure (retryAfterConflict already rescheduled the key).
var errConflict = errors.New("file changed while its status was prepared")

// commit makes the prepared temp files durable with as few syncs as
// possible, then renames each over its target (inline: if the target is
// still what the edit was based on). It ends the flight of every key in
// pending and returns how many files it wrote.
func (w *statusWriter) commit(pending []*pendingWrite) int {
	syncTemps(pending)
	dirs := map[string]bool{}
	n := 0
	var finished []*pendingWrite
	var failed []error
	for _, p := range pending {
		var err error
		err = w.sink.commit(w, p)
		if err == errConflict {
			continue // rescheduled
		}
		if err == nil {
			dirs[filepath.Dir(p.target)] = true
			n++
		}
		finished = append(finished, p)
		failed = append(failed, err)
	}
	for d := range dirs {
		atomicfile.SyncDir(d)
	}
	for i, p := range finished {
		w.finish(p.key, failed[i])
	}
	return n
}

// setWriteError records (or clears, for nil) the write failure of a key on
// its resources, shown as their StatusWritten condition.
func (s *Store) setWriteError(key string, err error) {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.entries {
		if s.writer.key(e) != key || e.writeErr == msg {
			continue
		}
		e.writeErr = msg
		s.notifyLocked(Modified, e, false)
	}
}

// writeTemp writes data to a hidden temp file beside path with path's mode
// and owner (or 0644 for a new file), unsynced.
func writeTemp(path string, data []byte) (string, error) {
	mode := os.FileMode(0o644)
	uid, gid := -1, -1
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(st.Uid), int(st.Gid)
		}
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		// Without the random temp name, so that the same failure reads
		// the same each time (it is logged once per change).
		return "", fmt.Errorf("create a temp file beside %s: %w", path, unwrapPathError(err))
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil && uid >= 0 && os.Geteuid() == 0 && (uid != os.Geteuid() || gid != os.Getegid()) {
		err = f.Chown(uid, gid)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("write a temp file beside %s: %w", path, unwrapPathError(err))
	}
	return tmp, nil
}

// syncTemps makes temp files durable: one fdatasync each for a few files,
// one syncfs per filesystem for many (group commit).
func syncTemps(pending []*pendingWrite) {
	if len(pending) <= 4 {
		for _, p := range pending {
			if f, err := os.Open(p.tmp); err == nil {
				unix.Fdatasync(int(f.Fd()))
				f.Close()
			}
		}
		return
	}
	seen := map[uint64]bool{}
	for _, p := range pending {
		var st unix.Stat_t
		if unix.Stat(p.tmp, &st) != nil || seen[st.Dev] {
			continue
		}
		seen[st.Dev] = true
		if f, err := os.Open(filepath.Dir(p.tmp)); err == nil {
			unix.Syncfs(int(f.Fd()))
			f.Close()
		}
	}
}

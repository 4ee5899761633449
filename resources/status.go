// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package resources

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/reconciled/reconciled/internal/atomicfile"
	"github.com/reconciled/reconciled/internal/regularfile"

	"golang.org/x/sys/unix"
	"sigs.k8s.io/yaml"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/resources/yamledit"

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

func newStatusWriter(s *Store) *statusWriter {
	w := &statusWriter{s: s, dirty: map[string]time.Time{}, inflight: map[string]bool{}, failing: map[string]*writeFailure{},
		cost: map[string]time.Duration{}, kick: make(chan struct{}, 1)}
	w.idle = sync.NewCond(&w.mu)
	return w
}

// key returns the writer's key of an entry ("" when nothing is written).
func (w *statusWriter) key(e *entry) string {
	switch w.s.opts.Status {
	case StatusInline:
		return e.file
	case StatusSidecar:
		return e.key.Kind + "/" + e.key.Name
	}
	return ""
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
	if f := w.s.files[e.file]; f != nil && len(f.keys) > 1 && w.s.opts.Status == StatusInline {
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
	if w.s.opts.Status == StatusSidecar {
		os.Remove(w.s.sidecarPath(e.key))
	}
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
	if w.s.opts.Status == StatusInline && w.s.reload != nil {
		w.s.reload(key)
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
	if w.s.opts.Status == StatusSidecar {
		return w.prepareSidecar(key)
	}
	return w.prepareInline(key)
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

// prepareInline edits the statuses of every resource of one file that
// needs it, with one parse and one check of the file whatever its number
// of documents.
func (w *statusWriter) prepareInline(path string) (*pendingWrite, error) {
	s := w.s
	s.mu.RLock()
	fst := s.files[path]
	if fst == nil || fst.unparsable {
		s.mu.RUnlock()
		return nil, nil // a fix of the file marks its resources dirty again
	}
	expect := fst.hash
	// Under the lock, only collect each resource's current status object
	// (never modified in place: UpdateStatus replaces it) and what the
	// file holds; marshalling 10,000 statuses is done outside, so status
	// updates of other files are not held up meanwhile.
	type candidate struct {
		e            *entry
		status       any
		gen, fileGen int64
		fileStatus   [32]byte
	}
	var cands []candidate
	for _, k := range fst.keys {
		e := s.entries[k]
		if e == nil || e.file != path || (!e.statusSet && len(e.invalid) == 0) {
			continue
		}
		c := candidate{e: e, status: e.view(false).GetStatus(), fileGen: e.fileGen, fileStatus: e.fileStatus}
		if e.obj != nil {
			c.gen = e.obj.GetObjectMeta().Generation
		}
		cands = append(cands, c)
	}
	s.mu.RUnlock()
	type item struct {
		e      *entry
		status []byte
		gen    int64
	}
	var items []item
	for _, c := range cands {
		sj, err := json.Marshal(c.status)
		if err != nil {
			continue
		}
		if statusDigest(sj) == c.fileStatus && (c.gen == 0 || c.gen == c.fileGen) {
			continue
		}
		items = append(items, item{c.e, sj, c.gen})
	}
	if len(items) == 0 {
		return nil, nil
	}
	edits := make([]yamledit.Edit, len(items))
	for i, it := range items {
		y, err := yaml.JSONToYAML(it.status)
		if err != nil {
			return nil, fmt.Errorf("status of %s: %w", it.e.key, err)
		}
		edits[i] = yamledit.Edit{Kind: it.e.key.Kind, Name: it.e.key.Name, Generation: it.gen, Status: y}
	}
	data, ok, err := s.readFile(path)
	if err != nil || !ok {
		return nil, nil // the reload of the file reports it
	}
	p := &pendingWrite{key: path, path: path, expect: expect}
	if hashBytes(data) != expect {
		// Edited since we parsed it: load the edit first, write after.
		w.retryAfterConflict(path)
		return nil, errConflict
	}
	out, errs, err := yamledit.SetStatuses(data, edits)
	if err != nil {
		return nil, fmt.Errorf("%w; use --status sidecar for files like this", err)
	}
	var refused []error
	for i, it := range items {
		if errs[i] != nil {
			if !errors.Is(errs[i], yamledit.ErrNotFound) {
				refused = append(refused, errs[i])
			}
			continue
		}
		p.done = append(p.done, it.e)
		p.statuses = append(p.statuses, it.status)
		p.gens = append(p.gens, it.gen)
	}
	if len(refused) > 0 {
		// The documents that could be edited are; the others are
		// reported until they change.
		s.log.V(1).Info("some statuses cannot be written into their file", "path", path, "errors", errors.Join(refused...).Error())
	}
	if len(p.done) == 0 {
		if len(refused) > 0 {
			return nil, fmt.Errorf("%w; use --status sidecar for files like this", errors.Join(refused...))
		}
		return nil, nil
	}
	if len(out) > MaxFileSize {
		return nil, fmt.Errorf("%s: writing the status would make the file %d bytes, over the %d MiB limit of resource files; split the file or use --status sidecar", path, len(out), MaxFileSize>>20)
	}
	p.out = out
	// A symlinked resource file keeps its link: the status goes into the
	// file it points to.
	p.target = path
	if t, err := filepath.EvalSymlinks(path); err == nil {
		p.target = t
	}
	tmp, err := writeTemp(p.target, out)
	if err != nil {
		return nil, err
	}
	p.tmp = tmp
	return p, nil
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
	s := w.s
	dirs := map[string]bool{}
	n := 0
	var finished []*pendingWrite
	var failed []error
	for _, p := range pending {
		var err error
		if s.opts.Status == StatusSidecar {
			err = w.commitSidecar(p)
		} else {
			err = w.commitInline(p)
		}
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

// commitInline swaps one prepared file in, unless the file changed.
func (w *statusWriter) commitInline(p *pendingWrite) error {
	s := w.s
	// swapIn compares the file with what the edit was based on as part
	// of the swap: an edit we have not seen is never overwritten.
	s.mu.Lock()
	fst := s.files[p.path]
	if fst == nil || fst.hash != p.expect {
		s.mu.Unlock()
		os.Remove(p.tmp)
		w.retryAfterConflict(p.key)
		return errConflict
	}
	lost, err := swapIn(p.tmp, p.target, p.expect)
	if err != nil || lost {
		s.mu.Unlock()
		os.Remove(p.tmp)
		if lost {
			// The file changed between our check and the swap; the
			// user's bytes are back in place: load them, write after.
			w.retryAfterConflict(p.key)
			return errConflict
		}
		return fmt.Errorf("replace %s: %w", p.path, err)
	}
	fst.hash = hashBytes(p.out)
	w.writes.Add(1)
	for i, e := range p.done {
		e.fileStatus = statusDigest(p.statuses[i])
		if p.gens[i] > 0 {
			e.fileGen = p.gens[i]
		}
	}
	s.mu.Unlock()
	return nil
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

// sidecarDoc is the content of a sidecar status file.
type sidecarDoc struct {
	v1alpha1.TypeMeta `json:",inline"`
	Metadata          v1alpha1.ObjectMeta `json:"metadata"`
	Status            json.RawMessage     `json:"status"`
}

func (s *Store) sidecarPath(k Key) string {
	return filepath.Join(s.opts.StateDir, "status", strings.ToLower(k.Kind), k.Name+".yaml")
}

func (s *Store) readSidecar(k Key) (any, bool) {
	b, err := os.ReadFile(s.sidecarPath(k))
	if err != nil {
		return nil, false
	}
	var doc sidecarDoc
	if err := yaml.Unmarshal(b, &doc); err != nil || len(doc.Status) == 0 {
		return nil, false
	}
	ki, _ := v1alpha1.LookupKind(k.Kind)
	obj := ki.New()
	if err := json.Unmarshal(doc.Status, obj.GetStatus()); err != nil {
		return nil, false
	}
	return reflectStatus(obj), true
}

// prepareSidecar writes the sidecar status of one resource to a temp
// file; nil when the sidecar already holds it.
func (w *statusWriter) prepareSidecar(key string) (*pendingWrite, error) {
	s := w.s
	kind, name, _ := strings.Cut(key, "/")
	k := Key{kind, name}
	s.mu.RLock()
	e := s.entries[k]
	if e == nil {
		s.mu.RUnlock()
		return nil, nil
	}
	v := e.view(false)
	sj, _ := json.Marshal(v.GetStatus())
	gen := v.GetObjectMeta().Generation
	same := statusDigest(sj) == e.fileStatus && gen == e.fileGen
	s.mu.RUnlock()
	if same {
		return nil, nil
	}
	doc := sidecarDoc{TypeMeta: v1alpha1.TypeMeta{APIVersion: v1alpha1.APIVersion, Kind: kind}, Metadata: v1alpha1.ObjectMeta{Name: name, Generation: gen}, Status: sj}
	b, _ := json.Marshal(doc)
	y, _ := yaml.JSONToYAML(b)
	path := s.sidecarPath(k)
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, err
	}
	tmp, err := writeTemp(path, y)
	if err != nil {
		return nil, err
	}
	return &pendingWrite{key: key, path: path, target: path, tmp: tmp, out: y, done: []*entry{e}, statuses: [][]byte{sj}, gens: []int64{gen}}, nil
}

// commitSidecar renames one prepared sidecar file into place.
func (w *statusWriter) commitSidecar(p *pendingWrite) error {
	if err := os.Rename(p.tmp, p.path); err != nil {
		os.Remove(p.tmp)
		return err
	}
	w.s.mu.Lock()
	p.done[0].fileStatus, p.done[0].fileGen = statusDigest(p.statuses[0]), p.gens[0]
	w.s.mu.Unlock()
	w.writes.Add(1) // after the record of what the file holds: a caller that sees the count sees both
	return nil
}

// swapIn replaces target with tmp as a compare-and-swap: it exchanges the
// two atomically (renameat2 RENAME_EXCHANGE), then checks that what it took
// out of target is the content the edit was based on (expect). If not,
// someone wrote the file between our last check and the exchange: it
// exchanges back, so their bytes win, and reports lost. On success tmp is
// removed. Filesystems without RENAME_EXCHANGE get a re-read and compare
// followed by a plain rename (a window of microseconds).
func swapIn(tmp, target string, expect [32]byte) (lost bool, err error) {
	err = unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, target, unix.RENAME_EXCHANGE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP) {
		if cur, _, rerr := regularfile.Read(target, MaxFileSize); rerr != nil || hashBytes(cur) != expect {
			return true, rerr
		}
		return false, os.Rename(tmp, target)
	}
	if err != nil {
		return false, err
	}
	old, rerr := os.ReadFile(tmp)
	if rerr == nil && hashBytes(old) == expect {
		os.Remove(tmp)
		return false, nil
	}
	if err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, target, unix.RENAME_EXCHANGE); err != nil {
		return true, fmt.Errorf("restore concurrent edit of %s: %w", target, err)
	}
	return true, nil
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

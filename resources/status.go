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

	"golang.org/x/sys/unix"
	"sigs.k8s.io/yaml"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/resources/yamledit"
)

// statusWriter writes status out of the request path. Dirty resources are
// collected and written in batches (group commit: one sync for many
// files), so a burst of status changes costs a few syncs, not thousands.
type statusWriter struct {
	s      *Store
	mu     sync.Mutex
	dirty  map[string]time.Time // inline: file paths; sidecar: Key strings -> when due
	kick   chan struct{}
	writes atomic.Int64 // files written (counted at each rename), for tests and metrics
}

func newStatusWriter(s *Store) *statusWriter {
	return &statusWriter{s: s, dirty: map[string]time.Time{}, kick: make(chan struct{}, 1)}
}

// markDirty schedules an entry's status to be written now if it differs
// from what its file holds. Called with the store lock held.
func (w *statusWriter) markDirty(e *entry) { w.markDirtyAt(e, time.Time{}) }

// markDirtyAt schedules the write for due (zero: now); an earlier due time
// already pending wins. Called with the store lock held.
func (w *statusWriter) markDirtyAt(e *entry, due time.Time) {
	if !e.statusSet && len(e.invalid) == 0 {
		return // nothing of ours to write yet
	}
	var key string
	switch w.s.opts.Status {
	case StatusInline:
		key = e.file
	case StatusSidecar:
		key = e.key.Kind + "/" + e.key.Name
	default:
		return
	}
	w.schedule(key, due)
}

// schedule marks key due at the given time and wakes the writer then.
func (w *statusWriter) schedule(key string, due time.Time) {
	w.mu.Lock()
	if cur, ok := w.dirty[key]; !ok || due.Before(cur) {
		w.dirty[key] = due
	}
	w.mu.Unlock()
	if d := time.Until(due); d > 0 {
		time.AfterFunc(d, w.wake)
		return
	}
	w.wake()
}

func (w *statusWriter) wake() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// forget drops a deleted entry's sidecar status.
func (w *statusWriter) forget(e *entry) {
	if w.s.opts.Status == StatusSidecar {
		os.Remove(w.s.sidecarPath(e.key))
	}
}

// run writes batches until ctx is done, then flushes once more.
func (w *statusWriter) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			w.flush()
			return
		case <-w.kick:
			w.flush()
		}
	}
}

// Flush writes every pending status now. It is for shutdown and tests.
func (s *Store) Flush() { s.writer.flush() }

// Writes returns how many files the status writer has written.
func (s *Store) Writes() int64 { return s.writer.writes.Load() }

// flush writes everything that is due.
func (w *statusWriter) flush() {
	now := time.Now()
	batch := map[string]bool{}
	w.mu.Lock()
	for k, due := range w.dirty {
		if !due.After(now) {
			batch[k] = true
			delete(w.dirty, k)
		}
	}
	w.mu.Unlock()
	switch {
	case len(batch) == 0:
	case w.s.opts.Status == StatusInline:
		w.flushInline(batch)
	default:
		w.flushSidecar(batch)
	}
}

// pendingWrite is one file prepared for the rename step.
type pendingWrite struct {
	path, tmp string
	target    string   // path with symlinks resolved: what the rename replaces
	expect    [32]byte // hash of the content the edit was based on
	out       []byte
	done      []*entry
	statuses  [][]byte
	gens      []int64
}

func (w *statusWriter) flushInline(batch map[string]bool) int {
	paths := make(chan string)
	results := make(chan *pendingWrite)
	// Preparing (read, edit, write a temp file) is independent per file:
	// spread a large batch over a few goroutines.
	// Two are enough: more only contend for the directory's lock in the
	// kernel when the files share a folder.
	workers := min(len(batch), 2)
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for path := range paths {
				results <- w.prepareInline(path)
			}
		}()
	}
	go func() {
		for path := range batch {
			paths <- path
		}
		close(paths)
		wg.Wait()
		close(results)
	}()
	var pending []*pendingWrite
	for p := range results {
		if p != nil {
			pending = append(pending, p)
		}
	}
	return w.commit(pending)
}

// prepareInline computes the new content of one file and writes it to a
// temp file beside it. It returns nil when nothing needs writing.
func (w *statusWriter) prepareInline(path string) *pendingWrite {
	s := w.s
	s.mu.RLock()
	fst := s.files[path]
	if fst == nil || fst.unparsable {
		s.mu.RUnlock()
		return nil // a fix of the file marks its resources dirty again
	}
	expect := fst.hash
	type item struct {
		e      *entry
		status []byte
		gen    int64
		yaml   []byte
	}
	var items []item
	for _, k := range fst.keys {
		e := s.entries[k]
		if e == nil || e.file != path || (!e.statusSet && len(e.invalid) == 0) {
			continue
		}
		v := e.view(false)
		sj, err := json.Marshal(v.GetStatus())
		if err != nil {
			continue
		}
		gen := int64(0)
		if e.obj != nil {
			gen = e.obj.GetObjectMeta().Generation
		}
		if statusDigest(sj) == e.fileStatus && (gen == 0 || gen == e.fileGen) {
			continue
		}
		y, err := yaml.JSONToYAML(sj)
		if err != nil {
			continue
		}
		items = append(items, item{e, sj, gen, y})
	}
	s.mu.RUnlock()
	if len(items) == 0 {
		return nil
	}
	data, ok, err := readFile(path)
	if err != nil || !ok {
		return nil
	}
	if hashBytes(data) != expect {
		// Edited since we parsed it: load the edit first, write after.
		w.retryAfterReload(path)
		return nil
	}
	out := data
	p := &pendingWrite{path: path, expect: expect}
	for _, it := range items {
		edited, err := yamledit.SetStatus(out, it.e.key.Kind, it.e.key.Name, it.gen, it.yaml)
		if err != nil {
			if !errors.Is(err, yamledit.ErrNotFound) {
				s.log.Error(err, "cannot write status into resource file; use --status sidecar for files like this", "path", path, "resource", it.e.key.String())
			}
			continue
		}
		out = edited
		p.done = append(p.done, it.e)
		p.statuses = append(p.statuses, it.status)
		p.gens = append(p.gens, it.gen)
	}
	if len(p.done) == 0 {
		return nil
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
		s.log.Error(err, "cannot write status", "path", path)
		w.retryLater(path)
		return nil
	}
	p.tmp = tmp
	return p
}

// commit makes the prepared temp files durable with as few syncs as
// possible, then renames each over its target if the target is still what
// the edit was based on.
func (w *statusWriter) commit(pending []*pendingWrite) int {
	if len(pending) == 0 {
		return 0
	}
	syncTemps(pending)
	s := w.s
	dirs := map[string]bool{}
	n := 0
	for _, p := range pending {
		// swapIn compares the file with what the edit was based on as part
		// of the swap: an edit we have not seen is never overwritten.
		s.mu.Lock()
		fst := s.files[p.path]
		if fst == nil || fst.hash != p.expect {
			s.mu.Unlock()
			os.Remove(p.tmp)
			w.retryAfterReload(p.path)
			continue
		}
		lost, err := swapIn(p.tmp, p.target, p.expect)
		if err != nil || lost {
			s.mu.Unlock()
			os.Remove(p.tmp)
			if lost {
				// The file changed between our check and the swap; the
				// user's bytes are back in place: load them, write after.
				w.retryAfterReload(p.path)
				continue
			}
			s.log.Error(err, "cannot replace resource file", "path", p.path)
			w.retryLater(p.path)
			continue
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
		dirs[filepath.Dir(p.target)] = true
		n++
	}
	for d := range dirs {
		atomicfile.SyncDir(d)
	}
	return n
}

func (w *statusWriter) retryAfterReload(path string) {
	if w.s.reload != nil {
		w.s.reload(path)
	}
	w.retryLater(path)
}

// retryLater re-marks a file dirty after a short pause (the reload that
// picks up a concurrent edit usually lands first).
func (w *statusWriter) retryLater(key string) {
	w.schedule(key, time.Now().Add(50*time.Millisecond))
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

func (w *statusWriter) flushSidecar(batch map[string]bool) int {
	s := w.s
	var pending []*pendingWrite
	for key := range batch {
		kind, name, _ := strings.Cut(key, "/")
		k := Key{kind, name}
		s.mu.RLock()
		e := s.entries[k]
		if e == nil {
			s.mu.RUnlock()
			continue
		}
		v := e.view(false)
		sj, _ := json.Marshal(v.GetStatus())
		gen := v.GetObjectMeta().Generation
		same := statusDigest(sj) == e.fileStatus && gen == e.fileGen
		s.mu.RUnlock()
		if same {
			continue
		}
		doc := sidecarDoc{TypeMeta: v1alpha1.TypeMeta{APIVersion: v1alpha1.APIVersion, Kind: kind}, Metadata: v1alpha1.ObjectMeta{Name: name, Generation: gen}, Status: sj}
		b, _ := json.Marshal(doc)
		y, _ := yaml.JSONToYAML(b)
		path := s.sidecarPath(k)
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			s.log.Error(err, "cannot write sidecar status", "path", path)
			continue
		}
		tmp, err := writeTemp(path, y)
		if err != nil {
			s.log.Error(err, "cannot write sidecar status", "path", path)
			w.retryLater(key)
			continue
		}
		pending = append(pending, &pendingWrite{path: path, tmp: tmp, out: y, done: []*entry{e}, statuses: [][]byte{sj}, gens: []int64{gen}})
	}
	syncTemps(pending)
	dirs := map[string]bool{}
	for _, p := range pending {
		if err := os.Rename(p.tmp, p.path); err != nil {
			os.Remove(p.tmp)
			continue
		}
		s.mu.Lock()
		p.done[0].fileStatus, p.done[0].fileGen = statusDigest(p.statuses[0]), p.gens[0]
		s.mu.Unlock()
		w.writes.Add(1) // after the record of what the file holds: a caller that sees the count sees both
		dirs[filepath.Dir(p.path)] = true
	}
	for d := range dirs {
		atomicfile.SyncDir(d)
	}
	return len(pending)
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
		if cur, ok, rerr := readFile(target); rerr != nil || !ok || hashBytes(cur) != expect {
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
		return "", err
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
		return "", fmt.Errorf("write temp for %s: %w", path, err)
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

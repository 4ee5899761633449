// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package resources

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/reconciled/reconciled/internal/regularfile"
	"sigs.k8s.io/yaml"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/resources/yamledit"
)

// inlineSink writes statuses into the resources' own documents (--status
// inline, the default), as kubectl shows them: every resource of one file
// in one edit of the file (resources/yamledit keeps comments and
// formatting), swapped in only if the file is still what the edit was
// based on, so an edit by someone else is never overwritten.
type inlineSink struct{}

// Mode is StatusInline.
func (inlineSink) Mode() StatusMode { return StatusInline }

// group is the resource's file.
func (inlineSink) group(e *entry) string { return e.file }

// initialStatus is what the document holds.
func (inlineSink) initialStatus(k Key, doc v1alpha1.Object) any { return documentStatus(k, doc) }

// forget has nothing to do: the document went with the resource.
func (inlineSink) forget(Key) {}

// prepare edits the statuses of every resource of one file that
// needs it, with one parse and one check of the file whatever its number
// of documents.
func (inlineSink) prepare(w *statusWriter, path string) (*pendingWrite, error) {
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
	data, ok, err := s.opts.Source.Read(path)
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

// commit swaps one prepared file in, unless the file changed.
func (inlineSink) commit(w *statusWriter, p *pendingWrite) error {
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

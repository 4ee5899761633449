// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package resources

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/events"
)

// Ignored reports whether a path below the resource directory is skipped:
// anything that is not .yaml/.yml, hidden files and folders, and editor
// leftovers (*~, *.swp, *.swx, .#*, #*#, 4913).
func Ignored(rel string) bool {
	for _, part := range strings.Split(filepath.ToSlash(rel), "/") {
		if strings.HasPrefix(part, ".") && part != "." && part != ".." {
			return true
		}
	}
	base := filepath.Base(rel)
	switch {
	case strings.HasSuffix(base, "~"), strings.HasSuffix(base, ".swp"), strings.HasSuffix(base, ".swx"),
		strings.HasPrefix(base, "#") && strings.HasSuffix(base, "#"), base == "4913":
		return true
	}
	return !strings.HasSuffix(base, ".yaml") && !strings.HasSuffix(base, ".yml")
}

// Load reads every resource file below the directory. It fails only when
// the directory itself cannot be read; problems with single files are
// reported on their resources and in Problems.
func (s *Store) Load() error {
	paths, err := s.scan()
	if err != nil {
		return err
	}
	// Read and decode in parallel (the expensive part), apply in order.
	type result struct {
		hash     [32]byte
		ok       bool
		docs     []*Document
		parseErr error
	}
	results := make([]result, len(paths))
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				r := &results[i]
				var data []byte
				data, r.ok, r.parseErr = s.opts.Source.Read(paths[i])
				r.hash = contentHash(data, r.parseErr)
				if r.ok && r.parseErr == nil {
					r.docs, r.parseErr = s.decode(paths[i], data)
				}
			}
		}()
	}
	for i := range paths {
		next <- i
	}
	close(next)
	wg.Wait()

	// A name defined in several files goes to the file that had it before
	// the restart (if it still defines it), else to the first in order: the
	// program that is running keeps its definition.
	defines := map[string]map[Key]bool{}
	for i, p := range paths {
		defines[p] = map[Key]bool{}
		for _, d := range results[i].docs {
			if d.Identified() {
				defines[p][Key{d.Kind, d.Name}] = true
			}
		}
	}
	winners := map[Key]string{}
	for _, p := range paths {
		for k := range defines[p] {
			if owner := s.gens.owner(k); owner != "" && defines[owner][k] {
				winners[k] = owner
			} else if _, set := winners[k]; !set {
				winners[k] = p
			}
		}
	}
	s.mu.Lock()
	s.loadWinners = winners
	// This host's labels first: they decide which documents apply.
	for _, r := range results {
		for _, d := range r.docs {
			if d.Kind == v1alpha1.KindHost && d.Name == s.opts.Host && d.Object != nil {
				s.hostLabels = hostLabels(s.opts.Host, d.Object)
			}
		}
	}
	s.mu.Unlock()
	for i, p := range paths {
		r := results[i]
		s.applyDecoded(p, r.hash, r.ok, r.docs, r.parseErr)
	}
	s.mu.Lock()
	s.loadWinners = nil
	s.mu.Unlock()
	return nil
}

// scan lists the source's origins and keeps its own problems.
func (s *Store) scan() ([]string, error) {
	paths, problems, err := s.opts.Source.List()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.linkProblems = problems
	s.mu.Unlock()
	return paths, nil
}

// ReasonSymlinkedFolder is the problem reason of a symbolic link to a
// folder inside --dir, which is not followed.
const ReasonSymlinkedFolder = "SymlinkedFolder"

// relist rescans the directory and queues new, changed and vanished files
// for reloading (through the file queue, so no file is ever applied by two
// goroutines at once). Used after an inotify overflow and periodically.
func (s *Store) relist(enqueue func(string)) {
	paths, err := s.scan()
	if err != nil {
		s.log.Error(err, "relist failed")
		return
	}
	seen := make(map[string]bool, len(paths))
	for _, p := range paths {
		seen[p] = true
		enqueue(p)
	}
	s.mu.RLock()
	var gone []string
	for p := range s.files {
		if !seen[p] {
			gone = append(gone, p)
		}
	}
	s.mu.RUnlock()
	for _, p := range gone {
		enqueue(p)
	}
}

// Reload reads path again now, as a watch event for it would. Writers in the
// daemon (the API) call it so that their change is visible at once.
func (s *Store) Reload(path string) { s.reloadFile(path) }

// reloadFile reads one file and applies it to the store, unless its
// content is what the store already holds.
func (s *Store) reloadFile(path string) {
	data, ok, readErr := s.opts.Source.Read(path)
	hash := contentHash(data, readErr)
	if ok {
		s.mu.RLock()
		fs := s.files[path]
		same := fs != nil && fs.hash == hash
		s.mu.RUnlock()
		if same {
			return // unchanged, or our own status write
		}
	}
	parseErr := readErr
	var docs []*Document
	if ok && readErr == nil {
		docs, parseErr = s.decode(path, data)
	}
	s.applyDecoded(path, hash, ok, docs, parseErr)
}

// decode decodes an origin's content, stamping its documents with the
// source's revision (see Revisioner).
func (s *Store) decode(origin string, data []byte) ([]*Document, error) {
	docs, err := DecodeFile(origin, data)
	if rs, ok := s.opts.Source.(Revisioner); ok {
		rev := rs.Revision(origin)
		for _, d := range docs {
			d.Revision = rev
		}
	}
	return docs, err
}

// contentHash identifies what a read gave: the content, or the reason the
// file was refused (so that an unchanged refusal is not applied again).
func contentHash(data []byte, readErr error) [32]byte {
	if readErr != nil {
		return hashBytes([]byte("refused\x00" + readErr.Error()))
	}
	return hashBytes(data)
}

// applyDecoded is apply for content already read (hash is its content
// hash; ok=false: the file is gone) and decoded.
func (s *Store) applyDecoded(path string, hash [32]byte, ok bool, docs []*Document, parseErr error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fst := s.files[path]
	if !ok {
		if fst == nil {
			return
		}
		// Editors may move a file away and write it anew: delete only if
		// it is still gone after a grace period.
		if !s.deletionDue(path, fst) {
			return
		}
		for _, k := range fst.keys {
			s.deleteLocked(k, fmt.Sprintf("its file %s was removed", path))
		}
		delete(s.files, path)
		return
	}
	if fst == nil {
		fst = &fileState{}
		s.files[path] = fst
	}
	fst.hash = hash
	fst.problems = nil
	fst.unparsable = parseErr != nil
	now := metav1.NewTime(time.Now().Truncate(time.Second))

	if parseErr != nil {
		// The file does not parse: keep everything it defined running.
		e := parseErr.(*Error)
		for _, k := range fst.keys {
			s.markInvalidLocked(s.entries[k], []*Error{e}, now)
		}
		if len(fst.keys) == 0 {
			fst.problems = append(fst.problems, Problem{File: path, Line: e.Line, Reason: v1alpha1.ReasonInvalidSpec, Message: e.Error()})
		}
		s.logProblemsLocked(fst, "resource file is invalid; keeping what it defined running", []string{e.Error()})
		return
	}
	// A document without kind or name makes the file unusable for
	// deciding deletions: keep everything, report the document.
	complete := true
	var invalid []string
	for _, d := range docs {
		if !d.Identified() {
			complete = false
			fst.problems = append(fst.problems, Problem{File: path, Line: d.Line, Kind: d.Kind, Name: d.Name, Reason: v1alpha1.ReasonInvalidSpec, Message: d.Err().Error()})
		}
		if d.Err() != nil {
			invalid = append(invalid, d.Err().Error())
		}
	}
	s.logProblemsLocked(fst, "resource document is invalid", invalid)
	var keys, deselected []Key
	for _, d := range docs {
		if !d.Identified() {
			continue
		}
		k := Key{d.Kind, d.Name}
		if !s.selectsLocked(d) {
			deselected = append(deselected, k)
			continue // as if not in the file: deleted after the grace
		}
		if w, ok := s.loadWinners[k]; ok && w != path {
			fst.problems = append(fst.problems, Problem{File: path, Line: d.Line, Kind: d.Kind, Name: d.Name, Reason: v1alpha1.ReasonDuplicateName,
				Message: fmt.Sprintf("%s:%d: %s %q is also defined in %s, which keeps it; this definition is ignored", path, d.Line, d.Kind, d.Name, w)})
			continue
		}
		if e := s.entries[k]; e != nil && e.file != path {
			fst.problems = append(fst.problems, Problem{File: path, Line: d.Line, Kind: d.Kind, Name: d.Name, Reason: v1alpha1.ReasonDuplicateName,
				Message: fmt.Sprintf("%s:%d: %s %q is already defined in %s:%d; this definition is ignored", path, d.Line, d.Kind, d.Name, e.file, e.line)})
			s.log.Info("duplicate resource name; the first definition stays", "kind", d.Kind, "name", d.Name, "file", path, "definedIn", e.file)
			continue
		}
		if slices.Contains(keys, k) {
			fst.problems = append(fst.problems, Problem{File: path, Line: d.Line, Kind: d.Kind, Name: d.Name, Reason: v1alpha1.ReasonDuplicateName,
				Message: fmt.Sprintf("%s:%d: %s %q is defined twice in this file; the first definition is used", path, d.Line, d.Kind, d.Name)})
			continue
		}
		keys = append(keys, k)
		s.upsertLocked(k, d, now)
	}
	fst.incomplete = !complete
	if complete {
		var gone []Key
		for _, k := range fst.keys {
			if !slices.Contains(keys, k) {
				gone = append(gone, k)
			}
		}
		if len(gone) > 0 && !s.deletionDue(path, fst) {
			// A file being written without rename passes through
			// truncated states: keep the vanished resources until the
			// file has settled.
			keys = append(keys, gone...)
		} else {
			for _, k := range gone {
				why := fmt.Sprintf("it was removed from %s", path)
				if slices.Contains(deselected, k) {
					why = fmt.Sprintf("its %s selector in %s does not match this host (%s)", v1alpha1.AnnotationHosts, path, s.hostLabels)
				}
				s.deleteLocked(k, why)
			}
			fst.deleteAfter = time.Time{}
		}
		fst.keys = keys
	} else {
		for _, k := range keys {
			if !slices.Contains(fst.keys, k) {
				fst.keys = append(fst.keys, k)
			}
		}
	}
	if slices.Contains(keys, Key{v1alpha1.KindHost, s.opts.Host}) && s.refreshHostLabelsLocked() {
		s.reselectLocked()
	}
}

// logProblemsLocked logs each problem of a file once: a message logged for
// an earlier read of the file is not logged again (a rescan or a forced
// reload is no news).
func (s *Store) logProblemsLocked(fst *fileState, what string, msgs []string) {
	logged := make(map[string]bool, len(msgs))
	for _, m := range msgs {
		if !fst.logged[m] {
			s.log.Info(what, "error", m)
		}
		logged[m] = true
	}
	fst.logged = logged
}

// deletionDue reports whether pending deletions of a file may happen now;
// the first time it arms a timer that reloads the file after Options.DeleteGrace.
func (s *Store) deletionDue(path string, fst *fileState) bool {
	now := time.Now()
	if !fst.deleteAfter.IsZero() && !now.Before(fst.deleteAfter) {
		return true
	}
	if fst.deleteAfter.IsZero() {
		fst.deleteAfter = now.Add(s.opts.DeleteGrace)
		time.AfterFunc(s.opts.DeleteGrace, func() {
			s.mu.Lock()
			if f := s.files[path]; f != nil {
				f.hash = [32]byte{} // force a real reload
			}
			reload := s.reload
			s.mu.Unlock()
			if reload != nil {
				reload(path)
			}
		})
	}
	return false
}

// upsertLocked creates or updates the entry of one decoded document.
func (s *Store) upsertLocked(k Key, d *Document, now metav1.Time) {
	e := s.entries[k]
	if d.Object == nil {
		if e == nil {
			e = &entry{key: k, file: d.File, line: d.Line, rev: d.Revision}
			s.entries[k] = e
			s.notifyLocked(Added, e, false)
		}
		e.line, e.rev = d.Line, d.Revision
		s.markInvalidLocked(e, d.Errs, now)
		return
	}
	obj := d.Object
	meta := obj.GetObjectMeta()
	meta.ResourceVersion = "" // the API's, never a file's
	fileGen := meta.Generation
	if e == nil || e.obj == nil {
		gen, firstSeen := s.gens.resolve(k, d.SpecHash, d.File, fileGen)
		meta.Generation = gen
		meta.CreationTimestamp = &metav1.Time{Time: firstSeen}
		status := s.initialStatus(k, d)
		obj = obj.WithStatus(status)
		sj, _ := json.Marshal(status)
		fsj := sj
		if !d.HasStatus {
			fsj = nil
		}
		created := e == nil
		if created {
			e = &entry{key: k}
			s.entries[k] = e
		}
		*e = entry{key: k, file: d.File, line: d.Line, rev: d.Revision, obj: obj, specHash: d.SpecHash, statusJSON: sj, fileStatus: statusDigest(fsj), fileGen: fileGen}
		if created {
			s.notifyLocked(Added, e, true)
		} else {
			s.notifyLocked(Modified, e, true)
		}
		return
	}
	changed := len(e.invalid) > 0
	e.invalid = nil
	e.file, e.line, e.rev = d.File, d.Line, d.Revision
	gen := e.obj.GetObjectMeta().Generation
	if d.SpecHash != e.specHash {
		gen++
		changed = true
		s.gens.set(k, d.SpecHash, d.File, gen)
	}
	meta.Generation = gen
	oldMeta := e.obj.GetObjectMeta()
	meta.CreationTimestamp = oldMeta.CreationTimestamp
	if !mapsEqual(oldMeta.Labels, meta.Labels) || !mapsEqual(oldMeta.Annotations, meta.Annotations) {
		changed = true
	}
	// Keep our status; the file's copy of it is ours and only tells us what
	// the file holds now.
	e.obj = obj.WithStatus(reflectStatus(e.obj))
	e.specHash = d.SpecHash
	e.fileGen = fileGen
	e.fileStatus = [32]byte{}
	if d.HasStatus {
		fsj, _ := json.Marshal(d.Object.GetStatus())
		e.fileStatus = statusDigest(fsj)
	}
	if changed {
		s.notifyLocked(Modified, e, true)
	}
	// The file may now lack the status we hold (an edit dropped the
	// block, or a checkout replaced it): write it back. After a spec change
	// the controller is about to publish a new status, so wait a moment
	// rather than write the old one first.
	if changed {
		s.writer.markDirtyAt(e, time.Now().Add(s.opts.SettleAfterChange))
	} else {
		s.writer.markDirty(e)
	}
}

// markInvalidLocked records decode or validation errors on an entry; the
// last valid object stays.
func (s *Store) markInvalidLocked(e *entry, errs []*Error, now metav1.Time) {
	if e == nil {
		return
	}
	if len(e.invalid) == 0 {
		e.invalidAt = now
	}
	e.invalid = errs
	s.notifyLocked(Modified, e, true)
	s.writer.markDirty(e)
}

// deleteLocked removes an entry and lets a duplicate waiting for the name
// take over.
func (s *Store) deleteLocked(k Key, why string) {
	e := s.entries[k]
	if e == nil {
		return
	}
	delete(s.entries, k)
	s.gens.remove(k)
	s.writer.forget(e)
	s.log.V(1).Info("resource deleted", "kind", k.Kind, "name", k.Name, "reason", why)
	if s.opts.Events != nil {
		s.opts.Events.Eventf(k.Kind, k.Name, events.TypeNormal, ReasonDeleted, "deleted: %s", why)
	}
	s.notifyLocked(Deleted, e, true)
	if k.Kind == v1alpha1.KindHost && k.Name == s.opts.Host && s.refreshHostLabelsLocked() {
		s.reselectLocked()
	}
	for p, f := range s.files {
		for _, pr := range f.problems {
			if pr.Reason == v1alpha1.ReasonDuplicateName && pr.Kind == k.Kind && pr.Name == k.Name && p != e.file {
				f.hash = [32]byte{} // force a real reload
				if s.reload != nil {
					s.reload(p)
				}
			}
		}
	}
}

// initialStatus is the status a resource starts with when the daemon first
// sees it: what the file (or sidecar) holds, so counters survive restarts.
func (s *Store) initialStatus(k Key, d *Document) any {
	return s.writer.sink.initialStatus(k, d.Object)
}

// reflectStatus returns the object's status as a value of its Status type.
func reflectStatus(obj v1alpha1.Object) any {
	return reflectValue(obj.GetStatus())
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

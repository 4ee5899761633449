// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package resources

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/reconciled/reconciled/apis/v1alpha1"
)

// sidecarSink writes each resource's status to
// <state-dir>/status/<kind>/<name>.yaml (--status sidecar) and leaves the
// resource files alone: for files reconciled must not write (a git
// checkout, a read-only mount).
type sidecarSink struct{ stateDir string }

// Mode is StatusSidecar.
func (sidecarSink) Mode() StatusMode { return StatusSidecar }

// group is the resource itself.
func (sidecarSink) group(e *entry) string { return e.key.Kind + "/" + e.key.Name }

// forget removes the sidecar of a deleted resource.
func (k sidecarSink) forget(rk Key) { os.Remove(k.path(rk)) }

// sidecarDoc is the content of a sidecar status file.
type sidecarDoc struct {
	v1alpha1.TypeMeta `json:",inline"`
	Metadata          v1alpha1.ObjectMeta `json:"metadata"`
	Status            json.RawMessage     `json:"status"`
}

// path is the sidecar file of a resource.
func (k sidecarSink) path(rk Key) string {
	return filepath.Join(k.stateDir, "status", strings.ToLower(rk.Kind), rk.Name+".yaml")
}

// initialStatus reads the sidecar; a resource without one starts empty.
func (k sidecarSink) initialStatus(rk Key, _ v1alpha1.Object) any {
	b, err := os.ReadFile(k.path(rk))
	if err != nil {
		return empty(rk)
	}
	var doc sidecarDoc
	if err := yaml.Unmarshal(b, &doc); err != nil || len(doc.Status) == 0 {
		return empty(rk)
	}
	ki, _ := v1alpha1.LookupKind(rk.Kind)
	obj := ki.New()
	if err := json.Unmarshal(doc.Status, obj.GetStatus()); err != nil {
		return empty(rk)
	}
	return reflectStatus(obj)
}

// prepare writes the sidecar status of one resource to a temp
// file; nil when the sidecar already holds it.
func (k sidecarSink) prepare(w *statusWriter, key string) (*pendingWrite, error) {
	s := w.s
	kind, name, _ := strings.Cut(key, "/")
	rk := Key{kind, name}
	s.mu.RLock()
	e := s.entries[rk]
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
	path := k.path(rk)
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, err
	}
	tmp, err := writeTemp(path, y)
	if err != nil {
		return nil, err
	}
	return &pendingWrite{key: key, path: path, target: path, tmp: tmp, out: y, done: []*entry{e}, statuses: [][]byte{sj}, gens: []int64{gen}}, nil
}

// commit renames one prepared sidecar file into place.
func (sidecarSink) commit(w *statusWriter, p *pendingWrite) error {
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

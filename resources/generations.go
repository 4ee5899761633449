// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package resources

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"time"
)

// generations remembers, per resource, the spec hash behind its generation
// so a spec changed while the daemon was down still bumps it.
type generations struct {
	path  string
	mu    sync.Mutex
	recs  map[string]genRecord
	dirty bool
}

type genRecord struct {
	Generation int64     `json:"generation"`
	SpecHash   string    `json:"specHash"`
	Created    time.Time `json:"created"`
}

// loadGenerations reads the records; an empty path keeps them in memory only.
func loadGenerations(path string) (*generations, error) {
	g := &generations{path: path, recs: map[string]genRecord{}}
	if path == "" {
		return g, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return g, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read generations: %w", err)
	}
	if err := json.Unmarshal(b, &g.recs); err != nil {
		// A corrupt record only costs generation continuity; start over.
		g.recs = map[string]genRecord{}
	}
	return g, nil
}

// resolve returns the generation and creation time for a resource seen for
// the first time since start: the recorded generation (plus one if the spec
// changed), else the file's, else 1.
func (g *generations) resolve(k Key, hash string, fileGen int64) (int64, time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	r, ok := g.recs[k.String()]
	gen := max(fileGen, 1)
	switch {
	case ok && r.SpecHash == hash:
		gen = max(r.Generation, 1)
	case ok:
		gen = max(r.Generation, fileGen) + 1
	}
	created := r.Created
	if created.IsZero() {
		created = time.Now().Truncate(time.Second)
	}
	if !ok || r.Generation != gen || r.SpecHash != hash || r.Created.IsZero() {
		g.recs[k.String()] = genRecord{gen, hash, created}
		g.dirty = true
	}
	return gen, created
}

func (g *generations) set(k Key, hash string, gen int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	r := g.recs[k.String()]
	g.recs[k.String()] = genRecord{gen, hash, r.Created}
	g.dirty = true
}

func (g *generations) remove(k Key) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.recs[k.String()]; ok {
		delete(g.recs, k.String())
		g.dirty = true
	}
}

// save writes the records atomically when they changed.
func (g *generations) save() error {
	g.mu.Lock()
	if !g.dirty || g.path == "" {
		g.mu.Unlock()
		return nil
	}
	b, err := json.Marshal(g.recs)
	g.dirty = false
	g.mu.Unlock()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(g.path), 0o750); err != nil {
		return err
	}
	return writeFileAtomic(g.path, b, 0o640)
}

// reflectValue dereferences a pointer and returns the pointed-to value.
func reflectValue(p any) any { return reflect.ValueOf(p).Elem().Interface() }

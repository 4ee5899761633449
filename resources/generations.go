// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package resources

import (
	"reflect"
	"time"

	"github.com/reconciled/reconciled/kvlog"
)

// generations remembers, per resource, the spec hash behind its generation
// and when the resource was first seen, so a spec changed while the daemon
// was down still bumps it. Records live in a kvlog (snapshot + append-only
// log): an edit costs one small append whatever the number of resources,
// and survives a kill -9.
type generations struct {
	kv *kvlog.Map[genRecord]
}

type genRecord struct {
	Generation int64     `json:"generation"`
	SpecHash   string    `json:"specHash"`
	Created    time.Time `json:"created"`
	// File defined the resource; on start it wins a duplicate name.
	File string `json:"file,omitempty"`
}

// loadGenerations opens the records at path; an empty path keeps them in
// memory only. A corrupt file is set aside (setAside is told): it only
// costs generation continuity.
func loadGenerations(path string, setAside func(error)) (*generations, error) {
	kv, err := kvlog.OpenOrSetAside[genRecord](path, setAside)
	if err != nil {
		return nil, err
	}
	return &generations{kv: kv}, nil
}

// resolve returns the generation and creation time for a resource seen for
// the first time since start: the recorded generation (plus one if the spec
// changed), else the file's, else 1.
func (g *generations) resolve(k Key, hash, file string, fileGen int64) (int64, time.Time) {
	r, ok := g.kv.Get(k.String())
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
	if !ok || r.Generation != gen || r.SpecHash != hash || r.Created.IsZero() || r.File != file {
		g.kv.Put(k.String(), genRecord{gen, hash, created, file})
	}
	return gen, created
}

// set records a new generation for a changed spec.
func (g *generations) set(k Key, hash, file string, gen int64) {
	r, _ := g.kv.Get(k.String())
	g.kv.Put(k.String(), genRecord{gen, hash, r.Created, file})
}

// owner returns the file that defined the resource when it was recorded.
func (g *generations) owner(k Key) string {
	r, _ := g.kv.Get(k.String())
	return r.File
}

func (g *generations) remove(k Key) { g.kv.Delete(k.String()) }

// close folds the log into the snapshot and closes it.
func (g *generations) close() error { return g.kv.Close() }

// reflectValue dereferences a pointer and returns the pointed-to value.
func reflectValue(p any) any { return reflect.ValueOf(p).Elem().Interface() }

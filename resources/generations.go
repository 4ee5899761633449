// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package resources

import (
	"bufio"
	"bytes"
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
// (and when the resource was first seen), so a spec changed while the
// daemon was down still bumps it.
//
// Storage: a snapshot (generations.json) plus an append-only log
// (generations.log) of changes since. A change costs one small append, not
// a rewrite of every record, so an edit costs the same at 10 or 10,000
// resources; appends survive kill -9 (they are in the page cache). The log
// is folded into the snapshot when it has grown (compact).
type generations struct {
	path    string // snapshot; "" keeps everything in memory
	mu      sync.Mutex
	recs    map[string]genRecord
	log     *os.File
	logged  int // records appended since the last compaction
	changed chan struct{}
}

type genRecord struct {
	Generation int64     `json:"generation"`
	SpecHash   string    `json:"specHash"`
	Created    time.Time `json:"created"`
}

// logEntry is one line of the log; Deleted removes Key.
type logEntry struct {
	Key     string `json:"k"`
	Deleted bool   `json:"d,omitempty"`
	genRecord
}

// loadGenerations reads the snapshot and replays the log; an empty path
// keeps the records in memory only.
func loadGenerations(path string) (*generations, error) {
	g := &generations{path: path, recs: map[string]genRecord{}, changed: make(chan struct{}, 1)}
	if path == "" {
		return g, nil
	}
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read generations: %w", err)
	}
	if len(b) > 0 && json.Unmarshal(b, &g.recs) != nil {
		// A corrupt snapshot only costs generation continuity.
		g.recs = map[string]genRecord{}
	}
	if b, err := os.ReadFile(g.logPath()); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(make([]byte, 4096), 1<<20)
		for sc.Scan() {
			var e logEntry
			if json.Unmarshal(sc.Bytes(), &e) != nil {
				continue // a torn last line after a crash
			}
			if e.Deleted {
				delete(g.recs, e.Key)
			} else {
				g.recs[e.Key] = e.genRecord
			}
			g.logged++
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, err
	}
	g.log, err = os.OpenFile(g.logPath(), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open generations log: %w", err)
	}
	return g, nil
}

func (g *generations) logPath() string { return g.path[:len(g.path)-len(filepath.Ext(g.path))] + ".log" }

// appendLocked records one change in the log and wakes the compactor when
// the log has grown past the snapshot's size.
func (g *generations) appendLocked(e logEntry) {
	if g.log == nil {
		return
	}
	b, _ := json.Marshal(e)
	g.log.Write(append(b, '\n'))
	g.logged++
	if g.logged > len(g.recs)+1000 {
		select {
		case g.changed <- struct{}{}:
		default:
		}
	}
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
		rec := genRecord{gen, hash, created}
		g.recs[k.String()] = rec
		g.appendLocked(logEntry{Key: k.String(), genRecord: rec})
	}
	return gen, created
}

// set records a new generation for a changed spec.
func (g *generations) set(k Key, hash string, gen int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	rec := genRecord{gen, hash, g.recs[k.String()].Created}
	g.recs[k.String()] = rec
	g.appendLocked(logEntry{Key: k.String(), genRecord: rec})
}

func (g *generations) remove(k Key) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.recs[k.String()]; ok {
		delete(g.recs, k.String())
		g.appendLocked(logEntry{Key: k.String(), Deleted: true})
	}
}

// compact writes the snapshot durably and empties the log, when the log
// holds anything. Appends wait while it runs.
func (g *generations) compact() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.log == nil || g.logged == 0 {
		return nil
	}
	b, err := json.Marshal(g.recs)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(g.path, b, 0o640); err != nil {
		return err
	}
	if err := g.log.Truncate(0); err != nil {
		return err
	}
	g.logged = 0
	return nil
}

// close compacts and closes the log.
func (g *generations) close() error {
	err := g.compact()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.log != nil {
		g.log.Close()
		g.log = nil
	}
	return err
}

// reflectValue dereferences a pointer and returns the pointed-to value.
func reflectValue(p any) any { return reflect.ValueOf(p).Elem().Interface() }

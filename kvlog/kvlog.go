// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package kvlog is a small durable map from string keys to JSON values: a
// snapshot file plus an append-only log of changes since the snapshot.
//
// A Put or Delete costs one small append (write(2) with O_APPEND), so the
// cost of a change does not grow with the number of keys, and a change
// survives the process being killed (it is in the page cache). The log is
// folded into the snapshot (written atomically and fsynced) by Compact,
// which Open also does, and which a Map triggers in the background once the
// log holds more lines than the map has keys plus a margin. A torn last
// line after a crash is skipped.
package kvlog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/reconciled/reconciled/internal/atomicfile"
)

// compactMargin is how many log lines beyond the number of keys trigger a
// background compaction.
const compactMargin = 1000

// Map is a durable map of JSON-encodable values of type V. It is safe for
// concurrent use.
type Map[V any] struct {
	path       string
	mu         sync.Mutex
	m          map[string]V
	log        *os.File
	lines      int
	compacting bool
	syncs      int
	// OnError, when set, receives errors of background compactions and
	// appends (a failed append only weakens durability).
	OnError func(error)
}

type line[V any] struct {
	Key     string `json:"k"`
	Deleted bool   `json:"d,omitempty"`
	Value   *V     `json:"v,omitempty"`
}

// ErrCorrupt is wrapped by Open's error for a snapshot that does not
// decode.
var ErrCorrupt = errors.New("corrupt snapshot")

// OpenOrSetAside is Open, except that a corrupt snapshot does not stop the
// caller: the file (and its log) is renamed to path+".corrupt" (and
// ".corrupt.log"), the map starts empty, and setAside is told why, to log
// it and record an event. Every durable state of the daemon opens its file
// this way: what it cost (restart counts, pending alerts, generations) is
// said once, loudly, and the daemon still starts.
func OpenOrSetAside[V any](path string, setAside func(error)) (*Map[V], error) {
	return SetAsideCorrupt(path, Open[V], ErrCorrupt, setAside)
}

// SetAsideCorrupt opens path with open; when that fails with an error
// that is corrupt, the file and its log (path+".log") are renamed to
// path+".corrupt" (and ".corrupt.log"), setAside is told why, and open
// runs again on nothing there. Every snapshot-and-log file of the daemon
// (kvlog maps, histories) is opened through it.
func SetAsideCorrupt[T any](path string, open func(string) (T, error), corrupt error, setAside func(error)) (T, error) {
	v, err := open(path)
	if err == nil || !errors.Is(err, corrupt) {
		return v, err
	}
	if rerr := os.Rename(path, path+".corrupt"); rerr != nil {
		var zero T
		return zero, fmt.Errorf("%w (cannot set it aside: %w)", err, rerr)
	}
	_ = os.Rename(path+".log", path+".corrupt.log")
	if setAside != nil {
		setAside(fmt.Errorf("%w; set aside as %s.corrupt, starting empty", err, path))
	}
	return open(path)
}

// Open loads the map at path (snapshot path, log path+".log"), folds the
// log into the snapshot and opens the log for appending. Missing files are
// an empty map; a corrupt snapshot is an error. An empty path gives a map
// that lives in memory only.
func Open[V any](path string) (*Map[V], error) {
	m := &Map[V]{path: path, m: map[string]V{}}
	if path == "" {
		return m, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &m.m); err != nil {
			return nil, fmt.Errorf("%s: %w: %w", path, ErrCorrupt, err)
		}
	}
	if b, err := os.ReadFile(m.logPath()); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(make([]byte, 4096), 16<<20)
		for sc.Scan() {
			var l line[V]
			if json.Unmarshal(sc.Bytes(), &l) != nil {
				continue // torn write
			}
			if l.Deleted || l.Value == nil {
				delete(m.m, l.Key)
			} else {
				m.m[l.Key] = *l.Value
			}
			m.lines++
		}
	}
	m.log, err = os.OpenFile(m.logPath(), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, err
	}
	if err := m.Compact(); err != nil {
		m.log.Close()
		return nil, err
	}
	return m, nil
}

func (m *Map[V]) logPath() string { return m.path + ".log" }

// Get returns the value of key.
func (m *Map[V]) Get(key string) (V, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.m[key]
	return v, ok
}

// Len returns the number of keys.
func (m *Map[V]) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.m)
}

// Range calls fn for every key and value (in no order) on a snapshot of
// the map; fn may call other methods.
func (m *Map[V]) Range(fn func(key string, v V)) {
	m.mu.Lock()
	snap := make(map[string]V, len(m.m))
	for k, v := range m.m {
		snap[k] = v
	}
	m.mu.Unlock()
	for k, v := range snap {
		fn(k, v)
	}
}

// Put sets key to v.
func (m *Map[V]) Put(key string, v V) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.m[key] = v
	m.appendLocked(line[V]{Key: key, Value: &v})
}

// Delete removes key; deleting a missing key does nothing.
func (m *Map[V]) Delete(key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.m[key]; !ok {
		return
	}
	delete(m.m, key)
	m.appendLocked(line[V]{Key: key, Deleted: true})
}

// Change is one change of an Apply: Value nil deletes Key.
type Change[V any] struct {
	Key   string
	Value *V
}

// Apply makes changes, in order, with one append to the log; with sync it
// also fsyncs the log before it returns, so the changes survive a power
// loss, not just the process (a group commit: one fsync for the batch).
// The map holds the changes even when writing them fails.
func (m *Map[V]) Apply(changes []Change[V], sync bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var buf []byte
	for _, c := range changes {
		l := line[V]{Key: c.Key, Value: c.Value}
		if c.Value == nil {
			delete(m.m, c.Key)
			l.Deleted = true
		} else {
			m.m[c.Key] = *c.Value
		}
		b, err := json.Marshal(l)
		if err != nil {
			return err
		}
		buf = append(append(buf, b...), '\n')
	}
	if err := m.writeLocked(buf, len(changes)); err != nil {
		return err
	}
	if sync && m.log != nil {
		m.syncs++
		if err := m.log.Sync(); err != nil {
			return fmt.Errorf("sync %s: %w", m.logPath(), err)
		}
	}
	return nil
}

// Syncs returns the number of fsyncs Apply made, for tests and benchmarks.
func (m *Map[V]) Syncs() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.syncs
}

func (m *Map[V]) appendLocked(l line[V]) {
	b, err := json.Marshal(l)
	if err == nil {
		err = m.writeLocked(append(b, '\n'), 1)
	}
	if err != nil {
		m.report(err)
	}
}

// writeLocked appends n lines to the log and starts a compaction when the
// log has grown past the map.
func (m *Map[V]) writeLocked(b []byte, n int) error {
	if m.log == nil || len(b) == 0 {
		return nil
	}
	if _, err := m.log.Write(b); err != nil {
		return fmt.Errorf("append to %s: %w", m.logPath(), err)
	}
	m.lines += n
	if m.lines > len(m.m)+compactMargin && !m.compacting {
		m.compacting = true
		go func() {
			if err := m.Compact(); err != nil {
				m.report(err)
			}
		}()
	}
	return nil
}

func (m *Map[V]) report(err error) {
	if m.OnError != nil {
		m.OnError(err)
	}
}

// Compact writes the snapshot durably and empties the log (when the log
// has anything). Changes wait while it runs.
func (m *Map[V]) Compact() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.compacting = false
	if m.log == nil || m.lines == 0 {
		return nil
	}
	b, err := json.Marshal(m.m)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(m.path, b, 0o640); err != nil {
		return fmt.Errorf("compact %s: %w", m.path, err)
	}
	if err := m.log.Truncate(0); err != nil {
		return fmt.Errorf("compact %s: %w", m.path, err)
	}
	m.lines = 0
	return nil
}

// Close compacts and closes the map; later changes are kept in memory only.
func (m *Map[V]) Close() error {
	err := m.Compact()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.log != nil {
		m.log.Close()
		m.log = nil
	}
	return err
}

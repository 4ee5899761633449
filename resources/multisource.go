// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package resources

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// Mount is one source of a MultiSource. Its origins are seen by the store
// as Prefix + the source's own origin name, so two sources whose origins
// could have the same name (two git repositories) stay apart; a folder's
// origins are absolute paths and need no prefix.
type Mount struct {
	Prefix string
	Source Source
}

// MultiSource reads several sources as one (a local folder beside a git
// repository): the store decodes, validates and applies the duplicate
// rule across all of them, so a name defined in two sources is reported
// on both and the first keeps running. A source that cannot be listed
// keeps the origins it listed last: an outage of one source deletes
// nothing, and the others go on.
type MultiSource struct {
	mounts []Mount

	mu       sync.Mutex
	lastList [][]string // per mount, the origins of its last good List
}

var (
	_ Source     = (*MultiSource)(nil)
	_ Revisioner = (*MultiSource)(nil)
)

// NewMultiSource returns the union of mounts. Their prefixes must tell
// their origins apart.
func NewMultiSource(mounts ...Mount) (*MultiSource, error) {
	relative := 0
	for i, a := range mounts {
		if _, dir := a.Source.(*DirSource); a.Prefix == "" && !dir {
			if relative++; relative > 1 {
				return nil, fmt.Errorf("source %s needs a prefix: only one source other than a folder may have none", a.Source.Name())
			}
		}
		for _, b := range mounts[i+1:] {
			if a.Prefix == b.Prefix && a.Prefix != "" {
				return nil, fmt.Errorf("sources %s and %s have the same prefix %q", a.Source.Name(), b.Source.Name(), a.Prefix)
			}
		}
	}
	return &MultiSource{mounts: mounts, lastList: make([][]string, len(mounts))}, nil
}

// Mounts returns the sources, in order.
func (m *MultiSource) Mounts() []Mount { return m.mounts }

// Name joins the sources' names.
func (m *MultiSource) Name() string {
	names := make([]string, len(m.mounts))
	for i, mt := range m.mounts {
		names[i] = mt.Source.Name()
	}
	return strings.Join(names, ", ")
}

// route returns the mount an origin belongs to and the origin's name in
// it: the longest prefix wins, and origins of an unprefixed mount are
// known from its lists.
func (m *MultiSource) route(origin string) (int, string) {
	best, bestLen := -1, -1
	for i, mt := range m.mounts {
		if mt.Prefix != "" && strings.HasPrefix(origin, mt.Prefix) && len(mt.Prefix) > bestLen {
			best, bestLen = i, len(mt.Prefix)
		}
	}
	if best >= 0 {
		return best, strings.TrimPrefix(origin, m.mounts[best].Prefix)
	}
	// Unprefixed mounts: a folder's origins are the absolute paths below
	// it; the one other unprefixed source (NewMultiSource allows one) has
	// relative origins.
	for i, mt := range m.mounts {
		if mt.Prefix != "" {
			continue
		}
		if d, ok := mt.Source.(*DirSource); ok {
			if strings.HasPrefix(origin, d.dir+"/") {
				return i, origin
			}
		} else if !strings.HasPrefix(origin, "/") {
			return i, origin
		}
	}
	return -1, origin
}

// List lists every source. A source that fails keeps its last good list;
// the error is returned only if it never listed.
func (m *MultiSource) List() ([]string, []Problem, error) {
	var all []string
	var problems []Problem
	var errs []error
	for i, mt := range m.mounts {
		origins, probs, err := mt.Source.List()
		m.mu.Lock()
		if err != nil {
			if m.lastList[i] == nil {
				errs = append(errs, err)
			}
			origins = m.lastList[i]
		} else {
			for j, o := range origins {
				origins[j] = mt.Prefix + o
			}
			if origins == nil {
				origins = []string{}
			}
			m.lastList[i] = origins
		}
		m.mu.Unlock()
		all = append(all, origins...)
		problems = append(problems, probs...)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	return all, problems, nil
}

// MountOf returns the index of the mount an origin belongs to, or -1.
func (m *MultiSource) MountOf(origin string) int {
	i, _ := m.route(origin)
	return i
}

// Read reads an origin from its source.
func (m *MultiSource) Read(origin string) ([]byte, bool, error) {
	i, inner := m.route(origin)
	if i < 0 {
		return nil, false, nil
	}
	return m.mounts[i].Source.Read(inner)
}

// Revision returns the revision of the origin's source ("" for a source
// without one).
func (m *MultiSource) Revision(origin string) string {
	i, inner := m.route(origin)
	if i < 0 {
		return ""
	}
	if rs, ok := m.mounts[i].Source.(Revisioner); ok {
		return rs.Revision(inner)
	}
	return ""
}

// Watch watches every source until ctx is done or one cannot watch.
func (m *MultiSource) Watch(ctx context.Context, changed func(string), relist func()) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, len(m.mounts))
	for _, mt := range m.mounts {
		go func() {
			err := mt.Source.Watch(ctx, func(o string) { changed(mt.Prefix + o) }, relist)
			if err != nil {
				err = fmt.Errorf("%s: %w", mt.Source.Name(), err)
			}
			errc <- err
		}()
	}
	var first error
	for range m.mounts {
		if err := <-errc; err != nil && first == nil {
			first = err
			cancel()
		}
	}
	return first
}

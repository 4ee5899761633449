// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package logstore

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	// MinCheckDelay and MaxCheckDelay bound the time between the first
	// write Guard notices and the check it runs for it. Within them the
	// delay is the time the file, at the rate it grew since the previous
	// check, takes to reach MaxBytes: a program flooding its log is checked
	// often, one writing a line now and then at most every MaxCheckDelay.
	MinCheckDelay = 10 * time.Millisecond
	// MaxCheckDelay: see MinCheckDelay. It is also how long a program that
	// suddenly starts flooding writes before the first check sees it.
	MaxCheckDelay = 50 * time.Millisecond
)

// Guard keeps the current log files of one kind in a Store near MaxBytes
// while programs write them. The programs write their files directly, so
// only a prompt check can stop one writing 100 MB/s from filling the disk
// between two periodic sweeps.
//
// Each file has a one-shot inotify IN_MODIFY watch. The first write after
// the watch is armed wakes the Guard, which runs Check for the file a
// little later (see MinCheckDelay) and arms the watch again. A file that
// is not written costs nothing; one written continuously is checked a few
// times a second at most. When no watch can be added (the inotify watch
// limit), the file is left to the caller's periodic sweep.
type Guard struct {
	store *Store
	kind  string
	check func(name string)
	f     *os.File // the inotify instance, for Read and Close
	fd    int      // its descriptor, for the watch calls, under mu

	mu     sync.Mutex
	closed bool
	byWd   map[int32]*guarded
	byName map[string]*guarded
}

// guarded is one watched file.
type guarded struct {
	name     string
	wd       int32 // -1 while the watch is not armed
	pending  bool  // a check is scheduled
	lastSize int64 // the file's size after the previous check
	lastAt   time.Time
	delay    time.Duration
}

// NewGuard starts a Guard over the files of kind in s. check is called
// (from a timer goroutine, never twice at once for a name) when a file has
// been written; it is expected to rotate the file when it is too large,
// typically by calling s.Rotate under the caller's locks. Run delivers the
// events.
func NewGuard(s *Store, kind string, check func(name string)) (*Guard, error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("log guard: inotify: %w", err)
	}
	return &Guard{
		store: s, kind: kind, check: check,
		// A non-blocking descriptor goes to Go's poller, so Close ends a
		// pending Read.
		f:      os.NewFile(uintptr(fd), "inotify"),
		fd:     fd,
		byWd:   map[int32]*guarded{},
		byName: map[string]*guarded{},
	}, nil
}

// Watch starts guarding the current log file of name, which must exist.
// Watching a file again is harmless.
func (g *Guard) Watch(name string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	w := g.byName[name]
	if w == nil {
		w = &guarded{name: name, wd: -1, delay: MaxCheckDelay, lastAt: time.Now()}
		g.byName[name] = w
	}
	if w.pending {
		return nil // the check arms the watch when it is done
	}
	old := w.wd
	if err := g.armLocked(w); err != nil {
		return err
	}
	if old >= 0 && old != w.wd {
		// The old one-shot watch fired and is gone, but its event is
		// not read yet (and now never will be): check for it.
		g.scheduleLocked(w)
	}
	return nil
}

// Close releases the inotify instance, which also ends Run. Watches are
// not checked any more. Closing twice is harmless.
func (g *Guard) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil
	}
	g.closed = true
	return g.f.Close()
}

// Forget stops guarding name, for instance before its files are removed.
func (g *Guard) Forget(name string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	w := g.byName[name]
	if w == nil {
		return
	}
	delete(g.byName, name)
	if w.wd >= 0 {
		delete(g.byWd, w.wd)
		if !g.closed {
			unix.InotifyRmWatch(g.fd, uint32(w.wd))
		}
		w.wd = -1
	}
}

// Watched reports how many files are guarded.
func (g *Guard) Watched() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.byName)
}

// armLocked adds the one-shot watch of w.
func (g *Guard) armLocked(w *guarded) error {
	if g.closed {
		return fmt.Errorf("log guard: closed")
	}
	path := g.store.Path(g.kind, w.name)
	wd, err := unix.InotifyAddWatch(g.fd, path, unix.IN_MODIFY|unix.IN_ONESHOT)
	if err != nil {
		return fmt.Errorf("log guard: watch %s: %w", path, err)
	}
	if w.wd >= 0 && w.wd != int32(wd) {
		delete(g.byWd, w.wd)
	}
	w.wd = int32(wd)
	g.byWd[w.wd] = w
	return nil
}

// Run reads the inotify events until ctx is done, then releases the
// inotify instance.
func (g *Guard) Run(ctx context.Context) {
	stop := context.AfterFunc(ctx, func() { g.Close() })
	defer stop()
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	for {
		n, err := g.f.Read(buf)
		if err != nil {
			// Closed by ctx, or (not expected from inotify) broken: the
			// caller's periodic sweep still bounds the files.
			return
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			off += unix.SizeofInotifyEvent + int(ev.Len)
			g.event(ev.Wd, ev.Mask)
		}
	}
}

// event handles one inotify event. A one-shot watch reports IN_MODIFY
// once, then IN_IGNORED as the kernel removes it; IN_IGNORED alone means
// the file went away.
func (g *Guard) event(wd int32, mask uint32) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if mask&unix.IN_Q_OVERFLOW != 0 {
		// Events were lost, and with them one-shot watches that fired:
		// arm every watch again (an armed one is only updated).
		for _, w := range g.byName {
			if !w.pending {
				g.armLocked(w)
			}
		}
		return
	}
	w := g.byWd[wd]
	if w == nil {
		return
	}
	if mask&unix.IN_IGNORED != 0 || mask&unix.IN_MODIFY != 0 {
		delete(g.byWd, wd)
		w.wd = -1
	}
	if mask&unix.IN_MODIFY == 0 || w.pending {
		return
	}
	g.scheduleLocked(w)
}

// scheduleLocked has w's file checked after its delay, then its watch
// armed again.
func (g *Guard) scheduleLocked(w *guarded) {
	w.pending = true
	time.AfterFunc(w.delay, func() { g.run(w) })
}

// run checks w's file, works out when to check it next and arms its watch
// again.
func (g *Guard) run(w *guarded) {
	path := g.store.Path(g.kind, w.name)
	now := time.Now()
	var before int64
	if fi, err := os.Stat(path); err == nil {
		before = fi.Size()
	}
	g.check(w.name)
	after := before
	if fi, err := os.Stat(path); err == nil {
		after = fi.Size()
	}

	g.mu.Lock()
	defer g.mu.Unlock()
	w.pending = false
	if g.byName[w.name] != w {
		return // forgotten meanwhile
	}
	w.delay = nextDelay(before-w.lastSize, now.Sub(w.lastAt), g.store.maxBytes()-after)
	w.lastSize, w.lastAt = after, now
	g.armLocked(w) // a file gone since is watched again by the next Watch
}

// nextDelay is how long to wait after the next write before checking: the
// time a file growing by grew bytes every elapsed takes to add room more
// bytes, within [MinCheckDelay, MaxCheckDelay].
func nextDelay(grew int64, elapsed time.Duration, room int64) time.Duration {
	if grew <= 0 || elapsed <= 0 {
		return MaxCheckDelay
	}
	if room <= 0 {
		return MinCheckDelay
	}
	d := time.Duration(float64(elapsed) * float64(room) / float64(grew))
	return min(max(d, MinCheckDelay), MaxCheckDelay)
}

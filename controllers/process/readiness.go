// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package process

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/internal/regularfile"
	"github.com/reconciled/reconciled/internal/sdnotify"
	"github.com/reconciled/reconciled/internal/supervise"
)

// ReasonReadinessProbeFailed marks a running program whose check failed.
const ReasonReadinessProbeFailed = "ReadinessProbeFailed"

// listenNotify opens the program's sd_notify socket. Its handler applies
// READY=1, STATUS=, WATCHDOG=1, WATCHDOG=trigger, WATCHDOG_USEC= and
// MAINPID= to the program's state. Any process of the program may send
// (systemd's NotifyAccess=all).
func (r *Reconciler) listenNotify(name, addr string) (*sdnotify.Socket, error) {
	var sock *sdnotify.Socket
	var sockMu sync.Mutex
	sockMu.Lock()
	defer sockMu.Unlock()
	s, err := sdnotify.Listen(addr, func(sender int, m sdnotify.Message, err error) {
		sockMu.Lock()
		mine := sock
		sockMu.Unlock()
		if err != nil {
			r.log.V(1).Info("bad sd_notify message", "name", name, "sender", sender, "error", err.Error())
			return
		}
		p := r.lockProc(name)
		if p == nil {
			return
		}
		if p.notifySock != mine || !p.running {
			p.mu.Unlock()
			return
		}
		// Abstract socket names are visible to every local user: only the
		// program's own processes may speak for it (systemd checks the
		// cgroup; we check the process group and ancestry).
		if !belongs(sender, p) {
			p.mu.Unlock()
			r.log.V(1).Info("ignoring sd_notify message from a process outside the program", "name", name, "sender", sender)
			return
		}
		wake := false
		now := time.Now()
		if m.Status != nil {
			p.notifyMsg = *m.Status
			wake = true
		}
		if m.Ready && !p.ready {
			p.ready, p.readyReason = true, ""
			p.lastWatchdog = now
			wake = true
			r.saveRecord(p)
		}
		if m.Watchdog {
			p.lastWatchdog = now
		}
		if m.WatchdogUSec != nil {
			p.watchdog = time.Duration(*m.WatchdogUSec) * time.Microsecond
			p.lastWatchdog = now
			wake = true
		}
		if m.WatchdogTrigger && p.watchdog > 0 {
			p.lastWatchdog = time.Time{}
			wake = true
		}
		if m.MainPID > 0 && m.MainPID != p.pid && belongs(m.MainPID, p) {
			if st, err := supervise.ProcStartTime(m.MainPID); err == nil {
				if fd, err := supervise.OpenPidFD(m.MainPID, st); err == nil {
					p.pid, p.startTime = m.MainPID, st
					r.watchPid(p, m.MainPID, fd)
					r.saveRecord(p)
				}
			}
		}
		p.mu.Unlock()
		if wake {
			r.enqueue(name)
		}
	})
	if err != nil {
		return nil, err
	}
	sock = s
	return s, nil
}

// belongs reports whether pid is one of the program's processes: the main
// process, a member of its process group, or a descendant of the main
// process (a daemon that moved into its own session).
func belongs(pid int, p *proc) bool {
	if pid <= 0 {
		return false
	}
	if pid == p.pid {
		return true
	}
	if pgid, err := syscall.Getpgid(pid); err == nil && p.pgid > 1 && pgid == p.pgid {
		return true
	}
	for i, cur := 0, pid; i < 32 && cur > 1; i++ {
		ppid, err := supervise.ParentPid(cur)
		if err != nil {
			return false
		}
		if ppid == p.pid {
			return true
		}
		cur = ppid
	}
	return false
}

// runProbe runs one readiness check in its own short-lived goroutine and
// posts the result back. It always enqueues the program afterwards: the
// reconcile that started it returned no requeue time while it ran.
func (r *Reconciler) runProbe(name string, seq uint64, rd *v1alpha1.Readiness) {
	defer r.enqueue(name)
	err := checkReadiness(rd)
	p := r.lockProc(name)
	if p == nil {
		return
	}
	if p.probeSeq != seq || !p.running {
		p.mu.Unlock() // a newer run started meanwhile; its own probe counts
		return
	}
	p.probing = false
	was := p.ready
	p.ready = err == nil
	if err != nil {
		p.readyReason = ReasonReadinessProbeFailed
		p.notifyMsg = err.Error()
	} else {
		p.readyReason, p.notifyMsg = "", ""
	}
	if was != p.ready {
		r.log.V(1).Info("readiness changed", "name", name, "ready", p.ready)
	}
	p.mu.Unlock()
}

// checkReadiness runs one tcp, http or exec readiness check.
func checkReadiness(rd *v1alpha1.Readiness) error {
	timeout := rd.Timeout.Duration
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	switch {
	case rd.TCP != nil:
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", rd.TCP.Address)
		if err != nil {
			return err
		}
		return c.Close()
	case rd.HTTP != nil:
		tr := &http.Transport{DisableKeepAlives: true}
		if sock := rd.HTTP.UnixSocket; sock != "" {
			tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", sock)
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, rd.HTTP.URL, nil)
		if err != nil {
			return err
		}
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
		ok := resp.StatusCode >= 200 && resp.StatusCode < 400
		if len(rd.HTTP.ExpectStatus) > 0 {
			ok = slices.Contains(rd.HTTP.ExpectStatus, resp.StatusCode)
		}
		if !ok {
			return fmt.Errorf("unexpected HTTP status %d", resp.StatusCode)
		}
		return nil
	case rd.Exec != nil:
		out, err := exec.CommandContext(ctx, rd.Exec.Command[0], rd.Exec.Command[1:]...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%w: %s", err, truncate(string(out), 200))
		}
		return nil
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// hashFiles hashes the contents of files ("" for none); a missing or
// unreadable file hashes as such, so its appearance is a change too.
func hashFiles(paths []string) string {
	if len(paths) == 0 {
		return ""
	}
	h := sha256.New()
	for _, p := range paths {
		fmt.Fprintf(h, "%s\x00", p)
		hashFile(h, p)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// maxHashedBytes bounds how much of one restartOnChange file is read; past
// it, its size stands for the rest.
const maxHashedBytes = 64 << 20

// hashFile adds what stands for one restartOnChange file to h: its content,
// or a marker saying it is missing or not a regular file (a FIFO or
// /dev/zero is never read: it would block or never end).
func hashFile(h io.Writer, path string) {
	f, info, err := regularfile.Open(path)
	switch {
	case errors.Is(err, regularfile.ErrNotRegular):
		fmt.Fprintf(h, "\x00not regular %o", info.Mode)
		return
	case err != nil:
		h.Write([]byte("\x00missing"))
		return
	}
	defer f.Close()
	io.Copy(h, io.LimitReader(f, maxHashedBytes))
	if info.Size > maxHashedBytes {
		fmt.Fprintf(h, "\x00size %d", info.Size)
	}
}

// fileWatcher watches the restartOnChange files of every Process with one
// inotify instance, watching parent folders so files replaced by rename
// (editors, config management) are seen.
type fileWatcher struct {
	w        *fsnotify.Watcher
	onChange func(name string)
	mu       sync.Mutex
	byName   map[string][]string
	byPath   map[string]map[string]bool // path -> names
	dirs     map[string]int
}

func newFileWatcher(onChange func(string)) (*fileWatcher, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	fw := &fileWatcher{w: w, onChange: onChange, byName: map[string][]string{}, byPath: map[string]map[string]bool{}, dirs: map[string]int{}}
	go fw.loop()
	return fw, nil
}

func (fw *fileWatcher) loop() {
	for {
		select {
		case ev, ok := <-fw.w.Events:
			if !ok {
				return
			}
			fw.mu.Lock()
			var names []string
			for n := range fw.byPath[filepath.Clean(ev.Name)] {
				names = append(names, n)
			}
			fw.mu.Unlock()
			for _, n := range names {
				fw.onChange(n)
			}
		case _, ok := <-fw.w.Errors:
			if !ok {
				return
			}
		}
	}
}

// set replaces the watched files of one Process (nil: none).
func (fw *fileWatcher) set(name string, paths []string) {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if slices.Equal(fw.byName[name], paths) {
		return
	}
	for _, p := range fw.byName[name] {
		delete(fw.byPath[p], name)
		if len(fw.byPath[p]) == 0 {
			delete(fw.byPath, p)
		}
		d := filepath.Dir(p)
		if fw.dirs[d]--; fw.dirs[d] <= 0 {
			delete(fw.dirs, d)
			fw.w.Remove(d)
		}
	}
	delete(fw.byName, name)
	if len(paths) == 0 {
		return
	}
	fw.byName[name] = slices.Clone(paths)
	for _, p := range paths {
		p = filepath.Clean(p)
		if fw.byPath[p] == nil {
			fw.byPath[p] = map[string]bool{}
		}
		fw.byPath[p][name] = true
		d := filepath.Dir(p)
		if fw.dirs[d] == 0 {
			fw.w.Add(d) // a missing folder is simply not watched
		}
		fw.dirs[d]++
	}
}

func (fw *fileWatcher) close() { fw.w.Close() }

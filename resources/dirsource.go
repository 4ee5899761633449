// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package resources

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/fsnotify/fsnotify"
	"github.com/go-logr/logr"

	"github.com/reconciled/reconciled/internal/regularfile"
)

// DirSource is a folder of resource files (--dir), read recursively and
// watched with inotify. Its origins are the paths of the .yaml and .yml
// files below it (see Ignored); a file that belongs to another user or is
// writable by others is refused unless AllowInsecureFiles.
type DirSource struct {
	dir           string
	allowInsecure bool
	log           logr.Logger

	mu   sync.Mutex
	dirs map[string]bool // watched folders
}

var _ Source = (*DirSource)(nil)

// NewDirSource returns the source of the folder dir.
func NewDirSource(dir string, allowInsecureFiles bool, log logr.Logger) *DirSource {
	return &DirSource{dir: dir, allowInsecure: allowInsecureFiles, log: log, dirs: map[string]bool{}}
}

// Name returns the folder.
func (d *DirSource) Name() string { return d.dir }

// List walks the folder: every resource file, and a problem for each
// symbolic link to a folder (not followed: its files would be read from
// outside the folder, and the API's writer refuses to write through it).
func (d *DirSource) List() ([]string, []Problem, error) {
	if _, err := os.Stat(d.dir); err != nil {
		return nil, nil, fmt.Errorf("resource directory: %w", err)
	}
	var paths []string
	var links []Problem
	err := filepath.WalkDir(d.dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if p == d.dir {
				return err
			}
			d.log.Error(err, "cannot read path in resource directory", "path", p)
			return nil
		}
		rel, _ := filepath.Rel(d.dir, p)
		if e.IsDir() {
			if rel != "." && strings.HasPrefix(e.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if e.Type()&fs.ModeSymlink != 0 && !strings.HasPrefix(e.Name(), ".") {
			if fi, err := os.Stat(p); err == nil && fi.IsDir() {
				target, _ := os.Readlink(p)
				links = append(links, Problem{File: p, Reason: ReasonSymlinkedFolder,
					Message: fmt.Sprintf("%s is a symbolic link to the folder %s; reconciled reads only real folders inside --dir (replace the link by the folder, or point --dir at it)", p, target)})
				return nil
			}
		}
		if !Ignored(rel) {
			paths = append(paths, p)
		}
		return nil
	})
	return paths, links, err
}

// Read reads one file: a regular file of at most MaxFileSize that the
// daemon may trust.
func (d *DirSource) Read(path string) (data []byte, ok bool, err error) {
	data, info, err := regularfile.Read(path, MaxFileSize)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, false, nil
	case errors.Is(err, regularfile.ErrNotRegular):
		return nil, true, &Error{File: path, Message: strings.TrimPrefix(err.Error(), path+" ") + "; only regular files are read"}
	case errors.Is(err, regularfile.ErrTooLarge):
		return nil, true, &Error{File: path, Message: fmt.Sprintf("%s; resource files may be at most %d MiB (split it)", strings.TrimPrefix(err.Error(), path+" "), MaxFileSize>>20)}
	case err != nil:
		return nil, true, &Error{File: path, Message: "cannot read: " + unwrapPathError(err).Error()}
	}
	if msg := d.untrusted(info); msg != "" {
		return nil, true, &Error{File: path, Message: msg}
	}
	return data, true, nil
}

// untrusted says why a file may not define resources, or "". Whoever may
// write a resource file may run any program as the daemon's user, so a
// file must belong to root or to the daemon's user and be writable by its
// owner only (like sudoers or cron's files), unless the daemon runs with
// --allow-insecure-files.
func (d *DirSource) untrusted(info regularfile.Info) string {
	if d.allowInsecure {
		return ""
	}
	if euid := uint32(os.Geteuid()); info.Uid != 0 && info.Uid != euid {
		return fmt.Sprintf("owned by uid %d, not by root or the daemon's user (uid %d): a resource file can run programs as the daemon's user, so it is ignored (chown it, or start reconciled with --allow-insecure-files)", info.Uid, euid)
	}
	if info.Mode&0o022 != 0 {
		return fmt.Sprintf("writable by its group or others (mode %04o): a resource file can run programs as the daemon's user, so it is ignored (chmod go-w it, or start reconciled with --allow-insecure-files)", info.Mode.Perm())
	}
	return ""
}

// unwrapPathError drops the path of a *fs.PathError (the caller names it).
func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Watch follows the folder and every non-hidden folder below it with
// inotify. An overflow of the kernel's queue, a watch error or a watched
// folder that goes away calls relist.
func (d *DirSource) Watch(ctx context.Context, changed func(string), relist func()) error {
	w, err := fsnotify.NewBufferedWatcher(4096)
	if err != nil {
		return err
	}
	defer w.Close()
	if err := d.addWatches(w, d.dir); err != nil {
		return err
	}
	relist() // files changed between List and the watches being in place
	for {
		select {
		case <-ctx.Done():
			return nil
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				d.log.Info("inotify queue overflowed; rescanning the resource directory")
			} else {
				d.log.Error(err, "watch error; rescanning the resource directory")
			}
			relist()
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			d.handleEvent(w, ev, changed, relist)
		}
	}
}

func (d *DirSource) handleEvent(w *fsnotify.Watcher, ev fsnotify.Event, changed func(string), relist func()) {
	rel, err := filepath.Rel(d.dir, ev.Name)
	if err != nil || strings.HasPrefix(rel, "..") {
		return
	}
	if ev.Has(fsnotify.Create) {
		if fi, err := os.Stat(ev.Name); err == nil && fi.IsDir() {
			if !strings.HasPrefix(filepath.Base(ev.Name), ".") {
				// A new folder (mkdir -p, git checkout): watch it and read
				// what is already in it.
				if err := d.addWatches(w, ev.Name); err != nil {
					d.log.Error(err, "cannot watch new folder", "path", ev.Name)
				}
				relist()
			}
			return
		}
	}
	if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
		// A watched folder that went away takes its files with it: list
		// again. (Only folders: relisting on every file rename would make
		// each status write cost as much as the directory is large.)
		d.mu.Lock()
		wasDir := d.dirs[ev.Name]
		delete(d.dirs, ev.Name)
		d.mu.Unlock()
		if wasDir {
			relist()
		}
	}
	if Ignored(rel) {
		return
	}
	// A chmod or chown may make a file untrusted (or trusted again): it is
	// read again like a write; an unchanged file costs a read and a hash.
	changed(ev.Name)
}

// addWatches watches root and every non-hidden folder below it.
func (d *DirSource) addWatches(w *fsnotify.Watcher, root string) error {
	return filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if p == root {
				return err
			}
			return nil
		}
		if !e.IsDir() {
			return nil
		}
		if p != root && strings.HasPrefix(e.Name(), ".") {
			return filepath.SkipDir
		}
		if err := w.Add(p); err != nil {
			d.log.Error(err, "cannot watch folder", "path", p)
			return nil
		}
		d.mu.Lock()
		d.dirs[p] = true
		d.mu.Unlock()
		return nil
	})
}

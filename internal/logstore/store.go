// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package logstore manages the log files of supervised programs.
//
// A supervised program writes its stdout and stderr directly to a file that
// the daemon opened with O_APPEND before exec (see Store.Open), so the
// program never depends on the daemon being alive and there are no pipes to
// fill up. The Store decides where these files live, bounds their size by
// copy-truncate rotation (Store.Rotate) and the package reads them back for
// `reconcilectl logs [-f] [--tail N]` (Tail, Follow).
package logstore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

const (
	// DefaultMaxBytes is the size above which Rotate rotates a log file when
	// Store.MaxBytes is not set.
	DefaultMaxBytes int64 = 10 << 20
	// DefaultKeep is the number of rotated files kept when Store.Keep is not
	// set.
	DefaultKeep = 3

	currentName = "current.log"
	rotatingTmp = currentName + ".rotating"
	dirMode     = 0o750
	fileMode    = 0o640
)

// Store manages per-program log files under Root:
// <Root>/<kind>/<name>/current.log, rotated to current.log.1 (the most
// recent) ... current.log.<Keep>.
//
// kind and name must each be a single, non-empty path element; the methods
// that touch the file system reject anything else. Rotate and Remove must
// not be called concurrently for the same program.
type Store struct {
	// Root is the directory holding all log files.
	Root string
	// MaxBytes is the size of current.log above which Rotate rotates it;
	// DefaultMaxBytes when zero or negative.
	MaxBytes int64
	// Keep is the number of rotated files kept; DefaultKeep when zero or
	// negative.
	Keep int

	// rotations holds a *sync.Mutex per log folder: one rotation of a log
	// at a time (the guard and the periodic sweep may both rotate it, and
	// two rotations would share the temporary file).
	rotations sync.Map
}

func (s *Store) maxBytes() int64 {
	if s.MaxBytes <= 0 {
		return DefaultMaxBytes
	}
	return s.MaxBytes
}

func (s *Store) keep() int {
	if s.Keep <= 0 {
		return DefaultKeep
	}
	return s.Keep
}

// Path returns the path of the current log file of a program. It does not
// create anything nor validate kind and name.
func (s *Store) Path(kind, name string) string {
	return filepath.Join(s.Root, kind, name, currentName)
}

// dir validates kind and name and returns the program's log directory.
func (s *Store) dir(kind, name string) (string, error) {
	if s.Root == "" {
		return "", errors.New("log store has no root directory")
	}
	for _, e := range [...]struct{ what, v string }{{"kind", kind}, {"name", name}} {
		if e.v == "" || e.v == "." || e.v == ".." || strings.ContainsAny(e.v, "/\x00") {
			return "", fmt.Errorf("invalid log %s %q: must be a single path element", e.what, e.v)
		}
	}
	return filepath.Join(s.Root, kind, name), nil
}

// Prepare creates the program's log directory (mode 0750) and returns the
// path of its current log file.
func (s *Store) Prepare(kind, name string) (string, error) {
	dir, err := s.dir(kind, name)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return "", fmt.Errorf("prepare log directory: %w", err)
	}
	return filepath.Join(dir, currentName), nil
}

// Open prepares the program's log directory and opens its current log file
// for appending (O_WRONLY|O_APPEND|O_CREATE, mode 0640), ready to be passed
// to the child as both stdout and stderr. O_APPEND is what lets the program
// keep writing correctly after Rotate truncates the file. The caller closes
// the file once the child has been started.
func (s *Store) Open(kind, name string) (*os.File, error) {
	path, err := s.Prepare(kind, name)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, fileMode)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	return f, nil
}

// Rotate rotates the program's current log file if it is larger than
// MaxBytes, and reports whether it did. A missing log file is not an error.
//
// Rotation is copy-truncate: current.log.(Keep-1) is renamed to
// current.log.Keep and so on down to current.log.1 -> current.log.2, then
// current.log is copied to current.log.1 and truncated to zero length. The
// writers hold current.log open with O_APPEND, so they simply continue at the
// new end of the file, offset 0; nothing needs to be signalled or reopened.
// The price of copytruncate is that lines written between the end of the
// copy and the truncation are lost; the window is a single system call,
// except under a flood: a file found over twice MaxBytes keeps only its
// last MaxBytes (current.log.1 begins with a line saying how much was
// dropped), and the copy stops after MaxBytes more than the file held when
// Rotate began, so a program writing faster than the copy cannot make it
// run forever.
// Rotated files beyond Keep (for instance left over from a larger Keep) are
// deleted.
func (s *Store) Rotate(kind, name string) (bool, error) {
	dir, err := s.dir(kind, name)
	if err != nil {
		return false, err
	}
	mu, _ := s.rotations.LoadOrStore(dir, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	cur := filepath.Join(dir, currentName)
	// The common case, a file below the limit, costs one stat: the daemon
	// checks every program's log periodically, also when idle.
	if fi, err := os.Stat(cur); err == nil && fi.Size() <= s.maxBytes() {
		return false, nil
	}
	f, err := os.OpenFile(cur, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("rotate log: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("rotate log: %w", err)
	}
	if fi.Size() <= s.maxBytes() {
		return false, nil
	}

	// Copy into a temporary file first, so readers never see a partial
	// current.log.1, and so that nothing is shifted or pruned before the
	// copy is safe.
	tmpPath := filepath.Join(dir, rotatingTmp)
	if err := copyForRotation(f, fi.Size(), s.maxBytes(), tmpPath); err != nil {
		os.Remove(tmpPath)
		// The file cannot be kept (typically the disk is full), but it
		// must not grow without bound either: empty it, and say so.
		if terr := f.Truncate(0); terr == nil {
			fmt.Fprintf(f, "[reconciled: %d bytes of this log were dropped: it could not be rotated: %v]\n", fi.Size(), err)
			return true, fmt.Errorf("rotate log: %w (the log was emptied)", err)
		}
		return false, fmt.Errorf("rotate log: %w", err)
	}
	// The copy becomes current.log.1 before current.log is truncated, so
	// that a reader (logs --tail spills into .1 when current.log is short)
	// always finds the latest lines: for an instant they are in both.
	keep := s.keep()
	if err := pruneRotated(dir, keep-1); err != nil {
		os.Remove(tmpPath)
		return false, err
	}
	for i := keep - 1; i >= 1; i-- {
		err := os.Rename(rotatedPath(cur, i), rotatedPath(cur, i+1))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			os.Remove(tmpPath)
			return false, fmt.Errorf("rotate log: %w", err)
		}
	}
	if err := os.Rename(tmpPath, rotatedPath(cur, 1)); err != nil {
		os.Remove(tmpPath)
		return false, fmt.Errorf("rotate log: %w", err)
	}
	if err := f.Truncate(0); err != nil {
		return true, fmt.Errorf("rotate log: truncate: %w", err)
	}
	return true, nil
}

// copyForRotation copies the log f, size bytes long when Rotate looked, to
// a new file at tmpPath, and closes that file. A file over twice max was
// flooded faster than it is checked: only its last max bytes are kept
// (from a line's start), after a line saying how much was dropped, and no
// time (nor disk) is spent on the rest. What the program writes during the
// copy is copied too, in rounds of at most max bytes (again dropping what
// is older than the last max bytes when it writes faster than the copy),
// until a round finds nothing new: the caller truncates right after, so
// that only what is written in that last instant can be lost (logrotate's
// copytruncate has the same window) and the program's last lines, written
// as a flood ends, are kept. (io.CopyN uses copy_file_range.)
func copyForRotation(f *os.File, size, max int64, tmpPath string) error {
	tmp, err := os.OpenFile(tmpPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fileMode)
	if err != nil {
		return err
	}
	done := int64(0) // how much of f the copy has dealt with
	for round := 0; err == nil && size > done && round < maxCopyRounds; round++ {
		from := done
		if size-done > 2*max {
			from = size - max
			// Keep whole lines: start after the newline at or after
			// from-1, if one comes soon.
			buf := make([]byte, 4096)
			if n, _ := f.ReadAt(buf, from-1); n > 0 {
				if i := bytes.IndexByte(buf[:n], '\n'); i >= 0 {
					from += int64(i)
				}
			}
			_, err = fmt.Fprintf(tmp, "[reconciled: %d bytes before this line were dropped: the program wrote faster than its log is rotated]\n", from-done)
		}
		if err == nil {
			_, err = f.Seek(from, io.SeekStart)
		}
		var n int64
		if err == nil {
			if n, err = io.CopyN(tmp, f, size-from); err == io.EOF {
				err = nil
			}
		}
		done = from + n
		if err == nil {
			var fi os.FileInfo
			if fi, err = f.Stat(); err == nil {
				size = fi.Size() // written meanwhile: the next round
			}
		}
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	return nil
}

// maxCopyRounds bounds the rounds of copyForRotation, for a program that
// writes without end: each round copies at most twice the bound.
const maxCopyRounds = 3

// rotatedPath returns the path of the i-th rotated file.
func rotatedPath(cur string, i int) string {
	return cur + "." + strconv.Itoa(i)
}

// pruneRotated deletes the rotated files numbered above max.
func pruneRotated(dir string, max int) error {
	for _, i := range rotatedNumbers(dir) {
		if i > max {
			err := os.Remove(rotatedPath(filepath.Join(dir, currentName), i))
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("rotate log: prune: %w", err)
			}
		}
	}
	return nil
}

// rotatedNumbers lists the numbers of the rotated files in dir, ascending.
func rotatedNumbers(dir string) []int {
	entries, _ := os.ReadDir(dir)
	var nums []int
	for _, e := range entries {
		suffix, ok := strings.CutPrefix(e.Name(), currentName+".")
		if !ok {
			continue
		}
		// Only canonical decimal numbers: "1", not "01" or "+1".
		if i, err := strconv.Atoi(suffix); err == nil && i >= 1 && strconv.Itoa(i) == suffix {
			nums = append(nums, i)
		}
	}
	slices.Sort(nums)
	return nums
}

// Remove deletes every log file of the program, and its log directory.
// Removing the logs of a program that has none is not an error.
func (s *Store) Remove(kind, name string) error {
	dir, err := s.dir(kind, name)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove logs: %w", err)
	}
	return nil
}

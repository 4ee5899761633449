// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package logstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// blockSize is the unit in which files are read backwards.
const blockSize = 64 << 10

// followPoll is the fallback poll interval of Follow, for missed or
// unavailable file system events.
const followPoll = time.Second

// Tail returns the last n lines of the log file at path; everything when
// n <= 0.
//
// The log is read as the most recent rotated file (path + ".1") followed by
// path, so when path holds fewer than n lines the remainder comes from the
// end of path.1. A line is a run of bytes ended by "\n"; a final unterminated
// line counts as a line (and, at the end of path.1, is followed by a "\n" in
// the result). The file is read backwards in blocks, so only the returned
// lines are read even from a very large file. A missing path is an error
// wrapping fs.ErrNotExist; a missing path.1 is not an error.
func Tail(path string, n int) ([]byte, error) {
	data, f, _, err := tailOpen(path, n)
	if err != nil {
		return nil, err
	}
	f.Close()
	return data, nil
}

// tailOpen is Tail that also returns the open file of path and the offset up
// to which it was read, for Follow to continue from.
func tailOpen(path string, n int) (data []byte, f *os.File, end int64, err error) {
	f, err = os.Open(path)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("tail log: %w", err)
	}
	data, lines, end, err := tailFile(f, n)
	if err != nil {
		f.Close()
		return nil, nil, 0, fmt.Errorf("tail log %s: %w", path, err)
	}
	if n > 0 && lines >= n {
		return data, f, end, nil
	}
	// Spill over into the most recent rotated file.
	prev, err := os.Open(path + ".1")
	if errors.Is(err, fs.ErrNotExist) {
		return data, f, end, nil
	}
	if err != nil {
		f.Close()
		return nil, nil, 0, fmt.Errorf("tail log: %w", err)
	}
	defer prev.Close()
	rest := 0
	if n > 0 {
		rest = n - lines
	}
	older, _, _, err := tailFile(prev, rest)
	if err != nil {
		f.Close()
		return nil, nil, 0, fmt.Errorf("tail log %s.1: %w", path, err)
	}
	if len(older) > 0 && older[len(older)-1] != '\n' {
		older = append(older, '\n')
	}
	return append(older, data...), f, end, nil
}

// tailFile returns the last n lines of f (everything when n <= 0), how many
// lines that is, and the offset of the end of the returned data.
func tailFile(f *os.File, n int) (data []byte, lines int, end int64, err error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, 0, err
	}
	size := fi.Size()
	if size == 0 {
		return nil, 0, 0, nil
	}
	start := int64(0)
	if n > 0 {
		start, lines, err = lineStart(f, size, n)
		if err != nil {
			return nil, 0, 0, err
		}
	}
	data = make([]byte, size-start)
	m, err := f.ReadAt(data, start)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, 0, 0, err
	}
	// The file may have been truncated since Stat; return what is there.
	data = data[:m]
	if n <= 0 {
		lines = bytes.Count(data, []byte("\n"))
		if len(data) > 0 && data[len(data)-1] != '\n' {
			lines++
		}
	}
	return data, lines, start + int64(m), nil
}

// lineStart scans f backwards from size and returns the offset at which the
// last n lines begin and the number of lines from there to size (n, or fewer
// if the file is shorter). size must be positive.
func lineStart(f *os.File, size int64, n int) (int64, int, error) {
	buf := make([]byte, min(blockSize, size))
	// A final "\n" ends the last line rather than starting a new one.
	var last [1]byte
	if _, err := f.ReadAt(last[:], size-1); err != nil {
		return 0, 0, err
	}
	pos := size
	if last[0] == '\n' {
		pos--
	}
	found := 0
	for pos > 0 {
		chunk := buf[:min(int64(len(buf)), pos)]
		pos -= int64(len(chunk))
		if _, err := f.ReadAt(chunk, pos); err != nil {
			return 0, 0, err
		}
		for i := len(chunk); ; {
			i = bytes.LastIndexByte(chunk[:i], '\n')
			if i < 0 {
				break
			}
			found++
			if found == n {
				return pos + int64(i) + 1, n, nil
			}
		}
	}
	return 0, found + 1, nil
}

// Follow writes the last n lines of the log file at path to w, like Tail,
// then keeps copying data appended to path to w until ctx is done, when it
// returns nil. It notices truncation (the size shrinks below what was read,
// as after Rotate: copying continues from offset 0) and replacement of the
// file (a new file at path: the rest of the old one is copied, then the new
// one from its start); a removed file is waited for. It wakes up on fsnotify
// events for the file's directory, and also polls every second in case events
// are missed or unavailable.
//
// Truncation followed by a write larger than the amount already read, both
// before Follow looks again, is indistinguishable from an append: Follow then
// skips the start of the new data. Events make that window small.
//
// If w has a Flush() or Flush() error method (http.Flusher, bufio.Writer), it
// is called after each write. A write or flush error ends Follow with that
// error. A missing path at the start is an error wrapping fs.ErrNotExist.
func Follow(ctx context.Context, path string, n int, w io.Writer) error {
	data, f, offset, err := tailOpen(path, n)
	if err != nil {
		return err
	}
	defer func() { f.Close() }()
	if err := writeFlush(w, data); err != nil {
		return err
	}

	// Events are only a hint: without a watcher, polling alone still works.
	dir, base := filepath.Dir(path), filepath.Base(path)
	var events <-chan fsnotify.Event
	var errs <-chan error
	watcher, err := fsnotify.NewWatcher()
	if err == nil {
		defer watcher.Close()
		events, errs = watcher.Events, watcher.Errors
	}
	watching := watcher != nil && watcher.Add(dir) == nil
	ticker := time.NewTicker(followPoll)
	defer ticker.Stop()

	buf := make([]byte, 32<<10)
	for {
		// Copy whatever is new in the open file.
		if fi, err := f.Stat(); err == nil && fi.Size() < offset {
			offset = 0 // truncated
		}
		for {
			m, err := f.ReadAt(buf, offset)
			if m > 0 {
				offset += int64(m)
				if werr := writeFlush(w, buf[:m]); werr != nil {
					return werr
				}
			}
			if err != nil {
				if !errors.Is(err, io.EOF) {
					return fmt.Errorf("follow log %s: %w", path, err)
				}
				break
			}
		}
		// Switch to a new file at path, once the old one is drained.
		if replaced(f, path) {
			if nf, err := os.Open(path); err == nil {
				f.Close()
				f, offset = nf, 0
				continue
			}
		}

	wait:
		for {
			select {
			case <-ctx.Done():
				return nil
			case ev, ok := <-events:
				if !ok {
					events, watching = nil, false
					continue
				}
				if ev.Name == dir && ev.Has(fsnotify.Remove|fsnotify.Rename) {
					watching = false // the watch is gone with the directory
				}
				if filepath.Base(ev.Name) == base || ev.Name == dir {
					break wait
				}
			case _, ok := <-errs:
				if !ok {
					errs = nil
				}
				// An error (such as a queue overflow) may mean lost events.
				break wait
			case <-ticker.C:
				if !watching && events != nil {
					watching = watcher.Add(dir) == nil
				}
				break wait
			}
		}
	}
}

// replaced reports whether path now names a different file than f.
func replaced(f *os.File, path string) bool {
	nfi, err := os.Stat(path)
	if err != nil {
		return false
	}
	ofi, err := f.Stat()
	return err == nil && !os.SameFile(ofi, nfi)
}

// writeFlush writes p to w and flushes w if it can be flushed.
func writeFlush(w io.Writer, p []byte) error {
	if len(p) == 0 {
		return nil
	}
	if _, err := w.Write(p); err != nil {
		return fmt.Errorf("follow log: write: %w", err)
	}
	switch fl := w.(type) {
	case interface{ Flush() error }:
		if err := fl.Flush(); err != nil {
			return fmt.Errorf("follow log: flush: %w", err)
		}
	case interface{ Flush() }:
		fl.Flush()
	}
	return nil
}

// Range returns the bytes [from, to) of the log file at path (a past run's
// output), or only their last n lines when n >= 0.
func Range(path string, from, to int64, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("log range: %w", err)
	}
	defer f.Close()
	if to < from {
		return nil, fmt.Errorf("log range %s: %d..%d is empty", path, from, to)
	}
	b := make([]byte, to-from)
	if _, err := f.ReadAt(b, from); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("log range %s: %w", path, err)
	}
	if n < 0 {
		return b, nil
	}
	if n == 0 {
		return nil, nil
	}
	end := len(b)
	if end > 0 && b[end-1] == '\n' {
		end--
	}
	for i := end - 1; i >= 0; i-- {
		if b[i] == '\n' {
			if n--; n == 0 {
				return b[i+1:], nil
			}
		}
	}
	return b, nil
}

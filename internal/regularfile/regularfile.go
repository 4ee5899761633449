// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package regularfile reads files named by outside input (resource files,
// restartOnChange targets, envFrom and secret files) without letting a
// hostile name stall or exhaust the daemon: a FIFO would block open(2)
// forever, a symlink to /dev/zero never ends, and a 3 GB file fills the
// heap. Read opens with O_NONBLOCK, checks with fstat that the file is a
// regular file, and reads at most a bounded number of bytes.
package regularfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// ErrNotRegular is returned (wrapped) for a FIFO, socket, device or folder.
var ErrNotRegular = errors.New("not a regular file")

// ErrTooLarge is returned (wrapped) for a file over the size limit.
var ErrTooLarge = errors.New("file too large")

// Info is what fstat said about the file that was read.
type Info struct {
	// Uid owns the file.
	Uid uint32
	// Mode holds the permission bits.
	Mode fs.FileMode
	// Size is the size fstat reported.
	Size int64
}

// Read returns the content of the regular file at path (following
// symlinks), which must not be larger than max bytes. A missing file gives
// an error matching fs.ErrNotExist.
func Read(path string, max int64) ([]byte, Info, error) {
	f, info, err := Open(path)
	if err != nil {
		return nil, info, err
	}
	defer f.Close()
	if info.Size > max {
		return nil, info, fmt.Errorf("%s is %d bytes, over the limit of %d: %w", path, info.Size, max, ErrTooLarge)
	}
	// The file may grow after fstat: read one byte more than allowed to
	// notice.
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, info, err
	}
	if int64(len(data)) > max {
		return nil, info, fmt.Errorf("%s grew over the limit of %d bytes while being read: %w", path, max, ErrTooLarge)
	}
	return data, info, nil
}

// Open opens the regular file at path for reading (following symlinks)
// without blocking on a FIFO or device, and returns it with what fstat
// said. Anything but a regular file gives an error matching ErrNotRegular.
func Open(path string) (*os.File, Info, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, Info{}, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		f.Close()
		return nil, Info{}, &fs.PathError{Op: "fstat", Path: path, Err: err}
	}
	info := Info{Uid: st.Uid, Mode: fs.FileMode(st.Mode & 0o7777), Size: st.Size}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		f.Close()
		return nil, info, fmt.Errorf("%s is %s: %w", path, describe(st.Mode), ErrNotRegular)
	}
	return f, info, nil
}

// describe names the type of a file for error messages.
func describe(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFIFO:
		return "a FIFO"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	case unix.S_IFDIR:
		return "a folder"
	}
	return "not a regular file"
}

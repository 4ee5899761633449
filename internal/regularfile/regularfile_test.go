// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package regularfile

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	path := func(n string) string { return filepath.Join(dir, n) }
	if err := os.WriteFile(path("ok.yaml"), []byte("hello"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(path("fifo.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/zero", path("zero.yaml")); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", path("sock.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := os.Mkdir(path("dir.yaml"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path("big.yaml"), make([]byte, 101), 0o644); err != nil {
		t.Fatal(err)
	}

	data, info, err := Read(path("ok.yaml"), 100)
	if err != nil || string(data) != "hello" || info.Mode.Perm() != 0o640 || info.Uid != uint32(os.Geteuid()) {
		t.Errorf("Read(ok) = %q, %+v, %v", data, info, err)
	}
	for name, want := range map[string]string{"fifo.yaml": "a FIFO", "zero.yaml": "a character device", "dir.yaml": "a folder"} {
		// A FIFO with no writer would block a plain open for ever: this
		// returns at once.
		if _, _, err := Read(path(name), 100); !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), want) {
			t.Errorf("Read(%s) = %v, want ErrNotRegular naming %q", name, err, want)
		}
	}
	// A unix socket cannot be opened at all.
	if _, _, err := Read(path("sock.yaml"), 100); err == nil {
		t.Error("Read(socket) succeeded")
	}
	if _, _, err := Read(path("big.yaml"), 100); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Read(big) = %v, want ErrTooLarge", err)
	}
	if _, _, err := Read(path("missing.yaml"), 100); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Read(missing) = %v, want fs.ErrNotExist", err)
	}
}

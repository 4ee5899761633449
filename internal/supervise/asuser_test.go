// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package supervise

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/reconciled/reconciled/test/fixtures"
)

// nobody is the credential of the nobody user (65534), as Debian has it.
var nobody = &syscall.Credential{Uid: 65534, Gid: 65534}

// sharedTempDir returns a temp folder (root's, 0755) that other users may
// enter; it skips the test when not root.
func sharedTempDir(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		fixtures.SkipOrFail(t, "needs root to act as another user")
	}
	dir := t.TempDir()
	os.Chmod(filepath.Dir(dir), 0o755)
	os.Chmod(dir, 0o755)
	return dir
}

// TestRemoveFilesAsUser: removeBeforeStart of a program with user: nobody
// cannot delete what nobody may not (issue 11: it ran as root).
func TestRemoveFilesAsUser(t *testing.T) {
	dir := sharedTempDir(t)
	rootFile := filepath.Join(dir, "root.sock")
	os.WriteFile(rootFile, nil, 0o644)
	if err := RemoveFiles([]string{rootFile}, nobody); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("nobody removed root's file: %v", err)
	}
	if _, err := os.Stat(rootFile); err != nil {
		t.Errorf("root's file is gone: %v", err)
	}
	// In a folder nobody owns, it works; a missing file is fine.
	own := filepath.Join(dir, "nobody")
	os.Mkdir(own, 0o755)
	os.Chown(own, 65534, 65534)
	stale := filepath.Join(own, "stale.sock")
	os.WriteFile(stale, nil, 0o644)
	if err := RemoveFiles([]string{stale, filepath.Join(own, "missing")}, nobody); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale file left: %v", err)
	}
	// The daemon's own threads kept their identity.
	if err := os.WriteFile(filepath.Join(dir, "after"), nil, 0o600); err != nil {
		t.Errorf("the daemon lost root's permissions: %v", err)
	}
}

// TestOpenOutput: output files are opened as the program's user, and what
// is not a regular file or character device is refused without blocking.
func TestOpenOutput(t *testing.T) {
	dir := sharedTempDir(t)
	if _, err := OpenOutput("/etc/reconciled-test-should-not-exist.log", nobody); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("nobody could create a file in /etc: %v", err)
	}
	fifo := filepath.Join(dir, "fifo")
	syscall.Mkfifo(fifo, 0o666)
	if _, err := OpenOutput(fifo, nil); err == nil {
		t.Error("a FIFO was accepted as output")
	}
	if _, err := OpenOutput(dir, nil); err == nil {
		t.Error("a folder was accepted as output")
	}
	f, err := OpenOutput("/dev/null", nobody)
	if err != nil {
		t.Fatalf("/dev/null: %v", err)
	}
	f.Close()
	own := filepath.Join(dir, "logs")
	os.Mkdir(own, 0o755)
	os.Chown(own, 65534, 65534)
	f, err = OpenOutput(filepath.Join(own, "sub", "out.log"), nobody)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	fi, err := os.Stat(filepath.Join(own, "sub", "out.log"))
	if err != nil || fi.Sys().(*syscall.Stat_t).Uid != 65534 {
		t.Errorf("the log file is not nobody's: %v", err)
	}
	if _, err := os.Stat("/etc/reconciled-test-should-not-exist.log"); err == nil || !strings.Contains(err.Error(), "no such file") {
		os.Remove("/etc/reconciled-test-should-not-exist.log")
		t.Error("the file in /etc was created")
	}
}

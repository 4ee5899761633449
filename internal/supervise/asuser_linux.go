// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package supervise

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"unsafe"
)

// asUser runs fn on an OS thread whose filesystem identity (fsuid, fsgid
// and supplementary groups) is cred's, so that the files fn touches are
// checked against the program's user, as systemd does for a unit's
// ExecStartPre= and StandardOutput=file: of a unit with User=. Changing
// the fsuid from 0 drops the capabilities that bypass permission checks
// (CAP_DAC_OVERRIDE, CAP_FOWNER, ...) on that thread only. The thread is
// never handed back to the Go scheduler: it exits with the goroutine. A nil
// cred runs fn as the daemon.
func asUser(cred *syscall.Credential, fn func() error) error {
	if cred == nil {
		return fn()
	}
	done := make(chan error, 1)
	go func() {
		// Not unlocked on purpose: a goroutine that ends locked takes its
		// thread, and the changed identity, with it.
		runtime.LockOSThread()
		if err := setThreadFSIdentity(cred); err != nil {
			done <- err
			return
		}
		done <- fn()
	}()
	return <-done
}

// setThreadFSIdentity sets the calling thread's supplementary groups, fsgid
// and fsuid with raw system calls (the syscall package's wrappers apply to
// every thread of the process).
func setThreadFSIdentity(cred *syscall.Credential) error {
	groups := cred.Groups
	var p unsafe.Pointer
	if len(groups) > 0 {
		p = unsafe.Pointer(&groups[0])
	}
	if _, _, errno := syscall.RawSyscall(syscall.SYS_SETGROUPS, uintptr(len(groups)), uintptr(p), 0); errno != 0 {
		return fmt.Errorf("setgroups: %w", errno)
	}
	// setfsgid and setfsuid return the previous id and report no error:
	// asking again returns the current one, which must be the new id.
	syscall.RawSyscall(syscall.SYS_SETFSGID, uintptr(cred.Gid), 0, 0)
	if g, _, _ := syscall.RawSyscall(syscall.SYS_SETFSGID, ^uintptr(0), 0, 0); uint32(g) != cred.Gid {
		return fmt.Errorf("setfsgid %d: the daemon may not take that group", cred.Gid)
	}
	syscall.RawSyscall(syscall.SYS_SETFSUID, uintptr(cred.Uid), 0, 0)
	if u, _, _ := syscall.RawSyscall(syscall.SYS_SETFSUID, ^uintptr(0), 0, 0); uint32(u) != cred.Uid {
		return fmt.Errorf("setfsuid %d: the daemon may not take that user", cred.Uid)
	}
	return nil
}

// RemoveFiles deletes paths (missing ones are fine) with the permissions of
// cred's user (nil: the daemon's), for removeBeforeStart.
func RemoveFiles(paths []string, cred *syscall.Credential) error {
	if len(paths) == 0 {
		return nil
	}
	return asUser(cred, func() error {
		for _, p := range paths {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		return nil
	})
}

// OpenOutput opens (creating it and missing parent folders, mode 0640 and
// 0750) a file named by the user for a program's standard output or error,
// with the permissions of cred's user (nil: the daemon's). It refuses what
// is neither a regular file nor a character device (/dev/null,
// /dev/console): a FIFO would block the opener or the program, a folder or
// socket cannot take output. The file is opened for appending,
// close-on-exec in the daemon.
func OpenOutput(path string, cred *syscall.Credential) (*os.File, error) {
	var f *os.File
	err := asUser(cred, func() error {
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return err
		}
		var err error
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0o640)
		return err
	})
	if err != nil {
		// Opening a FIFO without a reader (ENXIO) or a socket fails:
		// name what it is rather than the errno.
		if fi, serr := os.Stat(path); serr == nil && !fi.Mode().IsRegular() && fi.Mode()&os.ModeCharDevice == 0 {
			return nil, fmt.Errorf("%s is %s, not a regular file or character device", path, describeMode(fi.Mode()))
		}
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil {
		switch m := fi.Mode(); {
		case m.IsRegular(), m&os.ModeCharDevice != 0:
		default:
			err = fmt.Errorf("%s is %s, not a regular file or character device", path, describeMode(m))
		}
	}
	if err == nil {
		// Back to blocking writes for the program.
		err = setBlocking(f)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// setBlocking clears O_NONBLOCK on f.
func setBlocking(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = syscall.SetNonblock(int(fd), false) }); err != nil {
		return err
	}
	return serr
}

// describeMode names a file type for error messages.
func describeMode(m os.FileMode) string {
	switch {
	case m&os.ModeNamedPipe != 0:
		return "a FIFO"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeDevice != 0:
		return "a block device"
	case m.IsDir():
		return "a folder"
	}
	return "not a regular file"
}

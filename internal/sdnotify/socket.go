// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package sdnotify

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// maxSunPath is the usable length of sockaddr_un.sun_path on Linux.
const maxSunPath = 107

// Socket is a unixgram socket bound to one address that receives sd_notify
// datagrams for one program.
//
// Addresses beginning with "@" are Linux abstract-namespace sockets (the
// NOTIFY_SOCKET convention); any other address is a filesystem path. The
// socket has SO_PASSCRED enabled, so every datagram carries the sender's pid
// as verified by the kernel (SCM_CREDENTIALS). File descriptors passed with a
// datagram (FDSTORE=1, or the pipe of sd_notify_barrier(3)) are closed right
// away, which also makes sd_notify_barrier return.
type Socket struct {
	addr    string
	conn    *net.UnixConn
	handler func(senderPID int, m Message, err error)

	// path sockets: the identity of the socket file we created, so Close
	// removes it only if it was not replaced in the meantime.
	fileInfo fs.FileInfo

	closeOnce sync.Once
	closeErr  error
	closing   chan struct{}
	done      chan struct{}
}

// Listen binds a unixgram socket to addr and starts one goroutine reading
// datagrams from it. handler is called from that goroutine, sequentially, for
// every datagram: with the parsed Message, or with a non-nil error for an
// unparsable datagram (or, with senderPID 0, for a failed read). handler must
// not block for long and must not call Close.
//
// An address beginning with "@" names an abstract-namespace socket. Any other
// address is a filesystem path, made absolute; its parent directory is
// created with mode 0750, and a stale socket file at the path (one nobody is
// bound to) is removed first. Listen fails if another socket is still bound
// to the address, or if a non-socket file exists at the path.
func Listen(addr string, handler func(senderPID int, m Message, err error)) (*Socket, error) {
	if handler == nil {
		return nil, errors.New("notify listen: nil handler")
	}
	abstract := len(addr) > 0 && addr[0] == '@'
	switch {
	case addr == "" || addr == "@":
		return nil, fmt.Errorf("notify listen: empty address %q", addr)
	case abstract:
		if len(addr)-1 > maxSunPath {
			return nil, fmt.Errorf("notify listen %q: abstract name longer than %d bytes", addr, maxSunPath)
		}
	default:
		abs, err := filepath.Abs(addr)
		if err != nil {
			return nil, fmt.Errorf("notify listen %q: %w", addr, err)
		}
		addr = abs
		if len(addr) > maxSunPath {
			return nil, fmt.Errorf("notify listen %q: socket path longer than %d bytes", addr, maxSunPath)
		}
		if err := os.MkdirAll(filepath.Dir(addr), 0o750); err != nil {
			return nil, fmt.Errorf("notify listen: %w", err)
		}
		if err := removeStale(addr); err != nil {
			return nil, fmt.Errorf("notify listen %q: %w", addr, err)
		}
	}

	lc := net.ListenConfig{
		// Control runs after socket(2) and before bind(2), so no datagram
		// can arrive without credentials.
		Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1)
			}); err != nil {
				return err
			}
			if serr != nil {
				return fmt.Errorf("set SO_PASSCRED: %w", serr)
			}
			return nil
		},
	}
	pc, err := lc.ListenPacket(context.Background(), "unixgram", addr)
	if err != nil {
		return nil, fmt.Errorf("notify listen: %w", err)
	}
	s := &Socket{
		addr:    addr,
		conn:    pc.(*net.UnixConn),
		handler: handler,
		closing: make(chan struct{}),
		done:    make(chan struct{}),
	}
	if !abstract {
		if s.fileInfo, err = os.Lstat(addr); err != nil {
			_ = s.conn.Close()
			return nil, fmt.Errorf("notify listen: %w", err)
		}
	}
	go s.serve()
	return s, nil
}

// removeStale removes a socket file at path that nobody is bound to.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket", fi.Mode().Type())
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err == nil {
		_ = c.Close()
		return fmt.Errorf("socket is in use: %w", syscall.EADDRINUSE)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale socket: %w", err)
	}
	return nil
}

// Addr returns the NOTIFY_SOCKET value to give the child: "@name" for an
// abstract socket, an absolute path otherwise.
func (s *Socket) Addr() string { return s.addr }

// Close stops reading and, for a filesystem socket, removes the socket file
// (unless it was replaced by someone else). No handler call is in progress or
// starts after Close returns. Close is idempotent; it must not be called
// from the handler.
func (s *Socket) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		if err := s.conn.Close(); err != nil {
			s.closeErr = fmt.Errorf("notify close %q: %w", s.addr, err)
		}
		<-s.done
		if s.fileInfo != nil {
			if fi, err := os.Lstat(s.addr); err == nil && os.SameFile(fi, s.fileInfo) {
				if err := os.Remove(s.addr); err != nil && !errors.Is(err, fs.ErrNotExist) && s.closeErr == nil {
					s.closeErr = fmt.Errorf("notify close: %w", err)
				}
			}
		}
	})
	return s.closeErr
}

// oobSize fits the credentials plus the most file descriptors one message
// can carry (SCM_MAX_FD).
var oobSize = unix.CmsgSpace(unix.SizeofUcred) + unix.CmsgSpace(253*4)

// serve reads datagrams until the socket is closed.
func (s *Socket) serve() {
	defer close(s.done)
	// One byte more than allowed, so oversized datagrams are detected.
	buf := make([]byte, MaxMessageSize+1)
	oob := make([]byte, oobSize)
	failures := 0
	for {
		n, oobn, flags, _, err := s.conn.ReadMsgUnix(buf, oob)
		if err != nil {
			select {
			case <-s.closing:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.handler(0, Message{}, fmt.Errorf("notify read %q: %w", s.addr, err))
			// Back off on repeated failures instead of spinning.
			failures++
			delay := min(time.Duration(failures)*10*time.Millisecond, time.Second)
			select {
			case <-s.closing:
				return
			case <-time.After(delay):
			}
			continue
		}
		failures = 0
		pid := senderPID(oob[:oobn])
		if flags&unix.MSG_TRUNC != 0 {
			s.handler(pid, Message{}, fmt.Errorf("notify message exceeds the limit of %d bytes", MaxMessageSize))
			continue
		}
		m, perr := ParseMessage(buf[:n])
		s.handler(pid, m, perr)
	}
}

// senderPID extracts the pid from SCM_CREDENTIALS and closes any file
// descriptors passed with SCM_RIGHTS.
func senderPID(oob []byte) int {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0
	}
	pid := 0
	for i := range msgs {
		m := &msgs[i]
		if m.Header.Level != unix.SOL_SOCKET {
			continue
		}
		switch m.Header.Type {
		case unix.SCM_CREDENTIALS:
			if cred, err := unix.ParseUnixCredentials(m); err == nil {
				pid = int(cred.Pid)
			}
		case unix.SCM_RIGHTS:
			if fds, err := unix.ParseUnixRights(m); err == nil {
				for _, fd := range fds {
					_ = unix.Close(fd)
				}
			}
		}
	}
	return pid
}

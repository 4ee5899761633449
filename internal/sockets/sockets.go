// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

//go:build linux

// Package sockets binds the sockets of Process.spec.sockets for socket
// activation, keeps them while the program restarts, and takes them back
// from a running program after the daemon restarted.
//
// The daemon holds every socket from the first start of the program on;
// the program receives copies (file descriptors 3, 4, ...). Between two
// runs the kernel keeps queueing connections (up to the backlog) and
// datagrams on the daemon's copy, so clients wait instead of being
// refused, as with systemd's .socket units.
package sockets

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reconciled/reconciled/apis/v1alpha1"
)

// Socket is one socket the daemon holds for a program.
type Socket struct {
	// Spec is the socket's spec, as last applied.
	Spec v1alpha1.Socket
	// Network is "tcp", "udp" or "unix".
	Network string
	// Address is the bound address: HOST:PORT as the kernel reports it
	// (the chosen port for port 0), or the unix socket's path.
	Address string

	file *os.File
	// ino identifies a unix socket's file, so that Close removes only the
	// file this socket made.
	ino uint64
}

// File is the socket's descriptor, to pass to the program.
func (s *Socket) File() *os.File { return s.file }

// Status describes the socket for ProcessStatus.Sockets.
func (s *Socket) Status() v1alpha1.SocketStatus {
	return v1alpha1.SocketStatus{Name: s.Spec.Name, Listen: s.Spec.Listen, Address: s.Address}
}

// Close closes the daemon's copy. With removeFile, a unix socket's file
// goes too (when it is still the one Bind made): do that when the socket is
// no longer wanted, not when the daemon merely exits while the program
// keeps serving on it.
func (s *Socket) Close(removeFile bool) {
	if s == nil || s.file == nil {
		return
	}
	if removeFile && s.Network == "unix" && s.ino != 0 {
		var st unix.Stat_t
		if unix.Lstat(s.Address, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFSOCK && st.Ino == s.ino {
			_ = os.Remove(s.Address)
		}
	}
	s.file.Close()
	s.file = nil
}

// BindError is a socket that could not be bound; the Process reports it as
// the SocketBindFailed reason.
type BindError struct {
	// Listen is the spec's listen value.
	Listen string
	Err    error
}

func (e *BindError) Error() string { return fmt.Sprintf("socket %s: %v", e.Listen, e.Err) }
func (e *BindError) Unwrap() error { return e.Err }

// Bind binds (and, for tcp and unix, listens on) the socket spec
// describes. spec must be defaulted and valid.
func Bind(spec v1alpha1.Socket) (*Socket, error) {
	s, err := bind(spec)
	if err != nil {
		return nil, &BindError{Listen: spec.Listen, Err: err}
	}
	return s, nil
}

func bind(spec v1alpha1.Socket) (*Socket, error) {
	network, addr, err := v1alpha1.ParseSocketListen(spec.Listen)
	if err != nil {
		return nil, err
	}
	s := &Socket{Spec: spec, Network: network}
	var lc net.ListenConfig
	switch network {
	case "tcp":
		l, err := lc.Listen(context.Background(), network, addr)
		if err != nil {
			return nil, err
		}
		s.file, err = l.(*net.TCPListener).File()
		l.Close()
		if err != nil {
			return nil, err
		}
	case "udp":
		c, err := lc.ListenPacket(context.Background(), network, addr)
		if err != nil {
			return nil, err
		}
		s.file, err = c.(*net.UDPConn).File()
		c.Close()
		if err != nil {
			return nil, err
		}
	case "unix":
		if err := clearStale(addr); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(parent(addr), 0o755); err != nil {
			return nil, err
		}
		l, err := lc.Listen(context.Background(), network, addr)
		if err != nil {
			return nil, err
		}
		ul := l.(*net.UnixListener)
		ul.SetUnlinkOnClose(false)
		s.file, err = ul.File()
		l.Close()
		if err != nil {
			os.Remove(addr)
			return nil, err
		}
		s.Address = addr
		var st unix.Stat_t
		if err := unix.Lstat(addr, &st); err == nil {
			s.ino = st.Ino
		}
		if err := s.applyFile(v1alpha1.Socket{}); err != nil {
			s.Close(true)
			return nil, err
		}
	}
	if err := s.applyBacklog(0); err != nil {
		s.Close(true)
		return nil, err
	}
	if s.Address, err = localAddress(int(s.file.Fd())); err != nil {
		s.Close(true)
		return nil, err
	}
	return s, nil
}

// clearStale removes a unix socket file nobody listens on (left by a
// daemon or program that died); it refuses to touch a live socket or a file
// that is not a socket.
func clearStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket; remove it if it is not needed", path)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("%s: another program is listening on it", path)
	}
	return os.Remove(path)
}

// parent returns the folder of path.
func parent(path string) string {
	for i := len(path) - 1; i > 0; i-- {
		if path[i] == '/' {
			return path[:i]
		}
	}
	return "/"
}

// applyBacklog listens again with the spec's backlog when it differs from
// old (Linux changes the queue length of a listening socket in place).
func (s *Socket) applyBacklog(old int) error {
	if s.Network == "udp" || s.Spec.Backlog == old {
		return nil
	}
	if err := syscall.Listen(int(s.file.Fd()), s.Spec.Backlog); err != nil {
		return fmt.Errorf("set backlog %d: %w", s.Spec.Backlog, err)
	}
	return nil
}

// applyFile sets a unix socket file's mode and owners where they differ
// from old.
func (s *Socket) applyFile(old v1alpha1.Socket) error {
	if s.Network != "unix" {
		return nil
	}
	if s.Spec.Mode != old.Mode {
		mode, err := v1alpha1.ParseSocketMode(s.Spec.Mode)
		if err != nil {
			return err
		}
		if err := os.Chmod(s.Address, os.FileMode(mode)); err != nil {
			return err
		}
	}
	if s.Spec.Owner == old.Owner && s.Spec.Group == old.Group {
		return nil
	}
	uid, gid := -1, -1
	var err error
	if s.Spec.Owner != "" {
		if uid, err = lookupID(s.Spec.Owner, userID); err != nil {
			return fmt.Errorf("owner: %w", err)
		}
	}
	if s.Spec.Group != "" {
		if gid, err = lookupID(s.Spec.Group, groupID); err != nil {
			return fmt.Errorf("group: %w", err)
		}
	}
	return os.Lchown(s.Address, uid, gid)
}

func userID(name string) (string, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return "", err
	}
	return u.Uid, nil
}

func groupID(name string) (string, error) {
	g, err := user.LookupGroup(name)
	if err != nil {
		return "", err
	}
	return g.Gid, nil
}

// lookupID resolves a user or group name, or takes a numeric id as is.
func lookupID(s string, byName func(string) (string, error)) (int, error) {
	if n, err := strconv.Atoi(s); err == nil && n >= 0 {
		return n, nil
	}
	id, err := byName(s)
	if err != nil {
		return -1, err
	}
	return strconv.Atoi(id)
}

// Sync makes the sockets held for a program match want, keeping every
// socket whose listen value is still wanted (so its queue survives a spec
// change of anything else), binding new ones and closing, with their
// files, those no longer wanted. The result is aligned with want; an entry
// is nil where binding failed, and the error (of *BindError values) says
// why. Keep the result: the next Sync binds only what is missing.
func Sync(have []*Socket, want []v1alpha1.Socket) ([]*Socket, error) {
	out := make([]*Socket, len(want))
	used := make([]bool, len(have))
	var errs []error
	for i, w := range want {
		for j, h := range have {
			if used[j] || h == nil || h.Spec.Listen != w.Listen {
				continue
			}
			used[j] = true
			old := h.Spec
			h.Spec = w
			if err := errors.Join(h.applyBacklog(old.Backlog), h.applyFile(old)); err != nil {
				errs = append(errs, &BindError{Listen: w.Listen, Err: err})
			}
			out[i] = h
			break
		}
	}
	for j, h := range have {
		if !used[j] {
			h.Close(true)
		}
	}
	for i, w := range want {
		if out[i] != nil {
			continue
		}
		s, err := Bind(w)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[i] = s
	}
	return out, errors.Join(errs...)
}

// CloseAll closes every socket of socks (see Close).
func CloseAll(socks []*Socket, removeFiles bool) {
	for _, s := range socks {
		s.Close(removeFiles)
	}
}

// Env returns the socket activation environment for socks (all non-nil),
// which the program receives from descriptor 3 on: LISTEN_FDS and
// LISTEN_FDNAMES (LISTEN_PID is set by the spawn shim).
func Env(socks []*Socket) []string {
	names := ""
	for i, s := range socks {
		if i > 0 {
			names += ":"
		}
		names += s.Spec.Name
	}
	return []string{"LISTEN_FDS=" + strconv.Itoa(len(socks)), "LISTEN_FDNAMES=" + names}
}

// Files returns the descriptors of socks, in order, for SpawnOptions.ExtraFiles.
func Files(socks []*Socket) []*os.File {
	out := make([]*os.File, len(socks))
	for i, s := range socks {
		out[i] = s.file
	}
	return out
}

// Held is what the adoption record keeps of a socket a program was given.
type Held struct {
	// Spec is the socket's spec as applied.
	Spec v1alpha1.Socket `json:"spec"`
	// Network and Address are as in Socket.
	Network string `json:"network"`
	Address string `json:"address"`
	// Inode identifies the socket itself (as /proc/PID/fd shows it:
	// socket:[INODE]): programs move it to other descriptor numbers
	// (go-systemd's activation.Listeners closes descriptor 3 after
	// duplicating it).
	Inode uint64 `json:"inode"`
	// Ino is a unix socket file's inode.
	Ino uint64 `json:"ino,omitempty"`
}

// Record describes socks for the adoption record.
func Record(socks []*Socket) []Held {
	out := make([]Held, 0, len(socks))
	for _, s := range socks {
		if s == nil {
			continue
		}
		var st unix.Stat_t
		if err := unix.Fstat(int(s.file.Fd()), &st); err != nil {
			continue // cannot happen for an open socket; it is bound again at the next start
		}
		out = append(out, Held{Spec: s.Spec, Network: s.Network, Address: s.Address, Inode: st.Ino, Ino: s.ino})
	}
	return out
}

// Reclaim takes a socket back from a running program: it finds the
// descriptor of the program that holds the very socket h recorded (by
// socket inode, in /proc/PID/fd), and copy returns a copy of it
// (supervise.CopyFD on the program's pidfd). The copy is checked to be a
// socket of the recorded type and address.
func Reclaim(h Held, pid int, copy func(fd int) (*os.File, error)) (*Socket, error) {
	fd, err := findSocketFD(pid, h.Inode)
	if err != nil {
		return nil, err
	}
	f, err := copy(fd)
	if err != nil {
		return nil, err
	}
	nfd := int(f.Fd())
	var st unix.Stat_t
	typ, err := unix.GetsockoptInt(nfd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err == nil {
		err = unix.Fstat(nfd, &st)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("descriptor %d of the program is no longer a socket: %w", fd, err)
	}
	wantType := unix.SOCK_STREAM
	if h.Network == "udp" {
		wantType = unix.SOCK_DGRAM
	}
	addr, err := localAddress(nfd)
	if err != nil || typ != wantType || addr != h.Address || st.Ino != h.Inode {
		f.Close()
		return nil, fmt.Errorf("descriptor %d of the program is no longer the socket %s (it is %q)", fd, h.Address, addr)
	}
	return &Socket{Spec: h.Spec, Network: h.Network, Address: h.Address, file: f, ino: h.Ino}, nil
}

// findSocketFD returns the descriptor under which process pid holds the
// socket with the given inode.
func findSocketFD(pid int, inode uint64) (int, error) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	d, err := os.Open(dir)
	if err != nil {
		return -1, err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return -1, err
	}
	want := fmt.Sprintf("socket:[%d]", inode)
	for _, name := range names {
		if link, err := os.Readlink(dir + "/" + name); err == nil && link == want {
			return strconv.Atoi(name)
		}
	}
	return -1, fmt.Errorf("the program (pid %d) no longer holds the socket", pid)
}

// localAddress formats the address a socket is bound to, the same way for
// a socket just bound and one taken back.
func localAddress(fd int) (string, error) {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return "", fmt.Errorf("getsockname: %w", err)
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return net.JoinHostPort(net.IP(a.Addr[:]).String(), strconv.Itoa(a.Port)), nil
	case *unix.SockaddrInet6:
		host := net.IP(a.Addr[:]).String()
		if a.ZoneId != 0 {
			if ifi, err := net.InterfaceByIndex(int(a.ZoneId)); err == nil {
				host += "%" + ifi.Name
			}
		}
		return net.JoinHostPort(host, strconv.Itoa(a.Port)), nil
	case *unix.SockaddrUnix:
		return a.Name, nil
	}
	return "", fmt.Errorf("unexpected socket address %T", sa)
}

// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

//go:build linux

package sockets

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reconciled/reconciled/apis/v1alpha1"
)

// spec returns a defaulted socket spec for listen.
func spec(t *testing.T, listen string) v1alpha1.Socket {
	t.Helper()
	p := &v1alpha1.Process{Spec: v1alpha1.ProcessSpec{Command: []string{"x"}, Sockets: []v1alpha1.Socket{{Listen: listen}}}}
	p.Name = "svc"
	p.Default()
	return p.Spec.Sockets[0]
}

// listener wraps a copy of s's descriptor as a net.Listener, as the program
// would.
func listener(t *testing.T, s *Socket) net.Listener {
	t.Helper()
	l, err := net.FileListener(s.File())
	if err != nil {
		t.Fatalf("FileListener: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestBindTCPQueuesWhileNobodyAccepts(t *testing.T) {
	s, err := Bind(spec(t, "tcp://127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(true)
	if !strings.HasPrefix(s.Address, "127.0.0.1:") || strings.HasSuffix(s.Address, ":0") {
		t.Fatalf("Address %q, want 127.0.0.1 and the chosen port", s.Address)
	}
	// Nobody accepts: the connection still completes (it waits in the
	// backlog), which is the point of holding the socket.
	c, err := net.DialTimeout("tcp", s.Address, 5*time.Second)
	if err != nil {
		t.Fatalf("connect with nobody accepting: %v", err)
	}
	c.Write([]byte("hello"))
	l := listener(t, s)
	a, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	a.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := a.Read(buf); err != nil || string(buf) != "hello" {
		t.Fatalf("read %q %v", buf, err)
	}
	a.Close()
	c.Close()
	if st := s.Status(); st.Name != "svc" || st.Listen != "tcp://127.0.0.1:0" || st.Address != s.Address {
		t.Fatalf("Status %+v", st)
	}
}

func TestBindUDP(t *testing.T) {
	s, err := Bind(spec(t, "udp://127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(true)
	c, err := net.Dial("udp", s.Address)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("datagram")) // queued on the daemon's socket
	pc, err := net.FilePacketConn(s.File())
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	buf := make([]byte, 64)
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := pc.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "datagram" {
		t.Fatalf("read %q %v", buf[:n], err)
	}
}

func TestBindUnixModeStaleAndLive(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "svc.sock")
	sp := spec(t, "unix://"+path)
	sp.Mode = "0600"
	s, err := Bind(sp)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket file %v %v, want a socket with mode 0600", fi, err)
	}
	// A live socket is never taken over.
	if _, err := Bind(sp); err == nil || !strings.Contains(err.Error(), "another program is listening") {
		t.Fatalf("second Bind: %v, want in use", err)
	}
	// The daemon exits without removing it (the program keeps serving);
	// once nobody holds it, it is stale and a new Bind replaces it.
	s.Close(false)
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("Close(false) removed the file: %v", err)
	}
	s2, err := Bind(sp)
	if err != nil {
		t.Fatalf("Bind over a stale socket file: %v", err)
	}
	s2.Close(true)
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Close(true) left the file: %v", err)
	}
	// A file that is not a socket is never removed.
	os.WriteFile(path, []byte("data"), 0o644)
	_, err = Bind(sp)
	var be *BindError
	if !errors.As(err, &be) || !strings.Contains(err.Error(), "is not a socket") {
		t.Fatalf("Bind over a regular file: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "data" {
		t.Fatalf("the regular file was changed: %q", b)
	}
}

func TestBindFailureNamesTheSocket(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	listen := "tcp://" + taken.Addr().String()
	_, err = Bind(spec(t, listen))
	var be *BindError
	if !errors.As(err, &be) || be.Listen != listen || !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("Bind of a taken port: %v, want a BindError naming %s with EADDRINUSE", err, listen)
	}
}

func TestSyncKeepsRebindsAndCloses(t *testing.T) {
	a, b := spec(t, "tcp://127.0.0.1:0"), spec(t, "udp://127.0.0.1:0")
	have, err := Sync(nil, []v1alpha1.Socket{a, b})
	if err != nil || len(have) != 2 {
		t.Fatalf("Sync: %v %v", have, err)
	}
	kept := have[0]
	addrB := have[1].Address
	// The same listen value keeps the very socket (and its queue), even
	// when its other settings change; a removed one is closed.
	a.Name, a.Backlog = "renamed", 16
	c := spec(t, "tcp://127.0.0.1:0")
	c.Name = "third"
	next, err := Sync(have, []v1alpha1.Socket{a, c})
	if err != nil {
		t.Fatal(err)
	}
	if next[0] != kept || next[0].Spec.Name != "renamed" {
		t.Fatalf("the kept socket was replaced: %+v", next[0])
	}
	if next[1] == nil || next[1] == have[1] || next[1].Network != "tcp" {
		t.Fatalf("third socket %+v", next[1])
	}
	if have[1].File() != nil {
		t.Fatalf("the removed udp socket %s is still open", addrB)
	}
	if got := Env(next); strings.Join(got, " ") != "LISTEN_FDS=2 LISTEN_FDNAMES=renamed:third" {
		t.Fatalf("Env %q", got)
	}
	if fs := Files(next); len(fs) != 2 || fs[0] != kept.File() {
		t.Fatalf("Files %v", fs)
	}
	CloseAll(next, true)

	// A failure leaves a hole, and binds only the missing one next time.
	taken, _ := net.Listen("tcp", "127.0.0.1:0")
	bad := spec(t, "tcp://"+taken.Addr().String())
	got, err := Sync(nil, []v1alpha1.Socket{a, bad})
	if err == nil || got[0] == nil || got[1] != nil {
		t.Fatalf("Sync with a taken port: %v %v", got, err)
	}
	first := got[0]
	taken.Close()
	got, err = Sync(got, []v1alpha1.Socket{a, bad})
	if err != nil || got[0] != first || got[1] == nil {
		t.Fatalf("Sync after the port is free: %v %v", got, err)
	}
	CloseAll(got, true)
}

// Reclaim finds the socket by its inode wherever the program moved it,
// and refuses one that is gone.
func TestReclaim(t *testing.T) {
	s, err := Bind(spec(t, "tcp://127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	held := Record([]*Socket{nil, s})
	if len(held) != 1 || held[0].Inode == 0 || held[0].Address != s.Address {
		t.Fatalf("Record %+v", held)
	}
	// The "program" is this test process; it moves the socket to another
	// descriptor and closes the first, as go-systemd does.
	moved, err := syscall.Dup(int(s.File().Fd()))
	if err != nil {
		t.Fatal(err)
	}
	s.Close(false)
	var asked int
	dup := func(fd int) (*os.File, error) {
		asked = fd
		nfd, err := syscall.Dup(fd)
		return os.NewFile(uintptr(nfd), "dup"), err
	}
	got, err := Reclaim(held[0], os.Getpid(), dup)
	if err != nil {
		t.Fatal(err)
	}
	if asked != moved || got.Address != held[0].Address || got.Spec != held[0].Spec {
		t.Fatalf("reclaimed %+v from descriptor %d, want descriptor %d", got, asked, moved)
	}
	// It is the same socket: a connection queued on it is accepted
	// through the program's descriptor.
	c, err := net.Dial("tcp", got.Address)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	got.Close(false)
	syscall.Close(moved)
	if _, err := Reclaim(held[0], os.Getpid(), dup); err == nil || !strings.Contains(err.Error(), "no longer holds") {
		t.Fatalf("Reclaim of a socket nobody holds: %v", err)
	}
}

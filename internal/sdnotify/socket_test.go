// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package sdnotify

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"

	"github.com/reconciled/reconciled/test/fixtures"
)

const waitTimeout = 20 * time.Second

type event struct {
	pid int
	m   Message
	err error
}

// listen starts a Socket whose handler forwards every call to the returned
// channel, and closes it at the end of the test.
func listen(t *testing.T, addr string) (*Socket, <-chan event) {
	t.Helper()
	ch := make(chan event, 128)
	s, err := Listen(addr, func(pid int, m Message, err error) {
		select {
		case ch <- event{pid, m, err}:
		default:
			t.Errorf("handler channel full, dropped message from pid %d", pid)
		}
	})
	if err != nil {
		t.Fatalf("Listen(%q): %v", addr, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, ch
}

func next(t *testing.T, ch <-chan event) event {
	t.Helper()
	select {
	case ev := <-ch:
		return ev
	case <-time.After(waitTimeout):
		t.Fatalf("no notify message received within %v", waitTimeout)
		return event{}
	}
}

func abstractAddr() string {
	return fmt.Sprintf("@reconciled-test-%d-%x", os.Getpid(), rand.Uint64())
}

// send writes one datagram to addr with optional ancillary data, the way
// libsystemd's sd_pid_notify_with_fds does (sendmsg on an unbound socket).
func send(t *testing.T, addr string, msg, oob []byte) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Sendmsg(fd, msg, oob, &unix.SockaddrUnix{Name: addr}, 0); err != nil {
		t.Fatalf("send to %q: %v", addr, err)
	}
}

func pythonPath() string {
	if _, err := os.Stat("/usr/bin/python3"); err == nil {
		return "/usr/bin/python3"
	}
	p, _ := exec.LookPath("python3")
	return p
}

// pystemdScript does what pystemd.daemon.notify / sd_notify do: a datagram
// sent with sendto to NOTIFY_SOCKET, "@" standing for the abstract namespace.
const pystemdScript = `
import os, socket
addr = os.environ["NOTIFY_SOCKET"]
if addr.startswith("@"):
    addr = "\0" + addr[1:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
s.sendto(("READY=1\nSTATUS=python %d\n" % os.getpid()).encode(), addr)
s.close()
`

func TestRoundTrip(t *testing.T) {
	for _, kind := range []string{"abstract", "path"} {
		t.Run(kind, func(t *testing.T) {
			addr := abstractAddr()
			if kind == "path" {
				addr = filepath.Join(t.TempDir(), "run", "n.sock")
			}
			s, ch := listen(t, addr)
			if s.Addr() != addr {
				t.Errorf("Addr() = %q, want %q", s.Addr(), addr)
			}
			if kind == "path" {
				fi, err := os.Stat(addr)
				if err != nil || fi.Mode().Type() != os.ModeSocket {
					t.Fatalf("socket file %q: %v, %v", addr, fi, err)
				}
				di, err := os.Stat(filepath.Dir(addr))
				if err != nil || di.Mode().Perm()&^0o750 != 0 {
					t.Errorf("parent dir mode %v (err %v), want at most 0750", di.Mode(), err)
				}
			}

			t.Run("go-systemd", func(t *testing.T) {
				t.Setenv("NOTIFY_SOCKET", s.Addr())
				sent, err := daemon.SdNotify(false, "READY=1\nSTATUS=up")
				if !sent || err != nil {
					t.Fatalf("SdNotify = %v, %v", sent, err)
				}
				ev := next(t, ch)
				if ev.err != nil {
					t.Fatalf("handler error: %v", ev.err)
				}
				if ev.pid != os.Getpid() {
					t.Errorf("sender pid = %d, want %d", ev.pid, os.Getpid())
				}
				if !ev.m.Ready || ev.m.Status == nil || *ev.m.Status != "up" {
					t.Errorf("message = %+v, want Ready and STATUS=up", ev.m)
				}
			})

			t.Run("python child", func(t *testing.T) {
				py := pythonPath()
				if py == "" {
					fixtures.SkipOrFail(t, "python3 not installed")
				}
				cmd := exec.Command(py, "-c", pystemdScript)
				cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+s.Addr())
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("python3: %v\n%s", err, out)
				}
				ev := next(t, ch)
				if ev.err != nil {
					t.Fatalf("handler error: %v", ev.err)
				}
				if ev.pid != cmd.Process.Pid {
					t.Errorf("sender pid = %d, want child pid %d", ev.pid, cmd.Process.Pid)
				}
				want := fmt.Sprintf("python %d", cmd.Process.Pid)
				if !ev.m.Ready || ev.m.Status == nil || *ev.m.Status != want {
					t.Errorf("message = %+v, want Ready and STATUS=%s", ev.m, want)
				}
			})

			t.Run("bad datagrams", func(t *testing.T) {
				send(t, s.Addr(), []byte("MAINPID=abc"), nil)
				ev := next(t, ch)
				if ev.err == nil || !strings.Contains(ev.err.Error(), "MAINPID") {
					t.Errorf("unparsable datagram: err = %v, want an error naming MAINPID", ev.err)
				}
				if ev.pid != os.Getpid() {
					t.Errorf("sender pid = %d, want %d", ev.pid, os.Getpid())
				}
				send(t, s.Addr(), []byte("STATUS="+strings.Repeat("x", 5000)), nil)
				if ev := next(t, ch); ev.err == nil {
					t.Errorf("oversized datagram accepted: %+v", ev.m)
				}
				// The socket still works afterwards.
				send(t, s.Addr(), []byte("WATCHDOG=1"), nil)
				if ev := next(t, ch); ev.err != nil || !ev.m.Watchdog {
					t.Errorf("after bad datagrams: %+v, %v", ev.m, ev.err)
				}
			})

			t.Run("passed fds are closed (sd_notify_barrier)", func(t *testing.T) {
				r, w, err := os.Pipe()
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				send(t, s.Addr(), []byte("BARRIER=1"), unix.UnixRights(int(w.Fd())))
				w.Close()
				if ev := next(t, ch); ev.err != nil || ev.m.Fields["BARRIER"] != "1" {
					t.Fatalf("barrier message: %+v, %v", ev.m, ev.err)
				}
				// The read end sees EOF only once the daemon closed its copy.
				if err := r.SetReadDeadline(time.Now().Add(waitTimeout)); err != nil {
					t.Fatal(err)
				}
				if n, err := r.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
					t.Fatalf("barrier pipe read = %d, %v; want EOF", n, err)
				}
			})
		})
	}
}

func TestCloseRemovesSocketFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "n.sock")
	calls := make(chan struct{}, 16)
	s, err := Listen(path, func(int, Message, error) { calls <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file still present after Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if len(calls) != 0 {
		t.Errorf("handler called %d times, want 0", len(calls))
	}
}

func TestCloseStopsHandlerCalls(t *testing.T) {
	addr := abstractAddr()
	calls := make(chan struct{}, 1024)
	closed := make(chan struct{})
	s, err := Listen(addr, func(int, Message, error) {
		select {
		case <-closed:
			t.Error("handler called after Close returned")
		default:
		}
		select {
		case calls <- struct{}{}:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	stop := make(chan struct{})
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := c.Write([]byte("WATCHDOG=1")); err != nil {
				return // the socket is gone
			}
		}
	}()
	select {
	case <-calls:
	case <-time.After(waitTimeout):
		t.Fatal("no message received")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	close(closed)
	close(stop)
	<-sent
}

func TestListenAddressChecks(t *testing.T) {
	dir := t.TempDir()

	t.Run("stale socket file is replaced", func(t *testing.T) {
		path := filepath.Join(dir, "stale.sock")
		old, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
		if err != nil {
			t.Fatal(err)
		}
		old.Close() // unixgram sockets leave their file behind
		if _, err := os.Lstat(path); err != nil {
			t.Fatalf("expected a stale socket file: %v", err)
		}
		s, ch := listen(t, path)
		send(t, s.Addr(), []byte("READY=1"), nil)
		if ev := next(t, ch); !ev.m.Ready {
			t.Errorf("got %+v, %v", ev.m, ev.err)
		}
	})

	t.Run("path in use", func(t *testing.T) {
		path := filepath.Join(dir, "busy.sock")
		listen(t, path)
		_, err := Listen(path, func(int, Message, error) {})
		if !errors.Is(err, syscall.EADDRINUSE) {
			t.Errorf("second Listen(%q) = %v, want EADDRINUSE", path, err)
		}
		if _, err := os.Lstat(path); err != nil {
			t.Errorf("first socket's file was removed: %v", err)
		}
	})

	t.Run("abstract in use", func(t *testing.T) {
		addr := abstractAddr()
		listen(t, addr)
		if _, err := Listen(addr, func(int, Message, error) {}); err == nil {
			t.Errorf("second Listen(%q) succeeded", addr)
		}
	})

	t.Run("regular file", func(t *testing.T) {
		path := filepath.Join(dir, "file")
		if err := os.WriteFile(path, []byte("keep"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Listen(path, func(int, Message, error) {}); err == nil {
			t.Error("Listen over a regular file succeeded")
		}
		if b, err := os.ReadFile(path); err != nil || string(b) != "keep" {
			t.Errorf("regular file clobbered: %q, %v", b, err)
		}
	})

	t.Run("invalid", func(t *testing.T) {
		for _, addr := range []string{"", "@", "@" + strings.Repeat("a", 200), "/tmp/" + strings.Repeat("a", 200)} {
			if _, err := Listen(addr, func(int, Message, error) {}); err == nil {
				t.Errorf("Listen(%q) succeeded", addr)
			}
		}
		if _, err := Listen(abstractAddr(), nil); err == nil {
			t.Error("Listen with nil handler succeeded")
		}
	})
}

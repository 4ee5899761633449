// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package probe

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reconciled/reconciled/apis/v1alpha1"
)

// probeTCP connects to the address and closes the connection with RST
// (SO_LINGER 0), so thousands of probes leave no TIME_WAIT sockets behind.
// An IP:port takes the lean path below; a host name goes through the
// dialer, which resolves it.
func (p *Prober) probeTCP(ctx context.Context, c *v1alpha1.TCPCheck, start time.Time) Result {
	if ap, err := netip.ParseAddrPort(c.Address); err == nil {
		return probeTCPAddr(ctx, ap, start)
	}
	conn, err := p.dialer().DialContext(ctx, "tcp", c.Address)
	latency := time.Since(start)
	if err != nil {
		return failure(err, start)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // Onoff=1, Linger=0: Close sends RST.
	}
	_ = conn.Close()
	return Result{OK: true, Latency: latency}
}

// probeTCPAddr connects to an IP:port with as few system calls as the job
// needs: a non-blocking socket, connect, a wait on Go's poller only if the
// handshake is still under way, SO_ERROR,
// SO_LINGER 0 and close. (net.Dial also reads both socket names and sets
// TCP_NODELAY, which a probe does not need: with 10,000 Links that is a
// good part of the daemon's CPU.)
func probeTCPAddr(ctx context.Context, ap netip.AddrPort, start time.Time) Result {
	fail := func(op string, err error) Result {
		return failure(&net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(ap), Err: os.NewSyscallError(op, err)}, start)
	}
	family, sa := unix.AF_INET, unix.Sockaddr(nil)
	if a := ap.Addr().Unmap(); a.Is4() {
		sa = &unix.SockaddrInet4{Port: int(ap.Port()), Addr: a.As4()}
	} else {
		family = unix.AF_INET6
		sa = &unix.SockaddrInet6{Port: int(ap.Port()), Addr: a.As16()}
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fail("socket", err)
	}
	err = unix.Connect(fd, sa)
	if err != nil && !errors.Is(err, unix.EINPROGRESS) {
		unix.Close(fd)
		return fail("connect", err)
	}
	// On loopback and other local addresses the kernel has usually finished
	// the handshake before connect returns. Look once without waiting: if
	// it is done, Go's poller and a deadline timer are not needed at all.
	if err == nil || connectDone(fd) {
		return finishTCP(fd, start, fail)
	}
	// os.NewFile registers the non-blocking socket with Go's poller, so the
	// wait below parks the goroutine, not a thread.
	f := os.NewFile(uintptr(fd), "tcp-probe")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return fail("connect", err)
	}
	if dl, ok := ctx.Deadline(); ok {
		f.SetWriteDeadline(dl)
	}
	var soErr error
	werr := rc.Write(func(fd uintptr) bool {
		// Writable means connected or failed. RawConn.Write resets the
		// poller's readiness before calling us, so look for ourselves
		// and only then let it park us.
		if !connectDone(int(fd)) {
			return false
		}
		soErr = connectError(int(fd))
		return true
	})
	latency := time.Since(start)
	switch {
	case werr != nil:
		return fail("connect", werr)
	case soErr != nil:
		return fail("connect", soErr)
	}
	rc.Control(func(fd uintptr) {
		unix.SetsockoptLinger(int(fd), unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	})
	return Result{OK: true, Latency: latency}
}

// connectDone reports whether a non-blocking connect on fd has finished
// (succeeded or failed), without waiting.
func connectDone(fd int) bool {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
	n, err := unix.Poll(pfd, 0)
	return err == nil && n > 0
}

// finishTCP reads the outcome of a finished connect on fd, closes fd with
// RST and returns the result.
func finishTCP(fd int, start time.Time, fail func(string, error) Result) Result {
	latency := time.Since(start)
	defer unix.Close(fd)
	if err := connectError(fd); err != nil {
		return fail("connect", err)
	}
	unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	return Result{OK: true, Latency: latency}
}

// connectError returns the outcome of a finished non-blocking connect on fd:
// nil when it connected.
func connectError(fd int) error {
	v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	switch {
	case err != nil:
		return err
	case v != 0:
		return syscall.Errno(v)
	}
	return nil
}

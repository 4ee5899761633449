// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package tftp

import (
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// transferConn is the UDP socket of one transfer: its own port on the
// server's address, connected to the client, and blocking.
//
// Blocking matters in lock-step (RFC 1350), where every block waits for
// its ACK: the thread sleeping in recv(2) is woken by the ACK itself,
// where Go's poller would add a wake-up of its own and a timer update per
// block. That is what keeps a transfer over loopback as fast as
// tftpd-hpa's. A transfer holds one thread while it waits.
type transferConn struct {
	fd      int
	timeout time.Duration // the SO_RCVTIMEO set now
}

// dialTransfer opens a transfer socket bound to local (any address when
// unspecified) and connected to remote.
func dialTransfer(local net.IP, remote *net.UDPAddr) (*transferConn, error) {
	family, rsa := unix.AF_INET6, withZone(sockaddr(remote.IP, remote.Port), remote.Zone)
	if remote.IP.To4() != nil {
		family = unix.AF_INET
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("transfer socket: %w", err)
	}
	c := &transferConn{fd: fd}
	if local != nil && !local.IsUnspecified() {
		if family == unix.AF_INET && local.To4() == nil {
			c.Close()
			return nil, fmt.Errorf("transfer socket: %v cannot reach %v", local, remote)
		}
		if err := unix.Bind(fd, sockaddr(local, 0)); err != nil {
			c.Close()
			return nil, fmt.Errorf("transfer socket: bind %v: %w", local, err)
		}
	}
	if family == unix.AF_INET {
		rsa = sockaddr(remote.IP.To4(), remote.Port)
	}
	if err := unix.Connect(fd, rsa); err != nil {
		c.Close()
		return nil, fmt.Errorf("transfer socket: connect %v: %w", remote, err)
	}
	return c, nil
}

// sockaddr converts an IP and port.
func sockaddr(ip net.IP, port int) unix.Sockaddr {
	if v4 := ip.To4(); v4 != nil {
		sa := &unix.SockaddrInet4{Port: port}
		copy(sa.Addr[:], v4)
		return sa
	}
	sa := &unix.SockaddrInet6{Port: port}
	copy(sa.Addr[:], ip.To16())
	return sa
}

// withZone sets the scope of a link-local IPv6 address from its zone.
func withZone(sa unix.Sockaddr, zone string) unix.Sockaddr {
	if s6, ok := sa.(*unix.SockaddrInet6); ok && zone != "" {
		if ifc, err := net.InterfaceByName(zone); err == nil {
			s6.ZoneId = uint32(ifc.Index)
		}
	}
	return sa
}

// LocalIP is the address the kernel sends the transfer from.
func (c *transferConn) LocalIP() net.IP {
	sa, err := unix.Getsockname(c.fd)
	if err != nil {
		return nil
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return net.IP(a.Addr[:])
	case *unix.SockaddrInet6:
		return net.IP(a.Addr[:])
	}
	return nil
}

// Write sends one datagram.
func (c *transferConn) Write(b []byte) (int, error) {
	for {
		n, err := unix.Write(c.fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("send: %w", err)
		}
		return n, nil
	}
}

// ReadTimeout receives one datagram, waiting at most d. It returns an
// error wrapping os.ErrDeadlineExceeded when nothing came, and (0, nil)
// once Wake was called or when a signal interrupted the wait.
func (c *transferConn) ReadTimeout(b []byte, d time.Duration) (int, error) {
	d = max(d, time.Microsecond) // a zero SO_RCVTIMEO waits for ever
	if d != c.timeout {
		tv := unix.NsecToTimeval(d.Nanoseconds())
		if err := unix.SetsockoptTimeval(c.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return 0, fmt.Errorf("receive timeout: %w", err)
		}
		c.timeout = d
	}
	for {
		n, err := unix.Read(c.fd, b)
		switch {
		case err == unix.EINTR:
			// SO_RCVTIMEO makes recv(2) fail with EINTR rather than
			// restart: return, so that the caller waits for what is
			// left of its time, not the whole timeout again.
			return 0, nil
		case err == unix.EAGAIN:
			return 0, fmt.Errorf("receive: %w", os.ErrDeadlineExceeded)
		case err != nil:
			// ECONNREFUSED: an ICMP port unreachable, the client is gone.
			return 0, fmt.Errorf("receive: %w", err)
		}
		return n, nil
	}
}

// Wake ends a ReadTimeout in progress (and all later ones) at once.
func (c *transferConn) Wake() { unix.Shutdown(c.fd, unix.SHUT_RD) }

// Close releases the socket.
func (c *transferConn) Close() error { return unix.Close(c.fd) }

// isTimeout reports whether err is ReadTimeout's "nothing came".
func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package tftp is the netboot TFTP server: it serves the files below one
// root folder read-only to Raspberry Pis (and other PXE clients), with the
// blksize and tsize options, and never anything outside that folder.
//
// Every transfer is answered from its own UDP socket (its TID, RFC 1350),
// bound to the address the server listens on; when that is a wildcard
// address, the kernel picks the source address by route, so a server on
// a host with several addresses should listen on the one its clients use
// (the daemon listens on netboot.serverIP). A process that serves in a
// network namespace must run entirely inside it.
//
// # Confinement
//
// A request name first goes through CleanPath (no "..", no absolute
// names, no backslashes, NUL or other control characters). The result is
// opened through an os.Root on the root folder, which resolves symlinks
// itself and refuses any that lead outside the root, and only regular
// files are served. Refusals are answered with a TFTP ERROR packet.
// pin/tftp always sends error code 1 (file not found); the message tells
// "file not found" from "access violation: ...".
//
// # Options
//
// blksize (RFC 2348) is granted up to the MTU of the interface the
// transfer leaves by, less the IP and UDP headers (1472 on Ethernet).
// windowsize (RFC 7440) is granted up to MaxWindow blocks: the client
// acknowledges only every window, which is what makes a transfer fast on
// a link with some latency. timeout (RFC 2349) sets the retransmission
// timeout of the transfer. tsize (RFC 2349) is announced in octet mode
// with the size of the file when it was opened; not in netascii mode (the
// bytes sent differ from the file, as with tftpd-hpa). Options out of
// range are left out of the acknowledgement, which RFC 2347 allows.
//
// # Per-Pi folders
//
// A request for P from a client whose IP Options.Serial maps to serial S
// is answered, in this order, with the first regular file found:
//
//  1. <Root>/S/P, unless P already starts with "S/";
//  2. <Root>/P, exactly as requested.
//
// So a Raspberry Pi 4, which itself asks for "S/start4.elf" and falls
// back to "start4.elf" when that is missing, gets exactly what it asks
// for, and a client that asks for plain names (a Pi 3 after bootcode.bin,
// iPXE) still gets its own folder's copy where there is one. Any file
// below the root may be read by any client; the folders select, they do
// not protect. A symlink that leads out of the root refuses the whole
// request, even when a later candidate exists.
package tftp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-logr/logr"
)

// Options configures a Server.
type Options struct {
	// Addr is the UDP address to listen on, such as "10.77.0.1:69".
	// Empty means ":69". Port 0 picks a free port (see Server.Addr).
	Addr string
	// Root is the folder that is served. It must exist.
	Root string
	// Serial maps a client IP to the serial number of the Raspberry Pi
	// that has it, for the per-Pi folder <Root>/<serial>/. Nil, ok false,
	// or a serial that is not a single plain folder name disable the
	// per-Pi lookup for that client. It is called once per read request,
	// from the transfer's goroutine, and must not block.
	Serial func(remote net.IP) (serial string, ok bool)
	// OnContact, if not nil, is called once for every read request,
	// served or refused, with the client's IP and the file name exactly
	// as the client sent it (untrusted: quote it before printing). It is
	// called before the transfer starts, from the transfer's goroutine,
	// and must not block. Write requests are not contacts.
	OnContact func(remote net.IP, path string)
	// Timeout is how long a transfer waits for an acknowledgement
	// before it sends the block again; after Retries+1 sends in vain it
	// gives up. Zero means DefaultTimeout.
	Timeout time.Duration
	// Retries is how many times a block is sent again. Zero means
	// DefaultRetries.
	Retries int
	// MaxTransfers bounds the transfers in flight; a request beyond it
	// is answered with an error at once. Zero means DefaultMaxTransfers.
	MaxTransfers int
	// Log receives refusals at V(0) for access violations, and served
	// transfers and missing files at V(1). The zero Logger discards.
	Log logr.Logger
}

// Defaults for Options.
const (
	// DefaultTimeout is tftpd-hpa's retransmission timeout.
	DefaultTimeout = time.Second
	// DefaultRetries is how many times a packet is sent again in vain
	// before a transfer is given up.
	DefaultRetries = 5
	// DefaultMaxTransfers bounds the transfers in flight. Each holds a
	// thread while it waits for an acknowledgement, so a flood of requests
	// must not start one each: 256 Pis booting at once is already a lot.
	DefaultMaxTransfers = 256
	// MaxWindow is the largest windowsize granted. 64 blocks of 1468
	// bytes are 92 KiB in flight, well within a socket buffer.
	MaxWindow = 64
)

// Server is a read-only TFTP server confined to one root folder. Create it
// with New, run it with Serve and stop it with Close or by cancelling the
// context given to Serve.
type Server struct {
	log       logr.Logger
	serial    func(net.IP) (string, bool)
	onContact func(net.IP, string)
	root      *os.Root
	conn      *net.UDPConn
	timeout   time.Duration
	retries   int
	slots     chan struct{} // one per transfer in flight, up to MaxTransfers

	serving   atomic.Bool
	closing   atomic.Bool
	closeOnce sync.Once
	// transfers holds the sockets of the transfers in flight, which
	// Close wakes up.
	mu        sync.Mutex
	transfers map[*transferConn]struct{}
	wg        sync.WaitGroup
}

// The messages of the TFTP ERROR packets that refuse a request. The
// messages for refused names add CleanPath's reason after ErrAccess's
// text.
var (
	// ErrNotFound means there is no regular file of that name below
	// the root (for this client: see the package comment).
	ErrNotFound = errors.New("file not found")
	// ErrAccess means the name is not acceptable (see CleanPath), leads
	// out of the root, or names something that cannot be read.
	ErrAccess = errors.New("access violation")
	// ErrReadOnly answers every write request.
	ErrReadOnly = errors.New("access violation: read-only server")
	// errClosing aborts transfers in flight when the server closes.
	errClosing = errors.New("server shutting down")
)

// New opens the root folder and binds the UDP socket, so that a missing
// folder or a port in use is reported here and not by Serve. The caller
// must call Close (or run Serve until its context ends) to release them.
func New(o Options) (*Server, error) {
	if o.Root == "" {
		return nil, errors.New("tftp: no root folder")
	}
	root, err := os.OpenRoot(o.Root)
	if err != nil {
		return nil, fmt.Errorf("tftp: open root: %w", err)
	}
	addr := o.Addr
	if addr == "" {
		addr = ":69"
	}
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		root.Close()
		return nil, fmt.Errorf("tftp: listen address %q: %w", addr, err)
	}
	conn, err := net.ListenUDP("udp", ua)
	if err != nil {
		root.Close()
		return nil, fmt.Errorf("tftp: listen: %w", err)
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Retries <= 0 {
		o.Retries = DefaultRetries
	}
	if o.MaxTransfers <= 0 {
		o.MaxTransfers = DefaultMaxTransfers
	}
	return &Server{
		log:       o.Log,
		serial:    o.Serial,
		onContact: o.OnContact,
		root:      root,
		conn:      conn,
		timeout:   o.Timeout,
		retries:   o.Retries,
		slots:     make(chan struct{}, o.MaxTransfers),
		transfers: map[*transferConn]struct{}{},
	}, nil
}

// Addr returns the address the server listens on.
func (s *Server) Addr() net.Addr { return s.conn.LocalAddr() }

// Serve answers requests until ctx is done or Close is called, then waits
// for the transfers in flight to end (see Close) and returns nil. It
// returns an error if called twice.
func (s *Server) Serve(ctx context.Context) error {
	if !s.serving.CompareAndSwap(false, true) {
		return errors.New("tftp: Serve called twice")
	}
	stop := context.AfterFunc(ctx, s.Close)
	defer stop()
	s.log.Info("serving TFTP", "addr", s.Addr().String(), "root", s.root.Name())
	buf := make([]byte, maxRequest+1)
	for {
		n, remote, err := s.conn.ReadFromUDP(buf)
		if err != nil {
			if s.closing.Load() {
				break
			}
			if errors.Is(err, net.ErrClosed) {
				break
			}
			continue // e.g. ICMP errors of earlier replies
		}
		req, err := parseRequest(buf[:n])
		if err != nil {
			s.log.V(1).Info("bad TFTP request", "remote", remote.String(), "error", err.Error())
			s.reply(remote, appendError(nil, errCodeIllegalOp, err.Error()))
			continue
		}
		if req.op == opWRQ {
			s.log.Info("refused TFTP write request", "remote", remote.IP.String(), "path", req.filename)
			s.reply(remote, appendError(nil, errCodeAccess, ErrReadOnly.Error()))
			continue
		}
		select {
		case s.slots <- struct{}{}:
		default:
			s.log.Info("refused TFTP request: too many transfers in flight", "remote", remote.IP.String(), "path", req.filename, "max", cap(s.slots))
			s.reply(remote, appendError(nil, errCodeUndefined, "server busy: too many transfers, try again"))
			continue
		}
		// Under mu with the closing check: Close waits for every transfer
		// started before it, and none starts after it.
		s.mu.Lock()
		if s.closing.Load() {
			s.mu.Unlock()
			<-s.slots
			break
		}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer func() { <-s.slots; s.wg.Done() }()
			s.serveRead(remote, req)
		}()
	}
	s.Close()
	return nil
}

// Close stops listening and ends the transfers in flight at once, each
// with a TFTP error to its client, and waits for them. It is safe to call
// more than once and concurrently with Serve; later calls wait for the
// first.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.closing.Store(true)
		s.conn.Close()
		s.mu.Lock()
		for c := range s.transfers {
			c.Wake() // the transfer sees closing
		}
		s.mu.Unlock()
		s.wg.Wait()
		s.root.Close()
	})
}

// dial opens the socket of a transfer to remote: a new port on the
// server's address, connected to the client.
func (s *Server) dial(remote *net.UDPAddr) (*transferConn, error) {
	return dialTransfer(s.conn.LocalAddr().(*net.UDPAddr).IP, remote)
}

// reply sends one packet to remote from a new socket, as a transfer that
// ends at once.
func (s *Server) reply(remote *net.UDPAddr, pkt []byte) {
	c, err := s.dial(remote)
	if err != nil {
		return
	}
	c.Write(pkt)
	c.Close()
}

// serveRead serves one read request.
func (s *Server) serveRead(remote *net.UDPAddr, req *request) {
	ip := remote.IP
	if v4 := ip.To4(); v4 != nil {
		ip = v4
	}
	if s.onContact != nil {
		s.onContact(ip, req.filename)
	}
	conn, err := s.dial(remote)
	if err != nil {
		s.log.Error(err, "cannot open a TFTP transfer socket", "remote", remote.String())
		return
	}
	defer conn.Close()
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		return
	}
	s.transfers[conn] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.transfers, conn)
		s.mu.Unlock()
	}()

	start := time.Now()
	if req.mode == "mail" {
		conn.Write(appendError(nil, errCodeIllegalOp, "mail mode is not supported"))
		return
	}
	f, name, err := s.open(ip, req.filename)
	if err != nil {
		code := uint16(errCodeAccess)
		if errors.Is(err, ErrNotFound) {
			code = errCodeNotFound
			s.log.V(1).Info("file not found", "remote", ip.String(), "path", req.filename)
		} else {
			s.log.Info("refused TFTP request", "remote", ip.String(), "path", req.filename, "reason", err.Error())
		}
		conn.Write(appendError(nil, code, err.Error()))
		return
	}
	defer f.Close()
	fr, err := newFileReader(f)
	if err != nil {
		conn.Write(appendError(nil, errCodeAccess, ErrAccess.Error()))
		return
	}
	var src io.Reader = fr
	if req.mode == "netascii" {
		src = newNetasciiReader(fr)
	}
	t := s.negotiate(conn, req, fr.size)
	snd := newSender(conn, src, t.blksize, t.window, t.timeout, s.retries, &s.closing)
	if len(t.oack) > 0 {
		err = snd.negotiate(appendOACK(nil, t.oack))
	}
	var n int64
	if err == nil {
		n, err = snd.send()
	}
	if err != nil {
		var ce clientError
		if !errors.As(err, &ce) && !errors.Is(err, errGaveUp) {
			conn.Write(appendError(nil, errCodeUndefined, err.Error()))
		}
		s.log.V(1).Info("transfer failed", "remote", ip.String(), "path", name, "bytes", n, "error", err.Error())
		return
	}
	s.log.V(1).Info("served", "remote", ip.String(), "path", name, "bytes", n, "blksize", t.blksize, "windowsize", t.window, "duration", time.Since(start).String())
}

// terms are the negotiated terms of a transfer.
type terms struct {
	blksize, window int
	timeout         time.Duration
	oack            []option // what to acknowledge; none: no OACK
}

// negotiate grants the options of req (RFC 2347: the ones out of range or
// unknown are left out) for a file of size bytes sent over conn.
func (s *Server) negotiate(conn *transferConn, req *request, size int64) terms {
	t := terms{blksize: 512, window: 1, timeout: s.timeout}
	for _, o := range req.options {
		switch o.name {
		case "blksize":
			n, ok := optionInt(o.value, 8, 65464)
			if !ok {
				continue
			}
			t.blksize = min(n, maxBlksize(conn))
			t.oack = append(t.oack, option{o.name, strconv.Itoa(t.blksize)})
		case "windowsize":
			n, ok := optionInt(o.value, 1, 65535)
			if !ok {
				continue
			}
			t.window = min(n, MaxWindow)
			t.oack = append(t.oack, option{o.name, strconv.Itoa(t.window)})
		case "timeout":
			n, ok := optionInt(o.value, 1, 255)
			if !ok {
				continue
			}
			t.timeout = time.Duration(n) * time.Second
			t.oack = append(t.oack, o)
		case "tsize":
			if req.mode == "octet" {
				t.oack = append(t.oack, option{o.name, strconv.FormatInt(size, 10)})
			}
		}
	}
	return t
}

// maxBlksize is the largest block that fits in one datagram on the
// interface conn sends from: its MTU less the IP and UDP headers. It is
// 1468 (tftpd-hpa's limit on Ethernet) when the interface is not found.
func maxBlksize(conn *transferConn) int {
	local := conn.LocalIP()
	headers := 28 // IPv4 and UDP
	if local.To4() == nil {
		headers = 48 // IPv6 and UDP
	}
	ifaces, err := net.Interfaces()
	if err != nil {
		return 1468
	}
	for _, ifc := range ifaces {
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.Equal(local) {
				return min(ifc.MTU-headers, 65464)
			}
		}
	}
	return 1468
}

// candidates returns the names to try, in order, for request p (already
// cleaned) from remote.
func (s *Server) candidates(remote net.IP, p string) []string {
	if s.serial == nil || remote == nil {
		return []string{p}
	}
	serial, ok := s.serial(remote)
	if !ok || !validSerial(serial) || strings.HasPrefix(p, serial+"/") {
		return []string{p}
	}
	return []string{serial + "/" + p, p}
}

// open finds the file that answers request req from remote (see the
// package comment) and returns it with its name relative to the root.
// Errors wrap ErrNotFound or ErrAccess.
func (s *Server) open(remote net.IP, req string) (*os.File, string, error) {
	p, err := CleanPath(req)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrAccess, err)
	}
	for _, name := range s.candidates(remote, p) {
		// O_NONBLOCK: opening a FIFO must not hang the transfer; only
		// regular files are served, and their reads never block.
		f, err := s.root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
				continue
			}
			// Escapes from the root, permission denied, symlink loops.
			return nil, "", ErrAccess
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, "", ErrAccess
		}
		if st.IsDir() {
			f.Close()
			continue
		}
		if !st.Mode().IsRegular() {
			f.Close()
			return nil, "", fmt.Errorf("%w: not a regular file", ErrAccess)
		}
		return f, name, nil
	}
	return nil, "", ErrNotFound
}
